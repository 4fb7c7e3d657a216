"""Knowledge distillation: teacher -> student, temperature, T², label-space mapping (lesson 06).

* :func:`kd_loss` — Hinton et al. (2015): ``alpha * CE(student, labels) + (1 - alpha) * T² * KL(teacher_T || student_T)``
  with ``reduction="batchmean"``; without labels it is the soft term alone.
* :func:`map_logits` — put a teacher's logits into the student's label space: each student class gathers one
  or more teacher classes, merged so that the tempered probabilities add up exactly.

>>> z = torch.randn(4, 3)
>>> float(kd_loss(z, z, temperature=4.0)) < 1e-6          # a student that matches its teacher: no soft loss
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_class_targets, check_fraction, check_positive_float, check_range, is_integer

__all__ = ["kd_loss", "map_logits"]


def _logits(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or not t.is_floating_point():
        got = f"shape {tuple(t.shape)}, {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be an N x C float tensor of logits, got {got}")
    return t


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    temperature: float = 4.0,
    alpha: float = 0.0,
    t_squared: bool = True,
) -> torch.Tensor:
    """The distillation loss; the teacher's logits are detached.

    ``temperature`` T softens both distributions; ``t_squared`` multiplies the soft term by T², which keeps
    its gradients the same size whatever T (Hinton et al.; torchdistill does, Avalanche's LwF does not).
    ``alpha`` weighs the hard cross-entropy on ``labels`` (needed when ``alpha > 0``): a 1-d integer tensor
    of class indices 0..C-1, one per row, on the logits' device.

    >>> s, t = torch.zeros(2, 3), torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    >>> round(float(kd_loss(s, t, torch.tensor([0, 2]), temperature=1.0, alpha=0.5)), 4)
    0.7658
    """
    s = _logits(student_logits, "student_logits")
    t = _logits(teacher_logits, "teacher_logits")
    if s.shape != t.shape:
        raise ValueError(
            f"student logits {tuple(s.shape)} and teacher logits {tuple(t.shape)} differ; map the teacher's classes "
            "to the student's first (rt.map_logits)"
        )
    if s.device != t.device:
        raise ValueError(f"student logits are on {s.device} but the teacher's are on {t.device}")
    temp = check_positive_float(temperature=temperature)
    alpha = check_fraction(alpha=alpha)
    if not isinstance(t_squared, (bool, np.bool_)):
        raise TypeError(f"t_squared must be True or False, got {t_squared!r}")
    soft = F.kl_div(F.log_softmax(s / temp, dim=1), F.softmax(t.detach().to(s.dtype) / temp, dim=1), reduction="batchmean")
    if t_squared:
        soft = soft * temp * temp
    if alpha == 0:
        return soft
    if labels is None:
        raise ValueError("alpha > 0 weighs a cross-entropy on labels: pass labels, or alpha=0 for the soft loss alone")
    labels = check_class_targets(labels, s, "labels", "student_logits")
    return alpha * F.cross_entropy(s, labels) + (1 - alpha) * soft


def map_logits(
    teacher_logits: torch.Tensor, groups: Sequence[Sequence[int]] | Mapping[int, Sequence[int]], temperature: float = 1.0
) -> torch.Tensor:
    """Teacher logits in the student's label space: student class ``i`` gathers teacher classes ``groups[i]``.

    Merged as ``T * logsumexp(z[group] / T)``, so ``softmax(result / T)`` is the teacher's tempered probability
    mass of each group, renormalised over the teacher classes that map to some student class. A teacher
    class may appear in one group at most; classes in no group are ignored.

    >>> z = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    >>> torch.softmax(map_logits(z, [[0], [1, 3]]), 1)       # 0.1 vs 0.2 + 0.4, renormalised
    tensor([[0.1429, 0.8571]])
    """
    z = _logits(teacher_logits, "teacher_logits")
    temp = check_positive_float(temperature=temperature)
    if isinstance(groups, (str, bytes)) or not isinstance(groups, Iterable):
        raise TypeError(f"groups must be a list of teacher-class lists (or a dict student -> list), got {type(groups).__name__}")
    if isinstance(groups, Mapping):
        keys = sorted(groups)
        if keys != list(range(len(keys))):
            raise ValueError(f"a mapping must have the student classes 0..n-1 as keys, got {keys}")
        groups = [groups[k] for k in keys]
    seen: set[int] = set()
    index = []
    for i, group in enumerate(groups):
        if is_integer(group):
            group = [group]
        elif isinstance(group, (str, bytes)) or not isinstance(group, Iterable):
            raise TypeError(f"groups[{i}] must be a teacher class or a list of them, got {group!r}")
        group = list(group)
        if not group:
            raise ValueError(f"student class {i} has no teacher class")
        name = f"a teacher class for student class {i}"
        group = [check_range(name, c, 0, z.shape[1] - 1, integer=True) for c in group]
        for c in group:
            if c in seen:
                raise ValueError(f"teacher class {c} appears in more than one group")
            seen.add(c)
        index.append(group)
    if len(index) < 2:
        raise ValueError("need at least two student classes")
    return torch.stack([temp * torch.logsumexp(z[:, g] / temp, dim=1) for g in index], dim=1)
