"""Hostile use of the dataset tools: nothing lost, nothing silently wrong.

Every refusal is one line (``error: ...``, exit code 2) that leaves nothing
half-written; every interruption keeps what was finished, for ``--resume``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from core import commandline
from core.errors import InverSynthError
from generators import dataset_options
from generators.dataset import open_dataset
from generators.fm_generator import main as fm_main
from generators.generate import create_dataset_from_args
from generators.parameters import Parameter
from generators.schema import dataset_path, lock_path
from generators.sine_generator import SineGenerator
from generators.sound_generator import RenderedExamples
from generators.vst.config import load_plugin_config
from generators.writer import DatasetCreator, DatasetPlan

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 2048
NEKOBI_CONFIG = REPO / "plugin_config" / "nekobi.json"


# Each test in a folder of its own, with no INVERSYNTH_* variable and no .env leaking in.
pytestmark = pytest.mark.usefixtures("no_dotenv")


def sine() -> SineGenerator:
    return SineGenerator(sample_rate=8192, n_samples=N_SAMPLES)


def creator(path: Path, **options: Any) -> DatasetCreator:
    """A writer of sine examples; the plan's options (n_examples, seed, shard) among the rest."""
    plan = {k: options.pop(k) for k in ("n_examples", "seed", "shard") if k in options}
    return DatasetCreator(sine(), path=path, plan=DatasetPlan(**plan), **options)


def make(path: Path, **kwargs: Any) -> Path:
    settings: dict[str, Any] = {"n_examples": 40, "seed": 5, "chunk_size": 8, "progress": False}
    settings.update(kwargs)
    return creator(path, **settings).run()


def run_command(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and stderr of a command run as ``run_cli`` runs it."""
    with pytest.raises(SystemExit) as exit_info:
        commandline.run_cli(main, argv)
    code = exit_info.value.code
    return int(code if isinstance(code, int) else 1), capsys.readouterr().err


def one_line_error(code: int, err: str) -> bool:
    return code == 2 and err.startswith("error: ") and err.count("\n") == 1


def fm_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--num_examples",
        "12",
        "--chunk_size",
        "4",
        "--workers",
        "1",
        "--length",
        "0.25",
        "--dataset_directory",
        str(tmp_path / "data"),
        "--no_progress",
        *extra,
    ]


def nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


# ---- a synth that runs slowly, or waits at a gate, in a process of its own --------------

SLOW_SYNTH = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    from generators.sine_generator import SineGenerator
    from generators.sound_generator import GENERATORS

    GENERATORS["slow_sine"] = "slow_synth:SlowSine"  # workers rebuild it by name

    class SlowSine(SineGenerator):
        \"\"\"A sine that renders slowly, and waits while the file $GATE exists (saying so).\"\"\"

        name = "slow_sine"

        def render(self, values):
            gate = os.environ.get("GATE")
            if gate and Path(gate).exists():
                Path(gate + ".reached").touch()  # the file is made; rendering waits
            while gate and Path(gate).exists():
                time.sleep(0.05)
            time.sleep(float(os.environ.get("SLOW_S", "0.05")))
            return super().render(values)
    """
)

RUN_SLOW = textwrap.dedent(
    """
    import os, sys
    import slow_synth
    from core.commandline import run_cli
    from generators.writer import DatasetCreator, DatasetPlan

    def main(argv):
        path, workers = argv[0], int(argv[1])
        n_samples, n_examples = int(os.environ["N_SAMPLES"]), int(os.environ["N_EXAMPLES"])
        gen = slow_synth.SlowSine(sample_rate=8192, n_samples=n_samples)
        creator = DatasetCreator(
            gen, path=path, plan=DatasetPlan(n_examples=n_examples, seed=5), workers=workers,
            chunk_size=4, progress=False,
        )
        creator.run(resume="--resume" in argv, overwrite="--overwrite" in argv)
        return 0

    if __name__ == "__main__":
        run_cli(main, sys.argv[1:])
    """
)


