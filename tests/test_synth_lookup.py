"""A run's lookup: its dataset's index, or rendered from the synth when the file is not here."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from core.errors import InverSynthError
from generators.dataset import open_dataset
from generators.fm_generator import FMGenerator
from generators.sine_generator import SineGenerator
from generators.writer import DatasetCreator, DatasetPlan
from models.common.data import Split
from models.matching.lookup import DatasetLookup
from models.matching.match_sounds import open_lookup
from models.matching.synth_lookup import open_synth_lookup, synth_lookup_path


def _run(tmp_path: Path, generator: Any, *, n_examples: int, seed: int = 7) -> Any:
    """A run's record of a dataset made here: what open_lookup reads of a run."""
    path = DatasetCreator(
        generator,
        path=tmp_path / "made" / "fmtiny_data.hdf5",
        plan=DatasetPlan(n_examples=n_examples, seed=seed),
        chunk_size=64,
        progress=False,
    ).run()
    with open_dataset(path) as dataset:
        identity, parameter_set = dataset.identity, dataset.parameter_set
    return SimpleNamespace(
        run_dir=tmp_path / "runs" / "M1_fmtiny",
        generator_name=generator.name,
        generator_config=generator.config(),
        parameter_set=parameter_set,
        dataset_identity=identity,
        dataset_paths=[str(path)],
        split=Split((0.8, 0.1, 0.1), n_examples),
    )


def test_the_rendered_lookup_equals_the_index_of_the_dataset_file(tmp_path, capsys):
    generator = FMGenerator(n_samples=4096)
    run = _run(tmp_path, generator, n_examples=300)
    test_rows = run.split.indices("test")
    from_file = DatasetLookup.open(run.dataset_paths, generator=generator).without(test_rows)
    rendered, record = open_synth_lookup(
        run, generator, data_dir=tmp_path / "data", label="this run"
    )
    # The rows it trained and validated on, the test rows left out: the same index.
    assert rendered.n_examples == from_file.n_examples == 270
    np.testing.assert_array_equal(rendered.labels, from_file.labels)
    np.testing.assert_allclose(
        rendered.features.astype(np.float32), from_file.features.astype(np.float32), atol=1e-3
    )  # the same synth, the same audio: equal to float rounding
    audio = generator.render_indices(run.parameter_set.sample_indices(seed=99, n_examples=1))[0]
    np.testing.assert_array_equal(
        rendered.query(audio, k=5).labels, from_file.query(audio, k=5).labels
    )
    # It says so the first time, and is read from the data folder after.
    printed = capsys.readouterr().out
    assert "building the lookup of this run: 270 fm examples of seed 7, once, ~" in printed
    cached = synth_lookup_path(run, tmp_path / "data")
    assert cached == tmp_path / "data" / "fmtiny_data.rendered-index.npz" and cached.is_file()
    assert record.rendered and record.n_examples == 270 and record.index == str(cached)
    again, _ = open_synth_lookup(run, generator, data_dir=tmp_path / "data", label="this run")
    assert not again.built and "building" not in capsys.readouterr().out
    np.testing.assert_array_equal(again.features, rendered.features)
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary left


def test_a_run_whose_dataset_is_gone_gets_its_lookup_rendered(tmp_path, capsys):
    generator = FMGenerator(n_samples=4096)
    run = _run(tmp_path, generator, n_examples=120)
    Path(run.dataset_paths[0]).unlink()
    lookup, record, notes = open_lookup(
        run, generator, method="hybrid", exclude_rows=run.split.indices("test"),
        data_dir=tmp_path / "data",
    )  # fmt: skip
    assert lookup is not None and lookup.n_examples == 108 and not notes
    assert record is not None and record.rendered and "seed 7" in record.dataset
    assert "building the lookup of run " in capsys.readouterr().out
    # Rows to leave out that it holds are left out.
    fewer, _, _ = open_lookup(
        run, generator, method="lookup", exclude_rows=np.arange(10), data_dir=tmp_path / "data"
    )
    assert fewer is not None and fewer.n_examples == 98


def test_a_method_without_one_of_its_parts_says_so(tmp_path):
    generator = SineGenerator(sample_rate=8192, n_samples=2048, n_levels=8)
    run = _run(tmp_path, generator, n_examples=40)
    Path(run.dataset_paths[0]).unlink()
    run.dataset_identity = {k: v for k, v in run.dataset_identity.items() if k != "seed"}
    lookup, record, notes = open_lookup(run, generator, method="hybrid", data_dir=tmp_path)
    assert lookup is None and record is None
    (note,) = notes
    assert note.startswith("hybrid without a lookup: the run's dataset (fmtiny_data.hdf5)")
    assert "--lookup_dataset" in note
    with pytest.raises(InverSynthError, match="'lookup' method needs a dataset"):
        open_lookup(run, generator, method="lookup", data_dir=tmp_path)
    assert open_lookup(run, generator, method="search") == (None, None, ())


def test_the_first_use_of_a_dataset_as_a_lookup_says_so(tmp_path, capsys):
    generator = SineGenerator(sample_rate=8192, n_samples=2048, n_levels=8)
    run = _run(tmp_path, generator, n_examples=40)
    lookup, record, _ = open_lookup(run, generator, method="hybrid")
    assert lookup is not None and record is not None and not record.rendered
    assert "building the lookup index of fmtiny_data.hdf5: 40 examples, once" in (
        capsys.readouterr().out
    )
    open_lookup(run, generator, method="hybrid")
    assert "building" not in capsys.readouterr().out  # built once, stored beside the dataset
