"""The DX7 model shipped in models/pretrained/dexed_M1: present, knows the voice space, matches."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from models.common.pretrained import PRETRAINED_DX7_RUN, pretrained_run_dir
from models.common.run import BEST_MODEL, RUN_FILE

REPOSITORY = Path(__file__).resolve().parents[1]
VOICE = REPOSITORY / "plugin_config" / "dexed_voice.json"


@pytest.fixture(scope="module")
def shipped(extra: Any) -> Any:
    from models.common.run import load_run

    return load_run(pretrained_run_dir("dexed"))


def test_the_shipped_dx7_model_is_committed() -> None:
    model = PRETRAINED_DX7_RUN / BEST_MODEL
    assert model.is_file() and (PRETRAINED_DX7_RUN / RUN_FILE).is_file()
    assert 1e6 < model.stat().st_size < 40e6  # the weights only, no optimizer state
    if (REPOSITORY / ".git").exists():  # a clone: the files are tracked, not left by a session
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(model), str(PRETRAINED_DX7_RUN / RUN_FILE)],
            cwd=REPOSITORY, capture_output=True, check=False,
        )  # fmt: skip
        assert tracked.returncode == 0, tracked.stderr


def test_it_plays_the_voice_space_and_reads_its_guess_as_medians(shipped: Any) -> None:
    from generators.dexed.synth import DexedGenerator

    voice_space = DexedGenerator(dexed_config=VOICE).parameter_set
    assert shipped.generator_name == "dexed"
    assert shipped.parameter_set.matches(voice_space) and shipped.parameter_set.n_outputs == 9569
    assert [p.ordered for p in shipped.parameter_set.parameters] == [
        p.ordered for p in voice_space.parameters
    ]
    assert shipped.decoding == "median"
    assert shipped.settings["sampler"]["kind"] == "dx7_voices"  # trained on real voices


def _fm_pairs(generator: Any, n: int) -> np.ndarray:
    """Voices no bank holds: INIT VOICE with operator 2 modulating operator 1, at random.

    The voice space's class indices are DX7 values.
    """
    from generators.dexed.engine import engine_parameter

    names = generator.parameter_set.names
    indices = np.array([[engine_parameter(m)[1].init for m in names]] * n, dtype=np.int64)
    rng = np.random.default_rng(7)
    for name, low, high in (
        ("op2_output_level", 50, 90), ("op2_frequency_coarse", 1, 4),
        ("op1_env_rate2", 20, 60), ("op1_env_level3", 40, 90), ("feedback", 0, 7),
    ):  # fmt: skip
        indices[:, names.index(name)] = rng.integers(low, high + 1, size=n)
    return indices


def test_its_guess_of_new_voices_is_closer_than_the_init_voice(shipped: Any) -> None:
    from models.matching.distance import MultiResolutionDistance

    generator = shipped.make_generator()
    targets = generator.render_indices(_fm_pairs(generator, 12))
    guesses = generator.render_indices(shipped.decode(shipped.predict_scores(targets)))
    from generators.dexed.engine import engine_parameter

    names = generator.parameter_set.names
    init = generator.render_indices(np.array([[engine_parameter(m)[1].init for m in names]]))
    distance = MultiResolutionDistance(sample_rate=generator.sample_rate)
    d_guess = [
        distance.distance(distance.target(t), g[None])[0]
        for t, g in zip(targets, guesses, strict=True)
    ]
    d_base = [distance.distance(distance.target(t), init)[0] for t in targets]
    assert np.mean(d_guess) < 0.8 * np.mean(d_base)


def test_predict_with_the_dx7_writes_a_bank_named_after_the_sound_at_its_note(
    shipped: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from generators.dexed.engine import read_syx_voices, voice_name
    from generators.dexed.synth import DexedGenerator
    from models.predict import main

    rate = 22050
    t = np.arange(rate // 2) / rate
    tone = sum(np.sin(2 * np.pi * k * 220.0 * t) / k for k in range(1, 12))  # A3, a bright tone
    sf.write(tmp_path / "my tone.wav", 0.3 * tone * np.exp(-3 * t), rate)
    monkeypatch.chdir(tmp_path)
    assert main(["my tone.wav", "--synth", "dexed", "--budget_renders", "40", "--no_plot"]) == 0
    out = tmp_path / "predictions"
    record = json.loads((out / "my tone.json").read_text())
    assert record["note"]["name"] == "A3" and record["note"]["midi"] == 57
    voices = read_syx_voices(out / "my tone.syx")
    assert len(voices) == 32 and voice_name(voices[0]) == "MY TONE"
    # Slot 1 played at the recorded note is the match (the WAV is at the input's loudness).
    match = next(c for c in record["candidates"] if c["wav"] == "my tone_resynthesis.wav")
    heard, _ = sf.read(out / "my tone_resynthesis.wav", dtype="float32")
    gain = 10 ** (match["wav_loudness"]["gain_db"] / 20)
    at_note = DexedGenerator(**{**shipped.generator_config, "pitch": record["note"]["midi"]})
    played = at_note.render_voices(voices[:1])[0]
    # To 16-bit PCM and the record's gain (to 0.01 dB: 0.12 % of a sample).
    np.testing.assert_allclose(heard / gain, played, rtol=2e-3, atol=2.0 / 32768 / gain)
