"""The whole path in a few minutes on a laptop CPU (``python -m models.demo``).

:func:`run_demo`

1. makes a small dataset of the paper's FM synth (``{output_dir}/data``);
2. trains the paper's C6 on it for a few epochs (``{output_dir}/runs/C6_fm_demo``);
3. evaluates it on the held-out test split (the paper's metrics, Table 3);
4. resynthesizes every test prediction and measures it (Table 4), and
   matches a few test sounds with the network alone and with ``hybrid``;
5. matches a few held-out sounds, written as WAV files, and one sound the
   synth did not make (a 44.1 kHz stereo plucked string), as
   ``python -m models.predict`` does (``{output_dir}/predictions``), with the
   ``hybrid`` method (:data:`DEMO_BUDGET_RENDERS` renders each, about 1 s),
   printing the network's guess beside the match;
6. writes the listening report (``.../evaluation/report.html``);

and prints where everything is. An earlier demo in the same folder is kept: the
demo refuses to replace it, naming what it would delete, unless ``--overwrite``. A model trained this briefly on this little
data is far from the paper's (200,000 examples, 100 epochs); the point is to
see every step work, and to get the commands for the real thing.

:func:`run_pretrained_demo` matches new FM sounds and the plucked string with
the shipped model, in a folder of its own (``{output_dir}/pretrained``), so it
runs after :func:`run_demo` in the same ``output_dir``, and before it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from core.checks import check_positive_int
from core.errors import InverSynthError
from core.storage import write_atomic
from generators.fm_generator import FMGenerator
from generators.outputs import mark_demo_folder
from generators.parameters import ALL_GROUP
from generators.schema import dataset_path
from generators.sine_generator import SineGenerator
from generators.sound_generator import load_generator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.paper import PAPER_EPOCHS, PAPER_EXAMPLES, PAPER_MPR, describes
from models.common.pretrained import pretrained_run_dir
from models.common.run import (
    BEST_MODEL,
    EVALUATION_DIR,
    HISTORY_FILE,
    LATEST_MODEL,
    RUN_FILE,
    STATE_FILE,
    Run,
    load_run,
)
from models.common.training import TrainConfig, train
from models.evaluation.evaluation_folder import METRICS_FILE, RECONSTRUCTION_JSON
from models.evaluation.listening_report import write_report
from models.evaluation.match_evaluation import MatchingOptions
from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
from models.evaluation.run_evaluation import EvaluationOptions, evaluate_run
from models.matching.audio_io import write_wav
from models.matching.legend import legend_lines, with_descriptions
from models.matching.match_settings import MatchSettings
from models.matching.match_sounds import match_and_write, run_matcher
from models.matching.match_text import format_prediction, listening_summary, true_class_note
from models.matching.objective import DEFAULT_BUDGET_RENDERS, Budget
from models.matching.prediction import predict_file

__all__ = [
    "DEMO_BUDGET_RENDERS",
    "DEMO_SYNTHS",
    "HELD_OUT_SEED",
    "PRETRAINED_DEMO_DIR",
    "DemoOptions",
    "DemoResult",
    "plucked_string",
    "run_demo",
    "run_pretrained_demo",
]

# The paper's synth, or the one-sine toy synth (for a quick check).
DEMO_SYNTHS = (FMGenerator.name, SineGenerator.name)
RUN_NAME_SUFFIX = "demo"
# Renders of hybrid matching per sound: half the default, about 1 s, keeps the demo short
# and gives the same matches on any machine.
DEMO_BUDGET_RENDERS = DEFAULT_BUDGET_RENDERS // 2
PRETRAINED_DEMO_DIR = "pretrained"  # the --pretrained demo's own folder in the demo's
DEMO_MATCH_EXAMPLES = 8  # test sounds matched by each method in the reconstruction table
HELD_OUT_SEED = 987654  # new sounds for --pretrained: no training set uses this seed


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def plucked_string(
    *, sample_rate: int = 44100, seconds: float = 1.5, freq_hz: float = 392.0
) -> np.ndarray:
    """A Karplus-Strong plucked string, stereo: a sound from outside the synth.

    Returns
    -------
    audio : np.ndarray [n_samples, 2], float32
    """
    n = round(sample_rate * seconds)
    period = round(sample_rate / freq_hz)
    rng = np.random.default_rng(7)
    buffer = rng.uniform(-1.0, 1.0, period)
    out = np.empty(n)
    for i in range(n):
        out[i] = buffer[i % period]
        buffer[i % period] = 0.996 * 0.5 * (buffer[i % period] + buffer[(i + 1) % period])
    out *= 0.8 / np.max(np.abs(out))
    return np.stack([out, 0.9 * out], axis=1).astype(np.float32)


class _Stages:
    """Wall time of each step, printed as it finishes."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.times: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, title: str, key: str) -> Iterator[None]:
        """Print ``title``, run the step, print and keep its wall time as ``key``."""
        print(f"\n=== {title}", flush=True)
        started = time.monotonic()
        yield
        self.times[key] = time.monotonic() - started
        print(f"--- {key}: {_minutes(self.times[key])}", flush=True)

    @property
    def total(self) -> float:
        return time.monotonic() - self.start


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` made, and the figures it printed."""

    dataset: Path
    run_dir: Path
    report: Path
    predictions_dir: Path
    mpr: float  # mean percentile rank over all parameters
    rho_stft: float | None  # mean over the test sounds, model
    rho_stft_chance: float | None  # the same for random patches
    seconds: dict[str, float] = field(default_factory=dict)  # per step, and "total"


@dataclass(frozen=True, kw_only=True)
class DemoOptions:
    """What :func:`run_demo` makes and how.

    Parameters
    ----------
    output_dir : path
        Everything goes here.
    synth : {"fm", "sine"}
        The paper's FM synth, or the one-sine toy synth (for a quick check).
    model : str
        Architecture (C1-C6, C6XL, CE2E, CE2E_2D).
    num_examples, epochs, batch_size : int
        Dataset size (split 80/10/10), training epochs, minibatch.
    workers : int
        Rendering processes.
    n_matches : int
        Held-out test sounds matched as files.
    n_report : int
        Test sounds in the listening report.
    seed : int
        Dataset and training seed.
    overwrite : bool
        Replace the outputs of an earlier demo in ``output_dir`` (its dataset,
        run folder with everything in it, sounds and predictions); without it
        their presence is an error that names them.
    budget_renders : int
        Renders of hybrid matching per sound (the matching table and the sounds).
    """

    output_dir: str | Path = "demo"
    synth: str = FMGenerator.name
    model: str = "C6"
    num_examples: int = 2000
    epochs: int = 8
    batch_size: int = 16
    workers: int = 2
    n_matches: int = 3
    n_report: int = 6
    seed: int = 0
    overwrite: bool = False
    budget_renders: int = DEMO_BUDGET_RENDERS

    def check(self) -> None:
        """Refuse a bad option before anything is made."""
        positive = {
            "num_examples": self.num_examples,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "workers": self.workers,
            "n_matches": self.n_matches,
            "n_report": self.n_report,
            "budget_renders": self.budget_renders,
        }
        _check_options(synth=self.synth, num_examples=self.num_examples, positive=positive)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / "runs" / f"{self.model}_{self.synth}_{RUN_NAME_SUFFIX}"


def _check_options(*, synth: str, num_examples: int, positive: dict[str, int]) -> None:
    for name, value in positive.items():
        if int(value) != value or value <= 0:
            raise InverSynthError(f"--{name} must be a positive integer, got {value!r}")
    if num_examples < 50:
        raise InverSynthError(f"--num_examples must be at least 50, got {num_examples}")
    if synth not in DEMO_SYNTHS:
        raise InverSynthError(f"--synth must be one of {', '.join(DEMO_SYNTHS)}, got {synth!r}")


def _earlier_outputs(out: Path, run_dir: Path, data_path: Path) -> list[Path]:
    """What an earlier demo left in ``out`` that this one would replace."""
    found = [data_path, run_dir, out / "sounds", out / "predictions"]
    return [p for p in found if p.exists()]


def _extras(run_dir: Path) -> list[str]:
    """Entries of an earlier demo's run folder that the demo does not make (user's own)."""
    made = {RUN_FILE, BEST_MODEL, LATEST_MODEL, STATE_FILE, HISTORY_FILE, EVALUATION_DIR}
    if not run_dir.is_dir():
        return []
    return sorted(
        p.name + ("/" if p.is_dir() else "") for p in run_dir.iterdir() if p.name not in made
    )


def _clear_earlier_run(out: Path, run_dir: Path, data_path: Path, *, overwrite: bool) -> None:
    """Remove an earlier demo's outputs when ``overwrite``; otherwise refuse, naming them.

    A folder where the run goes that is not a run folder is refused either way.
    """
    if run_dir.exists() and not (run_dir / RUN_FILE).is_file():
        raise InverSynthError(
            f"{str(run_dir)!r} exists but is not a run folder; move it or choose another "
            "--output_dir"
        )
    _clear_outputs(out, _earlier_outputs(out, run_dir, data_path), _extras(run_dir), overwrite)


def _clear_outputs(out: Path, earlier: list[Path], extras: list[str], overwrite: bool) -> None:
    """Remove ``earlier`` outputs when ``overwrite``; otherwise refuse, naming them."""
    if not earlier:
        return
    names = ", ".join(str(p.relative_to(out)) + ("/" if p.is_dir() else "") for p in earlier)
    own = f" (the run folder also holds {', '.join(extras)})" if extras else ""
    if not overwrite:
        raise InverSynthError(
            f"{str(out)!r} holds an earlier demo: {names}{own}; pass --overwrite to replace "
            "it, or choose another --output_dir"
        )
    print(f"replacing the earlier demo in {out}/: {names}{own}")
    for path in earlier:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _make_dataset(out: Path, synth: str, num_examples: int, *, seed: int, workers: int) -> Path:
    generator = load_generator(synth, {})
    data_path = dataset_path(out / "data", f"{synth}_{RUN_NAME_SUFFIX}")
    try:
        DatasetCreator(
            generator,
            path=data_path,
            plan=DatasetPlan(n_examples=num_examples, seed=seed),
            workers=workers,
        ).run(overwrite=True)
    finally:
        generator.close()
    print(f"dataset: {data_path}")
    return data_path


def _train(data_path: Path, run_dir: Path, options: DemoOptions) -> None:
    config = TrainConfig(
        model=options.model,
        dataset=[str(data_path)],
        output_dir=run_dir.parent,
        run_name=run_dir.name,
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        patience=0,
        verbose=2,
    )
    train(config)


def _write_test_sounds(run: Run, sounds_dir: Path, n_matches: int) -> list[tuple[Path, Any]]:
    """Held-out test sounds as WAV files, and the foreign sound: (path, true indices or None)."""
    sounds_dir.mkdir(parents=True, exist_ok=True)
    test_indices = run.split.indices("test")
    picks = test_indices[np.linspace(0, test_indices.size - 1, n_matches).astype(int)]
    with run.open_dataset() as dataset:
        audio, labels = dataset.read(picks)
    paths: list[tuple[Path, Any]] = []
    for i, index in enumerate(picks):
        path = write_wav(sounds_dir / f"test_{int(index):06d}.wav", audio[i], run.sample_rate)
        paths.append((path, labels[i]))
    return [*paths, _write_foreign_sound(sounds_dir)]


def _write_foreign_sound(sounds_dir: Path) -> tuple[Path, None]:
    """The plucked string as a 44.1 kHz stereo WAV: a sound the synth did not make."""
    foreign = sounds_dir / "plucked_string_44k_stereo.wav"
    buffer = io.BytesIO()
    sf.write(buffer, plucked_string(), 44100, subtype="PCM_16", format="WAV")
    write_atomic(foreign, buffer.getvalue())
    return foreign, None


def _write_held_out_sounds(
    run: Run, sounds_dir: Path, n_sounds: int, *, seed: int
) -> list[tuple[Path, Any]]:
    """``n_sounds`` new patches of the run's synth (``seed``) as WAV files, and the foreign one."""
    sounds_dir.mkdir(parents=True, exist_ok=True)
    with run.make_generator() as generator:
        rendered = generator.render_examples(seed=seed, start=0, n_examples=n_sounds)
    paths: list[tuple[Path, Any]] = []
    for i, index in enumerate(rendered.indices):
        path = write_wav(sounds_dir / f"seed{seed}_{i:03d}.wav", rendered.audio[i], run.sample_rate)
        paths.append((path, index))
    return [*paths, _write_foreign_sound(sounds_dir)]


def _match_sounds(
    run: Run, sounds: list[tuple[Path, Any]], predictions_dir: Path, *, budget_renders: int
) -> None:
    """Match every sound as ``python -m models.predict`` does (hybrid, ``budget_renders`` each).

    Prints the first and the foreign sound in full, how close the network's guess and the
    hybrid match sound for the others.
    """
    synth = run.make_generator()
    try:
        matcher = run_matcher(
            run, generator=synth, exclude_rows=run.split.indices("test")
        )  # the default method, hybrid
        if matcher.lookup_record is not None:
            print(f"lookup: {matcher.lookup_record.dataset}")
        for note in matcher.notes:
            print(f"note: {note}")
        for n, (path, true) in enumerate(sounds):
            prediction = predict_file(run, path, generator=synth)
            prediction.true_indices = true
            settings = MatchSettings(seed=n, budget=Budget(renders=budget_renders, seconds=None))
            outcome = match_and_write(
                run, prediction, matcher=matcher, output_dir=predictions_dir, stem=path.stem,
                settings=settings,
            )  # fmt: skip
            match = outcome.match
            print()
            if n == 0:
                print(f"The parameters of the {run.generator_name!r} synth:")
                described = with_descriptions(run.parameter_set, generator=synth)
                print("\n".join(f"  {line}" for line in legend_lines(described)) + "\n")
            if n == 0 or true is None:
                print(format_prediction(prediction, parameter_set=run.parameter_set))
                continue
            right = [int(np.sum(i == true)) for i in (prediction.indices, match.indices)]
            print(f"{path}")
            print(f"  network: {listening_summary(prediction.metrics or {})}")
            print(f"  hybrid:  {listening_summary(match.metrics)} ({match.renders} renders)")
            print(f"  details: network {true_class_note(right[0], len(true))}; hybrid {right[1]}")
    finally:
        synth.close()
    print(
        f"predictions: {predictions_dir} (JSON, input WAV, hybrid match and network's guess WAV, "
        "PNG per sound)"
    )


def _print_summary(result: DemoResult, *, options: DemoOptions, sounds_dir: Path) -> None:
    out, model, epochs = Path(options.output_dir), options.model, options.epochs
    synth, num_examples = options.synth, options.num_examples
    times = result.seconds
    paper = PAPER_MPR.get(model) if describes(synth) else None
    paper_note = (
        f"; the paper's {model}: {paper:.2f} after {PAPER_EPOCHS} epochs on "
        f"{PAPER_EXAMPLES:,} examples)"
        if paper is not None
        else ")"
    )
    rho = "-" if result.rho_stft is None else f"{100 * result.rho_stft:.1f}%"
    chance = result.rho_stft_chance
    print(f"\nDemo finished in {_minutes(times['total'])}. What it made, in {out}/:")
    evaluation = result.run_dir / "evaluation"
    rows = [
        ("dataset", f"{result.dataset} ({num_examples} examples, {_minutes(times['dataset'])})"),
        (
            "model",
            f"{result.run_dir / BEST_MODEL} ({epochs} epochs, {_minutes(times['training'])})",
        ),
        (
            "accuracy",
            f"{evaluation / METRICS_FILE}: mean percentile rank {result.mpr:.1f} "
            f"(50 = chance, 100 = perfect{paper_note}",
        ),
        (
            "resynthesis",
            f"{evaluation / RECONSTRUCTION_JSON}: rho_STFT mean {rho}"
            + (f" (random patches: {100 * chance:.1f}%)" if chance is not None else ""),
        ),
        ("matches", f"{result.predictions_dir}/ (from {sounds_dir}/)"),
        ("report", f"{result.report}  <- open it in a browser and listen"),
    ]
    for key, text in rows:
        print(f"  {key:<12} {text}")
    print(
        "\nThe real experiment (hours on a CPU, much less on a GPU):\n"
        "  uv run python -m generators.fm_generator --num_examples 200000 --name fm\n"
        "  uv run python -m models.spectrogram_cnn --model C6 --dataset_name fm"
        "   # then evaluates, resynthesizes, reports\n"
        "  uv run python -m models.predict my_sound.wav --run runs/C6_fm"
    )


def run_demo(options: DemoOptions) -> DemoResult:
    """Run the demo (see the module docstring) with ``options``.

    Returns
    -------
    DemoResult
        The paths and figures it printed.
    """
    options.check()
    out, run_dir = Path(options.output_dir), options.run_dir
    data_name = f"{options.synth}_{RUN_NAME_SUFFIX}"
    _clear_earlier_run(
        out, run_dir, dataset_path(out / "data", data_name), overwrite=options.overwrite
    )
    mark_demo_folder(out)  # so that clean_outputs can tell the demo's folders from others
    stages = _Stages()
    title = f"1/6 dataset: {options.num_examples} examples of the {options.synth!r} synth"
    with stages.step(title, "dataset"):
        data_path = _make_dataset(
            out, options.synth, options.num_examples, seed=options.seed, workers=options.workers
        )
    with stages.step(f"2/6 training {options.model} for {options.epochs} epochs", "training"):
        _train(data_path, run_dir, options)
    run, mpr, reconstruction = _evaluate(stages, run_dir, options)
    sounds_dir, predictions_dir = out / "sounds", out / "predictions"
    title = f"5/6 matching {options.n_matches} held-out sounds and one foreign sound"
    with stages.step(title, "matching"):
        _match_sounds(
            run, _write_test_sounds(run, sounds_dir, options.n_matches), predictions_dir,
            budget_renders=options.budget_renders,
        )  # fmt: skip
    with stages.step("6/6 listening report", "report"):
        report = write_report(run_dir, n_examples=options.n_report, seed=options.seed)
        print(f"report: {report}")
    chance = reconstruction.chance or {}
    result = DemoResult(
        dataset=data_path,
        run_dir=run_dir,
        report=report,
        predictions_dir=predictions_dir,
        mpr=mpr,
        rho_stft=reconstruction.summary["rho_stft"].mean,
        rho_stft_chance=chance["rho_stft"].mean if "rho_stft" in chance else None,
        seconds=dict(stages.times, total=stages.total),
    )
    _print_summary(result, options=options, sounds_dir=sounds_dir)
    return result


def _evaluate(stages: _Stages, run_dir: Path, options: DemoOptions) -> tuple[Run, float, Any]:
    """Steps 3 and 4: the run, its mean percentile rank, and its resynthesis evaluation."""
    with stages.step("3/6 evaluation on the held-out test split", "evaluation"):
        run = load_run(run_dir)
        evaluated = evaluate_run(run_dir, EvaluationOptions(progress=False), run=run)
        mpr = evaluated.evaluation.groups[ALL_GROUP].mpr
    with stages.step("4/6 resynthesis of every test prediction", "reconstruction"):
        matching = MatchingOptions(
            methods=("network", "hybrid"), n_examples=DEMO_MATCH_EXAMPLES,
            max_renders=options.budget_renders, time_limit_s=None,
        )  # fmt: skip
        reconstruction = evaluate_reconstruction(
            run_dir,
            ReconstructionOptions(workers=options.workers, progress=False, matching=matching),
        )
    return run, mpr, reconstruction


def run_pretrained_demo(
    *, output_dir: str | Path = "demo", n_matches: int = 5, seed: int = HELD_OUT_SEED,
    overwrite: bool = False, budget_renders: int = DEMO_BUDGET_RENDERS,
) -> Path:  # fmt: skip
    """Match new FM sounds and the plucked string with the shipped model: no training.

    Parameters
    ----------
    output_dir : path
        The demo's folder: this demo writes ``pretrained/sounds/`` and
        ``pretrained/predictions/`` in it, beside what :func:`run_demo` writes.
    n_matches : int
        New FM patches (of ``seed``, which no training used) to match.
    seed : int
        Their seed.
    overwrite : bool
        Replace the ``sounds/`` and ``predictions/`` of an earlier pretrained demo.
    budget_renders : int
        Renders of hybrid matching per sound.

    Returns
    -------
    Path
        The predictions folder.
    """
    check_positive_int(n_matches, "--n_matches")
    check_positive_int(budget_renders, "budget_renders")
    out = Path(output_dir) / PRETRAINED_DEMO_DIR
    sounds_dir, predictions_dir = out / "sounds", out / "predictions"
    _clear_outputs(out, [p for p in (sounds_dir, predictions_dir) if p.exists()], [], overwrite)
    mark_demo_folder(out)
    stages = _Stages()
    with stages.step("1/2 loading the shipped model", "loading"):
        run = load_run(pretrained_run_dir())
        print(f"{run.model_name} from {run.run_dir}, trained on the {run.generator_name!r} synth")
    title = f"2/2 matching {n_matches} new FM sounds (seed {seed}) and one foreign sound"
    with stages.step(title, "matching"):
        sounds = _write_held_out_sounds(run, sounds_dir, n_matches, seed=seed)
        _match_sounds(run, sounds, predictions_dir, budget_renders=budget_renders)
    print(f"\nDemo finished in {_minutes(stages.total)}: sounds in {sounds_dir}/, matches in "
          f"{predictions_dir}/ (listen to *_input.wav, *_network.wav, *_resynthesis.wav)")  # fmt: skip
    return predictions_dir
