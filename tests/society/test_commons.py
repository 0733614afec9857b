"""The Commons: sustainable shares restore the stock, MSY, allocation bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from society.scenario.schema import Commons as CommonsSpec
from society.world import commons_kernels as kernels
from society.world.commons import Commons


@pytest.mark.parametrize("rate", [0.2, 0.5, 1.0, 1.8])
@pytest.mark.parametrize("stock", [50.0, 300.0, 640.0, 999.0])
def test_logistic_sustainable_harvest_is_restored_by_one_regrowth(rate: float, stock: float) -> None:
    spec = CommonsSpec(capacity=1000, initial_stock=stock, regrowth={"kind": "logistic", "rate": rate})
    commons = Commons(spec, np.zeros(4, dtype=np.int64))
    harvest = commons.sustainable_total()
    assert 0 <= harvest[0] <= stock
    regrown = kernels.regrow_logistic(commons.stock - harvest, commons.capacity, rate)
    assert regrown[0] == pytest.approx(stock, rel=1e-9)
    more = kernels.regrow_logistic(commons.stock - harvest * 1.05, commons.capacity, rate)
    assert more[0] < stock


def test_doubling_share_is_govsims_whole_units() -> None:
    spec = CommonsSpec(capacity=100, initial_stock=87, regrowth={"kind": "doubling"})
    commons = Commons(spec, np.zeros(5, dtype=np.int64))
    assert commons.fair_share().tolist() == [(87 // 2) // 5] * 5
    assert commons.max_sustainable_yield() == 50


def test_patches_have_their_own_shares_and_collapsed_patches_none() -> None:
    spec = CommonsSpec(patches=2, capacity=100, initial_stock=100, regrowth={"kind": "doubling"})
    commons = Commons(spec, np.array([0, 0, 1, 1, 1], dtype=np.int64))
    np.testing.assert_array_equal(commons.fair_share(), [25, 25, 16, 16, 16])
    commons.collapsed[1] = True
    np.testing.assert_array_equal(commons.fair_share(), [25, 25, 0, 0, 0])


def test_allocation_takes_exactly_what_it_grants() -> None:
    spec = CommonsSpec(patches=2, capacity=100, initial_stock=60, allocation="random_units")
    commons = Commons(spec, np.array([0, 0, 1, 1], dtype=np.int64))
    granted = commons.allocate(np.array([50.0, 40.0, 10.0, 5.0]), np.random.default_rng(0))
    assert granted[:2].sum() == 60 and granted[2:].tolist() == [10.0, 5.0]
    np.testing.assert_array_equal(commons.stock, [0.0, 45.0])
