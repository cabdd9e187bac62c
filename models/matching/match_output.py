"""A matched sound's files: its record (JSON), WAVs to listen to, spectrograms, the preset.

:func:`write_prediction` writes, for a :class:`~models.matching.prediction.Prediction`
(refined by a matcher or not), into one folder:

* ``{name}.json``: the record (:func:`prediction_record`, layout
  :data:`FORMAT_VERSION`): the input, the method, seed, budgets, renders,
  seconds and lookup, then one record per candidate (the match first, then
  the network's guess) with its named parameters, how close it sounds, its
  WAV;
* ``{name}_input.wav``: the sound as the model heard it;
* ``{name}_resynthesis.wav``: the synth playing the final match;
* ``{name}_network.wav``: the network's guess, when the match differs from it;
* ``{name}.png``: spectrograms of the input, the match and the network's guess;
* ``{name}.fxp`` / ``{name}.syx``: the match as the synth's preset.

The synth's WAVs are for listening: each is brought to the input's loudness
(RMS), never clipped (the gain stops where the peak would pass
:data:`PEAK_CEILING_DBFS`, and the record says so), and the WAVs are written at
the model's sample rate, the input file's (``output_sample_rate="input"``) or
any other. The metrics are of the synth's own output, before any gain. Every
file is written under a temporary name and renamed once all are written:
an error or an interrupt leaves none of them half-written. Files of the same
name that an earlier match wrote and this one does not (a network WAV, a PNG,
a preset) are removed, so that the folder never holds a file of another match.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import InverSynthError
from core.storage import WriteError, write_failed
from models.common.records import write_json_atomic
from models.matching.audio_io import resample, write_wav
from models.matching.figures import plot_spectrograms
from models.matching.match_text import LEAD_METRICS, listening_summary
from models.matching.prediction import ParameterPrediction, Prediction

if TYPE_CHECKING:
    from models.common.run import Run

__all__ = [
    "FORMAT_VERSION",
    "PEAK_CEILING_DBFS",
    "Loudness",
    "WrittenPrediction",
    "check_output_rate",
    "loudness_gain",
    "prediction_record",
    "preset_suffix",
    "unique_stem",
    "voice_name_of",
    "write_patch",
    "write_prediction",
]

FORMAT_VERSION = 2  # 1: the network's guess at the top level, the match's values unnamed
PEAK_CEILING_DBFS = -1.0  # a loudness-matched WAV peaks at most here: never clipped
OUTPUT_RATES_HZ = (1000, 192000)  # --output_sample_rate, as --sample_rate allows
_FLOOR = 1e-12


@dataclass(frozen=True)
class Loudness:
    """The gain that brings a WAV to the input's loudness, limited so it never clips.

    Attributes
    ----------
    gain_db : float
        Applied, dB.
    wanted_db : float
        What the same RMS as the input would need, dB.
    limited : bool
        The gain stops short of ``wanted_db``: more would push the peak past
        :data:`PEAK_CEILING_DBFS`.
    """

    gain_db: float
    wanted_db: float
    limited: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "gain_db": round(self.gain_db, 2),
            "wanted_gain_db": round(self.wanted_db, 2),
            "limited": self.limited,
        }

    def describe(self, what: str) -> str:
        """``resynthesis: +31.6 dB to the input's loudness`` (and why it stops short)."""
        text = f"{what}: {self.gain_db:+.1f} dB to the input's loudness"
        if self.limited:
            text += (
                f" (the same loudness needs {self.wanted_db:+.1f} dB; limited so its peak "
                f"stays at {PEAK_CEILING_DBFS:g} dBFS)"
            )
        return text


def rms_dbfs(audio: np.ndarray) -> float:
    """RMS level, dB re full scale (a full-scale square wave is 0 dBFS)."""
    x = np.asarray(audio, dtype=np.float64)
    return float(10.0 * np.log10(max(float(np.mean(x * x)), _FLOOR)))


