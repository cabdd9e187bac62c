"""Real DX7 voices as training data: collections, the held-out voices, the voice-mix sampler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dexed import engine, voices
from generators.dexed.commands import main
from generators.dexed.voice_mix import VoiceMix
from generators.dexed.voices import (
    TRAINING,
    VALIDATION,
    VoiceCollection,
    gather_voices,
    held_out_keys,
    voice_key,
)
from generators.sampling import load_sampler, read_sampler_spec

REPO = Path(__file__).resolve().parents[1]
VOICE_CONFIG = REPO / "plugin_config" / "dexed_voice.json"
_TOP = np.array([p.max_value for p in engine.ENGINE_PARAMETERS])
_BYTE = np.array([p.byte for p in engine.ENGINE_PARAMETERS])


def random_voices(seed: int, n: int) -> np.ndarray:
    """[n, 155] DX7 voices, every parameter uniform over its DX7 values."""
    dx7 = np.random.default_rng(seed).integers(0, _TOP + 1, size=(n, _TOP.size))
    out = np.zeros((n, engine.VOICE_BYTES), np.uint8)
    out[:, _BYTE] = dx7
    out[:, engine.NAME_BYTES] = np.frombuffer(b"RANDOM    ", np.uint8)
    return out


def differing(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.sum(a[: engine.N_ENGINE_PARAMETERS] != b[: engine.N_ENGINE_PARAMETERS]))


def test_the_held_out_list_is_the_voices_of_the_factory_rom_and_synprez_17_to_32() -> None:
    keys = held_out_keys()
    assert len(keys) == 745  # 768 voices, 23 of them repeated across the 24 banks
    assert all(len(k) == 16 and int(k, 16) >= 0 for k in keys)


def test_gathering_keeps_each_voice_once_and_leaves_out_held_out_voices_and_near_copies(
    extra: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = random_voices(1, 32)
    renamed = bank.copy()
    renamed[:, engine.NAME_BYTES] = np.frombuffer(b"OTHER NAME", np.uint8)  # same voices
    held = random_voices(2, 32)
    near = held.copy()
    near[:, 0] = (near[:, 0] + 1) % 100  # one parameter moved: a near copy
    mixed = np.concatenate([bank[:16], near[:16]])
    for name, v in [("a.syx", bank), ("b.syx", renamed), ("held.syx", held), ("mixed.syx", mixed)]:
        engine.write_bank(tmp_path / name, v)
    # One of the bank's voices is on the shipped held-out list (by its bytes).
    monkeypatch.setattr(voices, "held_out_keys", lambda: frozenset({voice_key(bank[3])}))
    files = [tmp_path / n for n in ("a.syx", "b.syx", "mixed.syx")]
    collection, report = gather_voices(files, held_out_files=[tmp_path / "held.syx"])
    assert report.read == 96 and report.unique == 48
    assert report.held_out_exact == 1 and report.held_out_near == 16
    kept = {voice_key(v) for v in collection.voices}
    assert voice_key(bank[3]) not in kept and len(kept) == 31 == len(collection.voices)
    assert not any(differing(v, h) <= 4 for v in collection.voices for h in held)
    # Without the held-out files, only the listed voice goes.
    alone, _ = gather_voices(files)
    assert len(alone.voices) == 47


def test_validation_voices_and_their_near_copies_never_train(extra: Any, tmp_path: Path) -> None:
    base = random_voices(3, 32)
    copies = base.copy()
    copies[:, 5] = (copies[:, 5] + 3) % 100
    engine.write_bank(tmp_path / "a.syx", base)
    engine.write_bank(tmp_path / "b.syx", copies)
    collection, report = gather_voices(
        [tmp_path / "a.syx", tmp_path / "b.syx"], validation=8, seed=4
    )
    validation, training = collection.part(VALIDATION), collection.part(TRAINING)
    assert len(validation) == 8 and report.training == len(training)
    assert all(differing(t, v) > 4 for t in training for v in validation)
    path = collection.save(tmp_path / "voices.npz")
    again = VoiceCollection.load(path)
    assert again.fingerprint == collection.fingerprint
    np.testing.assert_array_equal(again.voices, collection.voices)
    (tmp_path / "bad.npz").write_bytes(b"not a collection")
    with pytest.raises(InverSynthError, match="not a voice collection"):
        VoiceCollection.load(tmp_path / "bad.npz")
    with pytest.raises(InverSynthError, match="does not exist"):
        VoiceCollection.load(tmp_path / "missing.npz")


def _collection(tmp_path: Path, n: int = 64) -> Path:
    v = random_voices(5, n)
    return VoiceCollection(
        voices=v, role=np.zeros(n, np.uint8), sources=np.array(["r.syx"] * n)
    ).save(tmp_path / "voices.npz")


def _mix(path: Path, **spec: Any) -> VoiceMix:
    full: dict[str, Any] = {"kind": "dx7_voices", "collection": str(path), **spec}
    return VoiceMix.from_spec(full)


def test_the_voice_mix_is_a_function_of_seed_and_index(tmp_path: Path) -> None:
    mix = _mix(
        _collection(tmp_path),
        mix={"real": 1, "perturbed": 1, "recombined": 1, "random": 1},
        transpose_spread=12,
        transposed_share=0.5,
    )
    whole = mix.sample_voices(seed=7, start=0, n_examples=40)
    parts = [mix.sample_voices(seed=7, start=s, n_examples=10) for s in (0, 10, 20, 30)]
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    assert not np.array_equal(whole, mix.sample_voices(seed=8, start=0, n_examples=40))
    engine.values_from_voices(whole)  # every field within its DX7 range


def test_each_kind_of_example_is_what_it_says(tmp_path: Path) -> None:
    path = _collection(tmp_path)
    source = VoiceCollection.load(path).voices
    params = source[:, _BYTE]
    real = _mix(path, mix={"real": 1}).sample_voices(seed=0, start=0, n_examples=50)
    assert all((params == v[_BYTE]).all(axis=1).any() for v in real)
    moved = _mix(path, mix={"perturbed": 1}).sample_voices(seed=0, start=0, n_examples=50)
    fewest = [int(np.min(np.sum(params != v[_BYTE], axis=1))) for v in moved]
    assert min(fewest) >= 1 and max(fewest) <= 6
    mixed = _mix(path, mix={"recombined": 1}).sample_voices(seed=0, start=0, n_examples=50)
    assert all(not (params == v[_BYTE]).all(axis=1).any() for v in mixed)
    shifted = _mix(path, mix={"real": 1}, transpose_spread=5, transposed_share=1.0)
    t = [p.name for p in engine.ENGINE_PARAMETERS].index("transpose")
    moves = [
        int(v[_BYTE][t]) - int(r[_BYTE][t])
        for v, r in zip(shifted.sample_voices(seed=0, start=0, n_examples=50), real, strict=True)
    ]
    assert max(np.abs(moves)) <= 5 and any(moves)


def test_bad_sampler_specs_are_refused_in_one_line(tmp_path: Path) -> None:
    path = _collection(tmp_path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mix": {"real": 1, "fake": 1}}, "'mix' maps"),
        ({"mix": {"real": 0}}, "add up to 0"),
        ({"transpose_spread": 60}, "transpose_spread"),
        ({"fingerprint": "0123456789abcdef"}, "fingerprint"),
        ({"colour": 1}, "unknown keys"),
    ]
    for spec, message in cases:
        with pytest.raises(InverSynthError, match=message):
            _mix(path, **spec)
    spec_file = tmp_path / "mix.json"
    spec_file.write_text(json.dumps({"kind": "other"}))
    with pytest.raises(InverSynthError, match="'kind' is one of"):
        read_sampler_spec(spec_file)


def test_a_dexed_stream_draws_its_examples_from_the_sampler(extra: Any, tmp_path: Path) -> None:
    from generators.chunks import Chunk, render_chunk
    from generators.dexed.synth import DexedGenerator
    from models.common.stream import StreamSource, StreamSpec

    spec = {"kind": "dx7_voices", "collection": str(_collection(tmp_path)), "mix": {"real": 1}}
    generator = DexedGenerator(
        dexed_config=VOICE_CONFIG, sample_rate=16384, n_samples=2048, note_length_s=0.1
    )
    want = render_chunk(generator, Chunk(0, 0, 100, 8), seed=3, sampler=spec)
    mix = load_sampler(spec)
    assert isinstance(mix, VoiceMix)
    voices_drawn = mix.sample_voices(seed=3, start=100, n_examples=8)
    np.testing.assert_array_equal(want.audio, generator.render_voices(voices_drawn))
    stream = StreamSpec(
        generator_name="dexed",
        generator_config=generator.config(),
        seed=3,
        first_index=100,
        batch_size=8,
        steps_per_epoch=1,
        sampler=spec,
    )
    source = StreamSource(stream)
    try:
        got = source.read(0)
    finally:
        source.close()
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.audio, want.audio)


def test_the_collect_command_writes_a_collection(
    extra: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine.write_bank(tmp_path / "a.syx", random_voices(9, 32))
    out = tmp_path / "v.npz"
    args = ["collect", str(tmp_path / "a.syx"), "--output", str(out), "--validation", "4"]
    assert main(args) == 0
    collection = VoiceCollection.load(out)
    assert len(collection.part(VALIDATION)) == 4 and len(collection.voices) <= 32
    with pytest.raises(InverSynthError, match="already exists"):
        main(args)
    # an output under a file of the user's is refused by name, before any bank is read
    (tmp_path / "notes").write_text("mine")
    args[3] = str(tmp_path / "notes" / "v.npz")
    with pytest.raises(SystemExit) as refused:
        main(args)
    assert refused.value.code == 2
    assert "/notes' is a file" in capsys.readouterr().err
