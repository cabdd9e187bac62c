"""Resynthesis: play predicted parameters on the run's synth and measure how close they sound.

:func:`resynthesize` renders class indices with a synth, in "spawn" worker
processes that never import TensorFlow, and measures each rendering against
its reference (:mod:`models.matching.sound_metrics`). :func:`evaluate_reconstruction`
does that for every prediction an evaluation saved (``predictions.npz``), and
for random patches (parameters drawn like the dataset's) against the same
sounds as chance level, and writes ``reconstruction.json`` and
``reconstruction.csv`` (:mod:`models.evaluation.evaluation_folder`): the paper's
Table 4, and keeps the sounds the listening report plays (:func:`listening_sounds`,
``listening.npz``). The synth is rebuilt from the run's record (``run.json``), so the
resynthesis uses the very synth and settings that made the training data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from core.checks import check_positive_int
from core.errors import InverSynthError
from generators.pool import map_in_workers
from generators.sound_generator import generator_class, load_generator
from models.common.run import RunInfo, check_dataset
from models.evaluation.evaluation_folder import (
    MATCHES_FILE,
    PREDICTIONS_FILE,
    RECONSTRUCTION_JSON,
    Matches,
    Predictions,
    ReconstructionRecord,
    check_replaceable,
    default_evaluation_dir,
    evaluation_dataset_paths,
    make_output_folder,
    read_metrics,
    read_reconstruction,
    write_reconstruction_csv,
)
from models.evaluation.evaluation_identity import check_evaluation_of_run
from models.evaluation.listening_sounds import ListeningSounds, listening_rows, refined_matches
from models.evaluation.match_evaluation import (
    MatchingOptions,
    format_matching_table,
    match_evaluated,
)
from models.matching.legend import with_descriptions
from models.matching.sound_metrics import (
    METRICS,
    MetricSummary,
    format_metric,
    metric_heading,
    reconstruction_metrics,
    summarize,
)

__all__ = [
    "CHANCE_SEED",
    "ReconstructionOptions",
    "ReconstructionResult",
    "Resynthesis",
    "evaluate_reconstruction",
    "format_reconstruction_table",
    "resynthesize",
]

CHANCE_SEED = 20_181_215  # random patches for the chance row; fixed so that runs compare
_MIN_EXAMPLES_FOR_WORKERS = 128


# --------------------------------------------------------------------------
# Resynthesis in worker processes
# --------------------------------------------------------------------------


class Resynthesis(NamedTuple):
    """One job's result, in job order."""

    metrics: dict[str, np.ndarray]  # key -> [b]
    chance: dict[str, np.ndarray] | None  # key -> [b], when chance indices were given
    audio: np.ndarray | None  # [b, n_samples] float32, when asked for


