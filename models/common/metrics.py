"""The paper's metrics, per parameter, and their summaries by parameter group.

The groups are the parameters' own (``Parameter.group``, e.g. the FM synth's
"Filter", "Notes", ...), listed in the paper's order (:func:`group_parameters`).

For each parameter, from the scores of its ``L`` classes:

* **top-k accuracy** (k = 1..5): the true class is among the k highest scores;
* **MAE**: mean ``|predicted class index - true class index|`` (classes are
  ordinal), the prediction being the highest-scoring class;
* **MPR** (mean percentile rank): ``100 * (1 - mean(rank_of_true / (L - 1)))``,
  rank 0 being the highest score; 100 is perfect, 50 is chance.

Ranks follow a stable descending sort of the scores, so ties go to the lower
class index, the same rule as ``argmax``: top-1 accuracy is exactly
"``argmax`` equals the true class".

:func:`evaluate_scores` computes everything in NumPy for evaluation;
:class:`ParameterAccuracy` and :class:`IndexMAE` are the Keras metrics logged
during training (per-parameter means, never whole-vector versions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import InverSynthError
from generators.parameters import ALL_GROUP, PAPER_GROUPS, ParameterSet, default_group

__all__ = [
    "ALL_GROUP",
    "MAX_K",
    "Evaluation",
    "ParameterMetrics",
    "evaluate_scores",
    "group_parameters",
    "true_class_ranks",
]

MAX_K = 5


def group_parameters(parameters: ParameterSet | Sequence[str]) -> dict[str, list[str]]:
    """Parameter names of each reporting group that has any, then ``"All"``.

    Parameters
    ----------
    parameters : ParameterSet, or sequence of str
        A parameter set (each parameter's declared group), or parameter names
        (the groups of parameters that declare none:
        :func:`~generators.parameters.default_group`).

    Returns
    -------
    dict of str -> list of str
        The paper's groups first, in its order, then any others in order of
        first appearance, then ``"All"`` with every name. Parameters of no
        group (``""``) are only in ``"All"``.
    """
    if isinstance(parameters, ParameterSet):
        declared, names = parameters.groups, parameters.names
    else:
        names = list(parameters)
        declared = {}
        for name in names:
            if group := default_group(name):
                declared.setdefault(group, []).append(name)
    order = [g for g in PAPER_GROUPS if g in declared]
    order += [g for g in declared if g not in PAPER_GROUPS]
    groups = {g: declared[g] for g in order}
    groups[ALL_GROUP] = list(names)
    return groups


def true_class_ranks(scores: np.ndarray, true_index: np.ndarray) -> np.ndarray:
    """Rank of the true class among one parameter's classes (0 = highest score).

    Parameters
    ----------
    scores : np.ndarray [batch, n_levels]
    true_index : np.ndarray [batch], int

    Returns
    -------
    rank : np.ndarray [batch], int64
        Classes scored higher, plus classes scored equal with a lower index.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(true_index, dtype=np.int64)
    true_score = np.take_along_axis(s, t[:, None], axis=1)  # [batch, 1]
    cls = np.arange(s.shape[1])[None, :]
    above = (s > true_score) | ((s == true_score) & (cls < t[:, None]))
    return above.sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class ParameterMetrics:
    """Metrics of one parameter (or the mean over a group of parameters)."""

    name: str
    n_levels: int
    top_k: tuple[float, ...]  # accuracy in [0, 1] for k = 1..MAX_K
    mae: float  # in class indices
    mpr: float  # in [0, 100]

    @property
    def top1(self) -> float:
        return self.top_k[0]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "n_levels": self.n_levels}
        out.update({f"top{k}": acc for k, acc in enumerate(self.top_k, start=1)})
        out.update({"mae": self.mae, "mpr": self.mpr})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterMetrics:
        return cls(
            name=str(data["name"]),
            n_levels=int(data["n_levels"]),
            top_k=tuple(float(data[f"top{k}"]) for k in range(1, MAX_K + 1)),
            mae=float(data["mae"]),
            mpr=float(data["mpr"]),
        )


