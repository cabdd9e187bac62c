"""Shared command-line behaviour: .env defaults, one-line errors, the start task."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators import cli, options, schema
from generators.errors import InverSynthError
from generators.start import start


@pytest.fixture(autouse=True)
def _fresh_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    cli._dotenv.cache_clear()
    yield
    cli._dotenv.cache_clear()


def test_env_file_sets_defaults_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_SEED=12\nINVERSYNTH_WRITE_WAVS=yes\n")
    assert cli.env_default("SEED", 0) == 12
    assert cli.env_default("WRITE_WAVS", False) is True
    assert cli.env_default("WORKERS", 3) == 3
    monkeypatch.setenv("INVERSYNTH_SEED", "40")
    assert cli.env_default("SEED", 0) == 40


def test_malformed_env_value_names_the_variable_and_value(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_NUM_EXAMPLES=lots\n")
    with pytest.raises(InverSynthError, match=r"INVERSYNTH_NUM_EXAMPLES in \.env: .*'lots'"):
        cli.env_default("NUM_EXAMPLES", 10)


def test_command_line_overrides_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("INVERSYNTH_NUM_EXAMPLES=77\nINVERSYNTH_NAME=envname\n")
    parser = cli.make_parser()
    options.add_dataset_arguments(parser, default_name="x")
    args = parser.parse_args([])
    assert (args.num_examples, args.name) == (77, "envname")
    args = parser.parse_args(["--num_examples", "5"])
    assert args.num_examples == 5


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/8", (2, 8))])
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    assert options.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0"])
def test_parse_shard_refuses_bad_values(text: str) -> None:
    with pytest.raises(InverSynthError, match="shard"):
        options.parse_shard(text)


def test_shard_file_names() -> None:
    assert schema.dataset_path(Path("d"), "fm") == Path("d/fm_data.hdf5")
    assert schema.dataset_path(Path("d"), "fm", (3, 12)) == Path("d/fm_data.shard-03-of-12.hdf5")


def test_run_cli_turns_package_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def failing(argv: object) -> int:
        raise InverSynthError("--num_examples must be > 0, got -3")

    with pytest.raises(SystemExit) as exit_info:
        cli.run_cli(failing, [])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --num_examples must be > 0, got -3\n"


def test_argparse_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.make_parser(prog="prog")
    options.add_dataset_arguments(parser, default_name="x")
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


def test_env_example_documents_every_variable_the_code_reads() -> None:
    repo = Path(__file__).resolve().parents[1]
    example = (repo / ".env.example").read_text()
    import re

    used: set[str] = set()
    for source in list((repo / "generators").rglob("*.py")) + list((repo / "models").rglob("*.py")):
        text = source.read_text()
        used |= set(re.findall(r'env_default\(\s*"([A-Z_]+)"', text))
        # Shared options name their variable as an argument: env="SEED".
        used |= set(re.findall(r'\benv(?:: [^=\n]*)?\s*=\s*"([A-Z_]+)"', text))
        used |= set(re.findall(r'model_env="([A-Z_]+)"', text))
    missing = sorted(name for name in used if f"INVERSYNTH_{name}=" not in example)
    assert used and not missing, f"not documented in .env.example: {missing}"
