#!/usr/bin/env bash
# End-to-end check of the GPU path, for a machine with an NVIDIA GPU and vLLM's CUDA build installed
# (python -m pip install -e '.[gpu]'). It cannot run in CI (no GPU there); run it by hand and keep its output.
#   1. the GPU is seen and the server's settings are the GPU ones;
#   2. the GovSim LLM scenario runs end to end on the managed server (started on the GPU);
#   3. the LLM benchmark (batched vs one at a time vs vLLM's own ceiling) on the same server settings.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}"
python - <<'PY'
from pathlib import Path
from llm_backend.facade import hardware_config
from llm_backend.server import server_command, visible_gpus
gpus = visible_gpus()
if not gpus:
    raise SystemExit("no CUDA GPU is visible to this Python (torch.cuda.device_count() == 0): nothing to check")
config = hardware_config(Path("model"), "model", gpus, concurrency=1024)
print(f"{gpus} GPU(s); the server would run: {' '.join(server_command(config, 8000))}")
PY
society run scenarios/govsim_fishery_llm.yaml --out "$out/govsim" --quiet
society info "$out/govsim"
python bench/bench_llm.py --sizes 256 1024 4096 --concurrency 1024 | tee "$out/bench_llm.txt"
echo "gpu check written to $out"
