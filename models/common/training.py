"""Training: one function, :func:`train`, that makes (or resumes) a run folder.

* Adam, the head's loss (binary cross-entropy for sigmoid outputs, summed
  categorical cross-entropy for per-parameter softmaxes), training logs with
  per-parameter top-1 accuracy and class-index MAE.
* Early stopping on the validation loss, restoring the best weights.
* After every epoch: the best model (``model.keras``) when it improved, the
  latest model (``latest.keras``, with the optimizer state), a history row
  and the progress record (``state.json``), each written to a temporary file
  and renamed, in that order, so a run killed at any moment resumes from its
  last finished epoch with ``resume=True``.
* An epoch whose loss or weights are not finite (the training diverged)
  stops the run with an error; nothing of that epoch is saved.
* One process trains a run folder at a time (``{run}/.lock``), and the folder
  is made only once everything the run needs has been checked; a new run
  that fails before its first epoch ends leaves nothing behind.
* ``tf.distribute`` (:mod:`models.common.distribution`): several GPUs of one
  machine, several machines (``TF_CONFIG``), several logical CPU devices if
  configured, else the default strategy. The same code runs on a laptop's CPU
  and on a GPU server.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.checks import check_float, check_int, check_non_negative_int, check_plain_name
from core.errors import InverSynthError
from generators.dataset import SynthDataset, open_dataset
from generators.parameters import DECODINGS
from models.common.checkpoints import (
    TrainState,
    checkpoint_callbacks,
    trim_history,
)
from models.common.data import (
    EpochClock,
    Shuffle,
    Split,
    distribute,
    make_dataset,
    parse_split,
    usable_indices,
)
from models.common.distribution import get_strategy, is_chief
from models.common.model_table import check_model_input
from models.common.run import (
    BEST_MODEL,
    LATEST_MODEL,
    RUN_FILE,
    RunInfo,
    check_dataset,
    load_keras_model,
    lock_run_folder,
)
from models.common.tensorflow_env import import_tensorflow, warm_up_xla

# TensorFlow and NumPy take 32-bit seeds; a larger one fails deep inside them.
MAX_TRAIN_SEED = 2**32 - 1
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536

__all__ = ["TrainConfig", "get_strategy", "is_chief", "train"]


@dataclass
class TrainConfig:
    """Everything :func:`train` needs. See ``python -m models.spectrogram_cnn --help``."""

    model: str
    dataset: list[str]  # one file, or every shard of one dataset
    output_dir: Path = Path("runs")
    run_name: str | None = None  # default: {model}_{dataset name}
    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 1e-3
    head: str = "sigmoid"
    label_sigma: float = 0.0  # 0: the paper's one-hot targets; > 0: ordinal targets
    decode: str = "argmax"  # the network's guess: argmax, or median of ordered parameters
    data_format: str = "channels_last"
    seed: int = 0
    patience: int = 10
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_examples: int | None = None
    resume: bool = False
    tensorboard: bool = False
    time_limit_s: float | None = None  # stop before an epoch that would end after this
    verbose: int = 1  # Keras: 1 progress bar, 2 one line per epoch, 0 silent
    jit_compile: bool = False  # XLA (models.common.speed; slower than oneDNN on AVX2 CPUs)
    stream: bool = False  # train on examples rendered on the fly (models.common.stream)
    examples_per_epoch: int | None = None  # --stream: default DEFAULT_EXAMPLES_PER_EPOCH
    workers: int = 1  # --stream: rendering processes
    sampler: dict[str, Any] | None = None  # --stream: what draws the examples (generators.sampling)

    def validate(self) -> None:
        from models.common.model_table import DATA_FORMATS, HEADS, MODELS

        if self.model not in MODELS:
            raise InverSynthError(f"unknown model {self.model!r}; known: {list(MODELS)}")
        if self.head not in HEADS:
            raise InverSynthError(f"--head must be one of {HEADS}, got {self.head!r}")
        if self.data_format not in DATA_FORMATS:
            raise InverSynthError(
                f"--data_format must be one of {DATA_FORMATS}, got {self.data_format!r}"
            )
        self.epochs = check_int(self.epochs, "--epochs", low=1, high=MAX_EPOCHS)
        self.batch_size = check_int(self.batch_size, "--batch_size", low=1, high=MAX_BATCH_SIZE)
        self.patience = check_non_negative_int(self.patience, "--patience")
        self.learning_rate = check_float(
            self.learning_rate, "--learning_rate", low=0.0, high=1.0, low_inclusive=False
        )
        # The upper bound depends on the dataset: see check_label_sigma.
        self.label_sigma = check_float(self.label_sigma, "--label_sigma", low=0.0)
        if self.decode not in DECODINGS:
            raise InverSynthError(f"--decode must be one of {DECODINGS}, got {self.decode!r}")
        if self.max_examples is not None:
            self.max_examples = check_int(self.max_examples, "--max_examples", low=1)
        if self.time_limit_s is not None:
            self.time_limit_s = check_float(
                self.time_limit_s, "--time_limit_s", low=0.0, low_inclusive=False, unit="s"
            )
        self.seed = check_int(self.seed, "--seed", low=0, high=MAX_TRAIN_SEED)
        if self.run_name is not None:  # never a folder outside output_dir, nor output_dir itself
            check_plain_name(self.run_name, what="a run name", folder_option="--output_dir")
        _validate_stream(self)
        self.split = parse_split(self.split)

    def settings(self) -> dict[str, Any]:
        """The settings recorded in run.json (paths excluded: they are recorded separately)."""
        out = asdict(self)
        for key in ("dataset", "output_dir", "run_name", "resume", "verbose", "time_limit_s",
                    "workers", "jit_compile"):  # fmt: skip
            out.pop(key)
        out["split"] = list(self.split)
        return out


def _validate_stream(config: TrainConfig) -> None:
    from models.common.stream import DEFAULT_EXAMPLES_PER_EPOCH

    if config.examples_per_epoch is not None and not config.stream:
        raise InverSynthError("--examples_per_epoch needs --stream")
    if config.sampler is not None and not config.stream:
        raise InverSynthError("--sampler needs --stream (it draws the streamed examples)")
    if config.stream:
        if config.examples_per_epoch is None:
            config.examples_per_epoch = DEFAULT_EXAMPLES_PER_EPOCH
        if config.examples_per_epoch < config.batch_size:
            raise InverSynthError(
                f"--examples_per_epoch {config.examples_per_epoch} is less than one batch "
                f"of {config.batch_size}"
            )
        if int(config.workers) != config.workers or config.workers <= 0:
            raise InverSynthError(f"--workers must be a positive integer, got {config.workers!r}")


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def default_run_name(model: str, dataset_paths: list[str]) -> str:
    stem = Path(dataset_paths[0]).name.split(".")[0]
    stem = stem.removesuffix("_data")
    return f"{model}_{stem}"


def compile_model(
    model: Any,
    *,
    head: str,
    learning_rate: float,
    n_levels: list[int],
    jit: bool,
    label_sigma: float = 0.0,
    ordered: list[bool] | None = None,
) -> None:
    import keras

    from models.common.architectures import loss_for_head
    from models.common.metrics import keras_metrics

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss_for_head(head, n_levels=n_levels, label_sigma=label_sigma, ordered=ordered),
        metrics=keras_metrics(n_levels),
        jit_compile=True if jit else "auto",
    )


# Settings a resumed run keeps from its start (the others may change: epochs,
# patience, logging, time limit).
FIXED_ON_RESUME = (
    "model",
    "head",
    "label_sigma",
    "data_format",
    "batch_size",
    "learning_rate",
    "seed",
    "split",
    "max_examples",
    "stream",
    "examples_per_epoch",
    "sampler",
    "decode",
)


def _resume_config(config: TrainConfig, info: RunInfo) -> TrainConfig:
    """The stored run's settings, with this call's epochs, patience and logging."""
    stored = info.settings
    merged = TrainConfig(
        model=info.model_name,
        dataset=config.dataset,
        output_dir=config.output_dir,
        run_name=config.run_name,
        epochs=config.epochs,
        batch_size=int(stored["batch_size"]),
        learning_rate=float(stored["learning_rate"]),
        head=info.head,
        # Runs from before ordinal targets existed trained on one-hot targets.
        label_sigma=float(stored.get("label_sigma", 0.0)),
        decode=str(stored.get("decode", "argmax")),
        data_format=info.data_format,
        seed=int(stored["seed"]),
        patience=config.patience,
        split=parse_split([float(f) for f in stored["split"]]),
        max_examples=stored.get("max_examples"),
        resume=True,
        tensorboard=config.tensorboard,
        time_limit_s=config.time_limit_s,
        verbose=config.verbose,
        jit_compile=config.jit_compile,
        stream=bool(stored.get("stream", False)),
        examples_per_epoch=stored.get("examples_per_epoch"),
        workers=config.workers,
        sampler=stored.get("sampler"),
    )
    return merged


def train(config: TrainConfig, *, explicit: set[str] | None = None) -> Path:
    """Train a model on a dataset, or continue an interrupted run.

    Parameters
    ----------
    config : TrainConfig
    explicit : set of str, optional
        Options the user gave explicitly; on resume, those that contradict
        the stored run are refused (:data:`FIXED_ON_RESUME`).

    Returns
    -------
    run_dir : Path
        The run folder with the best model in ``model.keras``.

    Raises
    ------
    InverSynthError
        Bad settings, a dataset the model cannot take, a run folder in use by
        another training, or a training that diverged (a loss or weight not
        finite). A new run that fails before its first epoch ends leaves no
        folder behind.
    """
    tf = import_tensorflow()
    config.validate()
    with open_dataset(config.dataset) as dataset:
        check_model_input(
            config.model,
            n_samples=dataset.n_samples,
            n_levels=dataset.parameter_set.n_levels.tolist(),
        )
        check_label_sigma(config.label_sigma, dataset)
        run_name = config.run_name or default_run_name(
            config.model, [str(p) for p in dataset.paths]
        )
        run_dir = Path(config.output_dir) / run_name
        if not is_chief():  # a worker of a multi-machine training: it writes nothing
            return _train_in(config, dataset, run_dir, explicit or set(), tf=tf)
        created = _make_folder(run_dir)
        with lock_run_folder(run_dir):
            try:
                return _train_in(config, dataset, run_dir, explicit or set(), tf=tf)
            except BaseException:
                if created and not (run_dir / LATEST_MODEL).exists():
                    shutil.rmtree(run_dir, ignore_errors=True)  # no epoch finished: nothing to keep
                raise


def check_label_sigma(label_sigma: float, dataset: SynthDataset) -> None:
    """Refuse ordinal targets wider than the dataset's largest parameter (its number of levels)."""
    widest = int(max(dataset.parameter_set.n_levels))
    if label_sigma > widest:
        raise InverSynthError(
            f"--label_sigma must be in [0, {widest}] for this dataset (its largest parameter has "
            f"{widest} levels), got {label_sigma!r}"
        )


