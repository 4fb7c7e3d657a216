"""The lessons' conceptual figures: what changes in the network, drawn before any measurement.

Pure illustrations (no data, no training, no randomness): each function returns a matplotlib Figure and
``main(out_dir)`` writes them as ``NN_short_name.svg``. The committed copies live in ``notebooks/figures/``
and the lessons show them with ``![alt](figures/NN_short_name.svg)``. Regenerate them with

    python docs/figures.py                 # writes notebooks/figures/
    python docs/figures.py OUT_DIR         # writes elsewhere

The output is byte-reproducible for a given matplotlib version: a fixed SVG hash salt, no date in the
metadata, text drawn as paths in matplotlib's bundled DejaVu Sans (so it looks the same in every browser).
tests/test_notebooks.py regenerates them and compares bytes with the committed files.
"""

from __future__ import annotations

import math
import pathlib
import sys

import matplotlib
from matplotlib import patches
from matplotlib.figure import Figure

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "notebooks" / "figures"

#: rcParams every figure is drawn and saved under (byte-reproducible SVG, fixed font)
STYLE = {
    "svg.hashsalt": "retune",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "path.simplify": False,
}
SIZE = (8.0, 3.0)  # inches: notebook width

# Okabe-Ito colours (distinguishable with colour-vision deficiencies)
BLUE, ORANGE, GREEN, VERMILION, SKY, PURPLE = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7"
FROZEN_FILL, FROZEN_EDGE, INK, MUTED = "#e6e6e6", "#8c8c8c", "#222222", "#6e6e6e"
TRAIN_FILL = "#fbe3b8"


# --- drawing helpers -----------------------------------------------------------------------------------------


def _canvas(width=16.0, height=6.0):
    """A figure with one axes in plain drawing units (x 0..width, y 0..height), no frame."""
    fig = Figure(figsize=SIZE)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, text="", fill="white", edge=INK, lw=1.2, fontsize=9, color=INK, style="round,pad=0.02,rounding_size=0.12",
         weight="normal", ls="-", alpha=1.0):
    """A rounded box with its lower-left corner at (x, y) and centred text."""
    ax.add_patch(patches.FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=fill, edgecolor=edge, linewidth=lw,
                                        linestyle=ls, alpha=alpha))
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=color, weight=weight,
                linespacing=1.15)


def _arrow(ax, start, end, color=INK, lw=1.3, style="-|>", ls="-", mutation=10, shrink=0.0, connection="arc3"):
    ax.add_patch(patches.FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=mutation, color=color, linewidth=lw,
                                         linestyle=ls, shrinkA=shrink, shrinkB=shrink, connectionstyle=connection))


def _lock(ax, cx, cy, size=0.32, color=FROZEN_EDGE):
    """A small padlock centred at (cx, cy): the sign for 'frozen'."""
    w, h = size, size * 0.75
    ax.add_patch(patches.Rectangle((cx - w / 2, cy - h / 2), w, h, facecolor=color, edgecolor=color, linewidth=0.8))
    ax.add_patch(patches.Arc((cx, cy + h / 2), w * 0.62, w * 0.9, theta1=0, theta2=180, color=color, linewidth=1.4))


def _brace(ax, x0, x1, y, text, color=INK, fontsize=8.5, below=True):
    """A square bracket under (or over) x0..x1 at height y, with a label."""
    d = -0.15 if below else 0.15
    ax.plot([x0, x0, x1, x1], [y - d, y, y, y - d], color=color, linewidth=1.0, solid_capstyle="butt")
    ax.text((x0 + x1) / 2, y + (-0.12 if below else 0.12), text, ha="center", va="top" if below else "bottom",
            fontsize=fontsize, color=color, linespacing=1.2)


def _matrix_row(ax, x, y, w, h, phase, fill_alpha=1.0, edge=INK, lw=0.8, n=8, cmap="PuOr"):
    """One weight row drawn as ``n`` coloured cells; ``phase`` fixes its (deterministic) pattern."""
    cm = matplotlib.colormaps[cmap]
    cw = w / n
    for j in range(n):
        v = 0.5 + 0.38 * math.sin(1.7 * j + 2.3 * phase) * math.cos(0.9 * phase + 0.4 * j)
        ax.add_patch(patches.Rectangle((x + j * cw, y), cw, h, facecolor=cm(v), edgecolor="white", linewidth=0.4,
                                       alpha=fill_alpha))
    ax.add_patch(patches.Rectangle((x, y), w, h, facecolor="none", edgecolor=edge, linewidth=lw))


