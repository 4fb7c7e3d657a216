"""Class expansion: grow or split a trained classifier's outputs, keep the optimizer's state (lesson 03).

* :func:`expand_classes` — append ``n_new`` output rows; the old rows are copied bit for bit, so the old
  classes' logits are unchanged before any training (to the last float bit: a wider matrix product may add
  the same terms in another order; predictions are identical).
* :func:`split_class` — replace one class by children that all start as copies of the parent's row.
* :func:`swap_parameters` — point an existing optimizer at the new Parameters, carrying their state
  (Adam's moments) for the rows that existed before.
* :func:`lwf_loss` — learning without forgetting: distil the old model's outputs on the old classes.

>>> from retune_lib.models import SmallResNet
>>> model = SmallResNet(8)
>>> old_rows = model.fc.weight.detach().clone()
>>> new = expand_classes(model, 2)
>>> torch.equal(new.weight[:8], old_rows), new.out_features
(True, 10)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_choice, check_positive_float, check_positive_int, check_range
from .heads import find_head, set_submodule

__all__ = ["INITS", "expand_classes", "split_class", "swap_parameters", "lwf_loss"]

INITS = ("default", "mean")
SPLIT_KEEPS = ("logits", "probabilities")


def _linear_head(model: nn.Module, name: str | None) -> tuple[str, nn.Linear]:
    head_name, head = find_head(model, name)
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"{head_name!r} is a {type(head).__name__}; class expansion supports an nn.Linear classifier "
            f"(pass name='...' to point at the final nn.Linear inside it)"
        )
    return head_name, head


def _grown(head: nn.Linear, out_features: int) -> nn.Linear:
    w = head.weight
    return nn.Linear(head.in_features, out_features, bias=head.bias is not None, device=w.device, dtype=w.dtype)


def expand_classes(model: nn.Module, n_new: int, init: str = "default", name: str | None = None) -> nn.Linear:
    """Grow the classifier by ``n_new`` outputs, copying the old rows; return the new layer.

    ``init="default"`` keeps PyTorch's initialisation for the new rows; ``"mean"`` starts each new row
    at the mean of the old rows (and bias), so new classes begin with typical, not random, logits.
    The model's other parameters are untouched. Build or fix the optimizer afterwards
    (:func:`swap_parameters`): one built before still holds the old layer.
    """
    n_new = check_positive_int(n_new=n_new)
    check_choice("init", init, INITS)
    head_name, head = _linear_head(model, name)
    old = head.out_features
    new = _grown(head, old + n_new)
    with torch.no_grad():
        new.weight[:old] = head.weight
        if init == "mean":
            new.weight[old:] = head.weight.mean(0, keepdim=True)
        if head.bias is not None:
            new.bias[:old] = head.bias
            if init == "mean":
                new.bias[old:] = head.bias.mean()
    new.weight.requires_grad_(head.weight.requires_grad)
    if head.bias is not None:
        new.bias.requires_grad_(head.bias.requires_grad)
    set_submodule(model, head_name, new)
    return new


def split_class(
    model: nn.Module, index: int, n_children: int = 2, name: str | None = None, keep: str = "logits",
) -> tuple[nn.Linear, list[int]]:
    """Split output ``index`` into ``n_children`` classes that all start as exact copies of the parent.

    The first child keeps index ``index``; the others are appended at the end. Returns the new layer and
    the children's indices. Before training every child has the parent's exact weights, so its logit equals
    the parent's (to the last float bit of the matrix product) and the other classes' logits are unchanged.

    ``keep="probabilities"`` also subtracts ``log(n_children)`` from every child's bias: the children then
    share the parent's softmax probability equally and every other class keeps its probability (with
    copied logits the parent's mass counts ``n_children`` times and the others shrink).

    >>> head = nn.Sequential(nn.Linear(3, 3))
    >>> x = torch.randn(5, 3)
    >>> p = torch.softmax(head(x), 1).detach()
    >>> new, kids = split_class(head, 0, keep="probabilities")
    >>> q = torch.softmax(head(x), 1).detach()
    >>> torch.allclose(q[:, 1:3], p[:, 1:3], atol=1e-6), torch.allclose(q[:, kids].sum(1), p[:, 0], atol=1e-6)
    (True, True)
    """
    check_choice("keep", keep, SPLIT_KEEPS)
    head_name, head = _linear_head(model, name)
    index = check_range("index", index, 0, head.out_features - 1, integer=True)
    n_children = check_range("n_children", n_children, 2, integer=True)
    old = head.out_features
    new = _grown(head, old + n_children - 1)
    with torch.no_grad():
        new.weight[:old] = head.weight
        new.weight[old:] = head.weight[index]
        if head.bias is not None:
            new.bias[:old] = head.bias
            new.bias[old:] = head.bias[index]
            if keep == "probabilities":
                new.bias[[index] + list(range(old, old + n_children - 1))] -= math.log(n_children)
        elif keep == "probabilities":
            raise ValueError("keep='probabilities' adjusts the children's biases; this layer has no bias")
    set_submodule(model, head_name, new)
    return new, [index] + list(range(old, old + n_children - 1))


def swap_parameters(optimizer: torch.optim.Optimizer, replacements: Mapping[nn.Parameter, nn.Parameter]) -> torch.optim.Optimizer:
    """Replace Parameters inside ``optimizer`` (old -> new), carrying their state.

    State tensors shaped like the old parameter (Adam's ``exp_avg``/``exp_avg_sq``, SGD's momentum) are
    copied into the leading slice of zeros shaped like the new one, so the moments of rows that existed
    keep their values and new rows start fresh. Scalars (``step``) are kept.
    """
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch optimizer, got {type(optimizer).__name__}")
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for old, new in replacements.items():
        if id(old) not in held:
            raise ValueError(f"a parameter of shape {tuple(old.shape)} to replace is not in the optimizer")
        if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
            raise ValueError(
                f"cannot carry state from shape {tuple(old.shape)} to {tuple(new.shape)}: the new parameter must "
                "contain the old one (same number of dimensions, no dimension smaller)"
            )
        if old.device != new.device or old.dtype != new.dtype:
            raise ValueError(f"old and new parameters differ in device or dtype ({old.device}/{old.dtype} vs {new.device}/{new.dtype})")
    for group in optimizer.param_groups:
        group["params"] = [replacements.get(p, p) for p in group["params"]]
    for old, new in replacements.items():
        state = optimizer.state.pop(old, None)
        if not state:
            continue
        carried = {}
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == old.shape and value.dim() > 0:
                grown = torch.zeros_like(new, memory_format=torch.preserve_format).to(value.dtype)
                grown[tuple(slice(0, s) for s in old.shape)] = value
                carried[key] = grown
            else:
                carried[key] = value
        optimizer.state[new] = carried
    return optimizer


def lwf_loss(new_logits: torch.Tensor, old_logits: torch.Tensor, temperature: float = 2.0, t_squared: bool = False) -> torch.Tensor:
    """Learning without forgetting: ``KL(softmax(old/T) || softmax(new[:, :C_old]/T))``, batch mean.

    ``new_logits`` may have more columns than ``old_logits`` (the new classes); only the old columns are
    compared. ``t_squared=True`` multiplies by T² (Hinton's scaling); Avalanche's LwF does not.

    >>> z = torch.randn(4, 5)
    >>> float(lwf_loss(z, z[:, :3])) < 1e-6
    True
    """
    if not isinstance(new_logits, torch.Tensor) or not isinstance(old_logits, torch.Tensor):
        raise TypeError("lwf_loss expects two tensors of logits")
    if new_logits.dim() != 2 or old_logits.dim() != 2 or len(new_logits) != len(old_logits):
        raise ValueError(
            f"lwf_loss expects N x C logits for both, got {tuple(new_logits.shape)} and {tuple(old_logits.shape)}"
        )
    if new_logits.device != old_logits.device or new_logits.dtype != old_logits.dtype:
        raise ValueError(
            f"new and old logits differ in device or dtype ({new_logits.device}/{new_logits.dtype} vs "
            f"{old_logits.device}/{old_logits.dtype}); compute the old model's logits on the same device"
        )
    c = old_logits.shape[1]
    if new_logits.shape[1] < c:
        raise ValueError(f"the new model has {new_logits.shape[1]} outputs, fewer than the old model's {c}")
    t = check_positive_float(temperature=temperature)
    loss = F.kl_div(F.log_softmax(new_logits[:, :c] / t, dim=1), F.softmax(old_logits.detach() / t, dim=1), reduction="batchmean")
    return loss * t * t if t_squared else loss
