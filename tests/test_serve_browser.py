"""The matching page in a real browser: drop a sound, hear the match, take the preset and the JSON.

``python -m models.serve`` runs as a process on a free port and headless
Chromium (Debian package ``chromium``, driven by Playwright; no browser is
downloaded) uses the page as a person would. Without Chromium these tests skip,
unless ``CI`` is set: CI installs it, so there a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.serve_speed import CHROMIUM, CHROMIUM_ARGS
from models.common.pretrained import PRETRAINED_FM_RUN
from tests.test_serve import REPO, dexed_installed, make_dx7_run, wav_bytes

# A microphone that plays a test tone, allowed without asking.
FAKE_MICROPHONE = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
TIMEOUT_MS = 120_000

# Resolves when every player of the result has loaded its sound: their durations (s), or -1.
_PLAYERS_LOADED = """
() => Promise.all(Array.from(document.querySelectorAll("article.result audio")).map((a) =>
  new Promise((resolve) => {
    const ok = () => a.readyState >= 1 && isFinite(a.duration) && a.duration > 0;
    if (ok()) { resolve(a.duration); return; }
    if (a.error) { resolve(-1); return; }
    a.addEventListener("loadedmetadata", () => resolve(ok() ? a.duration : -1));
    a.addEventListener("error", () => resolve(-1));
  })))