def _softmax(z, T=1.0):
    m = max(v / T for v in z)
    e = [math.exp(v / T - m) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _bars(ax, x, y, w, h, probs, color, label=None, fontsize=8):
    """A tiny bar chart of ``probs`` in the box (x, y, w, h), drawn with patches (y up to 1 = h)."""
    n = len(probs)
    bw = w / n
    top = max(probs)
    for i, p in enumerate(probs):
        ax.add_patch(patches.Rectangle((x + i * bw + bw * 0.12, y), bw * 0.76, h * p / top * 0.95, facecolor=color,
                                       edgecolor="none"))
    ax.plot([x, x + w], [y, y], color=INK, linewidth=0.8)
    if label:
        ax.text(x + w / 2, y - 0.12, label, ha="center", va="top", fontsize=fontsize, color=INK)


# --- the figures -----------------------------------------------------------------------------------------------


def fig_00_reuse_body():
    """00: pretrain on the source task, then reuse the body with a new head; scratch trains everything."""
    fig, ax = _canvas()
    names = ["stem", "layer1", "layer2", "layer3", "layer4"]
    x0, bw, gap, h = 4.1, 1.05, 0.22, 0.8

    def row(y, body_fill, body_edge, head_text, head_fill, head_edge, lock, note, note_colour):
        x = x0
        for name in names:
            _box(ax, x, y, bw, h, name, fill=body_fill, edge=body_edge, fontsize=8.5)
            if lock:
                _lock(ax, x + bw / 2, y + h + 0.2, size=0.2)
            _arrow(ax, (x + bw, y + h / 2), (x + bw + gap, y + h / 2), lw=1.0, mutation=7)
            x += bw + gap
        _box(ax, x, y, 1.5, h, head_text, fill=head_fill, edge=head_edge, fontsize=8.5)
        ax.text(x + 1.65, y + h / 2, note, fontsize=8.5, va="center", color=note_colour, linespacing=1.15)

    def label(y, title, sub):
        ax.text(0.2, y + h / 2 + 0.17, title, fontsize=9, weight="bold", va="center")
        ax.text(0.2, y + h / 2 - 0.17, sub, fontsize=8, va="center", color=MUTED)

    body_x1 = x0 + 5 * bw + 4 * gap
    label(4.75, "1. pretraining (done once)", "69 kinds of glyphs, many labels")
    row(4.75, "#d9ecf7", BLUE, "fc: 69 glyph\nclasses", "#d9ecf7", BLUE, False, "all layers\ntrained", BLUE)
    label(2.55, "2a. your task, pretrained", "10 digits, k labels per class")
    row(2.55, FROZEN_FILL, FROZEN_EDGE, "new fc:\n10 digits", TRAIN_FILL, ORANGE, True, "only the head\ntrains",
        VERMILION)
    label(0.55, "2b. or from scratch", "the same k labels per class")
    row(0.55, "white", INK, "fc:\n10 digits", "white", INK, False, "random start,\nall layers train", INK)

    xm = x0 + 3 * (bw + gap) - gap / 2  # between layer2 and layer3, clear of the locks
    _arrow(ax, (xm, 4.7), (xm, 3.4), color=MUTED, lw=1.4, mutation=12)
    ax.text(xm + 0.15, 4.05, "copy the body's weights, freeze them", fontsize=8.5, va="center", color=MUTED)
    ax.text((x0 + body_x1) / 2, 2.42, "frozen: its features are computed once per image", fontsize=8, ha="center", va="top",
            color=MUTED)
    return fig


def fig_01_transforms():
    """01: value (forward) and derivative (backward) of four output transforms."""
    fig = Figure(figsize=SIZE)
    axes = fig.subplots(1, 4, sharey=True)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.78, wspace=0.12)
    n = 241
    z = [-6 + 12 * i / (n - 1) for i in range(n)]
    sig = [1 / (1 + math.exp(-v)) for v in z]
    dsig = [s * (1 - s) for s in sig]
    tanh = [math.tanh(v) for v in z]
    dtanh = [1 - t * t for t in tanh]
    step = [1.0 if v > 0 else 0.0 for v in z]
    zero = [0.0] * n
    panels = [
        ("sigmoid(z)", sig, dsig, "gradient small\nbut never zero"),
        ("tanh(z): a bounded range", tanh, dtanh, "stays in [−1, 1]"),
        ("hard threshold: z > 0", step, zero, "derivative 0\nalmost everywhere:\nno gradient"),
        ("straight-through (STE)", step, dsig, "forward: the step\nbackward: sigmoid's\nslope"),
    ]
    for i, (ax, (title, value, deriv, note)) in enumerate(zip(axes, panels)):
        ax.axhline(0, color="#bbbbbb", linewidth=0.8, zorder=0)
        ax.axvline(0, color="#bbbbbb", linewidth=0.8, zorder=0)
        if i == 1:
            for b in (-1, 1):
                ax.axhline(b, color=MUTED, linewidth=0.8, linestyle=":", zorder=0)
        if i >= 2:  # draw the jump of the step as a gap, not a vertical line
            left = [(a, b) for a, b in zip(z, value) if a <= 0]
            right = [(a, b) for a, b in zip(z, value) if a > 0]
            ax.plot(*zip(*left), color=BLUE, label="value (forward)")
            ax.plot(*zip(*right), color=BLUE)
        else:
            ax.plot(z, value, color=BLUE, label="value (forward)")
        ax.plot(z, deriv, color=VERMILION, linestyle="--", label="derivative (backward)")
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-6, 6)
        ax.set_ylim(-1.2, 1.35)
        ax.set_xticks([-5, 0, 5])
        ax.set_yticks([-1, 0, 1])
        ax.set_xlabel("z (logit)", fontsize=8.5, labelpad=1)
        ax.text(5.7, -0.35 if i != 1 else -0.62, note, ha="right", va="top", fontsize=7.5, color=INK, linespacing=1.15)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.0))
    return fig


