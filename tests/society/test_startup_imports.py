"""Start-up stays lean: what the `society` command and a heuristic run import, each checked in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llm_backend import facade
from society.phases import PhaseRegistry

SCENARIOS = Path(__file__).parents[2] / "scenarios"

NEVER_IN_A_HEURISTIC_RUN = (
    "aiohttp", "httpx", "openai", "sqlite3", "ray", "streamlit", "dashboard", "vllm", "torch",
    "llm_backend.client", "llm_backend.cache", "llm_backend.server", "llm_backend.connection",
    "society.sweeps", "institutions", "norms", "multiprocessing.resource_tracker",
)
"""Modules a run of heuristic citizens has no use for: the LLM client and its cache, servers, the dashboard,
sweeps and Ray, the phases its schedule does not name, and the resource tracker tqdm's default lock starts."""


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (a package stands for its submodules too) `modules` holds."""
    return [name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)]


def test_the_command_imports_no_engine_until_a_run_plays() -> None:
    modules = imported_after("import society.cli")
    assert loaded(modules, ("mesa", "numba", "pandas", "pyarrow", "scipy", "society.core.model",
                            *NEVER_IN_A_HEURISTIC_RUN)) \
        == []


def test_a_heuristic_run_imports_only_what_it_plays(tmp_path: Path) -> None:
    modules = imported_after(
        "from society.cli import main\n"
        f"main(['run', {str(SCENARIOS / 'village_10k.yaml')!r}, '--out', {str(tmp_path / 'run')!r},"
        " '--set', 'rounds=1'], standalone_mode=False)"
    )
    assert {"mesa", "numba", "society.core.model", "society.phases.punish"} <= modules  # it did play
    assert loaded(modules, NEVER_IN_A_HEURISTIC_RUN) == []


def test_a_run_imports_the_phases_its_schedule_names(tmp_path: Path) -> None:
    modules = imported_after(
        "from society.cli import main\n"
        f"main(['run', {str(SCENARIOS / 'institutions_charter.yaml')!r}, '--out', {str(tmp_path / 'run')!r},"
        " '--quiet', '--set', 'rounds=1'], standalone_mode=False)"
    )
    assert "institutions" in modules and loaded(modules, ("norms", "aiohttp")) == []


def test_the_phase_registry_names_every_phase_and_imports_one_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "norms.public_goods", raising=False)
    registry = PhaseRegistry()
    assert {"harvest", "punish", "sanctions", "public_goods"} <= set(registry) and len(registry) == len(list(registry))
    assert "public_goods" in registry and "no_such_phase" not in registry
    assert "norms.public_goods" not in sys.modules
    assert registry["public_goods"].__module__ == "norms.public_goods"
    assert "norms.public_goods" in sys.modules


def test_loaded_errors_gives_only_the_classes_of_modules_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_backend.cache import CacheMiss

    monkeypatch.delitem(sys.modules, "llm_backend.weights", raising=False)
    assert facade.loaded_errors("CacheMiss", "WeightsError") == (CacheMiss,)
    assert "llm_backend.weights" not in sys.modules


DEFERRED_BY_THE_COMMAND = ("pandas.core", "scipy.spatial", "networkx", "mesa.experimental.continuous_space")
"""What Mesa's package import would load and `society run` defers (society/core/lean_mesa.py)."""


def test_a_run_leaves_what_mesa_imports_and_never_uses_unloaded(tmp_path: Path) -> None:
    def command(out: str) -> str:
        return (
            "from society.cli import main\n"
            f"main(['run', {str(SCENARIOS / 'village_10k.yaml')!r}, '--out', {str(tmp_path / out)!r},"
            " '--quiet', '--set', 'rounds=1'], standalone_mode=False)"
        )

    modules = imported_after(command("lean"))
    assert "mesa.model" in modules and "society.phases.punish" in modules  # it did play
    assert loaded(modules, DEFERRED_BY_THE_COMMAND) == []
    plain = imported_after(f"import mesa\n{command('plain')}")  # Mesa imported plainly first: nothing deferred
    assert loaded(plain, DEFERRED_BY_THE_COMMAND) == list(DEFERRED_BY_THE_COMMAND)


def test_deferred_modules_work_as_the_real_ones_once_used() -> None:
    check = """
import sys, threading
from society.core.lean_mesa import DeferredModule, import_mesa
mesa = import_mesa()
assert import_mesa() is mesa
stand_in = mesa.datacollection.pd
assert isinstance(stand_in, DeferredModule) and isinstance(mesa.space, DeferredModule)
assert "pandas" not in sys.modules and "mesa.space" not in sys.modules  # later imports are ordinary ones
classes = []
threads = [threading.Thread(target=lambda: classes.append(stand_in.DataFrame)) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
import pandas as pd
import pandas.core.frame
assert set(classes) == {pd.DataFrame} and pandas.core.frame.DataFrame is pd.DataFrame
assert pd is sys.modules["pandas"] and stand_in.__path__ == pd.__path__ and "DataFrame" in dir(stand_in)
assert stand_in.DataFrame({"a": [1, 2]}).shape == (2, 1)
from mesa.space import NetworkGrid
import mesa.experimental.devs
assert sys.modules["mesa.space"].NetworkGrid is NetworkGrid and mesa.experimental.devs.ABMSimulator
assert mesa.experimental.devs is sys.modules["mesa.experimental.devs"]
collector = mesa.DataCollector(model_reporters={"x": lambda model: 1})
assert list(collector.get_model_vars_dataframe().columns) == ["x"]
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
