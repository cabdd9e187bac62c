"""How the code is laid out: commands stand alone, and matching runs without TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = sorted(p.stem for p in (REPO / "models").glob("*.py") if p.stem != "__init__")


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_module_imports_a_command() -> None:
    commands = {f"models.{name}" for name in COMMANDS}
    assert {"models.evaluate", "models.predict", "models.demo"} <= commands
    for path in (REPO / "models").rglob("*.py"):
        wrong = _imported_modules(path) & commands
        assert not wrong, f"{path.relative_to(REPO)} imports the command(s) {sorted(wrong)}"


def test_matching_without_a_model_needs_no_tensorflow() -> None:
    # Resynthesis workers import these; TensorFlow would cost seconds and memory in each.
    script = (
        "import sys\n"
        "import models.matching.sound_metrics, models.evaluation.evaluation_folder\n"
        "import models.evaluation.resynthesis, models.common.paper, models.common.spectral\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