def fig_02_frozen_body():
    """02: the frozen pretrained body and the new trainable head."""
    fig, ax = _canvas()
    names = ["conv1\n+ bn1", "layer1", "layer2", "layer3", "layer4", "avgpool"]
    x, y, bw, h, gap = 1.45, 2.55, 1.2, 1.1, 0.28
    ax.text(0.55, y + h / 2, "image", ha="center", va="center", fontsize=9)
    _arrow(ax, (1.05, y + h / 2), (x, y + h / 2), lw=1.0, mutation=8)
    for i, name in enumerate(names):
        _box(ax, x, y, bw, h, name, fill=FROZEN_FILL, edge=FROZEN_EDGE, fontsize=8.5, color="#444444")
        if name != "avgpool":
            _lock(ax, x + bw / 2, y + h + 0.22, size=0.22)
        _arrow(ax, (x + bw, y + h / 2), (x + bw + gap, y + h / 2), lw=1.0, mutation=8)
        x += bw + gap
    body_x1 = x - gap
    _box(ax, x, y, 1.45, h, "fc (new)\n256 → 10", fill=TRAIN_FILL, edge=ORANGE, lw=1.8, fontsize=9, weight="bold")
    head_x0, head_x1 = x, x + 1.45
    _arrow(ax, (head_x1, y + h / 2), (head_x1 + 0.35, y + h / 2), lw=1.0, mutation=8)
    _box(ax, head_x1 + 0.35, y + 0.2, 1.05, h - 0.4, "loss", fontsize=9)

    # the old head it replaces, above
    _box(ax, head_x0, 4.55, 1.45, 0.95, "fc (old)\n256 → 69", fill="white", edge=FROZEN_EDGE, fontsize=8.5,
         color=MUTED, ls="--")
    _arrow(ax, (head_x0 + 0.72, 4.5), (head_x0 + 0.72, y + h + 0.06), color=MUTED, lw=1.0, mutation=8)
    ax.text(head_x0 - 0.15, 5.0, "the source task's head (69 classes): replaced", ha="right", va="center", fontsize=8.5,
            color=MUTED)

    # backward: the gradient reaches the head and stops there
    yb = y - 0.42
    _arrow(ax, (head_x1 + 0.85, yb), (head_x0 - 0.05, yb), color=VERMILION, lw=1.4, mutation=10)
    ax.text(head_x1 + 0.9, yb, "gradient", ha="left", va="center", fontsize=8.5, color=VERMILION)
    ax.plot([body_x1 - 0.5, body_x1 - 0.1], [yb - 0.18, yb + 0.18], color=VERMILION, linewidth=1.4)
    ax.plot([body_x1 - 0.5, body_x1 - 0.1], [yb + 0.18, yb - 0.18], color=VERMILION, linewidth=1.4)

    _brace(ax, 1.45, body_x1, 1.65,
           "frozen body: requires_grad = False, batch norm held (eval)\nno gradient, no update; its features can be cached")
    _brace(ax, head_x0, head_x1, 1.65, "trains: the only\nparameters in\nthe optimizer", color=VERMILION)
    return fig


