"""LLM citizens at scale: what cohorts and activation save, and how far they move outcomes.

Plays `scenarios/village_llm_10k.yaml` (harvest, regrowth, peer punishment) scaled to N LLM citizens (the forest
scaled with them, so each citizen's sustainable share stays the same) against one embedded server:

  fidelity  N citizens x R rounds x S seeds in four modes — per citizen (every citizen its own request, every
            round), cohorts only, activation only, and both (the scenario as shipped) — and reports wall time,
            requests, tokens, and how far each mode's outcomes are from the per-citizen mode's: the distribution
            of the amounts citizens ask for (Wasserstein-1 distance), the stock trajectory (mean absolute
            difference, as a share of capacity) and the rounds survived. Each distance is divided by the
            per-citizen mode's own seed-to-seed spread (the same distance between its runs of different seeds),
            so a ratio near 1 or below means "within the spread that chance alone gives".
  ablate    cohorts taken apart on round 1's harvest prompts of N citizens (every citizen asked): the same prompts
            sent as they are (twice: the second is the spread sampling alone gives), with the citizen's number
            dropped, with numbers rounded, with both (a cohort's text, one answer each), and as cohorts send
            them (a cohort's text, at most `max_samples` answers shared by its members); each set of asked
            amounts against the first, as a Wasserstein-1 distance over the sampling spread.
  curve     the scenario as shipped at each N for a few rounds: requests sent per round and phase against the
            citizens asked, and the exponent of requests ~ N^k per round and phase (least squares in log-log).
            Round 1 asks every citizen (none has a decision to repeat) with empty memories; later rounds ask the
            active few, whose memories differ.

    python bench/bench_llm_scale.py fidelity                     # 512 citizens, 5 rounds, seeds 1-3
    python bench/bench_llm_scale.py ablate --citizens 512            # which coarsening moves the answers
    python bench/bench_llm_scale.py curve --sizes 100 1000 10000 100000 --rounds 3
    python bench/bench_llm_scale.py fidelity --base-url http://127.0.0.1:8000/v1   # a server already running
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llm_backend.client import ChatRequest
from llm_backend.connection import ServerConnection
from llm_backend.facade import LOCAL_MODEL_NAME, client_config, hardware_config
from llm_backend.server import ManagedServer, visible_gpus
from llm_backend.weights import ensure_model_dir
from society import Society, load_run, load_scenario
from society.core.runner import run_scenario
from society.llm.backend import backend_spec
from society.llm.prompts import CITIZEN_NUMBER, DECIMAL, _significant, coarsened

SCENARIO = Path(__file__).parents[1] / "scenarios" / "village_llm_10k.yaml"
ALONE = ["llm.activation.probability=1", "llm.activation.by_role={}"]
MODES: dict[str, list[str]] = {
    "per citizen": ["llm.cohorts.enabled=false", *ALONE],
    "cohorts": ALONE,
    "activation": ["llm.cohorts.enabled=false"],
    "both (as shipped)": [],
}
BASELINE = "per citizen"


@dataclass(frozen=True)
class Outcome:
    """What one run cost and what came out of it."""

    seconds: float
    requests: int
    asked: int
    tokens: int
    asks: np.ndarray  # every amount an LLM citizen asked for, over the rounds played
    stock: np.ndarray  # stock at the end of each round, 0 after a collapse, one entry per round of the scenario
    survived: int


def scaled(citizens: int, rounds: int, seed: int, base_url: str, extra: list[str]) -> list[str]:
    """Overrides that play the scenario with `citizens` LLM citizens, the forest scaled to keep each share."""
    return [
        f"population.size={citizens}", f"rounds={rounds}", f"seed={seed}",
        f"commons.capacity={citizens * 100}", f"commons.initial_stock={citizens * 50}",
        f"commons.collapse_threshold={citizens}", "llm.backend=server", f"llm.base_urls=[{base_url}]", *extra,
    ]


def play(overrides: list[str], rounds: int, where: Path) -> Outcome:
    """Play the scaled scenario into `where` and read what it cost and produced."""
    started = time.perf_counter()
    run = load_run(run_scenario(load_scenario(SCENARIO, overrides), where))
    seconds = time.perf_counter() - started
    table = run.rounds
    stock = np.zeros(rounds)
    stock[: table.height] = table["stock_total"].to_numpy()
    return Outcome(
        seconds=seconds,
        requests=int(table["llm_requests"].sum()),
        asked=run.llm_calls.height,
        tokens=int(table["llm_prompt_tokens"].sum() + table["llm_completion_tokens"].sum()),
        asks=run.citizens.filter(pl.col("policy") == "llm")["requested"].to_numpy(),
        stock=stock,
        survived=int(table.height - table["collapsed"].cast(pl.Int64).sum()),
    )


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two samples (the mean gap between their quantile functions)."""
    if a.size == 0 or b.size == 0:
        return float("nan")
    levels = np.linspace(0, 1, 1001)
    return float(np.mean(np.abs(np.quantile(a, levels) - np.quantile(b, levels))))


