"""A match saved as the synth's preset: .fxp for a plugin, .syx for Dexed, nothing for the rest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generators.sine_generator import SineGenerator
from models.matching.match_output import write_patch

REPO = Path(__file__).resolve().parents[1]
NEKOBI = "/usr/lib/vst/Nekobi-vst.so"


def _needed(what: str, present: bool) -> None:
    if not present:
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing")  # CI has it; a skip there would hide a broken setup
        pytest.skip(f"{what} missing")


def test_a_plugin_match_is_written_as_a_preset_the_plugin_loads(tmp_path: Path) -> None:
    _needed(NEKOBI, Path(NEKOBI).exists())
    from generators.vst.synth import PlaySettings, VSTGenerator

    gen = VSTGenerator(
        plugin_config=REPO / "plugin_config" / "nekobi.json", sample_rate=16384, n_samples=8192,
        play=PlaySettings(note_length_s=0.25),
    )  # fmt: skip
    try:
        ps = gen.parameter_set
        values = ps.to_values(ps.sample_indices(seed=4, n_examples=1))[0]
        path = write_patch(gen, tmp_path / "kick.fxp", values)
        assert path == tmp_path / "kick.fxp"
        assert path.read_bytes()[:4] == b"CcnK"  # a VST2 preset chunk
    finally:
        gen.close()


def test_a_dexed_match_is_written_as_syx(tmp_path: Path) -> None:
    try:
        import dexed  # noqa: F401
    except ImportError:
        _needed("dexed-py", False)
    from generators.dexed.synth import DexedGenerator

    gen: Any = DexedGenerator(
        dexed_config=REPO / "plugin_config" / "dexed_small.json", sample_rate=16384,
        n_samples=4096, note_length_s=0.15,
    )  # fmt: skip
    ps = gen.parameter_set
    values = ps.to_values(ps.sample_indices(seed=2, n_examples=1))[0]
    path = write_patch(gen, tmp_path / "pad.syx", values)
    assert path == tmp_path / "pad.syx"
    np.testing.assert_array_equal(gen.read_syx(path), values)


def test_a_synth_without_a_preset_format_writes_nothing(tmp_path: Path) -> None:
    gen = SineGenerator(sample_rate=8192, n_samples=4096, n_levels=8)
    assert write_patch(gen, tmp_path / "tone.syx", np.zeros(2)) is None
    assert list(tmp_path.iterdir()) == []
