"""LLM decisions per second for one phase: our batched client, one request at a time, and vLLM's own ceiling.

Starts the embedded server (SmolLM2; vLLM's CPU build, or its CUDA build on the GPUs CUDA sees), builds the harvest phase of `scenarios/village_llm.yaml` with
N LLM citizens, and times, against the same server, one after the other:
  (a) the phase's whole batch through our client (`society.llm.ask`: bounded concurrency, structured outputs);
  (b) the same phase's requests one at a time, as a per-agent loop would send them (timed over the first few),
      from a village of the same size with other personas, so that they find the prefix cache as (a) did;
  (c) `vllm bench serve` (vLLM's serving benchmark) with the same prompt and output lengths and the same
      shared prefix, at the same concurrency, without structured outputs: the ceiling.
and the prefix-cache hit rate of (a) from the server's metrics.

    python bench/bench_llm.py                      # N = 256 and 1024; 32 sequential requests
    python bench/bench_llm.py --sizes 64 --sequential 8
    python bench/bench_llm.py --reason             # each decision with a reason (longer answers)
"""

from __future__ import annotations

import argparse
import contextlib
import re
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from llm_backend.client import ChatRequest, Result
from llm_backend.connection import ServerConnection
from llm_backend.facade import LOCAL_MODEL_NAME, client_config, hardware_config
from llm_backend.server import ManagedServer, visible_gpus
from llm_backend.weights import ensure_model_dir
from society import Society, load_scenario
from society.llm.backend import backend_spec

SCENARIO = Path(__file__).parents[1] / "scenarios" / "village_llm.yaml"
OTHER_SEED = 1007
"""The seed of the village whose requests (b) sends: other personas than (a)'s."""


@dataclass
class Recording:
    """A connection that remembers the requests it sent, the results and how long the batch took."""

    inner: ServerConnection
    requests: list[ChatRequest] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def model(self) -> str:
        return self.inner.model

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        started = time.perf_counter()
        results = self.inner.complete(requests)
        self.seconds += time.perf_counter() - started
        self.requests += requests
        self.results += results
        return results


def prefix_cache_counters(server: ManagedServer) -> tuple[float, float]:
    """(hits, queries) of vLLM's prefix cache, in tokens, from its Prometheus metrics."""
    with urllib.request.urlopen(server.base_url.removesuffix("/v1") + "/metrics", timeout=10) as response:
        text = response.read().decode()

    def total(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^vllm:{name}_total(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))

    return total("prefix_cache_hits"), total("prefix_cache_queries")


def village(server: ManagedServer, citizens: int, concurrency: int, reason: bool, seed: int | None = None) -> Society:
    """`scenarios/village_llm.yaml` with `citizens` LLM citizens asking `server` (another seed: other personas)."""
    settings = [f"population.size={citizens}", "llm.backend=server", f"llm.base_urls=[{server.base_url}]",
                f"llm.concurrency={concurrency}", f"llm.reason.enabled={str(reason).lower()}"]
    return Society(load_scenario(SCENARIO, settings + ([f"seed={seed}"] if seed is not None else [])))


def ask_harvest(society: Society, connection: Recording | Capture) -> None:
    """The society's first harvest phase, its LLM citizens asked through `connection`."""
    society.llm.connection = connection
    harvest = society.phases[0]
    harvest.decide(harvest.observe())


def batched(server: ManagedServer, citizens: int, concurrency: int, reason: bool = False) -> Recording:
    """(a): the harvest phase of a village of `citizens` LLM citizens, asked as one batch (with reasons if asked)."""
    society = village(server, citizens, concurrency, reason)
    recording = Recording(ServerConnection(client_config(backend_spec(society.scenario.llm), [server.base_url], server.model)))
    ask_harvest(society, recording)
    return recording


class Captured(Exception):
    """Raised by `Capture` once it holds a phase's requests."""


@dataclass
class Capture:
    """A connection that keeps the requests it is given and sends none."""

    model: str
    requests: list[ChatRequest] = field(default_factory=list)

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        self.requests += requests
        raise Captured