def _make_folder(run_dir: Path) -> bool:
    """Create the run folder if missing; whether this call created it."""
    try:
        run_dir.mkdir(parents=True)
    except FileExistsError:
        if not run_dir.is_dir():
            raise InverSynthError(f"run folder {str(run_dir)!r} is a file") from None
        return False
    except OSError as exc:
        raise InverSynthError(
            f"cannot create run folder {str(run_dir)!r}: {exc.strerror}"
        ) from None
    return True


def _train_in(
    config: TrainConfig, dataset: SynthDataset, run_dir: Path, explicit: set[str], *, tf: Any
) -> Path:
    """Start or resume the run in ``run_dir`` (locked by the caller when it writes)."""
    # A non-chief worker starting a new run may find the chief's run.json already written.
    existing = (run_dir / RUN_FILE).is_file() and (config.resume or is_chief())
    if existing and not config.resume:
        raise InverSynthError(
            f"run folder {str(run_dir)!r} already exists; pass --resume to continue it "
            "or choose another --run_name"
        )
    if existing:
        info = RunInfo.load(run_dir)
        check_dataset(info, dataset, same_dataset=True)
        config = _checked_resume_config(config, info, run_dir, explicit)
        state = TrainState.load(run_dir)
        if _nothing_left(state, run_dir, epochs=config.epochs):
            return run_dir
    else:
        n_used = min(dataset.n_examples, config.max_examples or dataset.n_examples)
        info = RunInfo.for_dataset(
            dataset,
            model_name=config.model,
            head=config.head,
            data_format=config.data_format,
            split=Split(config.split, n_used),
            settings=_run_settings(config, dataset),
        )
        state = TrainState()
    return _fit(config, info, state, dataset, run_dir, resuming=existing, tf=tf)


