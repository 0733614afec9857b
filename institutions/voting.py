"""Voting rules as pure functions over ballots.

A ranked ballot lists candidates best first; it may stop early (candidates it leaves out rank below every
candidate it names, and equal to each other). Ballots come as a sequence of sequences of candidate labels, or
as an integer array with one ballot per row, padded at the end with -1 (so -1 cannot be a label there).
`weights` (optional, one per ballot, non-negative) count a ballot that many times. `candidates` (optional)
fixes the candidates and their order; by default they are the labels found on the ballots, sorted.

Every rule returns a `VoteResult` with `.winner`, the final `tally`, and the tally of every round (`rounds`).

Ties: a tie that decides the outcome (for the win, for a place in a runoff, for elimination) is broken
uniformly at random among the tied candidates, taken in the order of `candidates`, by one draw from the
numpy Generator passed as `rng`; the same seed gives the same winner. Without `rng`, such a tie raises
`TieError`; a tie that cannot change the winner (instant runoff: candidates without a vote) needs no `rng`.
`tied` names the candidates of a tie for the win that was broken (empty when there was none). Scores closer than 1e-9 of the larger one are ties.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

Candidate = Hashable
PADDING = -1
RuleName = Literal["plurality", "two_round", "instant_runoff", "approval", "borda", "condorcet"]
RULES: tuple[str, ...] = get_args(RuleName)


class BallotError(ValueError):
    """Ballots, weights or candidates that no rule can count."""


class TieError(ValueError):
    """A tie decides the outcome and no `rng` was passed to break it."""


@dataclass(frozen=True)
class VoteResult:
    """The outcome of one vote: the winner, the final tally and the tally of every round."""

    rule: str
    winner: Candidate
    tally: dict[Candidate, float]
    rounds: tuple[dict[Candidate, float], ...]
    eliminated: tuple[Candidate, ...] = ()
    tied: tuple[Candidate, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def shares(self) -> dict[Candidate, float]:
        """The final tally as shares of its total (all zero when nothing was counted)."""
        total = sum(self.tally.values())
        return {c: (v / total if total > 0 else 0.0) for c, v in self.tally.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (labels as given; non-string labels become JSON keys as text)."""
        return {
            "rule": self.rule,
            "winner": self.winner,
            "tally": {str(c): v for c, v in self.tally.items()},
            "shares": {str(c): v for c, v in self.shares.items()},
            "rounds": [{str(c): v for c, v in r.items()} for r in self.rounds],
            "eliminated": list(self.eliminated),
            "tied": list(self.tied),
            **self.details,
        }


@dataclass(frozen=True)
class Profile:
    """Ballots as an integer matrix of candidate positions (best first, padded with -1) with their weights."""

    candidates: tuple[Candidate, ...]
    ranks: np.ndarray
    weights: np.ndarray

    @property
    def size(self) -> int:
        return len(self.candidates)

    def positions(self) -> np.ndarray:
        """(ballots, candidates): where each ballot places each candidate; unranked ones get the last place."""
        m = self.size
        pos = np.full((self.ranks.shape[0], m), m, dtype=np.int64)
        rows, cols = np.nonzero(self.ranks >= 0)
        pos[rows, self.ranks[rows, cols]] = cols
        return pos


def profile(
    ballots: Sequence[Sequence[Candidate]] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    candidates: Sequence[Candidate] | None = None,
) -> Profile:
    """Validate ranked ballots and index them by candidate position."""
    if isinstance(ballots, np.ndarray):
        labels, ranks = _array_ranks(ballots, candidates)
    else:
        labels, ranks = _sequence_ranks(ballots, candidates)
    _check_rows(ranks)
    return Profile(labels, ranks, _weights(weights, ranks.shape[0]))


