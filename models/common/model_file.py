"""A model's ``.keras`` file: loading it, and what it was trained for, kept inside it.

:func:`load_keras_model` reads a file this toolkit saved (its custom layers
registered first, damaged files and diverged weights refused in one line).

A run's ``run.json`` says how to use its model: the audio it takes (sample
rate, length), the outputs it gives (the parameter set's one-hot layout) and
the synth that plays them. An edited ``run.json`` (another synth, a parameter
or a level removed, 44,100 Hz for a model trained at 16,384 Hz) would make the
model predict from the wrong input, or decode its scores wrongly, without a
word. So a model is checked against its run on load (:func:`check_model_matches`):

* against what the model itself holds: its input length, its number of
  outputs, its name, the per-parameter groups of a softmax head, the layout of
  its feature maps and, for a mel front end (M1), the sample rate its mel
  bands were placed for;
* against its **model record**: every model the toolkit saves into a run
  folder carries, as one more member of the ``.keras`` zip archive
  (:data:`MODEL_RECORD_MEMBER`, which Keras ignores), the parts of ``run.json``
  that define its input and output (:func:`model_description`). The paper's
  STFT front end does not depend on the sample rate, so for C1-C6 and CE2E the
  record is what tells.

The synth's config is not in the record: a plugin's path may change with the
machine, and the synth's name and parameter set identify what it plays.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InverSynthError
from generators.parameters import ParameterSet
from models.common.tensorflow_env import import_tensorflow

__all__ = [
    "MODEL_RECORD_MEMBER",
    "check_model_matches",
    "load_keras_model",
    "model_description",
    "model_disagreements",
    "non_finite_weights",
    "read_model_record",
    "records_sample_rate",
    "register_custom_objects",
    "write_model_record",
]

MODEL_RECORD_MEMBER = "inversynth.json"
MODEL_RECORD_FORMAT = 1
_SCALARS = ("model", "head", "data_format", "sample_rate", "n_samples", "generator")


def non_finite_weights(model: Any) -> list[str]:
    """Names of the model's weights that hold a NaN or an infinity (none: [])."""
    return [
        str(getattr(weight, "path", getattr(weight, "name", "?")))
        for weight in model.weights
        if not np.all(np.isfinite(np.asarray(weight)))
    ]


def register_custom_objects() -> None:
    """Import everything a saved model refers to (kapre's layers first, then ours)."""
    import_tensorflow()  # first, so that TensorFlow starts without its log noise
    import kapre  # noqa: F401 - registers kapre's layers

    import models.common.architectures  # noqa: F401 - registers GroupedSoftmax and the loss
    from models.common.metrics import register_keras_metrics

    register_keras_metrics()


def load_keras_model(path: Path, *, compile: bool = True) -> Any:
    """Load a ``.keras`` file saved by this toolkit.

    Raises
    ------
    InverSynthError
        The file is missing, is not a Keras model this toolkit can read, or
        holds weights that are not finite (a training that diverged).
    """
    if not Path(path).is_file():
        raise InverSynthError(f"model file {str(path)!r} does not exist")
    register_custom_objects()
    import keras

    unreadable = f"{str(path)!r} is not a readable Keras model"
    if not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise InverSynthError(f"{unreadable} (not a zip archive, as every .keras file is)")
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as exc:  # Keras raises many kinds for a damaged file; all mean the same here
        detail = " ".join(str(exc).split())[:200]
        raise InverSynthError(f"{unreadable} ({type(exc).__name__}: {detail})") from None
    bad = non_finite_weights(model)
    if bad:
        raise InverSynthError(
            f"{str(path)!r} holds weights that are not finite (NaN or inf: {', '.join(bad[:3])}); "
            "the training that saved it diverged: train again with a lower --learning_rate"
        )
    return model


def model_description(
    *,
    model_name: str,
    head: str,
    data_format: str,
    sample_rate: int,
    n_samples: int,
    generator_name: str,
    parameter_set: ParameterSet,
) -> dict[str, Any]:
    """The parts of a run's description that define its model's input and output (JSON)."""
    return {
        "format_version": MODEL_RECORD_FORMAT,
        "model": str(model_name),
        "head": str(head),
        "data_format": str(data_format),
        "sample_rate": int(sample_rate),
        "n_samples": int(n_samples),
        "generator": str(generator_name),
        "parameter_set": parameter_set.to_dict(),
    }


def write_model_record(path: str | Path, description: dict[str, Any]) -> None:
    """Add ``description`` to the ``.keras`` file ``path`` (before it is renamed into place)."""
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(MODEL_RECORD_MEMBER, json.dumps(description, sort_keys=True))


