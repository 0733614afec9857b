"""Round metrics of the core model: the commons, wealth and GovSim's measures."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from society.model import Society

CONCURRENT_SORT_MIN = 100_000
"""From this many citizens on, the two Gini coefficients of a round are sorted on two threads at once."""


@lru_cache(maxsize=4)
def _ranks(n: int) -> np.ndarray:
    """1, 2, ..., n as float64 (read-only; the same values `np.dot` would cast integer ranks to)."""
    ranks = np.arange(1, n + 1, dtype=np.float64)
    ranks.flags.writeable = False
    return ranks


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (negatives count as 0); 0 for an empty or all-zero array."""
    x = np.maximum(np.asarray(values, dtype=np.float64), 0.0)  # a fresh array, sorted in place
    x.sort()
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    return float((2 * np.dot(_ranks(x.size), x)) / (x.size * total) - (x.size + 1) / x.size)


def gini_pair(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """`gini` of two arrays; large ones are sorted concurrently (numpy's sort releases the GIL)."""
    if max(first.size, second.size) < CONCURRENT_SORT_MIN:
        return gini(first), gini(second)
    with ThreadPoolExecutor(max_workers=1) as worker:
        pending = worker.submit(gini, second)
        return gini(first), pending.result()


def core_metrics(society: Society) -> dict[str, Any]:
    """Wealth, equality and, when there is a commons, stock, survival and GovSim's efficiency."""
    state = society.state
    wealth_gini, take_gini = gini_pair(state["wealth"], state["total_take"])
    row: dict[str, Any] = {
        "wealth_mean": float(state["wealth"].mean()),
        "wealth_gini": wealth_gini,
        "equality": 1.0 - take_gini,
        "cumulative_take": float(state["total_take"].sum()),
    }
    commons = society.commons
    if commons is not None:
        horizon_yield = society.scenario.rounds * commons.max_sustainable_yield()
        row |= {
            "stock_total": float(commons.stock.sum()),
            "stock": commons.stock.tolist(),
            "collapsed_patches": int(commons.collapsed.sum()),
            "collapsed": bool(commons.collapsed.all()),
            "survival": society.collapse_round or society.round,
            "efficiency": 1.0 - max(0.0, horizon_yield - row["cumulative_take"]) / horizon_yield,
        }
    return row
