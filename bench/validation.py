"""Scientific checks: heuristic societies against published experiments; writes docs/validation.md.

    python bench/validation.py [--seeds 10] [--out docs/validation.md]

Every number in the table comes out of simulated play (`validation_checks.py`); the published figures beside
them are from the papers cited in /work/shared/REFERENCES.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import validation_checks as checks


def spread(outcome: checks.Outcome) -> str:
    values = np.array(outcome.values)
    return f"{values.mean():.3f} ± {values.std():.3f} (min {values.min():.3f}, max {values.max():.3f})"


def ostrom_section(seeds: range) -> list[str]:
    outcomes = checks.ostrom_cpr(seeds)
    lines = [
        "## (i) Ostrom, Gardner & Walker's lab CPR game",
        "",
        "8 players, 25 tokens, outside market 5¢, group return 23X − 0.25X² (`scenarios/norms_ostrom_cpr.yaml`,",
        "20 rounds). Measured: mean net yield per round as a share of the maximum (324¢), fees and fines of",
        "sanctions counted as losses. Published: Nash play gives 39.5% of the maximum; with repeated",
        "communication and sanctioning groups do well above it (Ostrom, Walker & Gardner 1992 report about 85%",
        "gross and 67% net of sanctioning costs).",
        "",
        "| treatment | net yield share over seeds |",
        "|---|---|",
    ]
    lines += [f"| {o.treatment} | {spread(o)} |" for o in outcomes]
    nash, both = outcomes[0].mean, outcomes[-1].mean
    lines += ["", f"Published Nash share 0.395, measured {nash:.3f}; communication + sanctioning "
              f"{both:.3f}, {both / nash:.2f}× Nash: {'holds' if both > nash + 0.1 else 'DOES NOT HOLD'}.", ""]
    return lines


def public_goods_section(seeds: range) -> list[str]:
    lines = [
        "## (ii) Fehr & Gächter's public goods game",
        "",
        "Groups of 4 (strangers), 20 tokens, return 0.4 per token to every member, punishment 1:3, 10 rounds",
        "(`scenarios/norms_public_goods.yaml`). Published: contributions decay over the rounds without",
        "punishment and stay high (rise) with it.",
        "",
        "| treatment | " + " | ".join(f"r{r}" for r in range(1, 11)) + " | change, first to last round |",
        "|---|" + "---|" * 11,
    ]
    outcomes = checks.public_goods(seeds)
    for treatment, outcome in zip(checks.PG_TREATMENTS, outcomes):
        path = checks.contribution_path(treatment, seeds)
        lines.append(f"| {treatment.name} | " + " | ".join(f"{v:.2f}" for v in path) + f" | {spread(outcome)} |")
    holds = outcomes[0].mean < 0 <= outcomes[1].mean
    lines += ["", "Contributions are shares of the endowment, averaged over seeds. Direction: "
              f"{'holds' if holds else 'DOES NOT HOLD'}.", ""]
    return lines


def govsim_section(seeds: range) -> list[str]:
    outcomes = checks.govsim(seeds)
    lines = [
        "## (iii) GovSim's fishery",
        "",
        "5 fishers, 12 months, stock 100 doubling to capacity, collapse below 5 (`scenarios/govsim_fishery.yaml`,",
        "`scenarios/norms_govsim_meeting.yaml`). Measured: survival time in months. Published: greedy harvesters",
        "collapse the lake within a few months, sustainable ones last all 12; the universalization prompt",
        "lengthens survival.",
        "",
        "| population | survival (months) over seeds | survival rate (all 12) |",
        "|---|---|---|",
    ]
    lines += [f"| {o.treatment} | {spread(o)} | {np.mean(np.array(o.values) >= 12):.2f} |" for o in outcomes]
    holds = max(outcomes[0].values) <= 3 and min(outcomes[1].values) == 12
    lines += ["", f"Direction: {'holds' if holds else 'DOES NOT HOLD'}.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per treatment (default 10)")
    parser.add_argument("--out", type=Path, default=Path("docs/validation.md"))
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds: expected a positive number of seeds")
    seeds = range(args.seeds)
    started = time.perf_counter()
    lines = [
        "# Scientific checks",
        "",
        f"Written by `python bench/validation.py --seeds {args.seeds}`: heuristic populations, seeds 0–"
        f"{args.seeds - 1} per treatment, mean ± standard deviation over seeds. Tests (`tests/norms/"
        "test_validation.py`) check the direction of each result over three seeds.",
        "",
        *ostrom_section(seeds),
        *public_goods_section(seeds),
        *govsim_section(seeds),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
