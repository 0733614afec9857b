"""Library code holds only what the engine runs: the kernels' numpy references live under tests/, not in packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("society", "norms", "institutions")
def reference_functions(folder: Path) -> dict[str, list[str]]:
    """Every function (nested ones included) whose name ends with `_reference`, by name: the files defining it."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.endswith("_reference"):
                found.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    return found


def test_no_library_module_defines_a_reference() -> None:
    found: dict[str, list[str]] = {}
    for package in LIBRARY:
        for name, files in reference_functions(ROOT / package).items():
            found.setdefault(name, []).extend(files)
    assert not found, f"numpy references belong under tests/ (e.g. tests/society/references.py): {found}"


def test_the_scan_finds_the_references_under_tests() -> None:
    found = reference_functions(ROOT / "tests")
    assert {"allocate_proportional_reference", "neighbor_mean_reference", "citizen_requests_reference",
            "norm_punishments_reference"} <= found.keys()
    assert found["neighbor_mean_reference"] == ["tests/society/references.py"]
