"""Training speed settings: the learning rate of a larger batch, XLA, threads, CPU features.

What :mod:`benchmarks.train_speed` compares and the training options expose
(``--batch_size 64 --learning_rate scaled``, ``--jit_compile``). No TensorFlow
is imported at module level, so command lines can validate options cheaply.
"""

from __future__ import annotations

import math
from pathlib import Path

from core.errors import InverSynthError

__all__ = [
    "LEARNING_RATE_RULES",
    "PAPER_BATCH_SIZE",
    "PAPER_LEARNING_RATE",
    "bfloat16_support",
    "configure_threads",
    "cpu_flags",
    "resolve_learning_rate",
    "scaled_learning_rate",
]

PAPER_BATCH_SIZE = 16
PAPER_LEARNING_RATE = 1e-3  # Adam's default, the paper's setting at batch 16
# "scaled": the paper's rate times sqrt(batch / 16), the rule that keeps Adam's
# update noise per example about constant; "linear" scales with the batch.
LEARNING_RATE_RULES = ("scaled", "linear")


def scaled_learning_rate(batch_size: int, *, rule: str = "scaled") -> float:
    """The paper's learning rate (1e-3 at batch 16) carried over to ``batch_size``.

    Parameters
    ----------
    batch_size : int > 0
    rule : {"scaled", "linear"}
        ``scaled``: ``1e-3 * sqrt(batch_size / 16)``; ``linear``: ``1e-3 * batch_size / 16``.

    Returns
    -------
    learning_rate : float
    """
    if int(batch_size) != batch_size or batch_size <= 0:
        raise InverSynthError(f"batch_size must be a positive integer, got {batch_size!r}")
    if rule not in LEARNING_RATE_RULES:
        raise InverSynthError(
            f"learning rate rule must be one of {LEARNING_RATE_RULES}, got {rule!r}"
        )
    ratio = batch_size / PAPER_BATCH_SIZE
    return PAPER_LEARNING_RATE * (math.sqrt(ratio) if rule == "scaled" else ratio)


def resolve_learning_rate(value: float | str, *, batch_size: int) -> float:
    """A ``--learning_rate`` value (a number, ``scaled`` or ``linear``) as a number."""
    if isinstance(value, str):
        return scaled_learning_rate(batch_size, rule=value)
    return float(value)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where ``/proc/cpuinfo`` is absent)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def bfloat16_support(flags: set[str] | None = None) -> tuple[bool, str]:
    """Whether mixed bfloat16 precision can pay off on this CPU, and why (not).

    Without native bfloat16 arithmetic (AVX512-BF16 or AMX) TensorFlow emulates
    it, which is slower than float32.
    """
    found = cpu_flags() if flags is None else flags
    native = sorted(found & {"avx512_bf16", "amx_bf16"})
    if native:
        return True, f"the CPU has {', '.join(native)}"
    best = "avx512f" if "avx512f" in found else "avx2" if "avx2" in found else "no AVX2"
    return False, f"the CPU has no native bfloat16 (avx512_bf16 / amx_bf16), only {best}"


def configure_threads(*, intra_op: int | None = None, inter_op: int | None = None) -> None:
    """TensorFlow's thread pools; call before TensorFlow runs any op (None: TensorFlow's choice)."""
    import tensorflow as tf

    if intra_op is not None:
        tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
    if inter_op is not None:
        tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
