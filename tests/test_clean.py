"""Removing the outputs (``task clean_outputs``): only what the toolkit made, listed first, with --yes."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from core import commandline, environment
from generators.clean import main
from generators.outputs import (
    COMPARISON_FILES,
    DEMO_MARKER,
    MATCH_RECORD_VERSION,
    PREDICTIONS_MARKER,
    RUN_ENTRIES,
    SERVE_MARKER,
    mark_demo_folder,
    mark_predictions_folder,
)
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan

RUN_JSON = {"format_version": 1, "model": "C1", "parameter_set": {}, "generator": "sine"}


def _dataset(path: Path) -> None:
    synth = SineGenerator(sample_rate=8192, n_samples=512, n_levels=4)
    DatasetCreator(synth, path=path, plan=DatasetPlan(n_examples=4), progress=False).run()


def _run_folder(folder: Path, *extra: str) -> None:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({**RUN_JSON, "dataset": {"paths": []}}))
    for name in ("model.keras", "history.csv", ".lock", *extra):
        (folder / name).write_text("x")
    (folder / "evaluation").mkdir()
    (folder / "evaluation" / "metrics.json").write_text("{}")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in [k for k in os.environ if k.startswith("INVERSYNTH_")]:
        monkeypatch.delenv(key)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # no .env here
    environment._dotenv.cache_clear()
    _dataset(work / "data" / "fm_data.hdf5")
    np.savez(work / "data" / "fm_data.hdf5.index.npz", key=np.array("k"), features=[1], labels=[2])
    (work / "data" / "notes.txt").write_text("mine")
    (work / "data" / "look_data.hdf5").write_text("not HDF5, only named like a dataset")
    with h5py.File(work / "data" / "other_data.hdf5", "w") as f:  # HDF5, not the toolkit's
        f["x"] = np.zeros(3)
    (work / "data" / "sub").mkdir()
    _run_folder(work / "runs" / "C1_sine")
    (work / "runs" / "mine").mkdir()
    (work / "runs" / "mine" / "precious.txt").write_text("mine")
    (work / "wavs").mkdir()  # not an output folder of clean's
    yield work
    environment._dotenv.cache_clear()


def test_lists_and_deletes_nothing_without_yes(workdir: Path, capsys) -> None:
    before = sorted(p for p in workdir.rglob("*"))
    assert main([]) == 0
    printed = capsys.readouterr().out
    assert "would remove data/fm_data.hdf5 (dataset; 1 file" in printed
    assert "would remove data/fm_data.hdf5.index.npz (lookup index" in printed
    assert "would remove runs/C1_sine/ (run folder; 5 files" in printed
    assert "leaving data/notes.txt: not a dataset of the toolkit" in printed
    assert "leaving data/look_data.hdf5: not a dataset" in printed
    assert "leaving data/other_data.hdf5: not a dataset" in printed
    assert "leaving runs/mine/: not a run folder" in printed
    assert "run again with --yes" in printed
    assert sorted(p for p in workdir.rglob("*")) == before


def test_yes_lists_first_then_deletes_only_what_the_toolkit_made(workdir: Path, capsys) -> None:
    (workdir / "runs" / "C1_sine" / "notes.txt").write_text("mine, inside a run folder")
    assert main(["--yes"]) == 0
    printed = capsys.readouterr().out
    assert printed.index("removing data/fm_data.hdf5 ") < printed.index("removed 7 item(s)")
    assert not (workdir / "data" / "fm_data.hdf5").exists()
    assert not (workdir / "data" / "fm_data.hdf5.index.npz").exists()
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    assert left == [
        "data", "data/look_data.hdf5", "data/notes.txt", "data/other_data.hdf5", "data/sub",
        "runs", "runs/C1_sine", "runs/C1_sine/notes.txt", "runs/mine", "runs/mine/precious.txt",
        "wavs",
    ]  # fmt: skip
    assert "leaving runs/C1_sine/notes.txt: not made by the toolkit" in printed
    assert main([]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_folders_left_empty_go_and_kinds_can_be_chosen(workdir: Path, capsys) -> None:
    for name in ("notes.txt", "look_data.hdf5", "other_data.hdf5", "sub"):
        path = workdir / "data" / name
        path.rmdir() if path.is_dir() else path.unlink()
    assert main(["data", "--yes"]) == 0
    assert not (workdir / "data").exists() and (workdir / "runs" / "C1_sine").is_dir()
    with pytest.raises(SystemExit) as exit_info:
        main(["everything"])
    assert exit_info.value.code == 2
    assert "unknown folder kind(s) ['everything']" in capsys.readouterr().err


def test_the_demo_folder_is_told_by_its_marker(workdir: Path, capsys) -> None:
    demo = workdir / "demo"
    _dataset(demo / "data" / "fm_demo_data.hdf5")
    _run_folder(demo / "runs" / "C6_fm_demo")
    for sub in ("sounds", "predictions"):
        (demo / sub).mkdir()
        (demo / sub / "a.wav").write_text("x")
    (demo / "my_mix.wav").write_text("mine")
    assert main(["demo", "--yes"]) == 0  # unmarked: its data and runs go, sounds stay
    printed = capsys.readouterr().out
    assert f"leaving demo/sounds/: no {DEMO_MARKER} beside it" in printed
    assert not (demo / "data").exists() and not (demo / "runs").exists()
    assert (demo / "sounds" / "a.wav").exists() and (demo / "my_mix.wav").exists()
    mark_demo_folder(demo)
    assert main(["demo", "--yes"]) == 0
    assert sorted(p.name for p in demo.iterdir()) == ["my_mix.wav"]


def test_comparison_files_go_and_nothing_else(workdir: Path) -> None:
    folder = workdir / "comparison"
    folder.mkdir()
    for name in (*COMPARISON_FILES, "draft.md"):
        (folder / name).write_text("x")
    assert main(["comparison", "--yes"]) == 0
    assert [p.name for p in folder.iterdir()] == ["draft.md"]


def test_a_linked_folder_keeps_its_link_and_what_it_points_at(
    workdir: Path, tmp_path: Path, monkeypatch
) -> None:
    elsewhere = tmp_path / "big_disk"
    elsewhere.mkdir()
    _dataset(elsewhere / "sine_data.hdf5")
    (elsewhere / "keep.txt").write_text("x")
    (workdir / "linked").symlink_to(elsewhere, target_is_directory=True)
    monkeypatch.setenv("INVERSYNTH_DATASET_DIRECTORY", "linked")
    assert main(["data", "--yes"]) == 0
    assert (workdir / "linked").is_symlink() and (elsewhere / "keep.txt").exists()
    assert not (elsewhere / "sine_data.hdf5").exists()


def test_what_is_being_written_is_left(workdir: Path, capsys) -> None:
    lock = workdir / "data" / "fm_data.hdf5.lock"
    run_lock = workdir / "runs" / "C1_sine" / ".lock"
    fds = [os.open(path, os.O_RDWR | os.O_CREAT) for path in (lock, run_lock)]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{os.getpid()}\n".encode())
        assert main(["--yes"]) == 0
    finally:
        for fd in fds:
            os.close(fd)
    printed = capsys.readouterr().out
    assert f"leaving data/fm_data.hdf5: being written by process {os.getpid()}" in printed
    assert "leaving runs/C1_sine/: a run in use by process" in printed
    assert (workdir / "data" / "fm_data.hdf5").exists()
    assert (workdir / "runs" / "C1_sine" / "model.keras").exists()


@pytest.mark.parametrize(
    ("variable", "value", "relation"),
    [
        ("DEMO_DIRECTORY", ".", "is the working folder"),
        ("DATASET_DIRECTORY", "..", "holds the working folder"),
        ("OUTPUT_DIR", "HOME", "is the home folder"),
        ("OUTPUT_DIR", "ABOVE_HOME", "holds the home folder"),
        ("DATASET_DIRECTORY", "PROJECT", "is the project"),
        ("OUTPUT_DIR", "/", "is the root folder"),
    ],
)
def test_folders_that_are_or_hold_the_project_home_or_root_are_refused(
    workdir: Path, tmp_path: Path, monkeypatch, capsys, variable: str, value: str, relation: str
) -> None:
    home = tmp_path / "users" / "me"
    (home / "docs").mkdir(parents=True)
    (home / "docs" / "precious.txt").write_text("mine")
    _dataset(home / "fm_data.hdf5")
    monkeypatch.setenv("HOME", str(home))
    project = Path(__file__).resolve().parents[1]
    shown = {"HOME": str(home), "ABOVE_HOME": str(home.parent), "PROJECT": str(project)}
    monkeypatch.setenv(f"INVERSYNTH_{variable}", shown.get(value, value))
    # --yes only where a failure of this test could cost nothing but its own folders.
    argv = [] if value in ("PROJECT", "/") else ["--yes"]
    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: INVERSYNTH_{variable}=") and relation in err
    assert (home / "docs" / "precious.txt").exists() and (home / "fm_data.hdf5").exists()
    assert (workdir / "data" / "fm_data.hdf5").exists() and (project / "README.md").exists()


def test_an_empty_variable_is_the_default_folder_not_the_working_folder(
    workdir: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVERSYNTH_OUTPUT_DIR", "")
    (workdir / ".env").write_text("INVERSYNTH_DATASET_DIRECTORY=\n")
    environment._dotenv.cache_clear()
    assert main(["--yes"]) == 0
    assert (workdir / "wavs").is_dir() and (workdir / ".env").exists()
    assert not (workdir / "runs" / "C1_sine").exists()
    assert not (workdir / "data" / "fm_data.hdf5").exists()


def _serve_folder(folder: Path, *, marked: bool) -> None:
    """A folder laid out as the matching page's: an upload waiting, a finished match."""
    (folder / "uploads" / "a1").mkdir(parents=True)
    (folder / "uploads" / "a1" / "tone.wav").write_text("x")
    (folder / "results" / "b2").mkdir(parents=True)
    (folder / "results" / "b2" / "tone.json").write_text("{}")
    if marked:
        (folder / SERVE_MARKER).write_text("")


