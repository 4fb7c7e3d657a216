"""Training helpers: devices, seeds, an optimizer over what is trainable, ``fit`` and ``evaluate``.

``fit`` is a plain PyTorch loop you could write yourself (and lesson 00 does, once): forward,
loss, backward, step; a ``tqdm.auto`` bar that works in JupyterLab and in headless runs; a
per-epoch history; and a stop with a clear message if the loss turns NaN or infinite.

>>> import torch
>>> from retune_lib.data import load_digits
>>> from retune_lib.models import SmallResNet
>>> train, test = load_digits().split(0.3)
>>> model = SmallResNet(num_classes=10)
>>> history = fit(model, train.per_class(5), test, epochs=1, progress=False)
>>> sorted(history.last)
['epoch', 'seconds', 'train_acc', 'train_loss', 'val_acc', 'val_loss']
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .checks import (
    check_choice,
    check_class_targets,
    check_module,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_range,
    check_tensor,
    label_range_problem,
)
from .data import batches, num_batches
from .trials import trial_seeds

__all__ = [
    "DEVICES",
    "start",
    "TrainingDiverged",
    "History",
    "select_device",
    "seed_everything",
    "trainable_parameters",
    "count_parameters",
    "make_optimizer",
    "fit",
    "evaluate",
    "predict",
    "accuracy",
]

DEVICES = ("auto", "cpu", "cuda", "mps")
OPTIMIZERS = ("adam", "adamw", "sgd")


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and step."""


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; asking for one that is absent is an error.

    >>> select_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        device = device.type if device.index is None else f"{device.type}:{device.index}"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cpu', got {type(device).__name__}")
    kind = device.split(":", 1)[0]
    check_choice("device", kind, DEVICES)
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    available = ["auto", "cpu"] + (["cuda"] if cuda else []) + (["mps"] if mps else [])
    if kind == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if kind not in available:
        raise ValueError(f"device={device!r} is not available on this machine; allowed here: {', '.join(map(repr, available))}")
    return torch.device(device)


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a CPU generator for shuffling.

    >>> a = seed_everything(3); x = torch.rand(2)
    >>> b = seed_everything(3); torch.equal(x, torch.rand(2))
    True
    """
    seed = check_nonnegative_int(seed=seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def start(seed: int = 0, device: str | torch.device = "auto", n_seeds: int = 5) -> tuple[torch.device, list[int]]:
    """A notebook's first call: check ``seed`` and ``n_seeds``, seed every generator, pick the device.

    Returns ``(device, trial_seeds)``: the device from :func:`select_device` and the ``n_seeds`` paired trial seeds
    of :func:`~retune_lib.trials.trial_seeds` (3 to 100; seed 0 gives 0, 1, 2 ..., seed 1 gives 100, 101 ...).
    A bad value raises one ``ValueError`` line naming it.

    >>> start(0, "cpu", 3)
    (device(type='cpu'), [0, 1, 2])
    >>> start(0, "cpu", 2)
    Traceback (most recent call last):
    ...
    ValueError: n_seeds must be at least 3 (a claim needs 3 paired trials), got 2
    """
    seeds = trial_seeds(seed, n_seeds)
    dev = select_device(device)
    seed_everything(seed)
    return dev, seeds


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters with ``requires_grad=True``: what an optimizer should get."""
    return [p for p in model.parameters() if p.requires_grad]


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts.

    >>> count_parameters(nn.Linear(3, 2))
    (8, 8)
    """
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in trainable_parameters(model)), total


def make_optimizer(
    model: nn.Module | Iterable, name: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0, **kw
) -> torch.optim.Optimizer:
    """A torch optimizer over the *trainable* parameters of ``model`` (or over given param groups).

    Frozen parameters are left out, so weight decay and momentum can never move them.

    >>> opt = make_optimizer(nn.Linear(3, 2), "sgd", lr=0.1, momentum=0.9)
    >>> type(opt).__name__
    'SGD'
    """
    check_choice("optimizer", name, OPTIMIZERS)
    check_positive_float(lr=lr)
    check_range("weight_decay", weight_decay, 0)
    if isinstance(model, nn.Module):
        params = trainable_parameters(model)
        if not params:
            raise ValueError("the model has no trainable parameters: unfreeze something before building an optimizer")
    else:
        if isinstance(model, (str, bytes, torch.Tensor)) or not isinstance(model, Iterable):
            raise TypeError(f"make_optimizer needs a model, or an iterable of parameters or param-group dicts, got {type(model).__name__}")
        params = list(model)
        if not params:
            raise ValueError("make_optimizer got an empty parameter list")
        bad = next((p for p in params if not isinstance(p, (torch.Tensor, dict))), None)
        if bad is not None:
            raise TypeError(f"make_optimizer needs parameters (tensors) or param-group dicts, got {type(bad).__name__}")
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[name]
    return cls(params, lr=lr, weight_decay=weight_decay, **kw)


@dataclass
class History:
    """Per-epoch records from :func:`fit` (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``seconds``)."""

    epochs: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict:
        if not self.epochs:
            raise ValueError("the history is empty: fit has not completed an epoch")
        return self.epochs[-1]

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(empty)"
        keys = [k for k in self.last if k != "epoch"]
        return f"History({len(self)} epochs; last: " + ", ".join(f"{k}={self.last[k]:.4g}" for k in keys) + ")"


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters).

    >>> model_device(nn.Linear(2, 1))
    device(type='cpu')
    """
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _check_model(model, who: str) -> None:
    check_module(model, who)
    if any(p.device.type == "meta" for p in model.parameters()):
        raise ValueError(
            "the model's parameters are on the meta device (shapes without data): give them data first, "
            "e.g. model.to_empty(device='cpu') then load_state_dict(...)"
        )


