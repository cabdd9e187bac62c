"""Importing TensorFlow without its start-up noise.

TensorFlow's C++ side writes log lines straight to the process's stderr when
it loads: CUDA stubs that find no driver, CPU instruction notes, a failed
``cuInit`` on a machine with the CUDA runtime but no GPU. They come before a
command's own output and before its ``error:`` line, and say nothing about
the command. :func:`import_tensorflow` imports TensorFlow (and probes for
GPUs, which is when ``cuInit`` complains) with ``TF_CPP_MIN_LOG_LEVEL=2`` and
stderr captured, then writes back every captured line except that noise.

Every path of the toolkit that first loads TensorFlow goes through it
(training, loading a run). XLA announces its first compilation once per
process, past the log level; :func:`warm_up_xla` makes that first
compilation a tiny one, quietly, before a training that uses XLA. Set
``TF_CPP_MIN_LOG_LEVEL`` yourself to see TensorFlow's logs as they are: then
nothing is filtered. The level this module sets is marked as its own
(:data:`OWN_LEVEL_MARK`), so that a process started by a toolkit process
(a benchmark's worker, a command run from a test or a script) inherits the
filtering and not the level alone: a level of 2 lets ``cuInit``'s ERROR line
through, which is why the level alone was never enough.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType

__all__ = ["NOISE", "OWN_LEVEL_MARK", "import_tensorflow", "user_chose_log_level", "warm_up_xla"]

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# Set beside LOG_LEVEL when the toolkit set it: the level is then the toolkit's, not the user's.
OWN_LEVEL_MARK = "_INVERSYNTH_TF_LOG_LEVEL"

NOISE = re.compile(
    r"cudart_stub\.cc|failed call to cuInit|cpu_feature_guard\.cc|"
    r"^To enable the following instructions|Unable to register cu(?:DNN|FFT|BLAS) factory|"
    r"computation placer already registered|before absl::InitializeLog\(\) is called|"
    r"Compiled cluster using XLA"
)


@contextlib.contextmanager
def _filtered_stderr(noise: re.Pattern[str]) -> Iterator[None]:
    """Capture file descriptor 2 in the block; afterwards write back the lines not matching ``noise``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [
                line
                for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                if not noise.search(line)
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def user_chose_log_level() -> bool:
    """Whether ``TF_CPP_MIN_LOG_LEVEL`` is the user's own (not one a toolkit process set)."""
    level = os.environ.get(LOG_LEVEL)
    return level is not None and os.environ.get(OWN_LEVEL_MARK) != level


def import_tensorflow() -> ModuleType:
    """The ``tensorflow`` module, imported (once) without its start-up log lines.

    Probing the GPUs lists the physical devices only, so logical devices and
    a multi-worker strategy can still be configured afterwards.
    """
    if "tensorflow" in sys.modules:  # imported already: whatever it said is said
        import tensorflow as tf

        return tf
    if user_chose_log_level():  # the user chose what to see
        import tensorflow as tf

        return tf
    os.environ[LOG_LEVEL] = os.environ[OWN_LEVEL_MARK] = "2"  # no INFO or WARNING lines
    with _filtered_stderr(NOISE):
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # where cuInit fails without a driver
    return tf


def warm_up_xla() -> None:
    """Compile a tiny XLA function, quietly: XLA logs its first compilation (once per process)."""
    tf = import_tensorflow()
    if os.environ.get(LOG_LEVEL) != "2" or getattr(warm_up_xla, "done", False):
        return
    with _filtered_stderr(NOISE):
        tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(0.0))
    warm_up_xla.done = True  # type: ignore[attr-defined]
