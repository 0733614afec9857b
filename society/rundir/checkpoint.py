"""The checkpoint format: JSON for the structure and numbers, an `.npz` for the arrays; nothing in it can run code.

A checkpoint (`Society.checkpoint()`: dicts with string keys, lists, strings, numbers, booleans, None and numpy
arrays of plain dtypes) is split in two files. The arrays go into `checkpoint-<digest>.npz` (named by the first
16 hex digits of its SHA-256, read back with `allow_pickle=False`); the rest into `checkpoint.json`, where each
array is `{"$array": "<member>"}`. The JSON records the format number, the npz's name and SHA-256, and a
SHA-256 of its own state tree, so a damaged or edited pair is refused before anything is restored.

Writing keeps the pair consistent: the npz is written under its own (content-derived) name first, the latest
JSON becomes `checkpoint-previous.json`, the new JSON is renamed into place, and only then are npz files no
JSON names removed. The previous checkpoint lets a resume replay a round whose table files were damaged. A kept
checkpoint (`output.keep_checkpoints`) is the same pair in `checkpoints/` (the npz hard-linked where the file
system allows, else written again), never removed: a fork starts from the latest one before its round.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from society.rundir.layout import (
    CHECKPOINT,
    CHECKPOINT_ARRAYS,
    LEGACY_CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    RunDataError,
    checkpoint_arrays_file,
    is_checkpoint_arrays_name,
    kept_checkpoint_file,
    kept_checkpoint_files,
)

FORMAT = 1
ARRAY_KEY = "$array"
_PLAIN_KINDS = frozenset("biufcU")  # bool, integers, floats, complex, fixed-width unicode: nothing pickled
GROWN = "interventions/grown/"  # where a checkpoint keeps what an intervention grew (society.core.interventions)


def encode(checkpoint: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON tree of a checkpoint, with each array replaced by a reference, and the arrays by member name."""
    arrays: dict[str, np.ndarray] = {}

    def walk(value: Any, where: str) -> Any:
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in _PLAIN_KINDS:
                raise TypeError(f"checkpoint {where}: array of dtype {value.dtype} cannot be stored without pickle")
            name = f"a{len(arrays)}"
            arrays[name] = value
            return {ARRAY_KEY: name}
        if isinstance(value, dict):
            if not all(isinstance(key, str) for key in value) or ARRAY_KEY in value:
                raise TypeError(f"checkpoint {where}: keys must be strings (other than {ARRAY_KEY!r})")
            return {key: walk(item, f"{where}/{key}") for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item, f"{where}/{index}") for index, item in enumerate(value)]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"checkpoint {where}: {type(value).__name__} is not JSON or an array")

    return walk(checkpoint, ""), arrays


def decode(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    """A checkpoint from its JSON tree and arrays (the inverse of `encode`, tuples coming back as lists)."""
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_KEY}:
            return arrays[tree[ARRAY_KEY]]
        return {key: decode(item, arrays) for key, item in tree.items()}
    if isinstance(tree, list):
        return [decode(item, arrays) for item in tree]
    return tree


def write_checkpoint(
    run: Path, checkpoint: dict[str, Any], write: Callable[[Path, bytes], None], kept: bool = False
) -> None:
    """Store `checkpoint` in `run` with `write` (an atomic file writer), keeping the previous one; when `kept`,
    also as the kept checkpoint of its round (`checkpoints/`, never removed)."""
    tree, arrays = encode(checkpoint)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    arrays_file = run / checkpoint_arrays_file(digest)
    if not arrays_file.is_file():
        write(arrays_file, data)
    record = {
        "format": FORMAT,
        "round": checkpoint["round"],
        "arrays": {"file": arrays_file.name, "sha256": digest},
        "state_sha256": _tree_digest(tree),
        "state": tree,
    }
    text = json.dumps(record, separators=(",", ":")).encode()
    if kept:
        kept_file = kept_checkpoint_file(run, checkpoint["round"])
        kept_file.parent.mkdir(exist_ok=True)
        kept_arrays = kept_file.parent / arrays_file.name
        if not kept_arrays.is_file():
            try:
                os.link(arrays_file, kept_arrays)  # the same bytes, not written twice
            except OSError:
                write(kept_arrays, data)
        write(kept_file, text)
    if (run / CHECKPOINT).is_file():
        os.replace(run / CHECKPOINT, run / PREVIOUS_CHECKPOINT)
    write(run / CHECKPOINT, text)
    named = {_named_arrays(run / name) for name in (CHECKPOINT, PREVIOUS_CHECKPOINT)}
    for stale in run.glob(CHECKPOINT_ARRAYS):
        if stale.name not in named:
            stale.unlink()


def checkpoint_files(run: Path) -> list[Path]:
    """The run's checkpoints, latest first (refusing an older version's pickle checkpoint unread)."""
    legacy = run / LEGACY_CHECKPOINT
    if legacy.exists():
        raise RunDataError(
            f"{legacy}: this run was written by an older version of society (a pickle checkpoint); it cannot be "
            "resumed safely and is not read (its tables still load)"
        )
    return [run / name for name in (CHECKPOINT, PREVIOUS_CHECKPOINT) if (run / name).is_file()]


def fork_checkpoint_files(run: Path) -> list[Path]:
    """Every checkpoint a fork may start from: the latest, the previous and the kept ones."""
    return checkpoint_files(run) + kept_checkpoint_files(run)


