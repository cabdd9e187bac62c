"""The paper's FM synth (SPEC section 1): each stage against its definition, the fast kernel
against the plain NumPy reference, and the generator / CLI around them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import get_window, lfilter

from core.errors import InverSynthError
from generators import fm_dsp, fm_reference
from generators.dataset import open_dataset
from generators.fm_generator import FMGenerator, main, render_fm
from generators.fm_parameters import (
    CONTROL_NAMES,
    FM_PARAMETERS,
    SAW,
    SINE,
    SQUARE,
    TRIANGLE,
    WAVEFORMS,
)
from generators.sound_generator import load_generator

SR = 16384
N = 16384
C6_HZ = 440.0 * 2 ** (15 / 12)  # the highest note of the synth
BLEP_WAVEFORMS = [SAW, TRIANGLE, SQUARE]


def controls(**overrides: float) -> np.ndarray:
    """One row of controls [1, 23]: all oscillators off, no FM, envelope held at 1,
    filter wide open, gate always open over 1 s; ``overrides`` by control name."""
    row = dict.fromkeys(CONTROL_NAMES, 0.0)
    row.update({f"f_{w}": 440.0 for w in WAVEFORMS})
    row.update({f"v_{w}": 1.0 for w in WAVEFORMS})
    row.update(
        attack_s=0.001, decay_s=0.001, sustain=1.0, release_s=1.0, cutoff_hz=4000.0, q=0.7071
    )
    row["gate_hz"] = 0.25  # frac(0.25 t) < 1/2 for all t < 2 s: open throughout
    row.update(overrides)
    return np.array([[row[name] for name in CONTROL_NAMES]])


def render(c: np.ndarray, *, note_off_s: float = 2.0, normalise: bool = False) -> np.ndarray:
    return fm_dsp.render_controls(
        c, sample_rate=SR, n_samples=N, note_off_s=note_off_s, normalise=normalise
    )


def random_values(n: int, seed: int) -> np.ndarray:
    return FM_PARAMETERS.to_values(FM_PARAMETERS.sample_indices(seed=seed, n_examples=n))


def sine_amplitude(x: np.ndarray, f_hz: float, t: np.ndarray) -> float:
    """Amplitude of the component at ``f_hz`` by least squares on sin and cos."""
    basis = np.stack([np.sin(2 * np.pi * f_hz * t), np.cos(2 * np.pi * f_hz * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(*coef))


# --------------------------------------------------------------------------
# The fast kernel is the reference, to float32 precision
# --------------------------------------------------------------------------
def test_fast_kernel_matches_the_numpy_reference_on_random_and_edge_cases() -> None:
    edge = np.vstack(
        [
            # Through-zero FM (440 - 1500 < 0) on every oscillator, slowest and fastest LFO.
            controls(
                **{f"A_{w}": 1.0 for w in WAVEFORMS},
                **{f"B_{w}": 1500.0 for w in WAVEFORMS},
                v_sine=1.0,
                v_saw=30.0,
                v_tri=7.0,
                v_sqr=13.0,
                cutoff_hz=4000.0,
                q=10.0,
            ),
            # Note-off (0.75 s) in the attack; resonant filter; fast gate.
            controls(A_saw=1.0, attack_s=1.0, release_s=0.2, q=10.0, cutoff_hz=200.0, gate_hz=30.0),
        ]
    )
    c = np.vstack([random_values(10, seed=11), edge])
    for normalise in (False, True):
        fast = fm_dsp.render_controls(
            c, sample_rate=SR, n_samples=N, note_off_s=0.75, normalise=normalise
        )
        ref = fm_reference.render_fm_reference(
            c, sample_rate=SR, n_samples=N, note_off_s=0.75, normalise=normalise
        )
        assert fast.dtype == np.float32 and fast.shape == (12, N)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
        assert np.abs(ref).max() > 0.1  # not a comparison of silences


@pytest.mark.parametrize("waveform", [SINE, SAW, TRIANGLE, SQUARE])
def test_each_stage_matches_its_reference(waveform: int) -> None:
    kwargs = dict(frequency_hz=C6_HZ, lfo_depth_hz=1500.0, lfo_rate_hz=3.0, sample_rate=SR)
    fast = fm_dsp.oscillator(waveform, n_samples=N, **kwargs)
    ref = fm_reference.oscillator_reference(waveform, n_samples=N, **kwargs)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-9)

    env_args = dict(attack_s=0.3, decay_s=0.2, sustain=0.4, release_s=0.5, note_off_s=0.4)
    np.testing.assert_allclose(
        fm_dsp.adsr(sample_rate=SR, n_samples=N, **env_args),
        fm_reference.adsr_reference(sample_rate=SR, n_samples=N, **env_args),
        rtol=0,
        atol=1e-12,
    )
    for gate_hz in FM_PARAMETERS["gate_hz"].levels:
        np.testing.assert_array_equal(
            fm_dsp.gate(gate_hz=gate_hz, sample_rate=SR, n_samples=N),
            fm_reference.gate_reference(gate_hz=gate_hz, sample_rate=SR, n_samples=N),
        )
    x = np.random.default_rng(waveform).standard_normal(N)
    coeffs = fm_dsp.lowpass_coefficients(cutoff_hz=700.0, q=10.0, sample_rate=SR)
    np.testing.assert_allclose(
        fm_dsp.lowpass(x, cutoff_hz=700.0, q=10.0, sample_rate=SR),
        lfilter(coeffs[:3], [1.0, *coeffs[3:]], x),
        rtol=0,
        atol=1e-9,
    )


# --------------------------------------------------------------------------
# Oscillators
# --------------------------------------------------------------------------
@pytest.mark.parametrize("waveform", [SINE, SAW, TRIANGLE, SQUARE])
@pytest.mark.parametrize("note", [0, 7, 15])
def test_lone_oscillator_fundamental_is_its_frequency(waveform: int, note: int) -> None:
    f = FM_PARAMETERS[f"f_{WAVEFORMS[waveform]}"].levels[note]
    y = render(controls(**{f"A_{WAVEFORMS[waveform]}": 1.0, f"f_{WAVEFORMS[waveform]}": f}))[0]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(N)))
    bin_hz = SR / N
    assert abs(np.argmax(spectrum) * bin_hz - f) <= bin_hz


@pytest.mark.parametrize("waveform", [SINE, SAW, TRIANGLE, SQUARE])
def test_waveforms_have_sine_phase_and_fourier_series_harmonics(waveform: int) -> None:
    f = 64.0  # a whole number of cycles and of bins; harmonics far below Nyquist
    x = fm_dsp.oscillator(
        waveform, frequency_hz=f, lfo_depth_hz=0.0, lfo_rate_hz=1.0, sample_rate=SR, n_samples=N
    )
    # Starts at 0 and rises.
    assert abs(x[0]) < 1e-12 and x[1] > 0
    spectrum = np.fft.rfft(x) / (N / 2)  # complex amplitude of each harmonic (exact bins)
    harmonic = np.abs(spectrum[[int(k * f) for k in range(1, 6)]])
    expected: list[float] = {
        SINE: [1.0, 0.0, 0.0, 0.0, 0.0],
        SAW: [2 / (np.pi * k) for k in range(1, 6)],
        SQUARE: [4 / (np.pi * k) if k % 2 else 0 for k in range(1, 6)],
        TRIANGLE: [8 / (np.pi * k) ** 2 if k % 2 else 0 for k in range(1, 6)],
    }[waveform]
    np.testing.assert_allclose(harmonic, expected, rtol=0.01, atol=1e-3)
    # Sine phase: the fundamental is -j * amplitude (a sine), not a cosine.
    assert abs(spectrum[int(f)].real) < 1e-3 * abs(spectrum[int(f)])
    assert spectrum[int(f)].imag < 0


def nonharmonic_fraction(x: np.ndarray, f_hz: float) -> float:
    """Energy farther than 4 bins from every harmonic of ``f_hz`` below Nyquist, over all energy."""
    spectrum = np.abs(np.fft.rfft(x * get_window("blackmanharris", x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / SR)
    harmonics = np.arange(1, int(SR / 2 // f_hz) + 1) * f_hz
    near = np.min(np.abs(freqs[:, None] - harmonics[None, :]), axis=1) <= 4 * SR / x.size
    return float(spectrum[~near].sum() / spectrum.sum())


# Aliasing (energy off the harmonics) of C6 at 16384 Hz: the band-limited waveforms
# must stay below these levels; the naive ones are far above them (they alias at
# -11 dB (saw), -13 dB (square), -35 dB (triangle)).
ALIAS_LIMIT_DB = {SAW: -22.0, SQUARE: -25.0, TRIANGLE: -44.0}


@pytest.mark.parametrize("waveform", BLEP_WAVEFORMS)
def test_band_limited_waveforms_alias_far_less_than_naive_ones(waveform: int) -> None:
    t = np.arange(N) / SR
    band_limited = fm_dsp.oscillator(
        waveform, frequency_hz=C6_HZ, lfo_depth_hz=0.0, lfo_rate_hz=1.0, sample_rate=SR, n_samples=N
    )
    naive = fm_reference.naive_waveform(waveform, C6_HZ * t)
    limit = ALIAS_LIMIT_DB[waveform]
    assert 10 * math.log10(nonharmonic_fraction(band_limited, C6_HZ)) < limit
    assert 10 * math.log10(nonharmonic_fraction(naive, C6_HZ)) > limit + 8


@pytest.mark.parametrize("waveform", [SINE, SAW])
def test_fm_phase_is_the_integral_of_the_instantaneous_frequency(waveform: int) -> None:
    f, depth, rate = 440.0, 1500.0, 7.0  # through zero: f - B < 0
    # Integrate f + B sin(2 pi v t) numerically on a 16x finer grid (trapezoids).
    fine = np.arange(16 * N) / (16 * SR)
    inst_hz = f + depth * np.sin(2 * np.pi * rate * fine)
    cycles = np.concatenate([[0.0], np.cumsum((inst_hz[1:] + inst_hz[:-1]) / 2) / (16 * SR)])
    phase = cycles[::16]  # [N] cycles at t = n / SR
    x = fm_dsp.oscillator(
        waveform, frequency_hz=f, lfo_depth_hz=depth, lfo_rate_hz=rate, sample_rate=SR, n_samples=N
    )
    if waveform == SINE:
        np.testing.assert_allclose(x, np.sin(2 * np.pi * phase), atol=1e-5)  # trapezoid error
    else:
        # Away from the PolyBLEP corrections, the saw is the naive saw of that phase.
        dt = np.abs(f + depth * np.sin(2 * np.pi * rate * fine[::16])) / SR
        far = np.abs(np.mod(phase, 1.0) - 0.5) > dt + 1e-6
        naive = fm_reference.naive_waveform(SAW, phase)
        np.testing.assert_allclose(x[far], naive[far], atol=1e-6)
        assert far.mean() > 0.7


# --------------------------------------------------------------------------
# Low-pass, gate, envelope
# --------------------------------------------------------------------------
def rbj_lowpass_gain(f_hz: float, cutoff_hz: float, q: float) -> float:
    """|H| of the cookbook low-pass at ``f_hz``, from the cookbook's formulas."""
    w0 = 2 * np.pi * cutoff_hz / SR
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 - np.cos(w0), 2 * (1 - np.cos(w0)), 1 - np.cos(w0)]) / 2
    a = np.array([1 + alpha, -2 * np.cos(w0), 1 - alpha])
    z = np.exp(-1j * 2 * np.pi * f_hz / SR * np.arange(3))
    return float(abs(b @ z / (a @ z)))