def _weights(weights: Sequence[float] | np.ndarray | None, count: int) -> np.ndarray:
    if weights is None:
        return np.ones(count, dtype=np.float64)
    values = np.asarray(weights, dtype=np.float64)
    if values.shape != (count,):
        raise BallotError(f"expected one weight per ballot ({count}), got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise BallotError(f"weight of ballot {bad[0]} is {values[bad[0]]!r}; expected a finite number >= 0")
    return values


def _candidate_list(found: Iterable[Candidate], candidates: Sequence[Candidate] | None) -> tuple[Candidate, ...]:
    if candidates is not None:
        labels = tuple(candidates)
        if len(set(labels)) != len(labels):
            raise BallotError("candidates must be distinct")
    else:
        try:
            labels = tuple(sorted(set(found)))
        except TypeError:
            raise BallotError("labels of different kinds cannot be sorted; pass candidates= in order") from None
    if not labels:
        raise BallotError("no candidates: the ballots name none and no candidates= were given")
    return labels


def _sequence_ranks(
    ballots: Sequence[Sequence[Candidate]], candidates: Sequence[Candidate] | None
) -> tuple[tuple[Candidate, ...], np.ndarray]:
    if isinstance(ballots, str | bytes):
        raise BallotError("expected a sequence of ballots, got a string")
    rows = []
    for number, ballot in enumerate(ballots):
        if isinstance(ballot, str | bytes) or not isinstance(ballot, Iterable):
            raise BallotError(f"ballot {number} is {ballot!r}; expected a sequence of candidates, best first")
        rows.append(list(ballot))
    labels = _candidate_list((c for row in rows for c in row), candidates)
    index = {label: i for i, label in enumerate(labels)}
    ranks = np.full((len(rows), len(labels)), PADDING, dtype=np.int64)
    for number, row in enumerate(rows):
        if len(row) > len(labels):
            raise BallotError(f"ballot {number} ranks {len(row)} entries but there are {len(labels)} candidates")
        for place, label in enumerate(row):
            if label not in index:
                raise BallotError(f"ballot {number} names {label!r}, which is not a candidate {list(labels)}")
            ranks[number, place] = index[label]
    return labels, ranks


def _array_ranks(
    ballots: np.ndarray, candidates: Sequence[Candidate] | None
) -> tuple[tuple[Candidate, ...], np.ndarray]:
    if ballots.ndim != 2 or not np.issubdtype(ballots.dtype, np.integer):
        raise BallotError(f"expected a 2-D integer array of ballots, got {ballots.ndim}-D {ballots.dtype}")
    named = ballots[ballots != PADDING]
    labels = _candidate_list(np.unique(named).tolist(), candidates)
    if ballots.shape[1] > len(labels):
        raise BallotError(f"ballots have {ballots.shape[1]} places but there are {len(labels)} candidates")
    order = np.argsort(np.asarray(labels))
    sorted_labels = np.asarray(labels)[order]
    found = np.clip(np.searchsorted(sorted_labels, ballots), 0, len(labels) - 1)
    known = (sorted_labels[found] == ballots) | (ballots == PADDING)
    if not known.all():
        row, col = np.argwhere(~known)[0]
        raise BallotError(f"ballot {row} names {ballots[row, col]!r}, which is not a candidate {list(labels)}")
    ranks = np.where(ballots == PADDING, PADDING, order[found]).astype(np.int64)
    return labels, ranks


def _check_rows(ranks: np.ndarray) -> None:
    """No candidate twice on a ballot; padding only after the last ranked candidate."""
    if ranks.shape[1] == 0:
        return
    padded = ranks == PADDING
    gap = padded[:, :-1] & ~padded[:, 1:]
    if gap.any():
        raise BallotError(f"ballot {np.flatnonzero(gap.any(axis=1))[0]} has a blank place before a ranked candidate")
    ordered = np.sort(ranks, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] != PADDING)
    if repeated.any():
        raise BallotError(f"ballot {np.flatnonzero(repeated.any(axis=1))[0]} ranks a candidate twice")


# ---- tie-breaking -------------------------------------------------------------------------------------------