def checkpoint_round(path: Path) -> int:
    """The round a checkpoint file was taken after (validated as a whole number)."""
    record = _read_record(path)
    return record["round"]


def read_checkpoint(path: Path, template: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint in `path` (a checkpoint JSON), validated against `template` (a fresh society's checkpoint).

    Every array must exist where the template has one, with its dtype and shape (an array the template holds
    empty, a queue, may have any length); a RunDataError names the file and what is wrong.
    """
    record = _read_record(path)
    arrays_file = path.parent / record["arrays"]["file"]
    try:
        data = arrays_file.read_bytes()
    except OSError as error:
        raise RunDataError(f"{arrays_file}: cannot be read ({error.strerror or error}); the checkpoint is incomplete") \
            from None
    if hashlib.sha256(data).hexdigest() != record["arrays"]["sha256"]:
        raise RunDataError(f"{arrays_file}: its checksum does not match {path.name}; the file is damaged")
    arrays = _load_arrays(arrays_file, data)
    referenced = _references(record["state"])
    if referenced != set(arrays):
        raise RunDataError(f"{arrays_file}: holds arrays {sorted(set(arrays))}, {path.name} names {sorted(referenced)}")
    checkpoint = decode(record["state"], arrays)
    if not isinstance(checkpoint, dict) or checkpoint.get("round") != record["round"]:
        raise RunDataError(f"{path}: its state is not a checkpoint of round {record['round']}")
    _check_arrays(path, _flat_arrays(checkpoint), _flat_arrays(template))
    return checkpoint


def _read_record(path: Path) -> dict[str, Any]:
    """A checkpoint JSON's top level, its format, names and checksum checked."""
    try:
        record = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDataError(f"{path}: not valid JSON ({error}); the checkpoint is damaged") from None
    except OSError as error:
        raise RunDataError(f"{path}: cannot be read ({error.strerror or error})") from None
    if not isinstance(record, dict):
        raise RunDataError(f"{path}: not a checkpoint (expected a JSON object)")
    if type(record.get("format")) is not int or record["format"] != FORMAT:
        raise RunDataError(f"{path}: checkpoint format {record.get('format')!r}, this version reads format {FORMAT}")
    arrays = record.get("arrays")
    if (not isinstance(arrays, dict) or not isinstance(arrays.get("file"), str)
            or not is_checkpoint_arrays_name(arrays["file"]) or not isinstance(arrays.get("sha256"), str)):
        raise RunDataError(f"{path}: names no valid arrays file (expected checkpoint-<digest>.npz and its sha256)")
    if type(record.get("round")) is not int or record["round"] < 0:
        raise RunDataError(f"{path}: its round is not a whole number")
    if "state" not in record or record.get("state_sha256") != _tree_digest(record["state"]):
        raise RunDataError(f"{path}: its state does not match its checksum; the checkpoint is damaged")
    return record


def _named_arrays(path: Path) -> str | None:
    """The npz a checkpoint JSON names (None when it is missing or unreadable)."""
    try:
        return json.loads(path.read_bytes())["arrays"]["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tree_digest(tree: Any) -> str:
    return hashlib.sha256(json.dumps(tree, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _load_arrays(file: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every member of an npz, refusing anything that would need pickle."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise RunDataError(f"{file}: not a readable array file ({error})") from None


def _references(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        if set(tree) == {ARRAY_KEY}:
            return {str(tree[ARRAY_KEY])}
        return set().union(*(_references(item) for item in tree.values()))
    if isinstance(tree, list):
        return set().union(*(_references(item) for item in tree))
    return set()


def _flat_arrays(tree: Any, where: str = "") -> dict[str, np.ndarray]:
    """Every array in a checkpoint by its path (e.g. `state/wealth`, `phases/2/partner_order`)."""
    if isinstance(tree, np.ndarray):
        return {where: tree}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list | tuple) else []
    found: dict[str, np.ndarray] = {}
    for key, item in items:
        found |= _flat_arrays(item, f"{where}/{key}" if where else str(key))
    return found


def _check_arrays(path: Path, found: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """Each array where the scenario's society has one, with its dtype and shape; a RunDataError otherwise.

    A checkpoint taken after an intervention added citizens holds the grown make-up (`interventions/grown/*`), and
    its arrays of the scenario's population length may have the grown population's length; one taken after a
    removal also holds the state column `present`.
    """
    grown = {name: array for name, array in found.items() if name.startswith(GROWN)}
    if f"{GROWN}present" in grown:  # a removal added the state column `present`
        grown["state/present"] = found["state/present"]
    if set(found) - set(grown) != set(expected):
        differ = sorted((set(found) - set(grown)) ^ set(expected))
        raise RunDataError(f"{path}: does not fit this run's scenario (arrays differ at {differ[:5]})")
    population = (expected["state/group"].shape[0], grown[f"{GROWN}group"].shape[0]) if grown else ()
    for name, want in expected.items():
        got = found[name]
        same_kind = got.dtype == want.dtype or (got.dtype.kind == want.dtype.kind == "U")
        queue = want.ndim >= 1 and want.shape[0] == 0
        grew = want.ndim >= 1 and want.shape[0] in population[:1] and got.shape[0] in population
        same_shape = got.shape == want.shape or ((queue or grew) and got.shape[1:] == want.shape[1:])
        if not same_kind or not same_shape:
            raise RunDataError(
                f"{path}: array {name} is {got.dtype}{list(got.shape)}, this run's scenario needs "
                f"{want.dtype}{list(want.shape)}"
            )