def unsent_requests(server: ManagedServer, citizens: int, concurrency: int, reason: bool) -> list[ChatRequest]:
    """The same phase's requests in a village of the same size with other personas (another seed).

    None of them has been sent, so, as for (a), only the shared rules are in the server's prefix cache; (a)'s own
    requests would be cached whole by then.
    """
    capture = Capture(server.model)
    with contextlib.suppress(Captured):
        ask_harvest(village(server, citizens, concurrency, reason, seed=OTHER_SEED), capture)
    return capture.requests


def sequential(requests: list[ChatRequest], concurrency_one: ServerConnection) -> float:
    """(b): seconds to send `requests` one at a time."""
    started = time.perf_counter()
    for request in requests:
        concurrency_one.complete([request])
    return time.perf_counter() - started


def ceiling(server: ManagedServer, model_dir: Path, prompts: int, input_len: int, prefix_len: int,
            output_len: int, concurrency: int) -> float:
    """(c): requests per second from vLLM's serving benchmark on random prompts of the same shape."""
    from vllm.benchmarks import serve

    parser = argparse.ArgumentParser()
    serve.add_cli_args(parser)
    args = parser.parse_args([
        "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
        "--base-url", server.base_url.removesuffix("/v1"), "--model", server.model, "--tokenizer", str(model_dir),
        "--dataset-name", "random", "--num-prompts", str(prompts), "--random-input-len", str(input_len),
        "--random-prefix-len", str(prefix_len), "--random-output-len", str(output_len), "--ignore-eos",
        "--max-concurrency", str(concurrency), "--disable-tqdm",
    ])
    result = serve.main(args)
    return float(result["request_throughput"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="LLM citizens in the phase")
    parser.add_argument("--sequential", type=int, default=32, help="requests timed one at a time per size")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--reason", action="store_true", help="decisions carry a short reason, as in the fishery")
    options = parser.parse_args()

    model_dir = ensure_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    rows = []
    config = hardware_config(model_dir, LOCAL_MODEL_NAME, visible_gpus(), options.concurrency)
    with ManagedServer(config) as server:
        print(f"vLLM started in {server.start_seconds:.0f}s", flush=True)
        batched(server, 16, options.concurrency, options.reason)  # warm-up: grammar compilation, first batch
        for size in options.sizes:
            hits_before, queries_before = prefix_cache_counters(server)
            recording = batched(server, size, options.concurrency, options.reason)
            hits, queries = (a - b for a, b in zip(prefix_cache_counters(server), (hits_before, queries_before)))
            ok = [r for r in recording.results if r.ok]
            prompt_len = int(np.mean([r.prompt_tokens for r in ok]))
            output_len = max(1, int(round(np.mean([r.completion_tokens for r in ok]))))
            system = recording.requests[0].messages[0]["content"]
            prefix_len = len(tokenizer.encode(system))
            one_at_a_time = ServerConnection(client_config(
                backend_spec(load_scenario(SCENARIO, ["llm.concurrency=1"]).llm), [server.base_url], server.model))
            one_by_one = unsent_requests(server, size, options.concurrency, options.reason)[: options.sequential]
            seconds_one = sequential(one_by_one, one_at_a_time)
            vllm_rate = ceiling(server, model_dir, size, prompt_len - prefix_len, prefix_len, output_len,
                                options.concurrency)
            rows.append({
                "citizens": size, "prompt tokens": prompt_len, "prefix tokens": prefix_len, "output tokens": output_len,
                "ok": f"{len(ok)}/{size}", "batched /s": size / recording.seconds,
                "sequential /s": options.sequential / seconds_one, "vLLM bench /s": vllm_rate,
                "prefix hit rate": hits / queries if queries else float("nan"),
            })
            print(rows[-1], flush=True)
    print()
    print("| citizens | prompt tokens (shared prefix) | output tokens | answers ok | (a) batched decisions/s | "
          "(b) one at a time /s | (c) vLLM bench serve /s | (a)/(c) | (a)/(b) | prefix-cache hit rate (a) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['citizens']:,} | {row['prompt tokens']} ({row['prefix tokens']}) | {row['output tokens']} | {row['ok']} | "
              f"{row['batched /s']:.1f} | {row['sequential /s']:.2f} | {row['vLLM bench /s']:.1f} | "
              f"{row['batched /s'] / row['vLLM bench /s']:.0%} | {row['batched /s'] / row['sequential /s']:.1f}x | "
              f"{row['prefix hit rate']:.0%} |")


if __name__ == "__main__":
    main()