def loudness_gain(reference: np.ndarray, audio: np.ndarray) -> Loudness:
    """The gain that gives ``audio`` the RMS of ``reference``, its peak kept below 0 dBFS.

    Parameters
    ----------
    reference, audio : np.ndarray [n_samples], float
        The input as the model heard it, and a synth's rendering (at the rate written).
    """
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= _FLOOR:  # silence stays silence
        return Loudness(0.0, 0.0, False)
    wanted = rms_dbfs(reference) - rms_dbfs(audio)
    ceiling = PEAK_CEILING_DBFS - 20.0 * float(np.log10(peak))
    return Loudness(min(wanted, ceiling), wanted, wanted > ceiling)


def check_output_rate(value: Any) -> int | str | None:
    """``None`` (the model's rate), ``"input"`` or ``"model"``, or a rate in Hz within range."""
    if value is None or value in ("input", "model"):
        return None if value == "model" else value
    low, high = OUTPUT_RATES_HZ
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not low <= value <= high
    ):
        raise InverSynthError(
            f"--output_sample_rate must be 'input', 'model' or a rate in Hz from {low} to "
            f"{high}, got {value!r}"
        )
    return int(value)


def _output_rate(prediction: Prediction, output_sample_rate: int | str | None) -> int:
    chosen = check_output_rate(output_sample_rate)
    if chosen is None:
        return int(prediction.input.sample_rate)
    if chosen == "input":
        return int(prediction.input.source_sample_rate)
    return int(chosen)


def unique_stem(path: Path, taken: set[str]) -> str:
    """``path``'s file name stem, numbered (``kick-2``) when ``taken`` has it; added to ``taken``."""
    stem = path.stem or "sound"
    candidate, n = stem, 2
    while candidate in taken:
        candidate, n = f"{stem}-{n}", n + 1
    taken.add(candidate)
    return candidate


def preset_suffix(generator: Any) -> str | None:
    """The suffix of the synth's preset files: ``.fxp`` (plugin), ``.syx`` (Dexed), or None."""
    if hasattr(generator, "write_preset"):
        return ".fxp"
    return ".syx" if hasattr(generator, "write_syx") else None


def write_patch(
    generator: Any, path: Path, values: np.ndarray, *, note: int | None = None, name: str = ""
) -> Path | None:
    """Save a patch as the synth's preset file ``path`` (:func:`preset_suffix`).

    A DX7 patch is a 32-voice bank (what Dexed's cartridge manager opens), the
    patch in slot 1, named ``name`` (:func:`voice_name_of`; default the file's
    name), transposed to be played at ``note`` (default the synth's own note).
    Returns None for a synth without a preset format.
    """
    if hasattr(generator, "write_preset"):
        written: Path = generator.write_preset(path, values=values)
        return written
    if hasattr(generator, "write_syx"):
        written = generator.write_syx(
            path, values=values, bank=True, note=note,
            voice_name=voice_name_of(name or Path(path).stem),
        )  # fmt: skip
        return written
    return None


def voice_name_of(stem: str) -> str:
    """A DX7 voice name from a file name: printable ASCII, at most 10 characters (``kick_2`` -> ``KICK_2``)."""
    text = "".join(c if c.isascii() and c.isprintable() else "_" for c in stem.upper())
    return text[:10].strip() or "INVERSYNTH"


