"""What tests share across files: a clean environment, dexed-py (the extra), the shipped model's lookup."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import environment


@pytest.fixture
def no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The test runs in its own folder, without the INVERSYNTH_* variables of the environment."""
    monkeypatch.chdir(tmp_path)  # no .env of the repository leaks in
    for key in [k for k in os.environ if k.startswith("INVERSYNTH_")]:
        monkeypatch.delenv(key)
    environment._dotenv.cache_clear()
    yield
    environment._dotenv.cache_clear()


@pytest.fixture(scope="session")
def extra() -> Any:
    """The ``dexed`` module of the extra: a skip without it, a failure under CI (which installs it)."""
    try:
        import dexed
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"dexed-py not installed ({exc}): CI installs the extra")
        pytest.skip(f"dexed-py not installed ({exc}): uv sync --extra dexed")
    return dexed


@pytest.fixture(scope="session")
def shipped_lookup_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A data folder holding the shipped model's rendered lookup (19,000 FM examples).

    Tests that match with the shipped model point ``INVERSYNTH_DATASET_DIRECTORY`` here,
    never at the repository's ``data/``. Rendered once for the whole session: the
    parallel workers share the folder, the first to come renders it under a lock.
    """
    from generators.sound_generator import load_generator
    from models.common.pretrained import PRETRAINED_FM_RUN
    from models.common.run import RunInfo
    from models.matching.synth_lookup import open_synth_lookup

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each worker has a folder of its own under one shared root
        root = root.parent
    folder = root / "shipped-lookup"
    folder.mkdir(exist_ok=True)
    with open(root / "shipped-lookup.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = RunInfo.load(PRETRAINED_FM_RUN)
        with load_generator(info.generator_name, info.generator_config) as synth:
            open_synth_lookup(
                info, synth, data_dir=folder, label="the shipped model", progress=False
            )
    return folder
