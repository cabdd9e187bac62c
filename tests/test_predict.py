"""Reading sounds of any format for a model, predicting, resynthesizing, the predict command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from core.checks import check_audio
from core.errors import InverSynthError
from generators.sine_generator import SineGenerator
from models.common.data import Split
from models.matching.audio_io import (
    fit_length,
    load_for_model,
    load_segments,
    read_audio,
    wav_bytes,
)
from models.matching.sound_metrics import METRICS

RATE = 8192
N_SAMPLES = 4096


def _tone(rate: int, seconds: float, freq_hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq_hz * t)
    return np.stack([mono * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


# --------------------------------------------------------------------------
# audio_io: no model needed
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subtype"),
    [("a.wav", "PCM_16"), ("a.flac", "PCM_24"), ("a.ogg", "VORBIS"), ("a.mp3", "MPEG_LAYER_III")],
)
def test_formats_rates_and_channels_are_fitted_and_reported(tmp_path, name, subtype):
    path = tmp_path / name
    try:
        sf.write(path, _tone(44100, 0.25, channels=2), 44100, subtype=subtype)
    except (sf.LibsndfileError, ValueError, TypeError) as exc:  # pragma: no cover - old libsndfile
        pytest.skip(f"this libsndfile cannot write {subtype}: {exc}")
    sound = load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES)
    assert sound.audio.shape == (N_SAMPLES,) and sound.audio.dtype == np.float32
    assert sound.source_channels == 2 and sound.source_sample_rate == 44100
    notes = " ".join(sound.notes)
    assert "mixed 2 channels to mono" in notes
    assert "resampled from 44100 Hz to 8192 Hz" in notes
    assert "padded" in notes
    # The tone survives (its level is the mean of the channels: 0.75 * 0.5) ...
    played = sound.audio[: RATE // 8]
    assert 0.3 < np.max(np.abs(played)) < 0.45
    spectrum = np.abs(np.fft.rfft(played))
    assert abs(np.argmax(spectrum) * RATE / played.size - 440.0) < 10
    # ... and the padding is silence.
    assert np.max(np.abs(sound.audio[int(0.26 * RATE) :])) < 0.01


def test_long_sound_is_trimmed_and_says_so(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, _tone(RATE, 2.0), RATE)
    sound = load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES)
    assert sound.notes == [
        "kept the first 0.500 s of 2.000 s (the model takes 0.500 s; --offset_s picks another "
        "part, --segments several)"
    ]
    assert sound.offset_s == 0 and sound.segment_s == (0.0, 0.5)
    np.testing.assert_allclose(sound.audio, _tone(RATE, 2.0)[:N_SAMPLES, 0], atol=1e-4)
    assert load_for_model(path, sample_rate=RATE, n_samples=2 * RATE).notes == []


def _three_tones(path: Path) -> Path:
    """0.5 s each of 330, 660 and 990 Hz: which part was matched shows in the pitch."""
    parts = [_tone(RATE, 0.5, f)[:, 0] for f in (330.0, 660.0, 990.0)]
    sf.write(path, np.concatenate(parts), RATE)
    return path


def _pitch_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.argmax(spectrum) * RATE / audio.size)


def test_offset_s_picks_the_part_matched_and_says_which(tmp_path):
    path = _three_tones(tmp_path / "tones.wav")
    sound = load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES, offset_s=0.5)
    assert abs(_pitch_hz(sound.audio) - 660.0) < 5
    assert sound.offset_s == 0.5 and sound.segment_s == (0.5, 1.0)
    assert sound.notes[0].startswith("matched 0.500 s to 1.000 s of 1.500 s")
    # Near the end: what is left, padded.
    tail = load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES, offset_s=1.25)
    assert tail.segment_s == (1.25, 1.5) and "padded with 0.250 s of silence" in tail.notes[0]
    assert np.max(np.abs(tail.audio[N_SAMPLES // 2 :])) == 0
    with pytest.raises(InverSynthError, match="past the end"):
        load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES, offset_s=1.5)
    with pytest.raises(InverSynthError, match="--offset_s must be"):
        load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES, offset_s=-1)


def test_segments_cut_a_long_sound_hop_apart(tmp_path):
    path = _three_tones(tmp_path / "tones.wav")
    fit = {"sample_rate": RATE, "n_samples": N_SAMPLES}
    segments = load_segments(path, n_segments=4, **fit)
    assert [s.offset_s for s in segments] == [0.0, 0.5, 1.0]
    assert [round(_pitch_hz(s.audio)) for s in segments] == [330, 660, 990]
    assert "room for 3 of the 4 segments" in " ".join(segments[0].notes)
    overlapping = load_segments(path, n_segments=3, hop_s=0.25, offset_s=0.25, **fit)
    assert [s.segment_s for s in overlapping] == [(0.25, 0.75), (0.5, 1.0), (0.75, 1.25)]
    # Silent parts are left out, and the first part kept says so.
    gap = tmp_path / "gap.wav"
    sf.write(gap, np.concatenate([_tone(RATE, 0.5)[:, 0], np.zeros(RATE // 2)]), RATE)
    (kept,) = load_segments(gap, n_segments=2, **fit)
    assert kept.offset_s == 0 and "left out 1 silent segment(s), at 0.500 s" in kept.notes
    with pytest.raises(InverSynthError, match=r"silent from 0\.500 s to 1\.000 s"):
        load_for_model(gap, offset_s=0.5, **fit)


def test_check_audio_refuses_what_no_function_can_use():
    assert check_audio(np.zeros(4), name="x", batch=True).shape == (1, 4)
    assert check_audio(np.zeros(4), name="x", dtype=np.float64).dtype == np.float64
    cases: list[tuple[np.ndarray, dict[str, Any], str]] = [
        (np.zeros((2, 4)), {}, r"x must have shape \[n_samples\]"),
        (np.zeros(0), {}, "n_samples > 0"),
        (np.zeros(3), {"n_samples": 4}, r"shape \[4\], got \(3,\)"),
        (np.zeros(3), {"n_samples": 4, "length_reason": "why"}, r"shape \[4\] \(why\), got \(3,\)"),
        (np.zeros((2, 3)), {"n_samples": 4, "batch": True}, r"shape \[batch, 4\]"),
        (np.zeros((1, 2, 3)), {"batch": True}, "shape"),
        (np.array([0.0, np.inf]), {}, "x contains NaN or infinite samples"),
    ]
    for audio, options, message in cases:
        with pytest.raises(InverSynthError, match=message):
            check_audio(audio, name="x", **options)


def test_fit_length():
    assert fit_length(np.ones(3), 5).tolist() == [1, 1, 1, 0, 0]
    assert fit_length(np.arange(6.0), 4).tolist() == [0, 1, 2, 3]


def _bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    files: dict[str, tuple[Path, str]] = {}
    files["missing"] = (tmp_path / "nope.wav", "does not exist")
    text = tmp_path / "text.wav"
    text.write_text("this is not audio")
    files["unreadable"] = (text, "cannot read")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), dtype=np.float32), RATE)
    files["empty"] = (empty, "no audio samples")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE, dtype=np.float32), RATE)
    files["silent"] = (silent, "silent")
    nan = tmp_path / "nan.wav"
    samples = _tone(RATE, 0.5)
    samples[100] = np.nan
    sf.write(nan, samples, RATE, subtype="FLOAT")
    files["nan"] = (nan, "NaN")
    late = tmp_path / "late.wav"
    samples = np.zeros(2 * RATE, dtype=np.float32)
    samples[RATE:] = 0.5
    sf.write(late, samples, RATE)
    files["late"] = (late, "silent in its first 0.500 s")
    files["folder"] = (tmp_path, "is not a file")
    return files


def test_bad_files_raise_one_clear_error(tmp_path):
    for path, message in _bad_files(tmp_path).values():
        with pytest.raises(InverSynthError, match=message):
            load_for_model(path, sample_rate=RATE, n_samples=N_SAMPLES)


def test_read_audio_keeps_channels_and_wav_bytes_round_trip(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(path, _tone(RATE, 0.1, channels=3), RATE, subtype="FLOAT")
    audio, rate = read_audio(path)
    assert audio.shape == (round(0.1 * RATE), 3) and rate == RATE
    raw = wav_bytes(audio[:, 0], RATE)
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    back, back_rate = sf.read(io.BytesIO(raw))
    assert back_rate == RATE
    np.testing.assert_allclose(back, audio[:, 0], atol=1e-4)


# --------------------------------------------------------------------------
# Prediction with a (tiny, untrained) model
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder with an untrained C1 for the sine synth at 8192 Hz, 0.5 s."""
    import keras

    from models.common.architectures import build_model
    from models.common.run import BEST_MODEL, RunInfo, save_model_atomic

    generator = SineGenerator(sample_rate=RATE, n_samples=N_SAMPLES, n_levels=8)
    run_dir = tmp_path_factory.mktemp("runs") / "C1_sine"
    run_dir.mkdir()
    RunInfo(
        model_name="C1",
        head="softmax",
        data_format="channels_last",
        parameter_set=generator.parameter_set,
        generator_name="sine",
        generator_config=generator.config(),
        sample_rate=RATE,
        n_samples=N_SAMPLES,
        dataset_identity={"fingerprint": "none"},
        dataset_paths=[],
        split=Split((0.8, 0.1, 0.1), 100),
        settings={},
    ).save(run_dir)
    keras.utils.set_random_seed(0)
    model = build_model(
        "C1",
        n_levels=generator.parameter_set.n_levels.tolist(),
        n_samples=N_SAMPLES,
        head="softmax",
    )
    save_model_atomic(model, run_dir / BEST_MODEL)  # as training saves it, with its record
    return run_dir