"""


def chromium() -> str:
    """The system Chromium, or a skip (a failure under CI) naming the command that installs it."""
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        message = "Chromium is not installed (sudo apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return path


def start_server(root: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``python -m models.serve`` on a free port, serving into ``root/serve``; its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "models.serve", "--port", "0",
         "--serve_directory", str(root / "serve"), "--output_dir", str(root / "runs"), *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    if " is at " not in line:
        process.kill()
        raise AssertionError(f"the server did not start: {line}{process.stderr.read()}")
    return process, line.split(" is at ")[1].split()[0]


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    chromium()
    root = tmp_path_factory.mktemp("page")
    (root / "runs").mkdir()
    if dexed_installed():
        make_dx7_run(root / "runs")
    process, address = start_server(root)
    try:
        yield address
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=chromium(),
            args=CHROMIUM_ARGS + FAKE_MICROPHONE, headless=True, accept_downloads=True,
        )  # fmt: skip
        context.grant_permissions(["microphone"])
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sounds")
    files = {
        "tone": folder / "tone.wav",
        "short": folder / "short.wav",
        "bad": folder / "notes.wav",
    }
    files["tone"].write_bytes(wav_bytes(1.0))
    files["short"].write_bytes(wav_bytes(0.5))
    files["bad"].write_text("these are notes, not a sound")
    return files


def match(page: Any, sound: Path, *, budget_renders: str = "300", model: str | None = None) -> None:
    """Choose the sound, the model and the budget (renders) on the page, and press Match."""
    page.set_input_files("#sound", str(sound))
    if model is not None:
        page.select_option("#model", model)
    page.fill("#budget_renders", budget_renders)
    page.click("#go")


def wait_for_result(page: Any) -> list[float]:
    """Wait for the result, its three players loaded and its spectrograms drawn; the durations."""
    page.wait_for_selector("article.result")
    durations: list[float] = page.evaluate(_PLAYERS_LOADED)
    page.wait_for_function(
        "document.querySelectorAll('article.result canvas[data-drawn]').length === 3"
    )
    return durations


def download(page: Any, selector: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    path = folder / info.value.suggested_filename
    info.value.save_as(str(path))
    return path


def drop_a_sound_hear_the_match_take_the_json_then_a_bad_file(
    url: str, browser: Any, sounds: dict[str, Path], folder: Path
) -> None:
    page = browser.new_page()
    page.goto(url)
    match(page, sounds["tone"])
    durations = wait_for_result(page)
    assert len(durations) == 3 and all(abs(d - 1.0) < 0.01 for d in durations), durations
    record = json.loads(download(page, "#download-json", folder).read_text())
    run = json.loads((PRETRAINED_FM_RUN / "run.json").read_text())
    names = [p["name"] for p in run["parameter_set"]["parameters"]]
    assert [p["name"] for p in record["candidates"][0]["parameters"]] == names
    assert record["run"]["generator"] == "fm" and record["budget_renders"] == 300
    assert page.locator("table.parameters tbody tr").count() == len(names)
    assert "tone.wav (hybrid, 300 renders, M1 on" in page.inner_text("#history")

    match(page, sounds["bad"])
    page.wait_for_selector("#message:not([hidden])")
    message = page.inner_text("#message")
    assert "'notes.wav' is not a sound this page reads" in message
    assert "Traceback" not in message and "\n" not in message.strip()
    page.close()


def a_second_tab_waits_its_turn_and_both_hear_their_match(
    url: str, browser: Any, sounds: dict[str, Path]
) -> None:
    first, second = browser.new_page(), browser.new_page()
    first.goto(url)
    second.goto(url)
    match(first, sounds["tone"], budget_renders="4000")
    first.wait_for_function("document.getElementById('status-text').textContent.length > 0")
    match(second, sounds["short"])
    second.wait_for_function(
        "document.getElementById('status-text').textContent.includes("
        "'waiting its turn: 1 match is ahead of it')"
    )
    assert len(wait_for_result(first)) == 3
    assert len(wait_for_result(second)) == 3
    # Each tab keeps its own result: the first one never takes up the second's match
    # (one session, two tabs) and shows it in place of its own.
    first.wait_for_timeout(1500)
    assert first.inner_text("article.result h2").startswith("tone.wav")
    assert second.inner_text("article.result h2").startswith("short.wav")
    first.close()
    # While it matches: renders done of the budget and the best distance so far, the bar
    # following them; Cancel stops it at once, the page says so and keeps the earlier result.
    match(second, sounds["tone"], budget_renders="1000000")
    second.wait_for_function(
        "document.getElementById('status-text').textContent.includes(' of 1,000,000 renders')"
    )
    second.wait_for_function("document.getElementById('status-bar').value > 0")
    text = second.inner_text("#status-text")
    assert re.fullmatch(r"matching: [\d,]+ of 1,000,000 renders; best so far [\d.]+ dB apart", text)
    second.click("#cancel")
    second.wait_for_selector("#message:not([hidden])", timeout=10_000)  # not after the budget
    assert "The match of tone.wav was cancelled." in second.inner_text("#message")
    assert second.query_selector("article.result") is not None
    assert "tone.wav (hybrid, 1,000,000 renders, M1 on" in second.inner_text("#history")
    second.close()


def record_from_the_microphone_and_match_it(url: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(url)
    page.click("#record")
    page.wait_for_timeout(1000)
    page.click("#record")  # stop: the page decodes the recording and makes it a WAV
    page.wait_for_function("document.getElementById('record-status').textContent === 'recorded'")
    page.fill("#budget_renders", "300")
    page.click("#go")
    assert len(wait_for_result(page)) == 3
    assert page.inner_text("article.result h2").startswith("recording.wav")
    page.close()


def a_dx7_match_gives_a_syx_that_reads_back(
    url: str, browser: Any, sounds: dict[str, Path], folder: Path
) -> None:
    from generators.sound_generator import load_generator

    page = browser.new_page()
    page.goto(url)
    match(page, sounds["short"], model="runs/C1_dx7")
    wait_for_result(page)
    syx = download(page, "#download-preset", folder)
    record = json.loads(download(page, "#download-json", folder).read_text())
    assert syx.name == "short.syx" and record["run"]["generator"] == "dexed"
    generator: Any = load_generator("dexed", record["run"]["generator_config"])
    values = [p["value"] for p in record["candidates"][0]["parameters"]]
    np.testing.assert_allclose(generator.read_syx(syx), values, atol=1e-9)
    page.close()


def test_the_page_as_a_person_uses_it(url, browser, sounds, tmp_path):
    # One test, so that one server and one browser serve all of it, whatever the
    # test workers: starting them (and TensorFlow in the server) is most of its time.
    drop_a_sound_hear_the_match_take_the_json_then_a_bad_file(url, browser, sounds, tmp_path)
    a_second_tab_waits_its_turn_and_both_hear_their_match(url, browser, sounds)
    record_from_the_microphone_and_match_it(url, browser)
    if dexed_installed():
        a_dx7_match_gives_a_syx_that_reads_back(url, browser, sounds, tmp_path)
    elif os.environ.get("CI"):
        pytest.fail("dexed-py is missing; CI installs the dexed extra")
