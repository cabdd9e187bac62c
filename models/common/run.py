"""A training run on disk, and loading it back for prediction.

A run is one folder, ``{output_dir}/{run_name}``:

==================  ============================================================
``run.json``        what the model is and what it was trained on: model name,
                    head, data format, the parameter set, the synth (generator
                    name + config), sample rate and length, the dataset's
                    identity and files, the split, the training settings
``model.keras``     the best model so far (lowest validation loss)
``latest.keras``    the model after the last finished epoch (for ``--resume``)
``state.json``      training progress: epochs done, best epoch, patience count
``history.csv``     one row of training / validation metrics per epoch
``.lock``           held by the training that writes the folder (its process id)
``evaluation/``     metrics of the test split, plots, predictions, resynthesis
                    metrics, the listening report
                    (:mod:`models.evaluation.evaluation_folder`)
==================  ============================================================

:func:`load_run` needs nothing but the folder: the model predicts, the
parameter set decodes its scores, and :meth:`Run.make_generator` rebuilds the
synth to re-render what it predicted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.checks import check_audio, check_positive_int
from core.errors import InverSynthError
from core.storage import atomic_path
from generators.dataset import SynthDataset, open_dataset
from generators.parameters import ParameterSet
from models.common.data import Split
from models.common.model_file import (
    check_model_matches,
    load_keras_model,
    model_description,
    non_finite_weights,
    read_model_record,
    records_sample_rate,
    register_custom_objects,
    write_model_record,
)
from models.common.records import write_json_atomic

__all__ = [
    "BEST_MODEL",
    "EVALUATION_DIR",
    "HISTORY_FILE",
    "LATEST_MODEL",
    "LOCK_FILE",
    "RUN_FILE",
    "STATE_FILE",
    "Run",
    "RunInfo",
    "check_dataset",
    "load_run",
    "lock_run_folder",
    "non_finite_weights",
    "register_custom_objects",
    "save_model_atomic",
]

RUN_FORMAT_VERSION = 1
RUN_FILE = "run.json"
STATE_FILE = "state.json"
BEST_MODEL = "model.keras"
LATEST_MODEL = "latest.keras"
HISTORY_FILE = "history.csv"
EVALUATION_DIR = "evaluation"
LOCK_FILE = ".lock"


@contextlib.contextmanager
def lock_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold ``{run_dir}/.lock`` while the block runs: one process writes a run folder at a time.

    The lock is ``flock``'s, so it ends with the process, however that ends;
    the file keeps the process id of its last holder for the message.

    Raises
    ------
    InverSynthError
        The folder is locked by another process (naming it), or cannot be locked.
    """
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InverSynthError(f"cannot lock run folder {str(run_dir)!r}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            raise InverSynthError(
                f"run folder {str(run_dir)!r} is in use by another training of it "
                f"(process {holder}); wait for it to end, or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def save_model_atomic(model: Any, path: Path, *, info: RunInfo | None = None) -> None:
    """``model.save(path)`` through a temporary file, so an interrupted save leaves the old file.

    The file carries the model record of ``info``, by default of the
    ``run.json`` beside ``path`` (a model saved into its run folder), so that
    loading it checks ``run.json`` against it (:mod:`models.common.model_file`).

    Raises
    ------
    InverSynthError
        The model holds non-finite weights: they are never saved.
    """
    path = Path(path)
    bad = non_finite_weights(model)
    if bad:
        raise InverSynthError(
            f"not saving {str(path)!r}: weights {', '.join(bad[:3])} are not finite (NaN or inf)"
        )
    if info is None and (path.parent / RUN_FILE).is_file():
        info = RunInfo.load(path.parent)
    with atomic_path(path) as tmp:  # the same suffix: Keras insists on .keras
        model.save(tmp)
        if info is not None:
            write_model_record(tmp, info.model_description())


@dataclass(frozen=True)
class RunInfo:
    """The contents of ``run.json``."""

    model_name: str
    head: str
    data_format: str
    parameter_set: ParameterSet
    generator_name: str
    generator_config: dict[str, Any]
    sample_rate: int
    n_samples: int
    dataset_identity: dict[str, Any]
    dataset_paths: list[str]
    split: Split
    settings: dict[str, Any]
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def decoding(self) -> str:
        """How the network's guess is read (``--decode``): ``argmax``, or ``median`` of ordered parameters."""
        return str(self.settings.get("decode", "argmax"))

    def decode(self, scores: np.ndarray) -> np.ndarray:
        """The network's guess of scores [B, n_outputs]: class indices [B, P] (:attr:`decoding`)."""
        if self.decoding == "median":
            return self.parameter_set.decode_median(scores)
        return self.parameter_set.decode(scores)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": RUN_FORMAT_VERSION,
            "model": self.model_name,
            "head": self.head,
            "data_format": self.data_format,
            "parameter_set": self.parameter_set.to_dict(),
            "generator": self.generator_name,
            "generator_config": self.generator_config,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "dataset": {"identity": self.dataset_identity, "paths": self.dataset_paths},
            "split": self.split.to_dict(),
            "settings": self.settings,
            "versions": self.versions,
            "created": self.created,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "run.json") -> RunInfo:
        try:
            if data.get("format_version") != RUN_FORMAT_VERSION:
                raise InverSynthError(
                    f"{source} has format version {data.get('format_version')!r}, "
                    f"this toolkit reads version {RUN_FORMAT_VERSION}"
                )
            return cls(
                model_name=str(data["model"]),
                head=str(data["head"]),
                data_format=str(data["data_format"]),
                parameter_set=ParameterSet.from_dict(data["parameter_set"]),
                generator_name=str(data["generator"]),
                generator_config=dict(data["generator_config"]),
                sample_rate=int(data["sample_rate"]),
                n_samples=int(data["n_samples"]),
                dataset_identity=dict(data["dataset"]["identity"]),
                dataset_paths=[str(p) for p in data["dataset"]["paths"]],
                split=Split.from_dict(data["split"]),
                settings=dict(data["settings"]),
                versions=dict(data.get("versions", {})),
                created=str(data.get("created", "")),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InverSynthError(f"{source} is malformed: missing or bad {exc}") from None

    @classmethod
    def for_dataset(
        cls,
        dataset: SynthDataset,
        *,
        model_name: str,
        head: str,
        data_format: str,
        split: Split,
        settings: dict[str, Any],
    ) -> RunInfo:
        """A new run's record for training on ``dataset``."""
        return cls(
            model_name=model_name,
            head=head,
            data_format=data_format,
            parameter_set=dataset.parameter_set,
            generator_name=dataset.generator_name,
            generator_config=dict(dataset.generator_config),
            sample_rate=dataset.sample_rate,
            n_samples=dataset.n_samples,
            dataset_identity=dataset.identity,
            dataset_paths=[str(Path(p).resolve()) for p in dataset.paths],
            split=split,
            settings=dict(settings),
            versions=_versions(),
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )

    def save(self, run_dir: Path) -> None:
        write_json_atomic(Path(run_dir) / RUN_FILE, self.to_dict())

    def model_description(self) -> dict[str, Any]:
        """What defines the model's input and output (:func:`~models.common.model_record.model_description`)."""
        return model_description(
            model_name=self.model_name,
            head=self.head,
            data_format=self.data_format,
            sample_rate=self.sample_rate,
            n_samples=self.n_samples,
            generator_name=self.generator_name,
            parameter_set=self.parameter_set,
        )

    @property
    def fingerprint(self) -> str:
        """16 hex digits that identify the run: its model, parameters, dataset, split, settings, creation.

        Records made from a run (an evaluation folder's) carry it, so that they
        are never taken for another run's. Where the run folder or its dataset
        lie is not part of it: a moved or exported run keeps its fingerprint.
        """
        payload = {
            "model": self.model_name,
            "head": self.head,
            "data_format": self.data_format,
            "generator": self.generator_name,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "parameters": self.parameter_set.names,
            "n_levels": self.parameter_set.n_levels.tolist(),
            "dataset": self.dataset_identity.get("fingerprint", self.dataset_identity),
            "split": self.split.to_dict(),
            "settings": self.settings,
            "created": self.created,
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def load(cls, run_dir: Path) -> RunInfo:
        path = Path(run_dir) / RUN_FILE
        if Path(run_dir).exists() and not Path(run_dir).is_dir():
            raise InverSynthError(f"run folder {str(run_dir)!r} is a file, not a folder")
        if not Path(run_dir).is_dir():
            raise InverSynthError(f"run folder {str(run_dir)!r} does not exist")
        if not path.is_file():
            raise InverSynthError(f"{str(run_dir)!r} is not a run folder (no {RUN_FILE})")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InverSynthError(f"{str(path)!r} is not valid JSON: {exc}") from None
        return cls.from_dict(data, source=str(path))


def _versions() -> dict[str, str]:
    import kapre
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "kapre": kapre.__version__,
        "numpy": np.__version__,
    }


def check_dataset(info: RunInfo, dataset: SynthDataset, *, same_dataset: bool = False) -> None:
    """Refuse a dataset the run's model cannot be used with.

    Parameters
    ----------
    info : RunInfo
    dataset : SynthDataset
    same_dataset : bool
        Also require the very dataset the run was trained on (same seed and
        size: resuming training). Otherwise any dataset of the same synth,
        synth settings and parameter set will do (evaluating on new examples).

    Raises
    ------
    InverSynthError
        Naming what differs.
    """
    where = ", ".join(str(p) for p in dataset.paths)
    if not dataset.parameter_set.matches(info.parameter_set):
        mine, theirs = info.parameter_set.names, dataset.parameter_set.names
        detail = (
            f"parameters {theirs} vs the model's {mine}"
            if mine != theirs
            else "same parameter names but different levels"
        )
        raise InverSynthError(f"dataset {where} does not match the run's parameter set ({detail})")
    checks: list[tuple[str, Any, Any]] = [
        ("generator", dataset.generator_name, info.generator_name),
        ("generator_config", dataset.generator_config, info.generator_config),
        ("sample_rate", dataset.sample_rate, info.sample_rate),
        ("n_samples", dataset.n_samples, info.n_samples),
    ]
    for key, theirs, mine in checks:
        if theirs != mine:
            raise InverSynthError(
                f"dataset {where} was made with {key}={theirs!r}, the run's model with {key}={mine!r}"
            )
    if same_dataset:
        theirs_fp = dataset.identity.get("fingerprint")
        mine_fp = info.dataset_identity.get("fingerprint")
        if theirs_fp != mine_fp:
            raise InverSynthError(
                f"dataset {where} is not the dataset this run was trained on "
                f"(fingerprint {theirs_fp} vs {mine_fp}; seed {dataset.seed} vs "
                f"{info.dataset_identity.get('seed')}, {dataset.n_examples} vs "
                f"{info.dataset_identity.get('n_examples')} examples)"
            )


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def runnable_model(model: Any, info: RunInfo) -> Any:
    """``model``, or a channels_last copy of it where channels_first cannot run (CPU).

    Keras keeps conv kernels in the same layout for both formats and Flatten
    follows ``data_format``, so the copy computes the same function.
    """
    if info.data_format != "channels_first" or _has_gpu():
        return model
    from models.common.architectures import build_model

    copy = build_model(
        info.model_name,
        n_levels=info.parameter_set.n_levels.tolist(),
        n_samples=info.n_samples,
        head=info.head,
        data_format="channels_last",
        sample_rate=info.sample_rate,
    )
    copy.set_weights(model.get_weights())
    return copy


class Run:
    """A trained model with everything needed to use it.

    Use :func:`load_run` to make one.

    Attributes
    ----------
    run_dir : Path
    info : RunInfo
    model : keras.Model
        Input audio [batch, n_samples] float32, output scores [batch, n_outputs].
    """

    def __init__(self, run_dir: Path, info: RunInfo, model: Any) -> None:
        self.run_dir = Path(run_dir)
        self.info = info
        self.model = model
        self._runnable = runnable_model(model, info)
        self._predict_fn: Any = None

    # ---- what the run is ---------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.info.model_name

    @property
    def parameter_set(self) -> ParameterSet:
        return self.info.parameter_set

    @property
    def generator_name(self) -> str:
        return self.info.generator_name

    @property
    def generator_config(self) -> dict[str, Any]:
        return dict(self.info.generator_config)

    @property
    def sample_rate(self) -> int:
        return self.info.sample_rate

    @property
    def n_samples(self) -> int:
        return self.info.n_samples

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.info.settings)

    @property
    def dataset_identity(self) -> dict[str, Any]:
        return dict(self.info.dataset_identity)

    @property
    def decoding(self) -> str:
        return self.info.decoding

    def decode(self, scores: np.ndarray) -> np.ndarray:
        """The network's guess of scores [B, n_outputs]: class indices [B, P] (:meth:`RunInfo.decode`)."""
        return self.info.decode(scores)

    @property
    def dataset_paths(self) -> list[str]:
        return list(self.info.dataset_paths)

    @property
    def split(self) -> Split:
        return self.info.split

    @property
    def evaluation_dir(self) -> Path:
        return self.run_dir / EVALUATION_DIR

    # ---- prediction --------------------------------------------------------
    def predict_scores(self, audio: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """The model's scores.

        Parameters
        ----------
        audio : np.ndarray [batch, n_samples] (or [n_samples], or [batch, n_samples, 1]), float
            At the run's sample rate.
        batch_size : int
            Examples per forward pass (memory vs speed).

        Returns
        -------
        scores : np.ndarray [batch, n_outputs], float32
            Probabilities in the layout of ``parameter_set.encode``.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        x = np.asarray(audio)
        if x.ndim == 3 and x.shape[-1] == 1:  # [batch, n_samples, 1]
            x = x[..., 0]
        x = check_audio(x, name="audio", n_samples=self.n_samples, batch=True)
        if self._predict_fn is None:
            import tensorflow as tf

            model = self._runnable
            self._predict_fn = tf.function(
                lambda a: model(a, training=False),
                input_signature=[tf.TensorSpec([None, self.n_samples], tf.float32)],
                reduce_retracing=True,
            )
        outputs = [
            np.asarray(self._predict_fn(x[i : i + batch_size]))
            for i in range(0, x.shape[0], batch_size)
        ]
        if not outputs:
            return np.zeros((0, self.parameter_set.n_outputs), dtype=np.float32)
        return np.concatenate(outputs, axis=0).astype(np.float32)

    def predict_indices(self, audio: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
        """Predicted class index of every parameter: int64 [batch, n_parameters]."""
        return self.decode(self.predict_scores(audio, batch_size=batch_size))

    # ---- synth and data ----------------------------------------------------
    def make_generator(self, *, workers: int = 1) -> Any:
        """The synth the training data was made with (a ``SoundGenerator``).

        ``workers``: rendering threads or processes of a synth that has its own
        (:attr:`~generators.sound_generator.SoundGenerator.renders_in_parallel`: the DX7's
        engine threads, a plugin's hosts), for a matcher that renders batches;
        other synths render in the calling thread.
        """
        from generators.sound_generator import generator_class, load_generator

        config = dict(self.generator_config)
        if workers > 1 and generator_class(self.generator_name).renders_in_parallel:
            config["workers"] = int(workers)
        return load_generator(self.generator_name, config)

    def open_dataset(self, source: Any = None, *, same_dataset: bool = False) -> SynthDataset:
        """Open the training dataset (default) or another one, checked against the run."""
        paths = source if source is not None else self.dataset_paths
        dataset = open_dataset(paths)
        try:
            check_dataset(self.info, dataset, same_dataset=same_dataset)
        except InverSynthError:
            dataset.close()
            raise
        return dataset

    def __repr__(self) -> str:
        return (
            f"Run({str(self.run_dir)!r}, model={self.model_name}, generator={self.generator_name!r}, "
            f"n_parameters={self.parameter_set.n_parameters})"
        )


def load_run(run_dir: str | Path, *, checkpoint: str = "best") -> Run:
    """Load a run folder.

    Parameters
    ----------
    run_dir : path
        ``{output_dir}/{run_name}``.
    checkpoint : {"best", "latest"}
        ``model.keras`` (best validation loss) or ``latest.keras``.

    Returns
    -------
    Run

    Raises
    ------
    InverSynthError
        ``run.json`` does not describe the model (an edited file: another
        synth, parameter set, length or sample rate), naming what disagrees.
    """
    run_dir = Path(run_dir)
    info = RunInfo.load(run_dir)
    names = {"best": BEST_MODEL, "latest": LATEST_MODEL}
    if checkpoint not in names:
        raise InverSynthError(f"checkpoint must be 'best' or 'latest', got {checkpoint!r}")
    path = run_dir / names[checkpoint]
    if not path.is_file():
        raise InverSynthError(
            f"run {str(run_dir)!r} has no {names[checkpoint]} yet (no epoch has finished)"
        )
    model = load_keras_model(path, compile=False)
    record = read_model_record(path)
    check_model_matches(model, info.model_description(), record=record, model_path=path)
    if record is None and not records_sample_rate(model):
        print(
            f"warning: {str(path)!r} was saved without a record of its run, and its "
            f"front end does not depend on the sample rate: run.json's {info.sample_rate} Hz "
            "cannot be checked against the model",
            file=sys.stderr,
        )
    return Run(run_dir, info, model)
