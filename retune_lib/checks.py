"""Argument checks that fail with one clear line: what was wrong and what is allowed.

Notebooks call these right after their parameters cell, so a typo in a papermill
parameter stops the run at once with a readable message instead of a deep traceback.

>>> check_positive_int(epochs=3)
3
>>> check_choice("dataset", "digits", ["digits", "mnist"])
'digits'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "check_choice",
    "check_positive_int",
    "check_nonnegative_int",
    "check_positive_float",
    "check_fraction",
    "check_int_list",
]


def _one(kw: dict[str, Any]) -> tuple[str, Any]:
    if len(kw) != 1:
        raise TypeError("pass exactly one keyword argument, e.g. check_positive_int(epochs=3)")
    return next(iter(kw.items()))


def _scalar(value: Any) -> Any:
    """A one-element tensor or array as a Python number (``torch.tensor(7)`` -> 7); anything else unchanged."""
    if type(value).__module__.startswith(("torch", "numpy")) and getattr(value, "ndim", None) == 0:
        try:
            return value.item()
        except (AttributeError, RuntimeError, ValueError):
            return value
    return value


def _is_int(value: Any) -> bool:
    value = _scalar(value)
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``ValueError``.

    >>> check_choice("device", "cpu", ["auto", "cpu", "cuda"])
    'cpu'
    """
    allowed = list(allowed)
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name}={value!r} is not supported; allowed: {shown}")
    return value


def check_positive_int(**kw: Any) -> int:
    """Return the single keyword's value if it is an integer >= 1.

    >>> check_positive_int(batch_size=64)
    64
    """
    name, value = _one(kw)
    value = _scalar(value)
    if not _is_int(value) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer (1, 2, ...), got {value!r}")
    return int(value)


def check_nonnegative_int(**kw: Any) -> int:
    """Return the single keyword's value if it is an integer >= 0 (seeds, indices).

    >>> check_nonnegative_int(seed=0)
    0
    """
    name, value = _one(kw)
    value = _scalar(value)
    if not _is_int(value) or int(value) < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_positive_float(**kw: Any) -> float:
    """Return the single keyword's value if it is a finite number > 0 (learning rates, temperatures).

    >>> check_positive_float(lr=1e-3)
    0.001
    """
    name, value = _one(kw)
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(**kw: Any) -> float:
    """Return the single keyword's value if it is a number in [0, 1].

    >>> check_fraction(val_fraction=0.2)
    0.2
    """
    name, value = _one(kw)
    value = _scalar(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


def check_int_list(name: str, values: Any, *, low: int = 1, high: int | None = None) -> list[int]:
    """Return ``values`` as a sorted list of distinct ints in ``[low, high]``.

    >>> check_int_list("k_values", [5, 1, 2], high=50)
    [1, 2, 5]
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of integers, got {values!r}")
    out = []
    for v in values:
        v = _scalar(v)
        if not _is_int(v) or int(v) < low or (high is not None and int(v) > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"{name} must hold integers {bound}, got {v!r} in {values!r}")
        out.append(int(v))
    return sorted(set(out))


def label_range_problem(y, n_classes: int, subject: str, owner: str) -> str | None:
    """Why the integer class labels ``y`` do not fit ``n_classes`` outputs (one ``aminmax``), or None if they do.

    >>> import torch
    >>> label_range_problem(torch.tensor([0, 3]), 3, "targets hold", "the model has 3 outputs")
    'targets hold class 3, out of range: the model has 3 outputs, so labels must lie in 0..2'
    """
    if len(y) == 0 or y.device.type == "meta":
        return None
    lo, hi = (int(v) for v in y.aminmax())
    if 0 <= lo and hi < n_classes:
        return None
    return f"{subject} class {lo if lo < 0 else hi}, out of range: {owner}, so labels must lie in 0..{n_classes - 1}"