Job = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""(predicted indices [b, P], reference audio [b, n_samples] or None, chance indices or None)."""


def _resynthesize_job(generator: Any, job: Job, *, keep_audio: bool) -> Resynthesis:
    indices, reference, chance_indices = job
    audio = np.asarray(generator.render_indices(indices), dtype=np.float32)  # [b, n_samples]
    metrics: dict[str, np.ndarray] = {}
    chance = None
    if reference is not None:
        rate = generator.sample_rate
        metrics = reconstruction_metrics(reference, audio, sample_rate=rate)
        if chance_indices is not None:
            random_audio = generator.render_indices(chance_indices)
            chance = reconstruction_metrics(reference, random_audio, sample_rate=rate)
    return Resynthesis(metrics, chance, audio if keep_audio else None)


def resynthesize(
    generator_name: str,
    generator_config: dict[str, Any],
    jobs: Iterable[Job],
    *,
    workers: int = 2,
    keep_audio: bool = False,
) -> Iterator[Resynthesis]:
    """Render class indices with a synth and measure them against references, in order.

    Parameters
    ----------
    generator_name : str
        Registry name (``run.generator_name``).
    generator_config : dict
        The synth's ``config()`` (``run.generator_config``).
    jobs : iterable of (indices, reference, chance_indices)
        ``indices`` int [b, n_parameters]; ``reference`` float32 [b, n_samples]
        or None (render only); ``chance_indices`` int [b, n_parameters] or
        None (no chance figures). Consumed lazily: at most ``2 * workers``
        jobs are in flight, so memory stays flat for any number of jobs.
    workers : int > 0
        Rendering processes ("spawn": they start without TensorFlow). With 1,
        or for a synth that has worker processes of its own (plugins), the
        synth renders in this process.
    keep_audio : bool
        Return the resynthesized audio too.

    Yields
    ------
    Resynthesis
        One per job, in job order.
    """
    workers = check_positive_int(workers, "workers")
    task = functools.partial(_resynthesize_job, keep_audio=keep_audio)
    renders_in_parallel = generator_class(generator_name).renders_in_parallel
    if workers > 1 and not renders_in_parallel:
        yield from map_in_workers(
            task,
            jobs,
            generator_name=generator_name,
            generator_config=generator_config,
            workers=workers,
        )
        return
    # In this process: one worker asked for, or a synth with processes of its own
    # (plugin hosts), which is safe here (no plugin code runs in this process) and
    # saves a second layer of processes.
    config = dict(generator_config)
    if renders_in_parallel:
        config["workers"] = workers
    generator = load_generator(generator_name, config)
    try:
        for job in jobs:
            yield task(generator, job)
    finally:
        generator.close()


# --------------------------------------------------------------------------
# A run's reconstruction evaluation
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconstructionResult(ReconstructionRecord):
    """What :func:`evaluate_reconstruction` wrote, with the per-example values and the files.

    ``result["summary"]`` etc. read the JSON written; ``result["per_example"]``
    and ``result["files"]`` the two fields below.
    """

    per_example: dict[str, np.ndarray] = field(default_factory=dict)  # key -> [n]
    files: dict[str, Path] = field(default_factory=dict)  # "json", "csv"

    def __getitem__(self, key: str) -> Any:
        if key in ("per_example", "files"):
            return getattr(self, key)
        return super().__getitem__(key)


@dataclass(frozen=True, kw_only=True)
class ReconstructionOptions:
    """How :func:`evaluate_reconstruction` resynthesizes a run's predictions.

    Attributes
    ----------
    evaluation_dir : path, optional
        Folder with ``predictions.npz`` (default ``{run_dir}/evaluation``);
        results are written there too.
    max_examples : int, optional
        Use only the first N predictions.
    workers : int > 0
        Rendering processes (below 128 examples the synth renders in this
        process: starting workers would take longer).
    chunk_size : int > 0
        Examples per unit of work.
    chance : bool
        Also measure random patches against the same sounds (doubles the rendering).
    progress, quiet : bool
        Progress bar; no printed table.
    overwrite : bool
        Replace a ``reconstruction.json`` of more examples (refused otherwise,
        before any rendering, so that a run's figures of 200 sounds are not
        silently replaced by figures of 50).
    matching : MatchingOptions
        The matching methods measured on the first sounds
        (:mod:`models.evaluation.match_evaluation`), next to random patches; the
        matched indices go to ``matches.npz``. No methods: none.
    """

    evaluation_dir: str | Path | None = None
    max_examples: int | None = None
    workers: int = 2
    chunk_size: int = 16
    chance: bool = True
    progress: bool = True
    quiet: bool = False
    overwrite: bool = False
    matching: MatchingOptions = field(default_factory=MatchingOptions)

    def check(self) -> None:
        """Refuse bad counts at once, before anything is read."""
        if self.max_examples is not None:
            check_positive_int(self.max_examples, "--max_examples")
        check_positive_int(self.chunk_size, "--chunk_size")


def _check_replaceable(
    out_dir: Path, predictions: Predictions, *, split: str | None, overwrite: bool
) -> None:
    """Refuse to replace a reconstruction of more examples with one of fewer (unless ``overwrite``)."""
    try:
        old = read_reconstruction(out_dir)
    except InverSynthError:
        return  # unreadable: nothing in it to keep
    if old is None:
        return
    n = len(predictions)
    check_replaceable(
        out_dir / RECONSTRUCTION_JSON,
        n_old=old.n_examples,
        n_new=n,
        same_examples=old.split is None or split is None or old.split == split,
        what=f"the reconstruction of {n} {split} examples" if split else f"that of {n} examples",
        overwrite=overwrite,
    )


def _reference_jobs(
    dataset: Any,
    dataset_paths: list[str],
    predictions: Predictions,
    predicted: np.ndarray,
    chance_indices: np.ndarray | None,
    chunk_size: int,
) -> Iterator[Job]:
    """Jobs of ``chunk_size`` predictions with their test sounds, read as they are needed."""
    for start in range(0, len(predictions), chunk_size):
        rows = slice(start, start + chunk_size)
        reference, labels = dataset.read(predictions.example_indices[rows])
        if not np.array_equal(labels, predictions.true_indices[rows]):
            raise InverSynthError(
                f"the dataset {dataset_paths} no longer matches the saved predictions "
                f"(labels differ); evaluate the run again"
            )
        yield (
            predicted[rows],
            reference,
            chance_indices[rows] if chance_indices is not None else None,
        )


def _measure(
    info: RunInfo,
    dataset_paths: list[str],
    predictions: Predictions,
    *,
    options: ReconstructionOptions,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """Every metric of every prediction (and of a random patch): key -> [n] each."""
    from generators.dataset import open_dataset

    parameter_set = info.parameter_set
    n = len(predictions)
    predicted = info.decode(predictions.scores)  # [n, P], the run's guess
    chance_indices = (
        parameter_set.sample_indices(seed=CHANCE_SEED, start=0, n_examples=n)
        if options.chance
        else None
    )
    # Starting worker processes costs seconds; a few examples render faster here.
    workers_used = options.workers if n >= _MIN_EXAMPLES_FOR_WORKERS else 1
    parts: list[dict[str, np.ndarray]] = []
    chance_parts: list[dict[str, np.ndarray]] = []
    with open_dataset(dataset_paths) as dataset:
        check_dataset(info, dataset)
        jobs = _reference_jobs(
            dataset, dataset_paths, predictions, predicted, chance_indices, int(options.chunk_size)
        )
        with tqdm(total=n, unit="ex", desc="resynthesizing", disable=not options.progress) as bar:
            for result in resynthesize(
                info.generator_name, info.generator_config, jobs, workers=workers_used
            ):
                parts.append(result.metrics)
                if result.chance is not None:
                    chance_parts.append(result.chance)
                bar.update(next(iter(result.metrics.values())).shape[0])
    per_example = {key: np.concatenate([p[key] for p in parts]) for key in METRICS}
    if not chance_parts:
        return per_example, None
    return per_example, {key: np.concatenate([p[key] for p in chance_parts]) for key in METRICS}


def evaluate_reconstruction(
    run_dir: str | Path, options: ReconstructionOptions | None = None
) -> ReconstructionResult:
    """Resynthesize a run's saved test predictions and measure them (the paper's Table 4).

    Needs no TensorFlow: it starts from ``predictions.npz``, so call it after
    :func:`models.evaluation.run_evaluation.evaluate_run`. Writes
    ``reconstruction.json`` and ``.csv``, ``matches.npz`` when methods were
    measured, and the sounds the listening report plays (``listening.npz``).

    Parameters
    ----------
    run_dir : path
        The run folder.
    options : ReconstructionOptions, optional
        Default: every prediction, with chance, the network alone.

    Returns
    -------
    ReconstructionResult
        The record written (``summary`` per metric, ``chance`` if asked), the
        per-example values (key -> [n], and ``example_indices``) and the files.
    """
    options = options if options is not None else ReconstructionOptions()
    options.check()
    run_dir = Path(run_dir)
    info, out_dir, predictions = _evaluated_predictions(run_dir, options)
    split = _evaluated_split(out_dir)
    _check_replaceable(out_dir, predictions, split=split, overwrite=options.overwrite)
    dataset_paths = evaluation_dataset_paths(out_dir, info.dataset_paths)
    per_example, chance_values = _measure(info, dataset_paths, predictions, options=options)
    matching, matches = None, None
    if options.matching.methods:
        matching, matches = match_evaluated(
            info, dataset_paths, predictions, options=options.matching, chance_seed=CHANCE_SEED,
            progress=options.progress,
        )  # fmt: skip
    result = ReconstructionResult(
        model=info.model_name,
        run_dir=str(run_dir),
        generator=info.generator_name,
        dataset_paths=dataset_paths,
        n_examples=len(predictions),
        summary=summarize(per_example),
        chance=None if chance_values is None else summarize(chance_values),
        chance_seed=None if chance_values is None else CHANCE_SEED,
        split=split,
        matching=matching,
        run_fingerprint=info.fingerprint,
        per_example={"example_indices": predictions.example_indices, **per_example},
    )
    make_output_folder(out_dir)
    files = {
        "json": result.write(out_dir / RECONSTRUCTION_JSON),
        "csv": write_reconstruction_csv(out_dir, predictions.example_indices, per_example),
    }
    if matches is not None:
        files["matches"] = matches.save(out_dir)
    else:
        (out_dir / MATCHES_FILE).unlink(missing_ok=True)  # no stale matches beside new figures
    sounds = listening_sounds(info, dataset_paths, predictions, matches)
    files["listening"] = sounds.save(out_dir)
    if not options.quiet:
        print(format_reconstruction_table(result))
        if matching is not None:
            print(format_matching_table(matching, split=split))
        print(f"reconstruction written to {files['json']} and {files['csv'].name}")
    return replace(result, files=files)


def _evaluated_predictions(
    run_dir: Path, options: ReconstructionOptions
) -> tuple[RunInfo, Path, Predictions]:
    """The run, its evaluation folder and the predictions to resynthesize, checked."""
    info = RunInfo.load(run_dir)
    out_dir = (
        Path(options.evaluation_dir)
        if options.evaluation_dir is not None
        else default_evaluation_dir(run_dir)
    )
    predictions = Predictions.load(out_dir, run_dir=run_dir)
    check_evaluation_of_run(
        out_dir, info, run_dir=run_dir, predictions=predictions, replacing=options.overwrite
    )
    info.parameter_set.check_indices(predictions.true_indices)
    if options.max_examples is not None:
        predictions = predictions.take(slice(0, options.max_examples))
    if len(predictions) == 0:
        raise InverSynthError(f"{str(out_dir / PREDICTIONS_FILE)!r} holds no predictions")
    return info, out_dir, predictions


def _render(info: RunInfo, indices: np.ndarray) -> np.ndarray:
    """The run's synth playing class indices [n, P], in this process: audio [n, n_samples]."""
    (result,) = resynthesize(
        info.generator_name, info.generator_config, [(indices, None, None)], workers=1,
        keep_audio=True,
    )  # fmt: skip
    assert result.audio is not None  # keep_audio=True
    return result.audio


