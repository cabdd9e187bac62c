"""The DX7 through Dexed (dexed-py): parameters, configs, rendering, datasets, .syx patches, banks."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from core.commandline import run_cli
from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.dexed import engine
from generators.dexed.commands import main
from generators.dexed.config import load_dexed_config
from generators.dexed.engine import read_bank
from generators.dexed.synth import DexedGenerator, write_bank_dataset
from generators.sound_generator import load_generator
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {n: REPO / "plugin_config" / f"dexed_{n}.json" for n in ("small", "medium", "full")}
SAMPLE_RATE = 16384
SHORT: dict[str, Any] = {"sample_rate": SAMPLE_RATE, "n_samples": 4096, "note_length_s": 0.15}


@pytest.fixture(scope="module")
def small(extra: Any) -> DexedGenerator:
    return DexedGenerator(dexed_config=CONFIGS["small"], **SHORT)


def random_engine_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 145] engine values, every parameter uniform over its DX7 steps."""
    top = np.array([p.max_value for p in engine.ENGINE_PARAMETERS])
    discrete = np.array([p.discrete for p in engine.ENGINE_PARAMETERS])
    dx7 = rng.integers(0, top + 1, size=(n, top.size))
    return np.where(discrete, dx7, dx7 / top)


def one_carrier(coarse: list[int]) -> dict[str, Any]:
    """Algorithm 32 (six carriers) with only OP1 sounding, its coarse ratio varied."""
    return {
        "parameters": [{"name": "op1_frequency_coarse", "dx7_values": coarse}],
        "fixed_parameters": [{"name": "algorithm", "value": 31}],
    }


# ---- the engine's parameters ---------------------------------------------------------


def test_the_parameter_table_is_dexed_pys_vector_and_sysex_layout(extra: Any) -> None:
    values = random_engine_values(np.random.default_rng(0), 64)
    voices = engine.voices_from_values(values, name="PRESET")
    for row, voice in zip(values, voices, strict=True):
        patch = extra.Preset.from_array(row.astype(np.float32)).to_patch(name="PRESET")
        assert bytes(voice.tolist()) == patch.to_sysex()[:155]
    np.testing.assert_array_equal(engine.values_from_voices(voices), values)
    assert [p.name for p in engine.ENGINE_PARAMETERS][:3] == [
        "feedback",
        "transpose",
        "pitch_mod_sensitivity",
    ]


def test_every_config_loads_and_names_groups() -> None:
    sizes = {n: len(load_dexed_config(path).varied) for n, path in CONFIGS.items()}
    assert sizes["small"] < sizes["medium"] < sizes["full"]
    full = load_dexed_config(CONFIGS["full"])
    algorithm = next(v for v in full.varied if v.name == "algorithm")
    assert algorithm.levels == tuple(float(a) for a in range(32))
    assert {v.group for v in full.varied} >= {"Global", "LFO", "Operator 1", "Operator 6"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "op7_output_level", "n_levels": 4},
            r"'op7_output_level' is not a Dexed parameter",
        ),
        ({"name": "op1_output_level", "values": [0.5, 1.5]}, r"1\.5 is outside \[0, 1\]"),
        ({"name": "op1_output_level", "dx7_values": [0, 120]}, r"DX7 value 120 is outside 0\.\.99"),
        (
            {"name": "algorithm", "values": [0, 4.5]},
            r"discrete \(integers 0\.\.31\), got the fraction 4\.5",
        ),
        ({"name": "algorithm", "values": [0, 32]}, r"32 is outside its range"),
        ({"name": "algorithm", "n_levels": 5}, r"discrete.*fraction 7\.75"),
        (
            {"name": "feedback", "values": [0.0, 0.01]},
            r"levels 0\.0 and 0\.01 both play as DX7 value 0",
        ),
    ],
)
def test_bad_configs_are_refused_in_one_line(
    entry: dict[str, Any], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {"parameters": [entry]}
    with pytest.raises(InverSynthError, match=message) as info:
        load_dexed_config(config)
    assert "\n" not in str(info.value)
    # The same through the command line: "error: ..." and exit code 2, before any render.
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ["check", "--config", str(path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {path}: parameter ")


def test_a_parameter_named_twice_is_refused() -> None:
    config = {
        "parameters": [{"name": "feedback", "n_levels": 8}],
        "fixed_parameters": [{"name": "feedback", "value": 0}],
    }
    with pytest.raises(InverSynthError, match=r"\['feedback'\] named more than once"):
        load_dexed_config(config)


def test_without_the_extra_the_synth_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "dexed", None)  # makes `import dexed` fail
    with pytest.raises(InverSynthError, match=r"uv sync --extra dexed") as info:
        load_generator("dexed", {"dexed_config": str(CONFIGS["small"])})
    assert "\n" not in str(info.value)
    # What needs no engine still works: configs, the parameter table, single-voice files.
    assert len(load_dexed_config(CONFIGS["medium"]).varied) == 60


# ---- rendering -------------------------------------------------------------------------


@pytest.mark.parametrize(("midi_note", "coarse", "expected_hz"), [(69, 1, 440.0), (57, 2, 440.0)])
def test_a_one_carrier_patch_plays_its_note(
    extra: Any, midi_note: int, coarse: int, expected_hz: float
) -> None:
    n = 4 * SAMPLE_RATE  # a 4 s FFT: bins of 0.25 Hz
    gen = DexedGenerator(
        dexed_config=one_carrier([1, 2]),
        sample_rate=SAMPLE_RATE,
        n_samples=n,
        pitch=midi_note,
        note_length_s=n / SAMPLE_RATE,
    )
    audio = gen.render(np.array([[coarse / 31]]))[0]
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(n)))
    bin_hz = SAMPLE_RATE / n
    assert abs(np.argmax(spectrum) * bin_hz - expected_hz) <= bin_hz


