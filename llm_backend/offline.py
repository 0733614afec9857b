"""Environment guards that keep Hugging Face, transformers and vLLM off the network."""

from __future__ import annotations

import os

OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def apply_offline_env() -> None:
    """Set the offline guards in this process before transformers or vLLM is imported."""
    os.environ.update(OFFLINE_ENV)