def _forward(model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    """``model(xb)``; a failure with inputs of another dtype than the parameters is explained in one line."""
    try:
        return model(xb)
    except RuntimeError as e:
        p = next((q for q in model.parameters() if q.is_floating_point()), None)
        if p is None or xb.dtype == p.dtype:
            raise
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"inputs are {xb.dtype} but the model's parameters are {p.dtype}: convert the inputs "
            f"(e.g. x.to({p.dtype})); torch said: {reason}"
        ) from None


def _loss(loss_fn: Callable, out: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """``loss_fn(out, yb)``; a failure from labels out of range or float labels for a classifier is explained."""
    try:
        return loss_fn(out, yb)
    except (IndexError, RuntimeError, ValueError):
        problem = _target_problem(out, yb)
        if problem is None:
            raise
        raise ValueError(problem) from None


def _target_problem(out: torch.Tensor, yb: torch.Tensor) -> str | None:
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and yb.dim() == 1 and out.shape[1] > 1):
        return None
    if yb.is_floating_point():
        return (
            f"targets are {yb.dtype} of shape {tuple(yb.shape)} but the model outputs {out.shape[0]} x {out.shape[1]} "
            "class scores: a classifier's targets must be int64 class indices (y.long())"
        )
    if yb.dtype == torch.bool:
        return None
    return label_range_problem(yb, out.shape[1], "targets hold", f"the model has {out.shape[1]} outputs")


