"""Layer-wise unfreezing: layer groups, discriminative learning rates, ``freeze_to`` (lesson 05).

* :func:`layer_groups` — the model's parameter-holding blocks in order, input to output (for ResNets:
  ``stem`` = conv1+bn1, ``layer1`` .. ``layer4``, ``fc``).
* :func:`discriminative_lr` — optimizer parameter groups whose learning rate shrinks by ``decay`` per
  group below the head (ULMFiT divides by 2.6). Every group is in the optimizer from the start, frozen
  or not, so unfreezing later needs no ``add_param_group`` and keeps schedulers intact.
* :func:`freeze_to` — freeze the groups before ``n``, make the rest trainable (fastai's ``freeze_to``);
  :func:`gradual_unfreeze` picks ``n`` from the epoch: one more group from the top every ``every`` epochs.
* :func:`fine_tune` — fastai's recipe as one call: a few epochs with the body frozen (a linear probe),
  then everything unfrozen with discriminative rates under one-cycle schedules.

>>> from retune_lib.models import SmallResNet
>>> [name for name, _ in layer_groups(SmallResNet(10))]
['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']
"""

from __future__ import annotations

from torch import nn

from .checks import (
    check_choice,
    check_module,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_range,
)
from .heads import BN_POLICIES, find_aux_heads, find_head, freeze, unfreeze

__all__ = ["layer_groups", "discriminative_lr", "freeze_to", "gradual_unfreeze", "fine_tune"]

_STEM = ("conv1", "bn1")


def _owns_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def layer_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """``[(group_name, [module names])]`` from input to output; the classifier is the last group.

    Top-level children that hold parameters, each a group, with a ResNet's ``conv1``/``bn1`` merged into
    ``stem``. A model that is a feature ``Sequential`` plus a classifier (MobileNet, EfficientNet, VGG)
    is split into the feature blocks instead. Auxiliary classifier branches (GoogLeNet's ``aux1``/``aux2``,
    Inception v3's ``AuxLogits``; see :func:`~retune_lib.heads.find_aux_heads`) belong to the head group.
    """
    check_module(model)
    head_name, _ = find_head(model)
    head_top = head_name.split(".")[0]
    aux_tops = list(dict.fromkeys(n.split(".")[0] for n, _ in find_aux_heads(model)))
    groups: list[tuple[str, list[str]]] = []
    for name, child in model.named_children():
        if not _owns_parameters(child) or name == head_top or name in aux_tops:
            continue
        if name in _STEM:
            if groups and groups[-1][0] == "stem":
                groups[-1][1].append(name)
            else:
                groups.append(("stem", [name]))
        else:
            groups.append((name, [name]))
    if len(groups) == 1 and isinstance(model.get_submodule(groups[0][0]), nn.Sequential):
        body = groups[0][0]
        groups = [(f"{body}.{i}", [f"{body}.{i}"]) for i, blk in model.get_submodule(body).named_children()
                  if _owns_parameters(blk)]
    if not groups:
        raise ValueError("the model has no parameter-holding blocks apart from its classifier")
    groups.append((head_top, aux_tops + [head_top]))
    return groups


def discriminative_lr(model: nn.Module, lr: float, decay: float = 2.6, weight_decay: float = 0.0) -> list[dict]:
    """Parameter groups for a torch optimizer: the head at ``lr``, each group below at ``1/decay`` of the one above.

    All parameters are included, frozen ones too: an optimizer skips parameters whose ``.grad`` is None,
    so they stay put until unfrozen, and unfreezing needs no ``add_param_group``.

    >>> from retune_lib.models import SmallResNet
    >>> groups = discriminative_lr(SmallResNet(10), lr=1e-3, decay=10)
    >>> [(g["name"], g["lr"]) for g in groups[-2:]]
    [('layer4', 0.0001), ('fc', 0.001)]
    """
    lr = check_positive_float(lr=lr)
    decay = check_positive_float(decay=decay)
    if decay < 1:
        raise ValueError(f"decay must be >= 1 (1 = the same rate everywhere), got {decay}")
    check_range("weight_decay", weight_decay, 0)
    groups = layer_groups(model)
    out = []
    for depth, (name, modules) in enumerate(reversed(groups)):
        params = [p for m in modules for p in model.get_submodule(m).parameters()]
        out.append({"params": params, "lr": lr / decay**depth, "weight_decay": weight_decay, "name": name})
    return out[::-1]


