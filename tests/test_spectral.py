"""The spectral module against librosa, and the rule that it is the only home of its transforms.

Tolerances: librosa builds its filterbanks in float32, so filters agree to
1e-6 (peak 1) or 1e-5 relative (unit area); the float64 STFT agrees to 1e-9
of its peak; MFCCs agree to 1e-3 dB (float32 filters under a dB scale). The
matching distance's float32 power and dB agree with the metrics' float64 ones
to 2e-4 relative and 2e-3 dB; the lookup's index is the distance's mel view
exactly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from core.errors import InverSynthError
from models.common.spectral import (
    ABSOLUTE_FLOOR_DB,
    HOP_LENGTH,
    N_BINS,
    N_FFT,
    N_MFCC,
    N_MFCC_MELS,
    band_power,
    full_scale_magnitude,
    hann_window,
    hz_to_mel,
    log_magnitude_stft,
    magnitude_stft,
    magnitude_to_db,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    n_frames,
    power_stft,
    power_to_db,
)
from models.matching.distance import MultiResolutionDistance, Resolution
from models.matching.lookup import INDEX_FEATURES, index_features

librosa = pytest.importorskip("librosa")

REPO = Path(__file__).resolve().parents[1]
SR = 16384


def _noise(n_samples: int, seed: int = 0) -> np.ndarray:
    return 0.3 * np.random.default_rng(seed).standard_normal(n_samples)


@pytest.mark.parametrize("htk", [True, False])
def test_mel_scale_is_librosas_both_ways(htk: bool) -> None:
    hz = np.array([0.0, 20.0, 440.0, 999.0, 1000.0, 1001.0, 4000.0, 8192.0, 22050.0])
    np.testing.assert_allclose(hz_to_mel(hz, htk=htk), librosa.hz_to_mel(hz, htk=htk), rtol=1e-12)
    mel = hz_to_mel(hz, htk=htk)
    np.testing.assert_allclose(mel_to_hz(mel, htk=htk), librosa.mel_to_hz(mel, htk=htk), rtol=1e-12)
    np.testing.assert_allclose(mel_to_hz(mel, htk=htk), hz, rtol=1e-12, atol=1e-9)


@pytest.mark.filterwarnings("ignore:Empty filters")  # 128 bands of 257 bins at 44.1 kHz
@pytest.mark.parametrize("sample_rate", [8000, 16384, 44100])
@pytest.mark.parametrize(("n_fft", "n_mels"), [(512, 128), (512, 40), (2048, 32)])
def test_peak_one_htk_filterbank_is_librosas(sample_rate: int, n_fft: int, n_mels: int) -> None:
    ours = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=True)
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None)
    assert ours.shape == (n_fft // 2 + 1, n_mels)
    np.testing.assert_allclose(ours, theirs.T, atol=1e-6)


@pytest.mark.parametrize("sample_rate", [8000, 16384, 44100])
def test_unit_area_slaney_filterbank_is_librosas(sample_rate: int) -> None:
    ours = mel_filterbank(
        sample_rate=sample_rate, n_mels=N_MFCC_MELS, htk=False, area_normalized=True
    )
    theirs = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=N_MFCC_MELS)
    np.testing.assert_allclose(ours, theirs.T, rtol=1e-5, atol=1e-9)


def test_min_width_bands_are_never_empty_and_keep_the_mel_bands_above() -> None:
    plain = mel_filterbank(sample_rate=44100, n_fft=512, n_mels=128)
    wide = mel_filterbank(sample_rate=44100, n_fft=512, n_mels=128, min_width_bins=True)
    assert (plain.max(axis=0) == 0).any()  # mel bands narrower than a bin miss every bin
    assert (wide.max(axis=0) > 0.5).all()
    np.testing.assert_array_equal(wide[:, -20:], plain[:, -20:])


def test_filterbank_is_shared_and_read_only() -> None:
    weights = mel_filterbank(sample_rate=SR)
    assert weights is mel_filterbank(sample_rate=SR)
    with pytest.raises(ValueError):
        weights[0, 0] = 1.0
    with pytest.raises(ValueError):
        hann_window(n_fft=N_FFT)[0] = 1.0


def test_window_is_the_periodic_hann_of_librosa_and_full_scale_is_half_its_sum() -> None:
    for n_fft in (16, 512, 1000, 2048):
        np.testing.assert_allclose(
            hann_window(n_fft=n_fft), librosa.filters.get_window("hann", n_fft), atol=1e-15
        )
    assert full_scale_magnitude(n_fft=512) == 128.0


@pytest.mark.parametrize("n_samples", [16384, 1000, 257])
def test_magnitude_stft_is_librosas_on_the_end_padded_signal(n_samples: int) -> None:
    x = _noise(n_samples)
    ours = magnitude_stft(x)[0]  # [n_frames, 257]
    frames = n_frames(n_samples)
    padded = np.zeros((frames - 1) * HOP_LENGTH + N_FFT)
    padded[:n_samples] = x
    theirs = np.abs(
        librosa.stft(padded, n_fft=N_FFT, hop_length=HOP_LENGTH, window="hann", center=False)
    ).T
    assert ours.shape == theirs.shape == (frames, N_BINS)
    np.testing.assert_allclose(ours, theirs, atol=1e-9 * theirs.max())


def test_frame_count_and_full_scale_reference() -> None:
    assert n_frames(16384) == 64 and n_frames(16385) == 65 and n_frames(1) == 1
    assert n_frames(4096, hop_length=2048) == 2
    # A full-scale sine centred on a bin peaks at 0 dB; the floor bounds everything below.
    db = log_magnitude_stft(np.sin(2 * np.pi * 8 * (SR / 512) * np.arange(SR) / SR))
    assert db.shape == (1, 64, 257)
    assert db.max() == pytest.approx(0.0, abs=1e-6)
    assert db.min() >= ABSOLUTE_FLOOR_DB
    assert magnitude_stft(np.zeros((3, 1000))).shape == (3, 4, 257)


@pytest.mark.parametrize(("n_fft", "hop_length"), [(512, 256), (2048, 2048), (1000, 300)])
def test_float32_power_is_the_float64_magnitude_squared(n_fft: int, hop_length: int) -> None:
    x = _noise(5000)
    power = power_stft(x[None].astype(np.float32), n_fft=n_fft, hop_length=hop_length)
    magnitude = magnitude_stft(x, n_fft=n_fft, hop_length=hop_length)
    assert power.dtype == np.float32
    expected = (magnitude / full_scale_magnitude(n_fft=n_fft)) ** 2
    np.testing.assert_allclose(power, expected, rtol=2e-4, atol=1e-6 * expected.max())
    # Both dB conversions agree where the floor does not bite.
    np.testing.assert_allclose(
        power_to_db(power, floor_db=ABSOLUTE_FLOOR_DB),
        magnitude_to_db(magnitude, n_fft=n_fft),
        atol=2e-3,
    )


def test_band_power_is_the_stacked_product() -> None:
    power = np.random.default_rng(2).random((3, 5, N_BINS)).astype(np.float32)
    filters = mel_filterbank(sample_rate=SR, n_mels=24).astype(np.float32)
    np.testing.assert_allclose(band_power(power, filters=filters), power @ filters, rtol=1e-5)


@pytest.mark.parametrize("sample_rate", [16384, 44100])
def test_mfcc_is_librosas_on_the_floored_db_mel_power(sample_rate: int) -> None:
    x = _noise(8192) * np.linspace(0.0, 1.0, 8192)  # silence at the start: the floor bites
    ours = mfcc(x, sample_rate=sample_rate)[0]  # [n_frames, 20]
    power = ((magnitude_stft(x)[0] / full_scale_magnitude(n_fft=N_FFT)) ** 2).T  # [257, frames]
    mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_fft=N_FFT, n_mels=N_MFCC_MELS)
    mel_db = librosa.power_to_db(mel, ref=1.0, amin=10.0 ** (ABSOLUTE_FLOOR_DB / 10.0), top_db=None)
    theirs = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC, dct_type=2, norm="ortho").T
    assert ours.shape == theirs.shape == (n_frames(8192), N_MFCC)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_bad_audio_and_rates_are_refused() -> None:
    with pytest.raises(InverSynthError, match="NaN"):
        magnitude_stft(np.array([0.0, np.nan]))
    with pytest.raises(InverSynthError, match="sample_rate"):
        mfcc(np.zeros(512), sample_rate=0)


def test_distance_lookup_and_metrics_share_one_transform() -> None:
    x = np.stack([_noise(4096, seed) for seed in range(3)]).astype(np.float32)
    bins, bands = MultiResolutionDistance(
        sample_rate=SR,
        resolutions=(Resolution(n_fft=512, hop_length=256), Resolution(512, 256, n_bands=32)),
    ).features(x)
    # The distance's float32 dB is the metrics' float64 dB where the floor does not bite.
    np.testing.assert_allclose(bins, log_magnitude_stft(x), atol=2e-3)
    # The lookup's index is the distance's 32-band view, two frames averaged into one.
    assert INDEX_FEATURES == {"n_fft": 512, "hop_length": 256, "n_bands": 32, "frame_pool": 2}
    pooled = bands.reshape(3, -1, 2, 32).mean(axis=2).reshape(3, -1)
    np.testing.assert_array_equal(index_features(x, sample_rate=SR), pooled)


# The signatures of a window, a mel scale or a filterbank written out again.
_OWN_TRANSFORMS = {
    "a window": r"np\.(hanning|hamming|blackman|bartlett|kaiser)\b|get_window|signal\.windows"
    r"|signal\.hann_window|0\.5 - 0\.5 \* np\.cos",
    "a mel scale": r"\b2595\b|\b1127\b|\b700\.0\b|np\.log\(6\.4\)",
    "librosa's filters or STFT": r"librosa\.(filters|mel_frequencies|stft|feature)\b",
    "a function of its own": r"def \w*(hz_to_mel|mel_to_hz|window|filterbank|mel_basis)\w*\(",
}


def _own_transforms(text: str) -> list[str]:
    return [what for what, pattern in _OWN_TRANSFORMS.items() if re.search(pattern, text)]


def test_no_other_module_defines_a_window_mel_scale_or_filterbank() -> None:
    home = REPO / "models" / "common" / "spectral.py"
    assert _own_transforms(home.read_text()) == [
        "a window",
        "a mel scale",
        "librosa's filters or STFT",  # named in a docstring
        "a function of its own",
    ]
    found = {}
    for package in ("core", "generators", "models", "benchmarks"):
        for path in sorted((REPO / package).rglob("*.py")):
            if path != home and (what := _own_transforms(path.read_text())):
                found[str(path.relative_to(REPO))] = what
    assert not found, f"spectral transforms outside models/common/spectral.py: {found}"