def _nonfinite(xb: torch.Tensor, yb: torch.Tensor) -> str:
    """Which of a batch's inputs and targets hold NaN or infinite values ("" if neither)."""
    bad = [what for what, t in (("inputs", xb), ("targets", yb)) if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    return " and ".join(bad)


@torch.no_grad()
def predict(model: nn.Module, data, batch_size: int = 1024, device: str | torch.device | None = None) -> torch.Tensor:
    """The model's outputs (logits) for every example, in order, in eval mode, on the CPU.

    >>> predict(nn.Flatten(), torch.zeros(3, 1, 2, 2)).shape
    torch.Size([3, 4])
    """
    _check_model(model, "predict")
    batch_size = check_positive_int(batch_size=batch_size)
    dev = model_device(model) if device is None else select_device(device)
    if isinstance(data, torch.Tensor):
        data = (data, torch.zeros(len(data), dtype=torch.int64))
    was = model.training
    model.eval()
    try:
        outs = [_forward(model, xb).float().cpu() for xb, _ in batches(data, batch_size, False, None, dev)]
    finally:
        model.train(was)
    return torch.cat(outs) if outs else torch.empty(0)


@torch.no_grad()
def evaluate(
    model: nn.Module, data, loss_fn: Callable | None = None, batch_size: int = 1024, device: str | torch.device | None = None
) -> dict[str, float]:
    """Mean loss and (for a classifier with integer labels) accuracy on ``data``, in eval mode.

    The model's train/eval mode is restored afterwards.

    >>> from retune_lib.data import load_digits
    >>> sorted(evaluate(nn.Sequential(nn.Flatten(), nn.Linear(256, 10)), load_digits()))
    ['accuracy', 'loss']
    """
    _check_model(model, "evaluate")
    batch_size = check_positive_int(batch_size=batch_size)
    _check_loss_fn(loss_fn)
    dev = model_device(model) if device is None else select_device(device)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was = model.training
    model.eval()
    total, loss_sum, correct, classifies = 0, 0.0, 0, False
    try:
        for xb, yb in batches(data, batch_size, False, None, dev):
            out = _forward(model, xb)
            loss = float(_loss(loss_fn, out, yb))
            if not math.isfinite(loss) and _nonfinite(xb, yb):
                raise ValueError(
                    f"the {_nonfinite(xb, yb)} hold NaN or infinite values (batch from example {total}): "
                    "evaluate needs finite data"
                )
            loss_sum += loss * len(yb)
            classifies = out.dim() == 2 and out.shape[1] > 1 and not yb.is_floating_point()
            if classifies:
                correct += int((out.argmax(1) == yb).sum())
            total += len(yb)
    finally:
        model.train(was)
    if total == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return {"loss": loss_sum / total, "accuracy": correct / total} if classifies else {"loss": loss_sum / total}


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The share of rows whose largest logit is the label: ``(logits.argmax(1) == y).float().mean().item()``.

    ``logits`` is N x C (a model's outputs, e.g. from :func:`predict`), ``y`` the N class indices on the same device.

    >>> accuracy(torch.tensor([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0], [0.0, 5.0]]), torch.tensor([0, 1, 1, 1]))
    0.75
    """
    check_tensor(logits, "logits")
    if logits.dim() != 2:
        raise ValueError(f"logits must be N x C class scores, got shape {tuple(logits.shape)}")
    y = check_class_targets(y, logits, "y", "logits")
    if len(y) == 0:
        raise ValueError("accuracy needs at least one example, got none")
    return (logits.argmax(1) == y).float().mean().item()


def fit(
    model: nn.Module,
    train,
    val=None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler=None,
    loss_fn: Callable | None = None,
    device: str | torch.device = "auto",
    seed: int | None = 0,
    progress: bool = True,
    desc: str = "fit",
) -> History:
    """Train ``model`` on ``train`` for ``epochs``; evaluate on ``val`` after each epoch.

    * ``train``/``val``: an :class:`~retune_lib.data.ImageSet`, an ``(x, y)`` tuple, a
      ``TensorDataset`` or a ``DataLoader``.
    * ``optimizer``: defaults to Adam at ``lr`` over the trainable parameters only.
    * ``scheduler``: stepped once per batch (OneCycleLR-style) if it has ``total_steps``, else per epoch.
    * ``seed``: seeds dropout and the shuffling order (same seed, same numbers on the CPU);
      ``None`` leaves the global RNG alone.
    * A NaN or infinite loss raises :class:`TrainingDiverged` naming the epoch and step (and whether the
      batch's inputs or targets already held NaN or infinite values).
    * Bad data is one ``ValueError``/``TypeError`` line, not a torch traceback: labels outside the model's
      outputs, float labels for a classifier, inputs of another dtype than the model's parameters, tensors
      on the meta device, an optimizer that misses trainable parameters, a scheduler of another optimizer.

    Returns a :class:`History`. The model is moved to ``device`` and left in train mode.
    """
    epochs = check_positive_int(epochs=epochs)
    batch_size = check_positive_int(batch_size=batch_size)
    _check_model(model, "fit")
    dev = select_device(device)
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (e.g. make_optimizer(model)), got {type(optimizer).__name__}")
    if scheduler is not None:
        if not callable(getattr(scheduler, "step", None)):
            raise TypeError(f"scheduler must have a step() method (a torch.optim.lr_scheduler), got {type(scheduler).__name__}")
        owner = getattr(scheduler, "optimizer", None)
        if isinstance(owner, torch.optim.Optimizer) and owner is not optimizer:
            raise ValueError(
                "the scheduler steps another optimizer than the one fit uses: build it on the optimizer you pass "
                "as optimizer=... (fit's own Adam is made only when optimizer is None)"
            )
    _check_loss_fn(loss_fn)
    if num_batches(train, batch_size) == 0:
        raise ValueError("fit got an empty training set: nothing to train on (check the split or k per class)")
    gen = seed_everything(seed) if seed is not None else None
    model.to(dev)
    if optimizer is None:
        optimizer = make_optimizer(model, "adam", lr=lr)
    else:
        _check_optimizer_covers(model, optimizer)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    per_batch = scheduler is not None and hasattr(scheduler, "total_steps")

    from tqdm.auto import tqdm

    history = History()
    steps = num_batches(train, batch_size)
    bar = tqdm(total=epochs * steps if steps else None, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            model.train()
            seen, loss_sum, correct, classifies = 0, 0.0, 0, False
            for step, (xb, yb) in enumerate(batches(train, batch_size, True, gen, dev), 1):
                out = _forward(model, xb)
                loss = _loss(loss_fn, out, yb)
                if not torch.isfinite(loss):
                    bad = _nonfinite(xb, yb)
                    raise TrainingDiverged(
                        f"loss became {loss.item()} at epoch {epoch}, step {step}: "
                        + (f"the batch's {bad} hold NaN or infinite values" if bad else
                           f"lower the learning rate (lr={optimizer.param_groups[0]['lr']:.3g}) or check the inputs "
                           "and targets for NaN")
                    )
                if not loss.requires_grad:
                    raise ValueError(
                        "the loss does not require grad, so nothing can train: a step in the loss cut the graph "
                        "(a threshold, round, argmax or torch.tensor(...) copy); see lesson 01"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if per_batch:
                    scheduler.step()
                n = len(yb)
                seen += n
                loss_sum += float(loss.detach()) * n
                if out.dim() == 2 and yb.dim() == 1 and out.shape[1] > 1 and not yb.is_floating_point():
                    classifies = True
                    correct += int((out.detach().argmax(1) == yb).sum())
                bar.update(1)
            if scheduler is not None and not per_batch:
                scheduler.step()
            rec = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1)}
            if classifies:
                rec["train_acc"] = correct / max(seen, 1)
            if val is not None:
                ev = evaluate(model, val, loss_fn=loss_fn, device=dev)
                rec["val_loss"] = ev["loss"]
                if "accuracy" in ev:
                    rec["val_acc"] = ev["accuracy"]
            rec["seconds"] = time.perf_counter() - t0
            history.epochs.append(rec)
            bar.set_postfix({k: f"{v:.3f}" for k, v in rec.items() if k in ("train_loss", "val_acc")})
    finally:
        bar.close()
    model.train()
    return history


def _check_loss_fn(loss_fn) -> None:
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable (e.g. nn.CrossEntropyLoss() or rt.focal_loss), got {type(loss_fn).__name__}")


def _check_optimizer_covers(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Refuse an optimizer that misses trainable parameters (typically: built before a head swap)."""
    held = {id(p) for g in optimizer.param_groups for p in g["params"]}
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in held]
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise ValueError(
            f"the optimizer does not hold {len(missing)} trainable parameters ({shown}): was it built before "
            "the layer was replaced? Build it after the change, e.g. make_optimizer(model)"
        )
