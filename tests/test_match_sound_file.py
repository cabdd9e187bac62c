"""One library call matches a sound file: what it writes, how loud, at what rate, and cancelling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.errors import InverSynthError
from models.matching.match_output import PEAK_CEILING_DBFS, loudness_gain, rms_dbfs
from models.matching.match_settings import MatchSettings
from models.matching.objective import Budget, MatchProgress
from tests.test_predict import N_SAMPLES, RATE, _tone, loaded_run, tiny_run  # noqa: F401

QUIET = 0.01  # a sound at -43 dBFS RMS: far quieter than the synth plays


def _quiet_stereo_file(path: Path, rate: int = 44100) -> Path:
    sf.write(path, QUIET * _tone(rate, 0.5, 523.0, channels=2) / 0.5, rate, subtype="FLOAT")
    return path


def _matcher(run):
    from models.matching.match_sounds import run_matcher

    generator = run.make_generator()
    return run_matcher(run, generator=generator, progress=False), generator


def test_match_sound_file_writes_what_it_returns_loud_enough_to_hear(tmp_path, loaded_run):  # noqa: F811
    from models.matching.match_sounds import match_sound_file

    matcher, generator = _matcher(loaded_run)
    seen: list[MatchProgress] = []
    settings = MatchSettings(seed=5, budget=Budget(renders=40), output_sample_rate="input")
    outcome = match_sound_file(
        loaded_run, _quiet_stereo_file(tmp_path / "in.wav"), matcher=matcher,
        output_dir=tmp_path / "out", stem="tone", settings=settings, on_progress=seen.append,
    )  # fmt: skip
    assert {"json", "input", "resynthesis", "plot"} <= set(outcome.files)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in outcome.files.values()
    )  # every file it wrote, and nothing else (no temporary name left)
    assert json.loads(outcome.files["json"].read_text()) == outcome.record
    assert outcome.match is outcome.prediction.match and outcome.match.renders <= 40
    assert seen and seen[-1].renders == outcome.match.renders
    record = outcome.record
    assert record["seed"] == 5 and record["budget_renders"] == 40 and record["budget_s"] is None
    assert record["output"]["sample_rate"] == 44100
    # At the input file's rate, and as loud as the input (RMS), never clipped.
    heard, rate = sf.read(outcome.files["input"])
    assert rate == 44100 and heard.shape == (44100 // 2,)
    for kind in ("resynthesis", "network"):
        if kind not in outcome.files:
            continue
        played, rate = sf.read(outcome.files[kind])
        assert rate == 44100
        assert np.max(np.abs(played)) <= 10 ** (PEAK_CEILING_DBFS / 20) + 1e-4
        candidate = next(c for c in record["candidates"] if c["wav"] == outcome.files[kind].name)
        if not candidate["wav_loudness"]["limited"]:
            assert rms_dbfs(played) == pytest.approx(rms_dbfs(heard), abs=0.2)
    generator.close()


def test_a_callback_that_raises_cancels_the_match_and_writes_nothing(tmp_path, loaded_run):  # noqa: F811
    from models.matching.match_sounds import match_sound_file

    matcher, generator = _matcher(loaded_run)

    class StopError(Exception):
        pass

    def stop(progress: MatchProgress) -> None:
        raise StopError

    out = tmp_path / "out"
    with pytest.raises(StopError):
        match_sound_file(
            loaded_run, _quiet_stereo_file(tmp_path / "in.wav"), matcher=matcher,
            output_dir=out, stem="tone", on_progress=stop,
        )  # fmt: skip
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(InverSynthError, match="--output_sample_rate"):
        match_sound_file(
            loaded_run, _quiet_stereo_file(tmp_path / "in.wav"), matcher=matcher,
            output_dir=out, stem="tone", settings=MatchSettings(output_sample_rate=10),
        )  # fmt: skip
    assert not out.exists() or list(out.iterdir()) == []
    generator.close()


def test_the_loudness_gain_stops_before_the_peak_reaches_full_scale():
    t = np.arange(RATE) / RATE
    loud = 0.25 * np.sign(np.sin(2 * np.pi * 100 * t)).astype(np.float32)  # -12 dBFS RMS
    quiet = 0.01 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    gain = loudness_gain(loud, quiet)
    assert not gain.limited and gain.gain_db == pytest.approx(rms_dbfs(loud) - rms_dbfs(quiet))
    spiky = np.zeros(RATE, dtype=np.float32)
    spiky[::400] = 0.5  # a click train: its peak limits the gain long before its RMS
    gain = loudness_gain(loud, spiky)
    assert gain.limited and gain.gain_db < gain.wanted_db
    assert 20 * np.log10(0.5) + gain.gain_db == pytest.approx(PEAK_CEILING_DBFS)
    assert loudness_gain(loud, np.zeros(RATE)).gain_db == 0.0  # silence stays silent


def test_predict_refuses_a_bad_output_rate_in_one_line(tmp_path, tiny_run, capsys):  # noqa: F811
    from core.commandline import run_cli
    from models.predict import main

    path = tmp_path / "tone.wav"
    sf.write(path, _tone(RATE, 0.5), RATE)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(path), "--run", str(tiny_run), "--output_sample_rate", "fast"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "--output_sample_rate" in err[-1]
    out = tmp_path / "out"
    argv = [str(path), "--run", str(tiny_run), "--output_dir", str(out), "--no_plot"]
    assert main([*argv, "--output_sample_rate", "22050", "--budget_renders", "8"]) == 0
    assert sf.info(str(out / "tone_resynthesis.wav")).samplerate == 22050
    assert N_SAMPLES == 4096  # the model's 0.5 s, written at 22050 Hz:
    assert sf.info(str(out / "tone_input.wav")).frames == 22050 // 2


def test_a_second_match_of_the_same_name_leaves_no_file_of_the_first(tmp_path, loaded_run):  # noqa: F811
    from models.matching.match_sounds import match_sound_file

    matcher, generator = _matcher(loaded_run)
    sound, out = _quiet_stereo_file(tmp_path / "in.wav"), tmp_path / "out"
    options = {"matcher": matcher, "output_dir": out, "stem": "tone"}
    eight = Budget(renders=8)
    first = match_sound_file(loaded_run, sound, settings=MatchSettings(budget=eight), **options)
    assert "plot" in first.files
    again = match_sound_file(
        loaded_run, sound, settings=MatchSettings(budget=eight, plot=False), **options
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in again.files.values())
    assert not (out / "tone.png").exists()
    generator.close()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"method": "nearest"}, "unknown matching method 'nearest'"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"workers": 0}, "workers must be a positive integer"),
        ({"top_k": True}, "top_k must be a positive integer"),
        ({"output_sample_rate": 10}, "--output_sample_rate must be"),
    ],
)
def test_match_settings_are_checked_when_made(options, expected):
    with pytest.raises(InverSynthError, match=expected):
        MatchSettings(**options)
    with pytest.raises(InverSynthError, match="give a budget"):
        Budget(renders=None, seconds=None)
    assert MatchSettings().budget == Budget()  # the default budget, defined once
