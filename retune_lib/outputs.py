"""Output transforms that keep gradients flowing (lesson 01).

* :class:`BoundedOutput` — squash a raw output into a known interval ``[lo, hi]``
  (``lo + (hi - lo) * sigmoid(x)``, or the tanh form), trainable everywhere inside it.
* :func:`straight_through` — forward the hard value, backpropagate the soft one's gradient:
  ``soft + (hard - soft).detach()``.
* :func:`ste_threshold`, :func:`ste_round` — the two everyday uses of it.
* :func:`soft_threshold` — a temperature-controlled relaxation of ``x > t``.

>>> import torch
>>> x = torch.tensor([-3.0, 0.2, 4.0], requires_grad=True)
>>> y = ste_threshold(x)
>>> y
tensor([0., 1., 1.], grad_fn=<AddBackward0>)
>>> y.sum().backward(); bool((x.grad > 0).all())
True
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_choice, check_positive_float, check_range, check_tensor

__all__ = ["BoundedOutput", "straight_through", "ste_threshold", "ste_round", "soft_threshold"]

BOUNDED_KINDS = ("sigmoid", "tanh")


class BoundedOutput(nn.Module):
    """Map any real input into ``[lo, hi]`` smoothly: ``lo + (hi - lo) * sigmoid(x)`` or the tanh form.

    ``kind="tanh"`` uses ``lo + (hi - lo) * (tanh(x) + 1) / 2``, which is the sigmoid form at ``2 * x``
    (``(tanh(x) + 1) / 2 == sigmoid(2x)``): the same function, twice as steep, not a different idea.
    Unlike an affine rescale ``a * x + b``, the output can never leave the interval, and unlike
    ``clamp`` the gradient is never exactly zero.

    >>> BoundedOutput(0.0, 10.0)(torch.tensor([-100.0, 0.0, 100.0]))
    tensor([ 0.,  5., 10.])
    >>> x = torch.linspace(-4, 4, 9)
    >>> torch.allclose(BoundedOutput(-1.0, 1.0, "tanh")(x), BoundedOutput(-1.0, 1.0, "sigmoid")(2 * x), atol=1e-6)
    True
    """

    def __init__(self, lo: float, hi: float, kind: str = "sigmoid"):
        super().__init__()
        check_range("lo", lo), check_range("hi", hi)
        if not lo < hi:
            raise ValueError(f"BoundedOutput needs lo < hi, got lo={lo!r}, hi={hi!r}")
        self.kind = check_choice("kind", kind, BOUNDED_KINDS)
        self.lo, self.hi = float(lo), float(hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"BoundedOutput expects a tensor, got {type(x).__name__}")
        unit = torch.sigmoid(x) if self.kind == "sigmoid" else (torch.tanh(x) + 1) / 2
        return self.lo + (self.hi - self.lo) * unit

    def extra_repr(self) -> str:
        return f"lo={self.lo}, hi={self.hi}, kind={self.kind!r}"


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward ``hard``, backward through ``soft``: ``soft + (hard - soft).detach()``.

    >>> soft = torch.tensor([0.3, 0.8], requires_grad=True)
    >>> straight_through(soft.round(), soft)
    tensor([0., 1.], grad_fn=<AddBackward0>)
    """
    if not isinstance(hard, torch.Tensor) or not isinstance(soft, torch.Tensor):
        raise TypeError("straight_through expects two tensors (hard, soft)")
    if hard.shape != soft.shape:
        raise ValueError(f"hard and soft must have the same shape, got {tuple(hard.shape)} and {tuple(soft.shape)}")
    return soft + (hard.to(soft.dtype) - soft).detach()


def soft_threshold(x: torch.Tensor, threshold: float = 0.0, temperature: float = 1.0) -> torch.Tensor:
    """``sigmoid((x - threshold) / temperature)``: a smooth step that becomes ``x > threshold`` as T -> 0.

    >>> soft_threshold(torch.tensor([0.0]), temperature=0.5)
    tensor([0.5000])
    """
    check_tensor(x, "x")
    if not isinstance(threshold, torch.Tensor):
        check_range("threshold", threshold, allowed="a finite number or a tensor")
    check_positive_float(temperature=temperature)
    return torch.sigmoid((x - threshold) / temperature)


def ste_threshold(x: torch.Tensor, threshold: float = 0.0, temperature: float = 1.0) -> torch.Tensor:
    """Hard ``(x > threshold)`` as 0./1. in the forward pass, the gradient of :func:`soft_threshold` backward."""
    soft = soft_threshold(x, threshold, temperature)
    return straight_through((x > threshold).to(soft.dtype), soft)


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` forward, identity gradient backward (the quantisation-aware-training trick).

    >>> x = torch.tensor([0.4, 1.6], requires_grad=True)
    >>> ste_round(x).sum().backward(); x.grad
    tensor([1., 1.])
    """
    return straight_through(torch.round(check_tensor(x, "x")), x)
