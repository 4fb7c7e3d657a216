"""Head surgery: find a model's classifier, replace it, freeze what should not move (lesson 02).

Works on :class:`~retune_lib.models.SmallResNet`, on every classification model torchvision ships
(ResNet ``fc``; MobileNet, EfficientNet, DenseNet, VGG, ConvNeXt, MaxViT ``classifier``; Swin ``head``;
ViT ``heads.head``; SqueezeNet's 1 x 1 convolution ``classifier.1``; GoogLeNet and Inception v3 with their
auxiliary classifiers) and on your own modules (an attribute named ``fc``/``classifier``/``head``/``heads``,
or the last ``nn.Linear``), or wherever an explicit dotted name points.

>>> from retune_lib.models import SmallResNet
>>> model = SmallResNet(69)
>>> find_head(model)
('fc', Linear(in_features=256, out_features=69, bias=True))
>>> _ = freeze(model); new = replace_head(model, 10)
>>> count_trainable(model) == 256 * 10 + 10
True
"""

from __future__ import annotations

import fnmatch

import torch
from torch import nn

from .checks import check_choice, check_module, check_positive_int, check_range

__all__ = [
    "HEAD_NAMES",
    "BN_POLICIES",
    "find_head",
    "find_aux_heads",
    "replace_head",
    "freeze",
    "unfreeze",
    "recalibrate_bn",
    "count_trainable",
    "trainable_summary",
    "features",
    "EvalBatchNorm2d",
    "set_submodule",
]

HEAD_NAMES = ("fc", "classifier", "head", "heads")
BN_POLICIES = ("eval", "train")
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def _is_conv_classifier(m: nn.Module) -> bool:
    """A 1 x 1, stride-1, ungrouped, unpadded ``nn.Conv2d``: a per-position linear classifier (SqueezeNet)."""
    return (
        isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride == (1, 1) and m.groups == 1
        and m.padding in ((0, 0), "valid")
    )


def _classifier_in(mod: nn.Module, conv: bool = True) -> str | None:
    """Dotted name (relative to ``mod``; ``""`` for ``mod`` itself) of its last ``nn.Linear``, else (if ``conv``)
    of its last 1 x 1 convolution classifier; None if it has neither."""
    inner = _linear_names(mod)
    if inner:
        return inner[-1]
    convs = [n for n, m in mod.named_modules() if _is_conv_classifier(m)] if conv else []
    return convs[-1] if convs else None