def test_clipping_examples_are_scaled_into_range_and_others_untouched(extra: Any) -> None:
    # Algorithm 32: OP1 alone peaks just under 1; six carriers at full level peak near 6.
    config = {
        "parameters": [{"name": f"op{k}_output_level", "dx7_values": [0, 99]} for k in range(2, 7)],
        "fixed_parameters": [{"name": "algorithm", "value": 31}],
    }
    gen = DexedGenerator(dexed_config=config, **SHORT)
    audio = gen.render(np.array([[0.0] * 5, [1.0] * 5]))
    synth = extra.DexedSynth(sample_rate=SAMPLE_RATE)
    raw = []
    for voice in gen.voices(np.array([[0.0] * 5, [1.0] * 5])):
        synth.load_patch(extra.Patch.from_sysex(bytes(voice.tolist())))
        raw.append(synth.render(60, 100, SHORT["note_length_s"], 4096 / SAMPLE_RATE))
    assert np.abs(raw[0]).max() < 1.0 < 5.0 < np.abs(raw[1]).max()
    np.testing.assert_array_equal(audio[0], raw[0])
    np.testing.assert_allclose(audio[1], raw[1] / np.abs(raw[1]).max(), atol=1e-7)
    assert np.abs(audio).max() <= 1.0


def test_the_engine_plays_the_same_through_dexed_pys_public_wrapper(
    extra: Any, small: DexedGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = small.parameter_set.to_values(small.parameter_set.sample_indices(seed=6, n_examples=4))
    direct = small.render(values)  # the extension class, loading voice bytes
    monkeypatch.delattr(extra, "_RawDexedSynth")
    wrapped = DexedGenerator(dexed_config=CONFIGS["small"], **SHORT).render(values)
    np.testing.assert_array_equal(direct, wrapped)


def test_values_outside_a_parameters_range_are_refused(small: DexedGenerator) -> None:
    row = small.parameter_set.to_values(np.zeros((1, small.parameter_set.n_parameters), int))
    row[0, 0] = 1.5
    with pytest.raises(InverSynthError, match=r"op2_output_level must be \[0, 1\].*got 1\.5"):
        small.render(row)


def test_most_random_medium_patches_sound(extra: Any) -> None:
    gen = DexedGenerator(dexed_config=CONFIGS["medium"], **SHORT)
    audio = gen.render_examples(seed=0, start=0, n_examples=64).audio
    peaks = np.abs(audio).max(axis=1)
    assert np.mean(peaks < 1e-4) <= 0.05
    assert len(np.unique(peaks)) > 32  # the parameters change the sound


def test_the_config_round_trips_to_the_same_synth(small: DexedGenerator) -> None:
    config = json.loads(json.dumps(small.config()))  # what a dataset stores
    assert config["dexed_config"] == json.loads(CONFIGS["small"].read_text())
    rebuilt = load_generator("dexed", config)
    assert rebuilt.config() == small.config()
    assert rebuilt.parameter_set == small.parameter_set
    indices = small.parameter_set.sample_indices(seed=5, n_examples=6)
    np.testing.assert_array_equal(rebuilt.render_indices(indices), small.render_indices(indices))


# ---- datasets ----------------------------------------------------------------------------


def test_datasets_are_the_same_bytes_whatever_the_workers(
    small: DexedGenerator, tmp_path: Path
) -> None:
    # One process; two worker processes; the command's one writer with two engine threads.
    for name, workers in (("one", 1), ("processes", 2)):
        DatasetCreator(
            small,
            path=tmp_path / f"{name}_data.hdf5",
            plan=DatasetPlan(n_examples=20),
            workers=workers,
            chunk_size=6,
            progress=False,
        ).run()
    args = ["run", "--config", str(CONFIGS["small"]), "--name", "threads", "--num_examples", "20"]
    args += ["--dataset_directory", str(tmp_path), "--workers", "2", "--chunk_size", "6"]
    args += ["--length", str(4096 / SAMPLE_RATE), "--note_length", "0.15", "--no_progress"]
    assert main(args) == 0
    contents = {}
    for name in ("one", "processes", "threads"):
        with open_dataset(tmp_path / f"{name}_data.hdf5") as ds:
            assert ds.generator_name == "dexed" and ds.generator_config == small.config()
            assert ds.attrs["silent_examples"] == 0
            contents[name] = [a.tobytes() for a in ds.read(np.arange(20), with_values=True)]
    assert contents["one"] == contents["processes"] == contents["threads"]


def test_threads_give_the_same_examples_in_any_order_of_requests(small: DexedGenerator) -> None:
    with DexedGenerator(dexed_config=CONFIGS["small"], workers=3, **SHORT) as threaded:
        # In order (each guessed while the one before is returned), a short last chunk,
        # then out of order (the guess is dropped), and a batch render.
        for start, n in [(0, 6), (6, 6), (12, 6), (18, 2), (3, 5), (40, 7), (0, 1)]:
            got = threaded.render_examples(seed=4, start=start, n_examples=n)
            want = small.render_examples(seed=4, start=start, n_examples=n)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        values = small.parameter_set.to_values(want[0])
        np.testing.assert_array_equal(threaded.render(values), small.render(values))


def test_a_dropped_guess_and_the_next_request_never_share_an_engine(
    small: DexedGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guessed chunk's blocks run on until their next stop check; a new request's
    # block must not start on an engine one of them still renders on (it would
    # interleave two voices in one engine). Engine 0 is made slow, so that another
    # block's thread frees first and picks up the new request's block 0.
    from generators.dexed import synth as dexed_synth

    real, busy, clashes, guard = dexed_synth.render_voices, set(), [], threading.Lock()
    slow: list[int] = []

    def watched(engine_: Any, voices: np.ndarray, **kwargs: Any) -> np.ndarray:
        with guard:
            slow[:] = slow or [id(engine_)]
            clashes.extend([id(engine_)] if id(engine_) in busy else [])
            busy.add(id(engine_))
        try:
            time.sleep(0.2 if id(engine_) == slow[0] else 0.0)
            return real(engine_, voices, **kwargs)
        finally:
            with guard:
                busy.discard(id(engine_))

    monkeypatch.setattr(dexed_synth, "render_voices", watched)
    with DexedGenerator(dexed_config=CONFIGS["small"], workers=3, **SHORT) as threaded:
        threaded.render_examples(seed=4, start=0, n_examples=6)  # guesses [6, 12)
        got = threaded.render_examples(seed=4, start=40, n_examples=6)  # drops the guess
    monkeypatch.setattr(dexed_synth, "render_voices", real)
    np.testing.assert_array_equal(got[1], small.render_examples(seed=4, start=40, n_examples=6)[1])
    assert clashes == []


def write_random_bank(extra: Any, path: Path, seed: int) -> list[Any]:
    """32 random voices written with dexed-py; returns its patches."""
    values = random_engine_values(np.random.default_rng(seed), 32)
    patches = [
        extra.Preset.from_array(v.astype(np.float32)).to_patch(name=f"RANDOM {i:02d}")
        for i, v in enumerate(values)
    ]
    extra.Patch.save_to_bank(str(path), patches)
    return patches


def test_a_bank_becomes_a_dataset_of_its_voices(extra: Any, tmp_path: Path) -> None:
    bank = tmp_path / "random.syx"
    patches = write_random_bank(extra, bank, seed=1)
    args = ["bank", "--bank", str(bank), "--config", str(CONFIGS["medium"]), "--name", "rnd"]
    args += ["--dataset_directory", str(tmp_path), "--length", str(4096 / SAMPLE_RATE)]
    args += ["--note_length", "0.15", "--no_progress"]
    assert main(args) == 0
    gen = DexedGenerator(dexed_config=CONFIGS["medium"], **SHORT)
    voices = np.array([np.frombuffer(p.to_sysex()[:155], np.uint8) for p in patches])
    with open_dataset(tmp_path / "rnd_data.hdf5") as ds:
        audio, labels, values = ds.read(np.arange(32), with_values=True)
        assert ds.n_examples == 32 and ds.generator_config == gen.config()
        assert json.loads(ds.attrs["bank_files"]) == [str(bank)]
    with h5py.File(tmp_path / "rnd_data.hdf5", "r") as f:
        stored_voices = f["voices"][...]
    np.testing.assert_array_equal(stored_voices, voices)
    exact = gen.values_of_voices(voices)  # [32, 60]: the voices' own values ...
    np.testing.assert_array_equal(values, exact.astype(np.float32))
    np.testing.assert_array_equal(
        labels, gen.parameter_set.nearest_indices(exact)
    )  # ... nearest levels
    # The audio is each whole voice, as dexed-py plays it.
    synth = extra.DexedSynth(sample_rate=SAMPLE_RATE)
    for i in (0, 17, 31):
        synth.load_patch(patches[i])
        y = synth.render(60, 100, 0.15, 4096 / SAMPLE_RATE)
        np.testing.assert_allclose(audio[i], y / max(1.0, np.abs(y).max()), atol=1e-7)
    with pytest.raises(InverSynthError, match="already exists"):
        write_bank_dataset(
            gen, read_bank(bank), sources=[str(bank)], path=tmp_path / "rnd_data.hdf5"
        )


def test_a_model_of_random_patches_accepts_a_bank_dataset(extra: Any, tmp_path: Path) -> None:
    from models.common.data import Split
    from models.common.run import RunInfo, check_dataset
    from models.evaluation.run_evaluation import training_rows

    gen = DexedGenerator(dexed_config=CONFIGS["small"], **SHORT)
    DatasetCreator(
        gen, path=tmp_path / "random_data.hdf5", plan=DatasetPlan(n_examples=10), progress=False
    ).run()
    write_random_bank(extra, tmp_path / "bank.syx", seed=3)
    write_bank_dataset(
        gen,
        read_bank(tmp_path / "bank.syx"),
        sources=["bank.syx"],
        path=tmp_path / "bank_data.hdf5",
        progress=False,
    )
    with open_dataset(tmp_path / "random_data.hdf5") as trained_on:
        info = RunInfo(
            model_name="C6",
            head="sigmoid",
            data_format="channels_last",
            parameter_set=trained_on.parameter_set,
            generator_name=trained_on.generator_name,
            generator_config=trained_on.generator_config,
            sample_rate=trained_on.sample_rate,
            n_samples=trained_on.n_samples,
            dataset_identity=trained_on.identity,
            dataset_paths=[str(tmp_path / "random_data.hdf5")],
            split=Split((0.8, 0.1, 0.1), 10),
            settings={},
        )
    with open_dataset(tmp_path / "bank_data.hdf5") as bank:
        check_dataset(info, bank)  # what `evaluate --dataset_file` checks: no error
        # Both files say seed 0, but real voices are no run's training examples.
        assert bank.seed == info.dataset_identity["seed"] and not bank.drawn_from_seed
        assert not training_rows(info, bank).any()


# ---- .syx patches -------------------------------------------------------------------------


def test_a_patch_round_trips_through_a_single_voice_dump(
    small: DexedGenerator, tmp_path: Path
) -> None:
    indices = small.parameter_set.sample_indices(seed=9, n_examples=1)[0]
    values = small.parameter_set.to_values(indices[None, :])[0]
    path = small.write_syx(tmp_path / "patch.syx", indices=indices)
    data = path.read_bytes()
    assert len(data) == 163 and data[:6] == bytes([0xF0, 0x43, 0, 0, 1, 0x1B]) and data[-1] == 0xF7
    assert (sum(data[6:161]) + data[161]) % 128 == 0  # the DX7 checksum
    np.testing.assert_array_equal(small.read_syx(path), values)
    np.testing.assert_array_equal(small.render_syx(path), small.render(values[None, :])[0])
    # A damaged file is refused, not misread.
    damaged = tmp_path / "damaged.syx"
    damaged.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(InverSynthError, match="checksum"):
        small.read_syx(damaged)


def test_a_patch_round_trips_through_a_bank_dexed_loads(
    extra: Any, small: DexedGenerator, tmp_path: Path
) -> None:
    values = small.parameter_set.to_values(small.parameter_set.sample_indices(seed=2, n_examples=1))
    path = small.write_syx(tmp_path / "bank.syx", values=values[0], bank=True, voice_name="MATCHED")
    assert path.stat().st_size == 4104
    patches = extra.Patch.load_bank(str(path))  # Dexed's own reading of a cartridge
    assert patches[0].name.strip() == "MATCHED" and patches[1].name.strip() == "INIT VOICE"
    np.testing.assert_array_equal(small.read_syx(path), values[0])
    np.testing.assert_array_equal(small.render_syx(path), small.render(values)[0])
    with pytest.raises(InverSynthError, match=r"ends in \.syx"):
        small.write_syx(tmp_path / "patch.fxp", values=values[0])