def _run_settings(config: TrainConfig, dataset: SynthDataset) -> dict[str, Any]:
    """``config.settings()``, plus where a stream run's training examples start."""
    from models.common.stream import stream_first_index

    settings = config.settings()
    if config.stream:
        settings["stream_first_index"] = stream_first_index(dataset)
    return settings


def _checked_resume_config(
    config: TrainConfig, info: RunInfo, run_dir: Path, explicit: set[str]
) -> TrainConfig:
    """The stored run's settings; refuses explicit options that contradict them."""
    stored = _resume_config(config, info)
    for key in sorted(explicit & set(FIXED_ON_RESUME)):
        mine, theirs = getattr(config, key), getattr(stored, key)
        if mine != theirs:
            raise InverSynthError(
                f"run {str(run_dir)!r} was started with {key}={theirs!r}; "
                f"--resume cannot change it to {mine!r}"
            )
    return stored


def _nothing_left(state: TrainState, run_dir: Path, *, epochs: int) -> bool:
    """Whether a resumed run is already done (stopped early, or trained ``epochs``), saying so."""
    if state.stopped_early:
        print(
            f"run {run_dir} already stopped early at epoch {state.epochs_done} "
            f"(best epoch {state.best_epoch}); nothing to do"
        )
        return True
    if state.epochs_done >= epochs:
        print(
            f"run {run_dir} already trained {state.epochs_done} epochs; "
            "raise --epochs to train longer"
        )
        return True
    return False