@pytest.mark.parametrize("q", [0.7071, 5.0])
@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0, 4.0])
def test_lowpass_attenuates_as_the_rbj_response_says(q: float, ratio: float) -> None:
    cutoff = 600.0
    f = cutoff * ratio
    amplitude = 0.5  # the resonance peak (gain q at the cutoff) stays below clipping
    y = render(controls(A_sine=amplitude, f_sine=f, cutoff_hz=cutoff, q=q))[0]
    t = np.arange(N) / SR
    steady = slice(SR // 4, N)  # the attack and the filter's transient are over
    measured = sine_amplitude(y[steady], f, t[steady]) / (amplitude / 4)  # mix = sum / 4
    assert measured == pytest.approx(rbj_lowpass_gain(f, cutoff, q), rel=0.01)
    if q < 1 and ratio >= 2:
        assert measured < (0.3 if ratio == 2 else 0.07)  # 2 poles: about -12 dB per octave


@pytest.mark.parametrize("gate_hz", FM_PARAMETERS["gate_hz"].levels)
def test_gate_opens_gate_hz_times_per_second_and_closes_to_exact_zero(gate_hz: float) -> None:
    g = fm_dsp.gate(gate_hz=gate_hz, sample_rate=SR, n_samples=N)
    assert set(np.unique(g)) <= {0.0, 1.0}
    openings = np.flatnonzero(np.diff(g) > 0) + 1  # first open sample of each opening
    openings = np.concatenate([[0], openings]) if g[0] == 1 else openings
    assert len(openings) == math.ceil(gate_hz)  # openings at t = k / gate_hz, k = 0, 1, ...
    np.testing.assert_allclose(openings, np.ceil(np.arange(len(openings)) * SR / gate_hz), atol=1)
    assert g.mean() == pytest.approx(0.5, abs=1 / gate_hz)
    # Through the whole synth: silent exactly where the gate is closed.
    y = render(controls(A_saw=1.0, gate_hz=gate_hz))[0]
    assert np.all(y[g == 0] == 0)
    assert np.all(y[1:][g[1:] == 1] != 0)


def test_gate_edge_on_a_sample_boundary_falls_as_rounded() -> None:
    # 2.5 Hz at 16384 Hz: the gate phase is exactly 1/2 (closing) at n = 3276.8 (not a
    # sample), and exactly 1 (opening) at n = 6553.6; at 8 Hz it is 1/2 at n = 1024.
    g = fm_dsp.gate(gate_hz=8.0, sample_rate=SR, n_samples=N)
    assert g[1023] == 1 and g[1024] == 0 and g[2047] == 0 and g[2048] == 1
    # A rate whose product with t lands a hair off 1/2 in floating point is rounded onto it.
    gate_hz = 0.1 * 3  # 0.30000000000000004
    n = 16384 * 5 // 3 + 1  # a sample where 0.3 t crosses 1/2 between samples
    g = fm_dsp.gate(gate_hz=gate_hz, sample_rate=SR, n_samples=n + 1)
    assert g[n - 1] == (np.mod(np.round(gate_hz * (n - 1) / SR, 10), 1) < 0.5)


ENVELOPE_CASES = [
    # (attack, decay, sustain, release, note_off, {time: level}); times on the sample grid.
    (0.25, 0.25, 0.5, 0.125, 0.75, {0.125: 0.5, 0.25: 1.0, 0.375: 0.75, 0.5: 0.5, 0.625: 0.5,
                                    0.75: 0.5, 0.8125: 0.25, 0.875: 0.0, 0.99: 0.0}),
    # Note-off during the attack: release from the level reached (0.5).
    (1.0, 0.25, 0.5, 0.25, 0.5, {0.25: 0.25, 0.5: 0.5, 0.625: 0.25, 0.75: 0.0}),
    # Note-off during the decay: 1 - (1 - 0.25) * 0.5 = 0.625, then released over 0.5 s.
    (0.125, 0.5, 0.25, 0.5, 0.375, {0.125: 1.0, 0.375: 0.625, 0.625: 0.3125, 0.875: 0.0}),
    # Sustain of 1 and a long release: never reaches 0 within the second.
    (0.001, 0.001, 1.0, 1.0, 0.75, {0.5: 1.0, 0.875: 0.875, 0.999: 0.751}),
]  # fmt: skip


@pytest.mark.parametrize("case", ENVELOPE_CASES)
def test_envelope_levels_at_known_times(case: tuple) -> None:
    attack, decay, sustain, release, note_off, levels = case
    sr = 1024  # times in the cases are multiples of 1/1024 s
    for fn in (fm_dsp.adsr, fm_reference.adsr_reference):
        env = fn(
            attack_s=attack,
            decay_s=decay,
            sustain=sustain,
            release_s=release,
            note_off_s=note_off,
            sample_rate=sr,
            n_samples=sr,
        )
        for t, level in levels.items():
            assert env[round(t * sr)] == pytest.approx(level, abs=2e-3), (fn.__name__, t)
        assert np.all(env >= 0) and np.all(env <= 1)
        attack_part = env[: round(min(attack, note_off) * sr)]
        assert np.all(np.diff(attack_part) > 0)  # rising through the attack


def test_note_off_shapes_the_output() -> None:
    c = controls(A_sine=1.0, release_s=0.125)
    y = render(c, note_off_s=0.5)[0]
    assert np.abs(y[: SR // 2]).max() > 0.2
    assert np.abs(y[SR // 2 + SR // 8 + 64 :]).max() < 1e-3  # released, filter rung out


# --------------------------------------------------------------------------
# Output range, scaling, determinism
# --------------------------------------------------------------------------
def test_output_is_finite_and_in_range_and_scaled_as_specified() -> None:
    values = random_values(300, seed=5)
    raw = FMGenerator().render(values)
    normalised = FMGenerator(normalise=True).render(values)
    for audio in (raw, normalised):
        assert audio.dtype == np.float32 and audio.shape == (300, N)
        assert np.isfinite(audio).all()
        assert np.abs(audio).max() <= 1.0
    peak = np.abs(raw).max(axis=1)
    # y / max(1, peak): examples that would clip reach exactly 1, the others keep their level.
    assert np.any(peak == 1.0) and np.any((peak > 0.01) & (peak < 0.9))
    np.testing.assert_allclose(np.abs(normalised).max(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(normalised * peak[:, None], raw, atol=2e-6)


def test_rendering_is_deterministic_and_independent_of_batching() -> None:
    values = random_values(6, seed=9)
    gen = FMGenerator()
    batch = gen.render(values)
    again = gen.render(values)
    one_by_one = np.vstack([gen.render(values[i : i + 1]) for i in range(6)])
    assert batch.tobytes() == again.tobytes() == one_by_one.tobytes()


def test_other_sample_rates_and_lengths() -> None:
    values = random_values(3, seed=2)
    gen = FMGenerator(sample_rate=22050, n_samples=1000)
    audio = gen.render(values)
    ref = fm_reference.render_fm_reference(values, sample_rate=22050, n_samples=1000)
    assert audio.shape == (3, 1000)
    np.testing.assert_allclose(audio, ref, atol=1e-6)


# --------------------------------------------------------------------------
# The generator and its command line
# --------------------------------------------------------------------------
def test_parameter_table_is_the_papers() -> None:
    ps = FMGenerator().parameter_set
    assert ps.n_parameters == 23 and ps.n_outputs == 368
    assert ps.names == list(CONTROL_NAMES)
    assert ps["f_saw"].levels[0] == 440.0
    assert ps["f_saw"].levels[12] == pytest.approx(880.0)
    for name, low, high in [("A_tri", 0.001, 1), ("B_sqr", 0, 1500), ("v_sine", 1, 30),
                            ("attack_s", 0.001, 1), ("sustain", 0.001, 1), ("release_s", 0.001, 1),
                            ("cutoff_hz", 200, 4000), ("q", 0.01, 10), ("gate_hz", 0.5, 30)]:  # fmt: skip
        levels = ps[name].levels
        assert len(levels) == 16 and levels[0] == low and levels[-1] == high
        np.testing.assert_allclose(np.diff(levels), (high - low) / 15)


def test_config_round_trip_and_validation() -> None:
    gen = FMGenerator(sample_rate=16000, n_samples=8000, note_off_s=0.5, normalise=True)
    config = json.loads(json.dumps(gen.config()))
    clone = load_generator("fm", config)
    assert isinstance(clone, FMGenerator) and clone.config() == gen.config()
    values = random_values(2, seed=4)
    assert clone.render(values).tobytes() == gen.render(values).tobytes()
    np.testing.assert_array_equal(
        gen.render(values),
        render_fm(values, sample_rate=16000, n_samples=8000, note_off_s=0.5, normalise=True),
    )
    for bad in (
        dict(sample_rate=8000),  # the 4 kHz cutoff would be at Nyquist
        dict(n_samples=0),
        dict(note_off_s=-1.0),
        dict(note_off_s=float("nan")),
        dict(normalise="yes"),
    ):
        with pytest.raises(InverSynthError):
            FMGenerator(**bad)
    with pytest.raises(InverSynthError, match="shape"):
        gen.render(np.zeros((2, 22)))
    bad_values = values.copy()
    bad_values[0, FM_PARAMETERS.index("v_saw")] = 0.0
    with pytest.raises(InverSynthError, match="v_saw"):
        gen.render(bad_values)
    bad_values = values.copy()
    bad_values[1, FM_PARAMETERS.index("cutoff_hz")] = 9000.0
    with pytest.raises(InverSynthError, match="cutoff_hz"):
        gen.render(bad_values)
    with pytest.raises(InverSynthError, match="waveform"):
        fm_dsp.oscillator(
            7, frequency_hz=1, lfo_depth_hz=0, lfo_rate_hz=1, sample_rate=SR, n_samples=8
        )


def test_cli_help_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "generators.fm_generator", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--normalise" in done.stdout and "--note_off" in done.stdout
    assert "--num_examples" in done.stdout


def test_cli_writes_a_dataset_that_renders_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["--num_examples", "5", "--name", "tiny", "--dataset_directory", str(tmp_path),
            "--length", "0.25", "--workers", "1", "--chunk_size", "2", "--note_off", "0.125",
            "--normalise", "--no_progress", "--seed", "3"]  # fmt: skip
    assert main(argv) == 0
    with open_dataset(tmp_path / "tiny_data.hdf5") as ds:
        assert ds.n_examples == 5 and ds.n_samples == 4096 and ds.sample_rate == 16384
        assert ds.generator_name == "fm"
        assert ds.generator_config["note_off_s"] == 0.125
        assert ds.generator_config["normalise"] is True
        audio, labels = ds.read(np.arange(5))
        again = ds.make_generator().render_indices(labels)
    np.testing.assert_array_equal(audio, again)
