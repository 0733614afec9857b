"""Round metrics of the core model: the commons, wealth and GovSim's measures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from society.model import Society


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (negatives count as 0); 0 for an empty or all-zero array."""
    x = np.sort(np.clip(np.asarray(values, dtype=np.float64), 0.0, None))
    total = x.sum()
    if x.size == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, x.size + 1)
    return float((2 * np.dot(ranks, x)) / (x.size * total) - (x.size + 1) / x.size)


def core_metrics(society: Society) -> dict[str, Any]:
    """Wealth, equality and, when there is a commons, stock, survival and GovSim's efficiency."""
    state = society.state
    row: dict[str, Any] = {
        "wealth_mean": float(state["wealth"].mean()),
        "wealth_gini": gini(state["wealth"]),
        "equality": 1.0 - gini(state["total_take"]),
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
