"""Weight conversion bookkeeping: cache location, marker, atomic replace (conversion stubbed)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from llm_backend import weights
from llm_backend.weights import COMPLETE_MARKER, default_model_dir, ensure_model_dir, is_converted


def fake_convert(gguf: Path, out_dir: Path) -> None:
    """Write a stand-in checkpoint."""
    (out_dir / "config.json").write_text("{}")


def test_default_dir_follows_society_cache_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIETY_CACHE_DIR", str(tmp_path))
    assert default_model_dir() == tmp_path / "models" / "smollm2-135m-instruct"


def test_converts_once_with_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def convert(gguf: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        fake_convert(gguf, out_dir)

    monkeypatch.setattr(weights, "convert_gguf", convert)
    target = tmp_path / "m"
    assert ensure_model_dir(target, gguf=tmp_path / "x.gguf") == target
    assert is_converted(target) and (target / "config.json").is_file()
    ensure_model_dir(target, gguf=tmp_path / "x.gguf")
    assert len(calls) == 1
    assert calls[0] != target  # written elsewhere, then renamed into place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_half_finished_conversion_is_redone(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "convert_gguf", fake_convert)
    target = tmp_path / "m"
    target.mkdir()
    (target / "model.safetensors").write_text("truncated")
    ensure_model_dir(target, gguf=tmp_path / "x.gguf")
    assert is_converted(target) and not (target / "model.safetensors").exists()


def test_failed_conversion_leaves_nothing(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(gguf: Path, out_dir: Path) -> None:
        (out_dir / "partial").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(weights, "convert_gguf", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_model_dir(tmp_path / "m", gguf=tmp_path / "x.gguf")
    assert list(tmp_path.iterdir()) == []


def test_orphaned_partial_dirs_are_removed(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "convert_gguf", fake_convert)
    orphan = tmp_path / ".m.999999999.abc.partial"
    orphan.mkdir()
    ensure_model_dir(tmp_path / "m", gguf=tmp_path / "x.gguf")
    assert not orphan.exists() and (tmp_path / "m" / COMPLETE_MARKER).is_file()


def test_installed_gguf_absent_without_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    assert weights.installed_gguf() is None


def test_locate_uses_cached_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIETY_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(weights, "installed_gguf", lambda: None)
    cached = tmp_path / "downloads" / weights.GGUF_NAME
    cached.parent.mkdir()
    cached.write_bytes(b"gguf")
    assert weights.locate_gguf() == cached