def test_the_page_folder_is_told_by_its_marker_and_left_while_it_serves(
    workdir: Path, capsys
) -> None:
    from models.web.serve_folder import open_serve_folder
    from models.web.server import ServeSettings

    serve = workdir / "serve"
    _serve_folder(serve, marked=False)  # the same names, no marker: not the page's
    assert main(["serve", "--yes"]) == 0
    printed = capsys.readouterr().out
    assert (
        f"leaving serve/: no {SERVE_MARKER} in it: not a folder the matching page made" in printed
    )
    assert (serve / "uploads" / "a1" / "tone.wav").exists()
    assert (serve / "results" / "b2" / "tone.json").exists()

    (serve / SERVE_MARKER).write_text("")
    lock = open_serve_folder(ServeSettings(serve_dir=serve, runs_dir=workdir / "runs"))
    try:  # a page serving from it: left whole
        assert main(["serve", "--yes"]) == 0
    finally:
        lock.release()
    printed = capsys.readouterr().out
    assert f"leaving serve/: the matching page serves from it (process {os.getpid()})" in printed
    assert (serve / "results" / "b2" / "tone.json").exists()

    (serve / "my_notes.txt").write_text("mine")
    assert main(["serve"]) == 0
    printed = capsys.readouterr().out
    assert "would remove serve/results/ (the matching page's results; 1 file" in printed
    assert "leaving serve/my_notes.txt: not made by the toolkit" in printed
    assert main(["serve", "--yes"]) == 0
    assert sorted(p.name for p in serve.iterdir()) == ["my_notes.txt"]
    (serve / "my_notes.txt").unlink()
    _serve_folder(serve, marked=True)
    assert main(["--yes"]) == 0  # everything in it is the page's: the folder goes
    assert "removing serve/ (the matching page's uploads and results; 3 files" in (
        capsys.readouterr().out
    )
    assert not serve.exists()