def _ties(scores: np.ndarray, value: float, among: np.ndarray) -> np.ndarray:
    """Positions in `among` whose score equals `value` (within 1e-9 relative)."""
    tolerance = 1e-9 * max(1.0, abs(value))
    return among[np.abs(scores[among] - value) <= tolerance]


def _pick(tied: np.ndarray, labels: tuple[Candidate, ...], rng: np.random.Generator | None, what: str) -> int:
    """One of the tied positions: the only one, or a uniform draw from `rng`."""
    if tied.size == 1:
        return int(tied[0])
    if rng is None:
        names = ", ".join(repr(labels[i]) for i in tied)
        raise TieError(f"tie {what} between {names}; pass rng= (a seeded numpy Generator) to break it")
    return int(tied[rng.integers(tied.size)])


def _best(scores: np.ndarray, among: np.ndarray, labels: tuple[Candidate, ...], rng: np.random.Generator | None,
          what: str = "for the win") -> tuple[int, np.ndarray]:
    tied = _ties(scores, float(scores[among].max()), among)
    return _pick(tied, labels, rng, what), tied


def _worst(scores: np.ndarray, among: np.ndarray, labels: tuple[Candidate, ...],
           rng: np.random.Generator | None) -> int:
    tied = _ties(scores, float(scores[among].min()), among)
    return _pick(tied, labels, rng, "for elimination")


def _top_two(scores: np.ndarray, labels: tuple[Candidate, ...], rng: np.random.Generator | None) -> np.ndarray:
    """The two highest-scoring positions, sorted; a tie only matters when it straddles second place."""
    second = float(np.sort(scores)[-2])
    tied = _ties(scores, second, np.arange(scores.size))
    above = np.setdiff1d(np.flatnonzero(scores > second), tied)
    need = 2 - above.size
    if tied.size > need:
        if rng is None:
            names = ", ".join(repr(labels[i]) for i in tied)
            raise TieError(f"tie for the runoff between {names}; pass rng= (a seeded numpy Generator) to break it")
        tied = rng.choice(tied, size=need, replace=False)
    return np.sort(np.concatenate([above, tied]))


def _named(labels: tuple[Candidate, ...], values: np.ndarray,
           among: np.ndarray | None = None) -> dict[Candidate, float]:
    positions = range(len(labels)) if among is None else among
    return {labels[i]: float(values[i]) for i in positions}


def _result(rule: str, p: Profile, winner: int, tied: np.ndarray, rounds: list[dict[Candidate, float]],
            eliminated: Sequence[int] = (), details: dict[str, Any] | None = None) -> VoteResult:
    return VoteResult(
        rule=rule,
        winner=p.candidates[winner],
        tally=rounds[-1],
        rounds=tuple(rounds),
        eliminated=tuple(p.candidates[i] for i in eliminated),
        tied=tuple(p.candidates[i] for i in tied) if tied.size > 1 else (),
        details=details or {},
    )


# ---- the rules ----------------------------------------------------------------------------------------------


def _first_choices(p: Profile, active: np.ndarray) -> np.ndarray:
    """Each ballot's highest-ranked active candidate, or -1 when it ranks none of them."""
    usable = (p.ranks >= 0) & active[np.clip(p.ranks, 0, None)]
    first = np.argmax(usable, axis=1)
    rows = np.arange(p.ranks.shape[0])
    return np.where(usable[rows, first], p.ranks[rows, first], PADDING)


def _count(p: Profile, choices: np.ndarray) -> np.ndarray:
    voted = choices >= 0
    return np.bincount(choices[voted], weights=p.weights[voted], minlength=p.size)


def plurality(ballots: Sequence[Sequence[Candidate]] | np.ndarray, weights: Any = None, candidates: Any = None,
              rng: np.random.Generator | None = None) -> VoteResult:
    """Most first choices wins."""
    p = profile(ballots, weights, candidates)
    everyone = np.arange(p.size)
    tally = _count(p, _first_choices(p, np.ones(p.size, dtype=bool)))
    winner, tied = _best(tally, everyone, p.candidates, rng)
    return _result("plurality", p, winner, tied, [_named(p.candidates, tally)])


