"""Real synthesizer plugins (VST2 ``.so``, VST3) as sound generators, hosted by DawDreamer.

A :class:`VSTGenerator` plays one MIDI note per example on a plugin whose
parameters are set from the example's classes, as its plugin config
(:mod:`generators.vst.config`) says. Rendering runs in plugin host processes
that the generator owns (:mod:`generators.vst.hosts`), never in the calling
process, which may have TensorFlow loaded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from core.checks import check_float, check_int
from core.errors import InverSynthError
from core.storage import write_atomic, write_failed
from generators.parameters import Parameter, ParameterSet, example_uniforms
from generators.schema import SILENCE_PEAK
from generators.sound_generator import RenderedExamples, SoundGenerator
from generators.vst.config import check_plugin_path, load_plugin_config, resolve_index
from generators.vst.hosts import (
    MAX_RETRIES,
    TIMEOUT_RANGE_S,
    PluginHostPool,
    default_retries,
    default_timeout_s,
)

if TYPE_CHECKING:
    from generators.sampling import ExampleSampler

__all__ = ["HostSettings", "PlaySettings", "VSTGenerator", "fxp_bytes"]

T = TypeVar("T")


def _first(*options: T | None) -> T:
    """The first option that is not None."""
    return next(option for option in options if option is not None)


@dataclass(frozen=True, kw_only=True)
class PlaySettings:
    """How a :class:`VSTGenerator` plays each example's note; ``None``: the config's, else a default.

    Parameters
    ----------
    pitch, velocity : int, optional
        MIDI note (0-127) and velocity (1-127); default the config's ``note``, else 60 and 100.
    note_length_s : float > 0, optional
        Note-on to note-off; default the config's ``note.length_s``, else half the example.
    prime_s, settle_s : float >= 0, optional
        Lead-in of every render (see :mod:`generators.vst.host_main`); default the
        config's ``render`` section, else 0.1 and 0.3.
    block_size : int > 0
        DawDreamer's processing block, in samples.
    """

    pitch: int | None = None
    velocity: int | None = None
    note_length_s: float | None = None
    prime_s: float | None = None
    settle_s: float | None = None
    block_size: int = 128


@dataclass(frozen=True, kw_only=True)
class HostSettings:
    """The plugin host processes of a :class:`VSTGenerator` (none of it in :meth:`config`).

    Parameters
    ----------
    workers : int > 0
        Plugin host processes rendering in parallel. The dataset writer's own
        workers each build a generator with one host.
    timeout_s : float in [0.01, 86400], optional
        Longest render before a host counts as hung (default
        ``INVERSYNTH_VST_TIMEOUT_S``, else 30).
    retries : int in [0, 100], optional
        Fresh attempts for an example whose host crashed or hung (default
        ``INVERSYNTH_VST_RETRIES``, else 2); after them :meth:`VSTGenerator.render`
        raises and :meth:`VSTGenerator.render_examples` (datasets) marks the example
        failed.
    """

    workers: int = 1
    timeout_s: float | None = None
    retries: int | None = None


_PLAY_KEYS = tuple(f.name for f in fields(PlaySettings))
_HOST_KEYS = tuple(f.name for f in fields(HostSettings))


class VSTGenerator(SoundGenerator):
    """A plugin playing one MIDI note per example, its parameters set from the example.

    Parameters
    ----------
    plugin_config : dict or path
        The plugin config (see :mod:`generators.vst.config`), or its JSON file. Its
        contents (not its path) go into :meth:`config`, so a dataset carries it.
    plugin : path, optional
        The plugin; defaults to the config's ``"plugin"``.
    sample_rate : int > 0
        Hz; the plugin renders at this rate.
    n_samples : int > 0
        Length of every example.
    play : PlaySettings
        The note and the render's lead-in and block (part of :meth:`config`).
    resample_silent : bool
        In :meth:`render_examples` (the dataset writer), redraw the parameters of
        an example that renders silent (peak below 1e-4, or not finite), up to
        ``max_redraws`` times, deterministically (see :meth:`render_examples`).
    max_redraws : int >= 1
    hosts : HostSettings
        The plugin host processes: how many, their timeout and retries.

    A generator is rebuilt from :meth:`config` (a flat dictionary, as datasets and
    runs store it) by :meth:`from_config`.
    """

    name = "vst"
    renders_in_parallel = True  # its plugin hosts: ``workers`` of them
    streams_in_workers = False  # a pool process cannot hold plugin hosts of its own

    def __init__(
        self,
        *,
        plugin_config: dict[str, Any] | str | Path,
        plugin: str | Path | None = None,
        sample_rate: int = 16384,
        n_samples: int = 16384,
        play: PlaySettings = PlaySettings(),
        resample_silent: bool = False,
        max_redraws: int = 8,
        hosts: HostSettings = HostSettings(),
    ) -> None:
        super().__init__(sample_rate=sample_rate, n_samples=n_samples)
        self.plugin_config = load_plugin_config(plugin_config)
        chosen = plugin if plugin is not None else self.plugin_config.plugin
        if chosen is None:
            raise InverSynthError(
                f"no plugin given: pass --plugin, or set 'plugin' in {self.plugin_config.source}"
            )
        self.plugin = check_plugin_path(chosen)
        # An argument wins over the config's note and render sections, which win over defaults.
        note, render = self.plugin_config.note, self.plugin_config.render
        self.pitch = check_int(_first(play.pitch, note.get("pitch"), 60), "pitch", low=0, high=127)
        self.velocity = check_int(
            _first(play.velocity, note.get("velocity"), 100), "velocity", low=1, high=127
        )
        self.note_length_s = check_float(
            _first(play.note_length_s, note.get("length_s"), self.duration_s / 2),
            "note_length_s",
            low=0,
            low_inclusive=False,
        )
        self.prime_s = check_float(
            _first(play.prime_s, render.get("prime_s"), 0.1), "prime_s", low=0, high=60, unit="s"
        )
        self.settle_s = check_float(
            _first(play.settle_s, render.get("settle_s"), 0.3),
            "settle_s",
            low=0,
            high=60,
            unit="s",
        )
        self.resample_silent = bool(resample_silent)
        self.max_redraws = check_int(max_redraws, "max_redraws", low=1, high=1000)
        self.workers = check_int(hosts.workers, "workers", low=1, high=1024)
        self.block_size = check_int(play.block_size, "block_size", low=1, high=65536)
        timeout_s = default_timeout_s() if hosts.timeout_s is None else hosts.timeout_s
        self.timeout_s = check_float(
            timeout_s, "timeout_s", low=TIMEOUT_RANGE_S[0], high=TIMEOUT_RANGE_S[1], unit="s"
        )
        retries = default_retries() if hosts.retries is None else hosts.retries
        self.retries = check_int(retries, "retries", low=0, high=MAX_RETRIES)
        self._parameters = ParameterSet(
            Parameter(
                name=p.name,
                levels=p.levels,
                unit="",
                spacing=p.spacing,
                group=p.group,
                ordered=p.ordered,
            )
            for p in self.plugin_config.varied
        )
        self._pool: PluginHostPool | None = None
        self._validated = False
        self._all_defaults: list[float] = []
        self._varied_ids: list[int] = []
        self._fixed: list[tuple[int, float]] = []

    # ---- SoundGenerator --------------------------------------------------------
    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VSTGenerator:
        """Rebuild from :meth:`config`'s flat keywords (and ``workers``, ``timeout_s``, ``retries``)."""
        rest = dict(config)
        play = PlaySettings(**{k: rest.pop(k) for k in _PLAY_KEYS if k in rest})
        hosts = HostSettings(**{k: rest.pop(k) for k in _HOST_KEYS if k in rest})
        return cls(**rest, play=play, hosts=hosts)

    @property
    def parameter_set(self) -> ParameterSet:
        return self._parameters

    def config(self) -> dict[str, Any]:
        return {
            "plugin": self.plugin,
            "plugin_config": self.plugin_config.raw,
            "sample_rate": self.sample_rate,
            "n_samples": self.n_samples,
            "pitch": self.pitch,
            "velocity": self.velocity,
            "note_length_s": self.note_length_s,
            "prime_s": self.prime_s,
            "settle_s": self.settle_s,
            "resample_silent": self.resample_silent,
            "max_redraws": self.max_redraws,
            "block_size": self.block_size,
        }

    def render(self, values: np.ndarray) -> np.ndarray:
        audio, _ = self.render_checked(values)
        return audio

    def render_checked(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Render, and flag the silent examples.

        Parameters
        ----------
        values : np.ndarray [batch, n_parameters], in [0, 1]

        Returns
        -------
        audio : np.ndarray [batch, n_samples], float32
            Non-finite samples (a plugin gone unstable) are replaced by 0.
        silent : np.ndarray [batch], bool
            Peak below ``SILENCE_PEAK`` (1e-4), or not finite before the replacement.
        """
        audio, silent, _ = self._render_rows(values, example_numbers=None)
        return audio, silent

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: ExampleSampler | None = None
    ) -> RenderedExamples:
        """Sample and render dataset examples ``[start, start + n_examples)``.

        With ``resample_silent``, an example that renders silent is drawn again
        from ``example_uniforms(seed=seed, start=index, n_draws=n_parameters,
        stream=k)`` for k = 1, 2, ... ``max_redraws`` (stream 0 is the first
        draw), until it sounds: the result still depends only on ``(seed,
        example index)``, so shards, workers and resumed runs agree. An example
        silent after every redraw keeps its last draw and counts as silent.

        An example whose plugin host crashed or hung on every retry is marked
        in ``failed`` (its audio is silence, a warning names it) instead of
        ending the dataset; it is not redrawn.

        Returns
        -------
        RenderedExamples
            ``indices`` [n_examples, n_parameters] int64, ``audio``
            [n_examples, n_samples] float32, ``failed`` [n_examples] bool.
        """
        ps = self.parameter_set
        indices = self.sample_indices(
            seed=seed, start=start, n_examples=n_examples, sampler=sampler
        )
        numbers = np.arange(start, start + n_examples)
        audio, silent, failed = self._render_rows(
            ps.to_values(indices), example_numbers=numbers, skip_failures=True
        )
        if not self.resample_silent:
            return RenderedExamples(indices, audio, failed)
        for stream in range(1, self.max_redraws + 1):
            rows = np.flatnonzero(silent & ~failed)
            if rows.size == 0:
                break
            u = np.concatenate(
                [
                    example_uniforms(
                        seed=seed,
                        start=int(numbers[r]),
                        n_examples=1,
                        n_draws=ps.n_parameters,
                        stream=stream,
                    )
                    for r in rows
                ]
            )  # [n_silent, n_parameters]
            indices[rows] = np.floor(u * ps.n_levels[None, :]).astype(np.int64)
            redone, still_silent, redo_failed = self._render_rows(
                ps.to_values(indices[rows]), example_numbers=numbers[rows], skip_failures=True
            )
            audio[rows] = redone
            silent[rows] = still_silent
            failed[rows] = redo_failed
        return RenderedExamples(indices, audio, failed)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> VSTGenerator:
        return self

    # ---- plugin ------------------------------------------------------------
    def _get_pool(self) -> PluginHostPool:
        if self._pool is None:
            self._pool = PluginHostPool(
                load={
                    "plugin": self.plugin,
                    "sample_rate": self.sample_rate,
                    "block_size": self.block_size,
                },
                n_hosts=self.workers,
                timeout_s=self.timeout_s,
                retries=self.retries,
                label=f"plugin {Path(self.plugin).name!r}",
            )
        return self._pool

    def describe_plugin(self) -> dict[str, Any]:
        """The plugin's description (see :func:`describe_plugin`)."""
        return {"plugin": self.plugin, **self._get_pool().info()}

    def validate(self) -> None:
        """Check the plugin config against the plugin; done once, before the first render.

        Raises
        ------
        InverSynthError
            When the plugin cannot be loaded, or a config entry names a
            parameter the plugin does not have (by index or by name).
        """
        if self._validated:
            return
        pool = self._get_pool()
        info = pool.info()
        names = [p["name"] for p in info["parameters"]]
        cfg = self.plugin_config
        varied_ids = [resolve_index(p, names, cfg.source) for p in cfg.varied]
        fixed = [
            (resolve_index(p, names, cfg.source, "fixed parameter"), p.value) for p in cfg.fixed
        ]
        every = varied_ids + [i for i, _ in fixed]
        twice = sorted({names[i] for i in every if every.count(i) > 1})
        if twice:
            raise InverSynthError(f"{cfg.source}: plugin parameter(s) {twice} appear twice")
        pool.configure(
            {
                "varied_ids": varied_ids,
                "fixed": fixed,
                "n_samples": self.n_samples,
                "pitch": self.pitch,
                "velocity": self.velocity,
                "note_length_s": self.note_length_s,
                "prime_s": self.prime_s,
                "settle_s": self.settle_s,
            }
        )
        self._varied_ids, self._fixed = varied_ids, fixed
        self._all_defaults = [float(p["default"]) for p in info["parameters"]]
        self._validated = True

    def _check_unit_values(self, values: np.ndarray) -> np.ndarray:
        v = self.check_values(values)
        bad = (v < 0.0) | (v > 1.0)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InverSynthError(
                f"vst: plugin parameter values are normalized to [0, 1], got "
                f"{v[row, col]!r} for {self.parameter_set.names[col]!r}"
            )
        return v

    def _render_rows(
        self,
        values: np.ndarray,
        *,
        example_numbers: np.ndarray | None,
        skip_failures: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Audio [batch, n_samples], silent [batch] and failed [batch] (see ``PluginHostPool.render``)."""
        v = self._check_unit_values(values)
        self.validate()
        names = self.parameter_set.names

        def describe_row(i: int) -> str:
            where = f"example {example_numbers[i]}" if example_numbers is not None else f"row {i}"
            settings = ", ".join(f"{n}={x:.6g}" for n, x in zip(names, v[i], strict=True))
            return f"{where} ({settings})"

        audio, failed = self._get_pool().render(v, describe_row, skip_failures=skip_failures)
        # max and min propagate NaN and keep inf: non-finite rows have non-finite peaks.
        peaks = np.maximum(audio.max(axis=1), -audio.min(axis=1))  # [batch]
        finite = np.isfinite(peaks)
        if not finite.all():
            audio[~finite] = np.nan_to_num(audio[~finite], nan=0.0, posinf=0.0, neginf=0.0)
        silent = (~finite | (peaks < SILENCE_PEAK)) & ~failed
        return audio, silent, failed

    # ---- presets -------------------------------------------------------------
    def preset_values(
        self, *, values: np.ndarray | None = None, indices: np.ndarray | None = None
    ) -> list[float]:
        """Every plugin parameter (normalized, index order) for one example's values or classes."""
        if (values is None) == (indices is None):
            raise InverSynthError("give exactly one of values= or indices=")
        if indices is not None:
            row = self.parameter_set.to_values(np.asarray(indices).reshape(1, -1))
        else:
            row = np.asarray(values, dtype=np.float64).reshape(1, -1)
        v = self._check_unit_values(row)[0]
        self.validate()
        every = list(self._all_defaults)
        for index, value in self._fixed:
            every[index] = value
        for index, value in zip(self._varied_ids, v, strict=True):
            every[index] = float(value)
        return every

    def write_preset(
        self,
        path: str | Path,
        *,
        values: np.ndarray | None = None,
        indices: np.ndarray | None = None,
        preset_name: str = "inversynth",
    ) -> Path:
        """Write one example's patch as a VST2 ``.fxp`` preset that the plugin (in any host) loads.

        Parameters
        ----------
        path : path-like
            Must end in ``.fxp``.
        values : np.ndarray [n_parameters], optional
            Parameter values in [0, 1] (e.g. ``parameter_set.to_values`` of a prediction).
        indices : np.ndarray [n_parameters], optional
            Class indices instead (e.g. a model's decoded prediction).

        Returns
        -------
        path : Path
        """
        out = Path(path)
        if out.suffix.lower() != ".fxp":
            raise InverSynthError(f"a VST2 preset file ends in .fxp, got {str(out)!r}")
        every = self.preset_values(values=values, indices=indices)
        info = self._get_pool().info()
        if len(info["uid"]) != 4:
            raise InverSynthError(
                f"plugin {self.plugin!r} does not report a VST2 unique ID, so it has no .fxp presets"
            )
        data = fxp_bytes(uid=info["uid"], version=info["version"], values=every, name=preset_name)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_failed(out, exc) from None
        return write_atomic(out, data)

    def render_preset(self, path: str | Path) -> np.ndarray:
        """Render the note with the patch of an ``.fxp`` preset file: float32 [n_samples]."""
        preset = Path(path).resolve()
        if not preset.is_file() or preset.suffix.lower() != ".fxp":
            raise InverSynthError(f"preset {str(path)!r} is not an existing .fxp file")
        self.validate()
        audio: np.ndarray = self._get_pool().call(("render_preset", str(preset)))
        return audio


def fxp_bytes(*, uid: bytes, version: int, values: list[float], name: str = "inversynth") -> bytes:
    """A VST2 ``.fxp`` preset of plain parameter values (``FxCk``), as every VST2 host reads it.

    Parameters
    ----------
    uid : bytes
        The plugin's 4-byte unique ID (``b"amsy"`` for amsynth).
    version : int
        The plugin's version number.
    values : list of float
        Every parameter of the plugin, normalized to [0, 1], in index order.
    """
    program = name.encode("ascii", "replace")[:27].ljust(28, b"\0")
    body = (
        b"FxCk"
        + struct.pack(">i", 1)
        + uid
        + struct.pack(">ii", version, len(values))
        + program
        + b"".join(struct.pack(">f", v) for v in values)
    )
    return b"CcnK" + struct.pack(">i", len(body)) + body
