"""The matching page's HTTP side: uploads checked, one match at a time in order, cancel, files by id.

The app runs in this process under Starlette's TestClient with the shipped FM
model (and a tiny untrained DX7 run where the ``dexed`` extra is installed);
budgets are a few hundred renders (a fraction of a second), but for the
matches that must still run when the test acts on them. The server command
itself is started as a process to check its exit codes.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from starlette.testclient import TestClient

from core.errors import InverSynthError
from generators.outputs import match_record_files
from generators.parameters import ParameterSet
from generators.sine_generator import SineGenerator
from generators.sound_generator import load_generator
from models.common.data import Split
from models.common.pretrained import PRETRAINED_FM_RUN
from models.matching.objective import DEFAULT_BUDGET_RENDERS
from models.matching.prediction import format_value
from models.web.server import (
    CANCEL_WAIT_S,
    MARKER,
    MAX_BUDGET_RENDERS,
    ServeSettings,
    create_app,
    open_serve_folder,
)

REPO = Path(__file__).resolve().parents[1]
RATE = 16384
HEADERS = {"X-InverSynth": "1"}
MAX_UPLOAD_BYTES = 300_000
MAX_DURATION_S = 5.0


def dexed_installed() -> bool:
    try:
        import dexed  # noqa: F401
    except ImportError:
        return False
    return True


def wav_bytes(seconds: float = 1.0, *, rate: int = RATE, amplitude: float = 0.5) -> bytes:
    """A decaying 440 Hz tone as a 16-bit WAV file."""
    t = np.arange(round(rate * seconds)) / rate
    tone = amplitude * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)
    out = io.BytesIO()
    sf.write(out, tone.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def save_run(
    run_dir: Path, *, generator_name: str, config: dict[str, Any], parameter_set: ParameterSet,
    sample_rate: int, n_samples: int, model: bool = True,
) -> Path:  # fmt: skip
    """A run folder for a synth: run.json and an untrained C1 (or an empty model file)."""
    from models.common.architectures import build_model
    from models.common.run import BEST_MODEL, RunInfo

    run_dir.mkdir(parents=True)
    RunInfo(
        model_name="C1", head="softmax", data_format="channels_last",
        parameter_set=parameter_set, generator_name=generator_name, generator_config=config,
        sample_rate=sample_rate, n_samples=n_samples, dataset_identity={"fingerprint": "none"},
        dataset_paths=[], split=Split((0.8, 0.1, 0.1), 100), settings={},
    ).save(run_dir)  # fmt: skip
    if not model:
        (run_dir / BEST_MODEL).write_bytes(b"")
        return run_dir
    import keras

    keras.utils.set_random_seed(0)
    build_model(
        "C1", n_levels=parameter_set.n_levels.tolist(), n_samples=n_samples, head="softmax",
        sample_rate=sample_rate,
    ).save(run_dir / BEST_MODEL)  # fmt: skip
    return run_dir


def make_dx7_run(runs_dir: Path) -> Path:
    """A tiny untrained run of the DX7 (dexed_small.json, 0.25 s at 16384 Hz)."""
    from generators.dexed.synth import DexedGenerator

    generator = DexedGenerator(
        dexed_config=REPO / "plugin_config" / "dexed_small.json", sample_rate=RATE,
        n_samples=4096, note_length_s=0.15,
    )  # fmt: skip
    return save_run(
        runs_dir / "C1_dx7", generator_name="dexed", config=generator.config(),
        parameter_set=generator.parameter_set, sample_rate=RATE, n_samples=4096,
    )  # fmt: skip


def make_missing_plugin_run(runs_dir: Path) -> Path:
    """A plugin run whose plugin file is not on this machine."""
    sine = SineGenerator(sample_rate=8192, n_samples=4096, n_levels=8)
    return save_run(
        runs_dir / "C1_gone", generator_name="vst",
        config={"plugin": "/nonexistent/gone_vst.so"}, parameter_set=sine.parameter_set,
        sample_rate=8192, n_samples=4096, model=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[TestClient, ServeSettings]]:
    root = tmp_path_factory.mktemp("serve")
    runs = root / "runs"
    runs.mkdir()
    if dexed_installed():
        make_dx7_run(runs)
    make_missing_plugin_run(runs)
    (runs / "not_a_run").mkdir()
    settings = ServeSettings(
        serve_dir=root / "serve", runs_dir=runs, max_upload_bytes=MAX_UPLOAD_BYTES,
        max_duration_s=MAX_DURATION_S, allowed_hosts=("testserver",),
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client, settings


def send(
    client: TestClient, data: bytes, *, name: str = "tone.wav", headers: dict | None = None,
    **fields: Any,
) -> Any:  # fmt: skip
    form = {"model": "pretrained/fm_M1", "method": "hybrid", "budget_renders": "200", **fields}
    return client.post(
        "/api/jobs", files={"sound": (name, data, "audio/wav")}, data=form,
        headers=HEADERS if headers is None else headers,
    )  # fmt: skip


def wait(client: TestClient, job_id: str, *, timeout_s: float = 120.0) -> dict:
    """Poll a job until it ends; its last state."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["status"] in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s")