def two_round(ballots: Sequence[Sequence[Candidate]] | np.ndarray, weights: Any = None, candidates: Any = None,
              rng: np.random.Generator | None = None) -> VoteResult:
    """A majority of first choices wins at once; otherwise the top two meet in a runoff on the same ballots."""
    p = profile(ballots, weights, candidates)
    everyone = np.arange(p.size)
    first = _count(p, _first_choices(p, np.ones(p.size, dtype=bool)))
    rounds = [_named(p.candidates, first)]
    if p.size == 1 or first.max() > first.sum() / 2:
        winner, tied = _best(first, everyone, p.candidates, rng)
        return _result("two_round", p, winner, tied, rounds)
    finalists = _top_two(first, p.candidates, rng)
    active = np.zeros(p.size, dtype=bool)
    active[finalists] = True
    runoff = _count(p, _first_choices(p, active))
    rounds.append(_named(p.candidates, runoff, finalists))
    winner, tied = _best(runoff, finalists, p.candidates, rng)
    eliminated = [i for i in everyone if i not in finalists]
    return _result("two_round", p, winner, tied, rounds, eliminated)


def instant_runoff(ballots: Sequence[Sequence[Candidate]] | np.ndarray, weights: Any = None,
                   candidates: Any = None, rng: np.random.Generator | None = None) -> VoteResult:
    """Eliminate the candidate with fewest first choices, round by round, until one has a majority.

    Candidates with no first choice at all are eliminated together (no votes move, so their order cannot matter);
    the last two tying evenly, or every remaining candidate left without a vote, is a tie for the win.
    """
    p = profile(ballots, weights, candidates)
    active = np.ones(p.size, dtype=bool)
    rounds: list[dict[Candidate, float]] = []
    eliminated: list[int] = []
    while True:
        remaining = np.flatnonzero(active)
        tally = _count(p, _first_choices(p, active))
        rounds.append(_named(p.candidates, tally, remaining))
        if remaining.size == 1 or tally[remaining].max() > tally.sum() / 2 or _even(tally, remaining):
            winner, tied = _best(tally, remaining, p.candidates, rng)
            return _result("instant_runoff", p, winner, tied, rounds, eliminated)
        last = _ties(tally, float(tally[remaining].min()), remaining)
        losers = last if not tally[last].any() else [_worst(tally, remaining, p.candidates, rng)]
        active[losers] = False
        eliminated += [int(loser) for loser in losers]


def _even(tally: np.ndarray, remaining: np.ndarray) -> bool:
    """Whether every remaining candidate ties and no elimination could break it: the last two, or nobody with a
    vote (eliminating a candidate without votes transfers none)."""
    tied = _ties(tally, float(tally[remaining].min()), remaining)
    return tied.size == remaining.size and (remaining.size == 2 or not tally[remaining].any())


def approval(approvals: Sequence[Iterable[Candidate]] | np.ndarray, weights: Any = None, candidates: Any = None,
             rng: np.random.Generator | None = None) -> VoteResult:
    """Most approvals wins; each ballot is the set of candidates it approves (order does not matter)."""
    if isinstance(approvals, np.ndarray):
        p = profile(approvals, weights, candidates)
    else:
        p = profile([list(a) for a in approvals], weights, candidates)
    approved = p.ranks >= 0
    tally = np.bincount(p.ranks[approved], weights=np.broadcast_to(p.weights[:, None], p.ranks.shape)[approved],
                        minlength=p.size)
    winner, tied = _best(tally, np.arange(p.size), p.candidates, rng)
    return _result("approval", p, winner, tied, [_named(p.candidates, tally)])


