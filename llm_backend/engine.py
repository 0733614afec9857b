"""vLLM inside this process, through its Python API: the same batches, cache and Results as the client, no server."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from llm_backend.cache import ResponseCache
from llm_backend.client import (
    ChatRequest,
    PendingGroup,
    PendingItem,
    Result,
    failure_results,
    lookup,
    record,
    resolve_items,
    split_evenly,
)
from llm_backend.offline import apply_offline_env
from llm_backend.server import ServerConfig, ServerError, require_vllm

_GIB = 1 << 30


class InProcessEngine:
    """A vLLM engine loaded in this process with a `ServerConfig`'s model and CPU settings.

    Loading takes about as long as starting the server (a minute on the CPU). A batch is one `LLM.chat` call:
    vLLM schedules all of it at once; identical requests go in once with ``n`` samples.
    """

    def __init__(self, config: ServerConfig, cache: ResponseCache | None = None, send_seed: bool = False) -> None:
        require_vllm()
        apply_offline_env()
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        # The engine core runs in this process; vLLM would otherwise spawn it anew, re-importing Numba there
        # beyond `_hidden_module`'s reach.
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if config.reserved_cpus is not None:
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = str(config.reserved_cpus)
        from vllm import LLM

        if not (Path(config.model_dir) / "config.json").is_file():
            raise ValueError(f"{config.model_dir} is not a model directory (no config.json)")
        structured = {"backend": "xgrammar", "disable_any_whitespace": config.json_without_whitespace}
        try:
            with _hidden_module("llvmlite.binding.ffi"):
                self._llm: Any = LLM(
                    model=str(config.model_dir),
                    dtype=config.dtype,
                    max_model_len=config.max_model_len,
                    kv_cache_memory_bytes=int(config.kv_cache_gib * _GIB),
                    max_num_seqs=config.max_num_seqs,
                    block_size=config.block_size,
                    enforce_eager=config.enforce_eager,
                    structured_outputs_config=structured,
                )
        except Exception as error:
            raise ServerError(f"vLLM's in-process engine failed to start: {type(error).__name__}: {error}") from None
        self.model = config.served_model_name
        self.cache = cache
        self.send_seed = send_seed

    def close(self) -> None:
        """Stop the engine's worker process and free its memory."""
        engine, self._llm = self._llm, None
        if engine is not None:
            engine.llm_engine.engine_core.shutdown()

    def __enter__(self) -> InProcessEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def complete(self, requests: Sequence[ChatRequest]) -> list[Result]:
        """One Result per request, in order; an engine error fails the batch's uncached requests, never raises."""
        items = resolve_items(requests, self.model)
        results, pending = lookup(items, self.cache)
        if pending:
            for result in self._generate(pending):
                results[result.index] = result
        record(self.cache, items, results)
        return [results[i] for i in range(len(items))]

    def _generate(self, groups: list[list[PendingItem]]) -> list[Result]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = []
        for group in groups:
            request, sampling = group[0].request, group[0].request.sampling
            params.append(SamplingParams(
                n=len(group), temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_tokens,
                stop=list(sampling.stop) or None, seed=request.seed if self.send_seed else None,
                structured_outputs=StructuredOutputsParams(json=dict(request.schema)) if request.schema else None,
            ))
        started = time.monotonic()
        try:
            outputs = self._llm.chat([[dict(m) for m in g[0].request.messages] for g in groups],
                                     sampling_params=params, use_tqdm=False)
        except Exception as error:  # the engine's failure is every request's failure, as a record
            failed = [PendingGroup(group, attempts=1, started=started) for group in groups]
            message = f"{type(error).__name__}: {error}"
            return [r for group in failed for r in failure_results(group, "internal", message)]
        latency = time.monotonic() - started
        results = []
        for group, output in zip(groups, outputs, strict=True):
            prompt_tokens = split_evenly(len(output.prompt_token_ids or ()), len(group))
            for k, (item, completion) in enumerate(zip(group, output.outputs, strict=True)):
                results.append(Result(
                    index=item.index, ok=True, text=completion.text, finish_reason=completion.finish_reason,
                    prompt_tokens=prompt_tokens[k], completion_tokens=len(completion.token_ids), latency_s=latency,
                    attempts=1, cached=False, sample_index=item.sample_index, key=item.key,
                ))
        return results


@contextlib.contextmanager
def _hidden_module(name: str) -> Iterator[None]:
    """Leave `name` out of `sys.modules` while vLLM forks its engine workers.

    vLLM 0.32's CPU worker scans every module namespace at start-up and calls `vars(value).get(...)` on each
    attribute; Numba's `llvmlite.binding.ffi.lib` answers `__dict__` with a function, which kills the worker.
    The module stays loaded and referenced; only the workers' scan no longer meets it.
    """
    module = sys.modules.pop(name, None)
    try:
        yield
    finally:
        if module is not None:
            sys.modules[name] = module
