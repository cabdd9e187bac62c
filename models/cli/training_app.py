"""The training command line shared by ``models.app``, ``models.spectrogram_cnn`` and ``models.e2e_cnn``.

Each entry point (:class:`EntryPoint`) only restricts the model choice and its
default. Every option also has an environment/.env default
(``INVERSYNTH_<NAME>``, listed in ``.env.example``); the command line wins.
After training, the run is evaluated on its test split
(:func:`models.evaluation.run_evaluation.evaluate_run`), its predictions resynthesized
(:func:`models.evaluation.resynthesis.evaluate_reconstruction`) and its
listening report written (:func:`models.evaluation.listening_report.write_report`).

Examples
--------
Train C6 on ``data/fm_data.hdf5`` (or on all its shards), evaluate it::

    python -m models.spectrogram_cnn --model C6 --dataset_name fm
    python -m models.spectrogram_cnn --model C6 --dataset_file "data/fm_data.shard-*.hdf5"

Continue an interrupted run (same command plus ``--resume``)::

    python -m models.spectrogram_cnn --model C6 --dataset_name fm --resume
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from core.commandline import (
    bounded_float,
    bounded_int,
    make_parser,
    non_negative_float,
    one_of,
    positive_float,
)
from core.environment import env_default, env_value
from core.errors import InverSynthError
from core.options import (
    MAX_EXAMPLES,
    add_bool_argument,
    add_max_examples_argument,
    add_no_progress_argument,
    add_output_dir_argument,
    add_seed_argument,
    add_workers_argument,
    plain_name,
)
from generators.parameters import DECODINGS
from generators.sampling import read_sampler_spec
from generators.schema import dataset_path
from models.common.training import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_TRAIN_SEED

__all__ = ["EntryPoint", "dataset_source", "explicit_options", "get_parser"]


def _learning_rate(text: str) -> float | str:
    from models.common.speed import LEARNING_RATE_RULES

    if text in LEARNING_RATE_RULES:
        return text
    try:
        value = positive_float(text)
    except argparse.ArgumentTypeError:
        value = math.inf
    if value > 1.0:  # Adam diverges at once above 1: a typing mistake
        raise argparse.ArgumentTypeError(
            f"must be a number in (0, 1] or one of {list(LEARNING_RATE_RULES)}, got {text!r}"
        )
    return value


def _split(text: str) -> tuple[float, float, float]:
    from models.common.data import parse_split

    try:
        return parse_split(text)
    except InverSynthError as exc:  # the option or variable is named by whoever reports it
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--split ")) from None


# Counts of the training command, bounded so that a typing mistake (1e20
# examples per epoch) is refused at once rather than after TensorFlow loads.
_epochs = bounded_int(1, MAX_EPOCHS)
_batch_size = bounded_int(1, MAX_BATCH_SIZE)
_patience = bounded_int(0, MAX_EPOCHS)
_examples_per_epoch = bounded_int(1, MAX_EXAMPLES)
_time_limit_s = bounded_float(1e-3, 366 * 86400.0, unit="s")  # a year at most
_run_name = plain_name("a run name", folder_option="--output_dir")
_dataset_name = plain_name("a dataset name", folder_option="--dataset_dir")


class _Renamed(argparse.Action):
    """An option that was renamed: refuse it, naming the new one (never guess a unit)."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, message: str) -> None:
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS)
        self.message = message

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(self.message)