def _match_files(folder: Path, stem: str) -> list[str]:
    """A match as predict writes it: its record names every file, itself included."""
    names = {"json": f"{stem}.json", "input": f"{stem}_input.wav",
             "resynthesis": f"{stem}_resynthesis.wav", "plot": f"{stem}.png"}  # fmt: skip
    for name in names.values():
        (folder / name).write_text("x")
    record = {"format_version": 2, "run": {}, "input": {}, "candidates": [], "files": names}
    (folder / names["json"]).write_text(json.dumps(record))
    return sorted(names.values())


def test_predicts_folder_is_told_by_its_marker_each_match_by_its_record(
    workdir: Path, capsys
) -> None:
    folder = workdir / "predictions"
    folder.mkdir()
    kick = _match_files(folder, "kick")
    (folder / "my_take.wav").write_text("mine")
    (folder / "notes.json").write_text(json.dumps({"format_version": 2, "files": {}}))
    assert main(["predictions", "--yes"]) == 0  # no marker: not known to be predict's
    printed = capsys.readouterr().out
    assert f"leaving predictions/: no {PREDICTIONS_MARKER} in it" in printed
    assert len(list(folder.iterdir())) == len(kick) + 2

    mark_predictions_folder(folder)
    assert main(["predictions"]) == 0
    printed = capsys.readouterr().out
    assert "would remove predictions/kick_resynthesis.wav (of the match kick.json" in printed
    assert "leaving predictions/my_take.wav: not made by the toolkit" in printed
    assert "leaving predictions/notes.json: not made by the toolkit" in printed
    assert main(["predictions", "--yes"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["my_take.wav", "notes.json"]

    for name in ("my_take.wav", "notes.json"):
        (folder / name).unlink()
    _match_files(folder, "pad")
    mark_predictions_folder(folder)
    assert main(["--yes"]) == 0  # only predict's matches in it: the folder goes
    assert "removing predictions/ (predict's matches; 5 files" in capsys.readouterr().out
    assert not folder.exists()


def test_no_marker_where_predict_wrote_nothing(workdir: Path) -> None:
    mark_predictions_folder(workdir / "predictions")  # nothing written: nothing made
    assert not (workdir / "predictions").exists()


def test_match_records_are_the_version_the_matching_side_writes() -> None:
    from models.matching.match_output import FORMAT_VERSION

    assert MATCH_RECORD_VERSION == FORMAT_VERSION


def test_run_folder_names_agree_with_the_training_side() -> None:
    from models.common import run

    names = {run.RUN_FILE, run.STATE_FILE, run.BEST_MODEL, run.LATEST_MODEL, run.HISTORY_FILE}
    assert names | {run.LOCK_FILE, run.EVALUATION_DIR} <= set(RUN_ENTRIES)
