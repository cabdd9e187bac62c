"""Where training runs: the ``tf.distribute`` strategy, and which process writes the run.

* ``TF_CONFIG`` set: MultiWorkerMirroredStrategy (one process per machine);
* more than one GPU: MirroredStrategy over them;
* no GPU but several logical CPU devices configured: MirroredStrategy over those;
* otherwise the default strategy (one device).
"""

from __future__ import annotations

import json
import os
from typing import Any

from core.errors import InverSynthError

__all__ = ["get_strategy", "is_chief"]


def get_strategy() -> Any:
    """The ``tf.distribute`` strategy for this machine.

    * ``TF_CONFIG`` set: MultiWorkerMirroredStrategy (one process per machine);
    * more than one GPU: MirroredStrategy over them;
    * no GPU but several logical CPU devices configured: MirroredStrategy over those;
    * otherwise the default strategy (one device).
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return _multi_worker_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy(devices=[d.name for d in cpus])
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """Whether this process writes the run folder (always, except non-chief workers)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        return True
    try:
        config = json.loads(text)
        task = config.get("task", {})
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
    except (json.JSONDecodeError, AttributeError, ValueError):
        raise InverSynthError(f"TF_CONFIG is not valid JSON: {text[:200]!r}") from None
    has_chief = "chief" in config.get("cluster", {})
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0)


def _multi_worker_strategy() -> Any:
    """MultiWorkerMirroredStrategy whose ``reduce`` takes what Keras's ``fit`` gives it.

    Keras 3 passes the multi-worker strategy two things the stock one refuses:
    its first batch, an ``(audio, labels)`` pair of per-replica values, to
    build the model (MirroredStrategy takes pairs); and every step's scalar
    logs with ``axis=0``. Here a nest is reduced value by value, and a scalar
    across replicas only.
    """
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        def reduce(self, reduce_op: Any, value: Any, axis: Any) -> Any:
            parent = super().reduce

            def one(v: Any) -> Any:
                local = self.experimental_local_results(v)[0]
                scalar = tf.convert_to_tensor(local).shape.rank == 0
                return parent(reduce_op, v, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    return MultiWorkerStrategy()