def _prepare_run_dir(
    run_dir: Path, info: RunInfo, state: TrainState, *, resuming: bool, write: bool
) -> None:
    """Record the run in its folder, or trim what a killed run left behind."""
    if not write:
        return
    if not resuming:
        info.save(run_dir)
    else:
        trim_history(run_dir, state.epochs_done)


def _model_to_train(
    config: TrainConfig, info: RunInfo, state: TrainState, run_dir: Path, *, resuming: bool, tf: Any
) -> tuple[Any, TrainState]:
    """The latest checkpoint when resuming after a finished epoch, else a new compiled model.

    Call inside the strategy's scope.
    """
    from models.common.architectures import build_model

    # TensorFlow's CPU kernels only do channels_last convolutions; XLA does both.
    jit = config.jit_compile or (
        config.data_format == "channels_first" and not tf.config.list_logical_devices("GPU")
    )
    if jit:
        warm_up_xla()
    latest = run_dir / LATEST_MODEL
    if resuming and state.epochs_done > 0 and latest.is_file():
        model = load_keras_model(latest, compile=True)
        print(f"resuming {run_dir} after epoch {state.epochs_done}")
        return model, state
    n_levels = info.parameter_set.n_levels.tolist()
    model = build_model(
        config.model,
        n_levels=n_levels,
        n_samples=info.n_samples,
        head=config.head,
        data_format=config.data_format,
        sample_rate=info.sample_rate,
    )
    compile_model(
        model,
        head=config.head,
        learning_rate=config.learning_rate,
        n_levels=n_levels,
        jit=jit,
        label_sigma=config.label_sigma,
        ordered=[p.ordered for p in info.parameter_set.parameters],
    )
    return model, TrainState()


def _print_outcome(state: TrainState, run_dir: Path, *, timed_out: bool) -> None:
    if timed_out:
        print(
            f"stopped after epoch {state.epochs_done}: --time_limit_s reached (continue with --resume)"
        )
    if state.best_val_loss is None:
        print("no epoch gave a finite validation loss: no best model was saved")
    else:
        print(
            f"best epoch {state.best_epoch} of {state.epochs_done} "
            f"(val_loss {state.best_val_loss:.5f}); model saved as {run_dir / BEST_MODEL}"
        )


def _input_pipelines(
    strategy: Any, dataset: SynthDataset, info: RunInfo, config: TrainConfig, clock: EpochClock
) -> tuple[Any, Any, Any]:
    """The training data (shuffled by epoch, or streamed), the validation data, and a closer."""
    common = {"dataset": dataset, "batch_size": config.batch_size}
    val_data = distribute(
        strategy,
        make_dataset,
        indices=usable_indices(dataset, info.split.indices("validation")),
        **common,
    )
    if config.stream:
        stream = _stream_input(dataset, info, config)
        return distribute(strategy, stream.build, clock=clock), val_data, stream.close
    train_data = distribute(
        strategy,
        make_dataset,
        indices=usable_indices(dataset, info.split.indices("train")),
        shuffle=Shuffle(seed=config.seed, clock=clock),
        **common,
    )
    return train_data, val_data, lambda: None


