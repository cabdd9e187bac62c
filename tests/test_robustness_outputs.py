"""Where commands write: nothing replaced that the toolkit did not make, names and paths kept inside
their folders, bad paths and absurd counts refused in one line that says what is wrong."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from core import commandline, environment
from core.commandline import run_cli
from models.common.pretrained import PRETRAINED_FM_RUN

NEKOBI = "/usr/lib/vst/Nekobi-vst.so"
Main = Callable[[Sequence[str] | None], int]


@pytest.fixture(autouse=True)
def _no_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("INVERSYNTH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env here
    environment._dotenv.cache_clear()
    yield
    environment._dotenv.cache_clear()


def one_line_error(main: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The command's error line; it must end the command with exit code 2 and nothing else."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: ")
    return err.strip()


def _snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---- export_run: only an earlier export is ever replaced ---------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Two run folders, copies of the shipped one, with an evaluation folder each."""
    folder = tmp_path / "runs"
    for name in ("M1_fm", "M1_other"):
        shutil.copytree(PRETRAINED_FM_RUN, folder / name)
        (folder / name / "evaluation").mkdir()
        (folder / name / "evaluation" / "metrics.json").write_text("{}")
    return folder


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("runs", "holds the run"),
        (".", "holds the run"),
        ("runs/M1_fm", "onto itself"),
        ("runs/M1_fm/evaluation", "is inside the run"),
        ("runs/M1_other", "is not an earlier export (it holds evaluation/)"),
        ("shipped", "is not an earlier export (it holds fm_M1/)"),
        ("notes.txt", "is a file, not a folder"),
        ("linked", "is a link"),
        ("notes.txt/export", "'notes.txt' is a file"),
    ],
)
def test_export_run_overwrites_nothing_but_an_earlier_export(
    runs: Path, tmp_path: Path, capsys, destination: str, message: str
) -> None:
    from models.export_run import main

    shutil.copytree(PRETRAINED_FM_RUN, tmp_path / "shipped" / "fm_M1")  # models/pretrained's shape
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "linked").symlink_to(tmp_path / "shipped", target_is_directory=True)
    before = _snapshot(tmp_path)
    err = one_line_error(main, ["runs/M1_fm", destination, "--overwrite"], capsys)
    assert message in err
    assert _snapshot(tmp_path) == before


def test_export_run_replaces_an_earlier_export_and_refuses_once_it_holds_more(
    runs: Path, tmp_path: Path, capsys
) -> None:
    from models.export_run import main

    assert main(["runs/M1_fm", "export"]) == 0
    assert "exists; pass --overwrite" in one_line_error(main, ["runs/M1_fm", "export"], capsys)
    (tmp_path / "export").chmod(0o555)
    try:
        err = one_line_error(main, ["runs/M1_other", "export", "--overwrite"], capsys)
    finally:
        (tmp_path / "export").chmod(0o755)
    assert "'export' is not writable" in err
    (tmp_path / "export" / "my_notes.txt").write_text("mine")
    err = one_line_error(main, ["runs/M1_other", "export", "--overwrite"], capsys)
    assert "not an earlier export (it holds my_notes.txt)" in err
    (tmp_path / "export" / "my_notes.txt").unlink()
    assert main(["runs/M1_other", "export", "--overwrite"]) == 0
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(
        p.name for p in PRETRAINED_FM_RUN.iterdir()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export")]


# ---- a run that is a file, an output folder under a file -----------------------------


def _command(name: str) -> Main:
    import importlib

    main: Main = importlib.import_module(f"models.{name}").main
    return main


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("predict", ["sound.wav", "--run", "RUN"]),
        ("evaluate", ["RUN"]),
        ("reconstruct", ["RUN"]),
        ("report", ["RUN"]),
        ("compare", ["RUN"]),
        ("export_run", ["RUN", "exported"]),
    ],
)
def test_a_run_that_is_a_file_is_named_as_one(
    tmp_path: Path, capsys, command: str, argv: list[str]
) -> None:
    (tmp_path / "run_file").write_text("not a run folder")
    argv = [str(tmp_path / "run_file") if a == "RUN" else a for a in argv]
    err = one_line_error(_command(command), argv, capsys)
    assert f"run folder '{tmp_path / 'run_file'}' is a file, not a folder" in err


