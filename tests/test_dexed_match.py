"""Matching a sound on the DX7: the voice space's search, the note played, the bank written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from core.errors import InverSynthError
from models.common.data import Split

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "plugin_config" / "dexed_small.json"
VOICE = REPO / "plugin_config" / "dexed_voice.json"
RATE, N_SAMPLES = 16384, 8192


def _saw(note: int, rate: int, seconds: float) -> np.ndarray:
    hz = 440.0 * 2 ** ((note - 69) / 12)
    t = np.arange(int(rate * seconds)) / rate
    y = sum(np.sin(2 * np.pi * k * hz * t) / k for k in range(1, int(rate / 2 / hz)))
    return (0.3 * y * np.exp(-2.0 * t)).astype(np.float32)


def test_a_voice_played_at_another_note_with_its_transpose_moved_sounds_the_same(
    extra: Any,
) -> None:
    from generators.dexed.synth import DexedGenerator

    at_c4 = DexedGenerator(dexed_config=VOICE, sample_rate=RATE, n_samples=N_SAMPLES)
    ps = at_c4.parameter_set
    from generators.dexed.engine import engine_parameter

    # Dexed's INIT VOICE with a random operator 2 modulating operator 1 (algorithm 1),
    # and random transposes: voices that sound.
    names = ps.names
    indices = np.array([[engine_parameter(n)[1].init for n in names]] * 6, dtype=np.int64)
    rng = np.random.default_rng(3)
    for name, high in (("op2_output_level", 90), ("op2_frequency_coarse", 8), ("transpose", 48)):
        indices[:, names.index(name)] = rng.integers(0, high + 1, size=6)
    values = ps.to_values(indices)
    assert np.all(np.max(np.abs(at_c4.render(values)), axis=1) > 0.1)
    for row, note in zip(values, (45, 57, 60, 67, 79, 100), strict=True):
        voice, played = at_c4.voice_for_note(row, note)
        assert played % 12 == note % 12  # the note itself, or an octave of it
        elsewhere = DexedGenerator(
            dexed_config=VOICE, sample_rate=RATE, n_samples=N_SAMPLES, pitch=played
        )
        np.testing.assert_array_equal(
            elsewhere.render_voices(voice[None, :]), at_c4.render(row[None, :])
        )


def _dx7_run(tmp_path: Path, config: Path) -> Path:
    """A run folder of an untrained C1 for a Dexed config (short sounds)."""
    import keras

    from generators.dexed.synth import DexedGenerator
    from models.common.architectures import build_model
    from models.common.run import BEST_MODEL, RunInfo, save_model_atomic

    generator = DexedGenerator(
        dexed_config=config, sample_rate=RATE, n_samples=N_SAMPLES, note_length_s=0.3
    )
    run_dir = tmp_path / "C1_dexed"
    run_dir.mkdir()
    info = RunInfo(
        model_name="C1", head="softmax", data_format="channels_last",
        parameter_set=generator.parameter_set, generator_name="dexed",
        generator_config=generator.config(), sample_rate=RATE, n_samples=N_SAMPLES,
        dataset_identity={"fingerprint": "none"}, dataset_paths=[],
        split=Split((0.8, 0.1, 0.1), 100), settings={"decode": "median"},
    )  # fmt: skip
    info.save(run_dir)
    keras.utils.set_random_seed(0)
    n_levels = generator.parameter_set.n_levels.tolist()
    model = build_model("C1", n_levels=n_levels, n_samples=N_SAMPLES, head="softmax")
    save_model_atomic(model, run_dir / BEST_MODEL, info=info)
    return run_dir


def test_a_dx7_match_is_a_bank_named_after_the_sound_played_at_its_note(
    extra: Any, tmp_path: Path
) -> None:
    from generators.dexed.engine import read_syx_voices, voice_name
    from generators.dexed.synth import DexedGenerator
    from models.common.run import load_run
    from models.matching.match_settings import MatchSettings
    from models.matching.match_sounds import match_sound_file, run_matcher
    from models.matching.objective import Budget

    run = load_run(_dx7_run(tmp_path, SMALL))
    generator = run.make_generator()
    matcher = run_matcher(run, generator=generator, progress=False)
    sound = tmp_path / "bright tone.wav"
    sf.write(sound, _saw(57, 22050, 0.5), 22050)  # A3
    outcome = match_sound_file(
        run, sound, matcher=matcher, output_dir=tmp_path / "out", stem="bright tone",
        settings=MatchSettings(budget=Budget(renders=24)),
    )  # fmt: skip
    note = outcome.record["note"]
    assert note["midi"] == 57 and note["name"] == "A3" and note["synth_note"] == 60
    assert abs(note["pitch"]["midi"] - 57) < 0.5
    patch = outcome.files["patch"]
    assert patch.name == "bright tone.syx" and patch.stat().st_size == 4104  # a 32-voice bank
    voices = read_syx_voices(patch)
    assert len(voices) == 32 and voice_name(voices[0]) == "BRIGHT TON"
    # Dexed playing slot 1 at the recorded note plays the match, sample for sample.
    at_note = DexedGenerator(**{**run.generator_config, "pitch": note["midi"]})
    np.testing.assert_array_equal(at_note.render_voices(voices[:1])[0], outcome.match.audio)


def test_predict_says_how_to_install_the_extra_for_the_dx7(monkeypatch: pytest.MonkeyPatch) -> None:
    import models.predict
    from models.predict import main

    def missing() -> Any:
        raise InverSynthError(
            "the Dexed (DX7) synth needs the optional extra 'dexed': uv sync --extra dexed"
        )

    monkeypatch.setattr(models.predict, "require_dexed", missing)
    with pytest.raises(InverSynthError, match="uv sync --extra dexed"):
        main(["x.wav", "--synth", "dexed"])


def test_a_large_space_is_searched_by_steps_and_parts(extra: Any) -> None:
    """From a voice with a few parameters moved, the search finds its way back."""
    from generators.dexed.synth import DexedGenerator
    from models.matching.distance import MultiResolutionDistance
    from models.matching.objective import Budget, Objective
    from models.matching.search import LARGE_SPACE_LEVELS, SearchPrior, search

    generator = DexedGenerator(dexed_config=VOICE, sample_rate=RATE, n_samples=N_SAMPLES)
    ps = generator.parameter_set
    assert ps.n_outputs > LARGE_SPACE_LEVELS
    from generators.dexed.engine import engine_parameter

    names = ps.names
    # The voice space's class indices are DX7 values: Dexed's INIT VOICE, with
    # operator 2 (ratio 2) modulating operator 1 (algorithm 1).
    target = np.array([engine_parameter(n)[1].init for n in names], dtype=np.int64)
    target[names.index("op2_output_level")] = 75
    target[names.index("op2_frequency_coarse")] = 2
    start = target.copy()
    for name, move in (("op2_output_level", -6), ("op2_env_rate1", -4), ("feedback", 3)):
        j = names.index(name)
        start[j] = int(np.clip(start[j] + move, 0, ps.n_levels[j] - 1))
    distance = MultiResolutionDistance(sample_rate=RATE)
    audio = generator.render_indices(target[None, :])[0]
    objective = Objective(
        render=generator.render, parameter_set=ps, distance=distance,
        target=distance.target(audio), budget=Budget(renders=1500),
    )  # fmt: skip
    found = search(objective, prior=SearchPrior(starts=start[None, :]), seed=0)
    start_distance = float(
        distance.distance(distance.target(audio), generator.render_indices(start[None, :]))[0]
    )
    assert start_distance > 1.0 and found.distance < 0.5 * start_distance
    assert found.renders <= 1500


def test_a_rate_the_engine_plays_silence_at_is_refused(extra: Any) -> None:
    from generators.dexed.engine import INIT_VOICE, voices_from_values
    from generators.dexed.synth import MIN_SAMPLE_RATE_HZ, DexedGenerator

    with pytest.raises(InverSynthError, match="plays silence below"):
        DexedGenerator(dexed_config=VOICE, sample_rate=8192, n_samples=4096)
    lowest = DexedGenerator(dexed_config=VOICE, sample_rate=MIN_SAMPLE_RATE_HZ, n_samples=4096)
    init = voices_from_values(INIT_VOICE[None, :])
    assert np.max(np.abs(lowest.render_voices(init))) > 0.5  # Dexed's INIT VOICE: a full sine


def test_the_dx7_legend_gives_the_six_operators_one_line_each_field(extra: Any) -> None:
    from generators.dexed.synth import DexedGenerator
    from models.matching.legend import legend_lines

    lines = legend_lines(DexedGenerator(dexed_config=VOICE).parameter_set)
    assert len(lines) == 40  # 145 parameters: 25 of their own, 15 fields of six operators
    assert any(
        line.startswith("op1..6_output_level ") and "Operator 1..6" in line for line in lines
    )