def _stream_input(dataset: SynthDataset, info: RunInfo, config: TrainConfig) -> Any:
    from models.common.stream import StreamInput, StreamSpec

    spec = StreamSpec(
        generator_name=info.generator_name,
        generator_config=dict(info.generator_config),
        seed=int(info.dataset_identity["seed"]),
        first_index=int(info.settings["stream_first_index"]),
        batch_size=config.batch_size,
        steps_per_epoch=int(config.examples_per_epoch or 0) // config.batch_size,
        workers=config.workers,
        sampler=config.sampler,
    )
    return StreamInput(spec, parameter_set=info.parameter_set, n_samples=info.n_samples)


def _callbacks(
    config: TrainConfig, state: TrainState, run_dir: Path, clock: EpochClock, *, write: bool
) -> tuple[Any, list[Any]]:
    """The run's checkpoint callback, and every callback of the fit."""
    import keras

    SetEpoch, RunCheckpoint = checkpoint_callbacks()
    checkpoint = RunCheckpoint(run_dir, state, config.patience, write, config.time_limit_s)
    callbacks: list[Any] = [SetEpoch(clock), checkpoint]
    if config.tensorboard and write:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard")))
    return checkpoint, callbacks


@contextlib.contextmanager
def _closing(close: Callable[[], None]) -> Iterator[None]:
    try:
        yield
    finally:
        close()


def _fit(
    config: TrainConfig,
    info: RunInfo,
    state: TrainState,
    dataset: SynthDataset,
    run_dir: Path,
    *,
    resuming: bool,
    tf: Any,
) -> Path:
    import keras

    write = is_chief()
    # First: a multi-worker strategy must exist before TensorFlow runs any op.
    strategy = get_strategy()
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model, state = _model_to_train(config, info, state, run_dir, resuming=resuming, tf=tf)

    clock = EpochClock(state.epochs_done)
    train_data, val_data, close_input = _input_pipelines(strategy, dataset, info, config, clock)
    # Only now, with the model built and the data ready, is the run recorded.
    _prepare_run_dir(run_dir, info, state, resuming=resuming, write=write)
    checkpoint, callbacks = _callbacks(config, state, run_dir, clock, write=write)
    if config.verbose:
        source = (
            f"{config.examples_per_epoch} new examples per epoch (--stream)"
            if config.stream
            else f"{info.split.size('train')} examples"
        )
        print(
            f"training {config.model} ({model.count_params():,} weights) on {source}, "
            f"validating on {info.split.size('validation')}; "
            f"{strategy.num_replicas_in_sync} replica(s); run folder {run_dir}"
        )
    with warnings.catch_warnings(), _closing(close_input):
        if strategy.num_replicas_in_sync > 1:
            # Keras cannot know the steps of a multi-replica pipeline before its
            # first pass and warns when the pass ends; that end is expected.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=config.epochs,
            initial_epoch=state.epochs_done,
            callbacks=callbacks,
            verbose=config.verbose,
        )
    if checkpoint.diverged is not None:
        raise _diverged(checkpoint.diverged, state, config, run_dir)
    state.finished = not checkpoint.stopped_for_time
    if write:
        state.save(run_dir)
    if config.verbose:
        _print_outcome(state, run_dir, timed_out=checkpoint.stopped_for_time)
    return run_dir


def _diverged(what: str, state: TrainState, config: TrainConfig, run_dir: Path) -> InverSynthError:
    """The error of a training whose epoch ``state.epochs_done + 1`` went non-finite."""
    if state.epochs_done:
        kept = f"{run_dir} keeps its {state.epochs_done} finite epoch(s), best {state.best_epoch}"
    else:
        kept = "no epoch of the run finished"
    return InverSynthError(
        f"training diverged: epoch {state.epochs_done + 1} ended with {what} (not finite) and "
        f"was not saved; {kept}; try a lower --learning_rate than {config.learning_rate:g}"
    )
