"""Which parameters does a loss actually reach? A gradient-flow check with a readable table.

>>> import torch
>>> from torch import nn
>>> _ = torch.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
>>> report = gradient_flow(model, lambda: model(torch.ones(2, 3)).sum())
>>> report.all_receive
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_module

__all__ = ["GradientReport", "gradient_flow"]


@dataclass
class GradientReport:
    """Per trainable parameter: its name and gradient norm (``None``: no gradient reached it at all)."""

    norms: dict[str, float | None]
    error: str = ""

    @property
    def receiving(self) -> list[str]:
        """Parameters with a non-zero gradient."""
        return [n for n, v in self.norms.items() if v is not None and v > 0]

    @property
    def missing(self) -> list[str]:
        """Parameters whose gradient is ``None`` or exactly zero."""
        return [n for n, v in self.norms.items() if v is None or v == 0]

    @property
    def all_receive(self) -> bool:
        return bool(self.norms) and not self.missing and not self.error

    def __str__(self) -> str:
        width = max([9] + [len(n) for n in self.norms])
        lines = [f"{'parameter':<{width}}  gradient norm"]
        for n, v in self.norms.items():
            lines.append(f"{n:<{width}}  " + ("None (not reached)" if v is None else f"{v:.3e}" + ("  (zero)" if v == 0 else "")))
        if self.error:
            lines.append(f"backward failed: {self.error}")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):  # IPython prints the table
        p.text(str(self))


def gradient_flow(model: nn.Module, loss_fn: Callable[[], torch.Tensor]) -> GradientReport:
    """Run ``loss_fn()`` then ``backward()`` on fresh gradients; report each trainable parameter's grad norm.

    A ``backward`` that fails (e.g. the loss does not require grad because a threshold cut the graph)
    is reported in ``error`` rather than raised, so a notebook can show it. Gradients are cleared after.
    """
    check_module(model, "gradient_flow")
    if not callable(loss_fn):
        raise TypeError("gradient_flow needs a function that computes the loss, e.g. lambda: loss(model(x), y)")
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    for _, p in params:
        p.grad = None
    error = ""
    loss = loss_fn()
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor")
    try:
        loss.backward()
    except RuntimeError as e:
        error = str(e).splitlines()[0]
    norms = {n: (None if p.grad is None else float(p.grad.norm())) for n, p in params}
    for _, p in params:
        p.grad = None
    return GradientReport(norms, error)