def spread_ratio(runs: list[Outcome], baseline: list[Outcome], distance) -> float:
    """Mean distance from `runs` to `baseline`, over the mean distance between baseline runs of other seeds."""
    across = [distance(a, b) for a, b in itertools.product(runs, baseline) if a is not b]
    within = [distance(a, b) for a, b in itertools.combinations(baseline, 2)]
    return float(np.mean(across) / np.mean(within)) if within and np.mean(within) > 0 else float("nan")


@contextlib.contextmanager
def server_url(base_url: str | None, concurrency: int) -> Iterator[str]:
    """`base_url`, or the embedded model's, started here for the benchmark and stopped after it."""
    if base_url:
        yield base_url
        return
    config = hardware_config(ensure_model_dir(), LOCAL_MODEL_NAME, visible_gpus(), concurrency)
    with ManagedServer(config) as server:
        print(f"vLLM started in {server.start_seconds:.0f}s", flush=True)
        yield server.base_url


def fidelity(options: argparse.Namespace, url: str, scratch: Path) -> None:
    outcomes: dict[str, list[Outcome]] = {}
    for index, (mode, extra) in enumerate((mode, MODES[mode]) for mode in options.modes):
        for seed in options.seeds:
            overrides = scaled(options.citizens, options.rounds, seed, url, [*extra, *options.overrides])
            outcome = play(overrides, options.rounds, scratch / f"mode{index}-{seed}")
            outcomes.setdefault(mode, []).append(outcome)
            print(f"{mode}, seed {seed}: {outcome.seconds:.0f}s, {outcome.requests} requests for {outcome.asked} "
                  f"citizens asked, survived {outcome.survived} rounds", flush=True)
    capacity = options.citizens * 100
    baseline = outcomes[BASELINE]
    print(f"\n{options.citizens} LLM citizens x {options.rounds} rounds, seeds {options.seeds}; distances over the "
          f"per-citizen mode's seed-to-seed spread (1 = as far apart as two per-citizen seeds)\n")
    print("| mode | wall s (mean) | requests (mean) | citizens asked (mean) | tokens (mean) | asked amounts: W1 / "
          "spread | stock trajectory / spread | rounds survived (per seed) |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, runs in outcomes.items():
        asks = spread_ratio(runs, baseline, lambda a, b: wasserstein(a.asks, b.asks))
        stock = spread_ratio(runs, baseline, lambda a, b: float(np.mean(np.abs(a.stock - b.stock))) / capacity)
        print(f"| {mode} | {np.mean([r.seconds for r in runs]):.0f} | {np.mean([r.requests for r in runs]):,.0f} | "
              f"{np.mean([r.asked for r in runs]):,.0f} | {np.mean([r.tokens for r in runs]):,.0f} | {asks:.2f} | "
              f"{stock:.2f} | {', '.join(str(r.survived) for r in runs)} |")
    print("\nper-citizen spread itself: asked amounts W1 "
          f"{np.mean([wasserstein(a.asks, b.asks) for a, b in itertools.combinations(baseline, 2)]):.2f}, "
          "median asked amount per mode: "
          + ", ".join(f"{mode} {np.median(np.concatenate([r.asks for r in runs])):.1f}"
                      for mode, runs in outcomes.items()))


class _Captured(Exception):
    """Raised by `_Capture` once it holds the first batch of requests."""


class _Capture:
    """A stand-in connection that keeps the first batch it is sent and stops the round."""

    model = LOCAL_MODEL_NAME

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []

    def complete(self, requests: list[ChatRequest]) -> list:
        self.requests = list(requests)
        raise _Captured


def round_one_requests(citizens: int, seed: int, url: str, overrides: list[str]) -> tuple[list[ChatRequest], Any,
                                                                                       float]:
    """Round 1's harvest requests, one per citizen (no cohorts, everyone asked), the scenario's LLM settings, and
    the most a citizen may take (answers above it are granted that much)."""
    extra = ["llm.cohorts.enabled=false", *ALONE, "llm.cache=\"off\"", *overrides]
    scenario = load_scenario(SCENARIO, scaled(citizens, 1, seed, url, extra))
    society = Society(scenario)
    capture = _Capture()
    society.llm.connection = capture
    with contextlib.suppress(_Captured):
        society.step()
    return capture.requests, scenario.llm, float(society.phases[0].params.max_take)


def _with_text(requests: list[ChatRequest], rewrite: Any, sample: int | None = None) -> list[ChatRequest]:
    """The requests with their observation (the last message) rewritten, as sample `sample` (None: identical
    requests are told apart by their order)."""
    changed = []
    for request in requests:
        *head, last = request.messages
        changed.append(replace(request, messages=(*head, {**last, "content": rewrite(last["content"])}),
                               sample_index=sample))
    return changed


def _amounts(results: list, most: float) -> np.ndarray:
    """The amounts asked for, as the harvest reads them (at most `most`; NaN where an answer failed)."""
    amounts = np.full(len(results), np.nan)
    for k, result in enumerate(results):
        with contextlib.suppress(TypeError, ValueError, KeyError):
            amounts[k] = float(json.loads(result.text)["amount"]) if result.ok else np.nan
    return np.clip(amounts, 0.0, most)


def ablate(options: argparse.Namespace, url: str, scratch: Path) -> None:
    requests, settings, max_take = round_one_requests(options.citizens, options.seeds[0], url, options.overrides)
    connection = ServerConnection(client_config(backend_spec(settings), [url], LOCAL_MODEL_NAME))
    digits, most = settings.cohorts.digits, settings.cohorts.max_samples
    rounded = lambda text: DECIMAL.sub(lambda number: _significant(number.group(), digits), text)  # noqa: E731
    unnumbered = lambda text: CITIZEN_NUMBER.sub("You are ", text)  # noqa: E731
    variants = {
        "as sent": _with_text(requests, str),
        "as sent, again (sampling spread)": _with_text(requests, str, sample=1),
        "citizen's number dropped": _with_text(requests, unnumbered),
        "numbers rounded": _with_text(requests, rounded),
        "both (a cohort's text, one answer each)": _with_text(requests, lambda text: coarsened(text, digits)),
    }
    asked: dict[str, np.ndarray] = {}
    for name, batch in variants.items():
        started = time.perf_counter()
        asked[name] = _amounts(connection.complete(batch), max_take)
        print(f"{name}: {time.perf_counter() - started:.0f}s", flush=True)
    cohort_text = _with_text(requests, lambda text: coarsened(text, digits))
    cohort = np.unique([r.messages[-1]["content"] for r in cohort_text], return_inverse=True)[1]
    sizes = np.bincount(cohort)
    samples = np.minimum(sizes, most)
    place = np.empty(cohort.size, np.int64)
    for number in range(sizes.size):
        members = np.flatnonzero(cohort == number)
        place[members] = np.arange(members.size)
    first = [int(np.flatnonzero(cohort == number)[0]) for number in range(sizes.size)]
    shared = [replace(cohort_text[first[number]], sample_index=j)
              for number in range(sizes.size) for j in range(samples[number])]
    started = time.perf_counter()
    answers = _amounts(connection.complete(shared), max_take)
    offsets = np.concatenate([[0], np.cumsum(samples)[:-1]])
    asked[f"as cohorts send them (at most {most} answers shared)"] = answers[
        offsets[cohort] + place % samples[cohort]]
    print(f"shared: {time.perf_counter() - started:.0f}s, {len(shared)} requests for {len(requests)} citizens",
          flush=True)
    base = asked["as sent"]
    spread = wasserstein(base[~np.isnan(base)], asked["as sent, again (sampling spread)"][
        ~np.isnan(asked["as sent, again (sampling spread)"])])
    print(f"\nround 1 harvest prompts of {len(requests)} citizens, {sizes.size} cohorts (largest {sizes.max()}); "
          f"W1 against `as sent` over the sampling spread (W1 {spread:.3f})\n")
    print(f"| prompts | median ask | mean ask | share asking the most ({max_take:g}) | failed | W1 / spread |")
    print("|---|---|---|---|---|---|")
    for name, amounts in asked.items():
        ok = amounts[~np.isnan(amounts)]
        distance = wasserstein(base[~np.isnan(base)], ok) / spread if spread > 0 else float("nan")
        print(f"| {name} | {np.median(ok):.2f} | {ok.mean():.2f} | {np.mean(ok >= max_take):.2f} | "
              f"{np.isnan(amounts).mean():.1%} | {distance:.2f} |")


def curve(options: argparse.Namespace, url: str, scratch: Path) -> None:
    rows = []
    for size in options.sizes:
        started = time.perf_counter()
        overrides = scaled(size, options.rounds, options.seeds[0], url, options.overrides)
        path = run_scenario(load_scenario(SCENARIO, overrides), scratch / f"n{size}")
        seconds = time.perf_counter() - started
        calls = load_run(path).llm_calls
        for (round_number, phase), part in calls.group_by("round", "phase", maintain_order=True):
            sent = part.select("cohort", "cohort_sample").unique().height
            rows.append({"citizens": size, "round": round_number, "phase": phase, "asked": part.height,
                         "requests": sent, "seconds": seconds})
            print(rows[-1], flush=True)
    table = pl.DataFrame(rows).sort("round", "phase", "citizens")
    print("\n| LLM citizens | round | phase | citizens asked | requests sent | run wall s (all rounds) |")
    print("|---|---|---|---|---|---|")
    for row in table.iter_rows(named=True):
        print(f"| {row['citizens']:,} | {row['round']} | {row['phase']} | {row['asked']:,} | {row['requests']:,} | "
              f"{row['seconds']:.0f} |")
    for (round_number, phase), part in table.group_by("round", "phase", maintain_order=True):
        if part.height >= 2:
            slope = np.polyfit(np.log(part["citizens"].to_numpy()), np.log(part["requests"].to_numpy()), 1)[0]
            print(f"round {round_number}, {phase}: requests ~ N^{slope:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["fidelity", "ablate", "curve"])
    parser.add_argument("--citizens", type=int, default=512, help="LLM citizens (fidelity)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (fidelity; the curve plays 3 unless told)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000, 100000], help="N (curve)")
    parser.add_argument("--base-url", help="an OpenAI-compatible server already running (default: start one)")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES),
                        help=f"fidelity modes to play (the baseline, {BASELINE!r}, always)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                        help="a scenario override for every run, e.g. llm.cohorts.digits=4 (repeatable)")
    options = parser.parse_args()
    options.modes = [BASELINE, *(mode for mode in options.modes if mode != BASELINE)]
    if options.what == "curve" and "--rounds" not in sys.argv:
        options.rounds = 3
    with server_url(options.base_url, options.concurrency) as url, tempfile.TemporaryDirectory() as scratch:
        {"fidelity": fidelity, "ablate": ablate, "curve": curve}[options.what](options, url, Path(scratch))


if __name__ == "__main__":
    main()
