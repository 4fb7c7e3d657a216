"""Argument checks that fail with one clear line: what was wrong and what is allowed.

Notebooks call these right after their parameters cell, so a typo in a papermill
parameter stops the run at once with a readable message instead of a deep traceback.
Every other module of the library checks its arguments through them: this module is the
bottom of the import graph (it imports nothing from the package).

>>> check_positive_int(epochs=3)
3
>>> check_choice("dataset", "digits", ["digits", "mnist"])
'digits'
>>> check_range("label_smoothing", 0.1, 0, 1, high_open=True)
0.1
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "check_choice",
    "check_range",
    "check_module",
    "check_positive_int",
    "check_nonnegative_int",
    "check_positive_float",
    "check_fraction",
    "check_int_list",
    "check_float_list",
    "check_tensor",
    "check_labels",
    "check_class_targets",
    "label_range_problem",
    "is_integer",
    "to_scalar",
]


def _one(kw: dict[str, Any]) -> tuple[str, Any]:
    if len(kw) != 1:
        raise TypeError("pass exactly one keyword argument, e.g. check_positive_int(epochs=3)")
    return next(iter(kw.items()))


def to_scalar(value: Any) -> Any:
    """A zero-dimensional tensor or array as a Python number (``torch.tensor(7)`` -> 7); anything else unchanged.

    >>> to_scalar(torch.tensor(7)), to_scalar([7])
    (7, [7])
    """
    if type(value).__module__.startswith(("torch", "numpy")) and getattr(value, "ndim", None) == 0:
        try:
            return value.item()
        except (AttributeError, RuntimeError, ValueError):
            return value
    return value


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer: Python's, NumPy's or a 0-d integer tensor; never a bool.

    >>> is_integer(3), is_integer(torch.tensor(3)), is_integer(True), is_integer(3.0)
    (True, True, False, False)
    """
    value = to_scalar(value)
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


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool, integer: bool) -> str:
    """The allowed values in words: 'a number between 0 and 1', 'an integer >= 0', 'a number in [0, 1)' ..."""
    kind = "an integer" if integer else "a number"
    lo, hi = (b if b is None or isinstance(b, int) else f"{b:g}" for b in (low, high))
    if low is None and high is None:
        return kind if integer else "a finite number"
    if high is None:
        return f"{kind} {'>' if low_open else '>='} {lo}"
    if low is None:
        return f"{kind} {'<' if high_open else '<='} {hi}"
    if not low_open and not high_open:
        return f"{kind} between {lo} and {hi}"
    return f"{kind} in {'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    allowed: str | None = None,
) -> int | float:
    """Return ``value`` as an ``int`` (``integer=True``) or a ``float`` if it is a finite number within the bounds.

    ``low``/``high`` are the bounds (``None``: unbounded on that side); each end is closed unless ``low_open`` or
    ``high_open``. Booleans, strings, NaN and infinities are refused; NumPy numbers and 0-d tensors are accepted.
    Anything else raises one ``ValueError`` line naming the argument, what was given and what is allowed
    (``allowed`` words the allowed values when the bounds alone would not say it well).

    >>> check_range("distortion", 1.5, 0, 3)
    1.5
    >>> check_range("n_children", 2, 2, integer=True)
    2
    >>> check_range("confidence", 1.0, 0.5, 1, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: confidence must be a number in [0.5, 1), got 1.0
    """
    value = to_scalar(value)
    if integer:
        ok = is_integer(value)
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        words = allowed or _interval(low, high, low_open, high_open, integer)
        raise ValueError(f"{name} must be {words}, got {value!r}")
    return int(value) if integer else float(value)


def check_module(model: Any, who: str | None = None) -> nn.Module:
    """Return ``model`` if it is a ``torch.nn.Module``; otherwise raise one ``TypeError`` line.

    ``who`` names the function that needs it (``"fit needs a torch.nn.Module, got str"``).

    >>> check_module(nn.Linear(2, 1))
    Linear(in_features=2, out_features=1, bias=True)
    >>> check_module("resnet18", "fit")
    Traceback (most recent call last):
    ...
    TypeError: fit needs a torch.nn.Module, got str
    """
    if not isinstance(model, nn.Module):
        needs = f"{who} needs" if who else "expected"
        raise TypeError(f"{needs} a torch.nn.Module, got {type(model).__name__}")
    return model


def check_tensor(value: Any, name: str) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor``; otherwise raise one ``TypeError`` line naming ``name``.

    >>> check_tensor([0.5], "x")
    Traceback (most recent call last):
    ...
    TypeError: x must be a torch.Tensor, got list
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_positive_int(**kw: Any) -> int:
    """Return the single keyword's value if it is an integer >= 1.

    >>> check_positive_int(batch_size=64)
    64
    """
    name, value = _one(kw)
    return check_range(name, value, 1, integer=True, allowed="a positive integer (1, 2, ...)")