def listening_sounds(
    info: RunInfo, dataset_paths: list[str], predictions: Predictions, matches: Matches | None
) -> ListeningSounds:
    """The sounds the listening report plays: test sounds, the network's guess, the match.

    Of the rows :func:`~models.evaluation.listening_sounds.listening_rows` chooses;
    the synth renders here, as the report would play it.
    """
    from generators.dataset import open_dataset

    method, matched = refined_matches(matches)
    rows = listening_rows(len(predictions), matched)
    sample = predictions.take(rows)
    with open_dataset(dataset_paths) as dataset:
        check_dataset(info, dataset)
        reference, labels = dataset.read(sample.example_indices)
    if not np.array_equal(labels, sample.true_indices):
        raise InverSynthError(
            f"the dataset {dataset_paths} no longer matches the saved predictions; "
            "evaluate the run again"
        )
    predicted = info.decode(sample.scores)
    described = with_descriptions(
        info.parameter_set, generator_name=info.generator_name,
        generator_config=info.generator_config,
    )  # fmt: skip
    return ListeningSounds(
        rows=rows, example_indices=sample.example_indices, true_indices=sample.true_indices,
        predicted_indices=predicted, reference=np.asarray(reference, dtype=np.float32),
        network=_render(info, predicted),
        descriptions=tuple(p.description for p in described.parameters), method=method,
        match_indices=None if matched is None else matched[rows],
        match=None if matched is None else _render(info, matched[rows]),
    )  # fmt: skip