@dataclass(frozen=True)
class Evaluation:
    """Per-parameter metrics and their group means (every group weighs its parameters equally)."""

    n_examples: int
    parameters: list[ParameterMetrics]
    groups: dict[str, ParameterMetrics] = field(default_factory=dict)
    group_members: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_examples": self.n_examples,
            "groups": {
                g: {**m.to_dict(), "parameters": self.group_members[g]}
                for g, m in self.groups.items()
            },
            "parameters": [p.to_dict() for p in self.parameters],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """The inverse of :meth:`to_dict` (extra keys are ignored)."""
        groups = data["groups"]
        return cls(
            n_examples=int(data["n_examples"]),
            parameters=[ParameterMetrics.from_dict(p) for p in data["parameters"]],
            groups={g: ParameterMetrics.from_dict(m) for g, m in groups.items()},
            group_members={g: [str(n) for n in m["parameters"]] for g, m in groups.items()},
        )


def _mean_metrics(name: str, members: list[ParameterMetrics]) -> ParameterMetrics:
    return ParameterMetrics(
        name=name,
        n_levels=round(np.mean([m.n_levels for m in members])),
        top_k=tuple(float(np.mean([m.top_k[i] for m in members])) for i in range(MAX_K)),
        mae=float(np.mean([m.mae for m in members])),
        mpr=float(np.mean([m.mpr for m in members])),
    )


def evaluate_scores(
    parameter_set: ParameterSet, scores: np.ndarray, true_indices: np.ndarray
) -> Evaluation:
    """The paper's metrics of a model's scores against the true classes.

    Parameters
    ----------
    parameter_set : ParameterSet
    scores : np.ndarray [batch, n_outputs]
        The model's outputs, in the layout of ``parameter_set.encode``.
    true_indices : np.ndarray [batch, n_parameters], int
        True class indices.

    Returns
    -------
    Evaluation
        Per-parameter metrics, and their means over each group
        (:func:`group_parameters`) and over all of them ("All").
    """
    blocks = parameter_set.split_scores(scores)  # validates the shape
    true = parameter_set.check_indices(true_indices)
    if true.shape[0] != blocks[0].shape[0]:
        raise InverSynthError(
            f"scores have {blocks[0].shape[0]} examples but true_indices {true.shape[0]}"
        )
    if true.shape[0] == 0:
        raise InverSynthError("cannot evaluate on 0 examples")
    per_parameter: list[ParameterMetrics] = []
    for j, (param, block) in enumerate(zip(parameter_set.parameters, blocks, strict=True)):
        ranks = true_class_ranks(block, true[:, j])  # [batch]
        predicted = np.argmax(block, axis=1)
        n_levels = param.n_levels
        per_parameter.append(
            ParameterMetrics(
                name=param.name,
                n_levels=n_levels,
                top_k=tuple(float(np.mean(ranks < k)) for k in range(1, MAX_K + 1)),
                mae=float(np.mean(np.abs(predicted - true[:, j]))),
                mpr=float(100.0 * (1.0 - np.mean(ranks / (n_levels - 1)))),
            )
        )
    by_name = {m.name: m for m in per_parameter}
    members = group_parameters(parameter_set)
    groups = {g: _mean_metrics(g, [by_name[n] for n in names]) for g, names in members.items()}
    return Evaluation(
        n_examples=int(true.shape[0]),
        parameters=per_parameter,
        groups=groups,
        group_members=members,
    )


# --------------------------------------------------------------------------
# Keras metrics (training logs)
# --------------------------------------------------------------------------


def _gather_plan(n_levels: Sequence[int]) -> np.ndarray:
    """[n_parameters, max_levels] column indices of each parameter's block, padded with -1."""
    levels = [int(n) for n in n_levels]
    plan = np.full((len(levels), max(levels)), -1, dtype=np.int32)
    start = 0
    for j, n in enumerate(levels):
        plan[j, :n] = np.arange(start, start + n)
        start += n
    return plan


