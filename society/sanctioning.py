"""Sanctioning: one module for every kind of punishment — finding acts, asking LLM punishers whom they punish,
and settling what acts cost the punisher and take from the punished.

The peer punishment, norm punishment and sanctions phases differ only in who may punish whom (their rules);
they share everything here. Kernels follow the conventions of `society.world.commons_kernels`; their numpy
references live with the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.typing import NDArray

from society.core.kernel_threads import kernel_threads
from society.phases.deciding import Decided, Fallback, Question
from society.phases.decisions import MAX_PUNISH_TARGETS, PunishByPlaceDecision, PunishDecision

if TYPE_CHECKING:
    from society.core.model import Society
    from society.core.state import CitizenState

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
NO_ACTS: tuple[IntArray, IntArray] = (np.zeros(0, np.int64), np.zeros(0, np.int64))


# ---- settling -------------------------------------------------------------------------------------------------


def settle(
    society: Society,
    phase: str,
    kind: str,
    actors: IntArray,
    targets: IntArray,
    cost: float,
    impact: float,
    detail: list[str | None] | None = None,
) -> int:
    """Charge a round's acts (each costs its actor `cost`, takes `impact` from its target), record them as events
    of `kind`, and return how many citizens were punished."""
    state = society.state
    punished = 0
    if actors.size:
        paid, received = settle_punishments(actors, targets, society.num_citizens, cost, impact)
        punished = charge_punishments(paid, received, state["wealth"], state["punish_paid"], state["punish_received"])
    society.record_events(phase, kind, actors, targets, cost=cost, impact=impact, detail=detail)
    return punished


# ---- memory ----------------------------------------------------------------------------------------------------


def punishment_memory(state: CitizenState, citizens: np.ndarray) -> list[str]:
    """What punishment cost each citizen this round and what it spent punishing ("" when neither), to remember.

    Every punishing phase adds to the same `punish_received` and `punish_paid` columns and gives this fragment
    under the key "punishment", so a citizen's line says it once however many phases punish.
    """
    fragments = []
    for received, paid in zip(state["punish_received"][citizens], state["punish_paid"][citizens]):
        said = [f"Neighbours' punishment cost you {received:.1f}."] if received > 0 else []
        said += [f"You spent {paid:.1f} punishing."] if paid > 0 else []
        fragments.append(" ".join(said))
    return fragments


# ---- LLM punishers ---------------------------------------------------------------------------------------------


def most_targets(max_targets: int) -> int:
    """The most acts an LLM punisher may choose: the phase's cap (0: none) within what a decision can list."""
    return min(max_targets or MAX_PUNISH_TARGETS, MAX_PUNISH_TARGETS)


def offered(punishers: IntArray, offenders_of: Callable[[int], IntArray]) -> tuple[list[int], list[IntArray]]:
    """The LLM punishers with someone to punish, and whom each is offered: `offenders_of(citizen)`, worst first,
    at most what a decision can list."""
    askers, candidates = [], []
    for citizen in punishers.tolist():
        offenders = offenders_of(citizen)
        if offenders.size:
            askers.append(citizen)
            candidates.append(offenders[:MAX_PUNISH_TARGETS])
    return askers, candidates


def by_place(society: Society) -> bool:
    """Whether prompts name offenders by their place in the list rather than their number: so under cohorts,
    where punishers whose lists read alike (after coarsening) share one request."""
    return society.llm is not None and society.scenario.llm.cohorts.enabled


def offender_names(offered: IntArray, places: bool) -> list[str]:
    """How a prompt names each offered offender: "citizen N", or "neighbour K" for the K-th in the list."""
    if places:
        return [f"neighbour {place}" for place in range(1, offered.size + 1)]
    return [f"citizen {int(citizen)}" for citizen in offered.tolist()]


def target_question(
    askers: Sequence[int], candidates: Sequence[IntArray], observations: Sequence[str], most: int,
    places: bool = False,
) -> Question:
    """Ask each LLM punisher whom among its candidates it punishes (its answer's choices narrowed to them, by
    number, or by place in its list with `places`)."""
    schemas = [
        {"punish": {"type": "array", "items": {"type": "integer", "enum": _choices(offered, places)},
                    "maxItems": most}}
        for offered in candidates
    ]
    decision = PunishByPlaceDecision if places else PunishDecision
    return Question(np.array(askers, dtype=np.int64), observations, decision, schemas)


def _choices(offered: IntArray, places: bool) -> list[int]:
    return list(range(1, offered.size + 1)) if places else offered.tolist()


