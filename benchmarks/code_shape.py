"""The shape of the code: the size rules, duplicate module names and README's map, counted.

The project's rules: no module over :data:`MAX_MODULE_LINES` lines, no function
over :data:`MAX_FUNCTION_LINES`, none with more than :data:`MAX_PARAMETERS`
parameters (a frozen dataclass carries more), no two modules of one file name
(the parallel parts of the synth packages aside, :data:`PARALLEL_PACKAGES`),
and every module named in README's layout section. ``tests/test_layout.py``
enforces them with these functions; this prints the counts, and the imports
made inside functions (each should defer a heavy import).

    python -m benchmarks.code_shape            # the counts
    python -m benchmarks.code_shape --list     # and every offender
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "generators", "models", "benchmarks")
CODE = (*PACKAGES, "tests")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
MAX_PARAMETERS = 8
# Synth packages built to the same plan: their modules may share names with each other.
PARALLEL_PACKAGES = ("generators/vst", "generators/dexed")
LAYOUT_HEADING = "## How the code is laid out"

__all__ = [
    "duplicate_names",
    "imports_in_functions",
    "long_functions",
    "long_modules",
    "modules",
    "unmapped_modules",
    "wide_functions",
]


def modules(roots: Sequence[str] = CODE) -> list[Path]:
    """Every ``.py`` file under ``roots``, relative to the repository, sorted."""
    found: list[Path] = []
    for root in roots:
        found += (
            p.relative_to(REPO) for p in (REPO / root).rglob("*.py") if ".venv" not in p.parts
        )
    return sorted(found)


def _functions(path: Path) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(ast.parse((REPO / path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def duplicate_names(paths: Sequence[Path]) -> dict[str, list[str]]:
    """File names held by more than one module (``__init__``/``__main__`` and parallel parts aside)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        if path.name in ("__init__.py", "__main__.py", "conftest.py"):
            continue
        by_name[path.name].append(path.as_posix())
    duplicates = {}
    for name, places in by_name.items():
        folders = {str(Path(p).parent) for p in places}
        if len(places) > 1 and not folders <= set(PARALLEL_PACKAGES):
            duplicates[name] = places
    return duplicates


def long_modules(paths: Sequence[Path]) -> dict[str, int]:
    """Modules over :data:`MAX_MODULE_LINES` lines, with their length."""
    lengths = {
        p.as_posix(): len((REPO / p).read_text(encoding="utf-8").splitlines()) for p in paths
    }
    return {p: n for p, n in lengths.items() if n > MAX_MODULE_LINES}


def long_functions(paths: Sequence[Path]) -> dict[str, int]:
    """Functions over :data:`MAX_FUNCTION_LINES` lines (``path:line name``), with their length."""
    out = {}
    for path in paths:
        for node in _functions(path):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out[f"{path.as_posix()}:{node.lineno} {node.name}"] = length
    return out


def wide_functions(paths: Sequence[Path]) -> dict[str, int]:
    """Functions with more than :data:`MAX_PARAMETERS` parameters (``self``/``cls`` aside)."""
    out = {}
    for path in paths:
        for node in _functions(path):
            a = node.args
            names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
            n = len([x for x in names if x not in ("self", "cls")])
            if n > MAX_PARAMETERS:
                out[f"{path.as_posix()}:{node.lineno} {node.name}"] = n
    return out


def imports_in_functions(paths: Sequence[Path]) -> dict[str, list[str]]:
    """The modules imported inside functions, per ``path:line function``."""
    out: dict[str, list[str]] = {}
    for path in paths:
        for node in _functions(path):
            names = []
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import):
                    names += [alias.name for alias in inner.names]
                elif isinstance(inner, ast.ImportFrom):
                    names.append("." * inner.level + (inner.module or ""))
            if names:
                out[f"{path.as_posix()}:{node.lineno} {node.name}"] = names
    return out


def layout_section(readme: Path = REPO / "README.md") -> str:
    """README's layout section: from its heading to the next heading of its level."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(LAYOUT_HEADING)
    end = text.find("\n## ", start + len(LAYOUT_HEADING))
    return text[start : end if end >= 0 else len(text)]


def unmapped_modules(paths: Sequence[Path], section: str) -> list[str]:
    """Modules whose file name (stem) the layout section does not mention as a word."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", section))
    return [
        p.as_posix()
        for p in paths
        if p.name not in ("__init__.py", "__main__.py") and p.stem not in words
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.code_shape", description=__doc__)
    parser.add_argument("--list", action="store_true", help="name every offender")
    args = parser.parse_args(argv)
    code = modules(CODE)
    inside = imports_in_functions(code)
    print(f"modules: {len(code)}")
    counts: dict[str, dict[str, object]] = {
        "duplicate module names": dict(duplicate_names(code)),
        f"modules over {MAX_MODULE_LINES} lines": dict(long_modules(code)),
        f"functions over {MAX_FUNCTION_LINES} lines": dict(long_functions(code)),
        f"functions with more than {MAX_PARAMETERS} parameters": dict(wide_functions(code)),
        "modules missing from README's map": dict.fromkeys(
            unmapped_modules(modules(PACKAGES), layout_section()), ""
        ),
    }
    for label, offenders in counts.items():
        print(f"{label}: {len(offenders)}")
        for key, value in offenders.items() if args.list else ():
            print(f"    {key}  {value}")
    for area in CODE:
        found = {k: v for k, v in inside.items() if k.startswith(area + "/")}
        n = sum(len(v) for v in found.values())
        print(f"imports inside functions in {area}/: {n} (in {len(found)} functions)")
        for key, value in found.items() if args.list else ():
            print(f"    {key}  {value}")


if __name__ == "__main__":
    main()
