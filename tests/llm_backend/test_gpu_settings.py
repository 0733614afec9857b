"""GPU settings are chosen only where CUDA is present; tested by composing the server's command, not a fake GPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_backend.facade import hardware_config
from llm_backend.server import server_command, server_env, visible_gpus


def flags(command: list[str]) -> dict[str, str | None]:
    """The command's --options, each with its value (None for a bare flag)."""
    found: dict[str, str | None] = {}
    for k, word in enumerate(command):
        if word.startswith("--"):
            following = command[k + 1] if k + 1 < len(command) else None
            found[word] = None if following is None or following.startswith("--") else following
    return found


def test_two_gpus_compose_the_cuda_settings(tmp_path: Path) -> None:
    config = hardware_config(tmp_path, "big-model", gpus=2, concurrency=1024, port=8000)
    options = flags(server_command(config, 8000))
    assert options["--tensor-parallel-size"] == "2" and options["--gpu-memory-utilization"] == "0.9"
    assert options["--dtype"] == "auto" and options["--max-num-seqs"] == "1024"
    assert options["--served-model-name"] == "big-model" and options["--model"] == str(tmp_path)
    for cpu_only in ("--kv-cache-memory-bytes", "--enforce-eager", "--block-size"):
        assert cpu_only not in options
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in server_env(config).keys() - os.environ.keys()


def test_no_gpu_composes_the_cpu_defaults(tmp_path: Path) -> None:
    config = hardware_config(tmp_path, "smol", gpus=0, concurrency=1024)
    options = flags(server_command(config, 8000))
    assert "--tensor-parallel-size" not in options and "--gpu-memory-utilization" not in options
    assert options["--max-num-seqs"] == "256"  # the CPU batch measured best on 2 cores
    assert "--kv-cache-memory-bytes" in options and "--enforce-eager" in options and options["--block-size"] == "32"
    assert server_env(config)["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_the_settings_follow_what_cuda_sees(tmp_path: Path) -> None:
    import torch

    gpus = visible_gpus()
    assert gpus == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    command = server_command(hardware_config(tmp_path, "m", gpus, concurrency=256), 8000)
    assert ("--tensor-parallel-size" in command) == (gpus > 0) and ("--kv-cache-memory-bytes" in command) == (gpus == 0)


def test_hidden_gpus_are_not_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == 0


def test_an_interpreter_without_torch_sees_no_gpu(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -I -S -c 'import sys; sys.exit(1)'\n")
    python.chmod(0o755)
    assert visible_gpus(str(python)) == 0


def test_the_gpu_check_script_says_plainly_when_there_is_no_gpu(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.sh"
    hidden = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU visible, whatever the machine has
    done = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, timeout=300,
                          env=hidden)
    assert done.returncode != 0 and "no CUDA GPU is visible" in done.stderr
    assert not (tmp_path / "out").exists()  # nothing was run