def chosen_targets(answer: list[int], offered: IntArray, most: int, places: bool = False) -> list[int]:
    """The distinct offered citizens an answer names (by number, or by place with `places`), in its order, at
    most `most`."""
    if places:
        answer = [int(offered[place - 1]) for place in answer if 1 <= place <= offered.size]
    allowed = set(offered.tolist())
    return [t for t in dict.fromkeys(answer) if t in allowed][:most]


def chosen_acts(
    decided: Decided, candidates: Sequence[IntArray], most: int, places: bool = False
) -> tuple[IntArray, IntArray]:
    """The acts the asked LLM punishers chose (none for a failed answer), in the order they were asked."""
    actors: list[int] = []
    targets: list[int] = []
    for citizen, offered, answer in zip(decided.asked.tolist(), candidates, decided.answers):
        if answer is not None:
            chosen = chosen_targets(answer.punish, offered, most, places)
            actors += [citizen] * len(chosen)
            targets += chosen
    return np.array(actors, dtype=np.int64), np.array(targets, dtype=np.int64)


NOBODY: Fallback[tuple[IntArray, IntArray]] = Fallback("nobody", lambda failed: NO_ACTS)
"""The fallback that punishes nobody."""


# ---- kernels: who punishes whom, and what it costs --------------------------------------------------------------


BY_TARGET_MAX_CITIZENS = 65_536
"""Largest population whose punishments are found from the violators' side. Its writes go to scattered
punishers' slots: measured in the benchmark's rounds (a quarter of citizens violating), 1.4-1.9x as fast as the
scan at 10,000 and 100,000 citizens in isolation but no faster inside a round at 100,000, and 2x slower at
1,000,000, where those writes miss the cache."""


class ScanSpace:
    """The arrays a punishment scan writes into, kept from round to round (a phase owns one).

    The scan needs room for every punisher edge, several times the acts it finds. Fresh arrays of that size each
    round cost page faults, and where numpy asks the kernel for huge pages, its compaction: punishment rounds of
    7-16 ms instead of 2 at 100,000 citizens in some processes. Copying the acts out costs a fraction of that.
    The room is 16 bytes per punisher edge, held as long as the phase: about 110 MB at 1,000,000 citizens with
    ten neighbours each, where every round used to allocate it afresh.
    """

    def __init__(self) -> None:
        self.actors = np.empty(0, np.int64)
        self.targets = np.empty(0, np.int64)

    def room(self, size: int) -> tuple[IntArray, IntArray]:
        """Arrays of at least `size` entries (grown when too small)."""
        if self.actors.size < size:
            self.actors, self.targets = np.empty(size, np.int64), np.empty(size, np.int64)
        return self.actors, self.targets


def select_punishments(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
    undirected: bool = False,
    space: ScanSpace | None = None,
) -> tuple[IntArray, IntArray]:
    """Punishers, in index order, punish each violating neighbour (CSR order) with `probability`, up to `max_targets`.

    Returns (actors, targets), sorted by actor and then in CSR order. Self-loops are never punished and a punisher
    stops once it has `max_targets` targets (``max_targets <= 0``: no limit).

    With ``probability >= 1`` every such neighbour is punished and no random numbers are drawn: `rng` is left
    untouched. Otherwise one ``rng.random()`` is drawn per violating neighbour considered; self-loops are skipped
    without a draw and a punisher stops drawing once it has `max_targets` targets.

    A thin wrapper around passes over the edges: the scan writes into `space` and the acts are copied out, or,
    without one, into arrays allocated by numpy and shrunk to the acts (only the pages written are ever touched).
    With no violation anywhere it returns at once: there is nobody to punish and nothing to draw.
    `undirected` says the graph is a `SocialGraph`'s (every edge in both directions, neighbour lists sorted, no
    self-loops); then, when every violating neighbour is punished, violators' edges are fewer than half the
    punishers' and the population is small, the acts are found from the violators' side (`_acts_by_target`),
    which gives the same arrays.
    """
    if not violation.any():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bound, violator_edges = _edge_totals(indptr, is_punisher, violation, max_targets)
    if (undirected and probability >= 1.0 and max_targets <= 0 and 2 * violator_edges < bound
            and violation.size <= BY_TARGET_MAX_CITIZENS):
        return _acts_by_target(indptr, indices, is_punisher, violation)
    actors, targets = (np.empty(bound, np.int64), np.empty(bound, np.int64)) if space is None else space.room(bound)
    if probability >= 1.0 and max_targets <= 0:
        k = _scan_every_violator(indptr, indices, is_punisher, violation, bound, actors, targets)
    else:
        k = _scan_punishments(indptr, indices, is_punisher, violation, probability, max_targets, rng, actors, targets)
    if space is not None:
        return actors[:k].copy(), targets[:k].copy()
    # Shrink to the k acts in place (a realloc, no copy); nothing else refers to these fresh buffers.
    actors.resize(k, refcheck=False)
    targets.resize(k, refcheck=False)
    return actors, targets