def read_model_record(path: str | Path) -> dict[str, Any] | None:
    """The model record of a ``.keras`` file, or None for a model saved without one.

    Raises
    ------
    InverSynthError
        The record is there but unreadable (a damaged file).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if MODEL_RECORD_MEMBER not in archive.namelist():
                return None
            data = json.loads(archive.read(MODEL_RECORD_MEMBER))
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise InverSynthError(
            f"{str(path)!r} has a damaged model record ({MODEL_RECORD_MEMBER}: {exc})"
        ) from None
    if not isinstance(data, dict) or not all(key in data for key in (*_SCALARS, "parameter_set")):
        raise InverSynthError(f"{str(path)!r} has a malformed model record ({MODEL_RECORD_MEMBER})")
    return data


def _layer_configs(model: Any) -> dict[str, dict[str, Any]]:
    """Every layer's config by layer name (layers whose config cannot be read are left out)."""
    configs = {}
    for layer in getattr(model, "layers", []):
        try:
            configs[layer.name] = dict(layer.get_config())
        except (NotImplementedError, TypeError, AttributeError):
            continue
    return configs


def records_sample_rate(model: Any) -> bool:
    """Whether one of the model's layers was built for a sample rate (a mel front end)."""
    return any("sample_rate" in c for c in _layer_configs(model).values())


def _model_says(model: Any, description: dict[str, Any]) -> list[str]:
    """How the run's description disagrees with what the model's own layers hold."""
    from models.common.model_table import MODELS

    wrong = []
    parameter_set = ParameterSet.from_dict(description["parameter_set"])
    n_inputs = model.inputs[0].shape[-1] if getattr(model, "inputs", None) else None
    if n_inputs is not None and int(n_inputs) != description["n_samples"]:
        wrong.append(
            f"n_samples: run.json says {description['n_samples']}, the model takes {int(n_inputs)}"
        )
    n_outputs = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
    if n_outputs is not None and int(n_outputs) != parameter_set.n_outputs:
        wrong.append(
            f"parameter set: run.json's {parameter_set.n_parameters} parameters have "
            f"{parameter_set.n_outputs} one-hot outputs, the model gives {int(n_outputs)}"
        )
    if model.name in MODELS and model.name != description["model"]:
        wrong.append(f"model: run.json says {description['model']}, the model is {model.name}")
    configs = _layer_configs(model)
    for name, config in configs.items():
        if "sample_rate" in config and int(config["sample_rate"]) != description["sample_rate"]:
            wrong.append(
                f"sample_rate: run.json says {description['sample_rate']} Hz, the model's "
                f"{name} layer was built for {int(config['sample_rate'])} Hz"
            )
    levels = configs.get("scores", {}).get("n_levels")  # the softmax head's groups
    if levels is not None and [int(n) for n in levels] != parameter_set.n_levels.tolist():
        wrong.append(
            f"levels: run.json's parameters have {parameter_set.n_levels.tolist()} levels, "
            f"the model's softmax groups {list(levels)}"
        )
    layout = configs.get("flatten", {}).get("data_format")
    if layout is not None and layout != description["data_format"]:
        wrong.append(f"data_format: run.json says {description['data_format']}, the model {layout}")
    return wrong


def _record_says(record: dict[str, Any], description: dict[str, Any]) -> list[str]:
    """How the run's description disagrees with the model's record of its own run."""
    wrong = [
        f"{key}: run.json says {description[key]!r}, the model was trained with {record[key]!r}"
        for key in _SCALARS
        if record[key] != description[key]
    ]
    mine = ParameterSet.from_dict(description["parameter_set"])
    theirs = ParameterSet.from_dict(record["parameter_set"])
    if not mine.matches(theirs):
        if mine.names != theirs.names:
            detail = f"run.json has parameters {mine.names}, the model {theirs.names}"
        else:
            pairs = zip(mine.parameters, theirs.parameters, strict=True)  # the same names
            changed = [a.name for a, b in pairs if not a.matches(b)]
            detail = f"the levels or units of {', '.join(changed)} differ from the model's"
        wrong.append(f"parameter set: {detail}")
    return wrong


def model_disagreements(
    model: Any, description: dict[str, Any], *, record: dict[str, Any] | None
) -> list[str]:
    """Everything in which a run's description and its model disagree (none: [])."""
    wrong = _model_says(model, description)
    said = {w.split(":", 1)[0] for w in wrong}  # what the model itself already told
    if record is not None:
        wrong += [w for w in _record_says(record, description) if w.split(":", 1)[0] not in said]
    return wrong


def check_model_matches(
    model: Any, description: dict[str, Any], *, record: dict[str, Any] | None, model_path: Path
) -> None:
    """Refuse a model its run's description does not fit, in one line naming what disagrees.

    Parameters
    ----------
    model : keras.Model
    description : dict
        :func:`model_description` of the run (its ``run.json``).
    record : dict or None
        :func:`read_model_record` of the model file.
    model_path : Path
        The model file, for the message.

    Raises
    ------
    InverSynthError
    """
    wrong = model_disagreements(model, description, record=record)
    if wrong:
        run_file = Path(model_path).with_name("run.json")
        raise InverSynthError(
            f"{str(run_file)!r} does not describe the model {str(model_path)!r} "
            f"({'; '.join(wrong)}): was run.json edited? restore it, or train a run for it"
        )
