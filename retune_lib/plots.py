"""Plots: training curves, image grids and confusion matrices (matplotlib + scikit-learn's display).

Each function draws into a new figure (or the ``ax`` given), titles and labels it, and returns
the figure; the notebook closes its cell with ``plt.show()``.

>>> from retune_lib.data import load_digits
>>> fig = show_images(load_digits(), n=8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["plot_history", "show_images", "plot_confusion", "plot_curves", "plot_per_class"]


def plot_history(history, title: str = "Training history"):
    """Loss and accuracy per epoch from a :class:`~retune_lib.training.History` (train and, if any, val)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = history["epoch"]
    for key, ax in (("loss", a), ("acc", b)):
        for split in ("train", "val"):
            values = history[f"{split}_{key}"]
            if values:
                ax.plot(epochs, values, marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "loss")
        ax.legend()
    a.set_title(f"{title}: loss")
    b.set_title(f"{title}: accuracy")
    fig.tight_layout()
    return fig


def show_images(data, n: int = 32, cols: int = 16, title: str | None = None, predictions: torch.Tensor | None = None):
    """A grid of the first ``n`` images of an :class:`~retune_lib.data.ImageSet`, titled by label.

    With ``predictions`` (class indices), each title shows ``label→prediction`` in red where wrong.
    """
    n = min(n, len(data))
    if n < 1:
        raise ValueError("show_images needs at least one image")
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.75, rows * 0.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(data.x[i, 0].detach().cpu(), cmap="gray_r", vmin=0, vmax=1)
        label = data.classes[int(data.y[i])]
        if predictions is None:
            ax.set_title(label, fontsize=8)
        else:
            pred = data.classes[int(predictions[i])]
            ax.set_title(f"{label}→{pred}", fontsize=8, color="black" if pred == label else "red")
    fig.suptitle(title or f"{data.name}: {n} of {len(data)} images")
    fig.tight_layout()
    return fig


def plot_confusion(model, data, title: str | None = None, normalize: str | None = None, ax=None):
    """scikit-learn's ``ConfusionMatrixDisplay`` for ``model`` on ``data`` (rows: true, columns: predicted)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    from .training import predict

    pred = predict(model, data).argmax(1).numpy()
    disp = ConfusionMatrixDisplay.from_predictions(
        data.y.cpu().numpy(), pred, labels=list(range(len(data.classes))), display_labels=list(data.classes),
        normalize=normalize, ax=ax, colorbar=False, values_format=".2f" if normalize else "d",
    )
    disp.ax_.set_title(title or f"Confusion matrix on {data.name}")
    disp.figure_.tight_layout()
    return disp.figure_


def plot_curves(
    xs: Sequence[float], curves: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, title: str,
    logx: bool = False, ax=None,
):
    """Several named curves over the same x values (e.g. accuracy against labels per class).

    A point may be a number or a :class:`~retune_lib.trials.Trials` (several seeds): then the curve
    goes through the means, with error bars of one standard deviation, and the legend says ``± sd``.
    Each curve gets its own line style and marker, and curves with error bars are drawn side by side
    (shifted by a fraction of the smallest gap between x values), so curves and error bars that coincide
    can still be told apart.

    >>> from retune_lib.trials import Trials
    >>> fig = plot_curves([1, 2], {"a": [Trials("a", [0, 1, 2], [0.5, 0.6, 0.7]), 0.8]}, "k", "acc", "demo")
    """
    import numpy as np

    from .trials import Trials

    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.8))
    else:
        fig = ax.figure
    for name, ys in curves.items():
        if len(ys) != len(xs):
            raise ValueError(f"curve {name!r} has {len(ys)} points for {len(xs)} x values")
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]
    with_bars = [name for name, ys in curves.items() if any(isinstance(y, Trials) for y in ys)]
    x = np.asarray(xs, dtype=float)
    if logx and np.any(x <= 0):
        raise ValueError(f"logx needs positive x values, got {list(xs)}")
    # side by side: neighbouring curves shifted by 12% of the smallest gap between x values (a factor on a log axis)
    gaps = np.diff(np.log(x) if logx else x) if len(x) > 1 else np.array([1.0])
    step = 0.12 * (float(np.min(np.abs(gaps[gaps != 0]))) if np.any(gaps != 0) else 1.0)
    for i, (name, ys) in enumerate(curves.items()):
        style = dict(linestyle=styles[i % len(styles)], marker=markers[i % len(markers)])
        if name in with_bars:
            offset = (with_bars.index(name) - (len(with_bars) - 1) / 2) * step
            xi = x * np.exp(offset) if logx else x + offset
            means = [y.mean if isinstance(y, Trials) else float(y) for y in ys]
            sds = [y.sd if isinstance(y, Trials) else 0.0 for y in ys]
            n = max(y.n for y in ys if isinstance(y, Trials))
            ax.errorbar(xi, means, yerr=sds, capsize=3, label=f"{name} (mean ± sd, n={n})", **style)
        else:
            ax.plot(x, ys, label=name, **style)
    if logx:
        ax.set_xscale("log")
        ax.set_xticks(list(xs), [str(v) for v in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_per_class(
    values: Mapping[str, Sequence[float]], ylabel: str, title: str, divider: float | None = None,
    xlabel: str = "class", class_names: Sequence[str] | None = None, ylim: tuple[float, float] | None = None, ax=None,
):
    """Grouped bars: one group per class, one bar per named run (e.g. per-class accuracy by method).

    ``divider`` draws a dashed line before that class index (e.g. between old and new classes).

    >>> fig = plot_per_class({"a": [0.9, 0.5], "b": [0.8, 0.7]}, "accuracy", "two runs", divider=1)
    """
    if not values:
        raise ValueError("values is empty: pass {run name: [one value per class]}")
    n = {len(v) for v in values.values()}
    if len(n) != 1:
        raise ValueError(f"every run needs one value per class; got lengths {sorted(n)}")
    n_classes = n.pop()
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes")
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.8))
    else:
        fig = ax.figure
    width = 0.8 / len(values)
    for i, (run, ys) in enumerate(values.items()):
        ax.bar([c + (i - (len(values) - 1) / 2) * width for c in range(n_classes)], list(ys), width, label=run)
    if divider is not None:
        ax.axvline(divider - 0.5, color="k", lw=0.8, ls="--")
    ax.set(xticks=range(n_classes), xticklabels=names, xlabel=xlabel, ylabel=ylabel, title=title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8, ncol=min(len(values), 3), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    return fig