def _add_model_options(
    parser: argparse.ArgumentParser, models: Sequence[str], model_default: str
) -> None:
    from models.common.model_table import DATA_FORMATS, HEADS

    m = parser.add_argument_group("model")
    m.add_argument("--model", choices=list(models), default=model_default, help="architecture")
    m.add_argument(
        "--head",
        choices=HEADS,
        default=env_default("HEAD", "sigmoid", one_of(HEADS)),
        help="sigmoid: one unit per class, binary cross-entropy (paper); "
        "softmax: one softmax per parameter, summed cross-entropy",
    )
    m.add_argument(
        "--label_sigma",
        type=non_negative_float,
        default=env_default("LABEL_SIGMA", 0.0, non_negative_float),
        help="0: one-hot targets (the paper); > 0: targets spread over neighbouring classes "
        "by a Gaussian this many classes wide, which rewards near misses (better MPR and MAE); "
        "at most the largest parameter's number of levels",
    )
    m.add_argument(
        "--decode",
        choices=DECODINGS,
        default="argmax",
        help="how predict and the matchers read the network's guess: the most likely class "
        "of every parameter, or the median class of every ordered parameter (closer for "
        "parameters of many levels, such as a DX7 voice's)",
    )
    m.add_argument(
        "--data_format",
        choices=DATA_FORMATS,
        default=env_default("DATA_FORMAT", "channels_last", one_of(DATA_FORMATS)),
        help="layout of the feature maps (channels_first can be faster on GPUs)",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    d = parser.add_argument_group("data")
    d.add_argument(
        "--dataset_file",
        default=env_default("DATASET_FILE", None),
        help="dataset file, or a glob of its shards (overrides --dataset_dir/--dataset_name); "
        "with --resume and no dataset given, the run's own",
    )
    d.add_argument(
        "--dataset_dir",
        "--dataset_directory",
        dest="dataset_dir",
        type=Path,
        default=env_default("DATASET_DIRECTORY", Path("data"), Path),
        help="folder of the dataset",
    )
    d.add_argument(
        "--dataset_name",
        type=_dataset_name,
        default=env_default("NAME", None, _dataset_name),
        help="dataset name: trains on {dataset_dir}/{dataset_name}_data.hdf5 (or its shards)",
    )
    d.add_argument(
        "--split",
        type=_split,
        default=env_default("SPLIT", (0.8, 0.1, 0.1), _split),
        help="train,validation,test fractions of the examples (contiguous blocks by index)",
    )
    add_max_examples_argument(
        d, env="MAX_EXAMPLES", help="use only the first N examples of the dataset"
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    t = parser.add_argument_group("training")
    t.add_argument(
        "--epochs",
        type=_epochs,
        default=env_default("EPOCHS", 100, _epochs),
        help=f"epochs to train in all (1 to {MAX_EPOCHS}); with --resume, raise it to train longer",
    )
    t.add_argument(
        "--batch_size",
        type=_batch_size,
        default=env_default("BATCH_SIZE", 16, _batch_size),
        help=f"global batch size (all devices together; 1 to {MAX_BATCH_SIZE})",
    )
    t.add_argument(
        "--learning_rate",
        type=_learning_rate,
        default=env_default("LEARNING_RATE", cast(float | str, 1e-3), _learning_rate),
        help="Adam's learning rate, or 'scaled': the paper's 1e-3 at batch 16 times "
        "sqrt(batch_size / 16) ('linear': times batch_size / 16); run.json records the number",
    )
    add_bool_argument(
        t,
        "jit_compile",
        env="JIT_COMPILE",
        help="compile the training step with XLA (slower than the default oneDNN kernels "
        "on AVX2 CPUs; see benchmarks/train_speed.py --settings)",
    )
    add_bool_argument(
        t,
        "stream",
        env="STREAM",
        help="train on examples rendered on the fly by --workers processes, continuing the "
        "dataset's seed past its last example; validation and test stay the dataset's",
    )
    t.add_argument(
        "--examples_per_epoch",
        type=_examples_per_epoch,
        default=env_default("EXAMPLES_PER_EPOCH", None, _examples_per_epoch),
        help="--stream: new examples per epoch, rounded down to whole batches, at most "
        "1,000,000,000 (10000)",
    )
    t.add_argument(
        "--sampler",
        type=Path,
        default=None,
        help="--stream: a sampler file (plugin_config/dexed_voice_mix.json) that draws the "
        "streamed examples, e.g. real DX7 voices and their variations (default: every "
        "parameter drawn uniformly)",
    )
    t.add_argument(
        "--patience",
        type=_patience,
        default=env_default("PATIENCE", 10, _patience),
        help="stop after this many epochs without a better validation loss (0: never stop "
        f"early; at most {MAX_EPOCHS})",
    )
    add_seed_argument(
        t,
        env="TRAIN_SEED",
        high=MAX_TRAIN_SEED,
        help=f"seed of the weights' initialization and of the shuffling (0 to {MAX_TRAIN_SEED})",
    )
    t.add_argument(
        "--time_limit_s",
        type=_time_limit_s,
        default=env_default("TIME_LIMIT_S", None, _time_limit_s),
        help="seconds, at most a year: stop before an epoch that would end later (continue "
        "with --resume)",
    )
    # Without this, argparse would take "--time_limit 30" (minutes, before) for
    # "--time_limit_s 30" (seconds) as an abbreviation.
    t.add_argument(
        "--time_limit",
        action=_Renamed,
        message="--time_limit (minutes) is now --time_limit_s (seconds)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    o = parser.add_argument_group("output")
    add_output_dir_argument(
        o, default=Path("runs"), env="OUTPUT_DIR", help="folder of the run folders"
    )
    o.add_argument(
        "--run_name",
        type=_run_name,
        default=env_default("RUN_NAME", None, _run_name),
        help="the run folder is {output_dir}/{run_name}: a plain name (no folders, not "
        "starting with '.'); default {model}_{dataset name}",
    )
    o.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    o.add_argument(
        "--tensorboard",
        action="store_true",
        default=env_default("TENSORBOARD", False),
        help="write TensorBoard logs to {run}/tensorboard",
    )
    o.add_argument(
        "--no_tensorboard",
        dest="tensorboard",
        action="store_false",
        default=argparse.SUPPRESS,
        help="no TensorBoard logs (where INVERSYNTH_TENSORBOARD turns them on)",
    )
    o.add_argument("--no_evaluate", action="store_true", help="skip the test-split evaluation")
    o.add_argument(
        "--no_reconstruction",
        action="store_true",
        help="evaluate the parameters only: no resynthesis metrics, no listening report",
    )
    add_workers_argument(
        o, help="rendering processes (the resynthesis metrics; the examples of --stream)"
    )
    add_no_progress_argument(o, help="one line per epoch instead of a progress bar")


def get_parser(
    *,
    prog: str,
    models: Sequence[str],
    default_model: str,
    model_env: str,
    description: str,
) -> argparse.ArgumentParser:
    """The training options (see the module docstring).

    Parameters
    ----------
    prog : str
        Program name for help and errors.
    models : sequence of str
        Models this entry point offers.
    default_model : str
    model_env : str
        Name of the environment variable (without prefix) for ``--model``.
    description : str
    """
    model_default = env_default(model_env, default_model)
    if model_default not in models:
        raise InverSynthError(
            f"environment/.env variable INVERSYNTH_{model_env}={model_default!r} is not one of {list(models)}"
        )
    if env_value("TIME_LIMIT") is not None:
        raise InverSynthError(
            "environment/.env variable INVERSYNTH_TIME_LIMIT (minutes) is now "
            "INVERSYNTH_TIME_LIMIT_S (seconds)"
        )
    parser = make_parser(prog=prog, description=description)
    _add_model_options(parser, models, model_default)
    _add_data_options(parser)
    _add_training_options(parser)
    _add_output_options(parser)
    return parser


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations of the options that appear on the command line."""
    found: set[str] = set()
    for action in parser._actions:
        for opt in action.option_strings:
            if any(tok == opt or tok.startswith(opt + "=") for tok in argv):
                found.add(action.dest)
    return found


def dataset_source(args: argparse.Namespace) -> str:
    """The dataset file (or shard glob) the options name."""
    if args.dataset_file:
        return str(args.dataset_file)
    if not args.dataset_name and args.resume and args.run_name:
        stored = _stored_dataset(Path(args.output_dir) / args.run_name)
        if stored is not None:
            return stored
    if not args.dataset_name:
        raise InverSynthError(
            "no dataset given: pass --dataset_file PATH, or --dataset_name NAME (and --dataset_dir)"
        )
    single = dataset_path(args.dataset_dir, args.dataset_name)
    if single.exists():
        return str(single)
    shards = str(Path(args.dataset_dir) / f"{args.dataset_name}_data.shard-*-of-*.hdf5")
    if glob.glob(shards):
        return shards
    return str(single)  # open_dataset reports it missing (or unfinished)


def _stored_dataset(run_dir: Path) -> str | None:
    """The one dataset file a run to resume was trained on (``run.json``), if it names one."""
    from models.common.run import RUN_FILE, RunInfo

    if not (run_dir / RUN_FILE).is_file():
        return None
    paths = RunInfo.load(run_dir).dataset_paths
    return paths[0] if len(paths) == 1 else None


def _train_config(args: argparse.Namespace, source: str) -> Any:
    from models.common.speed import resolve_learning_rate
    from models.common.training import TrainConfig

    return TrainConfig(
        model=args.model,
        dataset=[source],
        output_dir=args.output_dir,
        run_name=args.run_name,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=resolve_learning_rate(args.learning_rate, batch_size=args.batch_size),
        head=args.head,
        label_sigma=args.label_sigma,
        decode=args.decode,
        data_format=args.data_format,
        seed=args.seed,
        patience=args.patience,
        split=args.split,
        max_examples=args.max_examples,
        resume=args.resume,
        tensorboard=args.tensorboard,
        time_limit_s=args.time_limit_s,
        verbose=2 if args.no_progress else 1,
        jit_compile=args.jit_compile,
        stream=args.stream,
        examples_per_epoch=args.examples_per_epoch,
        workers=args.workers,
        sampler=None if args.sampler is None else read_sampler_spec(args.sampler),
    )


def _evaluate(run_dir: Path, args: argparse.Namespace) -> None:
    """The test-split evaluation, resynthesis and listening report of a trained run."""
    from models.evaluation.listening_report import write_report
    from models.evaluation.resynthesis import ReconstructionOptions, evaluate_reconstruction
    from models.evaluation.run_evaluation import EvaluationOptions, evaluate_run

    # The model has just changed: what its evaluation folder holds is of an older one.
    progress = not args.no_progress
    result = evaluate_run(run_dir, EvaluationOptions(progress=progress, overwrite=True))
    if not args.no_reconstruction:
        options = ReconstructionOptions(
            evaluation_dir=result.output_dir, workers=args.workers, progress=progress,
            overwrite=True,
        )  # fmt: skip
        evaluate_reconstruction(run_dir, options)
        print(f"listening report: {write_report(run_dir, evaluation_dir=result.output_dir)}")


@dataclass(frozen=True)
class EntryPoint:
    """A training command: the models it offers and its default.

    ``python -m models.app``, ``python -m models.spectrogram_cnn`` and
    ``python -m models.e2e_cnn`` are each one of these; ``--model``'s
    environment default is ``INVERSYNTH_{model_env}``.
    """

    prog: str
    models: tuple[str, ...]
    default_model: str
    model_env: str
    description: str

    def get_parser(self) -> argparse.ArgumentParser:
        return get_parser(
            prog=self.prog,
            models=self.models,
            default_model=self.default_model,
            model_env=self.model_env,
            description=self.description,
        )

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Train (or resume), then evaluate on the test split."""
        from models.common.distribution import is_chief
        from models.common.training import train

        argv = list(sys.argv[1:] if argv is None else argv)
        parser = self.get_parser()
        args = parser.parse_args(argv)
        config = _train_config(args, dataset_source(args))
        run_dir = train(config, explicit=explicit_options(parser, argv))
        if not args.no_evaluate and is_chief():
            _evaluate(run_dir, args)
        return 0
