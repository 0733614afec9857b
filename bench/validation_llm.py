"""GovSim's fishery with the embedded model: default and universalization prompts, several seeds each.

Plays `scenarios/govsim_fishery_llm.yaml` (GovSim's default prompt: the rules, not the sustainable share) and
`scenarios/govsim_fishery_llm_universalization.yaml` against one embedded server and writes, per run, GovSim's
metrics (survival months, efficiency, equality, over-usage) and the share of LLM answers a fallback replaced, to
`bench/validation_llm.json`. `bench/validation.py` turns that file into section (iv) of docs/validation.md, beside
GovSim's published figures.

    python bench/validation_llm.py                    # seeds 1-5, starts the embedded server
    python bench/validation_llm.py --seeds 1 2 3 4 5 6 7 8 9 10 --base-url http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llm_backend.facade import LOCAL_MODEL_NAME, hardware_config
from llm_backend.server import ManagedServer, visible_gpus
from llm_backend.weights import ensure_model_dir
from society import load_run, load_scenario
from society.core.runner import run_scenario
from society.llm.asking import FallbackRateExceeded
from society.rundir.run_metrics import run_metrics

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = {
    "default": ROOT / "scenarios" / "govsim_fishery_llm.yaml",
    "universalization": ROOT / "scenarios" / "govsim_fishery_llm_universalization.yaml",
}
RESULTS = ROOT / "bench" / "validation_llm.json"


def measure(run_dir: Path) -> dict[str, Any]:
    """GovSim's metrics and the fallback share of one finished run."""
    run = load_run(run_dir)
    last = run.rounds.row(-1, named=True)
    validity = run.manifest.get("validity", {})
    return {
        "survival": int(last["survival"]),
        "stopped": run.manifest.get("status") != "completed",
        "survived_all": not last["collapsed"],
        "efficiency": float(last["efficiency"]),
        "equality": float(last["equality"]),
        "over_usage": run_metrics(run_dir)["govsim_over_usage"] or 0.0,
        "fallback_share": float(validity.get("fallback_share", float("nan"))),
        "valid": bool(validity.get("valid", False)),
    }


@contextlib.contextmanager
def server_url(base_url: str | None) -> Iterator[tuple[str, str]]:
    """(base URL, model name): `base_url`, or the embedded model started here and stopped after."""
    if base_url:
        yield base_url, LOCAL_MODEL_NAME
        return
    config = hardware_config(ensure_model_dir(), LOCAL_MODEL_NAME, visible_gpus(), 256)
    with ManagedServer(config) as server:
        yield server.base_url, server.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--base-url", help="an OpenAI-compatible server already running (default: start one)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args()
    runs = []
    with server_url(options.base_url) as (url, model), tempfile.TemporaryDirectory() as scratch:
        for condition, path in CONDITIONS.items():
            for seed in options.seeds:
                overrides = [f"seed={seed}", "llm.backend=server", f"llm.base_urls=[{url}]"]
                run_dir = Path(scratch) / f"{condition}-{seed}"
                with contextlib.suppress(FallbackRateExceeded):  # a run stopped on fallbacks is reported as such
                    run_scenario(load_scenario(path, overrides), run_dir)
                runs.append({"condition": condition, "seed": seed, **measure(run_dir)})
                print(runs[-1], flush=True)
    options.out.write_text(json.dumps({"model": model, "scenarios": {c: p.name for c, p in CONDITIONS.items()},
                                       "runs": runs}, indent=1) + "\n")
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
