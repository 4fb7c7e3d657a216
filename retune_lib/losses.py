"""Weighted and switched losses (lesson 04).

* :func:`class_weights` — per-class weights from the training labels (inverse, square-root or
  "effective number" frequency), scaled so the average example keeps weight 1.
* :func:`target_weights` — per-example weights for a continuous target: the inverse of its (optionally
  smoothed) density, so rare target values count as much as common ones.
* :func:`weighted_mse_loss` — mean squared error with per-example weights; refuses the ``N x 1`` vs ``N``
  shape mix-up that silently broadcasts to ``N x N``.
* :func:`focal_loss` / :class:`FocalLoss` — multi-class softmax focal loss (``gamma=0`` is cross-entropy).
* :func:`one_hot_targets` and :func:`bce_loss` — switching a softmax classifier to independent sigmoids:
  integer labels become float one-hot rows, and label ``-1`` means "none of these classes".

>>> y = torch.tensor([0, 0, 0, 1])
>>> class_weights(y, 2)
tensor([0.6667, 2.0000])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_choice, check_class_targets, check_labels, check_positive_int, check_range, check_tensor

__all__ = [
    "WEIGHT_SCHEMES", "class_weights", "target_weights", "weighted_mse_loss", "focal_loss", "FocalLoss",
    "one_hot_targets", "bce_loss",
]

WEIGHT_SCHEMES = ("inverse", "sqrt", "effective")
REDUCTIONS = ("mean", "sum", "none")


def _float_logits(t, name: str = "logits") -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
        got = f"shape {tuple(t.shape)}, {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be an N x C float tensor, got {got}")
    return t


def class_weights(labels: torch.Tensor, num_classes: int | None = None, scheme: str = "inverse", beta: float = 0.999) -> torch.Tensor:
    """One weight per class from the training labels, for ``nn.CrossEntropyLoss(weight=...)``.

    ``"inverse"``: 1/n_c; ``"sqrt"``: 1/sqrt(n_c) (milder); ``"effective"``: (1 - beta) / (1 - beta^n_c)
    (Cui et al. 2019). The weights are scaled so that the mean weight over the training *examples* is 1:
    the loss keeps its usual size and the learning rate its meaning.

    >>> class_weights(torch.tensor([0, 0, 0, 1]), 2, scheme="sqrt")
    tensor([0.8453, 1.4641])
    """
    labels = check_labels(labels)
    check_choice("scheme", scheme, WEIGHT_SCHEMES)
    if len(labels) == 0:
        raise ValueError("labels is empty: there is nothing to count")
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, found {int(labels.min())}")
    top = int(labels.max()) + 1
    num_classes = top if num_classes is None else check_positive_int(num_classes=num_classes)
    if top > num_classes:
        raise ValueError(f"label {top - 1} is out of range for num_classes={num_classes}")
    counts = torch.bincount(labels.cpu(), minlength=num_classes).double()
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"class(es) {missing} have no examples, so their weight is undefined; drop them or add examples")
    if scheme == "inverse":
        w = 1.0 / counts
    elif scheme == "sqrt":
        w = counts.rsqrt()
    else:
        check_range("beta", beta, 0, 1, high_open=True)
        w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts))
    w = w * counts.sum() / (w * counts).sum()  # mean weight over the examples = 1
    return w.float().to(labels.device)


def target_weights(targets: torch.Tensor, bins: int = 18, smooth: float = 0.0, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """Per-example weights for a continuous target: the inverse of its density, mean weight 1.

    The targets are histogrammed into ``bins`` equal-width bins over ``value_range`` (default: their
    min..max). ``smooth`` > 0 first blurs the histogram with a Gaussian of that many bins' standard
    deviation (label-distribution smoothing, Yang et al. 2021), which keeps a nearly empty bin from
    getting an enormous weight.

    >>> target_weights(torch.tensor([0.0, 0.1, 0.2, 0.9]), bins=2)
    tensor([0.6667, 0.6667, 0.6667, 2.0000])
    """
    if not isinstance(targets, torch.Tensor) or not targets.is_floating_point():
        raise ValueError("targets must be a floating-point tensor of regression targets")
    t = targets.detach().flatten().double().cpu()
    if len(t) == 0 or not torch.isfinite(t).all():
        raise ValueError("targets must be non-empty and finite")
    bins = check_positive_int(bins=bins)
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    check_range("smooth", smooth, 0, allowed="a number >= 0 (Gaussian sigma in bins)")
    lo, hi = (float(t.min()), float(t.max())) if value_range is None else map(float, value_range)
    if not lo < hi:
        raise ValueError(f"value_range must have low < high, got ({lo}, {hi})")
    if ((t < lo) | (t > hi)).any():
        raise ValueError(f"some targets fall outside value_range ({lo}, {hi})")
    index = ((t - lo) / (hi - lo) * bins).long().clamp(0, bins - 1)
    counts = torch.bincount(index, minlength=bins).double()
    if smooth > 0:
        half = max(1, int(math.ceil(3 * smooth)))
        kernel = torch.exp(-0.5 * (torch.arange(-half, half + 1, dtype=torch.float64) / smooth) ** 2)
        kernel = kernel / kernel.sum()
        padded = F.pad(counts[None, None], (half, half), mode="replicate")
        counts = F.conv1d(padded, kernel[None, None]).flatten()
    w = 1.0 / counts[index]
    return (w / w.mean()).to(targets.dtype).reshape(targets.shape).to(targets.device)


def weighted_mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``sum(w * (pred - target)^2) / sum(w)``; plain MSE without ``weight``.

    ``pred`` may be ``N x 1`` for an ``N`` target (a one-output head); any other shape mismatch is refused,
    where ``F.mse_loss`` would broadcast ``N x 1`` against ``N`` into an ``N x N`` loss with only a warning.

    >>> weighted_mse_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 0.0]), torch.tensor([3.0, 1.0]))
    tensor(3.)
    """
    check_tensor(pred, "pred"), check_tensor(target, "target")
    if weight is not None:
        check_tensor(weight, "weight")
    if pred.dim() == 2 and pred.shape[1] == 1 and target.dim() == 1:
        pred = pred[:, 0]
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)} but target has {tuple(target.shape)}; they must match")
    sq = (pred - target.to(pred.dtype)) ** 2
    if weight is None:
        return sq.mean()
    if weight.shape != target.shape:
        raise ValueError(f"weight has shape {tuple(weight.shape)} but target has {tuple(target.shape)}; one weight per example")
    weight = weight.to(sq.dtype)
    return (weight * sq).sum() / weight.sum()


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Softmax focal loss, ``-(1 - p_t)^gamma * log p_t`` (Lin et al. 2017), for integer class targets.

    ``gamma=0`` is exactly cross-entropy; larger ``gamma`` shrinks the loss of examples the model already
    gets right with confidence. ``weight`` (one per class) and ``reduction`` behave as in
    ``F.cross_entropy``: the weighted mean divides by the sum of the examples' weights. For binary or
    multi-label outputs use ``torchvision.ops.sigmoid_focal_loss``.

    >>> z, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 1, 0])
    >>> torch.allclose(focal_loss(z, y, gamma=0.0), F.cross_entropy(z, y))
    True
    """
    _float_logits(logits)
    target = check_class_targets(target, logits)
    check_range("gamma", gamma, 0)
    check_choice("reduction", reduction, REDUCTIONS)
    if weight is not None and (not isinstance(weight, torch.Tensor) or weight.shape != (logits.shape[1],)):
        got = f"shape {tuple(weight.shape)}" if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must hold one value per class ({logits.shape[1]}), got {got}")
    logp = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    loss = -((1 - logp.exp()) ** gamma) * logp if gamma else -logp
    if weight is not None:
        w = weight.to(loss)[target]
        loss = loss * w
        if reduction == "mean":
            return loss.sum() / w.sum()
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module, for ``rt.fit(..., loss_fn=FocalLoss(gamma=2))``."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        check_range("gamma", gamma, 0)
        check_choice("reduction", reduction, REDUCTIONS)
        if weight is not None:
            check_tensor(weight, "weight")
        self.gamma, self.reduction = gamma, reduction
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, target, self.gamma, self.weight, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"


def one_hot_targets(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer labels -> float one-hot rows for ``BCEWithLogitsLoss``; label ``-1`` -> an all-zero row ("none").

    >>> one_hot_targets(torch.tensor([2, -1]), 3)
    tensor([[0., 0., 1.],
            [0., 0., 0.]])
    """
    labels = check_labels(labels)
    num_classes = check_positive_int(num_classes=num_classes)
    if len(labels) and (labels.min() < -1 or labels.max() >= num_classes):
        bad = int(labels.min()) if labels.min() < -1 else int(labels.max())
        raise ValueError(f"label {bad} is out of range: use 0..{num_classes - 1}, or -1 for 'none of these classes'")
    out = torch.zeros(len(labels), num_classes, dtype=dtype, device=labels.device)
    some = labels >= 0
    out[some, labels[some]] = 1
    return out


def bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits, one independent sigmoid per class.

    ``target`` is either integer labels (``N``; ``-1`` = none of the classes), turned into one-hot rows, or
    float multi-hot targets of the logits' shape. ``pos_weight`` as in ``nn.BCEWithLogitsLoss``.

    >>> round(bce_loss(torch.zeros(2, 3), torch.tensor([0, -1])).item(), 4)  # log 2: every sigmoid at 0.5
    0.6931
    """
    check_tensor(logits, "logits"), check_tensor(target, "target")
    if logits.dim() != 2:
        raise ValueError(f"logits must be N x C, got shape {tuple(logits.shape)}")
    if not target.is_floating_point():
        if target.dim() != 1:
            raise ValueError(f"integer targets must be N class indices, got shape {tuple(target.shape)}")
        if len(target) != len(logits):
            raise ValueError(f"logits has {len(logits)} rows but target has {len(target)} labels")
        target = one_hot_targets(target, logits.shape[1], logits.dtype)
    elif target.shape != logits.shape:
        raise ValueError(
            f"float targets must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}; "
            "pass integer labels to have them one-hot encoded"
        )
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=pos_weight)
