"""How the code is laid out: the size rules, README's map, and the import contracts' lists.

The layering itself (commands never import commands, generators never import
``models``, matching without TensorFlow, the base importing nothing of the
project) is stated once, as import-linter contracts in ``pyproject.toml``;
these tests check what a contract cannot: that its lists name every command,
that the one path by which matching may reach TensorFlow defers it, and the
shape of the code (``benchmarks/code_shape.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from benchmarks import code_shape

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {f"models.{p.stem}" for p in (REPO / "models").glob("*.py") if p.stem != "__init__"}


def _contracts() -> list[dict[str, Any]]:
    with (REPO / "pyproject.toml").open("rb") as f:
        contracts: list[dict[str, Any]] = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_contracts_name_every_command() -> None:
    assert {"models.evaluate", "models.predict", "models.export_run"} <= COMMANDS
    independent = [c for c in _contracts() if c["type"] == "independence"]
    assert [set(c["modules"]) for c in independent] == [COMMANDS]
    kept_out = [set(c["forbidden_modules"]) for c in _contracts() if "a command" in c["name"]]
    assert kept_out == [COMMANDS]


def test_the_model_loading_path_of_matching_defers_tensorflow() -> None:
    # The contract lets matching reach TensorFlow only through the run's model
    # loading; resynthesis workers import matching, and TensorFlow at import
    # would cost each of them seconds and hundreds of MB.
    script = (
        "import sys\n"
        "import models.matching.match_sounds, models.matching.prediction, models.common.run\n"
        "import models.evaluation.resynthesis, models.common.pretrained\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'kapre')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_the_code_keeps_its_size_rules() -> None:
    code = code_shape.modules(code_shape.CODE)
    assert code_shape.duplicate_names(code) == {}
    assert code_shape.long_modules(code) == {}
    assert code_shape.long_functions(code) == {}
    assert code_shape.wide_functions(code) == {}


def test_readme_map_names_every_module() -> None:
    packages = code_shape.modules(code_shape.PACKAGES)
    assert code_shape.unmapped_modules(packages, code_shape.layout_section()) == []