def _keras_metric_classes() -> tuple[type, type]:
    """Define the Keras metrics lazily so that importing this module needs no TensorFlow."""
    import keras
    from keras import ops

    def _block_argmax(y: Any, plan: np.ndarray) -> Any:
        """Index of the highest score within each parameter's block: [batch, n_parameters]."""
        n_outputs = int(plan.max()) + 1
        # Column n_outputs is a pad below any score, where plan says -1.
        padded = ops.concatenate([y, ops.full_like(y[:, :1], -1e9)], axis=-1)
        cols = np.where(plan < 0, n_outputs, plan)
        blocks = ops.take(padded, cols.reshape(-1), axis=1)  # [batch, P * max_levels]
        blocks = ops.reshape(blocks, (-1, plan.shape[0], plan.shape[1]))
        return ops.argmax(blocks, axis=-1)

    class _PerParameterMetric(keras.metrics.Mean):
        def __init__(self, n_levels: Sequence[int], name: str, dtype: Any = None) -> None:
            super().__init__(name=name, dtype=dtype)
            self.n_levels = [int(n) for n in n_levels]
            self._plan = _gather_plan(self.n_levels)

        def _per_example(self, true_idx: Any, pred_idx: Any) -> Any:
            raise NotImplementedError

        def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
            true_idx = _block_argmax(ops.cast(y_true, y_pred.dtype), self._plan)
            pred_idx = _block_argmax(y_pred, self._plan)
            values = self._per_example(true_idx, pred_idx)  # [batch], mean over parameters
            return super().update_state(values, sample_weight=sample_weight)

        def get_config(self) -> dict[str, Any]:
            return {"n_levels": self.n_levels, "name": self.name, "dtype": self.dtype}

    @keras.saving.register_keras_serializable(package="InverSynth")
    class ParameterAccuracy(_PerParameterMetric):
        """Top-1 accuracy of each parameter, averaged over parameters and examples."""

        def __init__(self, n_levels: Sequence[int], name: str = "top1", dtype: Any = None) -> None:
            super().__init__(n_levels, name=name, dtype=dtype)

        def _per_example(self, true_idx: Any, pred_idx: Any) -> Any:
            return ops.mean(ops.cast(ops.equal(true_idx, pred_idx), "float32"), axis=-1)

    @keras.saving.register_keras_serializable(package="InverSynth")
    class IndexMAE(_PerParameterMetric):
        """|predicted - true| class index of each parameter, averaged over parameters and examples."""

        def __init__(
            self, n_levels: Sequence[int], name: str = "index_mae", dtype: Any = None
        ) -> None:
            super().__init__(n_levels, name=name, dtype=dtype)

        def _per_example(self, true_idx: Any, pred_idx: Any) -> Any:
            diff = ops.cast(true_idx, "float32") - ops.cast(pred_idx, "float32")
            return ops.mean(ops.abs(diff), axis=-1)

    return ParameterAccuracy, IndexMAE


_KERAS_METRICS: tuple[type, type] | None = None


def keras_metrics(n_levels: Sequence[int]) -> list[Any]:
    """The training-log metrics: ``top1`` (per-parameter accuracy) and ``index_mae``.

    Parameters
    ----------
    n_levels : sequence of int
        Levels per parameter (``ParameterSet.n_levels``).
    """
    global _KERAS_METRICS
    if _KERAS_METRICS is None:
        _KERAS_METRICS = _keras_metric_classes()
    accuracy_cls, mae_cls = _KERAS_METRICS
    return [accuracy_cls(n_levels), mae_cls(n_levels)]


def register_keras_metrics() -> None:
    """Make the metric classes known to Keras (needed before loading a saved model)."""
    global _KERAS_METRICS
    if _KERAS_METRICS is None:
        _KERAS_METRICS = _keras_metric_classes()
