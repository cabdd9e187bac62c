"""Removing the outputs (``task clean_outputs``): it lists first, deletes only with --yes."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators.clean import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DATASET_DIRECTORY", "OUTPUT_DIR", "DEMO_DIRECTORY"):
        monkeypatch.delenv(f"INVERSYNTH_{name}", raising=False)
    monkeypatch.setattr("generators.cli._dotenv", dict)  # no .env of the working folder
    monkeypatch.chdir(tmp_path)
    for folder in ("data", "runs/C6_fm", "demo"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "data" / "fm_data.hdf5").write_bytes(b"x" * 2000)
    (tmp_path / "runs" / "C6_fm" / "run.json").write_text("{}")
    (tmp_path / "wavs").mkdir()  # not an output folder of the toolkit's own
    return tmp_path


def test_lists_without_yes_and_deletes_nothing(workdir, capsys):
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert "would remove data/ (1 file, 0.0 MB)" in printed
    assert "would remove runs/ (1 file" in printed and "would remove demo/ (0 files" in printed
    assert "comparison" not in printed  # absent
    assert "run again with --yes" in printed
    assert all((workdir / name).is_dir() for name in ("data", "runs", "demo"))


def test_yes_deletes_the_chosen_folders_only(workdir, capsys):
    assert main(["runs", "demo", "--yes"]) == 0
    assert "removed runs/" in capsys.readouterr().out
    assert not (workdir / "runs").exists() and not (workdir / "demo").exists()
    assert (workdir / "data" / "fm_data.hdf5").exists() and (workdir / "wavs").is_dir()
    assert main(["--yes"]) == 0
    assert not (workdir / "data").exists() and (workdir / "wavs").is_dir()
    assert main([]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_a_linked_folder_loses_the_link_only(workdir, tmp_path_factory, capsys):
    elsewhere = tmp_path_factory.mktemp("big_disk")
    (elsewhere / "keep.hdf5").write_text("x")
    (workdir / "demo").rmdir()
    (workdir / "demo").symlink_to(elsewhere, target_is_directory=True)
    assert main(["demo", "--yes"]) == 0
    assert "only the link goes" in capsys.readouterr().out
    assert not (workdir / "demo").exists() and (elsewhere / "keep.hdf5").exists()


def test_folders_follow_the_environment_and_unknown_kinds_are_refused(workdir, monkeypatch, capsys):
    monkeypatch.setenv("INVERSYNTH_OUTPUT_DIR", "elsewhere/runs")
    (workdir / "elsewhere" / "runs").mkdir(parents=True)
    assert main(["runs"]) == 0
    assert "would remove elsewhere/runs/" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["everything"])
    assert exit_info.value.code == 2
    assert "unknown folder kind(s) ['everything']" in capsys.readouterr().err
