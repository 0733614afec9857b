"""The benchmark's rules written as a straightforward Mesa 3.3 model: a Python `step` per agent driven by `shuffle_do`.

This is the yardstick the array engine is compared against (bench/bench_engine.py). It is written the way a Mesa
user would write it -- `mesa.Agent` subclasses with plain Python methods, `model.agents.shuffle_do(...)` for each
stage, Python loops over neighbours -- neither deliberately slow nor vectorised.

    python bench/mesa_baseline.py --n 10000 --rounds 5

Rules (one round = harvest, regrowth, punishment, in that order):

* Commons: P = max(1, n // 1000) patches; citizen i is on patch i * P // n (contiguous
  blocks, as the engine's `assignment: block`).
  A patch with m citizens has capacity K = 100 * max(m, 1), starts at stock K / 2, regrows logistically at
  r = 0.5 and collapses for good (stock 0) when its stock is below 0.01 * K after the harvest.
* Fair share: the sustainable total harvest of a patch with stock S is S - u with
  u = K * ((1 + r) - sqrt((1 + r)**2 - 4 r S / K)) / (2 r) (the stock that logistic regrowth brings back to S);
  0 on a collapsed patch. Each citizen's fair share f is that total divided by the citizens on its patch, computed
  at the start of the harvest stage.
* Policies, assigned at random: 50% sustainable (ask f), 30% conditional (ask f times the mean `last_ratio` of
  its neighbours, 1 for an isolated citizen), 20% greedy (ask 2 f). Every request is then multiplied by
  (1 + 0.1 * model.rng.normal()) and clipped at 0.
* Harvest: each agent's `step` records its request; the model then allocates per patch -- everyone gets their
  request if the patch's demand fits its stock, else request * stock / demand. last_ratio = granted / f (1 when
  f = 0); wealth += granted.
* Regrowth (model, per patch): a patch under its collapse threshold collapses (stock 0 for ever), else
  s + r s (1 - s / K), capped at K.
* Punishment: every sustainable or conditional citizen punishes each neighbour whose granted harvest this round
  exceeds 1.5 times that neighbour's fair share: punisher wealth -= 1, target wealth -= 3.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import mesa
import networkx as nx
import numpy as np

RATE = 0.5
CAPACITY_PER_CITIZEN = 100.0
COLLAPSE_FRACTION = 0.01
NOISE = 0.1
GREEDY_FACTOR = 2.0
PUNISH_THRESHOLD = 1.5
PUNISH_COST = 1.0
PUNISH_FINE = 3.0
POLICY_FRACTIONS = (("sustainable", 0.5), ("conditional", 0.3), ("greedy", 0.2))


class Patch:
    """One patch of the commons, managed by the model (patches are not agents: they do not step)."""

    def __init__(self, index: int, members: list[Citizen], rate: float) -> None:
        self.index = index
        self.members = members
        self.capacity = CAPACITY_PER_CITIZEN * max(1, len(members))
        self.stock = self.capacity / 2
        self.rate = rate
        self.threshold = COLLAPSE_FRACTION * self.capacity
        self.collapsed = False
        self.fair_share = 0.0

    def sustainable_total(self) -> float:
        """The harvest after which logistic regrowth brings the stock back to where it is now."""
        if self.collapsed:
            return 0.0
        K, r, S = self.capacity, self.rate, self.stock
        disc = max(0.0, (1 + r) ** 2 - 4 * r * S / K)
        u = K * ((1 + r) - math.sqrt(disc)) / (2 * r)
        return max(0.0, S - u)

    def update_fair_share(self) -> None:
        self.fair_share = self.sustainable_total() / len(self.members) if self.members else 0.0

    def allocate(self) -> float:
        """Grant this round's requests proportionally; return the total granted."""
        demand = 0.0
        for citizen in self.members:
            demand += citizen.request
        scale = 1.0 if demand <= self.stock else self.stock / demand
        f = self.fair_share
        total = 0.0
        for citizen in self.members:
            granted = citizen.request * scale
            citizen.granted = granted
            citizen.wealth += granted
            citizen.last_ratio = granted / f if f > 0 else 1.0
            total += granted
        self.stock = max(0.0, self.stock - total)
        return total

    def regrow(self) -> None:
        if self.collapsed:
            return
        if self.stock < self.threshold:
            self.collapsed = True
            self.stock = 0.0
            return
        s = self.stock
        self.stock = min(self.capacity, s + self.rate * s * (1 - s / self.capacity))


