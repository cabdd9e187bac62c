"""Training speed settings: scaled learning rates, CPU feature detection, the options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from core.errors import InverSynthError
from models.cli.training_app import _train_config
from models.common.speed import (
    bfloat16_support,
    cpu_flags,
    resolve_learning_rate,
    scaled_learning_rate,
)
from models.spectrogram_cnn import ENTRY_POINT


def test_learning_rate_rules_start_from_the_papers_setting() -> None:
    assert scaled_learning_rate(16) == pytest.approx(1e-3)
    assert scaled_learning_rate(64) == pytest.approx(2e-3)  # sqrt(64 / 16) = 2
    assert scaled_learning_rate(64, rule="linear") == pytest.approx(4e-3)
    assert resolve_learning_rate(5e-4, batch_size=64) == 5e-4
    assert resolve_learning_rate("scaled", batch_size=32) == pytest.approx(1e-3 * math.sqrt(2))
    with pytest.raises(InverSynthError, match="'cubic'"):
        scaled_learning_rate(16, rule="cubic")
    with pytest.raises(InverSynthError, match="0"):
        scaled_learning_rate(0)


def test_bfloat16_needs_native_support(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx2", "fma"}
    assert cpu_flags(tmp_path / "missing") == set()
    ok, why = bfloat16_support({"avx2", "fma"})
    assert not ok and "only avx2" in why
    ok, why = bfloat16_support({"avx512f", "avx512_bf16"})
    assert ok and "avx512_bf16" in why


def test_options_resolve_the_learning_rate_and_pass_the_speed_settings() -> None:
    parser = ENTRY_POINT.get_parser()
    args = parser.parse_args(
        ["--dataset_file", "x.hdf5", "--batch_size", "64", "--learning_rate", "scaled",
         "--jit_compile", "--stream", "--examples_per_epoch", "640", "--workers", "1"]
    )  # fmt: skip
    config = _train_config(args, "x.hdf5")
    assert config.learning_rate == pytest.approx(2e-3)  # a number, as run.json records it
    assert config.jit_compile and config.stream and config.examples_per_epoch == 640
    assert "jit_compile" not in config.settings()  # a speed setting, not part of the run
    default = _train_config(parser.parse_args(["--dataset_file", "x.hdf5"]), "x.hdf5")
    assert (default.batch_size, default.learning_rate) == (16, 1e-3)  # the paper's
    assert not default.jit_compile and not default.stream
    with pytest.raises(SystemExit):
        parser.parse_args(["--dataset_file", "x.hdf5", "--learning_rate", "fast"])
