"""The matching page as a person meets it: time to the first sound, page weight, two tabs at once.

Starts ``python -m models.serve`` (the shipped FM model, preloaded) on a free
port and drives the system Chromium (Playwright) through the page. Run by hand::

    uv run python -m benchmarks.serve_speed                     # 3 warm rounds
    uv run python -m benchmarks.serve_speed --screenshots docs  # also the README's screenshots
    uv run python -m benchmarks.serve_speed --blas_rounds 4     # one BLAS thread against all

Prints:

* **time to the first sound**: from pressing Match on a 1 s sound (44.1 kHz) at the
  page's default budget (hybrid, the library's 4,000 renders, no time cap) to the
  match playing in the page (its ``playing`` event): once right after the server
  starts (``cold``: the model may still be loading) and then ``--rounds`` times
  (``warm``), with the server's own seconds for the match and its renders beside it;
* **page weight**: bytes of HTML + CSS + JavaScript, and what one match adds (the
  result, three WAVs, and the page's polls), as the browser received them;
* **two tabs at once**: both send a sound within a moment; when each result
  appears, and whether the second waited for the first;
* with ``--blas_rounds N`` instead: the page's app in this process (no browser)
  matches the same sound 2N times, alternating the page's one BLAS thread with
  OpenBLAS's own thread count, and prints the search's seconds of each and their
  ratio (interleaved, so load from other jobs hits both alike).

The machine's load average is printed before and after: other jobs on its cores
change every time here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from starlette.testclient import TestClient
from threadpoolctl import threadpool_info

from models.web import library
from models.web.server import ServeSettings, create_app

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# play() without a click, to time it
TIMING_ARGS = [*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 180_000

# Press Match at t0; resolves with the ms until the match's player fires "playing".
_TIME_TO_SOUND = """
async () => {
  const t0 = performance.now();
  document.getElementById("go").click();
  const result = await new Promise((resolve) => {
    const look = () => {
      const found = document.querySelector("#result article.result");
      if (found && found.dataset.job !== window.__lastJob) resolve(found); else setTimeout(look, 10);
    };
    look();
  });
  window.__lastJob = result.dataset.job;
  const shown = performance.now() - t0;
  const audio = result.querySelector('audio[data-kind="match"]');
  // The page fetches the WAV, then hands it to the player: wait for that, then play.
  await new Promise((resolve) => { const wait = () => (audio.src ? resolve() : setTimeout(wait, 5)); wait(); });
  const playing = new Promise((resolve) => audio.addEventListener("playing", resolve, { once: true }));
  await audio.play();
  await playing;
  const played = performance.now() - t0;
  audio.pause();
  return { shown_ms: shown, played_ms: played, job: result.dataset.job };
}
"""


def chord_wav(path: Path, *, seconds: float = 1.0, rate: int = 44100) -> Path:
    """A decaying major chord, the kind of sound the FM synth can come close to."""
    t = np.arange(round(rate * seconds)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)) / 3
    sf.write(path, (0.6 * chord * np.exp(-2.5 * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "models.serve", "--port", "0",
         "--serve_directory", str(root / "serve"), "--output_dir", str(root / "runs")],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if " is at " not in line:
        process.kill()
        raise SystemExit(f"the server did not start: {line}")
    return process, line.split(" is at ")[1].split()[0]


def _server_state(page: Any, job: str) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(f"fetch('/api/jobs/{job}').then((r) => r.json())")
    return state


def time_to_sound(page: Any, sound: Path) -> dict[str, float]:
    """One match at the form's budget: ms to the result shown and to the match playing."""
    page.set_input_files("#sound", str(sound))
    timing: dict[str, Any] = page.evaluate(_TIME_TO_SOUND)
    state = _server_state(page, timing.pop("job"))
    timing["server_s"] = float(state["elapsed_s"])
    timing["budget_renders"] = state["budget_renders"]
    timing["renders"] = (state["progress"] or {}).get("renders", 0)
    return timing


def page_weight(context: Any, url: str, sound: Path) -> dict[str, int]:
    """Bytes the browser receives: the page alone, then everything one match adds."""
    received: list[tuple[str, int]] = []
    context.clear_cookies()  # a new session, as a first visit
    page = context.new_page()

    def count(response: Any) -> None:
        if response.url.startswith(("blob:", "data:")):
            return  # the page's own memory (the players' WAVs), not the network
        with contextlib.suppress(Exception):  # a redirect or an aborted body has none
            received.append((response.url, len(response.body())))

    page.on("response", count)
    page.goto(url)
    page.wait_for_load_state("networkidle")
    static = sum(n for u, n in received if u.endswith(("/", ".css", ".js")))
    before = len(received)
    time_to_sound(page, sound)
    page.wait_for_function("document.querySelectorAll('#result canvas[data-drawn]').length === 3")
    page.wait_for_load_state("networkidle")
    added = received[before:]
    page.close()
    return {
        "static": static,
        "match_total": sum(n for _, n in added),
        "match_files": sum(n for u, n in added if "/files/" in u),
        "result": sum(n for u, n in added if u.endswith("/result")),
        "api": sum(n for u, n in added if "/api/" in u),
        "api_calls": sum(1 for u, _ in added if "/api/" in u),
    }


def two_tabs(context: Any, url: str, sound: Path) -> list[tuple[str, float]]:
    """Two tabs send a sound each; when (s after the first press) each result appears."""
    pages = [context.new_page(), context.new_page()]
    for page in pages:
        page.goto(url)
        page.set_input_files("#sound", str(sound))
    t0 = time.perf_counter()
    for page in pages:
        page.click("#go")
    done: dict[int, float] = {}
    while len(done) < 2 and time.perf_counter() - t0 < TIMEOUT_MS / 1000:
        for i, page in enumerate(pages):
            if i not in done and page.query_selector("#result article.result"):
                done[i] = time.perf_counter() - t0
        time.sleep(0.02)
    for page in pages:
        page.close()
    return sorted((f"tab {i + 1}", s) for i, s in done.items())