def _scan_every_violator(
    indptr: IntArray, indices: IntArray, is_punisher: BoolArray, violation: BoolArray, bound: int,
    actors: IntArray, targets: IntArray, runs: int | None = None,
) -> int:
    """Every punisher's acts on each violating neighbour, written to the front of actors/targets; their number
    (`bound`: the punishers' edges, as `_edge_totals` counts them without a cap).

    The citizens are split into `runs` runs (default: one per thread, and a single one below `PARALLEL_MIN_WORK`
    punisher edges, the `bound`), each holding about the same number of punisher edges. Each run's acts are
    written on its own thread from where its edges would begin, then moved together in order: the acts of one
    sequential scan.
    """
    with kernel_threads(bound):
        runs = runs or numba.get_num_threads()
        first, offsets = _runs_of_edges(indptr, is_punisher, runs, bound)
        counts = _scan_runs(indptr, indices, is_punisher, violation, first, offsets, actors, targets)
    k = int(counts[0])
    for run in range(1, runs):
        found = slice(offsets[run], offsets[run] + counts[run])
        actors[k:k + counts[run]] = actors[found]
        targets[k:k + counts[run]] = targets[found]
        k += int(counts[run])
    return k


def _acts_by_target(
    indptr: IntArray, indices: IntArray, is_punisher: BoolArray, violation: BoolArray
) -> tuple[IntArray, IntArray]:
    """Every (punisher, violating neighbour) pair of an undirected graph, found from the violators' side.

    One pass over the violators' edges counts each punisher's acts, a second writes each act at its punisher's
    next slot. Violators are visited in index order, so each punisher's targets come out ascending, which is its
    CSR order in a `SocialGraph`.
    """
    slots = _act_starts(indptr, indices, is_punisher, violation)
    acts = int(slots[-1])
    actors = np.empty(acts, np.int64)
    targets = np.empty(acts, np.int64)
    _fill_acts_by_target(indptr, indices, is_punisher, violation, slots, actors, targets)
    return actors, targets


@numba.njit(cache=True, nogil=True)
def _act_starts(indptr: IntArray, indices: IntArray, is_punisher: BoolArray, violation: BoolArray) -> IntArray:
    """Where each punisher's acts begin in the output (`starts[i]`), and their total (`starts[n]`)."""
    n = violation.size
    starts = np.zeros(n + 1, np.int64)
    for j in range(n):
        if violation[j]:
            for e in range(indptr[j], indptr[j + 1]):
                i = indices[e]
                starts[i + 1] += is_punisher[np.uint64(i)]
    for i in range(n):
        starts[i + 1] += starts[i]
    return starts


@numba.njit(cache=True, nogil=True)
def _fill_acts_by_target(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    slots: IntArray,
    actors: IntArray,
    targets: IntArray,
) -> None:
    """Write each act at its punisher's next slot (advancing `slots`, which `_act_starts` returned)."""
    for j in range(violation.size):
        if violation[j]:
            for e in range(indptr[j], indptr[j + 1]):
                i = indices[e]
                if is_punisher[np.uint64(i)]:
                    slot = slots[i]
                    actors[slot] = i
                    targets[slot] = j
                    slots[i] = slot + 1


@numba.njit(cache=True, nogil=True)
def _edge_totals(indptr: IntArray, is_punisher: BoolArray, violation: BoolArray, max_targets: int) -> tuple[int, int]:
    """An upper bound on the number of acts (the punishers' degrees, each capped at `max_targets` if positive) and
    the violators' degrees summed."""
    bound = 0
    violator_edges = 0
    for i in range(is_punisher.size):
        degree = indptr[i + 1] - indptr[i]
        if is_punisher[i]:
            bound += degree if max_targets <= 0 else min(degree, max_targets)
        if violation[i]:
            violator_edges += degree
    return bound, violator_edges


@numba.njit(cache=True, nogil=True)
def _scan_punishments(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    probability: float,
    max_targets: int,
    rng: np.random.Generator,
    actors: IntArray,
    targets: IntArray,
) -> int:
    """One sequential scan writing the acts to actors/targets, with draws or a cap; returns their number.

    Sequential: the draws come from one stream in punisher order.
    """
    draw = probability < 1.0
    k = 0
    for i in range(is_punisher.size):
        if not is_punisher[i]:
            continue
        punished = 0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if j == i or not violation[np.uint64(j)]:
                continue
            if draw and not rng.random() < probability:
                continue
            actors[k] = i
            targets[k] = j
            k += 1
            punished += 1
            if punished == max_targets:  # never true for max_targets <= 0, as punished >= 1 here
                break
    return k