class _Staging:
    """Files written under temporary names in one folder, renamed into place together."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.staged: dict[str, tuple[Path, Path]] = {}  # kind -> (temporary, final)

    def write(self, kind: str, name: str, writer: Callable[[Path], Any]) -> None:
        final = self.folder / name
        temporary = self.folder / f".{final.stem}.{os.getpid()}.tmp{final.suffix}"
        self.staged[kind] = (temporary, final)
        try:
            writer(temporary)
        except (OSError, WriteError) as exc:  # a full disk: named by the file it was to be
            kept = (
                "nothing of this match is written, and the earlier match of this name is kept"
                if final.exists()
                else "nothing of this match is written"
            )
            raise write_failed(final, exc, kept=kept) from None

    def commit(self) -> dict[str, Path]:
        for temporary, final in self.staged.values():
            os.replace(temporary, final)
        return {kind: final for kind, (_, final) in self.staged.items()}

    def discard(self) -> None:
        for temporary, _ in self.staged.values():
            with contextlib.suppress(OSError):
                temporary.unlink()


@contextlib.contextmanager
def _staging(folder: Path) -> Iterator[_Staging]:
    staging = _Staging(folder)
    try:
        yield staging
    except BaseException:  # an error, Ctrl-C or SIGTERM: nothing half-written stays
        staging.discard()
        raise


@dataclass(frozen=True)
class WrittenPrediction:
    """What :func:`write_prediction` wrote: the files by kind, and the JSON record."""

    files: dict[str, Path]
    record: dict[str, Any]
    loudness: dict[str, Loudness]


def _network_differs(prediction: Prediction) -> bool:
    match = prediction.match
    return match is not None and not np.array_equal(
        np.asarray(match.values, dtype=np.float64), np.asarray(prediction.values, dtype=np.float64)
    )


def _candidate_audio(prediction: Prediction) -> dict[str, np.ndarray]:
    """The synth's renderings to write: the final one, and the network's guess beside a match."""
    out: dict[str, np.ndarray] = {}
    if prediction.match is not None:
        out["resynthesis"] = np.asarray(prediction.match.audio, dtype=np.float32)
        if prediction.resynthesis is not None and _network_differs(prediction):
            out["network"] = np.asarray(prediction.resynthesis, dtype=np.float32)
    elif prediction.resynthesis is not None:
        out["resynthesis"] = np.asarray(prediction.resynthesis, dtype=np.float32)
    return out


def _plot(prediction: Prediction, audio: dict[str, np.ndarray], out: Path) -> None:
    match = prediction.match
    sounds = [prediction.input.audio, audio["resynthesis"]]
    labels = ["input", f"{match.method} match" if match is not None else "resynthesis"]
    if "network" in audio:
        sounds.append(audio["network"])
        labels.append("network's guess")
    title = Path(prediction.source).name
    start_s, end_s = prediction.input.segment_s
    if start_s > 0 or end_s < prediction.input.source_duration_s:
        title += f", {start_s:.3f} s to {end_s:.3f} s"
    metrics = match.metrics if match is not None else prediction.metrics
    if metrics is not None:
        title += f"\n{labels[1]}: {listening_summary(metrics)}"
    plot_spectrograms(
        sounds, labels=labels, sample_rate=prediction.input.sample_rate, out=out, title=title
    )


def write_prediction(
    prediction: Prediction,
    output_dir: str | Path,
    *,
    stem: str | None = None,
    run: Run | None = None,
    plot: bool = True,
    generator: Any = None,
    output_sample_rate: int | str | None = None,
) -> WrittenPrediction:
    """Write a prediction's record, WAVs, spectrograms and preset (see the module docstring).

    Parameters
    ----------
    prediction : Prediction
    output_dir : path
        Created if needed.
    stem : str, optional
        File name stem; default the sound's file name without extension.
    run : Run, optional
        Recorded in the JSON (run folder, model, synth).
    plot : bool
        Draw the spectrograms.
    generator : SoundGenerator, optional
        The run's synth: the final patch is also saved as its preset
        (:func:`write_patch`: ``.fxp`` for a plugin, ``.syx`` for Dexed).
    output_sample_rate : None, "model", "input" or int
        Rate of the WAVs, Hz: the model's (default), the input file's, or this one.

    Returns
    -------
    WrittenPrediction
        ``files``: ``json``, ``input``, and when resynthesized ``resynthesis``
        and ``plot``; ``network`` beside a match that differs from it; ``patch``.
    """
    rate = _output_rate(prediction, output_sample_rate)
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InverSynthError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    stem = stem or (Path(prediction.source).stem or "sound")
    audio = _candidate_audio(prediction)
    try:
        with _staging(out) as staging:
            loudness = _stage_wavs(staging, stem, prediction, audio, rate)
            if plot and "resynthesis" in audio:
                staging.write("plot", f"{stem}.png", lambda p: _plot(prediction, audio, p))
            if generator is not None:
                _stage_patch(staging, generator, stem, prediction)
            files = {"json": out / f"{stem}.json"}
            files.update((kind, final) for kind, (_, final) in staging.staged.items())
            prediction.files = dict(files)
            record = prediction_record(prediction, run=run, sample_rate=rate, loudness=loudness)
            staging.write("json", f"{stem}.json", lambda p: write_json_atomic(p, record))
            staging.commit()
    except OSError as exc:
        raise InverSynthError(f"cannot write into {str(out)!r}: {exc.strerror or exc}") from None
    _remove_stale(out, stem, files)
    return WrittenPrediction(files=files, record=record, loudness=loudness)


def _stage_wavs(
    staging: _Staging, stem: str, prediction: Prediction, audio: dict[str, np.ndarray], rate: int
) -> dict[str, Loudness]:
    """The input's WAV, and the synth's at the input's loudness; all at ``rate`` Hz."""
    model_rate = prediction.input.sample_rate
    reference = resample(prediction.input.audio, orig_rate=model_rate, target_rate=rate)
    staging.write("input", f"{stem}_input.wav", lambda p: write_wav(p, reference, rate))
    loudness: dict[str, Loudness] = {}
    for kind, sound in audio.items():
        played = resample(sound, orig_rate=model_rate, target_rate=rate)
        gain = loudness[kind] = loudness_gain(reference, played)
        scaled = played * np.float32(10.0 ** (gain.gain_db / 20.0))

        def write(path: Path, samples: np.ndarray = scaled) -> None:
            write_wav(path, samples, rate)

        staging.write(kind, f"{stem}_{kind}.wav", write)
    return loudness


