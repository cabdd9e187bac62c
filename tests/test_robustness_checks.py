"""Nothing silently wrong: evaluations and models checked against their run, names escaped.

An evaluation folder is refused for another run than its own, a model for a
``run.json`` that does not describe it; names reach Markdown, HTML and figures
as typed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.commandline import run_cli
from core.errors import InverSynthError
from generators.sine_generator import SineGenerator
from models.common.run import BEST_MODEL, RUN_FILE, RunInfo
from models.evaluation.comparison import compare_runs, write_comparison
from models.evaluation.evaluation_folder import METRICS_FILE, RECONSTRUCTION_JSON
from models.evaluation.match_evaluation import MatchingOptions
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from tests.test_reconstruction import make_evaluated_run

HOSTILE = r"<img src=x onerror=alert(1)> | *$\foo$_"


def _cli_error(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a command prints for bad input (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two evaluated runs of the same synth and dataset: C6_sine and CE2E_sine."""
    root = tmp_path_factory.mktemp("identity")
    c6 = make_evaluated_run(root, model_name="C6", run_name="C6_sine", wrong_fraction=0.1)
    ce2e = make_evaluated_run(root, model_name="CE2E", run_name="CE2E_sine", wrong_fraction=0.6)
    evaluate_reconstruction(
        ce2e,
        ReconstructionOptions(
            workers=1, progress=False, quiet=True, matching=MatchingOptions(methods=())
        ),
    )
    return c6, ce2e


# --------------------------------------------------------------------------
# An evaluation folder is its run's
# --------------------------------------------------------------------------


def test_evaluations_record_their_run(two_runs: tuple[Path, Path]) -> None:
    _, ce2e = two_runs
    fingerprint = RunInfo.load(ce2e).fingerprint
    for name in (METRICS_FILE, RECONSTRUCTION_JSON):
        record = json.loads((ce2e / "evaluation" / name).read_text())
        assert record["run_fingerprint"] == fingerprint


