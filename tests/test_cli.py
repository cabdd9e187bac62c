"""Shared command-line behaviour: .env defaults, one-line errors, the start task."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import commandline, environment
from core.errors import InverSynthError
from generators import dataset_options, schema
from generators.start import start

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    environment._dotenv.cache_clear()
    yield
    environment._dotenv.cache_clear()


def test_env_file_sets_defaults_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_SEED=12\nINVERSYNTH_WRITE_WAVS=yes\n")
    assert environment.env_default("SEED", 0) == 12
    assert environment.env_default("WRITE_WAVS", False) is True
    assert environment.env_default("WORKERS", 3) == 3
    monkeypatch.setenv("INVERSYNTH_SEED", "40")
    assert environment.env_default("SEED", 0) == 40


def test_malformed_env_value_names_the_variable_and_value(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_NUM_EXAMPLES=lots\n")
    with pytest.raises(InverSynthError, match=r"INVERSYNTH_NUM_EXAMPLES in \.env: .*'lots'"):
        environment.env_default("NUM_EXAMPLES", 10)


def test_command_line_overrides_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_NUM_EXAMPLES=77\nINVERSYNTH_NAME=envname\n")
    parser = commandline.make_parser()
    dataset_options.add_dataset_arguments(parser, default_name="x")
    args = parser.parse_args([])
    assert (args.num_examples, args.name) == (77, "envname")
    args = parser.parse_args(["--num_examples", "5"])
    assert args.num_examples == 5


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/8", (2, 8))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert dataset_options.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_parse_shard_refuses_bad_values(text: str) -> None:
    with pytest.raises(InverSynthError, match="shard"):
        dataset_options.parse_shard(text)


def test_shard_file_names() -> None:
    assert schema.dataset_path(Path("d"), "fm") == Path("d/fm_data.hdf5")
    assert schema.dataset_path(Path("d"), "fm", (3, 12)) == Path("d/fm_data.shard-03-of-12.hdf5")


def test_run_cli_turns_package_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(argv: object) -> int:
        raise InverSynthError("--num_examples must be > 0, got -3")

    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(failing, [])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --num_examples must be > 0, got -3\n"


def test_argparse_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    parser = commandline.make_parser(prog="prog")
    dataset_options.add_dataset_arguments(parser, default_name="x")
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--num_examples", "-3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error:") and "-3" in err


def test_start_creates_folders_and_never_overwrites_env(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("INVERSYNTH_SEED=1\n")
    start(tmp_path)
    assert all((tmp_path / name).is_dir() for name in ("data", "runs", "wavs"))
    assert (tmp_path / ".env").read_text() == "INVERSYNTH_SEED=1\n"
    (tmp_path / ".env").write_text("INVERSYNTH_SEED=99\n")
    start(tmp_path)
    assert (tmp_path / ".env").read_text() == "INVERSYNTH_SEED=99\n"


def _variables_the_code_reads() -> set[str]:
    """Every INVERSYNTH_ name an option reads: env_default("X", ...) and env="X" keywords."""
    used: set[str] = set()
    for source in [
        p for package in ("core", "generators", "models") for p in (REPO / package).rglob("*.py")
    ]:
        text = source.read_text()
        used |= set(re.findall(r'env_default\(\s*"([A-Z0-9_]+)"', text))
        # Shared options name their variable as an argument: env="SEED".
        used |= set(re.findall(r'\benv(?:: [^=\n]*)?\s*=\s*"([A-Z0-9_]+)"', text))
        used |= set(re.findall(r'model_env="([A-Z0-9_]+)"', text))
    return {f"INVERSYNTH_{name}" for name in used}


def test_env_example_documents_exactly_the_variables_the_code_reads() -> None:
    used = _variables_the_code_reads()
    documented = environment.known_variables()
    assert used and documented == used, (
        f"read but not in .env.example: {sorted(used - documented)}; "
        f"in .env.example but read by no option: {sorted(documented - used)}"
    )


# ---- empty, unreadable and unknown variables ---------------------------------------


def test_an_empty_variable_is_unset_in_the_environment_and_in_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_DATASET_DIRECTORY=\nINVERSYNTH_SEED=7\n")
    monkeypatch.setenv("INVERSYNTH_SEED", "")
    monkeypatch.setenv("INVERSYNTH_OUTPUT_DIR", " ")
    assert environment.env_default("DATASET_DIRECTORY", Path("data"), Path) == Path("data")
    assert environment.env_default("OUTPUT_DIR", Path("runs"), Path) == Path("runs")
    assert environment.env_value("DATASET_DIRECTORY") is None
    assert environment.env_default("SEED", 0) == 7  # an empty environment value does not hide .env
    parser = commandline.make_parser()
    dataset_options.add_dataset_arguments(parser, default_name="x")
    assert parser.parse_args([]).dataset_directory == Path("data")


@pytest.mark.parametrize("kind", ["folder", "broken link"])
def test_a_dotenv_that_is_not_a_file_is_an_error(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        (tmp_path / ".env").mkdir()
    else:
        (tmp_path / ".env").symlink_to(tmp_path / "gone")
    expected = "is not a file" if kind == "folder" else "is a broken link"
    with pytest.raises(InverSynthError, match=expected):
        environment.env_default("SEED", 0)


def test_a_line_of_nul_bytes_is_an_error_naming_its_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"INVERSYNTH_SEED=3\n\0\0\0\0\nINVERSYNTH_WORKERS=1\n")
    with pytest.raises(InverSynthError, match=r"^\.env line 2: .*NUL"):
        environment.env_default("SEED", 0)


def test_a_misspelt_variable_is_named_with_the_closest_known_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generators.fm_generator import main

    (tmp_path / ".env").write_text("# mine\nINVERSYNTH_SEED=3\n\nINVERSYNTH_NUM_EXAMPLE=200\n")
    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, ["--num_examples", "4", "--no_progress"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "INVERSYNTH_NUM_EXAMPLE (in .env line 4); did you mean INVERSYNTH_NUM_EXAMPLES?" in err
    assert not (tmp_path / "data").exists()  # refused before anything was written
    (tmp_path / ".env").write_text("INVERSYNTH_SEED=3\n")
    environment._dotenv.cache_clear()
    monkeypatch.setenv("INVERSYNTH_WORKRES", "2")
    with pytest.raises(InverSynthError, match=r"WORKRES \(in the environment\); did you mean "):
        commandline.make_parser()
    monkeypatch.delenv("INVERSYNTH_WORKRES")
    commandline.make_parser()  # every variable known: no error


@pytest.mark.parametrize(
    ("line", "variable"),
    [
        ("INVERSYNTH_HEAD=sigmod", "INVERSYNTH_HEAD"),
        ("INVERSYNTH_DATA_FORMAT=NHWC", "INVERSYNTH_DATA_FORMAT"),
        ("INVERSYNTH_SPLIT=0.8,0.2", "INVERSYNTH_SPLIT"),
        ("INVERSYNTH_RUN_NAME=../../escape_run", "INVERSYNTH_RUN_NAME"),
    ],
)
def test_a_bad_training_variable_is_named_before_tensorflow_loads(
    tmp_path: Path, line: str, variable: str
) -> None:
    (tmp_path / ".env").write_text(f"# defaults\n{line}\n")
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('tensorflow' in sys.modules, file=sys.stderr))\n"
        "from core.commandline import run_cli\n"
        "from models.spectrogram_cnn import main\n"
        "run_cli(main, ['--dataset_name', 'fm'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("INVERSYNTH_")}
        | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    error, tensorflow_loaded = done.stderr.strip().split("\n")
    assert done.returncode == 2 and error.startswith(f"error: {variable} in .env: ")
    assert error.endswith("(.env line 2)")
    assert not re.search(r"argument --|--(head|data_format|split|run_name)\b", error)
    assert tensorflow_loaded == "False"