@pytest.mark.parametrize(
    ("command", "argv", "option"),
    [
        ("spectrogram_cnn", ["--dataset_name", "fm"], "--output_dir"),
        ("evaluate", [str(PRETRAINED_FM_RUN)], "--output_dir"),
        ("predict", ["sound.wav"], "--output_dir"),
        ("compare", [str(PRETRAINED_FM_RUN)], "--output_dir"),
        ("demo", [], "--output_dir"),
        ("report", [str(PRETRAINED_FM_RUN)], "--output"),
    ],
)
def test_an_output_path_under_a_file_says_so(
    tmp_path: Path, capsys, command: str, argv: list[str], option: str
) -> None:
    (tmp_path / "somefile").write_text("x")
    main = _command(command)
    err = one_line_error(main, [*argv, option, "somefile/sub"], capsys)
    assert "cannot create 'somefile/sub': 'somefile' is a file" in err
    if option == "--output_dir":
        err = one_line_error(main, [*argv, option, "somefile"], capsys)
        assert "'somefile' is a file, not a folder" in err


# ---- names that would leave their folder ---------------------------------------------


@pytest.mark.parametrize("name", ["../../escape_run", ".", "..", "a/b", ".hidden", " padded"])
def test_a_run_name_is_a_plain_name(tmp_path: Path, capsys, name: str) -> None:
    from models.common.training import TrainConfig
    from models.spectrogram_cnn import main

    argv = ["--dataset_name", "fm", "--output_dir", "runs", "--run_name", name]
    err = one_line_error(main, argv, capsys)
    assert "a run name must be a plain name" in err and "--output_dir" in err
    assert not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []
    config = TrainConfig(model="C6", dataset=["fm_data.hdf5"], run_name=name)
    with pytest.raises(commandline.InverSynthError, match="a run name must be a plain name"):
        config.validate()  # the library refuses it too


# ---- absurd counts of the training command -------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--examples_per_epoch", str(10**20)),
        ("--examples_per_epoch", "1000000001"),
        ("--epochs", "100001"),
        ("--batch_size", "65537"),
        ("--patience", str(10**12)),
        ("--max_examples", str(10**15)),
        ("--seed", str(2**32)),
        ("--time_limit_s", "1e12"),
        ("--learning_rate", "5"),
    ],
)
def test_absurd_training_counts_are_refused_at_once(capsys, option: str, value: str) -> None:
    from models.spectrogram_cnn import main

    err = one_line_error(main, ["--dataset_name", "fm", "--stream", option, value], capsys)
    assert f"argument {option}: expected" in err or f"argument {option}: must be" in err


# ---- describe: a config edited by hand is never overwritten unasked -------------------


def test_describe_refuses_an_existing_file_before_loading_the_plugin(
    tmp_path: Path, capsys
) -> None:
    from generators.vst.cli import main

    mine = tmp_path / "mine.json"
    mine.write_text('{"plugin": "edited by hand"}\n')
    argv = ["describe", "--plugin", str(tmp_path / "no_such_plugin.so"), "--output", str(mine)]
    err = one_line_error(main, argv, capsys)
    assert "exists (perhaps a config edited by hand); pass --overwrite" in err
    assert mine.read_text() == '{"plugin": "edited by hand"}\n'
    (tmp_path / "folder.json").mkdir()
    argv[-1] = str(tmp_path / "folder.json")
    assert "is a folder, not a file" in one_line_error(main, argv, capsys)


def test_describe_overwrite_replaces_the_file_whole(tmp_path: Path, capsys) -> None:
    from generators.vst.cli import main

    if not Path(NEKOBI).exists():
        message = f"{NEKOBI} not installed: apt-get install -y dpf-plugins-vst"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    mine = tmp_path / "mine.json"
    mine.write_text("{}\n")
    assert main(["describe", "--plugin", NEKOBI, "--output", str(mine), "--overwrite"]) == 0
    assert '"fixed_parameters"' in mine.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["mine.json"]  # no temporary file left