def _get(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        cands = _linear_names(model)
        raise ValueError(
            f"the model has no submodule {name!r}; its linear layers are: {', '.join(cands) or 'none'}"
        ) from None


def find_head(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """``(dotted_name, module)`` of the classifier: ``name`` if given, else the first of
    ``fc``, ``classifier``, ``head``, ``heads`` (its last ``nn.Linear`` if it is a container, or its last
    1 x 1 ``nn.Conv2d`` if it holds no ``nn.Linear``, as in SqueezeNet), else the model's last ``nn.Linear``.

    >>> find_head(nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))[0]
    '3'
    >>> from torchvision.models import squeezenet1_1
    >>> find_head(squeezenet1_1(weights=None))
    ('classifier.1', Conv2d(512, 1000, kernel_size=(1, 1), stride=(1, 1)))
    """
    check_module(model)
    if name is not None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a dotted module name such as 'fc' or 'classifier.3', got {name!r}")
        return name, _get(model, name)
    for conv in (False, True):  # an nn.Linear under any of the names first, then a 1 x 1 convolution
        for attr in HEAD_NAMES:
            mod = getattr(model, attr, None)
            if isinstance(mod, nn.Module):
                inner = _classifier_in(mod, conv)
                if inner is not None:
                    full = f"{attr}.{inner}" if inner else attr
                    return full, model.get_submodule(full)
    linears = _linear_names(model)
    if not linears:
        raise ValueError(
            f"no classifier found in {type(model).__name__}: it has no nn.Linear, and no attribute named "
            f"{', '.join(HEAD_NAMES)} holds an nn.Linear or a 1 x 1 nn.Conv2d; pass name='...' with the dotted "
            "name of the layer to replace"
        )
    return linears[-1], model.get_submodule(linears[-1])


def find_aux_heads(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(dotted_name, module)]`` of the auxiliary classifiers: in each top-level submodule whose name starts
    with ``aux`` (any case), its last ``nn.Linear`` (or 1 x 1 convolution) with as many outputs as the main
    head. GoogLeNet has ``aux1.fc2`` and ``aux2.fc2``, Inception v3 ``AuxLogits.fc`` (while ``aux_logits=True``);
    most models have none. :func:`replace_head` replaces them along with the main head.

    >>> from torchvision.models import googlenet
    >>> [name for name, _ in find_aux_heads(googlenet(weights=None, aux_logits=True, init_weights=False))]
    ['aux1.fc2', 'aux2.fc2']
    >>> find_aux_heads(nn.Sequential(nn.Linear(4, 2)))
    []
    """
    check_module(model)
    main_name, main = find_head(model)
    classes = _out_features(main)
    found = []
    for child_name, child in model.named_children():
        if not child_name.lower().startswith("aux") or not isinstance(child, nn.Module):
            continue
        inner = _classifier_in(child)
        if inner is None:
            continue
        full = f"{child_name}.{inner}" if inner else child_name
        layer = model.get_submodule(full)
        if full != main_name and _out_features(layer) == classes:
            found.append((full, layer))
    return found


def _out_features(layer: nn.Module) -> int | None:
    if isinstance(layer, nn.Linear):
        return layer.out_features
    if isinstance(layer, nn.Conv2d):
        return layer.out_channels
    return None


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` in place of ``model``'s submodule at the dotted ``name`` (``"fc"``, ``"classifier.3"``).

    What ``nn.Module.set_submodule`` does from torch 2.5 on; the library supports torch 2.4 too.

    >>> seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    >>> set_submodule(seq, "1", nn.Tanh()); seq[1]
    Tanh()
    """
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if isinstance(parent, (nn.Sequential, nn.ModuleList)) and leaf.isdigit():
        parent[int(leaf)] = new
    else:
        setattr(parent, leaf, new)


def _new_layer(old: nn.Module, head_name: str, classes: int, bias: bool | None) -> nn.Module:
    """A fresh ``nn.Linear`` (or 1 x 1 ``nn.Conv2d``) with ``old``'s inputs and ``classes`` outputs."""
    keep = (getattr(old, "bias", None) is not None) if bias is None else bias
    if isinstance(old, nn.Linear):
        return nn.Linear(old.in_features, classes, bias=keep)
    if _is_conv_classifier(old):
        return nn.Conv2d(old.in_channels, classes, kernel_size=1, bias=keep)
    raise ValueError(
        f"{head_name!r} is a {type(old).__name__}, not nn.Linear: pass the replacement module itself, "
        f"e.g. replace_head(model, nn.Linear(features, {classes}), name={head_name!r}) (a class count rebuilds "
        "only an nn.Linear or a 1 x 1 nn.Conv2d)"
    )


def _placed(layer: nn.Module, old: nn.Module) -> nn.Module:
    ref = next(old.parameters(), None)
    return layer.to(device=ref.device, dtype=ref.dtype) if ref is not None else layer


def replace_head(
    model: nn.Module, new: int | nn.Module, name: str | None = None, bias: bool | None = None
) -> nn.Module:
    """Swap the classifier for ``nn.Linear(in_features, new)`` (or for the module ``new``); return it.

    * A 1 x 1 convolution classifier (SqueezeNet's ``classifier.1``) becomes ``nn.Conv2d(in_channels, new, 1)``.
    * ``bias``: ``None`` (default) gives the new layer a bias exactly when the old one had one (MaxViT's
      head has none); ``True``/``False`` force it.
    * ``new`` may be any integer, NumPy or 0-d tensor integer included (``np.int64(7)``).
    * Auxiliary classifiers (GoogLeNet's ``aux1.fc2``/``aux2.fc2``, Inception v3's ``AuxLogits.fc``; see
      :func:`find_aux_heads`) are replaced too, after the main head and in the same way, when ``new`` is a
      class count and the main head is the one replaced, so the train-mode outputs all have ``new`` classes.
      With a module for ``new`` they are left as they are.

    The new layers are created on the old ones' device and dtype and are trainable. Build the optimizer
    *after* this call: one built before still holds the old layer's parameters.

    >>> from torchvision.models import mobilenet_v3_small
    >>> m = mobilenet_v3_small(weights=None)
    >>> replace_head(m, 5); find_head(m)[0]
    Linear(in_features=1024, out_features=5, bias=True)
    'classifier.3'
    """
    head_name, old = find_head(model, name)
    if bias is not None and not isinstance(bias, bool):
        raise TypeError(f"bias must be True, False or None (as the old head), got {bias!r}")
    if isinstance(new, nn.Module):
        if bias is not None:
            raise ValueError("bias applies when new is a number of classes; a replacement module brings its own layers")
        set_submodule(model, head_name, _placed(new, old))
        return new
    classes = check_range("new", new, 1, integer=True, allowed="a positive number of output classes")
    aux = []
    if name is None or name == _auto_head_name(model):
        aux = find_aux_heads(model)
    layer = _placed(_new_layer(old, head_name, classes, bias), old)
    set_submodule(model, head_name, layer)
    for aux_name, aux_old in aux:
        set_submodule(model, aux_name, _placed(_new_layer(aux_old, aux_name, classes, bias), aux_old))
    return layer


def _auto_head_name(model: nn.Module) -> str | None:
    try:
        return find_head(model)[0]
    except ValueError:
        return None


def _select(model: nn.Module, modules) -> list[tuple[str, nn.Module]]:
    """Resolve ``modules`` (None = whole model; names, glob patterns or modules) to named submodules."""
    if modules is None:
        return [("", model)]
    if isinstance(modules, (str, nn.Module)):
        modules = [modules]
    named = dict(model.named_modules())
    ids = {id(m): n for n, m in named.items()}
    out = []
    for item in modules:
        if isinstance(item, nn.Module):
            if id(item) not in ids:
                raise ValueError(f"the {type(item).__name__} passed is not a submodule of this model")
            out.append((ids[id(item)], item))
        elif isinstance(item, str):
            hits = [(n, m) for n, m in named.items() if n and (n == item or fnmatch.fnmatchcase(n, item))]
            if not hits:
                top = [n for n, _ in model.named_children()]
                raise ValueError(f"no module matches {item!r}; the model's top-level modules are: {', '.join(top)}")
            out.extend(hits)
        else:
            raise TypeError(f"modules must be names, glob patterns or nn.Modules, got {type(item).__name__}")
    return out


class _StaysInEval:
    """Mixin for a frozen batch-norm layer: ``train()`` leaves it in eval mode (statistics held)."""

    def train(self, mode: bool = True):
        return super().train(False)


class EvalBatchNorm1d(_StaysInEval, nn.BatchNorm1d):
    """A ``BatchNorm1d`` frozen by :func:`freeze`: same parameters and state dict, always in eval mode."""


class EvalBatchNorm2d(_StaysInEval, nn.BatchNorm2d):
    """A ``BatchNorm2d`` frozen by :func:`freeze`: same parameters and state dict, always in eval mode."""


class EvalBatchNorm3d(_StaysInEval, nn.BatchNorm3d):
    """A ``BatchNorm3d`` frozen by :func:`freeze`: same parameters and state dict, always in eval mode."""


_EVAL_OF = {nn.BatchNorm1d: EvalBatchNorm1d, nn.BatchNorm2d: EvalBatchNorm2d, nn.BatchNorm3d: EvalBatchNorm3d}
_PLAIN_OF = {v: k for k, v in _EVAL_OF.items()}


def _set_bn_policy(module: nn.Module, frozen: bool) -> None:
    for m in module.modules():
        if frozen and type(m) in _EVAL_OF:
            m.__class__ = _EVAL_OF[type(m)]
            m.eval()
        elif not frozen and type(m) in _PLAIN_OF:
            m.__class__ = _PLAIN_OF[type(m)]
            m.train(module.training)


def freeze(model: nn.Module, modules=None, bn: str = "eval") -> nn.Module:
    """Stop gradients for ``modules`` (default: the whole model) and choose what batch norm does.

    ``modules``: names (``"layer1"``), glob patterns (``"layer[12]*"``), or submodules.
    ``bn="eval"`` (default) keeps their batch-norm layers in eval mode — running statistics frozen —
    even across later ``model.train()`` calls (they become :class:`EvalBatchNorm2d`, same state dict).
    ``bn="train"`` leaves batch norm alone: in train mode its running statistics keep adapting to the
    new data (``requires_grad=False`` never stops that).

    >>> m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    >>> freeze(m).train()[1].training
    False
    """
    check_module(model)
    check_choice("bn", bn, BN_POLICIES)
    for _, mod in _select(model, modules):
        mod.requires_grad_(False)
        _set_bn_policy(mod, frozen=bn == "eval")
    return model


def unfreeze(model: nn.Module, modules=None) -> nn.Module:
    """Make ``modules`` (default: all) trainable again and release their batch norm to follow ``train()``."""
    check_module(model)
    for _, mod in _select(model, modules):
        mod.requires_grad_(True)
        _set_bn_policy(mod, frozen=False)
    return model


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data, batch_size: int = 256, device=None) -> nn.Module:
    """Re-estimate every batch-norm layer's running statistics on ``data`` (AdaBN); weights untouched.

    Statistics are reset and averaged over all of ``data`` (``momentum=None``) in one pass; the model
    comes back in eval mode.
    """
    from .data import batches
    from .training import model_device, select_device

    check_module(model)
    check_positive_int(batch_size=batch_size)
    dev = model_device(model) if device is None else select_device(device)
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    if not bns:
        raise ValueError("the model has no batch-norm layers to recalibrate")
    saved = [(m.momentum, type(m)) for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.__class__ = _PLAIN_OF.get(type(m), type(m))
        m.train()
    try:
        for xb, _ in batches(data, batch_size, False, None, dev):
            model(xb)
    finally:
        for m, (momentum, cls) in zip(bns, saved):
            m.momentum = momentum
            m.__class__ = cls
        model.eval()
    return model


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad=True``.

    >>> count_trainable(freeze(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 3)), "0"))
    9
    """
    check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class _Summary(list):
    def __str__(self) -> str:
        rows = [("module", "trainable", "total", "batch norm")] + [
            (n, f"{t:,}", f"{a:,}", bn) for n, t, a, bn in self
        ]
        w = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join(
            f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]}".rstrip() for r in rows
        )

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def trainable_summary(model: nn.Module) -> _Summary:
    """Rows of (top-level module, trainable params, total params, batch-norm state); prints as a table.

    The batch-norm column says ``frozen (eval)`` when the layers' statistics are held,
    ``adapting`` when they follow ``train()``, ``-`` when there are none.
    """
    check_module(model)
    rows = _Summary()
    for name, mod in list(model.named_children()) + [("total", model)]:
        total = sum(p.numel() for p in mod.parameters())
        bns = [m for m in mod.modules() if isinstance(m, _BN)]
        held = [type(m) in _PLAIN_OF for m in bns]
        bn = "-" if not bns else "frozen (eval)" if all(held) else "adapting" if not any(held) else "mixed"
        rows.append((name, count_trainable(mod), total, bn))
    return rows


@torch.no_grad()
def features(model: nn.Module, data, batch_size: int = 512, device=None, head: str | None = None) -> torch.Tensor:
    """The inputs the classifier sees — the body's output — for every example, computed once (eval mode).

    Works on any model :func:`find_head` understands, by running it with the head swapped for
    ``nn.Identity`` (restored afterwards). Train a new head on these instead of re-running a frozen body
    at every step.

    >>> from retune_lib.models import SmallResNet
    >>> features(SmallResNet(10), torch.zeros(4, 1, 16, 16)).shape
    torch.Size([4, 256])
    """
    from .training import predict

    head_name, old = find_head(model, head)
    set_submodule(model, head_name, nn.Identity())
    try:
        return predict(model, data, batch_size=batch_size, device=device)
    finally:
        set_submodule(model, head_name, old)
