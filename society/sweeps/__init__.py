"""Sweeps: a grid of scenarios (axes of values times seeds) played as ordinary runs into one folder."""

from society.sweeps.executors import ExecutorError, LocalExecutor, RayExecutor, SerialExecutor, make_executor
from society.sweeps.grid import Cell, SweepSpec, load_grid
from society.sweeps.llm import SweepLLMError
from society.sweeps.sweep import SweepFolderError, SweepReport, read_sweep, run_sweep

__all__ = [
    "Cell",
    "ExecutorError",
    "LocalExecutor",
    "RayExecutor",
    "SerialExecutor",
    "SweepFolderError",
    "SweepLLMError",
    "SweepReport",
    "SweepSpec",
    "load_grid",
    "make_executor",
    "read_sweep",
    "run_sweep",
]
