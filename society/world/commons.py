"""The common-pool resource: stock per patch, regrowth, collapse, shocks, diffusion and allocation."""

from __future__ import annotations

import numpy as np

from society.scenario.schema import Commons as CommonsSpec
from society.scenario.schema import DoublingRegrowth, LogisticRegrowth
from society.world import commons_kernels as kernels


class Commons:
    """Resource patches; citizens harvest from the patch they are assigned to."""

    def __init__(self, spec: CommonsSpec, patch_of_citizen: np.ndarray) -> None:
        self.spec = spec
        self.patch_of_citizen = patch_of_citizen
        self.capacity = np.full(spec.patches, spec.capacity, dtype=np.float64)
        initial = spec.capacity if spec.initial_stock is None else spec.initial_stock
        self.stock = np.full(spec.patches, initial, dtype=np.float64)
        self.collapsed = np.zeros(spec.patches, dtype=np.bool_)
        self.citizens_per_patch = np.bincount(patch_of_citizen, minlength=spec.patches)

    @property
    def num_patches(self) -> int:
        return self.spec.patches

    def sustainable_total(self) -> np.ndarray:
        """Per patch: the harvest after which one round of regrowth restores the current stock.

        Doubling (GovSim): half the stock, in whole units. Logistic s' = u + r u (1 - u/K): S - u* where u* is
        the smallest remainder that regrows back to S. Collapsed patches: 0.
        """
        stock, capacity = np.minimum(self.stock, self.capacity), self.capacity
        regrowth = self.spec.regrowth
        if isinstance(regrowth, DoublingRegrowth):
            total = np.floor(np.floor(stock) / 2)
        else:
            r = regrowth.rate
            remainder = capacity * ((1 + r) - np.sqrt((1 + r) ** 2 - 4 * r * stock / capacity)) / (2 * r)
            total = np.maximum(stock - remainder, 0.0)
        return np.where(self.collapsed, 0.0, total)

    def fair_share(self) -> np.ndarray:
        """Per citizen: their patch's sustainable total split equally among the patch's citizens.

        With doubling regrowth this is GovSim's (stock // 2) // n in whole units.
        """
        per_patch = self.sustainable_total() / np.maximum(self.citizens_per_patch, 1)
        if isinstance(self.spec.regrowth, DoublingRegrowth):
            per_patch = np.floor(per_patch)
        return per_patch[self.patch_of_citizen]

    def max_sustainable_yield(self) -> float:
        """Largest harvest per round the whole commons can sustain (GovSim: capacity / 2 per patch)."""
        regrowth = self.spec.regrowth
        if isinstance(regrowth, LogisticRegrowth):
            return float(np.sum(regrowth.rate * self.capacity / 4))
        return float(np.sum(self.capacity / 2))

    def allocate(self, requests: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Grant requests from each patch's stock (rationing when demand exceeds it) and take them out."""
        stock = np.where(self.collapsed, 0.0, self.stock)
        if self.spec.allocation == "random_units":
            granted = kernels.allocate_random_units(requests, self.patch_of_citizen, stock, rng)
        else:
            granted = kernels.allocate_proportional(requests, self.patch_of_citizen, stock)
        taken = kernels.patch_totals(self.patch_of_citizen, granted, self.num_patches)
        self.stock = np.maximum(self.stock - taken, 0.0)
        return granted

    def end_of_round(self, rng: np.random.Generator) -> np.ndarray:
        """Collapse check, regrowth, random shocks, then diffusion between patches; returns the shock mask."""
        spec = self.spec
        self.stock, self.collapsed = kernels.mark_collapse(self.stock, spec.collapse_threshold, self.collapsed)
        if isinstance(spec.regrowth, LogisticRegrowth):
            self.stock = kernels.regrow_logistic(self.stock, self.capacity, spec.regrowth.rate)
        else:
            self.stock = kernels.regrow_doubling(self.stock, self.capacity)
        hit = np.zeros(self.num_patches, dtype=np.bool_)
        if spec.shocks.probability > 0:
            self.stock, hit = kernels.apply_shocks(self.stock, spec.shocks.probability, spec.shocks.severity, rng)
        if spec.diffusion > 0 and self.num_patches > 1:
            self.stock = kernels.diffuse_ring(self.stock, spec.diffusion)
        self.stock[self.collapsed] = 0.0
        return hit

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"stock": self.stock.copy(), "collapsed": self.collapsed.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.stock = state["stock"].copy()
        self.collapsed = state["collapsed"].copy()