@pytest.fixture(scope="session")
def loaded_run(tiny_run):
    from models.common.run import load_run

    return load_run(tiny_run)


def test_predict_file_predicts_resynthesizes_and_measures(tmp_path, loaded_run):
    from models.matching.match_text import format_prediction
    from models.matching.prediction import predict_file

    path = tmp_path / "in.wav"
    sf.write(path, _tone(22050, 0.5, 330.0), 22050)
    prediction = predict_file(loaded_run, path, top_k=3)
    ps = loaded_run.parameter_set
    assert prediction.indices.shape == (2,) and prediction.scores.shape == (ps.n_outputs,)
    assert prediction.values.tolist() == ps.to_values(prediction.indices[None, :])[0].tolist()
    for p in prediction.parameters:
        probabilities = [q for _, _, q in p.top]
        assert len(p.top) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert p.top[0][0] == p.index and 0 < sum(probabilities) <= 1 + 1e-6
        assert p.value == ps[p.name].levels[p.index]
    expected = SineGenerator(**loaded_run.generator_config).render_indices(
        prediction.indices[None, :]
    )[0]
    assert prediction.resynthesis is not None and prediction.metrics is not None
    np.testing.assert_array_equal(prediction.resynthesis, expected)
    assert set(prediction.metrics) == set(METRICS)
    assert all(np.isfinite(v) for v in prediction.metrics.values())
    table = format_prediction(prediction)
    assert "resampled from 22050 Hz to 8192 Hz" in table
    assert "frequency_hz" in table and " Hz " in table and "%" in table


