"""A runs folder for the dashboard tests: real small runs, a run with every contract column, a sweep, and
folders that are empty, damaged or still running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from society.core.runner import run_scenario
from society.llm.prompts import MEMORY_RULE
from society.scenario.files import load_scenario

REPO = Path(__file__).parents[2]
SCENARIOS = REPO / "scenarios"

SCREENSHOTS = pytest.StashKey[Path]()  # where the browser test saved its screenshots
RICH_ROUNDS = 5
LLM_CITIZEN = 3


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Name the folder of the browser test's screenshots, for a person to look at."""
    if SCREENSHOTS in config.stash:
        terminalreporter.write_line(f"dashboard screenshots: {config.stash[SCREENSHOTS]}")


def real_run(scenario: str, out: Path, *overrides: str) -> Path:
    """A run of a shipped scenario written by the engine itself."""
    return run_scenario(load_scenario(SCENARIOS / scenario, list(overrides)), out)


def add_contract_tables(run: Path) -> None:
    """Give a real run the norms, institutions and LLM columns and tables the engineers' contract names."""
    rng = np.random.default_rng(0)
    rounds_dir, citizens_dir, events_dir = (run / "tables" / name for name in ("rounds", "citizens", "events"))
    for number in range(1, RICH_ROUNDS + 1):
        file = f"{number:06d}.parquet"
        row = pl.read_parquet(rounds_dir / file).with_columns(
            norm_dispersion=pl.lit(1.0 / number), compliance=pl.lit(0.5 + 0.1 * number),
            sanction_norm_agreement=pl.lit(0.6), cooperation_index=pl.lit(0.4 + 0.1 * number),
            norm_emergence_round=pl.lit(3 if number >= 3 else None, pl.Int64), norm_stability=pl.lit(0.9),
            leader=pl.lit(7 if number < 4 else 12, pl.Int64), ppi=pl.lit(0.1 * number),
            ppi_cumulative=pl.lit(0.05 * number), incumbency_rate=pl.lit(0.5), turnover=pl.lit(number % 2),
            entrenchment_attempts=pl.lit(number % 3), entrenchment_successes=pl.lit(number % 2),
            policy_stability=pl.lit(0.8), quota=pl.lit(10.0), fine=pl.lit(2.0), tax=pl.lit(0.1),
        )
        row.write_parquet(rounds_dir / file)
        citizens = pl.read_parquet(citizens_dir / file)
        spread = 2.0 / number
        citizens.with_columns(
            personal_norm=pl.Series(rng.normal(10.0, spread, citizens.height)),
            empirical_expectation=pl.Series(rng.normal(11.0, spread, citizens.height)),
            normative_expectation=pl.Series(rng.normal(9.0, spread, citizens.height)),
        ).write_parquet(citizens_dir / file)
        events = pl.read_parquet(events_dir / file)
        extra = [
            ("norms", "message", 1, 2, None, "take no more than your share"),
            ("sanction", "fine", 7, 5, 2.0, None),
            ("leader", "leader_action", 7, -1, None, json.dumps({"action": "set_policy", "quota": 10.0})),
            ("leader", "leader_action", 7, -1, None, json.dumps({"action": "postpone_election"})),
            ("charter", "blocked", 7, -1, None, json.dumps({"action": "postpone_election", "rule": "fixed_terms"})),
        ]
        if number in (1, 4):
            winner = 7 if number == 1 else 12
            detail = {"tally": {"7": 60, "12": 40} if number == 1 else {"7": 30, "12": 70},
                      "kinds": {"7": "entrencher", "12": "populist"}}
            extra.append(("elections", "election", winner, -1, None, json.dumps(detail)))
        rows = pl.DataFrame(
            [{"round": number, "phase": p, "kind": k, "actor": a, "target": t, "cost": c, "impact": None,
              "detail": d} for p, k, a, t, c, d in extra],
            schema=events.schema,
        )
        pl.concat([events, rows]).write_parquet(events_dir / file)
        calls_dir = run / "tables" / "llm_calls"
        calls_dir.mkdir(exist_ok=True)
        prompt = [
            {"role": "system", "content": f"You fish in a shared lake.\n{MEMORY_RULE}"},
            {"role": "user", "content": f"<memory>\nRound {number - 1}: you asked for 8.0 and got 8.0.\n</memory>"
                                        "\nHow much do you fish?"},
        ]
        pl.DataFrame({
            "round": [number], "phase": ["harvest"], "citizen": [LLM_CITIZEN], "prompt_hash": [f"h{number}"],
            "prompt": [json.dumps(prompt)],
            "answer": [json.dumps({"amount": number + 5, "reason": "keep the lake alive" if number % 2 else "others take more"})], "prompt_tokens": [120],
            "completion_tokens": [8], "latency_s": [0.2], "cached": [False], "fallback": [number == 2],
        }).write_parquet(calls_dir / file)
    pl.DataFrame({
        "citizen": [LLM_CITIZEN], "role": ["fisher"], "values": [["fairness", "tradition"]], "agenda": [None],
        "openness": [0.7], "conscientiousness": [0.8], "extraversion": [0.3], "agreeableness": [0.9],
        "neuroticism": [0.2], "description": ["You are citizen 2. You are a fisher."],
    }).write_parquet(run / "personas.parquet")


MODELS = ("default", "other-model")


