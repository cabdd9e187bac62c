"""Reconstruction metrics (known answers) and the reconstruction evaluation of a run.

The run here is "evaluated" without TensorFlow: a tiny sine dataset, a run
record and saved predictions written the way ``models.evaluate`` writes them.
:func:`make_evaluated_run` is shared with the report and comparison tests.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.data import Split
from models.common.metrics import evaluate_scores
from models.common.records import write_json_atomic
from models.common.run import RunInfo
from models.common.spectral import ABSOLUTE_FLOOR_DB, log_magnitude_stft, mfcc
from models.evaluation.evaluation_folder import RECONSTRUCTION_CSV, RECONSTRUCTION_JSON
from models.evaluation.resynthesis import (
    ReconstructionOptions,
    evaluate_reconstruction,
    format_reconstruction_table,
    resynthesize,
)
from models.matching.sound_metrics import (
    METRICS,
    compare_audio,
    format_metric,
    pearson,
    reconstruction_metrics,
    summarize,
)
from models.reconstruct import main

SR = 16384
N = 16384
GAIN_DB = 20 * np.log10(2.0)


def _noise(seed: int = 0, level: float = 0.1) -> np.ndarray:
    return level * np.random.default_rng(seed).standard_normal(N)


def _tone(freq_hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq_hz * np.arange(N) / SR)


# --------------------------------------------------------------------------
# Metrics with known answers
# --------------------------------------------------------------------------


def test_identical_audio_is_a_perfect_match():
    for x in (_noise(), _tone()):
        m = compare_audio(x, x, sample_rate=SR)
        assert m["f_delta"] == 0.0
        assert m["rho_stft"] == pytest.approx(1.0)
        assert m["rho_ft"] == pytest.approx(1.0)
        assert m["spectral_convergence"] == 0.0
        assert m["log_spectral_distance"] == 0.0
        assert m["mfcc_l1"] == 0.0


def test_known_gain_on_noise_where_the_floor_never_bites():
    x = _noise()
    assert log_magnitude_stft(x).min() > ABSOLUTE_FLOOR_DB + 10  # the floor does not bite
    m = compare_audio(x, 2 * x, sample_rate=SR)
    assert m["log_spectral_distance"] == pytest.approx(GAIN_DB, rel=1e-9)
    assert m["f_delta"] == pytest.approx(GAIN_DB * np.sqrt(64 * 257), rel=1e-9)
    assert m["rho_stft"] == pytest.approx(1.0, abs=1e-12)
    assert m["rho_ft"] == pytest.approx(1.0, abs=1e-12)
    assert m["spectral_convergence"] == pytest.approx(1.0, rel=1e-12)
    # A constant dB offset moves only c0 of the orthonormal DCT: by gain * sqrt(40 bands).
    assert m["mfcc_l1"] == pytest.approx(GAIN_DB * np.sqrt(40) / 20, rel=1e-6)
    # The other way round, the difference is half the reference.
    assert compare_audio(2 * x, x, sample_rate=SR)["spectral_convergence"] == pytest.approx(0.5)


def test_known_gain_on_a_tone_is_bounded_by_the_floor():
    x = _tone()
    m = compare_audio(x, 2 * x, sample_rate=SR)
    assert m["rho_stft"] > 0.99
    assert m["spectral_convergence"] == pytest.approx(1.0)
    assert 0 < m["log_spectral_distance"] <= GAIN_DB + 1e-9


def test_silence_against_a_tone_is_finite_and_worst():
    silence, tone = np.zeros(N), _tone()
    m = compare_audio(tone, silence, sample_rate=SR)
    assert all(np.isfinite(v) for v in m.values())
    assert m["rho_stft"] == 0.0 and m["rho_ft"] == 0.0
    assert m["spectral_convergence"] == 1.0  # the whole reference is missing
    assert m["f_delta"] > 0 and m["log_spectral_distance"] > 0 and m["mfcc_l1"] > 0
    # Against a silent reference convergence is undefined (inf); nothing is NaN.
    back = compare_audio(silence, tone, sample_rate=SR)
    assert back["spectral_convergence"] == np.inf
    assert not any(np.isnan(v) for v in back.values())
    assert back["f_delta"] == pytest.approx(m["f_delta"])  # the log distances are symmetric
    both = compare_audio(silence, silence, sample_rate=SR)
    assert both == {
        "rho_stft": 1.0,
        "rho_ft": 1.0,
        "f_delta": 0.0,
        "spectral_convergence": 0.0,
        "log_spectral_distance": 0.0,
        "mfcc_l1": 0.0,
    }


def test_closer_sounds_score_better():
    target = _tone(440.0)
    near, far = _tone(445.0), _tone(880.0)
    m_near = compare_audio(target, near, sample_rate=SR)
    m_far = compare_audio(target, far, sample_rate=SR)
    for key, info in METRICS.items():
        if info.higher_is_better:
            assert m_near[key] > m_far[key], key
        else:
            assert m_near[key] < m_far[key], key


def test_batch_equals_one_by_one():
    refs = np.stack([_noise(1), _tone(300.0), _tone(1000.0, 0.2)])
    ests = np.stack([_noise(2), _tone(310.0), np.zeros(N)])
    batch = reconstruction_metrics(refs, ests, sample_rate=SR)
    for i in range(3):
        single = compare_audio(refs[i], ests[i], sample_rate=SR)
        for key in METRICS:
            assert batch[key][i] == pytest.approx(single[key], rel=1e-12), key
    assert mfcc(refs, sample_rate=SR).shape == (3, 64, 20)


def test_pearson_constant_rows_are_defined():
    a = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0], [1.0, 2.0, 3.0]])
    b = np.array([[2.0, 4.0, 6.0], [5.0, 5.0, 5.0], [4.0, 4.0, 4.0], [3.0, 2.0, 1.0]])
    assert pearson(a, b).tolist() == pytest.approx([1.0, 1.0, 0.0, -1.0])


@pytest.mark.parametrize(
    ("ref", "est", "match"),
    [
        (np.zeros(100), np.zeros(101), "same shape"),
        (np.full(100, np.nan), np.zeros(100), "NaN"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), "shape"),
        (np.zeros(0), np.zeros(0), "n_samples > 0"),
    ],
)
def test_bad_input_is_refused(ref, est, match):
    with pytest.raises(InverSynthError, match=match):
        reconstruction_metrics(ref, est, sample_rate=SR)


def test_summarize_leaves_out_undefined_values():
    s = summarize({"x": np.array([1.0, 2.0, 6.0, np.inf])})["x"]
    assert s["mean"] == 3.0 and s["median"] == 2.0 and s["min"] == 1.0 and s["max"] == 6.0
    assert s["n"] == 3 and s["n_excluded"] == 1
    assert summarize({"y": np.array([np.inf])})["y"]["mean"] is None


# --------------------------------------------------------------------------
# An evaluated run, without TensorFlow
# --------------------------------------------------------------------------


def make_evaluated_run(
    root: Path,
    *,
    n_examples: int = 40,
    wrong_fraction: float = 0.3,
    model_name: str = "C6",
    run_name: str = "C6_sine",
    seed: int = 0,
    generator: SineGenerator | None = None,
) -> Path:
    """A run folder with run.json and evaluation/{predictions.npz, metrics.json}.

    The "model" predicts the true class except for about ``wrong_fraction``
    of the (example, parameter) pairs, which are off by one class. Its synth:
    ``generator`` (default a sine of 8 levels, 4,096 samples at 8,192 Hz).
    """
    if generator is None:
        generator = SineGenerator(sample_rate=8192, n_samples=4096, n_levels=8)
    data_path = root / "data" / f"sine{seed}_data.hdf5"
    if not data_path.exists():
        DatasetCreator(
            generator,
            path=data_path,
            plan=DatasetPlan(n_examples=n_examples, seed=seed),
            progress=False,
        ).run()
    with open_dataset(data_path) as dataset:
        split = Split((0.5, 0.25, 0.25), dataset.n_examples)
        info = RunInfo(
            model_name=model_name,
            head="sigmoid",
            data_format="channels_last",
            parameter_set=dataset.parameter_set,
            generator_name=dataset.generator_name,
            generator_config=dict(dataset.generator_config),
            sample_rate=dataset.sample_rate,
            n_samples=dataset.n_samples,
            dataset_identity=dataset.identity,
            dataset_paths=[str(data_path.resolve())],
            split=split,
            settings={"epochs": 1},
        )
        test = split.indices("test")
        _, true = dataset.read(test)
        identity = dataset.identity
    run_dir = root / "runs" / run_name
    (run_dir / "evaluation").mkdir(parents=True)
    info.save(run_dir)
    rng = np.random.default_rng(seed)
    levels = info.parameter_set.n_levels
    wrong = rng.random(true.shape) < wrong_fraction
    predicted = np.where(wrong, (true + 1) % levels[None, :], true)
    scores = 0.8 * info.parameter_set.encode(predicted) + 0.1 * rng.random(
        (true.shape[0], info.parameter_set.n_outputs)
    )
    np.savez_compressed(
        run_dir / "evaluation" / "predictions.npz",
        example_indices=test,
        true_indices=true,
        scores=scores.astype(np.float32),
    )
    evaluation = evaluate_scores(info.parameter_set, scores, true)
    write_json_atomic(
        run_dir / "evaluation" / "metrics.json",
        {
            "model": model_name,
            "run_dir": str(run_dir),
            "dataset": {"paths": [str(data_path.resolve())], "identity": identity},
            "split": "test",
            **evaluation.to_dict(),
            "run_fingerprint": info.fingerprint,
        },
    )
    return run_dir


def test_resynthesis_of_the_true_parameters_is_exact(tmp_path):
    run_dir = make_evaluated_run(tmp_path, wrong_fraction=0.0)
    result = evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True)
    )
    s = result["summary"]
    assert s["f_delta"]["max"] == 0.0
    assert s["rho_stft"]["min"] == pytest.approx(1.0)
    assert s["spectral_convergence"]["max"] == 0.0
    # Random patches do worse against the same sounds.
    assert result["chance"]["rho_stft"]["mean"] < 0.99
    assert result["chance"]["f_delta"]["mean"] > 100


def test_reconstruction_evaluation_files_and_parallel_workers(tmp_path, monkeypatch):
    import models.evaluation.resynthesis

    monkeypatch.setattr(models.evaluation.resynthesis, "_MIN_EXAMPLES_FOR_WORKERS", 1)
    run_dir = make_evaluated_run(tmp_path, wrong_fraction=0.5)
    serial = evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=1, chunk_size=3, progress=False, quiet=True)
    )
    parallel = evaluate_reconstruction(
        run_dir, ReconstructionOptions(workers=2, chunk_size=3, progress=False, quiet=True)
    )
    for key in METRICS:
        np.testing.assert_allclose(parallel["per_example"][key], serial["per_example"][key])
    n_test = 10
    assert serial["n_examples"] == n_test
    # Some predictions are wrong, so the model is imperfect but better than chance.
    s, c = serial["summary"], serial["chance"]
    assert 0 < s["f_delta"]["mean"] < c["f_delta"]["mean"]
    assert c["rho_stft"]["mean"] < s["rho_stft"]["mean"] < 1.0

    written = json.loads((run_dir / "evaluation" / RECONSTRUCTION_JSON).read_text())
    assert set(written["summary"]) == set(METRICS)
    assert written["summary"]["f_delta"]["median"] == pytest.approx(s["f_delta"]["median"])
    with open(run_dir / "evaluation" / RECONSTRUCTION_CSV, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_test
    assert [int(r["example_index"]) for r in rows] == list(range(30, 40))
    assert float(rows[0]["f_delta"]) == pytest.approx(serial["per_example"]["f_delta"][0], rel=1e-5)

    table = format_reconstruction_table(serial)
    assert "model mean" in table and "random patch median" in table and "rho_STFT (%)" in table


def test_max_examples_and_no_chance(tmp_path):
    run_dir = make_evaluated_run(tmp_path)
    result = evaluate_reconstruction(
        run_dir,
        ReconstructionOptions(max_examples=4, chance=False, workers=1, progress=False, quiet=True),
    )
    assert result["n_examples"] == 4 and "chance" not in result
    assert result["per_example"]["f_delta"].shape == (4,)


def test_unevaluated_run_and_changed_dataset_are_refused(tmp_path):
    run_dir = make_evaluated_run(tmp_path)
    predictions = run_dir / "evaluation" / "predictions.npz"
    with np.load(predictions) as data:
        saved = {k: data[k] for k in data.files}
    saved["true_indices"] = (saved["true_indices"] + 1) % 8
    np.savez(predictions, **saved)
    with pytest.raises(InverSynthError, match="no longer matches"):
        evaluate_reconstruction(
            run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True)
        )
    predictions.unlink()
    with pytest.raises(InverSynthError, match=r"models\.evaluate"):
        evaluate_reconstruction(
            run_dir, ReconstructionOptions(workers=1, progress=False, quiet=True)
        )


def test_resynthesize_renders_in_job_order():
    generator = SineGenerator(sample_rate=8192, n_samples=1024, n_levels=4)
    indices = generator.parameter_set.sample_indices(seed=1, n_examples=9)
    jobs = [(indices[i : i + 2], None, None) for i in range(0, 9, 2)]
    results = list(resynthesize("sine", generator.config(), iter(jobs), workers=2, keep_audio=True))
    audio = np.concatenate([r.audio for r in results if r.audio is not None])
    np.testing.assert_array_equal(audio, generator.render_indices(indices))
    with pytest.raises(InverSynthError, match="workers"):
        list(resynthesize("sine", generator.config(), [], workers=0))


def test_cli_prints_the_table(tmp_path, capsys):
    run_dir = make_evaluated_run(tmp_path)
    assert main([str(run_dir), "--workers", "1", "--no_progress"]) == 0
    out = capsys.readouterr().out
    assert "rho_STFT" in out and str(run_dir / "evaluation" / RECONSTRUCTION_JSON) in out


def test_resynthesis_with_a_plugin_synth_uses_its_own_hosts():
    plugin = Path("/usr/lib/vst/Nekobi-vst.so")
    config_path = Path(__file__).resolve().parent.parent / "plugin_config" / "nekobi.json"
    if not plugin.exists() or not config_path.exists():
        message = "Nekobi is not installed (sudo apt-get install -y dpf-plugins-vst)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    from generators.sound_generator import load_generator

    generator = load_generator(
        "vst", {"plugin_config": str(config_path), "sample_rate": 16384, "n_samples": 4096}
    )
    try:
        config = generator.config()
        indices = generator.parameter_set.sample_indices(seed=3, n_examples=4)
        reference = generator.render_indices(indices)
    finally:
        generator.close()
    jobs = [(indices[:2], reference[:2], None), (indices[2:], reference[2:], None)]
    results = list(resynthesize("vst", config, jobs, workers=2, keep_audio=True))
    audio = np.concatenate([r.audio for r in results if r.audio is not None])
    # Plugins keep a little state between notes (about 1e-5 of full scale).
    np.testing.assert_allclose(audio, reference, atol=1e-3)
    rho = np.concatenate([r.metrics["rho_stft"] for r in results])
    assert rho.min() > 0.99


def test_format_metric():
    assert format_metric("rho_stft", 0.92044) == "92.04"
    assert format_metric("f_delta", 708.94) == "708.9"
    assert format_metric("log_spectral_distance", 12.345) == "12.35"
    assert format_metric("spectral_convergence", 0.5) == "0.500"
    assert format_metric("spectral_convergence", None) == "-"
    assert format_metric("spectral_convergence", float("inf")) == "inf"


def test_reconstruct_reports_each_matching_method_beside_random_patches(tmp_path, capsys):
    from models.evaluation.evaluation_folder import Matches, read_reconstruction

    run_dir = make_evaluated_run(tmp_path, wrong_fraction=0.5)
    argv = [str(run_dir), "--workers", "1", "--no_progress", "--methods", "network", "hybrid"]
    assert main([*argv, "--match_examples", "4", "--budget_renders", "40"]) == 0
    out = capsys.readouterr().out
    assert "Matching 4 test sounds, at most 40 renders" in out
    assert "hybrid mean" in out and "network median" in out and "random patch mean" in out
    assert "MR dist (dB)" in out and "LSD" in out
    record = read_reconstruction(run_dir / "evaluation")
    assert record is not None and record.matching is not None
    matching = record.matching
    assert matching.n_examples == 4 and set(matching.methods) == {
        "network",
        "hybrid",
        "random patch",
    }
    assert matching.renders_mean["network"] == 1 and 1 < matching.renders_mean["hybrid"] <= 40
    dist = {m: matching.methods[m]["distance_db"].mean for m in matching.methods}
    # The hybrid starts from the network's guess and keeps the best: never farther on any sound.
    assert None not in dist.values()
    assert dist["hybrid"] <= dist["network"] < dist["random patch"]  # type: ignore[operator]
    assert set(matching.methods["hybrid"]) == {*METRICS, "distance_db"}
    matches = Matches.load(run_dir / "evaluation")
    assert matches is not None and matches.example_indices.tolist() == [30, 31, 32, 33]
    assert set(matches.indices) == {"network", "hybrid"}
    with np.load(run_dir / "evaluation" / "predictions.npz") as data:
        guess = RunInfo.load(run_dir).parameter_set.decode(data["scores"][:4])
    np.testing.assert_array_equal(matches.indices["network"], guess)
    # Without methods beyond the default, the record has the network alone, and old files load.
    assert main([str(run_dir), "--workers", "1", "--no_progress"]) == 0
    again = read_reconstruction(run_dir / "evaluation")
    assert again is not None and again.matching is not None
    assert set(again.matching.methods) == {"network", "random patch"}
    data = json.loads((run_dir / "evaluation" / RECONSTRUCTION_JSON).read_text())
    del data["matching"]
    (run_dir / "evaluation" / RECONSTRUCTION_JSON).write_text(json.dumps(data))
    old = read_reconstruction(run_dir / "evaluation")
    assert old is not None and old.matching is None


def test_unknown_matching_method_exits_2_in_one_line(tmp_path, capsys):
    run_dir = make_evaluated_run(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(run_dir), "--methods", "guess"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--methods" in err[0]