def test_predict_audio_checks_its_array(loaded_run):
    from models.matching.prediction import predict_audio

    with pytest.raises(InverSynthError, match=r"shape \[4096\]"):
        predict_audio(loaded_run, np.zeros(100))
    with pytest.raises(InverSynthError, match="top_k"):
        predict_audio(loaded_run, np.zeros(N_SAMPLES), top_k=0)
    result = predict_audio(loaded_run, 0.3 * np.ones(N_SAMPLES), resynthesize=False)
    assert result.resynthesis is None and result.metrics is None


def test_cli_matches_good_files_and_reports_bad_ones(tmp_path, tiny_run, capsys):
    from models.predict import main

    good = tmp_path / "a" / "kick.wav"
    twin = tmp_path / "b" / "kick.flac"
    for path in (good, twin):
        path.parent.mkdir()
        sf.write(path, _tone(RATE, 1.0, 660.0, channels=2), RATE)
    (tmp_path / "bad").mkdir()
    bad = _bad_files(tmp_path / "bad")
    out = tmp_path / "out"
    argv = [str(good), str(bad["silent"][0]), str(twin), str(bad["missing"][0])]
    code = main([*argv, "--run", str(tiny_run), "--output_dir", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert "silent" in errors[0] and "does not exist" in errors[1]
    assert "2 of 4 sounds matched; 2 failed" in captured.err
    assert captured.out.count("mixed 2 channels to mono") == 2
    assert "kept the first 0.500 s of 1.000 s" in captured.out
    # Two sounds called "kick" get distinct files.
    expected = []
    for stem in ("kick", "kick-2"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["run"]["model"] == "C1" and record["run"]["generator"] == "sine"
        match, network = record["candidates"]
        assert match["candidate"] == "match" and network["candidate"] == "network"
        assert [p["name"] for p in network["parameters"]] == ["frequency_hz", "amplitude"]
        assert set(match["metrics"]) == set(network["metrics"]) == set(METRICS)
        kinds = ["input", "resynthesis"]
        if match["wav"] != network["wav"]:  # the network's guess has a WAV of its own
            kinds.append("network")
        for kind in kinds:
            audio, rate = sf.read(out / f"{stem}_{kind}.wav")
            assert rate == RATE and audio.shape == (N_SAMPLES,)
        png = (out / f"{stem}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        expected += [f"{stem}.json", f"{stem}.png", *(f"{stem}_{k}.wav" for k in kinds)]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)


def test_cli_all_good_exits_0_and_defaults_to_the_run_folder(tmp_path, tiny_run, capsys):
    from models.predict import main

    path = tmp_path / "tone.ogg"
    sf.write(path, _tone(RATE, 0.5), RATE)
    assert main([str(path), "--run", str(tiny_run), "--no_plot", "--top_k", "2"]) == 0
    assert (tiny_run / "predictions" / "tone.json").is_file()
    assert not (tiny_run / "predictions" / "tone.png").exists()
    assert "top 2 (probability)" in capsys.readouterr().out


def test_cli_matches_segments_and_names_their_files(tmp_path, tiny_run, capsys):
    from models.predict import main

    path = _three_tones(tmp_path / "tones.wav")
    out = tmp_path / "out"
    argv = [str(path), "--run", str(tiny_run), "--output_dir", str(out), "--no_plot"]
    assert main([*argv, "--offset_s", "0.5", "--segments", "2"]) == 0
    printed = capsys.readouterr().out
    assert "matched 0.500 s to 1.000 s of 1.500 s" in printed
    assert "matched 1.000 s to 1.500 s of 1.500 s" in printed
    for start, end, pitch_hz in ((0.5, 1.0, 660.0), (1.0, 1.5, 990.0)):
        record = json.loads((out / f"tones_at_{start:.3f}s.json").read_text())
        assert record["input"]["part_s"] == [start, end]
        heard, _ = sf.read(out / f"tones_at_{start:.3f}s_input.wav")
        assert abs(_pitch_hz(heard) - pitch_hz) < 5


def test_help_names_the_files_and_the_default_folder(capsys):
    from models.predict import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "{name}_input.wav" in text and "{run}/predictions" in text
    for option in ("--offset_s", "--segments", "--hop_s", "--example"):
        assert option in text


@pytest.fixture(scope="module")
def run_with_dataset(tmp_path_factory) -> Path:
    """An evaluated sine run (test examples 30-39 of its dataset) with an untrained C1."""
    import keras

    from models.common.architectures import build_model
    from models.common.run import BEST_MODEL, RunInfo, save_model_atomic
    from tests.test_reconstruction import make_evaluated_run

    run_dir = make_evaluated_run(tmp_path_factory.mktemp("example"), model_name="C1")
    info = RunInfo.load(run_dir)
    keras.utils.set_random_seed(0)
    model = build_model(
        "C1", n_levels=info.parameter_set.n_levels.tolist(), n_samples=info.n_samples,
        head=info.head,
    )  # fmt: skip
    save_model_atomic(model, run_dir / BEST_MODEL)  # as training saves it, with its record
    return run_dir


def test_example_shows_the_true_values_beside_the_predicted(run_with_dataset, tmp_path, capsys):
    from generators.dataset import open_dataset
    from models.common.run import RunInfo
    from models.predict import main

    info = RunInfo.load(run_with_dataset)
    out = tmp_path / "out"
    argv = ["--run", str(run_with_dataset), "--output_dir", str(out), "--no_plot"]
    assert main([*argv, "--example", "31", "--method", "network", "--budget_renders", "1"]) == 0
    printed = capsys.readouterr().out
    with open_dataset(info.dataset_paths) as dataset:
        audio, labels = dataset.read(np.array([31]))
    true_values = info.parameter_set.to_values(labels)[0]
    record = json.loads((out / "test_000031.json").read_text())
    truth = record["true_parameters"]
    assert [p["index"] for p in truth] == labels[0].tolist()
    assert [p["value"] for p in truth] == pytest.approx(true_values.tolist())
    heard, _ = sf.read(out / "test_000031_input.wav")
    np.testing.assert_allclose(heard, audio[0], atol=1e-4)  # 16-bit WAV
    lines = printed.splitlines()
    header = next(line for line in lines if line.strip().startswith("parameter"))
    assert header.split()[:4] == ["parameter", "matched", "network", "true"]
    match, network = record["candidates"]
    indices = [p["index"] for p in match["parameters"]]
    assert indices == [p["index"] for p in network["parameters"]]  # one render: the guess
    table = lines[lines.index(header) :]  # the legend above names the parameters too
    row = next(line for line in table if line.strip().startswith("frequency_hz"))
    assert f"{true_values[0]:.4g} Hz" in row
    right = int(np.sum(np.array(indices) == labels[0]))
    assert f"{right} of 2 parameters at their true class" in printed
    # A training example is refused, naming the test examples.
    assert main([*argv, "--example", "3"]) == 2
    assert "test examples are 30 to 39" in capsys.readouterr().err


def test_demo_refuses_to_replace_an_earlier_demo(tmp_path):
    from models.cli.demo_app import DemoOptions, run_demo

    run_dir = tmp_path / "runs" / "C6_sine_demo"
    (run_dir / "predictions").mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    (run_dir / "predictions" / "kick.json").write_text("{}")
    (tmp_path / "predictions").mkdir()
    with pytest.raises(InverSynthError, match="pass --overwrite") as caught:
        run_demo(DemoOptions(output_dir=tmp_path, synth="sine"))
    message = str(caught.value)
    assert "runs/C6_sine_demo/" in message and "predictions/" in message
    assert "the run folder also holds predictions/" in message
    assert (run_dir / "predictions" / "kick.json").exists()


def test_demo_refuses_to_delete_a_folder_it_did_not_make(tmp_path):
    from models.cli.demo_app import DemoOptions, run_demo

    foreign = tmp_path / "runs" / "C6_sine_demo"
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(InverSynthError, match="not a run folder"):
        run_demo(DemoOptions(output_dir=tmp_path, synth="sine"))
    assert (foreign / "precious.txt").exists()
    with pytest.raises(InverSynthError, match="num_examples"):
        run_demo(DemoOptions(output_dir=tmp_path / "x", num_examples=10))


# --------------------------------------------------------------------------
# Matching: --method and its budgets
# --------------------------------------------------------------------------


def test_hybrid_records_its_budget_and_is_never_farther_than_the_network(
    tmp_path, tiny_run, capsys
):
    from models.predict import main

    path = tmp_path / "tone.wav"
    sf.write(path, _tone(RATE, 0.5, 523.0), RATE)
    out = tmp_path / "out"
    argv = [str(path), "--run", str(tiny_run), "--output_dir", str(out), "--no_plot"]
    assert main([*argv, "--method", "hybrid", "--budget_renders", "60", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "tone.json").read_text())
    assert record["format_version"] == 2
    assert record["method"] == "hybrid" and record["seed"] == 3
    assert record["budget_renders"] == 60 and record["budget_s"] is None
    assert 1 <= record["renders"] <= 60 and record["seconds"] > 0
    assert record["lookup"] is None and "hybrid without a lookup" in record["notes"][0]
    assert "note: hybrid without a lookup" in printed
    match, network = record["candidates"]
    # The hybrid starts from the network's guess and keeps the best it heard.
    assert match["distance_db"] <= network["distance_db"]
    assert set(match["metrics"]) == set(network["metrics"]) == set(METRICS)
    assert match["similarity_percent"] == pytest.approx(100 * match["metrics"]["rho_stft"])
    assert match["lsd_db"] == match["metrics"]["log_spectral_distance"]
    assert all(len(p["top"]) == 3 for p in network["parameters"])
    # The resynthesis is the match; the network's guess is beside it when it differs.
    final, _ = sf.read(out / "tone_resynthesis.wav")
    assert match["wav"] == "tone_resynthesis.wav" and final.shape == (N_SAMPLES,)
    header = next(line for line in printed.splitlines() if line.strip().startswith("parameter"))
    assert header.split()[:3] == ["parameter", "matched", "network"]
    assert "match (hybrid, " in printed and "network's guess: " in printed
    # The same seed and renders give the same match, with or without a time limit.
    again = tmp_path / "again"
    argv2 = [str(path), "--run", str(tiny_run), "--output_dir", str(again), "--no_plot"]
    assert main([*argv2, "--budget_renders", "60", "--seed", "3", "--budget_s", "600"]) == 0
    other = json.loads((again / "tone.json").read_text())
    assert other["budget_s"] == 600 and other["candidates"][0]["parameters"] == match["parameters"]
    solo = tmp_path / "solo"
    argv3 = [str(path), "--run", str(tiny_run), "--output_dir", str(solo), "--no_plot"]
    assert main([*argv3, "--method", "network", "--budget_renders", "1"]) == 0
    alone = json.loads((solo / "tone.json").read_text())["candidates"]
    assert alone[0]["parameters"] == [
        {k: v for k, v in p.items() if k != "top"} for p in network["parameters"]
    ]
    assert alone[1]["wav"] == "tone_resynthesis.wav" and not (solo / "tone_network.wav").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget_renders", "0"], "--budget_renders"),
        (["--budget_s", "-1"], "--budget_s"),
        (
            ["--budget_renders", "1000000000"],
            "--budget_renders: expected an integer in [1, 1000000]",
        ),
        (["--budget_s", "1e9"], "--budget_s: expected a number in [0.01, 86400] s"),
        (["--method", "guess"], "--method"),
        (["--method", "lookup"], "--lookup_dataset"),
    ],
)
def test_bad_matching_options_exit_2_in_one_line(tmp_path, tiny_run, capsys, extra, message):
    from core.commandline import run_cli
    from models.predict import main

    path = tmp_path / "tone.wav"
    sf.write(path, _tone(RATE, 0.5), RATE)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(path), "--run", str(tiny_run), "--output_dir", str(tmp_path), *extra])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert not (tmp_path / "tone.json").exists()


def test_a_lookup_dataset_of_another_synth_exits_2_in_one_line(tmp_path, tiny_run, capsys):
    from core.commandline import run_cli
    from generators.writer import DatasetCreator, DatasetPlan
    from models.predict import main

    other = SineGenerator(sample_rate=RATE, n_samples=N_SAMPLES, n_levels=4)  # other levels
    dataset = DatasetCreator(
        other,
        path=tmp_path / "other_data.hdf5",
        plan=DatasetPlan(n_examples=8, seed=1),
        chunk_size=8,
        progress=False,
    ).run(overwrite=True)
    path = tmp_path / "tone.wav"
    sf.write(path, _tone(RATE, 0.5), RATE)
    argv = [str(path), "--run", str(tiny_run), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [*argv, "--lookup_dataset", str(dataset)])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: lookup dataset") and "sine" in err[0]
    assert not (tmp_path / "out" / "tone.json").exists()
