"""A small on-disk cache: atomic writes, validated reads.

Files are written to a temporary name beside the target and renamed into place, so a crash or a
parallel run never leaves a half-written file under the real name. Reads use
``torch.load(weights_only=True)`` and check a SHA-256 digest over every tensor, so a truncated or
corrupted file is reported in one line and never used.

The directory is ``$RETUNE_CACHE`` if set, else ``$XDG_CACHE_HOME/retune``, else ``~/.cache/retune``.

>>> import pathlib, tempfile, torch
>>> p = save_checked({"w": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "demo.pt")
>>> load_checked(p)["w"]
tensor([1., 1.])
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
from typing import Any

import torch

__all__ = ["cache_dir", "save_checked", "load_checked", "tensor_digest", "CacheError"]

_FORMAT = 1


class CacheError(RuntimeError):
    """A cached file is missing, unreadable, truncated or does not match its digest."""


def cache_dir() -> pathlib.Path:
    """The cache directory (created if needed)."""
    env = os.environ.get("RETUNE_CACHE")
    if env:
        root = pathlib.Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache") / "retune"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        where = f"RETUNE_CACHE={env!r}" if env else f"the cache directory {root}"
        raise CacheError(f"{where} is not a directory (a file is in the way); point RETUNE_CACHE at a folder") from None
    return root


_LEAVES = (torch.Tensor, str, bytes, int, float, complex, bool, type(None), torch.Size, torch.dtype, torch.device)


def _check_storable(obj: Any, where: str = "payload") -> None:
    """Refuse what ``torch.load(weights_only=True)`` would refuse later: only tensors, numbers, strings and
    dicts/lists/tuples of them are stored."""
    if isinstance(obj, _LEAVES):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where} has a key {k!r} of type {type(k).__name__}: keys must be strings or integers")
            _check_storable(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_storable(v, f"{where}[{i}]")
    else:
        raise TypeError(
            f"{where} is a {type(obj).__name__}: save_checked stores tensors, numbers, strings and dicts/lists/tuples "
            "of them (store a model's state_dict(), not the model), so that a load never runs pickled code"
        )


def _tensors(obj: Any, prefix: str = ""):
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _tensors(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def tensor_digest(payload: Any) -> str:
    """SHA-256 over every tensor in ``payload`` (nested dicts, lists, tuples): names, dtypes, shapes and bytes.

    What a cache file is checked against, and what a base's weights are named by (its first 12 digits).

    >>> zeros, ones = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
    >>> tensor_digest(zeros) == tensor_digest({"w": torch.zeros(2)}) != tensor_digest(ones)
    True
    """
    h = hashlib.sha256()
    for name, t in _tensors(payload):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _path(name: str | os.PathLike) -> pathlib.Path:
    p = pathlib.Path(name)
    return p if p.is_absolute() else cache_dir() / p


def save_checked(payload: dict, name: str | os.PathLike) -> pathlib.Path:
    """Write ``payload`` (a dict of tensors, numbers, strings, lists) atomically with a digest.

    ``name`` is relative to :func:`cache_dir` unless absolute. Returns the final path.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"save_checked stores a dict, got {type(payload).__name__}")
    _check_storable(payload)
    path = _path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"format": _FORMAT, "digest": tensor_digest(payload), "payload": payload}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checked(name: str | os.PathLike) -> dict:
    """Read a file written by :func:`save_checked`; raise :class:`CacheError` (one line) if it is bad."""
    path = _path(name)
    if not path.is_file():
        raise CacheError(f"no cached file at {path}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage bytes, pickled objects we refuse to run ...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CacheError(f"cached file {path} is unreadable ({type(e).__name__}: {reason[:120]})") from None
    if not isinstance(record, dict) or record.get("format") != _FORMAT or "payload" not in record:
        raise CacheError(f"cached file {path} is not a retune cache file of format {_FORMAT}")
    if tensor_digest(record["payload"]) != record.get("digest"):
        raise CacheError(f"cached file {path} is corrupted: its contents do not match the stored digest")
    return record["payload"]