def fig_03_grow_split():
    """03: grow the output layer (old rows copied, new rows added) and split one class's row into two."""
    fig, ax = _canvas()
    rw, rh, g = 1.9, 0.36, 0.06

    def rows(x, y_top, labels, phases, styles):
        for i, (lab, ph, st) in enumerate(zip(labels, phases, styles)):
            y = y_top - i * (rh + g)
            if st == "new":
                _matrix_row(ax, x, y, rw, rh, ph, fill_alpha=0.35, edge=ORANGE, lw=1.6, cmap="Greys")
            else:
                _matrix_row(ax, x, y, rw, rh, ph, edge=INK if st == "old" else VERMILION, lw=0.8 if st == "old" else 1.6)
            ax.text(x - 0.12, y + rh / 2, lab, ha="right", va="center", fontsize=8.5,
                    color=ORANGE if st == "new" else (VERMILION if st == "child" else INK), weight="normal")
        return y_top - (len(labels) - 1) * (rh + g)

    # grow: 8 -> 10
    ax.text(3.65, 5.7, "grow: 8 classes → 10", ha="center", va="center", fontsize=9.5, weight="bold")
    old = [str(i) for i in range(8)]
    top = 4.6
    rows(0.75, top, old, range(8), ["old"] * 8)
    ax.text(0.75 + rw / 2, top + rh + 0.12, "old fc.weight", ha="center", va="bottom", fontsize=8.5)
    _arrow(ax, (0.75 + rw + 0.15, 3.5), (4.35, 3.5), lw=1.3, mutation=10)
    ax.text(3.55, 3.62, "copy", ha="center", va="bottom", fontsize=8.5)
    rows(4.6, top, old + ["8", "9"], list(range(8)) + [0, 0], ["old"] * 8 + ["new", "new"])
    ax.text(4.6 + rw / 2, top + rh + 0.12, "new fc.weight", ha="center", va="bottom", fontsize=8.5)
    ax.text(4.6 + rw + 0.15, top - 3.5 * (rh + g), "copied,\nbit for bit:\nold logits\nunchanged", ha="left",
            va="center", fontsize=8, linespacing=1.15)
    ax.text(4.6 + rw + 0.15, top - 8.5 * (rh + g) + rh / 2, "new rows:\nrandom, or the\nold rows' mean",
            ha="left", va="center", fontsize=8, color="#a86a00", linespacing=1.15)

    ax.plot([8.55, 8.55], [0.4, 5.8], color="#cccccc", linewidth=1.0)

    # split: one class into two children
    ax.text(12.3, 5.7, "split: one class into two", ha="center", va="center", fontsize=9.5, weight="bold")
    labels = ["0", "1 or 7", "2", "…"]
    x_a = 10.0
    rows(x_a, top, labels, [0, 1, 2, 3], ["old", "old", "old", "old"])
    ax.text(x_a + rw / 2, top + rh + 0.12, "coarse head", ha="center", va="bottom", fontsize=8.5)
    x_b = 13.6
    _arrow(ax, (x_a + rw + 0.15, top - 1 * (rh + g) + rh / 2), (x_b - 0.55, top - 1 * (rh + g) + rh / 2), lw=1.3,
           mutation=10)
    _arrow(ax, (x_a + rw + 0.15, top - 1 * (rh + g) + rh / 2), (x_b - 0.55, top - 4 * (rh + g) + rh / 2), lw=1.3,
           mutation=10, connection="arc3,rad=-0.25")
    rows(x_b, top, ["0", "1", "2", "…", "7"], [0, 1, 2, 3, 1], ["old", "child", "old", "old", "child"])
    ax.text(x_b + rw / 2, top + rh + 0.12, "split head", ha="center", va="bottom", fontsize=8.5)
    ax.text(12.35, 2.1, "both children start as the parent's row:\nevery logit unchanged, then fine-tune on the\n"
            "fine labels. To keep the probabilities too,\nsubtract log 2 from each child's bias.",
            ha="center", va="top", fontsize=8, linespacing=1.2)
    ax.text(3.65, 0.3, "then fix the optimizer: it still holds the old layer", ha="center", va="center",
            fontsize=8, color=VERMILION)
    return fig


