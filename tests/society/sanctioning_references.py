"""Numpy references of the sanctioning kernels (`society.sanctioning`)."""

from __future__ import annotations

import numpy as np

IntArray = np.ndarray
BoolArray = np.ndarray
FloatArray = np.ndarray


def select_punishments_reference(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray]:
    """Reference for `select_punishments` (with ``probability >= 1`` it draws nothing, like the kernel)."""
    draw = probability < 1.0
    acts: list[tuple[int, int]] = []
    for i in np.flatnonzero(is_punisher):
        punished = 0
        for j in indices[indptr[i] : indptr[i + 1]]:
            if max_targets > 0 and punished == max_targets:
                break
            if j != i and violation[j] and (not draw or rng.random() < probability):
                acts.append((i, j))
                punished += 1
    pairs = np.array(acts, dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def settle_punishments_reference(
    actors: IntArray, targets: IntArray, n: int, cost: float, impact: float
) -> tuple[FloatArray, FloatArray]:
    """Reference for `settle_punishments`."""
    paid = np.zeros(n)
    received = np.zeros(n)
    np.add.at(paid, actors, cost)
    np.add.at(received, targets, impact)
    return paid, received


def charge_punishments_reference(
    paid: FloatArray, received: FloatArray, wealth: FloatArray, paid_total: FloatArray, received_total: FloatArray
) -> int:
    """Reference for `charge_punishments`."""
    wealth -= paid + received
    paid_total += paid
    received_total += received
    return int(np.count_nonzero(received))