class Citizen(mesa.Agent):
    """A citizen with a fixed harvesting policy, a patch and a list of neighbouring citizens."""

    def __init__(self, model: CommonsModel, policy: str, patch_index: int) -> None:
        super().__init__(model)
        self.policy = policy
        self.patch_index = patch_index
        self.patch: Patch | None = None
        self.neighbors: list[Citizen] = []
        self.wealth = 0.0
        self.last_ratio = 1.0
        self.fair_share = 0.0
        self.request = 0.0
        self.granted = 0.0

    def harvest(self) -> None:
        """Decide this round's request (the model allocates once everybody has asked)."""
        f = self.patch.fair_share
        self.fair_share = f
        if self.policy == "sustainable":
            request = f
        elif self.policy == "conditional":
            if self.neighbors:
                total = 0.0
                for other in self.neighbors:
                    total += other.last_ratio
                request = f * (total / len(self.neighbors))
            else:
                request = f
        else:  # greedy
            request = GREEDY_FACTOR * f
        request *= 1 + NOISE * self.model.rng.normal()
        self.request = max(0.0, request)

    def punish(self) -> None:
        """Sustainable and conditional citizens fine every neighbour who took too much this round."""
        if self.policy == "greedy":
            return
        for other in self.neighbors:
            if other.granted > PUNISH_THRESHOLD * other.fair_share:
                self.wealth -= PUNISH_COST
                other.wealth -= PUNISH_FINE
                self.model.punishments_this_round += 1


class CommonsModel(mesa.Model):
    """The commons game: harvest (agents ask, model allocates), regrowth (model), punishment (agents)."""

    def __init__(self, n: int, seed: int, neighbors: list[np.ndarray] | None = None) -> None:
        super().__init__(rng=seed)
        self.num_patches = max(1, n // 1000)

        # Policies in exact proportions, shuffled; patches in contiguous blocks of citizens.
        policies: list[str] = []
        for name, fraction in POLICY_FRACTIONS[:-1]:
            policies += [name] * int(round(fraction * n))
        policies += [POLICY_FRACTIONS[-1][0]] * (n - len(policies))
        self.rng.shuffle(policies)
        patch_of = [i * self.num_patches // n for i in range(n)]

        self.citizens = [Citizen(self, policies[i], int(patch_of[i])) for i in range(n)]

        members: list[list[Citizen]] = [[] for _ in range(self.num_patches)]
        for citizen in self.citizens:
            members[citizen.patch_index].append(citizen)
        self.patches = [Patch(i, members[i], RATE) for i in range(self.num_patches)]
        for citizen in self.citizens:
            citizen.patch = self.patches[citizen.patch_index]

        if neighbors is None:
            graph = nx.watts_strogatz_graph(n, 10, 0.1, seed=seed)
            for i, citizen in enumerate(self.citizens):
                citizen.neighbors = [self.citizens[j] for j in graph.neighbors(i)]
            del graph
        else:
            for i, citizen in enumerate(self.citizens):
                citizen.neighbors = [self.citizens[int(j)] for j in neighbors[i]]

        self.punishments_this_round = 0
        self.punishments = 0
        self.total_harvest = 0.0
        self.harvest_this_round = 0.0

    def step(self) -> None:
        # Harvest: fair shares first, then every agent asks, then each patch shares out its stock.
        for patch in self.patches:
            patch.update_fair_share()
        self.agents.shuffle_do("harvest")
        self.harvest_this_round = 0.0
        for patch in self.patches:
            self.harvest_this_round += patch.allocate()
        self.total_harvest += self.harvest_this_round

        # Regrowth, per patch.
        for patch in self.patches:
            patch.regrow()

        # Punishment.
        self.punishments_this_round = 0
        self.agents.shuffle_do("punish")
        self.punishments += self.punishments_this_round

    def total_stock(self) -> float:
        return sum(patch.stock for patch in self.patches)


def round_totals(model: CommonsModel) -> dict[str, float]:
    """The round just played, in the engine's `rounds`-table terms (for checking both play the same rules)."""
    return {
        "total_harvest": model.harvest_this_round,
        "punishments": model.punishments_this_round,
        "stock_total": model.total_stock(),
        "collapsed_patches": sum(patch.collapsed for patch in model.patches),
    }


def run_mesa_baseline(n: int, rounds: int, seed: int, neighbors: list[np.ndarray] | None = None) -> dict:
    """Build the plain-Mesa model (untimed), run `rounds` rounds (timed) and report throughput and totals.

    `rounds_played` holds every round's totals; reading them after each step costs a pass over the patches.
    """
    started = time.perf_counter()
    model = CommonsModel(n, seed, neighbors)
    setup = time.perf_counter() - started

    rounds_played = []
    seconds = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        model.step()
        seconds += time.perf_counter() - started
        rounds_played.append(round_totals(model))

    return {
        "n": n,
        "rounds": rounds,
        "seed": seed,
        "patches": model.num_patches,
        "setup_seconds": setup,
        "seconds": seconds,
        "seconds_per_round": seconds / rounds if rounds else 0.0,
        "citizen_rounds_per_s": n * rounds / seconds if seconds > 0 else float("inf"),
        "final_total_stock": model.total_stock(),
        "collapsed_patches": sum(patch.collapsed for patch in model.patches),
        "total_harvest": model.total_harvest,
        "punishments": model.punishments,
        "punishments_last_round": model.punishments_this_round,
        "mean_wealth": sum(c.wealth for c in model.citizens) / n if n else 0.0,
        "rounds_played": rounds_played,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run_mesa_baseline(args.n, args.rounds, args.seed), indent=2))


if __name__ == "__main__":
    main()