def fig_04_weights():
    """04: a skewed target histogram with its inverse-density weights; class counts and class weights."""
    fig = Figure(figsize=SIZE)
    gs = fig.add_gridspec(1, 3, width_ratios=[1.45, 1, 1], left=0.07, right=0.985, bottom=0.17, top=0.86, wspace=0.42)
    ax = fig.add_subplot(gs[0])
    # training angles: a normal spread (sd 20 degrees, illustrative) cut to +-45, in 18 bins; use: uniform
    edges = [-45 + 5 * i for i in range(19)]
    cdf = [0.5 * (1 + math.erf(e / (20 * math.sqrt(2)))) for e in edges]
    mass = [b - a for a, b in zip(cdf, cdf[1:])]
    share = [m / sum(mass) * 18 for m in mass]  # relative to a uniform spread (1 = its fair share)
    weight = [1 / s for s in share]
    mean_w = sum(s * w for s, w in zip(share, weight)) / 18  # mean over examples
    weight = [w / mean_w for w in weight]
    centres = [e + 2.5 for e in edges[:-1]]
    ax.bar(centres, share, width=4.4, color="#bdbdbd", label="training angles")
    ax.axhline(1, color=INK, linestyle=":", linewidth=1.2, label="in use: uniform")
    ax.plot(centres, weight, color=ORANGE, marker="o", markersize=3.5, label="weight = 1 / density")
    ax.set_xlim(-47, 47)
    ax.set_ylim(0, 6.4)
    ax.set_xticks([-45, 0, 45])
    ax.set_xticklabels(["−45°", "0°", "45°"])
    ax.set_xlabel("target: rotation angle")
    ax.set_ylabel("relative to uniform")
    ax.set_title("rare targets weigh more")
    ax.legend(loc="upper center", frameon=False, ncol=1, handlelength=1.6, borderaxespad=0.1)

    counts = [3] * 5 + [30] * 5  # illustrative: digits 0-4 rare
    w_c = [1 / c for c in counts]
    scale = sum(counts) / sum(c * w for c, w in zip(counts, w_c))  # the average example weighs 1
    w_c = [w * scale for w in w_c]
    colours = [VERMILION] * 5 + ["#bdbdbd"] * 5
    ax2 = fig.add_subplot(gs[1])
    ax2.bar(range(10), counts, color=colours)
    ax2.set_title("examples per class")
    ax2.set_xticks(range(10))
    ax2.set_xlabel("digit (0–4 rare)")
    ax2.set_ylabel("count")
    ax3 = fig.add_subplot(gs[2])
    ax3.bar(range(10), w_c, color=colours)
    ax3.axhline(1, color=INK, linestyle=":", linewidth=1.2)
    ax3.set_title("weight ∝ 1 / count:\nequal total per class")
    ax3.set_xticks(range(10))
    ax3.set_xlabel("digit")
    ax3.set_ylabel("weight per example")
    ax3.text(9.45, 1.1, "average: 1", ha="right", va="bottom", fontsize=7.5)
    return fig