def freeze_to(model: nn.Module, n: int, bn: str = "eval") -> list[str]:
    """Freeze the first ``n`` layer groups and make the others trainable; return the trainable groups' names.

    Negative ``n`` counts from the end: ``freeze_to(model, -1)`` trains only the head, ``0`` everything.

    >>> from retune_lib.models import SmallResNet
    >>> freeze_to(SmallResNet(10), -2)
    ['layer4', 'fc']
    """
    check_choice("bn", bn, BN_POLICIES)
    groups = layer_groups(model)
    g = len(groups)
    n = check_range("n", n, -g, g, integer=True, allowed=f"an integer from {-g} to {g} (the model has {g} groups)")
    if n < 0:
        n += len(groups)
    frozen = [m for _, mods in groups[:n] for m in mods]
    thawed = [m for _, mods in groups[n:] for m in mods]
    if frozen:
        freeze(model, frozen, bn=bn)
    if thawed:
        unfreeze(model, thawed)
    return [name for name, _ in groups[n:]]


def gradual_unfreeze(model: nn.Module, epoch: int, every: int = 1, bn: str = "eval") -> list[str]:
    """Unfreeze from the top, one group per ``every`` epochs: epoch 0 trains the head only.

    Call it at the start of each epoch; returns the trainable groups' names.

    >>> from retune_lib.models import SmallResNet
    >>> m = SmallResNet(10)
    >>> gradual_unfreeze(m, 0), gradual_unfreeze(m, 2)
    (['fc'], ['layer3', 'layer4', 'fc'])
    """
    epoch = check_nonnegative_int(epoch=epoch)
    every = check_positive_int(every=every)
    n_groups = len(layer_groups(model))
    return freeze_to(model, max(0, n_groups - 1 - epoch // every), bn=bn)


def fine_tune(
    model: nn.Module,
    train,
    val=None,
    *,
    epochs: int = 10,
    freeze_epochs: int = 1,
    lr: float = 3e-3,
    decay: float = 2.6,
    one_cycle: bool = True,
    batch_size: int = 32,
    device="auto",
    seed: int | None = 0,
    progress: bool = True,
):
    """fastai-style ``fine_tune`` in one call: ``freeze_epochs`` with only the head training at ``lr``,
    then ``epochs`` with every group unfrozen, the head at ``lr / 2`` and each group below ``decay`` times
    slower (:func:`discriminative_lr`), each phase under its own ``OneCycleLR`` (``one_cycle=False``: constant rates).

    ``freeze_epochs=0`` skips the frozen phase. Batch-norm layers of the frozen body stay in eval mode
    during the frozen phase. Returns the :class:`~retune_lib.training.History` of both phases, concatenated.

    >>> import torch
    >>> from retune_lib.models import SmallResNet
    >>> m = SmallResNet(3, widths=(4, 4, 8, 8))
    >>> h = fine_tune(m, (torch.randn(8, 1, 16, 16), torch.arange(8) % 3), epochs=1, device="cpu", progress=False)
    >>> len(h), all(p.requires_grad for p in m.parameters())
    (2, True)
    """
    import torch

    from .data import num_batches
    from .training import History, fit

    epochs = check_positive_int(epochs=epochs)
    freeze_epochs = check_nonnegative_int(freeze_epochs=freeze_epochs)
    lr = check_positive_float(lr=lr)
    history = History()

    def phase(n_epochs, groups, phase_seed, desc):
        optimizer = torch.optim.Adam(groups)
        scheduler = None
        if one_cycle:
            per_epoch = num_batches(train, batch_size)
            if per_epoch is None:
                raise ValueError("one_cycle needs data of known length (an ImageSet, a tuple or a sized DataLoader)")
            steps = n_epochs * per_epoch
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in groups],
                                                            total_steps=steps)
        h = fit(model, train, val, epochs=n_epochs, optimizer=optimizer, scheduler=scheduler, batch_size=batch_size,
                device=device, seed=phase_seed, progress=progress, desc=desc)
        history.epochs.extend(h.epochs)

    if freeze_epochs:
        freeze_to(model, -1)
        head = layer_groups(model)[-1][1]
        phase(freeze_epochs, [{"params": [p for m in head for p in model.get_submodule(m).parameters()], "lr": lr}],
              seed, "fine_tune: head")
    freeze_to(model, 0)
    phase(epochs, discriminative_lr(model, lr=lr / 2, decay=decay), None if seed is None else seed + 1,
          "fine_tune: all")
    return history