@numba.njit(cache=True, nogil=True)
def _runs_of_edges(indptr: IntArray, is_punisher: BoolArray, runs: int, total: int) -> tuple[IntArray, IntArray]:
    """`runs` runs of consecutive citizens holding about the same number of the `total` punisher edges: the first
    citizen of each (`first[r]`, and `first[runs]` the population) and the punisher edges before it (`offsets[r]`)."""
    n = is_punisher.size
    first = np.full(runs + 1, n, np.int64)
    offsets = np.full(runs + 1, total, np.int64)
    first[0] = 0
    offsets[0] = 0
    run = 1
    edges = 0
    for i in range(n):
        while run < runs and edges >= total * run // runs:
            first[run] = i
            offsets[run] = edges
            run += 1
        if is_punisher[i]:
            edges += indptr[i + 1] - indptr[i]
    return first, offsets


@numba.njit(cache=True, parallel=True, nogil=True)
def _scan_runs(
    indptr: IntArray,
    indices: IntArray,
    is_punisher: BoolArray,
    violation: BoolArray,
    first: IntArray,
    offsets: IntArray,
    actors: IntArray,
    targets: IntArray,
) -> IntArray:
    """Each run of citizens (`_runs_of_edges`) on its own thread: its punishers' acts on every violating neighbour,
    written from ``offsets[r]`` on; returns each run's number of acts.

    Branch-free, since whether a neighbour violates is unpredictable: each edge writes its target at position k
    and k advances only for an act (k stays below the run's edges, so the write fits); the punisher's id then
    fills its acts. Who violates is read from a bitset, which stays in the first-level cache.
    """
    violating = _bits(violation)
    counts = np.zeros(first.size - 1, np.int64)
    for run in numba.prange(first.size - 1):
        k = offsets[run]
        for i in range(first[run], first[run + 1]):
            if not is_punisher[i]:
                continue
            start = k
            for e in range(indptr[i], indptr[i + 1]):
                j = indices[e]
                word = violating[np.uint64(j) >> np.uint64(6)]  # ids are >= 0: unsigned skips the wraparound
                targets[k] = j
                k += (j != i) & np.int64((word >> np.uint64(j & 63)) & np.uint64(1))
            for act in range(start, k):
                actors[act] = i
        counts[run] = k - offsets[run]
    return counts


@numba.njit(cache=True, nogil=True)
def _bits(flags: BoolArray) -> np.ndarray:
    """`flags` packed 64 to a word (flag j is bit j % 64 of word j // 64): an eighth of the bytes to keep in cache."""
    words = np.zeros((flags.size + 63) // 64, np.uint64)
    for j in range(flags.size):
        words[j >> 6] |= np.uint64(flags[j]) << np.uint64(j & 63)
    return words


def settle_punishments(
    actors: IntArray, targets: IntArray, n: int, cost: float, impact: float
) -> tuple[FloatArray, FloatArray]:
    """Per citizen: `cost` paid per punishment given and `impact` suffered per punishment received.

    A thin wrapper: the totals are numpy-allocated zeros (see `select_punishments`) that a kernel adds into.
    """
    paid = np.zeros(n)
    received = np.zeros(n)
    _settle_into(actors, targets, cost, impact, paid, received)
    return paid, received


@numba.njit(cache=True, nogil=True)
def _settle_into(
    actors: IntArray, targets: IntArray, cost: float, impact: float, paid: FloatArray, received: FloatArray
) -> None:
    """Add `cost` to paid[actors[k]] and `impact` to received[targets[k]] for every k, in order, one side at a time.

    Deliberately sequential: split over two threads it saved little on an idle two-core machine and lost a
    scheduler time slice whenever the other core was busy.
    """
    for k in range(actors.size):
        paid[actors[k]] += cost
    for k in range(targets.size):
        received[targets[k]] += impact


@numba.njit(cache=True, nogil=True)
def charge_punishments(
    paid: FloatArray, received: FloatArray, wealth: FloatArray, paid_total: FloatArray, received_total: FloatArray
) -> int:
    """Charge a round's punishments in one pass; returns how many citizens were punished.

    Takes what each citizen paid and suffered from its wealth and adds both to its running totals, in place.
    """
    punished = 0
    for i in range(wealth.size):
        wealth[i] -= paid[i] + received[i]
        paid_total[i] += paid[i]
        received_total[i] += received[i]
        punished += received[i] != 0.0
    return punished