def fig_05_rates():
    """05: discriminative learning rates per layer group, and which groups train in gradual unfreezing."""
    fig = Figure(figsize=SIZE)
    gs = fig.add_gridspec(1, 2, width_ratios=[1.15, 1], left=0.08, right=0.985, bottom=0.17, top=0.86, wspace=0.32)
    groups = ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    ax = fig.add_subplot(gs[0])
    decay = 2.6
    depth = [len(groups) - 1 - i for i in range(len(groups))]
    rates = [decay ** -d for d in depth]
    ax.bar(range(6), rates, color=[BLUE] * 5 + [ORANGE], width=0.7)
    ax.axhline(1, color=INK, linestyle=":", linewidth=1.2)
    ax.text(-0.45, 1.4, "one rate for all: every group at lr", fontsize=7.5, va="bottom")
    ax.set_yscale("log")
    ax.set_ylim(decay ** -5.6, 3.2)
    ax.set_yticks([1, 0.1, 0.01])
    ax.set_yticklabels(["lr", "lr/10", "lr/100"])
    ax.minorticks_off()
    ax.set_xticks(range(6))
    ax.set_xticklabels(groups)
    for i, d in enumerate(depth):
        label = "lr" if d == 0 else f"lr/2.6$^{d}$"
        ax.text(i, rates[i] * 1.12, label, ha="center", va="bottom", fontsize=7.5, color=INK)
    ax.set_title("discriminative rates: lr / decay$^{depth}$")
    ax.set_xlabel("layer group, input → output")
    ax.set_ylabel("learning rate (log)")

    ax2 = fig.add_subplot(gs[1])
    phases = 5
    for r, g in enumerate(groups):
        row = len(groups) - 1 - r  # the stem on top, the head at the bottom
        first = len(groups) - 1 - r  # the phase from which group r trains (the head from the first)
        for p in range(phases):
            trains = p >= first
            colour = (ORANGE if g == "fc" else BLUE) if trains else FROZEN_FILL
            ax2.add_patch(patches.Rectangle((p + 0.06, row + 0.08), 0.88, 0.84, facecolor=colour,
                                            edgecolor="white" if trains else "#cfcfcf", linewidth=0.8))
            if not trains:
                _lock(ax2, p + 0.5, row + 0.47, size=0.2)
    ax2.set_xlim(0, phases)
    ax2.set_ylim(0, len(groups))
    ax2.set_yticks([len(groups) - 1 - r + 0.5 for r in range(len(groups))])
    ax2.set_yticklabels(groups)
    ax2.set_xticks([p + 0.5 for p in range(phases)])
    ax2.set_xticklabels([str(p + 1) for p in range(phases)])
    ax2.tick_params(length=0)
    for side in ("left", "bottom"):
        ax2.spines[side].set_visible(False)
    ax2.set_xlabel("phase (a few epochs each)")
    ax2.set_title("gradual unfreezing: what trains")
    return fig