def test_compare_refuses_another_runs_evaluation_naming_both(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.compare import main

    c6, ce2e = two_runs
    with pytest.raises(InverSynthError, match=r"is of run .*CE2E_sine.* not of run .*C6_sine"):
        compare_runs([c6], evaluation_name="../CE2E_sine/evaluation")
    line = _cli_error(main, [str(c6), "--evaluation_name", "../CE2E_sine/evaluation"], capsys)
    assert "CE2E_sine" in line and "C6_sine" in line
    # Each run's own folder is fine, and says nothing.
    assert [s.model for s in compare_runs([c6, ce2e])] == ["C6", "CE2E"]
    assert "warning" not in capsys.readouterr().err


def test_reconstruct_and_report_refuse_another_runs_evaluation(
    two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.reconstruct import main as reconstruct
    from models.report import main as report

    c6, ce2e = two_runs
    other = str(ce2e / "evaluation")
    for main in (reconstruct, report):
        line = _cli_error(main, [str(c6), "--evaluation_dir", other], capsys)
        assert "CE2E_sine" in line and "C6_sine" in line
    assert not (ce2e / "evaluation" / "report.html").exists()


def test_a_moved_run_keeps_its_evaluation(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    _, ce2e = two_runs
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(ce2e, moved)
    (summary,) = compare_runs([moved])  # metrics.json names the old folder: still this run
    assert summary.model == "CE2E" and summary.reconstruction is not None


def test_an_older_evaluation_without_its_run_is_used_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_evaluated_run(tmp_path, run_name="C6_old")
    metrics = run_dir / "evaluation" / METRICS_FILE
    data = json.loads(metrics.read_text())
    del data["run_fingerprint"]
    metrics.write_text(json.dumps(data))
    (summary,) = compare_runs([run_dir])
    assert summary.model == "C6"
    assert "does not record which run it is of" in capsys.readouterr().err


def test_an_evaluation_of_another_synth_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What differs is said; without a fingerprint, a provable mismatch is still refused."""
    from models.reconstruct import main as reconstruct

    ours = make_evaluated_run(tmp_path / "a", run_name="C6_sine")
    cases = (  # folder, levels, sample rate, what its records keep, the message
        ("C6_4levels", 4, 8192, "all", r"run fingerprint \w+, the run's \w+; levels \[4, 4\]"),
        ("C6_4levels_old", 4, 8192, "no fingerprint", r"has levels \[4, 4\], the run's \[8, 8\]"),
        ("C6_4096hz_old", 8, 4096, "no fingerprint", "has sample_rate 4096, the run's 8192"),
        ("C6_4levels_bare", 4, 8192, "no metrics", r"predictions of 2 parameters \(8 outputs\)"),
    )
    for name, n_levels, sample_rate, kept, expected in cases:
        synth = SineGenerator(sample_rate=sample_rate, n_samples=4096, n_levels=n_levels)
        theirs = make_evaluated_run(tmp_path / name, run_name=name, generator=synth)
        metrics = theirs / "evaluation" / METRICS_FILE
        data = json.loads(metrics.read_text())
        del data["run_fingerprint"]
        if kept == "no fingerprint":
            metrics.write_text(json.dumps(data))
        elif kept == "no metrics":
            metrics.unlink()
        argv = [str(ours), "--evaluation_dir", str(theirs / "evaluation"), "--no_chance"]
        line = _cli_error(reconstruct, argv, capsys)
        assert re.search(expected, line), (name, line)


def test_evaluate_does_not_replace_another_runs_evaluation_unasked(
    two_runs: tuple[Path, Path], tiny_c1_run: Path, tmp_path: Path
) -> None:
    from models.evaluation.run_evaluation import EvaluationOptions, evaluate_run

    _, ce2e = two_runs
    folder = tmp_path / "evaluation"
    shutil.copytree(ce2e / "evaluation", folder)
    with pytest.raises(InverSynthError, match=r"is of run .*CE2E_sine.*pass --overwrite"):
        evaluate_run(
            tiny_c1_run,
            EvaluationOptions(output_dir=folder, plots=False, progress=False, quiet=True),
        )
    result = evaluate_run(
        tiny_c1_run,
        EvaluationOptions(
            output_dir=folder, plots=False, progress=False, quiet=True, overwrite=True
        ),
    )
    assert result.metrics.run_fingerprint == RunInfo.load(tiny_c1_run).fingerprint
    assert not (folder / RECONSTRUCTION_JSON).exists()  # the other run's figures went with it


# --------------------------------------------------------------------------
# Names escaped
# --------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_names_are_escaped_in_the_comparison(tmp_path: Path) -> None:
    hostile = make_evaluated_run(tmp_path, run_name=HOSTILE)
    plain = make_evaluated_run(tmp_path, run_name="C1_plain", model_name="C1")
    files = write_comparison(compare_runs([hostile, plain]), tmp_path / "cmp")  # draws the plot
    markdown = files["markdown"].read_text()
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len({_unescaped_pipes(line) for line in table}) == 1  # no cell split by a name
    assert r"\*\$\\foo\$\_" in markdown
    assert "| C1_plain | C1 |" in markdown  # a plain name stays as typed
    assert files["plot"].read_bytes()[:4] == b"\x89PNG"


def test_names_are_escaped_in_the_listening_report(tmp_path: Path) -> None:
    from models.evaluation.listening_report import write_report

    run_dir = make_evaluated_run(tmp_path, run_name=HOSTILE, n_examples=12)
    evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True, chance=False)
    )
    page = write_report(run_dir, n_examples=1).read_text()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_file_name_with_dollars_draws_as_typed(tmp_path: Path) -> None:
    from models.matching.figures import plot_spectrograms

    sound = np.sin(np.linspace(0, 400, 4096)).astype(np.float32)
    out = plot_spectrograms(
        [sound, sound],
        labels=[r"in$\bar$", "match"],
        sample_rate=8192,
        out=tmp_path / "x.png",
        title=r"my$\foo$sound.wav",
    )
    assert Path(out).read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


# --------------------------------------------------------------------------
# A model and its run.json agree
# --------------------------------------------------------------------------


def _save_tiny_run(run_dir: Path, *, model_name: str = "C1", record: bool = True) -> Path:
    """A run folder of the sine synth (8192 Hz, 4096 samples) with an untrained model."""
    import keras

    from models.common.architectures import build_model
    from models.common.run import save_model_atomic

    info = RunInfo.load(run_dir)
    keras.utils.set_random_seed(0)
    model = build_model(
        model_name, n_levels=info.parameter_set.n_levels.tolist(), n_samples=info.n_samples,
        head=info.head, sample_rate=info.sample_rate,
    )  # fmt: skip
    if record:
        save_model_atomic(model, run_dir / BEST_MODEL)
    else:  # as models were saved before they carried a record
        model.save(run_dir / BEST_MODEL)
    return run_dir


@pytest.fixture(scope="module")
def tiny_c1_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("c1")
    return _save_tiny_run(make_evaluated_run(root, model_name="C1", run_name="C1_sine"))


def _edited(run_dir: Path, destination: Path, edit: Any) -> Path:
    """A copy of the run whose run.json ``edit(data)`` changed."""
    shutil.copytree(run_dir, destination)
    data = json.loads((destination / RUN_FILE).read_text())
    edit(data)
    (destination / RUN_FILE).write_text(json.dumps(data))
    return destination


def _drop_parameter(data: dict[str, Any]) -> None:
    data["parameter_set"]["parameters"].pop()


def _cut_level(data: dict[str, Any]) -> None:
    data["parameter_set"]["parameters"][0]["levels"].pop()


def _other_levels(data: dict[str, Any]) -> None:
    levels = data["parameter_set"]["parameters"][1]["levels"]
    levels[:] = [2 * x for x in levels]  # as many levels, other values


EDITS: dict[str, tuple[Any, str]] = {
    "sample_rate": (lambda d: d.update(sample_rate=44100), r"sample_rate: run\.json says 44100"),
    "n_samples": (lambda d: d.update(n_samples=2048), r"n_samples: run\.json says 2048"),
    "parameter": (_drop_parameter, "1 parameters have 8 one-hot outputs, the model gives 16"),
    "level": (_cut_level, "have 15 one-hot outputs, the model gives 16"),
    "levels": (_other_levels, "the levels or units of amplitude differ"),
    "synth": (lambda d: d.update(generator="fm"), r"generator: run\.json says 'fm'"),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_run_json_is_refused_naming_what_disagrees(
    tiny_c1_run: Path, tmp_path: Path, edit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.predict import main

    change, expected = EDITS[edit]
    run_dir = _edited(tiny_c1_run, tmp_path / "run", change)
    line = _cli_error(main, ["x.wav", "--run", str(run_dir)], capsys)
    assert re.search(expected, line) and "does not describe the model" in line


def test_an_exported_run_carries_the_record(tiny_c1_run: Path, tmp_path: Path) -> None:
    from models.common.pretrained import export_run
    from models.common.run import load_run

    exported = export_run(tiny_c1_run, tmp_path / "shipped")
    assert load_run(exported).sample_rate == 8192
    edited = _edited(exported, tmp_path / "edited", EDITS["sample_rate"][0])
    with pytest.raises(InverSynthError, match=r"sample_rate: run\.json says 44100"):
        load_run(edited)


def test_a_model_saved_without_a_record_is_checked_by_what_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.common.run import load_run

    m1 = make_evaluated_run(tmp_path / "m1", run_name="M1_sine", model_name="M1")
    _save_tiny_run(m1, model_name="M1", record=False)
    assert load_run(m1).model_name == "M1"
    assert "warning" not in capsys.readouterr().err  # its mel bands record the rate
    edited = _edited(m1, tmp_path / "edited", EDITS["sample_rate"][0])
    with pytest.raises(InverSynthError, match="log_mel layer was built for 8192 Hz"):
        load_run(edited)
    c1 = make_evaluated_run(tmp_path / "c1", run_name="C1_sine", model_name="C1")
    _save_tiny_run(c1, record=False)
    assert load_run(c1).model_name == "C1"
    assert "cannot be checked against the model" in capsys.readouterr().err


def test_the_shipped_model_refuses_an_edited_run_json(tmp_path: Path) -> None:
    from models.common.pretrained import PRETRAINED_FM_RUN
    from models.common.run import load_run

    for edit, expected in (
        ("sample_rate", "says 44100 Hz, the model's log_mel layer was built for 16384 Hz"),
        ("parameter", "22 parameters have 352 one-hot outputs, the model gives 368"),
        ("level", "23 parameters have 367 one-hot outputs, the model gives 368"),
    ):
        with pytest.raises(InverSynthError, match=expected):
            load_run(_edited(PRETRAINED_FM_RUN, tmp_path / edit, EDITS[edit][0]))


# --------------------------------------------------------------------------
# A damaged lookup index is rebuilt
# --------------------------------------------------------------------------


def _damage(path: Path, how: str) -> None:
    """Damage a stored lookup index in one of the ways a disk or a person does."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    if how == "garbage":
        path.write_bytes(b"not an index" * 100)
        return
    with np.load(path) as stored:
        key, features, labels = stored["key"], stored["features"], stored["labels"]
    if how == "narrow features":
        features = features[:, :-8]
    elif how == "rows missing":
        features, labels = features[:-3], labels[:-3]
    elif how == "labels out of range":
        labels = labels + 100
    elif how == "features not finite":
        features = features.copy()
        features[2, 5] = np.nan
    with open(path, "wb") as fh:  # the same key: only the arrays tell
        np.savez(fh, key=key, features=features, labels=labels)


DAMAGE = {
    "truncated": "BadZipFile|EOFError|ValueError",
    "garbage": "BadZipFile|ValueError",
    "narrow features": "features float16",
    "rows missing": "features float16",
    "labels out of range": "labels outside their parameters' levels",
    "features not finite": "features that are not finite",
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_lookup_index_is_rebuilt_saying_so(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from generators.dataset import open_dataset
    from models.matching.lookup import DatasetLookup
    from tests.test_matchers import make_dataset, sine

    gen = sine()
    path = make_dataset(tmp_path / "s_data.hdf5", gen)
    fresh = DatasetLookup.open(path, generator=gen)
    _damage(fresh.path, how)
    capsys.readouterr()
    again = DatasetLookup.open(path, generator=gen)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert re.search(f"warning: lookup index .* is damaged .*({DAMAGE[how]}).*rebuilding it", line)
    assert again.built
    with open_dataset(path) as dataset:
        audio, _ = dataset.read(np.arange(5))
    for sound in audio:
        np.testing.assert_array_equal(again.query(sound, k=3).rows, fresh.query(sound, k=3).rows)
    assert not DatasetLookup.open(path, generator=gen).built  # the rebuilt one was stored


def test_an_index_that_cannot_be_written_is_used_from_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from generators.dataset import open_dataset
    from models.matching.lookup import DatasetLookup, index_path
    from tests.test_matchers import make_dataset, sine

    gen = sine()
    path = make_dataset(tmp_path / "s_data.hdf5", gen)
    with open_dataset(path) as dataset:
        index_path(
            dataset
        ).mkdir()  # a folder where the index goes: it can be neither read nor written
        audio, labels = dataset.read(np.arange(3))
    lookup = DatasetLookup.open(path, generator=gen)
    err = capsys.readouterr().err
    assert "is damaged (IsADirectoryError" in err and "using the index built in memory" in err
    np.testing.assert_array_equal(lookup.query(audio[1], k=1).labels[0], labels[1])


# --------------------------------------------------------------------------
# Counts of the synth commands are bounded
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["check", "--examples", "100000000000"],
            r"--examples: expected an integer in \[1, 100000\]",
        ),
        (
            ["check", "--seed", "9" * 23],
            r"--seed: expected an integer in \[0, 9223372036854775807\]",
        ),
        (["check", "--sample_rate", "1000000000"], r"--sample_rate: expected an integer in \[1000"),
        (["check", "--length", "1e9"], r"--length: expected a number in \[0.001, 60\] s"),
        (["bank", "--bank", "x.syx", "--length", "1e9"], r"--length: expected a number in"),
    ],
)
def test_the_dexed_commands_bound_their_counts(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from generators.dexed.commands import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(expected, capsys.readouterr().err)


def test_a_check_renders_at_most_a_gibibyte(capsys: pytest.CaptureFixture[str]) -> None:
    if not os.environ.get("CI"):  # CI installs the extra: a skip there would hide its absence
        pytest.importorskip("dexed")
    from generators.dexed.commands import main

    line = _cli_error(main, ["check", "--examples", "100000", "--length", "10"], capsys)
    assert "61.0 GiB of audio; at most 1 GiB is rendered at once" in line


def test_the_plugin_check_bounds_its_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from generators.vst.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--config", "plugin_config/amsynth.json", "--examples", "99999999999"])
    assert exit_info.value.code == 2
    assert "--examples: expected an integer in [1, 100000]" in capsys.readouterr().err