def borda(ballots: Sequence[Sequence[Candidate]] | np.ndarray, weights: Any = None, candidates: Any = None,
          rng: np.random.Generator | None = None) -> VoteResult:
    """Borda count: with m candidates, place k (0 = best) earns m - 1 - k points; unranked candidates earn 0."""
    p = profile(ballots, weights, candidates)
    ranked = p.ranks >= 0
    points = (p.size - 1 - np.arange(p.ranks.shape[1]))[None, :] * p.weights[:, None]
    tally = np.bincount(p.ranks[ranked], weights=points[ranked], minlength=p.size)
    winner, tied = _best(tally, np.arange(p.size), p.candidates, rng)
    return _result("borda", p, winner, tied, [_named(p.candidates, tally)])


def pairwise(p: Profile) -> np.ndarray:
    """d[i, j]: total weight of ballots ranking candidate i above candidate j.

    Summed ballot after ballot by numpy, not by a matrix product: from tens of thousands of ballots BLAS starts its
    threads, which then spin on a core for a tenth of a second (see `society.core.metrics.blockwise_dot`). Whole
    weights (the elections' one per ballot) sum exactly either way; fractional ones may differ from a BLAS
    product in their last bits.
    """
    pos = p.positions()
    weights = p.weights[:, None]
    d = np.zeros((p.size, p.size))
    for i in range(p.size):
        d[i] = np.add.reduce(weights * (pos[:, [i]] < pos), axis=0)
    return d


def schulze_paths(d: np.ndarray) -> np.ndarray:
    """Strengths of the strongest paths (Schulze 2011) from the pairwise matrix, by Floyd–Warshall."""
    p = np.where(d > d.T, d, 0.0)
    np.fill_diagonal(p, 0.0)
    for k in range(d.shape[0]):
        p = np.maximum(p, np.minimum(p[:, [k]], p[[k], :]))
        np.fill_diagonal(p, 0.0)
    return p


def condorcet(ballots: Sequence[Sequence[Candidate]] | np.ndarray, weights: Any = None, candidates: Any = None,
              rng: np.random.Generator | None = None,
              method: Literal["schulze", "copeland"] = "schulze") -> VoteResult:
    """A Condorcet method: the candidate who beats every other head to head wins when there is one.

    When there is none (a cycle, or a pairwise tie), `method` decides: Schulze's strongest paths, or Copeland
    (pairwise wins minus losses). `details` hold the pairwise matrix, `condorcet_winner` (None when none exists)
    and, for Schulze, the strongest-path matrix. The tally is each candidate's number of wins under the method.
    """
    p = profile(ballots, weights, candidates)
    d = pairwise(p)
    beats = d > d.T + 1e-9 * np.maximum(1.0, d.T)
    others = p.size - 1
    undefeated = np.flatnonzero(beats.sum(axis=1) == others)
    details: dict[str, Any] = {
        "method": method,
        "condorcet_winner": p.candidates[undefeated[0]] if undefeated.size else None,
        "pairwise": d.tolist(),
    }
    if method == "schulze":
        paths = schulze_paths(d)
        stronger = paths > paths.T + 1e-9 * np.maximum(1.0, paths.T)
        score = stronger.sum(axis=1).astype(np.float64)
        details["strongest_paths"] = paths.tolist()
        winners = np.flatnonzero(~stronger.any(axis=0))
    elif method == "copeland":
        score = (beats.sum(axis=1) - beats.sum(axis=0)).astype(np.float64)
        winners = _ties(score, float(score.max()), np.arange(p.size))
    else:
        raise BallotError(f"unknown Condorcet method {method!r}; expected 'schulze' or 'copeland'")
    winner = _pick(winners, p.candidates, rng, "for the win")
    tied = winners
    return _result("condorcet", p, winner, tied, [_named(p.candidates, score)], details=details)


def by_name(rule: str) -> Any:
    """The voting function called `rule` (one of RULES)."""
    if rule not in RULES:
        raise BallotError(f"unknown voting rule {rule!r}; expected one of {list(RULES)}")
    return globals()[rule]
