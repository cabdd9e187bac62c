"""The FM model shipped in models/pretrained: present, loads on a fresh clone, knows the synth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.errors import InverSynthError
from generators.fm_generator import FMGenerator
from generators.sine_generator import SineGenerator
from models.cli.demo_app import HELD_OUT_SEED
from models.common.pretrained import PRETRAINED_FM_RUN, export_run, pretrained_run_dir
from models.common.run import BEST_MODEL, RUN_FILE, load_run

REPOSITORY = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped_run():
    return load_run(pretrained_run_dir())


def test_the_shipped_model_is_committed_and_a_few_megabytes():
    model = PRETRAINED_FM_RUN / BEST_MODEL
    assert model.is_file() and (PRETRAINED_FM_RUN / RUN_FILE).is_file()
    assert 1e6 < model.stat().st_size < 12e6
    if (REPOSITORY / ".git").exists():  # a clone: the files are tracked, not left by a session
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(model), str(PRETRAINED_FM_RUN / RUN_FILE)],
            cwd=REPOSITORY, capture_output=True, check=False,
        )  # fmt: skip
        assert tracked.returncode == 0, tracked.stderr


def test_its_parameters_are_the_fm_synths(shipped_run):
    assert shipped_run.generator_name == FMGenerator.name
    fm = FMGenerator()
    # Within LEVEL_RTOL: a CPU with AVX-512 computes some levels a last digit apart.
    assert shipped_run.parameter_set.matches(fm.parameter_set)
    assert shipped_run.parameter_set.names == fm.parameter_set.names
    assert (shipped_run.sample_rate, shipped_run.n_samples) == (fm.sample_rate, fm.n_samples)
    assert shipped_run.model.count_params() > 1e6


def test_it_predicts_new_fm_sounds_far_above_chance(shipped_run):
    """Sounds of a seed no training used; an untrained network's mean percentile rank is 50."""
    from models.common.metrics import evaluate_scores

    with FMGenerator() as synth:
        rendered = synth.render_examples(seed=HELD_OUT_SEED, start=0, n_examples=96)
    evaluation = evaluate_scores(
        shipped_run.parameter_set, shipped_run.predict_scores(rendered.audio), rendered.indices
    )
    assert evaluation.groups["All"].mpr > 65


def test_predict_without_run_uses_it_and_writes_into_the_working_folder(
    tmp_path, monkeypatch, capsys, shipped_lookup_dir
):
    from models.predict import main

    monkeypatch.setenv("INVERSYNTH_DATASET_DIRECTORY", str(shipped_lookup_dir))
    monkeypatch.delenv("INVERSYNTH_RUN", raising=False)
    monkeypatch.delenv("INVERSYNTH_PREDICTIONS_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    with FMGenerator() as synth:
        audio = synth.render_examples(seed=HELD_OUT_SEED, start=5, n_examples=1).audio[0]
    sf.write(tmp_path / "fm.wav", audio, synth.sample_rate)
    argv = ["fm.wav", "--method", "hybrid", "--budget_renders", "50", "--no_plot"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert str(PRETRAINED_FM_RUN) in printed
    # The legend says what each parameter is, though the run predates descriptions.
    assert "B_sine     Amplitude LFO, Hz: depth of the sine oscillator's pitch LFO" in printed
    record = json.loads((tmp_path / "predictions" / "fm.json").read_text())
    assert (tmp_path / "predictions" / ".inversynth-predictions").is_file()  # for clean_outputs
    described = {p["name"]: p["description"] for p in record["candidates"][0]["parameters"]}
    assert described["cutoff_hz"] == "cutoff frequency of the resonant low-pass filter"
    assert record["run"]["model"] == "M1" and record["run"]["generator"] == "fm"
    match, network = record["candidates"]
    assert match["distance_db"] <= network["distance_db"]
    # The lookup its hybrid figures were measured with: rendered from the synth, not gone.
    assert record["lookup"]["n_examples"] == 19000 and record["notes"] == []
    assert not list(PRETRAINED_FM_RUN.glob("predictions"))
    with pytest.raises(SystemExit):
        main(["fm.wav", "--checkpoint", "latest"])
    assert "--checkpoint latest needs --run" in capsys.readouterr().err


def test_export_drops_the_optimizer_and_predicts_the_same(tmp_path):
    import keras

    from models.common.architectures import build_model
    from models.common.data import Split
    from models.common.run import RunInfo, save_model_atomic

    synth = SineGenerator(sample_rate=8192, n_samples=4096, n_levels=8)
    run_dir = tmp_path / "runs" / "C1_sine"
    run_dir.mkdir(parents=True)
    RunInfo(
        model_name="C1", head="softmax", data_format="channels_last",
        parameter_set=synth.parameter_set, generator_name="sine",
        generator_config=synth.config(), sample_rate=8192, n_samples=4096,
        dataset_identity={"fingerprint": "none"}, dataset_paths=[str(tmp_path / "sine_data.hdf5")],
        split=Split((0.8, 0.1, 0.1), 100), settings={},
    ).save(run_dir)  # fmt: skip
    keras.utils.set_random_seed(0)
    model = build_model(
        "C1", n_levels=synth.parameter_set.n_levels.tolist(), n_samples=4096, head="softmax",
        data_format="channels_last", sample_rate=8192,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rendered = synth.render_examples(seed=0, start=0, n_examples=8)
    targets = synth.parameter_set.encode(rendered.indices)
    model.fit(rendered.audio, targets, epochs=1, verbose=0)  # the optimizer has moments now
    save_model_atomic(model, run_dir / BEST_MODEL)

    out = export_run(run_dir, tmp_path / "shipped")
    assert sorted(p.name for p in out.iterdir()) == [BEST_MODEL, RUN_FILE]
    assert (out / BEST_MODEL).stat().st_size < 0.6 * (run_dir / BEST_MODEL).stat().st_size
    np.testing.assert_allclose(
        load_run(out).predict_scores(rendered.audio),
        load_run(run_dir).predict_scores(rendered.audio),
        rtol=1e-6,
    )
    # Where the dataset lay on the training machine is not shipped, only its name.
    assert json.loads((out / RUN_FILE).read_text())["dataset"]["paths"] == ["sine_data.hdf5"]
    with pytest.raises(InverSynthError, match="exists; pass --overwrite"):
        export_run(run_dir, out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".shipped")]


def test_the_pretrained_demo_matches_new_sounds_at_once(
    tmp_path, capsys, monkeypatch, shipped_lookup_dir
):
    from models.demo import main

    monkeypatch.setenv("INVERSYNTH_DATASET_DIRECTORY", str(shipped_lookup_dir))
    out = tmp_path / "demo"
    assert main(["--pretrained", "--output_dir", str(out), "--budget_renders", "300"]) == 0
    printed = capsys.readouterr().out
    matched = sorted(p.name for p in (out / "pretrained" / "predictions").glob("*.json"))
    assert len(matched) == 6 and "plucked_string_44k_stereo.json" in matched
    # New FM sounds: the network's guess, then hybrid, which is never farther from the sound.
    assert printed.count("  hybrid:  ") == printed.count("  network: ") == 4
    for name in matched:
        record = json.loads((out / "pretrained" / "predictions" / name).read_text())
        match, network = record["candidates"]
        assert match["distance_db"] <= network["distance_db"]
    assert not (out / "runs").exists() and not (out / "data").exists()  # nothing trained
    # A second demo into the same folder is refused, naming what it would replace.
    with pytest.raises(SystemExit):
        from core.commandline import run_cli

        run_cli(main, ["--pretrained", "--output_dir", str(out)])
    assert "pass --overwrite" in capsys.readouterr().err
