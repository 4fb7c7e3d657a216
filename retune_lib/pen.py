"""The simulated pen: digits drawn by hand along stroke templates, and printed glyphs thinned to a pen's line.

The source set's ``style="pen"`` and ``style="mnist"`` (:func:`retune_lib.glyphs.render_glyphs`; the default base,
:class:`~retune_lib.models.PretrainRecipe`, pretrains on ``"mnist"``) draw every digit here instead of printing it
from a font: one of a few common handwritten forms per digit (:data:`_PEN_DIGITS`: an open or a closed 4, a 1 with
or without its flag and foot ...), its control points jittered, joined by Catmull-Rom curves, slanted and drawn as
a thin path on the 32 x 32 :data:`CANVAS`. :func:`thin` (Zhang & Suen's thinning) reduces a printed glyph to its
skeleton, so that it can be redrawn with an even pen. Lesson 00 shows the glyphs; ``reports/base.md`` measures what
each style gives the base. :func:`pen_fingerprint` keys the base's cache, so new templates never reuse an old base.

>>> drawn = pen_digits(torch.arange(10), torch.Generator().manual_seed(0))
>>> drawn.shape, bool(((drawn == 0) | (drawn == 1)).all())
(torch.Size([10, 1, 32, 32]), True)
"""

from __future__ import annotations

import hashlib
import json
import math

import torch
import torch.nn.functional as F

__all__ = ["CANVAS", "uniform", "pen_digits", "thin", "pen_fingerprint"]

#: The bitmap size the digits were drawn at before the 4 x 4 block counts (scikit-learn's digits too).
CANVAS = 32


def uniform(g: torch.Generator, m: int, lo: float, hi: float) -> torch.Tensor:
    """``m`` draws from the uniform distribution on ``[lo, hi)`` with ``g`` (one ``torch.rand`` call).

    >>> uniform(torch.Generator().manual_seed(0), 3, 2.0, 4.0).shape
    torch.Size([3])
    """
    return lo + (hi - lo) * torch.rand(m, generator=g)


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


def pen_digits(digits: torch.Tensor, g: torch.Generator, jitter: float = 0.06, slant: float = 0.25) -> torch.Tensor:
    """Each digit drawn as a thin path on the 32 x 32 canvas: a random template, jittered, slanted."""
    m = len(digits)
    out = torch.zeros(m, 1, CANVAS, CANVAS)
    form = torch.randint(_PEN_FORMS, (m,), generator=g)  # modulo each digit's number of variants: all equally likely
    yy, xx = torch.meshgrid(torch.arange(float(CANVAS)), torch.arange(float(CANVAS)), indexing="ij")
    pixels = torch.stack([xx.flatten(), yy.flatten()], 1)
    for d, variants in _PEN_DIGITS.items():
        for v, strokes in enumerate(variants):
            idx = ((digits == d) & (form % len(variants) == v)).nonzero().flatten()
            if len(idx) == 0:
                continue
            jittered = [torch.tensor(s) + jitter * torch.randn(len(idx), len(s), 2, generator=g) for s in strokes]
            path = torch.cat([_catmull_rom(p) for p in jittered], 1)
            lean = uniform(g, len(idx), -slant, slant).view(-1, 1)
            path = torch.stack([path[..., 0] + lean * (0.5 - path[..., 1]), path[..., 1]], 2) * 26 + 3
            near = torch.cdist(pixels.expand(len(idx), -1, -1), path).amin(2) < 0.8
            out[idx, 0] = near.float().view(-1, CANVAS, CANVAS)
    return out


def thin(ink: torch.Tensor) -> torch.Tensor:
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
