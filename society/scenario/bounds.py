"""Upper bounds on the numbers a scenario may hold: far above any study's values, far below kernel overflow.

Floats are also refused when NaN or infinite (`allow_inf_nan=False` on every scenario section and phase `Params`).
With at most MAX_CITIZENS citizens, MAX_ROUNDS rounds and every amount at most MAX_AMOUNT, a sum over all citizens
and rounds stays below 1e22, and an amount times a factor or weight (at most MAX_FACTOR) times another below 1e30:
float64 overflows near 1e308, so kernel arithmetic stays finite and far from losing all precision. Whole-unit
counts summed over citizens (random_units allocation, in int64) stay below 1e18, under int64's 9.2e18.
"""

MAX_CITIZENS = 10_000_000
"""Population size; also the most of anything counted in citizens (politicians, neighbours, targets, jurors)."""

MAX_ROUNDS = 1_000_000
"""Rounds of a run; also the most of anything counted in rounds (terms, periods, memory)."""

MAX_AMOUNT = 1e9
"""Stocks, capacities, wealth, endowments, fines, costs, impacts, taxes paid: anything counted in units."""

MAX_FACTOR = 1e6
"""Multipliers, weights, ratios, tolerances, spreads and returns: anything a unit amount is multiplied by."""

MAX_NOISE = 10.0
"""The sd of the multiplicative noise on a heuristic citizen's request."""

MAX_UNITS = 100_000_000
"""Units of stock (capacity times patches) under random_units allocation, which hands out one unit at a time."""

MAX_SEED = 2**63 - 1
"""The random seed (a non-negative 64-bit integer)."""

MAX_SECONDS = 1e7
"""Time limits (about four months)."""