def screenshots(context: Any, url: str, sound: Path, folder: Path) -> None:
    """The page with a result, 1400 and 390 px wide."""
    folder.mkdir(parents=True, exist_ok=True)
    for width in (1400, 390):
        context.clear_cookies()  # a new session: its list holds this one match
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url)
        time_to_sound(page, sound)
        page.wait_for_function(
            "document.querySelectorAll('#result canvas[data-drawn]').length === 3"
        )
        page.screenshot(path=str(folder / f"serve_{width}.png"), full_page=True)
        page.close()


def _match_once(client: Any, sound: Path) -> float:
    """Match ``sound`` at the default budget through the app; the search's seconds."""
    job = client.post(
        "/api/jobs", files={"sound": (sound.name, sound.read_bytes(), "audio/wav")},
        data={"model": "pretrained/fm_M1"}, headers={"X-InverSynth": "1"},
    ).json()  # fmt: skip
    progress = None
    while True:
        state = client.get(f"/api/jobs/{job['id']}").json()
        progress = state["progress"] or progress
        if state["status"] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    if state["status"] != "done" or progress is None:
        raise SystemExit(f"the match ended {state['status']}: {state['error']}")
    return float(progress["seconds"])


def blas_threads(rounds: int) -> None:
    """The page's search with one BLAS thread and with OpenBLAS's own count, interleaved."""
    one_thread = library.threadpool_limits
    own = max(int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas")
    seconds: dict[str, list[float]] = {"1 thread": [], f"{own} threads": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sound = chord_wav(root / "chord.wav")
        settings = ServeSettings(
            serve_dir=root / "serve", runs_dir=root / "runs", allowed_hosts=("testserver",)
        )
        with TestClient(create_app(settings)) as client:
            _match_once(client, sound)  # loads the model and its lookup
            for _ in range(rounds):
                for label in seconds:
                    library.threadpool_limits = (
                        one_thread if label == "1 thread" else lambda **_: contextlib.nullcontext()
                    )
                    seconds[label].append(_match_once(client, sound))
                    print(f"  {label}: {seconds[label][-1]:.2f} s", flush=True)
        library.threadpool_limits = one_thread
    medians = {label: statistics.median(values) for label, values in seconds.items()}
    shown = ", ".join(f"{label} {m:.2f} s" for label, m in medians.items())
    print(
        f"the default match's search, median of {rounds}: {shown}; "
        f"{medians[f'{own} threads'] / medians['1 thread']:.2f}x as long with {own}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_speed", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="warm matches timed")
    parser.add_argument("--screenshots", type=Path, default=None, help="write PNGs here")
    parser.add_argument(
        "--blas_rounds", type=int, default=0, help="only compare BLAS threads, this many rounds"
    )
    args = parser.parse_args(argv)
    if args.blas_rounds:
        print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        blas_threads(args.blas_rounds)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return 0
    from playwright.sync_api import sync_playwright  # deferred: a dev tool, and a heavy one

    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sound = chord_wav(root / "chord.wav")
        t_start = time.perf_counter()
        process, url = start_server(root)
        try:
            with sync_playwright() as playwright:
                context = playwright.chromium.launch_persistent_context(
                    str(root / "profile"), executable_path=CHROMIUM, args=TIMING_ARGS,
                    headless=True,
                )  # fmt: skip
                context.set_default_timeout(TIMEOUT_MS)
                report(context, url, sound, args, t_start)
                context.close()
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


def report(context: Any, url: str, sound: Path, args: argparse.Namespace, t_start: float) -> None:
    page = context.new_page()
    page.goto(url)
    cold = time_to_sound(page, sound)
    print(
        f"cold (server started {time.perf_counter() - t_start:.1f} s ago, model loading): "
        f"result shown {cold['shown_ms'] / 1000:.2f} s, first sound {cold['played_ms'] / 1000:.2f} s "
        f"after pressing Match (the server's match: {cold['server_s']:.2f} s)"
    )
    warm = [time_to_sound(page, sound) for _ in range(args.rounds)]
    page.close()
    played = [w["played_ms"] / 1000 for w in warm]
    server = [w["server_s"] for w in warm]
    renders = sorted({f"{w['renders']:,} of {w['budget_renders']:,}" for w in warm})
    print(
        f"warm, {args.rounds} rounds: first sound {statistics.median(played):.2f} s after pressing "
        f"Match (median; {min(played):.2f}-{max(played):.2f}), of which the server's match "
        f"{statistics.median(server):.2f} s ({', '.join(renders)} renders, the form's default "
        f"budget); the rest is upload, polling, the result and the WAV"
    )
    weight = page_weight(context, url, sound)
    print(
        f"page weight: {weight['static']:,} bytes of HTML+CSS+JS; one match adds "
        f"{weight['match_total']:,} bytes: the WAV files {weight['match_files']:,}, the result "
        f"{weight['result']:,}, {weight['api_calls']} calls of the JSON API (the upload's answer, "
        f"the polls, the list of matches) {weight['api']:,}"
    )
    finished = two_tabs(context, url, sound)
    order = ", ".join(f"{name} at {s:.2f} s" for name, s in finished)
    in_order = [n for n, _ in sorted(finished, key=lambda x: x[1])] == ["tab 1", "tab 2"]
    print(f"two tabs at once: {order}; {'in order' if in_order else 'NOT in order'}")
    if args.screenshots is not None:
        screenshots(context, url, sound, args.screenshots)
        print(f"screenshots in {args.screenshots}/")


if __name__ == "__main__":
    sys.exit(main())
