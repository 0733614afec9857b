"""Starting the Streamlit server on a runs folder (what `society dashboard` does)."""

from __future__ import annotations

import os
import signal
import socket
import sys
from pathlib import Path
from typing import NoReturn

from dashboard.ui import RUNS_DIR_ENV

APP = Path(__file__).with_name("app.py")


def streamlit_command(port: int, host: str) -> list[str]:
    """The command line that serves the app on host:port, headless, without usage statistics."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
    ]


def server_environment(runs_dir: Path) -> dict[str, str]:
    """This process's environment, with the runs folder the app reads."""
    return os.environ | {RUNS_DIR_ENV: str(runs_dir.resolve())}


def port_free(host: str, port: int) -> bool:
    """Whether a server could bind host:port now. Like the server, the probe allows address reuse, so a port whose
    last server stopped a moment ago (its connections still in TIME_WAIT) counts as free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(runs_dir: Path, port: int, host: str) -> NoReturn:
    """Replace this process with the Streamlit server, so Ctrl-C and signals reach the server itself.

    SIGTERM and SIGINT go back to the operating system's default first: a Python handler only flags a signal for
    the interpreter to act on later, so one arriving just before the exec would be lost and the server, which
    installs its own handlers only once it is up, would never stop."""
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, signal.SIG_DFL)
    command = streamlit_command(port, host)
    sys.stdout.flush()  # what was echoed before the process is replaced must not be lost in a pipe's buffer
    sys.stderr.flush()
    os.execve(command[0], command, server_environment(runs_dir))
