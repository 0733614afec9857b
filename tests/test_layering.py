"""Dependencies run one way: extensions build on `society`, `society` on `llm_backend`, `llm_backend` on nothing of ours.

Every import statement of every module is read (top level, inside functions and under TYPE_CHECKING alike).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("society", "institutions", "norms", "dashboard", "llm_backend")
MAY_NOT_IMPORT = {
    "society": {"institutions", "norms", "dashboard"},
    "llm_backend": {"society", "institutions", "norms", "dashboard"},
    "institutions": {"dashboard"},
    "norms": {"dashboard"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(MAY_NOT_IMPORT))
def test_no_module_imports_against_the_layering(package: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & MAY_NOT_IMPORT[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {module: names for module, names in wrong.items() if names} == {}


def test_the_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from dashboard.server import serve\n    import norms.kernels\n")
    assert imported_packages(module) == {"dashboard", "norms"}


def backend_modules(path: Path) -> set[str]:
    """The `llm_backend` modules a module imports, by full name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "llm_backend"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "llm_backend":
                found |= {f"llm_backend.{alias.name}" for alias in node.names}
            elif node.module.startswith("llm_backend."):
                found.add(node.module)
    return found


def test_society_reaches_the_backend_only_through_its_facade() -> None:
    reached = {str(path.relative_to(ROOT)): sorted(backend_modules(path) - {"llm_backend.facade"})
               for path in sorted((ROOT / "society").rglob("*.py"))}
    assert {module: names for module, names in reached.items() if names} == {}