def _stage_patch(staging: _Staging, generator: Any, stem: str, prediction: Prediction) -> None:
    values = prediction.values if prediction.match is None else prediction.match.values
    suffix = preset_suffix(generator)
    if suffix is None:
        return
    note = None if prediction.note is None else prediction.note.midi

    def write(path: Path) -> None:  # a temporary name: the voice is named after the stem
        write_patch(generator, path, values, note=note, name=stem)

    staging.write("patch", f"{stem}{suffix}", write)


def _remove_stale(out: Path, stem: str, files: dict[str, Path]) -> None:
    """Files an earlier match of the same name wrote that this one did not (they would mislead)."""
    for name in (f"{stem}_network.wav", f"{stem}.png", f"{stem}.fxp", f"{stem}.syx"):
        path = out / name
        if path not in files.values():
            with contextlib.suppress(OSError):
                path.unlink()


# --------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _metrics(metrics: dict[str, float]) -> dict[str, Any]:
    """How close a candidate sounds: the listener's measures first, every metric after."""
    return {
        "similarity_percent": _finite(100.0 * metrics["rho_stft"])
        if "rho_stft" in metrics
        else None,
        "lsd_db": _finite(metrics.get("log_spectral_distance", float("nan"))),
        "metrics": {k: _finite(v) for k, v in metrics.items()},
    }


def _parameter(p: ParameterPrediction, value: float, index: int) -> dict[str, Any]:
    return {
        "name": p.name,
        "value": float(value),
        "unit": p.unit,
        "index": int(index),
        "group": p.group,
        "description": p.description,
    }


def _top(p: ParameterPrediction) -> list[dict[str, Any]]:
    return [{"index": i, "value": v, "probability": q} for i, v, q in p.top]


