"""Library code holds only what the engine runs: the kernels' numpy references live under tests/, not in packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("society", "norms", "institutions")
STILL_IN_LIBRARY = {
    "select_punishments_reference",
    "settle_punishments_reference",
    "charge_punishments_reference",
    "sorted_positive_reference",
}
"""References the library holds until their own moves: the punishment kernels' (they move with the punishment
section of `society.world.commons_kernels`) and `sorted_positive`'s (`society.core.metrics`). Drop each as it goes."""


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
    unexpected = {name: files for name, files in found.items() if name not in STILL_IN_LIBRARY}
    assert not unexpected, f"numpy references belong under tests/ (e.g. tests/society/references.py): {unexpected}"
    gone = STILL_IN_LIBRARY - found.keys()
    assert not gone, f"no longer in the library, drop from STILL_IN_LIBRARY: {sorted(gone)}"


def test_the_scan_finds_the_references_under_tests() -> None:
    found = reference_functions(ROOT / "tests")
    assert {"allocate_proportional_reference", "neighbor_mean_reference", "citizen_requests_reference",
            "norm_punishments_reference"} <= found.keys()
    assert found["neighbor_mean_reference"] == ["tests/society/references.py"]