@pytest.fixture
def slow_run(tmp_path: Path) -> Iterator[Any]:
    """Start the slow synth's dataset run in a process (its own session); ended at teardown."""
    (tmp_path / "slow_synth.py").write_text(SLOW_SYNTH)
    (tmp_path / "run_slow.py").write_text(RUN_SLOW)
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path}", GATE=str(tmp_path / "gate"))
    started: list[subprocess.Popen[str]] = []

    def start(
        path: Path, workers: int, *flags: str, n_samples: int = N_SAMPLES, n_examples: int = 40
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, str(tmp_path / "run_slow.py"), str(path), str(workers), *flags],
            cwd=tmp_path,
            env=dict(env, N_SAMPLES=str(n_samples), N_EXAMPLES=str(n_examples)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        # The whole session: a worker left behind would hold the output pipes open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def assert_same_examples(a: Path, b: Path) -> None:
    with open_dataset(a) as x, open_dataset(b) as y:
        assert x.n_examples == y.n_examples
        for u, v in zip(x.read_range(0, x.n_examples), y.read_range(0, y.n_examples), strict=True):
            np.testing.assert_array_equal(u, v)


# ---- 1. one writer per dataset ------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_second_writer_of_a_dataset_is_refused_and_touches_nothing(
    tmp_path: Path, slow_run: Any
) -> None:
    path = tmp_path / "d_data.hdf5"
    gate = tmp_path / "gate"
    gate.touch()  # the running job waits at its first render
    running = slow_run(path, 1)
    wait_for(Path(str(gate) + ".reached").exists)
    partial = Path(str(path) + ".partial")
    assert lock_path(path).exists()
    before = partial.stat()
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        creator = DatasetCreator(
            sine(), path=path, plan=DatasetPlan(n_examples=40, seed=5), progress=False
        )
        with pytest.raises(
            InverSynthError, match=rf"being written by another process \(pid {running.pid}\)"
        ) as err:
            creator.run(**flags)
        assert "\n" not in str(err.value) and "--overwrite" not in str(err.value)
    after = partial.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    gate.unlink()
    _, err = running.communicate(timeout=120)
    assert running.returncode == 0, err
    assert not lock_path(path).exists()
    assert_same_examples(path, make(tmp_path / "ref_data.hdf5"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_frees_its_dataset_and_leaves_no_processes(
    tmp_path: Path, slow_run: Any
) -> None:
    path = tmp_path / "k_data.hdf5"
    (tmp_path / "gate").touch()
    running = slow_run(path, 2)
    # The workers and multiprocessing's resource tracker, once all are up.
    wait_for(lambda: len(children_of(running.pid)) >= 3)
    family = children_of(running.pid)
    running.kill()  # kill -9: no clean-up runs in the parent
    running.communicate(timeout=30)
    wait_for(lambda: not any(alive(pid) for pid in family), timeout_s=15)
    (tmp_path / "gate").unlink()
    # The lock died with its holder: the run resumes, to the very same dataset.
    resume = slow_run(path, 1, "--resume")
    _, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    assert_same_examples(path, make(tmp_path / "ref_data.hdf5"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(("how", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_end_a_run_cleanly_and_it_resumes(
    tmp_path: Path, slow_run: Any, how: signal.Signals, code: int
) -> None:
    path = tmp_path / "t_data.hdf5"
    (tmp_path / "gate").touch()
    running = slow_run(path, 2)
    wait_for(lambda: len(children_of(running.pid)) >= 3)
    family = children_of(running.pid)
    if how == signal.SIGINT:
        os.killpg(running.pid, how)  # Ctrl-C reaches the whole foreground group
    else:
        running.send_signal(how)  # `kill PID` reaches the parent only
    _, err = running.communicate(timeout=60)
    assert running.returncode == code and "Traceback" not in err, err
    wait_for(lambda: not any(alive(pid) for pid in family), timeout_s=15)
    assert Path(str(path) + ".partial").exists() and not lock_path(path).exists()
    (tmp_path / "gate").unlink()
    resume = slow_run(path, 1, "--resume")
    _, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    assert_same_examples(path, make(tmp_path / "ref_data.hdf5"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_ended_in_the_middle_of_sending_a_result_do_not_hang_the_exit(
    tmp_path: Path, slow_run: Any
) -> None:
    path = tmp_path / "s_data.hdf5"
    gate = tmp_path / "gate"
    gate.touch()
    # Chunks of 4 examples of 4 M samples: every result is 64 MB, far more than a pipe holds.
    running = slow_run(path, 2, n_samples=1 << 22, n_examples=8)
    wait_for(Path(str(gate) + ".reached").exists)
    family = children_of(running.pid)
    os.kill(running.pid, signal.SIGSTOP)  # nothing reads the results now
    gate.unlink()
    time.sleep(3.0)  # the workers render, and block part-way through sending
    running.send_signal(signal.SIGTERM)
    os.kill(running.pid, signal.SIGCONT)
    _, err = running.communicate(timeout=60)
    assert running.returncode == 143, err
    wait_for(lambda: not any(alive(pid) for pid in family), timeout_s=15)


# ---- 2. labels fit their int16 column -----------------------------------------------------


def test_more_levels_than_int16_labels_hold_are_refused() -> None:
    with pytest.raises(InverSynthError, match=r"40000 levels; at most 32768"):
        Parameter.linear("x", low=0.0, high=1.0, n_levels=40_000)
    config = {"plugin": "/x.so", "parameters": [{"id": 0, "name": "a", "n_levels": 40_000}]}
    with pytest.raises(InverSynthError, match=r"'n_levels' must be an integer in \[2, 32768\]"):
        load_plugin_config(config)
    values = {"id": 0, "name": "a", "values": np.linspace(0, 1, 32_769).tolist()}
    with pytest.raises(InverSynthError, match="at most 32768"):
        load_plugin_config({"plugin": "/x.so", "parameters": [values]})
    assert Parameter.linear("y", low=0.0, high=1.0, n_levels=32_768).n_levels == 32_768


# ---- 3. a failed example costs that example only -------------------------------------------


class _FailingSine(SineGenerator):
    """A sine synth that cannot render every 7th example (as a crashing plugin)."""

    name = "sine"

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: Any = None
    ) -> RenderedExamples:
        indices, audio, _ = super().render_examples(seed=seed, start=start, n_examples=n_examples)
        failed = np.arange(start, start + n_examples) % 7 == 3
        audio[failed] = 0.0
        return RenderedExamples(indices, audio, failed)


def test_failed_examples_are_recorded_and_readers_leave_them_out(tmp_path: Path) -> None:
    gen = _FailingSine(sample_rate=8192, n_samples=N_SAMPLES)
    path = tmp_path / "f_data.hdf5"
    creator = DatasetCreator(
        gen,
        path=path,
        plan=DatasetPlan(n_examples=40, seed=5),
        chunk_size=8,
        progress=False,
        wav_directory=tmp_path / "wavs",
        wav_prefix="f",
    )
    creator.run()
    expected = np.flatnonzero(np.arange(40) % 7 == 3)
    assert creator.n_failed == expected.size
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(np.flatnonzero(f["failed"][...]), expected)
        assert f.attrs["failed_examples"] == expected.size
    with open_dataset(path) as ds:
        np.testing.assert_array_equal(ds.failed_indices, expected)
        assert ds.n_failed == expected.size
        mask = ds.usable_mask(np.arange(40))
        np.testing.assert_array_equal(np.flatnonzero(~mask), expected)
        audio, _ = ds.read(expected)
        assert not audio.any()  # silence, never a stale or garbage row
    wavs = sorted(p.name for p in (tmp_path / "wavs").iterdir())
    assert len(wavs) == 40 - expected.size and "f_0000003.wav" not in wavs
    # Recorded as done: a resume has nothing to redo.
    again = DatasetCreator(
        gen, path=path, plan=DatasetPlan(n_examples=40, seed=5), chunk_size=8, progress=False
    )
    assert again.run(resume=True) == path


def test_shards_carry_their_failed_examples_to_the_whole(tmp_path: Path) -> None:
    gen = _FailingSine(sample_rate=8192, n_samples=N_SAMPLES)
    for k in (1, 2):
        DatasetCreator(
            gen,
            path=tmp_path / f"s_data.shard-{k}-of-2.hdf5",
            plan=DatasetPlan(n_examples=30, shard=(k, 2)),
            chunk_size=4,
            progress=False,
        ).run()
    with open_dataset(str(tmp_path / "s_data.shard-*")) as ds:
        np.testing.assert_array_equal(ds.failed_indices, np.flatnonzero(np.arange(30) % 7 == 3))


class _AlwaysFailing(SineGenerator):
    name = "sine"

    def render_examples(
        self, *, seed: int, start: int, n_examples: int, sampler: Any = None
    ) -> RenderedExamples:
        indices, audio, _ = super().render_examples(seed=seed, start=start, n_examples=n_examples)
        return RenderedExamples(indices, audio * 0, np.ones(n_examples, dtype=bool))


def test_a_synth_that_fails_every_example_stops_early_and_keeps_the_file(tmp_path: Path) -> None:
    gen = _AlwaysFailing(sample_rate=8192, n_samples=N_SAMPLES)
    path = tmp_path / "a_data.hdf5"
    with pytest.raises(InverSynthError, match="failed to render every one of the first 16"):
        DatasetCreator(
            gen, path=path, plan=DatasetPlan(n_examples=400), chunk_size=8, progress=False
        ).run()
    assert Path(str(path) + ".partial").exists() and not lock_path(path).exists()


FAULTY_HOST = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {host_folder!r})
    import host_main

    real_render = host_main.PluginHost.render

    def render(self, row):
        if row[0] == 1.0:  # Nekobi's second waveform: this plugin "crashes" on it, always
            os.kill(os.getpid(), signal.SIGSEGV)
        return real_render(self, row)

    host_main.PluginHost.render = render
    sys.exit(host_main.main(sys.argv))
    """
)


def test_a_plugin_that_always_crashes_on_some_examples_costs_only_those(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/usr/lib/vst/Nekobi-vst.so").exists():
        if os.environ.get("CI"):
            pytest.fail("Nekobi is not installed: apt-get install -y dpf-plugins-vst")
        pytest.skip("Nekobi is not installed: apt-get install -y dpf-plugins-vst")
    from generators.vst import hosts
    from generators.vst.synth import HostSettings, PlaySettings, VSTGenerator

    script = tmp_path / "faulty_host.py"
    script.write_text(FAULTY_HOST.format(host_folder=str(REPO / "generators" / "vst")))
    monkeypatch.setattr(hosts, "_HOST_SCRIPT", script)
    path = tmp_path / "nk_data.hdf5"
    with VSTGenerator(
        plugin_config=NEKOBI_CONFIG, sample_rate=16384, n_samples=4096,
        play=PlaySettings(note_length_s=0.1), hosts=HostSettings(retries=0),
    ) as gen:  # fmt: skip
        crashing = gen.parameter_set.sample_indices(seed=0, n_examples=10)[:, 0] == 1
        DatasetCreator(
            gen, path=path, plan=DatasetPlan(n_examples=10), chunk_size=5, progress=False
        ).run()
    assert 0 < crashing.sum() < 10
    with open_dataset(path) as ds:
        np.testing.assert_array_equal(ds.failed_indices, np.flatnonzero(crashing))
        audio, _ = ds.read(np.arange(10))
    assert (np.abs(audio[~crashing]).max(axis=1) > 1e-3).all() and not audio[crashing].any()
    assert capsys.readouterr().err.count("recorded as failed") == crashing.sum()


# ---- 4. a dataset is all of its shards ------------------------------------------------------


def test_a_lone_shard_is_refused_naming_the_missing_ones(tmp_path: Path) -> None:
    first = make(tmp_path / "s_data.shard-1-of-3.hdf5", n_examples=30, shard=(1, 3))
    with pytest.raises(InverSynthError, match=r"shards 2, 3 of 3 are missing") as err:
        open_dataset(first)
    assert "s_data.shard-2-of-3.hdf5" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(InverSynthError, match="shards 2, 3 of 3 are missing"):
        open_dataset(str(tmp_path / "s_data.shard-*"))
    with pytest.raises(InverSynthError, match="given twice"):
        open_dataset([first, first])


# ---- 5. --resume of a finished dataset checks the options -----------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 9}, r"--seed differs: the file has seed=5, this run asks seed=9"),
        ({"n_examples": 50}, r"--num_examples differs: the file has n_examples=40"),
    ],
)
def test_resume_of_a_finished_dataset_with_other_options_is_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = make(tmp_path / "r_data.hdf5")
    settings: dict[str, Any] = {"n_examples": 40, "seed": 5, "progress": False, **change}
    with pytest.raises(InverSynthError, match=message):
        creator(path, **settings).run(resume=True)
    # The same options (another chunk size: the rows are the same) find it done.
    same = DatasetCreator(
        sine(), path=path, plan=DatasetPlan(n_examples=40, seed=5), chunk_size=3, progress=False
    )
    assert same.run(resume=True) == path


def test_resume_of_a_finished_file_names_the_synth_option_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(fm_main, fm_args(tmp_path), capsys)[0] == 0
    code, err = run_command(fm_main, fm_args(tmp_path, "--resume", "--normalise"), capsys)
    assert one_line_error(code, err)
    assert "normalise: the file has false, this run asks true" in err


# ---- 11. silence ----------------------------------------------------------------------------


class _Quiet(SineGenerator):
    """A sine synth whose examples below ``loud_from`` are silent (an effect plugin, say)."""

    name = "sine"
    loud_from = float("inf")  # amplitudes below this are silenced: all of them

    def render(self, values: np.ndarray) -> np.ndarray:
        audio = super().render(values)
        audio[values[:, 1] < self.loud_from] = 0.0
        return audio


def dataset_namespace(tmp_path: Path, **changes: Any) -> argparse.Namespace:
    parser = commandline.make_parser()
    dataset_options.add_dataset_arguments(parser, default_name="q")
    args = parser.parse_args(
        [
            "--num_examples",
            "20",
            "--workers",
            "1",
            "--no_progress",
            "--dataset_directory",
            str(tmp_path / "data"),
        ]
    )
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def test_a_synth_that_makes_no_sound_is_an_error_and_mostly_silence_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = _Quiet(sample_rate=8192, n_samples=N_SAMPLES)
    with pytest.raises(InverSynthError, match="every one of the 20 examples is silent"):
        create_dataset_from_args(silent, dataset_namespace(tmp_path))
    with open_dataset(tmp_path / "data" / "q_data.hdf5") as ds:  # kept, complete
        assert ds.attrs["silent_examples"] == 20
    mostly = _Quiet(sample_rate=8192, n_samples=N_SAMPLES)
    mostly.loud_from = 0.9  # only the loudest level sounds
    create_dataset_from_args(mostly, dataset_namespace(tmp_path, name="m"))
    err = capsys.readouterr().err
    assert "warning:" in err and "of 20 examples" in err and "are silent" in err


# ---- 12. names stay in their folder -----------------------------------------------------------


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".hidden", ""])
def test_dataset_names_with_folders_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, err = run_command(fm_main, fm_args(tmp_path, "--name", name), capsys)
    assert one_line_error(code, err) and "plain name" in err
    assert nothing_written(tmp_path / "data") and list(tmp_path.parent.glob("escape*")) == []
    with pytest.raises(InverSynthError, match="plain name"):
        dataset_path(tmp_path, name)