def seat_two_models(run: Path) -> None:
    """Make a run look like one seating two LLM models, as the engine records it: the citizens table's `model`
    (citizen % 3 == 0 asks `default`, == 1 `other-model`, the rest no model) and llm_calls' `model` and
    `fallback` (citizen 3 asks `default` and never falls back; citizen 4 asks `other-model` and falls back in
    even rounds)."""
    for file in sorted((run / "tables" / "citizens").glob("*.parquet")):
        citizens = pl.read_parquet(file)
        place = pl.col("citizen") % 3
        citizens.with_columns(model=pl.when(place == 0).then(pl.lit(MODELS[0])).when(place == 1)
                              .then(pl.lit(MODELS[1]))).write_parquet(file)
        number = citizens["round"][0]
        calls = run / "tables" / "llm_calls" / file.name
        pl.DataFrame({
            "round": [number, number], "phase": ["harvest", "harvest"], "citizen": [3, 4],
            "prompt_hash": ["a", "b"], "prompt": ["[]", "[]"], "answer": ['{"amount": 5}', '{"amount": 9}'],
            "prompt_tokens": [100, 100], "completion_tokens": [5, 5], "latency_s": [0.1, 0.1],
            "cached": [False, False], "fallback": [False, number % 2 == 0], "model": list(MODELS),
        }).write_parquet(calls)


SWEEP_CELLS = [(1, 1000), (1, 2000), (2, 1000), (2, 2000)]  # (schedule.2.params.cost, commons.capacity)


def sweep_efficiency(cost: int, capacity: int, seed: int) -> float:
    """The efficiency the test sweep records for a cell's seed."""
    return 0.1 * cost + capacity / 10000 + 0.01 * seed


def collapse_every_patch(run: Path, first: int, every: int) -> None:
    """Rewrite a run's rounds so that one patch collapses in round `first` and every patch by round `every`."""
    for file in sorted((run / "tables" / "rounds").glob("*.parquet")):
        row = pl.read_parquet(file)
        number, patches = row["round"][0], row["stock"].list.len()[0]
        collapsed = patches if number >= every else 1 if number >= first else 0
        row.with_columns(collapsed_patches=pl.lit(collapsed, row.schema["collapsed_patches"])).write_parquet(file)


def write_sweep(folder: Path, cell_run: Path) -> None:
    """A sweep over punish cost x commons capacity laid out as `society sweep` writes it: 3 seeds per cell in
    `cells/<cell>/seed-<n>`, and a fourth seed of cell 0 that failed (its folder holds only error.txt)."""
    spec = {"base": "scenarios/village_10k.yaml", "axes": {"schedule.2.params.cost": [1, 2],
            "commons.capacity": [1000, 2000]}, "seeds": 3, "mode": "cartesian", "status": "completed"}
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps(spec))
    rows = []
    for cell, (cost, capacity) in enumerate(SWEEP_CELLS):
        for seed in range(3):
            run_dir = f"cells/{cell:04d}/seed-{seed}"
            shutil.copytree(cell_run, folder / run_dir)
            rows.append({"cell": cell, "seed": seed, "schedule.2.params.cost": cost, "commons.capacity": capacity,
                         "status": "completed", "error": None, "run_dir": run_dir,
                         "efficiency": sweep_efficiency(cost, capacity, seed), "survival": 10,
                         "collapsed": cost == 2 and seed > 0})
    failed = folder / "cells" / "0000" / "seed-3"
    failed.mkdir()
    (failed / "error.txt").write_text("ValueError: boom\n\nTraceback ...")
    rows.append({**rows[0], "seed": 3, "status": "failed", "error": "ValueError: boom", "run_dir": "cells/0000/seed-3",
                 "efficiency": None, "collapsed": None})
    pl.DataFrame(rows).write_parquet(folder / "summary.parquet")


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """village (real), fishery (real), newcomer (real: an outsider arrives at round 3), rich (village + contract tables), collapsed (rich, a patch collapsed in
    round 3, every patch by round 4), models (rich, two LLM models seated), grid (sweep), empty, broken (bad
    manifest), damaged (a cut Parquet file), partial (still running)."""
    root = tmp_path_factory.mktemp("runs")
    village = real_run("village_10k.yaml", root / "village", f"rounds={RICH_ROUNDS}", "population.size=200")
    real_run("govsim_fishery.yaml", root / "fishery", "rounds=6")
    real_run("govsim_newcomer.yaml", root / "newcomer")
    shutil.copytree(village, root / "rich")
    add_contract_tables(root / "rich")
    shutil.copytree(root / "rich", root / "collapsed")
    collapse_every_patch(root / "collapsed", first=3, every=4)
    write_sweep(root / "grid", root / "fishery")
    shutil.copytree(root / "rich", root / "models")
    seat_two_models(root / "models")
    (root / "empty").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_text('{"name": "broken", "status": ')
    shutil.copytree(village, root / "damaged")
    cut = root / "damaged" / "tables" / "rounds" / "000003.parquet"
    cut.write_bytes(cut.read_bytes()[:40])
    shutil.copytree(village, root / "partial")
    manifest = json.loads((root / "partial" / "manifest.json").read_text())
    (root / "partial" / "manifest.json").write_text(json.dumps(manifest | {"status": "running", "rounds_completed": 3}))
    for table in ("rounds", "citizens", "events"):
        for number in (4, 5):
            (root / "partial" / "tables" / table / f"{number:06d}.parquet").unlink()
    return root