def _evaluated_split(out_dir: Path) -> str | None:
    """The split of the evaluation whose predictions are resynthesized (its metrics.json)."""
    try:
        return read_metrics(out_dir).split
    except InverSynthError:
        return None


def _cell(stats: MetricSummary | None, field: str, key: str) -> str:
    return format_metric(key, None if stats is None else stats.stat(field))


def format_reconstruction_table(record: ReconstructionRecord) -> str:
    """The paper's Table 4 layout: mean and median of each metric, model vs chance."""
    keys = [k for k in METRICS if k in record.summary]
    heads = [metric_heading(k) for k in keys]
    widths = [max(len(h), 8) for h in heads]
    sounds = f"{record.split} sounds" if record.split not in (None, "?") else "sounds"
    lines = [
        f"Reconstruction of {record.n_examples} {sounds} by {record.model} "
        "(rho: higher is better; others: lower is better)"
    ]
    rows: list[tuple[str, dict[str, MetricSummary]]] = [("model", record.summary)]
    if record.chance is not None:
        rows.append(("random patch", record.chance))
    label_width = max(len(f"{label} median") for label, _ in rows) + 1
    lines.append(
        " " * label_width + "".join(f"{h:>{w + 2}}" for h, w in zip(heads, widths, strict=True))
    )
    for label, block in rows:
        for field_name in ("mean", "median"):
            lines.append(
                f"{label + ' ' + field_name:<{label_width}}"
                + "".join(
                    f"{_cell(block.get(k), field_name, k):>{w + 2}}"
                    for k, w in zip(keys, widths, strict=True)
                )
            )
    excluded = {k: record.summary[k].n_excluded for k in keys if record.summary[k].n_excluded}
    if excluded:
        lines.append(f"(left out as undefined, e.g. against silent sounds: {excluded})")
    return "\n".join(lines)