def _candidates(prediction: Prediction, loudness: dict[str, Loudness]) -> list[dict[str, Any]]:
    files = prediction.files
    match = prediction.match
    out = []
    if match is not None:
        out.append(
            {
                "candidate": "match",
                "method": match.method,
                "parameters": [
                    _parameter(p, v, i)
                    for p, v, i in zip(
                        prediction.parameters, match.values, match.indices, strict=True
                    )
                ],
                **_metrics(match.metrics),
                "distance_db": _finite(match.distance),
                "wav": files["resynthesis"].name if "resynthesis" in files else None,
                "wav_loudness": loudness["resynthesis"].to_dict()
                if "resynthesis" in loudness
                else None,
                "preset": files["patch"].name if "patch" in files else None,
            }
        )
    network_kind = "network" if match is not None and "network" in files else "resynthesis"
    network: dict[str, Any] = {
        "candidate": "network",
        "method": "network",
        "parameters": [
            {**_parameter(p, p.value, p.index), "top": _top(p)} for p in prediction.parameters
        ],
        **(_metrics(prediction.metrics) if prediction.metrics is not None else {}),
        "wav": files[network_kind].name if network_kind in files else None,
        "wav_loudness": loudness[network_kind].to_dict() if network_kind in loudness else None,
    }
    if match is not None and np.array_equal(match.start_indices, prediction.indices):
        network["distance_db"] = _finite(match.start_distance)  # the match started from it
    if match is None and "patch" in files:
        network["preset"] = files["patch"].name
    out.append(network)
    return out


def prediction_record(
    prediction: Prediction,
    *,
    run: Run | None = None,
    sample_rate: int | None = None,
    loudness: dict[str, Loudness] | None = None,
) -> dict[str, Any]:
    """The JSON record of a prediction and its match (layout :data:`FORMAT_VERSION`).

    README ("The record of a match") documents every field.
    """
    match = prediction.match
    sound = prediction.input
    record: dict[str, Any] = {"format_version": FORMAT_VERSION}
    if run is not None:
        record["run"] = {
            "run_dir": str(run.run_dir),
            "model": run.model_name,
            "generator": run.generator_name,
            "generator_config": run.generator_config,
        }
    record["input"] = {
        "file": prediction.source,
        "part_s": list(sound.segment_s),
        "sample_rate": sound.source_sample_rate,
        "channels": sound.source_channels,
        "n_samples": sound.source_n_samples,
        "changes": list(sound.notes),
        "model_sample_rate": sound.sample_rate,
        "model_n_samples": int(sound.audio.shape[0]),
        "rms_dbfs": round(rms_dbfs(sound.audio), 2),
        "wav": prediction.files["input"].name if "input" in prediction.files else None,
    }
    record.update(
        method=match.method if match is not None else "network",
        seed=match.seed if match is not None else None,
        budget_renders=match.budget_renders if match is not None else None,
        budget_s=match.budget_s if match is not None else None,
        renders=int(match.renders) if match is not None else 1,
        seconds=float(match.seconds) if match is not None else None,
        lookup=match.lookup.to_dict() if match is not None and match.lookup is not None else None,
        notes=list(match.notes) if match is not None else [],
        output={
            "sample_rate": sample_rate or sound.sample_rate,
            "lead_metrics": list(LEAD_METRICS),
        },
        candidates=_candidates(prediction, loudness or {}),
    )
    if prediction.note is not None:
        record["note"] = prediction.note.to_dict()
    if prediction.true_indices is not None and run is not None:
        truth = run.parameter_set.to_values(np.asarray(prediction.true_indices)[None, :])[0]
        record["true_parameters"] = [
            {"name": p.name, "value": float(v), "unit": p.unit, "index": int(i)}
            for p, v, i in zip(prediction.parameters, truth, prediction.true_indices, strict=True)
        ]
    record["files"] = {k: v.name for k, v in prediction.files.items()}
    return record