def fig_06_distillation():
    """06: teacher and student logits, one temperature T, softmax, KL(teacher ‖ student) × T²."""
    fig, ax = _canvas()
    teacher_z = [1.0, 2.0, 0.5, 3.0, 1.5, 0.0, 1.0, 9.0, 2.0, 4.0]  # a "7" that looks a little like 9 and 3
    student_z = [1.5, 1.0, 1.0, 1.5, 1.0, 0.5, 1.5, 5.0, 1.0, 1.5]
    T = 4.0
    yt, ys, h = 3.95, 1.35, 1.25

    _box(ax, 0.15, 2.6, 1.35, 1.0, "image\n(no label\nneeded)", fontsize=8)
    _arrow(ax, (1.5, 3.25), (2.0, yt + h / 2), lw=1.1, mutation=9)
    _arrow(ax, (1.5, 2.95), (2.0, ys + h / 2), lw=1.1, mutation=9)
    _box(ax, 2.0, yt, 2.4, h, "teacher\nbig, pretrained", fill=FROZEN_FILL, edge=FROZEN_EDGE, fontsize=9)
    _lock(ax, 4.12, yt + h - 0.25, size=0.24)
    _box(ax, 2.0, ys + 0.15, 1.6, h - 0.3, "student\nsmall", fill=TRAIN_FILL, edge=ORANGE, lw=1.6, fontsize=9)

    def lane(y, z, x_from, colour, fn, sub):
        _arrow(ax, (x_from, y + h / 2), (5.3, y + h / 2), lw=1.1, mutation=9)
        ax.text(5.35, y + h / 2, f"logits $z_{sub}$", ha="left", va="center", fontsize=8.5)
        _arrow(ax, (6.4, y + h / 2), (6.82, y + h / 2), lw=1.1, mutation=9)
        ax.add_patch(patches.Circle((7.2, y + h / 2), 0.38, facecolor="white", edgecolor=INK, linewidth=1.2))
        ax.text(7.2, y + h / 2, "÷ T", ha="center", va="center", fontsize=9)
        _arrow(ax, (7.58, y + h / 2), (8.05, y + h / 2), lw=1.1, mutation=9)
        _box(ax, 8.05, y + 0.3, 1.5, h - 0.6, fn, fontsize=8.5)
        _arrow(ax, (9.55, y + h / 2), (9.95, y + h / 2), lw=1.1, mutation=9)
        _bars(ax, 10.0, y + 0.2, 2.0, h - 0.35, _softmax(z, T), colour)

    lane(yt, teacher_z, 4.4, MUTED, "softmax", "t")
    lane(ys, student_z, 3.6, ORANGE, "log_softmax", "s")
    ax.text(11.0, yt + 0.07, "$p_t$: soft targets, digits 0–9", ha="center", va="top", fontsize=8)
    ax.text(11.0, ys + 0.07, "$p_s$: the student's answer", ha="center", va="top", fontsize=8)
    ax.text(11.0, yt + h + 0.12, f"at T = {T:g} the wrong classes' ranking shows", ha="center", va="bottom", fontsize=8,
            color=MUTED)
    ym = (yt + ys + h) / 2
    ax.text(7.2, ym, "the same T\non both sides", ha="center", va="center", fontsize=8, color=VERMILION)
    ax.plot([7.2, 7.2], [yt + h / 2 - 0.42, ym + 0.4], color=VERMILION, linewidth=0.9, ls=":")
    ax.plot([7.2, 7.2], [ym - 0.4, ys + h / 2 + 0.42], color=VERMILION, linewidth=0.9, ls=":")

    _arrow(ax, (12.1, yt + h / 2), (12.75, 3.55), lw=1.1, mutation=9)
    _arrow(ax, (12.1, ys + h / 2), (12.75, 2.95), lw=1.1, mutation=9)
    _box(ax, 12.75, 2.6, 3.05, 1.3, "KL($p_t$ ‖ $p_s$) × T²", fill="#fdf1dc", edge=ORANGE, lw=1.6, fontsize=9.5)
    ax.text(14.45, 2.45, "T² keeps the gradient's\nscale as T changes", ha="center", va="top", fontsize=8)

    # backward: around the diagram, back to the student only
    yg, xg0, xg1 = 0.6, 13.0, 2.8
    ax.plot([xg0, xg0, xg1], [2.6, yg, yg], color=VERMILION, linewidth=1.2, ls="--")
    _arrow(ax, (xg1, yg), (xg1, ys + 0.13), color=VERMILION, lw=1.2, mutation=10, ls="--")
    ax.text((xg0 + xg1) / 2, yg - 0.1, "gradient: only the student learns", ha="center", va="top", fontsize=8,
            color=VERMILION)
    return fig


FIGURES = {
    "00_reuse_body": fig_00_reuse_body,
    "01_output_transforms": fig_01_transforms,
    "02_frozen_body": fig_02_frozen_body,
    "03_grow_split": fig_03_grow_split,
    "04_loss_weights": fig_04_weights,
    "05_layer_rates": fig_05_rates,
    "06_distillation": fig_06_distillation,
}


def main(out_dir=OUT_DIR) -> list[pathlib.Path]:
    """Write every figure as ``out_dir/NN_short_name.svg``; return the paths."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with matplotlib.rc_context(STYLE):
        for name, make in FIGURES.items():
            fig = make()
            path = out_dir / f"{name}.svg"
            fig.savefig(path, format="svg", metadata={"Date": None})
            written.append(path)
    return written


if __name__ == "__main__":
    for p in main(sys.argv[1] if len(sys.argv) > 1 else OUT_DIR):
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
