"""Voting rules on textbook profiles, ties, validation, and properties every rule must have."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from institutions import voting
from institutions.voting import (
    RULES,
    BallotError,
    TieError,
    approval,
    borda,
    by_name,
    condorcet,
    instant_runoff,
    plurality,
    two_round,
)

# The Tennessee capital example: voters live in Memphis (42%), Nashville (26%), Chattanooga (15%) and
# Knoxville (17%) and rank cities by distance. Plurality picks Memphis, instant runoff Knoxville, and the
# runoff, Borda and Condorcet methods Nashville (the Condorcet winner).
TENNESSEE = (
    [["Memphis", "Nashville", "Chattanooga", "Knoxville"]] * 42
    + [["Nashville", "Chattanooga", "Knoxville", "Memphis"]] * 26
    + [["Chattanooga", "Knoxville", "Nashville", "Memphis"]] * 15
    + [["Knoxville", "Chattanooga", "Nashville", "Memphis"]] * 17
)
TENNESSEE_WEIGHTED = (
    [["Memphis", "Nashville", "Chattanooga", "Knoxville"], ["Nashville", "Chattanooga", "Knoxville", "Memphis"],
     ["Chattanooga", "Knoxville", "Nashville", "Memphis"], ["Knoxville", "Chattanooga", "Nashville", "Memphis"]],
    [42, 26, 15, 17],
)
CYCLE = [["A", "B", "C"], ["B", "C", "A"], ["C", "A", "B"]]


def test_tennessee_rules_disagree() -> None:
    assert plurality(TENNESSEE).winner == "Memphis"
    assert plurality(TENNESSEE).tally == {"Chattanooga": 15, "Knoxville": 17, "Memphis": 42, "Nashville": 26}
    assert two_round(TENNESSEE).winner == "Nashville"
    assert instant_runoff(TENNESSEE).winner == "Knoxville"
    assert borda(TENNESSEE).winner == "Nashville"
    assert condorcet(TENNESSEE).winner == "Nashville"
    assert condorcet(TENNESSEE, method="copeland").winner == "Nashville"
    assert approval([ballot[:2] for ballot in TENNESSEE]).winner == "Nashville"


def test_tennessee_tallies_round_by_round() -> None:
    runoff = two_round(TENNESSEE)
    assert runoff.rounds[1] == {"Memphis": 42, "Nashville": 58}
    assert set(runoff.eliminated) == {"Chattanooga", "Knoxville"}
    irv = instant_runoff(TENNESSEE)
    assert irv.rounds[1] == {"Memphis": 42, "Nashville": 26, "Knoxville": 32}
    assert irv.rounds[2] == {"Memphis": 42, "Knoxville": 58}
    assert irv.eliminated == ("Chattanooga", "Nashville")
    assert borda(TENNESSEE).tally == {"Chattanooga": 173, "Knoxville": 107, "Memphis": 126, "Nashville": 194}
    assert condorcet(TENNESSEE).details["condorcet_winner"] == "Nashville"
    assert runoff.shares["Nashville"] == pytest.approx(0.58)


@pytest.mark.parametrize("rule", [r for r in RULES if r != "approval"])
def test_weights_count_like_repeated_ballots(rule: str) -> None:
    weighted = by_name(rule)(*TENNESSEE_WEIGHTED)
    repeated = by_name(rule)(TENNESSEE)
    assert weighted.winner == repeated.winner
    assert weighted.rounds == repeated.rounds


def test_condorcet_cycle_has_no_condorcet_winner_and_is_broken_by_seed() -> None:
    with pytest.raises(TieError, match="'A', 'B', 'C'"):
        condorcet(CYCLE)
    result = condorcet(CYCLE, rng=np.random.default_rng(3))
    assert result.details["condorcet_winner"] is None
    assert set(result.tied) == {"A", "B", "C"}
    assert result.details["pairwise"] == [[0, 2, 1], [1, 0, 2], [2, 1, 0]]
    same = condorcet(CYCLE, rng=np.random.default_rng(3))
    assert same.winner == result.winner
    winners = {condorcet(CYCLE, rng=np.random.default_rng(seed)).winner for seed in range(30)}
    assert winners == {"A", "B", "C"}


def test_schulze_breaks_a_weighted_cycle_by_path_strength() -> None:
    # Schulze's own first example (45 voters): the winner is E though there is no Condorcet winner.
    ballots = [list("ACBED"), list("ADECB"), list("BEDAC"), list("CABED"), list("CAEBD"), list("CBADE"),
               list("DCEBA"), list("EBADC")]
    weights = [5, 5, 8, 3, 7, 2, 7, 8]
    result = condorcet(ballots, weights)
    assert result.details["condorcet_winner"] is None
    assert result.winner == "E"
    assert result.tied == ()


def test_exact_plurality_tie_needs_rng_and_is_reproducible() -> None:
    ballots = [["A", "B"], ["B", "A"], ["C", "A"], ["A", "C"], ["B", "C"]]
    with pytest.raises(TieError, match="tie for the win between 'A', 'B'"):
        plurality(ballots)
    first = plurality(ballots, rng=np.random.default_rng(7))
    assert first.tied == ("A", "B")
    assert first.winner == plurality(ballots, rng=np.random.default_rng(7)).winner
    assert {plurality(ballots, rng=np.random.default_rng(s)).winner for s in range(20)} == {"A", "B"}


def test_two_round_tie_at_the_top_sends_both_to_the_runoff() -> None:
    ballots = [["A", "C"], ["A", "C"], ["B", "C"], ["B", "A"], ["C", "A"]]
    result = two_round(ballots)
    assert result.rounds[1] == {"A": 3, "B": 2}
    assert result.winner == "A"
    with pytest.raises(TieError, match="for the runoff"):
        two_round([["A"], ["B"], ["C"]])


def test_irv_elimination_tie_is_broken_by_rng() -> None:
    ballots = [["A", "C"], ["A", "C"], ["A", "B"], ["B", "C"], ["C", "B"], ["D", "C"], ["D", "C"]]
    result = instant_runoff(ballots, rng=np.random.default_rng(0))
    assert result.eliminated[0] in {"B", "C"}
    assert result.rounds[0] == {"A": 3, "B": 1, "C": 1, "D": 2}
    with pytest.raises(TieError, match="for elimination"):
        instant_runoff(ballots)


def test_irv_tie_between_zero_vote_candidates_needs_no_rng() -> None:
    """C and D have no first choice: eliminating either first transfers nothing, so their tie decides nothing."""
    ballots = [["A", "C"], ["A", "D"], ["A"], ["B", "A"], ["B"], ["E", "A"]]
    candidates = ["A", "B", "C", "D", "E"]
    result = instant_runoff(ballots, candidates=candidates)
    assert result.rounds == ({"A": 3, "B": 2, "C": 0, "D": 0, "E": 1}, {"A": 3, "B": 2, "E": 1}, {"A": 4, "B": 2})
    assert result.eliminated == ("C", "D", "E") and result.winner == "A" and result.tied == ()
    assert instant_runoff(ballots, candidates=candidates, rng=np.random.default_rng(0)) == result


def test_irv_final_even_tie_is_a_tie_for_the_win_between_both_finalists() -> None:
    ballots = [["A"], ["A"], ["B"], ["B"], ["C"]]
    with pytest.raises(TieError, match="tie for the win between 'A', 'B'"):
        instant_runoff(ballots)
    results = [instant_runoff(ballots, rng=np.random.default_rng(seed)) for seed in range(20)]
    assert all(r.tied == ("A", "B") and r.eliminated == ("C",) and r.tally == {"A": 2, "B": 2} for r in results)
    assert {r.winner for r in results} == {"A", "B"}


def test_truncated_ballots_and_exhaustion() -> None:
    ballots = [["A"], ["A"], ["B", "C"], ["C", "B"], ["C"]]
    irv = instant_runoff(ballots)
    assert irv.rounds[0] == {"A": 2, "B": 1, "C": 2}
    assert irv.rounds[1] == {"A": 2, "C": 3}
    assert irv.winner == "C"
    assert borda(ballots, candidates=["A", "B", "C"]).tally == {"A": 4, "B": 3, "C": 5}


def test_integer_array_ballots_match_sequences() -> None:
    array = np.array([[17, 4, 9], [4, 9, -1], [9, 17, 4], [4, -1, -1]])
    sequences = [[17, 4, 9], [4, 9], [9, 17, 4], [4]]
    for rule in RULES:
        from_array = by_name(rule)(array, rng=np.random.default_rng(5))
        assert from_array.to_dict() == by_name(rule)(sequences, rng=np.random.default_rng(5)).to_dict()
    assert plurality(array).winner == 4
    assert json.loads(json.dumps(condorcet(array).to_dict()))["winner"] == 4


def test_candidates_fix_order_and_include_unnamed() -> None:
    result = plurality([["B"], ["B"]], candidates=["A", "B", "C"])
    assert list(result.tally) == ["A", "B", "C"]
    assert result.tally["C"] == 0


@pytest.mark.parametrize(
    ("ballots", "kwargs", "message"),
    [
        ([["B"], ["A", "A"]], {}, "ballot 1 ranks a candidate twice"),
        ([["A"], ["Z"]], {"candidates": ["A", "B"]}, "ballot 1 names 'Z'"),
        ([["A"], ["B"]], {"weights": [1, -2]}, "weight of ballot 1"),
        ([["A"], ["B"]], {"weights": [1]}, "one weight per ballot"),
        ([["A"], "B"], {}, "ballot 1 is 'B'"),
        ([], {}, "no candidates"),
        (np.array([[1, -1, 2], [2, 1, 3]]), {}, "ballot 0 has a blank place"),
        (np.array([[1.0, 2.0]]), {}, "integer array"),
        ([[1], ["A"]], {}, "cannot be sorted"),
        ([["A"], ["B"]], {"candidates": ["A", "A", "B"]}, "distinct"),
    ],
)
def test_invalid_ballots_are_named(ballots, kwargs, message) -> None:
    with pytest.raises(BallotError, match=message):
        plurality(ballots, **kwargs)


def test_unknown_rule_and_method() -> None:
    with pytest.raises(BallotError, match="unknown voting rule 'range'"):
        by_name("range")
    with pytest.raises(BallotError, match="unknown Condorcet method"):
        condorcet([["A"]], method="kemeny")  # type: ignore[arg-type]


rankings = st.integers(min_value=2, max_value=5).flatmap(
    lambda m: st.tuples(
        st.just(m),
        st.lists(st.permutations(list(range(m))), min_size=1, max_size=15),
        st.lists(st.integers(min_value=1, max_value=5), min_size=15, max_size=15),
    )
)


@settings(max_examples=60, deadline=None)
@given(rankings, st.integers(min_value=0, max_value=4))
def test_unanimous_first_choice_wins_every_rule(data, favourite_seed) -> None:
    m, ballots, weights = data
    favourite = favourite_seed % m
    ballots = [[favourite] + [c for c in ballot if c != favourite] for ballot in ballots]
    weights = weights[: len(ballots)]
    rng = np.random.default_rng(0)
    for rule in RULES:
        chosen = [b[:1] for b in ballots] if rule == "approval" else ballots
        assert by_name(rule)(chosen, weights, rng=rng).winner == favourite


@settings(max_examples=100, deadline=None)
@given(rankings)
def test_a_condorcet_winner_wins_schulze_and_copeland(data) -> None:
    m, ballots, weights = data
    weights = weights[: len(ballots)]
    rng = np.random.default_rng(0)
    result = condorcet(ballots, weights, candidates=list(range(m)), rng=rng)
    d = np.array(result.details["pairwise"])
    beaten_by_none = [i for i in range(m) if all(d[i, j] > d[j, i] for j in range(m) if j != i)]
    if beaten_by_none:
        assert result.details["condorcet_winner"] == beaten_by_none[0]
        assert result.winner == beaten_by_none[0]
        assert condorcet(ballots, weights, candidates=list(range(m)), method="copeland").winner == beaten_by_none[0]
    else:
        assert result.details["condorcet_winner"] is None


def test_a_large_schulze_count_leaves_no_blas_thread_spinning() -> None:
    """The pairwise counts of 50,000 ballots over 12 candidates as a matrix product would wake BLAS's threads, which
    then spin on a core for about a tenth of a second; the process must stay idle while it sleeps."""
    rng = np.random.default_rng(3)
    ballots = np.argsort(rng.random((50_000, 12)), axis=1)
    time.sleep(0.2)  # threads an earlier test woke go back to sleep
    started = time.process_time()
    time.sleep(0.2)
    quiet = time.process_time() - started  # what other threads of this process use anyway
    d = voting.pairwise(voting.profile(ballots))
    started = time.process_time()
    time.sleep(0.2)
    assert time.process_time() - started < quiet + 0.05
    assert np.all(d + d.T == 50_000 - 50_000 * np.eye(12))
