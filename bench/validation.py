"""Scientific checks: heuristic societies against published experiments; writes docs/validation.md.

    python bench/validation.py [--seeds 10] [--out docs/validation.md]

Every measured number comes out of simulated play (`validation_checks.py`); each section first states what the
behavioural model assumes, then what play measured, beside the published figures (papers cited in
/work/shared/REFERENCES.md). The document records the commit it was written at; tests/norms/test_validation.py
writes it again (a few seconds) and fails when any number in it is no longer what the engine measures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import validation_checks as checks

ROOT = Path(__file__).resolve().parent.parent
HEADER = re.compile(r"^Written by `python bench/validation.py --seeds (\d+)` at commit `([^`]+)`", re.M)
PUBLISHED_NASH_TOKENS = 8.0  # Ostrom, Gardner & Walker (1994): symmetric Nash, tokens per player
PUBLISHED_NASH_SHARE = 0.395  # their Nash net yield, 128 of the maximum 324 cents
PUBLISHED_COMMUNICATION_SANCTIONING = (0.67, 0.85)  # Ostrom, Walker & Gardner (1992): net and gross share


def spread(outcome: checks.Outcome) -> str:
    values = np.array(outcome.values)
    return f"{values.mean():.3f} ± {values.std():.3f} (min {values.min():.3f}, max {values.max():.3f})"


def verdict(holds: bool) -> str:
    return "holds" if holds else "DOES NOT HOLD"


def ostrom_section(seeds: range) -> list[str]:
    game = checks.cpr_game()
    investment, share = checks.ostrom_nash(seeds)
    outcomes = checks.ostrom_cpr(seeds)
    arms = {o.treatment: o.mean for o in outcomes}
    talk, talk_sanction = arms["communication only (universalization)"], outcomes[-1].mean
    low, high = PUBLISHED_COMMUNICATION_SANCTIONING
    lines = [
        "## (i) Ostrom, Gardner & Walker's lab CPR game",
        "",
        "**Assumed.** The game: 8 players, 25 tokens, outside market 5¢, group return 23X − 0.25X², shared in",
        "proportion to investment. Best responders (`scenarios/ostrom_cpr.yaml`) first invest a uniform random",
        "amount, then each round move a quarter of the way (inertia 0.75) to their myopic best response to the",
        "others' last total. The arms below use learners (`scenarios/norms_ostrom_cpr.yaml`, 20 rounds) who act on",
        "their personal norm; at a meeting each states its norm, and with universalization at most the optimal",
        "share (the assumption that a citizen asking \"what if everyone did this?\" states no more than what keeps",
        "the group at its optimum; `norms/communication.py`); the meeting agrees on the median statement. Norm",
        "sanctions cost 1 and fine 3 per excess (tolerance 10%).",
        "",
        f"**Derived by the engine** (`society/phases/invest.py`): Nash {game.nash:g} tokens each, optimum X* = "
        f"{game.optimum:g}, net yields {game.nash_net_yield:g}¢ and {game.max_net_yield:g}¢ "
        f"(Nash share {game.nash_share:.3f}). Published: 8 tokens each, 128¢ of 324¢ = 39.5%.",
        "",
        f"**Measured.** Best responders over the last {checks.SETTLED_ROUNDS} of 20 rounds, seeds as above:",
        "",
        "| quantity | measured over seeds | derived | published |",
        "|---|---|---|---|",
        f"| investment per player (tokens) | {spread(investment)} | {game.nash:g} | {PUBLISHED_NASH_TOKENS:g} |",
        f"| net yield share | {spread(share)} | {game.nash_share:.3f} | {PUBLISHED_NASH_SHARE} |",
        "",
        f"Nash found by play within 0.05 tokens: {verdict(abs(investment.mean - game.nash) < 0.05)}.",
        "",
        "Mean net yield per round as a share of the maximum, sanctions' fees and fines counted as losses:",
        "",
        "| treatment | net yield share over seeds |",
        "|---|---|",
        *[f"| {o.treatment} | {spread(o)} |" for o in outcomes],
        "",
        f"Communication + sanctioning {talk_sanction:.3f} against the measured Nash share {share.mean:.3f}: "
        f"{verdict(talk_sanction > share.mean + 0.1)} (published: well above Nash, about {low:.0%} net and "
        f"{high:.0%} gross). Communication alone measures {talk:.3f}"
        + (f", above the sanctions arm: the universalization cap makes every statement at most the optimal share, "
           f"so talk alone reaches the optimum without paying for sanctions; the cap, not the talk, carries this "
           f"result. Without universalization talk measures "
           f"{arms['communication only, no universalization']:.3f}." if talk > talk_sanction else "."),
        "",
    ]
    return lines


def public_goods_section(seeds: range) -> list[str]:
    lines = [
        "## (ii) Fehr & Gächter's public goods game",
        "",
        "**Assumed** (`norms/public_goods.py`, `scenarios/norms_public_goods.yaml`): groups of 4 (strangers), 20",
        "tokens, 0.4 per token to every member, 10 rounds. Half conditional cooperators (give 0.8 × the others'",
        "last mean, first 30–80% of the endowment: Fischbacher, Gächter & Fehr 2001), a quarter free riders (0), an",
        "eighth imitators of the best-paid group member, an eighth unconditional cooperators (20). Punishment",
        "(Fehr & Gächter 2000): every non-free-rider gives 0.5 points per token a member gave below its own (at most",
        "10); a point costs 1 and removes 3. Each citizen learns the points it expects per token short (weight",
        "0.5 on the last round) and, once 3 × that exceeds 1 − 0.4, gives at least the others' last mean. Nothing",
        "writes the decay or the rise in.",
        "",
        "**Measured**: mean contribution per round (share of the endowment, averaged over seeds) and the change",
        "from the first to the last round. Published: contributions decay without punishment and stay high or",
        "rise with it. The last two rows move one behavioural parameter each.",
        "",
        "| treatment | " + " | ".join(f"r{r}" for r in range(1, 11)) + " | change, first to last round |",
        "|---|" + "---|" * 11,
    ]
    treatments = checks.PG_TREATMENTS + checks.PG_SENSITIVITY
    outcomes = checks.measure(treatments, seeds, checks.contribution_change)
    for treatment, outcome in zip(treatments, outcomes):
        path = checks.contribution_path(treatment, seeds)
        lines.append(f"| {treatment.name} | " + " | ".join(f"{v:.2f}" for v in path) + f" | {spread(outcome)} |")
    holds = outcomes[0].mean < 0 <= outcomes[1].mean
    lines += ["", f"Direction: {verdict(holds)}.", ""]
    return lines


def govsim_section(seeds: range) -> list[str]:
    outcomes = checks.govsim(seeds)
    lines = [
        "## (iii) GovSim's fishery",
        "",
        "**Assumed**: 5 fishers, 12 months, stock 100 doubling to capacity, collapse below 5",
        "(`scenarios/govsim_fishery.yaml`, `scenarios/norms_govsim_meeting.yaml`). Greedy fishers ask twice the",
        "sustainable share, sustainable ones exactly it (both by construction); learners start at 1.5–2.5 × the",
        "share and at the meeting state at most the sustainable share (the universalization assumption of (i)).",
        "",
        "**Measured**: survival time in months. Published: most models collapse within a few months; the",
        "universalization prompt lengthens survival.",
        "",
        "| population | survival (months) over seeds | survival rate (all 12) |",
        "|---|---|---|",
    ]
    lines += [f"| {o.treatment} | {spread(o)} | {np.mean(np.array(o.values) >= 12):.2f} |" for o in outcomes]
    holds = max(outcomes[0].values) <= 3 and min(outcomes[1].values) == 12
    lines += ["", f"Direction: {verdict(holds)}. The first two rows follow from their rules; the learners' rows are",
              "measured.", ""]
    return lines


LLM_RESULTS = ROOT / "bench" / "validation_llm.json"
GOVSIM_PUBLISHED = {  # Piatti et al. (NeurIPS 2024, arXiv:2404.16698v4), fishery, 5 runs per cell, temperature 0
    "default": {  # Appendix D.2.1, Table 4: the default condition, with the monthly discussion
        "Llama-2-7B": ("0", "1.00 ± 0.00", "16.67", "74.32", "45.08"),
        "Llama-3-8B": ("0", "1.00 ± 0.00", "16.67", "67.60", "21.43"),
        "Mistral-7B": ("0", "1.00 ± 0.00", "16.67", "85.76", "40.13"),
    },
    "universalization": {  # Appendix D.3.1, Table 8
        "Llama-2-7B": ("0", "2.00 ± 0.63", "23.83", "77.65", "36.45"),
        "Llama-3-8B": ("20", "8.00 ± 3.16", "51.33", "78.56", "10.43"),
        "Mistral-7B": ("0", "4.40 ± 2.94", "35.67", "78.15", "19.28"),
    },
}


def llm_section() -> list[str]:
    """Section (iv), from what `bench/validation_llm.py` recorded (this script runs no model)."""
    lines = [
        "## (iv) LLM validation: GovSim's fishery with the embedded model",
        "",
        "**Assumed**: GovSim's rules (as in (iii)); five LLM fishers on the embedded model (SmolLM2-135M-Instruct,",
        "vLLM CPU), temperature 0.7, each asked once a month with a one-line reason and its last five months in",
        "memory. The default prompt states the rules, the lake and the most a fisher may take, not the sustainable",
        "share; the universalization prompt adds GovSim's sentence naming the catch above which the lake shrinks.",
        "There is no monthly discussion (GovSim's default condition has one). A fallback (an invalid answer)",
        "takes nothing and is counted.",
        "",
    ]
    if not LLM_RESULTS.is_file():
        return lines + ["**Measured**: not yet recorded; run `python bench/validation_llm.py`.", ""]
    recorded = json.loads(LLM_RESULTS.read_text())
    runs = recorded["runs"]
    lines += [
        "**Measured** (`python bench/validation_llm.py`, recorded in `bench/validation_llm.json`; model",
        f"`{recorded['model']}`): per condition, mean ± standard deviation over seeds. Survival is the month the",
        "lake collapsed (12 when it lasted); efficiency, equality (1 − Gini of the catch) and over-usage (of all",
        "positive requests, the share above the sustainable share) as GovSim defines them, in percent.",
        "",
        "| condition | seeds | survival rate | survival (months) | efficiency | equality | over-usage | "
        "fallback share | valid runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for condition in GOVSIM_PUBLISHED:
        mine = [run for run in runs if run["condition"] == condition]
        if not mine:
            continue

        def stat(key: str, scale: float = 1.0) -> str:
            values = np.array([run[key] for run in mine], dtype=float) * scale
            return f"{values.mean():.2f} ± {values.std():.2f}"

        rate = 100 * np.mean([run["survived_all"] for run in mine])
        lines.append(
            f"| {condition} | {len(mine)} | {rate:.0f} | {stat('survival')} | {stat('efficiency', 100)} | "
            f"{stat('equality', 100)} | {stat('over_usage', 100)} | {stat('fallback_share', 100)} | "
            f"{sum(run['valid'] for run in mine)} of {len(mine)} |"
        )
    def mean(condition: str, key: str) -> float:
        return float(np.mean([run[key] for run in runs if run["condition"] == condition]))

    longer = mean("universalization", "survival") > mean("default", "survival")
    less = mean("universalization", "over_usage") < mean("default", "over_usage")
    lines += [
        "",
        f"Direction (GovSim: universalization lengthens survival and lowers over-usage): survival "
        f"{verdict(longer)}, over-usage {verdict(less)}.",
        "",
        "**Published** (GovSim, fishery, the smallest open models; v4 Appendix D Tables 4 and 8; survival ± is the",
        "standard deviation over 5 runs):",
        "",
        "| condition | model | survival rate | survival (months) | efficiency | equality | over-usage |",
        "|---|---|---|---|---|---|---|",
    ]
    for condition, models in GOVSIM_PUBLISHED.items():
        lines += [f"| {condition} | {model} | {' | '.join(row)} |" for model, row in models.items()]
    lines += [
        "",
        "Read with care: GovSim's default condition includes a monthly discussion that ours leaves out, and its",
        "models are 50-60 times larger. A collapse in month 1 fixes survival (1) and efficiency (16.67) whatever the",
        "model does, so only equality and over-usage tell such runs apart; GovSim's printed over-usage for runs",
        "collapsed in month 1 is not a multiple of 1/5 and so does not follow its own formula exactly.",
        "",
    ]
    return lines


def commit() -> str:
    """The checked-out commit, marked `+changes` where the working tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD")
    return head + ("+changes" if git("status", "--porcelain", "--", "society", "norms", "bench", "scenarios") else "")


def written_with(text: str) -> tuple[int, str]:
    """The seeds and the commit a written docs/validation.md names."""
    found = HEADER.search(text)
    if found is None:
        raise ValueError("docs/validation.md: no 'Written by `python bench/validation.py --seeds N` at commit' line")
    return int(found.group(1)), found.group(2)


def document(seeds: int, at_commit: str) -> str:
    """docs/validation.md as the engine measures it now, with `seeds` seeds per treatment."""
    runs = range(seeds)
    lines = [
        "# Scientific checks",
        "",
        f"Written by `python bench/validation.py --seeds {seeds}` at commit `{at_commit}`: heuristic",
        f"populations, seeds 0–{seeds - 1} per treatment, mean ± standard deviation over seeds. Tests",
        "(`tests/norms/test_validation.py`) check each direction over three seeds, and write this file again to",
        "check that every number in it is what the engine measures now.",
        "",
        *ostrom_section(runs),
        *public_goods_section(runs),
        *govsim_section(runs),
        *llm_section(),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per treatment (default 10)")
    parser.add_argument("--out", type=Path, default=Path("docs/validation.md"))
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds: expected a positive number of seeds")
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document(args.seeds, commit()))
    print(f"wrote {args.out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