def blas_threads() -> set[int]:
    """The threads of every BLAS library loaded in this process (numpy's OpenBLAS)."""
    from threadpoolctl import threadpool_info

    return {int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"}


def uploads_left(settings: ServeSettings) -> list[Path]:
    folder = settings.uploads_dir
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------
# What is refused, with one line each, leaving nothing behind
# --------------------------------------------------------------------------


def _silent() -> bytes:
    return wav_bytes(amplitude=0.0)


@pytest.mark.parametrize(
    ("name", "data", "fields", "status", "message"),
    [
        ("notes.wav", b"this is not audio at all", {}, 400, "is not a sound this page reads"),
        ("notes.txt", None, {}, 400, "is not a sound file this page reads"),
        ("../../etc/tone.wav", None, {}, 400, "path characters"),
        ("..\\tone.wav", None, {}, 400, "path characters"),
        ("C:tone.wav", None, {}, 400, "path characters"),
        ("long.wav", "long", {}, 400, "lasts 6.0 s; this page takes sounds of at most 5 s"),
        ("quiet.wav", "silent", {}, 400, "is silent"),
        ("big.wav", "big", {}, 413, "larger than the upload limit of 300 kB"),
        ("huge.wav", "huge", {}, 413, "larger than the upload limit of 300 kB"),
        ("tone.wav", None, {"model": "runs/nope"}, 400, "unknown model 'runs/nope'"),
        ("tone.wav", None, {"model": "runs/../../etc"}, 400, "unknown model"),
        ("tone.wav", None, {"model": "runs/C1_gone"}, 400, "is not installed on this machine"),
        ("tone.wav", None, {"method": "magic"}, 400, "unknown method 'magic'"),
        ("tone.wav", None, {"method": "lookup"}, 400, "lookup method needs the dataset"),
        ("tone.wav", None, {"budget_s": "0"}, 400, "budget_s must be between 0.01 and 60, got 0"),
        ("tone.wav", None, {"budget_renders": "many"}, 400, "budget_renders must be a whole"),
        ("tone.wav", None, {"budget_renders": "2.5"}, 400, "budget_renders must be a whole"),
        (
            "tone.wav",
            None,
            {"budget_renders": "0"},
            400,
            "budget_renders must be between 1 and 1,000,000, got 0",
        ),
    ],
)
def test_bad_input_is_one_line_on_the_page_and_leaves_nothing(
    served, name, data, fields, status, message
):
    client, settings = served
    payload = {
        None: wav_bytes(),
        "long": wav_bytes(6.0, rate=8000),
        "silent": _silent(),
        "big": wav_bytes(10.0, rate=16000),  # 320 kB: stopped while it is copied
        "huge": wav_bytes(20.0, rate=16000),  # 640 kB: stopped by its Content-Length
    }.get(data, data)
    response = send(client, payload, name=name, **fields)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error
    assert "\n" not in error and "Traceback" not in error
    assert uploads_left(settings) == []


def test_posts_from_elsewhere_and_unknown_ids_are_refused(served):
    client, _ = served
    response = send(client, wav_bytes(), headers={})
    assert response.status_code == 403 and "must come from the page" in response.json()["error"]
    for url in ("/api/jobs/0123456789abcdef0123456789abcdef", "/api/jobs/../../etc/passwd"):
        assert client.get(url).status_code == 404
    assert client.get("/files/0123456789abcdef0123456789abcdef/json").status_code == 404


# --------------------------------------------------------------------------
# A match, its files, the queue, cancelling
# --------------------------------------------------------------------------


def test_a_match_serves_what_models_predict_writes_by_id_and_kind(served):
    client, settings = served
    job = send(client, wav_bytes()).json()
    assert job["budget_renders"] == 200 and job["budget_s"] is None  # no time cap unless asked
    state = wait(client, job["id"])
    assert state["status"] == "done", state["error"]
    base = f"/files/{job['id']}"
    for kind in ("input", "network", "match"):
        response = client.get(f"{base}/{kind}")
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
        audio, rate = sf.read(io.BytesIO(response.content))
        assert rate == RATE and audio.shape == (RATE,)
    record = client.get(f"{base}/json?download=1")
    assert "attachment" in record.headers["content-disposition"]
    data = json.loads(record.content)
    run = json.loads((PRETRAINED_FM_RUN / "run.json").read_text())
    names = [p["name"] for p in run["parameter_set"]["parameters"]]
    match, network = data["candidates"]
    assert [p["name"] for p in match["parameters"]] == names
    assert data["method"] == "hybrid" and data["budget_renders"] == 200
    assert data["budget_s"] is None and data["renders"] <= 200
    assert client.get(f"{base}/preset").status_code == 404  # the FM synth has no preset format
    assert client.get(f"{base}/secret").status_code == 404
    page = client.get(f"/jobs/{job['id']}/result").text
    assert page.count("<audio") == 3 and "This synth has no preset file" in page
    assert f"{data['renders']} of 200 renders" in page and "play it at" not in page
    # The record's candidates on the page: every parameter, the match's and the network's value.
    rows = re.findall(r'<tr><th title="([^"]+)">(\w+)</th><td class="[^"]*">([^<]+)</td>'
                      r'<td class="network">([^<]+)</td>', page)  # fmt: skip
    assert [name for _, name, _, _ in rows] == names
    cutoff = next(row for row in rows if row[1] == "cutoff_hz")
    assert cutoff[0] == "cutoff frequency of the resonant low-pass filter"
    shown = {p["name"]: format_value(p["value"], p["unit"]) for p in network["parameters"]}
    assert [network_value for _, name, _, network_value in rows] == [shown[n] for n in names]
    similarity = f"{match['similarity_percent']:.1f} %"
    assert re.search(rf"<td class=\"(better)?\">{re.escape(similarity)}</td>", page)
    assert uploads_left(settings) == []  # the upload goes once the match is written
    folder = settings.results_dir / job["id"]
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["tone.json", "tone.png", "tone_input.wav", "tone_network.wav",
                       "tone_resynthesis.wav"]  # fmt: skip
    # clean_outputs tells a match by its record, which names every one of these files.
    assert sorted(p.name for p in match_record_files(folder / "tone.json") or []) == written


def test_the_form_budgets_renders_and_a_time_cap_is_optional(served):
    client, _ = served
    page = client.get("/").text
    field = re.search(r'<input id="budget_renders"[^>]*>', page)
    assert field is not None
    assert f'value="{DEFAULT_BUDGET_RENDERS}"' in field[0] and 'min="1"' in field[0]
    assert f'max="{MAX_BUDGET_RENDERS}"' in field[0]
    more = page[page.index("<details>") : page.index("</details>")]
    cap = re.search(r'<input id="budget_s"[^>]*>', more)
    assert cap is not None and 'value=""' in cap[0]
    assert "The same sound, model, method and budget give the same" in page
    assert 'id="budget_s" name="budget_s" type="number"' in page  # no list of seconds


def with_note(client: TestClient, job_id: str, note: Any) -> str:
    """The result page of a finished match whose record says ``"note": note``."""
    from models.web.library import MatchedSound

    held = client.app.state.server.queue.get(job_id)  # type: ignore[attr-defined]
    record = {**held.result.record, "note": note}
    held.result = MatchedSound(record=record, files=held.result.files)
    return str(client.get(f"/jobs/{job_id}/result").text)


def test_a_result_without_a_note_shows_none(served):
    client, _ = served
    job = send(client, wav_bytes(), budget_renders="20").json()
    assert wait(client, job["id"])["status"] == "done"
    assert "play it at" not in client.get(f"/jobs/{job['id']}/result").text
    for note in ({"midi": 57}, {"name": ""}, "A3", None):  # nothing to name: nothing shown
        assert "play it at" not in with_note(client, job["id"], note)
    # The FM synth has no preset: a note is named only beside a preset's download.
    assert "play it at" not in with_note(client, job["id"], {"name": "A3", "midi": 57})


def test_a_second_sound_waits_its_turn_and_both_finish_in_order(served):
    client, _ = served
    first = send(client, wav_bytes(), name="first.wav", budget_renders="3000").json()
    second = send(client, wav_bytes(), name="second.wav").json()
    assert second["status"] == "queued" and second["ahead"] == 1 and second["position"] == 2
    seen: list[tuple[str, str]] = []
    while True:
        a = client.get(f"/api/jobs/{first['id']}").json()["status"]
        b = client.get(f"/api/jobs/{second['id']}").json()["status"]
        seen.append((a, b))
        if a == "done" and b == "done":
            break
        assert b in ("queued", "running", "done") and a != "failed"
        time.sleep(0.05)
    # The second never ran before the first was done, and waited while the first ran.
    assert all(a == "done" for a, b in seen if b != "queued")
    assert ("running", "queued") in seen
    listed = [j["name"] for j in client.get("/api/jobs").json()]
    assert listed[:2] == ["second.wav", "first.wav"]  # this session's matches, newest first


def test_a_running_match_shows_its_renders_and_a_cancel_stops_it_midway(served):
    client, settings = served
    blas_before = blas_threads()
    earlier = send(client, wav_bytes(), name="earlier.wav").json()
    assert wait(client, earlier["id"])["status"] == "done"
    running = send(client, wav_bytes(), name="long.wav", budget_renders=str(MAX_BUDGET_RENDERS))
    running = running.json()
    queued = send(client, wav_bytes(), name="later.wav").json()
    stranger = TestClient(client.app)  # another browser: no session cookie
    assert stranger.post(f"/api/jobs/{queued['id']}/cancel", headers=HEADERS).status_code == 403
    state = client.post(f"/api/jobs/{queued['id']}/cancel", headers=HEADERS).json()
    assert state["status"] == "cancelled"
    assert not (settings.uploads_dir / queued["id"]).exists()
    reports: list[dict[str, Any]] = []
    while len(reports) < 3:  # the search reports after every batch of renders
        state = client.get(f"/api/jobs/{running['id']}").json()
        assert state["status"] in ("queued", "running"), state
        if state["progress"] and (not reports or state["progress"] != reports[-1]):
            reports.append(state["progress"])
        time.sleep(0.02)
    assert blas_threads() == {1}  # while it matches (the limit is the process's)
    renders = [r["renders"] for r in reports]
    assert renders == sorted(renders) and 0 < renders[0] < renders[-1]
    best = [r["best_distance_db"] for r in reports]
    assert best == sorted(best, reverse=True) and all(np.isfinite(best))
    assert state["budget_renders"] == MAX_BUDGET_RENDERS and state["stage"] == "matching"
    asked = time.monotonic()
    state = client.post(f"/api/jobs/{running['id']}/cancel", headers=HEADERS).json()
    # The answer comes once the match has stopped: at its next batch, not after its budget.
    assert state["status"] == "cancelled" and time.monotonic() - asked < CANCEL_WAIT_S
    assert state["result"] is None and state["cancel_requested"] is False
    assert state["progress"]["renders"] < MAX_BUDGET_RENDERS // 100
    assert blas_threads() == blas_before  # and as they were once it stopped
    assert not (settings.results_dir / running["id"]).exists()
    assert client.get(f"/files/{running['id']}/input").status_code == 404
    assert uploads_left(settings) == []
    # The earlier match is still there, its result and files.
    assert client.get(f"/jobs/{earlier['id']}/result").status_code == 200
    assert client.get(f"/files/{earlier['id']}/match").status_code == 200
    listed = {j["name"]: j["status"] for j in client.get("/api/jobs").json()}
    assert listed["earlier.wav"] == "done" and listed["long.wav"] == "cancelled"


# --------------------------------------------------------------------------
# The models offered
# --------------------------------------------------------------------------


def test_models_listed_shipped_first_with_why_some_cannot_be_used(served):
    client, _ = served
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert next(iter(models)) == "pretrained/fm_M1" and models["pretrained/fm_M1"]["available"]
    assert "runs/not_a_run" not in models
    assert "gone_vst.so" in models["runs/C1_gone"]["missing"]
    page = client.get("/").text
    assert "C1 on gone (runs/C1_gone): unavailable" in page
    if dexed_installed():
        assert models["runs/C1_dx7"]["available"] and models["runs/C1_dx7"]["preset"] == ".syx"


def test_a_dx7_match_gives_a_syx_preset_that_reads_back(served, tmp_path):
    if not dexed_installed():
        if os.environ.get("CI"):
            pytest.fail("dexed-py is missing; CI installs the dexed extra")
        pytest.skip("dexed-py is missing (uv sync --extra dexed)")
    client, _ = served
    job = send(client, wav_bytes(0.5), model="runs/C1_dx7", budget_renders="100").json()
    state = wait(client, job["id"])
    assert state["status"] == "done", state["error"]
    preset = client.get(f"/files/{job['id']}/preset?download=1")
    assert (
        preset.status_code == 200 and 'filename="tone.syx"' in preset.headers["content-disposition"]
    )
    path = tmp_path / "tone.syx"
    path.write_bytes(preset.content)
    record = client.get(f"/files/{job['id']}/json").json()
    generator: Any = load_generator("dexed", record["run"]["generator_config"])  # the run's synth
    values = [p["value"] for p in record["candidates"][0]["parameters"]]
    np.testing.assert_allclose(generator.read_syx(path), values, atol=1e-9)
    # The note the patch is played at, where the record has it, beside the preset's download.
    page = with_note(client, job["id"], {"name": "A3", "midi": 57, "hz": 220.0})
    assert re.search(r'id="download-preset"[^>]*>Preset tone.syx</a>\s*'
                     r'<span class="play-at" id="preset-note">play it at A3</span>', page)  # fmt: skip


# --------------------------------------------------------------------------
# The command: the folder it cleans, its exit codes
# --------------------------------------------------------------------------


def test_startup_removes_what_a_killed_server_left_unfinished(tmp_path):
    serve = tmp_path / "serve"
    settings = ServeSettings(serve_dir=serve, runs_dir=tmp_path, allowed_hosts=("testserver",))
    open_serve_folder(settings)  # a new folder: made, and marked as the page's
    (serve / "uploads" / "a").mkdir(parents=True)
    (serve / "uploads" / "a" / "tone.wav.partial").write_bytes(b"half")
    (serve / "results" / "unfinished").mkdir(parents=True)
    (serve / "results" / "unfinished" / "tone_input.wav").write_bytes(b"half")
    (serve / "results" / "finished").mkdir()
    (serve / "results" / "finished" / "tone.json").write_text("{}")
    with TestClient(create_app(settings)):
        pass
    assert sorted(p.name for p in (serve / "results").iterdir()) == ["finished"]
    assert uploads_left(settings) == []


def test_a_folder_of_other_files_is_never_taken_for_a_serve_folder(tmp_path):
    home = tmp_path / "home"
    (home / "uploads").mkdir(parents=True)
    (home / "uploads" / "mine.wav").write_bytes(b"keep me")
    (home / "results" / "draft").mkdir(parents=True)
    settings = ServeSettings(serve_dir=home, runs_dir=tmp_path)
    with pytest.raises(InverSynthError, match=f"is not a serve folder \\(no {MARKER}\\)"):
        open_serve_folder(settings)
    refused = subprocess.run(
        [sys.executable, "-m", "models.serve", "--port", "0", "--no_preload",
         "--serve_directory", str(home)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        f"error: {str(home)!r} holds other files and is not a serve folder (no {MARKER}); "
        "give --serve_directory a new or empty folder"
    ]
    assert (home / "uploads" / "mine.wav").read_bytes() == b"keep me"
    assert (home / "results" / "draft").is_dir() and not (home / MARKER).exists()


def test_a_served_folder_is_left_alone_by_a_second_server_and_by_clean(served):
    from generators.clean import plan_clean

    _, settings = served
    kept = settings.uploads_dir / "0123456789abcdef0123456789abcdef" / "waiting.wav"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(b"a sound waiting its turn")
    try:
        with pytest.raises(InverSynthError, match=(
            f"another matching page \\(process {os.getpid()}\\) serves from "
            f"{re.escape(repr(str(settings.serve_dir)))}; stop it"
        )):  # fmt: skip
            open_serve_folder(settings)
        assert kept.read_bytes() == b"a sound waiting its turn"  # its start-up cleaned nothing
        plan = plan_clean({"serve": settings.serve_dir})
        assert plan.remove == []
        assert plan.leave == [
            (settings.serve_dir, f"the matching page serves from it (process {os.getpid()})")
        ]
    finally:
        shutil.rmtree(kept.parent)


def _start(
    tmp_path: Path, *extra: str, sigint_ignored: bool = False
) -> tuple[subprocess.Popen, str]:
    def ignore_sigint() -> None:  # as a shell starts a background job
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    process = subprocess.Popen(
        [sys.executable, "-m", "models.serve", "--port", "0", "--no_preload",
         "--serve_directory", str(tmp_path / "serve"), "--output_dir", str(tmp_path), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=ignore_sigint if sigint_ignored else None,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    assert "the matching page is at http://127.0.0.1:" in line, process.stderr.read()
    return process, line.split(" is at ")[1].split()[0]


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_the_command_serves_the_page_and_stops_on_a_signal(tmp_path, sent, code):
    import urllib.request

    process, url = _start(tmp_path)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and b"InverSynth" in response.read()
        port = url.rstrip("/").rsplit(":", 1)[1]
        taken = subprocess.run(
            [sys.executable, "-m", "models.serve", "--port", port, "--no_preload"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert taken.returncode == 2
        assert taken.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
        shared = subprocess.run(
            [sys.executable, "-m", "models.serve", "--port", "0", "--no_preload",
             "--serve_directory", str(tmp_path / "serve")],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert shared.returncode == 2 and shared.stderr.count("\n") == 1
        assert shared.stderr.startswith(f"error: another matching page (process {process.pid})")
        process.send_signal(sent)
        assert process.wait(timeout=30) == code
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_that_stops_the_page_sets_the_exit_code_whatever_the_process_inherited(
    tmp_path, sent, code
):
    # uvicorn catches SIGINT even where the process inherited it ignored, stops, and
    # raises it again into the ignored disposition: the command must not exit 0.
    import urllib.request

    process, url = _start(tmp_path, sigint_ignored=True)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # serving: its handlers are in
            assert response.status == 200
        process.send_signal(sent)
        assert process.wait(timeout=30) == code
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --------------------------------------------------------------------------
# The queue alone: a match that reports progress stops at its next report
# --------------------------------------------------------------------------


def test_a_match_reporting_progress_shows_it_and_stops_at_the_next_report_after_cancel():
    from models.matching.objective import MatchProgress
    from models.web.jobs import Job, JobQueue

    ended: list[tuple[str, str]] = []

    def search(job: Job) -> None:  # renders until cancelled, reporting as a matcher does
        start = time.monotonic()
        for renders in range(1, 100_000):
            time.sleep(0.005)
            job.set_progress(MatchProgress(renders, 10.0 / renders, time.monotonic() - start))

    queue = JobQueue(search, on_finish=lambda job: ended.append((job.id, job.status)))
    try:
        job = queue.submit(Job("a" * 32, "session", {}))
        while job.progress is None or job.progress.renders < 5:
            time.sleep(0.01)
        assert job.status == "running" and job.progress.best_distance_db <= 2.0
        asked = time.monotonic()
        queue.cancel(job)
        while job.status == "running":
            time.sleep(0.005)
        assert job.status == "cancelled" and time.monotonic() - asked < 1.0
        assert ended == [("a" * 32, "cancelled")] and job.result is None
    finally:
        queue.close()
