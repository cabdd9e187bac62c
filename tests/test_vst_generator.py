"""Real plugins (amsynth, Nekobi) as generators: describe, render, datasets, presets, faults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.commandline import run_cli
from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.parameters import ParameterSet
from generators.sound_generator import load_generator
from generators.vst import cli as vst_cli
from generators.vst import hosts
from generators.vst.config import load_plugin_config
from generators.vst.describe import describe_plugin, plugin_config_template
from generators.vst.synth import HostSettings, PlaySettings, VSTGenerator
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]
AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
NEKOBI = "/usr/lib/vst/Nekobi-vst.so"
AMSYNTH_CONFIG = REPO / "plugin_config" / "amsynth.json"
NEKOBI_CONFIG = REPO / "plugin_config" / "nekobi.json"
SAMPLE_RATE = 16384
N_SAMPLES = 8192  # half-second examples keep these tests fast
SHORT: dict[str, Any] = {
    "sample_rate": SAMPLE_RATE, "n_samples": N_SAMPLES, "play": PlaySettings(note_length_s=0.25)
}  # fmt: skip
AMSYNTH_VARIED = [p["name"] for p in json.loads(AMSYNTH_CONFIG.read_text())["parameters"]]


@pytest.fixture(scope="module", autouse=True)
def _plugins_installed() -> None:
    missing = [p for p in (AMSYNTH, NEKOBI) if not Path(p).exists()]
    if missing:
        message = f"{missing} not installed: apt-get install -y amsynth dpf-plugins-vst"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them; a skip there would hide a broken setup
        pytest.skip(message)


@pytest.fixture(scope="module")
def amsynth() -> Iterator[VSTGenerator]:
    gen = VSTGenerator(plugin_config=AMSYNTH_CONFIG, **SHORT)
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def nekobi() -> Iterator[VSTGenerator]:
    gen = VSTGenerator(plugin_config=NEKOBI_CONFIG, **SHORT)
    yield gen
    gen.close()


def config_with(**changes: Any) -> dict[str, Any]:
    """The Nekobi config with top-level keys replaced."""
    cfg: dict[str, Any] = json.loads(NEKOBI_CONFIG.read_text())
    cfg.update(changes)
    return cfg


def levels_row(gen: VSTGenerator, **chosen: float) -> np.ndarray:
    """Values [1, P]: each parameter at its middle level unless chosen."""
    ps = gen.parameter_set
    row = [chosen.get(p.name, p.levels[p.n_levels // 2]) for p in ps.parameters]
    return np.array([row])


# ---- describing plugins ---------------------------------------------------------


def test_describe_lists_the_real_plugins_parameters() -> None:
    info = describe_plugin(AMSYNTH)
    params = info["parameters"]
    assert len(params) == 41 and info["uid"] == b"amsy"
    assert params[11]["name"] == "filter_cutoff" and params[11]["index"] == 11
    assert all(0.0 <= p["default"] <= 1.0 for p in params)
    assert params[0]["text"]  # the plugin's own display of the default
    nek = describe_plugin(NEKOBI)
    assert [p["name"] for p in nek["parameters"]][:3] == ["Waveform", "Tuning", "Cutoff"]


def test_describe_command_writes_a_template_that_becomes_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nk.json"
    vst_cli.main(["describe", "--plugin", NEKOBI, "--output", str(out)])
    printed = capsys.readouterr().out
    assert "VCF Resonance" in printed and "8 parameters" in printed
    template = json.loads(out.read_text())
    assert template["parameters"] == [] and len(template["fixed_parameters"]) == 8
    # Every parameter fixed at its default: move one to the varied ones and it renders.
    cutoff = template["fixed_parameters"].pop(2)
    template["parameters"] = [{"id": 2, "name": cutoff["name"], "values": [0.2, 0.9]}]
    with VSTGenerator(plugin_config=template, **SHORT) as gen:
        audio = gen.render(np.array([[0.2], [0.9]]))
    assert audio.shape == (2, N_SAMPLES) and np.abs(audio[0] - audio[1]).max() > 1e-2


# ---- rendering --------------------------------------------------------------------


def test_config_round_trips_and_carries_the_plugin_config(amsynth: VSTGenerator) -> None:
    config = json.loads(json.dumps(amsynth.config()))  # what a dataset stores
    assert config["plugin_config"] == json.loads(AMSYNTH_CONFIG.read_text())
    rebuilt = load_generator("vst", config)
    try:
        assert rebuilt.config() == amsynth.config()
        assert rebuilt.parameter_set == amsynth.parameter_set
        assert rebuilt.parameter_set.names[3] == "filter_cutoff"
    finally:
        rebuilt.close()


def test_renders_are_mono_finite_and_depend_on_the_parameters_only(
    amsynth: VSTGenerator,
) -> None:
    ps = amsynth.parameter_set
    indices = ps.sample_indices(seed=3, n_examples=6)
    audio, silent = amsynth.render_checked(ps.to_values(indices))
    assert audio.shape == (6, N_SAMPLES) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and not silent.any()
    # Fresh hosts, two of them, the examples in reverse order: other histories.
    with VSTGenerator(
        plugin_config=AMSYNTH_CONFIG, hosts=HostSettings(workers=2), **SHORT
    ) as other:
        again = other.render_indices(indices[::-1])[::-1]
    np.testing.assert_allclose(again, audio, atol=1e-4)


@pytest.mark.parametrize("name", AMSYNTH_VARIED)
def test_every_varied_amsynth_parameter_changes_the_sound(amsynth: VSTGenerator, name: str) -> None:
    param = amsynth.parameter_set[name]
    # Middle levels, so that each parameter matters (sustain < 1 for the decay, a
    # cutoff below the top for the resonance, both oscillators mixed), and a
    # decay short enough to reach the sustain level before the note-off.
    base = {"amp_decay": amsynth.parameter_set["amp_decay"].levels[1]}
    low = levels_row(amsynth, **{**base, name: param.levels[0]})
    high = levels_row(amsynth, **{**base, name: param.levels[-1]})
    audio = amsynth.render(np.concatenate([low, high]))
    assert np.abs(audio[0] - audio[1]).max() > 1e-2, name


def test_nekobi_cutoff_changes_the_sound(nekobi: VSTGenerator) -> None:
    ps = nekobi.parameter_set
    audio = nekobi.render(
        np.concatenate([levels_row(nekobi, Cutoff=0.1), levels_row(nekobi, Cutoff=1.0)])
    )
    spectra = np.abs(np.fft.rfft(audio, axis=1))
    freqs = np.fft.rfftfreq(N_SAMPLES, 1 / SAMPLE_RATE)
    centroid = (spectra * freqs).sum(axis=1) / spectra.sum(axis=1)
    assert centroid[1] > 1.2 * centroid[0]  # opening the filter brightens the sound
    assert ps.names == ["Waveform", "Cutoff", "VCF Resonance", "Env Mod", "Decay"]


def test_values_outside_the_unit_range_are_refused(nekobi: VSTGenerator) -> None:
    with pytest.raises(InverSynthError, match=r"normalized to \[0, 1\].*'Cutoff'"):
        nekobi.render(levels_row(nekobi, Cutoff=1.5))


# ---- datasets --------------------------------------------------------------------------


def test_dataset_command_with_two_hosts_matches_direct_renders(
    amsynth: VSTGenerator, tmp_path: Path
) -> None:
    args = ["run", "--config", str(AMSYNTH_CONFIG), "--num_examples", "10", "--name", "w2"]
    args += ["--dataset_directory", str(tmp_path), "--workers", "2", "--chunk_size", "4"]
    args += ["--length", "0.5", "--note_length", "0.25", "--no_progress"]
    vst_cli.main(args)
    with open_dataset(tmp_path / "w2_data.hdf5") as ds:
        audio, labels = ds.read_range(0, 10)
        assert ds.generator_name == "vst" and ds.n_samples == N_SAMPLES
        assert ds.generator_config == amsynth.config()  # the dataset carries its synth
        assert ds.parameter_set.names[0] == "osc1_waveform"
        assert ds.attrs["silent_examples"] == 0
    # Two plugin hosts rendered what one host renders.
    expected = amsynth.parameter_set.sample_indices(seed=0, n_examples=10)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_allclose(audio, amsynth.render_indices(labels), atol=1e-4)


def test_silent_examples_are_counted_and_resampled_deterministically(tmp_path: Path) -> None:
    # Volume 0 makes half the patches silent.
    cfg = config_with(
        parameters=[
            {"id": 2, "name": "Cutoff", "values": [0.3, 0.9]},
            {"id": 7, "name": "Volume", "values": [0.0, 0.75]},
        ],
        fixed_parameters=[],
    )
    with VSTGenerator(plugin_config=cfg, **SHORT) as plain:
        # Two writer processes, each rebuilding the generator from its config.
        path = DatasetCreator(
            plain, path=tmp_path / "s_data.hdf5", plan=DatasetPlan(n_examples=12, seed=4),
            workers=2, chunk_size=4, progress=False,
        ).run()  # fmt: skip
        first_draw = plain.render_examples(seed=4, start=0, n_examples=12).indices
    with open_dataset(path) as ds:
        _, labels = ds.read_range(0, 12)
        expected_silent = int((labels[:, 1] == 0).sum())
        assert expected_silent > 0 and ds.attrs["silent_examples"] == expected_silent

    with VSTGenerator(plugin_config=cfg, resample_silent=True, **SHORT) as gen:
        indices, audio, failed = gen.render_examples(seed=4, start=0, n_examples=12)
        assert not failed.any()
        assert (np.abs(audio).max(axis=1) >= 1e-4).all() and (indices[:, 1] == 1).all()
        sounding = first_draw[:, 1] == 1
        np.testing.assert_array_equal(indices[sounding], first_draw[sounding])
        # A function of (seed, example index) only: any split gives the same draws.
        head = gen.render_examples(seed=4, start=0, n_examples=5).indices
        tail = gen.render_examples(seed=4, start=5, n_examples=7).indices
        np.testing.assert_array_equal(np.concatenate([head, tail]), indices)
        assert gen.config()["resample_silent"] is True


# ---- presets ---------------------------------------------------------------------


@pytest.mark.parametrize("which", ["amsynth", "nekobi"])
def test_written_preset_reproduces_the_render(
    which: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    gen: VSTGenerator = request.getfixturevalue(which)
    ps = gen.parameter_set
    indices = ps.sample_indices(seed=11, n_examples=1)[0]
    path = gen.write_preset(tmp_path / "patch.fxp", indices=indices)
    data = path.read_bytes()
    assert data[:4] == b"CcnK" and data[8:12] == b"FxCk"
    assert data[16:20] == gen.describe_plugin()["uid"]
    expected = gen.render_indices(indices[None, :])[0]
    np.testing.assert_allclose(gen.render_preset(path), expected, atol=1e-4)
    # The host goes back to the dataset's patch afterwards.
    np.testing.assert_allclose(gen.render_indices(indices[None, :])[0], expected, atol=1e-4)


def test_preset_arguments_are_checked(nekobi: VSTGenerator, tmp_path: Path) -> None:
    with pytest.raises(InverSynthError, match=r"\.fxp"):
        nekobi.write_preset(tmp_path / "patch.txt", indices=np.zeros(5, dtype=int))
    with pytest.raises(InverSynthError, match="exactly one"):
        nekobi.write_preset(tmp_path / "patch.fxp")


# ---- configuration errors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parameters": [{"id": 2, "name": "Cutoff", "values": [0.1, 1.2]}]}, r"\[0, 1\], got 1.2"),
        ({"parameters": [{"id": 2, "name": "Cutoff", "values": [0.5]}]}, "at least 2"),
        ({"parameters": [{"id": 2, "name": "Cutoff", "values": [0.5, 0.5]}]}, "distinct"),
        ({"parameters": [{"id": 2, "values": [0.1, 0.5]}]}, "'name'"),
        ({"parameters": []}, "at least one varied"),
        ({"parameters": [{"name": "Cutoff", "value": 0.1}]}, "unknown key"),
        ({"fixed_parameters": [{"id": 1, "name": "Tuning", "value": -0.5}]}, "got -0.5"),
        ({"plugin": "/usr/lib/vst/no_such_synth.so"}, "does not exist.*apt-get install"),
        ({"notes": {}}, r"unknown key\(s\) \['notes'\]"),
    ],
)
def test_bad_configs_fail_in_one_line_before_any_plugin_loads(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InverSynthError, match=message) as err:
        VSTGenerator(plugin_config=config_with(**changes), **SHORT)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([{"id": 99, "name": "Cutoff", "values": [0.1, 0.5]}], "id 99 is out of range"),
        ([{"id": 3, "name": "Cutoff", "values": [0.1, 0.5]}], "calls parameter 3 'VCF Resonance'"),
        ([{"name": "Cutof", "values": [0.1, 0.5]}], "no parameter of that name"),
    ],
)
def test_configs_are_checked_against_the_plugin(
    parameters: list[dict[str, Any]], message: str
) -> None:
    cfg = config_with(parameters=parameters)
    with (
        VSTGenerator(plugin_config=cfg, **SHORT) as gen,
        pytest.raises(InverSynthError, match=message) as err,
    ):
        gen.validate()
    assert "\n" not in str(err.value)


def test_parameters_are_found_by_name_without_an_id() -> None:
    cfg = config_with(parameters=[{"name": "Cutoff", "n_levels": 3}], fixed_parameters=[])
    with VSTGenerator(plugin_config=cfg, **SHORT) as gen:
        assert gen.parameter_set["Cutoff"].levels == (0.0, 0.5, 1.0)
        assert gen.render(np.array([[0.5]])).shape == (1, N_SAMPLES)


def test_a_file_that_is_not_a_plugin_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake_vst.so"
    fake.write_text("not a plugin")
    cfg = config_with(plugin=str(fake))
    with (
        VSTGenerator(plugin_config=cfg, **SHORT) as gen,
        pytest.raises(InverSynthError, match=r"fake_vst\.so.*cannot load it as a plugin"),
    ):
        gen.validate()


def test_config_files_are_read_and_bad_files_named(tmp_path: Path) -> None:
    assert load_plugin_config(AMSYNTH_CONFIG).plugin == AMSYNTH
    broken = tmp_path / "broken.json"
    broken.write_text("{ nope")
    with pytest.raises(InverSynthError, match=r"broken\.json.*not valid JSON"):
        load_plugin_config(broken)
    with pytest.raises(InverSynthError, match="does not exist"):
        load_plugin_config(tmp_path / "missing.json")


def test_cli_reports_a_bad_config_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    bad = ["check", "--config", str(NEKOBI_CONFIG), "--plugin", "/nonexistent/vst/x.so"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(vst_cli.main, bad)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: plugin '/nonexistent/vst/x.so' does not exist")
    assert err.count("\n") == 1


def test_check_command_reports_reproducible_renders(capsys: pytest.CaptureFixture[str]) -> None:
    vst_cli.main(["check", "--config", str(NEKOBI_CONFIG), "--examples", "4", "--length", "0.25"])
    out = capsys.readouterr().out
    assert "examples        : 4" in out and "parameters only: ok" in out


def test_template_of_a_described_plugin_names_every_parameter() -> None:
    info = {
        "plugin": "/p.so",
        "parameters": [
            {"index": 0, "name": "a", "default": 0.5, "text": "50", "label": "%"},
            {"index": 1, "name": "lfo_waveform", "default": 0.0, "text": "", "label": ""},
        ],
    }
    template = plugin_config_template(info)
    assert template["fixed_parameters"] == [
        {"id": 0, "name": "a", "value": 0.5, "ordered": True, "comment": "default shows as '50 %'"},
        {"id": 1, "name": "lfo_waveform", "value": 0.0, "ordered": False},
    ]
    # An entry moved to the varied ones keeps what it says.
    entry = {**template["fixed_parameters"].pop(1), "values": [0.0, 0.5, 1.0]}
    del entry["value"]
    assert load_plugin_config({**template, "parameters": [entry]}).varied[0].ordered is False


# ---- faults: crashing and hanging plugins ---------------------------------------------

FAULTY_HOST = textwrap.dedent(
    """
    import os, signal, sys, time
    from pathlib import Path
    sys.path.insert(0, {host_folder!r})
    import host_main

    real_render = host_main.PluginHost.render

    def render(self, row):
        # The example whose first parameter is 1.0 is the faulty one.
        if row[0] == 1.0:
            mode = os.environ["FAULT_MODE"]
            once = Path(os.environ["FAULT_DIR"]) / "crashed_once"
            if mode == "crash" or (mode == "crash_once" and not once.exists()):
                once.touch()
                os.kill(os.getpid(), signal.SIGSEGV)
            if mode == "hang":
                time.sleep(120)
        return real_render(self, row)

    host_main.PluginHost.render = render
    sys.exit(host_main.main(sys.argv))
    """
)


@pytest.fixture
def faulty_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    script = tmp_path / "faulty_host.py"
    script.write_text(FAULTY_HOST.format(host_folder=str(REPO / "generators" / "vst")))
    monkeypatch.setattr(hosts, "_HOST_SCRIPT", script)
    monkeypatch.setenv("FAULT_DIR", str(tmp_path))

    def make(mode: str, **hosts: Any) -> VSTGenerator:
        monkeypatch.setenv("FAULT_MODE", mode)
        return VSTGenerator(plugin_config=NEKOBI_CONFIG, **SHORT, hosts=HostSettings(**hosts))

    yield make


def test_a_crashing_plugin_costs_one_retry_not_the_batch(faulty_host: Any) -> None:
    values = np.array([[0.0, 0.3, 0.0, 0.0, 0.33], [1.0, 0.3, 0.0, 0.0, 0.33]])
    with faulty_host("crash_once", retries=1, workers=1) as gen:
        audio = gen.render(np.concatenate([values, values[:1]]))
    with faulty_host("none") as clean:
        expected = clean.render(values)
    np.testing.assert_allclose(audio[:2], expected, atol=1e-4)
    np.testing.assert_allclose(audio[2], expected[0], atol=1e-4)


def test_a_plugin_that_always_crashes_names_the_example(
    faulty_host: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with faulty_host("crash", retries=1) as gen:
        ps = gen.parameter_set
        drawn = ps.sample_indices(seed=0, start=100, n_examples=8)
        crashing = drawn[:, 0] == 1  # Waveform 1.0 crashes
        faulty = 100 + int(np.flatnonzero(crashing)[0])
        # A dataset's examples: the crashing ones are marked failed, the others render.
        _, audio, failed = gen.render_examples(seed=0, start=100, n_examples=8)
        np.testing.assert_array_equal(failed, crashing)
        assert (audio[failed] == 0).all() and (np.abs(audio[~failed]).max(axis=1) > 1e-3).all()
        warning = capsys.readouterr().err
        assert re.search(rf"warning: .*example {faulty} \(Waveform=1, .*2 time.*SIGSEGV", warning)
        # Plain renders (resynthesis) still raise, naming the example.
        with pytest.raises(InverSynthError, match=r"row 0 \(Waveform=1, .*2 time.*SIGSEGV"):
            gen.render(ps.to_values(drawn[crashing][:1]))
        # The generator still works afterwards, with fresh hosts.
        assert gen.render(ps.to_values(drawn[~crashing][:2])).shape == (2, N_SAMPLES)


def test_a_host_that_died_while_idle_is_replaced_without_a_retry() -> None:
    row = np.array([[0.0, 0.3, 0.0, 0.0, 0.33]])
    with VSTGenerator(plugin_config=NEKOBI_CONFIG, hosts=HostSettings(retries=0), **SHORT) as gen:
        first = gen.render(row)
        assert gen._pool is not None and gen._pool.hosts[0] is not None
        gen._pool.hosts[0].process.kill()  # as when the thread that started it ends
        gen._pool.hosts[0].process.wait()
        np.testing.assert_allclose(gen.render(row), first, atol=1e-4)


def test_a_hanging_plugin_times_out(faulty_host: Any) -> None:
    with faulty_host("hang", retries=0, timeout_s=1.5, workers=2) as gen:
        values = np.array([[0.0, 0.3, 0.0, 0.0, 0.33], [1.0, 0.3, 0.0, 0.0, 0.33]])
        with pytest.raises(InverSynthError, match=r"row 1 .*within 1.5 s"):
            gen.render(values)


# ---- the TensorFlow trap -------------------------------------------------------------------


def test_plugin_hosts_never_import_the_callers_main_module(tmp_path: Path) -> None:
    # A multiprocessing "spawn" child re-imports the parent's main module
    # (which may import TensorFlow); a plugin host must not.
    log = tmp_path / "imports.log"
    script = tmp_path / "main_module.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            with open({str(log)!r}, "a") as f:
                f.write(f"{{os.getpid()}}\\n")
            sys.path.insert(0, {str(REPO)!r})
            import numpy as np
            from generators.vst.synth import HostSettings, PlaySettings, VSTGenerator

            if __name__ == "__main__":
                with VSTGenerator(plugin_config={str(NEKOBI_CONFIG)!r}, n_samples=4096) as gen:
                    print(float(np.abs(gen.render(np.array([[0.0, 0.5, 0.25, 0.33, 0.33]]))).max()))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout) > 1e-3
    assert len(log.read_text().split()) == 1  # imported by its own process only


def test_a_model_trains_on_a_plugin_dataset_and_its_prediction_plays_back(
    tmp_path: Path,
) -> None:
    # The whole path: dataset -> training -> prediction -> resynthesis with the
    # run's synth -> the predicted patch as a preset. Resynthesis renders with
    # TensorFlow loaded in this process, and TensorFlow then DawDreamer in one
    # process segfaults: the plugin hosts must be processes of their own.
    from models import spectrogram_cnn
    from models.common.run import load_run

    data = tmp_path / "data"
    with VSTGenerator(plugin_config=NEKOBI_CONFIG, **SHORT) as gen:
        DatasetCreator(
            gen, path=data / "nk_data.hdf5", plan=DatasetPlan(n_examples=64), progress=False
        ).run()
    args = ["--model", "C1", "--dataset_dir", str(data), "--dataset_name", "nk"]
    args += ["--output_dir", str(tmp_path / "runs"), "--epochs", "1", "--batch_size", "16"]
    assert spectrogram_cnn.main([*args, "--no_progress", "--no_evaluate"]) == 0
    run = load_run(tmp_path / "runs" / "C1_nk")
    with run.open_dataset() as ds:
        audio, _ = ds.read(np.arange(2))
    predicted = run.predict_indices(audio)  # [2, 5]
    synth = run.make_generator()
    try:
        assert isinstance(synth, VSTGenerator) and synth.config() == gen.config()
        resynthesized = synth.render_indices(predicted)
        assert resynthesized.shape == (2, N_SAMPLES) and np.isfinite(resynthesized).all()
        preset = synth.write_preset(tmp_path / "predicted.fxp", indices=predicted[0])
        np.testing.assert_allclose(synth.render_preset(preset), resynthesized[0], atol=1e-4)
    finally:
        synth.close()


def test_config_groups_become_the_parameters_groups() -> None:
    config = load_plugin_config(AMSYNTH_CONFIG)
    groups = {entry.name: entry.group for entry in config.varied}
    assert groups["filter_cutoff"] == "Filter"
    assert groups["amp_attack"] == "Amp envelope"
    assert groups["osc1_waveform"] == "Oscillators"
    data = json.loads(AMSYNTH_CONFIG.read_text())
    data["parameters"][0]["group"] = "  "
    with pytest.raises(InverSynthError, match="'group' must be a non-empty string"):
        load_plugin_config(data)


def test_the_synths_parameters_carry_the_config_groups(amsynth: VSTGenerator) -> None:
    by_name = {p.name: p.group for p in amsynth.parameter_set.parameters}
    assert by_name["filter_resonance"] == "Filter"
    assert by_name["amp_release"] == "Amp envelope"


def test_plugin_configs_declare_which_parameters_are_ordered(amsynth: VSTGenerator) -> None:
    ps = amsynth.parameter_set
    assert not ps["osc1_waveform"].ordered and not ps["osc2_waveform"].ordered
    assert ps["filter_cutoff"].ordered and ps["amp_attack"].ordered
    # What the entry declares wins over what its name suggests.
    data = json.loads(NEKOBI_CONFIG.read_text())
    data["parameters"][0]["ordered"] = True  # "Waveform"
    data["parameters"][1]["ordered"] = False  # "Cutoff"
    with VSTGenerator(plugin_config=data, **SHORT) as gen:
        declared = {p.name: p.ordered for p in gen.parameter_set.parameters}
        # Through the config JSON (as a dataset stores it) and the parameter set's JSON.
        stored = json.loads(json.dumps(gen.config()))
        assert ParameterSet.from_json(gen.parameter_set.to_json()).parameters[1].ordered is False
    assert declared["Waveform"] is True and declared["Cutoff"] is False
    rebuilt = load_generator("vst", stored)
    try:
        assert {p.name: p.ordered for p in rebuilt.parameter_set.parameters} == declared
    finally:
        rebuilt.close()
    data["parameters"][0]["ordered"] = "no"
    with pytest.raises(InverSynthError, match="'ordered' must be true or false"):
        load_plugin_config(data)