def check_nonnegative_int(**kw: Any) -> int:
    """Return the single keyword's value if it is an integer >= 0 (seeds, indices).

    >>> check_nonnegative_int(seed=0)
    0
    """
    name, value = _one(kw)
    return check_range(name, value, 0, integer=True)


def check_positive_float(**kw: Any) -> float:
    """Return the single keyword's value if it is a finite number > 0 (learning rates, temperatures).

    >>> check_positive_float(lr=1e-3)
    0.001
    """
    name, value = _one(kw)
    return check_range(name, value, 0, low_open=True, allowed="a finite number > 0")


def check_fraction(**kw: Any) -> float:
    """Return the single keyword's value if it is a number in [0, 1].

    >>> check_fraction(val_fraction=0.2)
    0.2
    """
    name, value = _one(kw)
    return check_range(name, value, 0, 1)


def check_int_list(name: str, values: Any, *, low: int = 1, high: int | None = None) -> list[int]:
    """Return ``values`` as a sorted list of distinct ints in ``[low, high]``.

    >>> check_int_list("k_values", [5, 1, 2], high=50)
    [1, 2, 5]
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of integers, got {values!r}")
    out = []
    for v in values:
        v = to_scalar(v)
        if not is_integer(v) or int(v) < low or (high is not None and int(v) > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"{name} must hold integers {bound}, got {v!r} in {values!r}")
        out.append(int(v))
    return sorted(set(out))


def check_float_list(name: str, values: Any, *, low: float = 0.0, low_open: bool = True,
                     high: float | None = None) -> list[float]:
    """Return ``values`` (a list, or one number) as a list of distinct floats in range, in the order given.

    The range is ``(low, high]`` by default (``low_open=False`` closes it below): learning rates, say.

    >>> check_float_list("lr_grid", [3e-3, 1e-3, 3e-3])
    [0.003, 0.001]
    >>> check_float_list("lr_grid", 1e-3)
    [0.001]
    >>> check_float_list("lr_grid", [1e-3, 0])
    Traceback (most recent call last):
    ...
    ValueError: lr_grid must hold numbers > 0, got 0 in [0.001, 0]
    """
    if isinstance(to_scalar(values), numbers.Real) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {values!r}")
    out: list[float] = []
    for v in values:
        try:
            x = check_range(name, v, low, high, low_open=low_open)
        except ValueError:
            bound = _interval(low, high, low_open, False, False).removeprefix("a number ")
            raise ValueError(f"{name} must hold numbers {bound}, got {v!r} in {values!r}") from None
        if x not in out:
            out.append(x)
    return out


def label_range_problem(y, n_classes: int, subject: str, owner: str) -> str | None:
    """Why the integer class labels ``y`` do not fit ``n_classes`` outputs (one ``aminmax``), or None if they do.

    >>> label_range_problem(torch.tensor([0, 3]), 3, "targets hold", "the model has 3 outputs")
    'targets hold class 3, out of range: the model has 3 outputs, so labels must lie in 0..2'
    """
    if len(y) == 0 or y.device.type == "meta":
        return None
    lo, hi = (int(v) for v in y.aminmax())
    if 0 <= lo and hi < n_classes:
        return None
    return f"{subject} class {lo if lo < 0 else hi}, out of range: {owner}, so labels must lie in 0..{n_classes - 1}"


def check_labels(y: Any, name: str = "labels") -> torch.Tensor:
    """Return ``y`` if it is a 1-d tensor of integer class indices; otherwise raise one ``ValueError`` line.

    >>> check_labels(torch.tensor([0.0, 1.0]))
    Traceback (most recent call last):
    ...
    ValueError: labels must be a 1-d tensor of integer class indices, got a 1-d torch.float32 tensor
    """
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        got = f"a {y.dim()}-d {y.dtype} tensor" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name} must be a 1-d tensor of integer class indices, got {got}")
    return y


def check_class_targets(
    y: Any, logits: torch.Tensor, name: str = "target", logits_name: str = "logits"
) -> torch.Tensor:
    """``y`` checked as class indices for ``logits`` (N x C): a 1-d integer tensor of N labels in 0..C-1 on the
    logits' device. One ``aminmax`` reads the range (a device sync on a GPU).

    >>> check_class_targets(torch.tensor([0, 2]), torch.zeros(2, 3))
    tensor([0, 2])
    """
    y = check_labels(y, name)
    if len(y) != len(logits):
        raise ValueError(f"{logits_name} has {len(logits)} rows but {name} has {len(y)} labels")
    if y.device != logits.device:
        raise ValueError(f"{name} is on {y.device} but {logits_name} is on {logits.device}; put them on the same device")
    problem = label_range_problem(y, logits.shape[1], f"{name} holds", f"{logits_name} has {logits.shape[1]} classes")
    if problem:
        raise ValueError(problem)
    return y
