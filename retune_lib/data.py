"""Data: one small image format for every dataset in the workbook, the loaders of the target digits, and batching.

Every dataset is an :class:`ImageSet`: ``x`` is a float32 tensor ``N x 1 x 16 x 16`` with ink = 1
and paper = 0, ``y`` holds int64 class indices, ``classes`` names them. It is a
``torch.utils.data.Dataset``, so a ``DataLoader`` takes it as it is. Every lesson uses it.

* **Target** — :func:`load_digits`: scikit-learn's bundled handwritten digits (1,797 real scans,
  8 x 8, 17 grey levels), upsampled to 16 x 16. The low-label task of every lesson
  (:meth:`ImageSet.split`, then :meth:`ImageSet.per_class` for k labels per class).
* **Online** — :func:`load_mnist` (``"mnist"``, ``"fashion_mnist"``) through torchvision's own
  dataset classes, from files the user already has (``download=True`` to fetch them); lesson 00's ``dataset``.
* :func:`rotate` turns a batch of images by an angle each (lesson 04's rotation targets); :func:`batches` cuts any
  data :func:`~retune_lib.training.fit` takes into (x, y) batches.

The source set the base is pretrained on lives in :mod:`retune_lib.glyphs` (printed glyphs),
:mod:`retune_lib.pen` (pen-drawn digits) and :mod:`retune_lib.real_digits` (real MNIST digits).

>>> digits = load_digits()
>>> digits.x.shape, len(digits.classes)
(torch.Size([1797, 1, 16, 16]), 10)
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .checks import (
    check_choice,
    check_fraction,
    check_labels,
    check_nonnegative_int,
    check_positive_int,
    check_range,
    label_range_problem,
)

__all__ = [
    "IMAGE_SIZE",
    "DATASETS",
    "ImageSet",
    "per_class_indices",
    "load_digits",
    "rotate",
    "load_mnist",
    "load_dataset",
    "resize_images",
    "batches",
    "num_batches",
]

IMAGE_SIZE = 16
DATASETS = ("digits", "mnist", "fashion_mnist")


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

    def per_class(self, k: int, seed: int | torch.Generator = 0) -> ImageSet:
        """``k`` randomly chosen examples of every class (the low-label setting): :func:`per_class_indices`.

        >>> load_digits().per_class(5).counts()
        [5, 5, 5, 5, 5, 5, 5, 5, 5, 5]
        """
        idx = per_class_indices(self.y, k, seed, num_classes=self.num_classes, what=repr(self.name))
        return self.subset(idx, f"{self.name}[k={k}]")

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


def per_class_indices(
    labels: torch.Tensor, k: int, seed: int | torch.Generator = 0, num_classes: int | None = None,
    what: str = "this set",
) -> torch.Tensor:
    """Indices of ``k`` randomly chosen examples of every class ``0 .. num_classes - 1``, class 0's first.

    ``seed`` is an integer or a CPU ``torch.Generator`` (whose state then advances, so several subsets can come
    from one stream). The draws are one ``torch.randperm`` per class, in class order, on the CPU: the same labels,
    ``k`` and seed give the same indices on every device, and :meth:`ImageSet.per_class` is exactly this subset.
    ``num_classes`` defaults to the largest label + 1; ``what`` names the labels when a class has fewer than ``k``.

    >>> y = torch.tensor([0, 1, 0, 1, 2, 2, 0])
    >>> y[per_class_indices(y, 2, seed=0)].tolist()
    [0, 0, 1, 1, 2, 2]
    """
    labels = check_labels(labels)
    check_positive_int(k=k)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if len(labels) else 0
    num_classes = check_nonnegative_int(num_classes=num_classes)
    problem = label_range_problem(labels, num_classes, "labels hold", f"there are {num_classes} classes")
    if problem:
        raise ValueError(problem)
    counts = torch.bincount(labels, minlength=num_classes).tolist()
    smallest = min(counts, default=0)
    if k > smallest:
        raise ValueError(f"k={k} labels per class is more than {what} has: its smallest class holds {smallest}")
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError(f"seed must be an integer or a CPU torch.Generator, got a generator on {seed.device}")
        g = seed
    else:
        g = torch.Generator().manual_seed(check_nonnegative_int(seed=seed))
    y = labels.cpu()
    picks = []
    for c in range(num_classes):
        members = (y == c).nonzero().flatten()
        picks.append(members[torch.randperm(len(members), generator=g)[:k]])
    return torch.cat(picks).to(labels.device)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``N x C x H x W`` images to ``size`` x ``size``: bilinear (antialiased when shrinking), clamped to [0, 1].

    >>> resize_images(torch.ones(2, 1, 8, 8), 16).shape
    torch.Size([2, 1, 16, 16])
    """
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
    return ImageSet(resize_images(x, size), y, tuple(str(c) for c in range(10)), "digits")


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
    return ImageSet(resize_images(x, size), y, classes, which)


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


def _unpack(data) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(x, y) tensors from an ImageSet, an (x, y) tuple or a TensorDataset; None for a DataLoader."""
    if isinstance(data, torch.utils.data.DataLoader):
        return None
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
    elif isinstance(getattr(data, "x", None), torch.Tensor) and isinstance(getattr(data, "y", None), torch.Tensor):
        x, y = data.x, data.y
    elif isinstance(data, torch.utils.data.TensorDataset) and len(data.tensors) >= 2:
        x, y = data.tensors[0], data.tensors[1]
    else:
        raise TypeError(
            f"expected an ImageSet, an (x, y) tuple of tensors, a TensorDataset or a DataLoader, got {type(data).__name__}"
        )
    if len(x) != len(y):
        raise ValueError(f"inputs and targets differ in length: {len(x)} vs {len(y)}")
    for what, t in (("inputs", x), ("targets", y)):
        if t.device.type == "meta":
            raise ValueError(f"{what} are on the meta device: they have a shape but no data")
    return x, y


def batches(data, batch_size: int, shuffle: bool, generator: torch.Generator | None, device: torch.device):
    """Yield (x, y) batches on ``device``: fast slicing of in-memory tensors, or a DataLoader's own batches.

    ``data`` is what :func:`~retune_lib.training.fit` takes; ``shuffle`` draws the order with ``generator`` (one
    ``randperm``).
    """
    tensors = _unpack(data)
    if tensors is None:
        for xb, yb in data:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        return
    x, y = tensors
    n = len(x)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i : i + batch_size].to(x.device)
        yield x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)


def num_batches(data, batch_size: int) -> int | None:
    """How many batches of ``batch_size`` :func:`batches` yields for ``data`` (None: a DataLoader of unknown length).

    >>> num_batches((torch.zeros(10, 2), torch.zeros(10)), 4)
    3
    """
    tensors = _unpack(data)
    if tensors is None:
        try:
            return len(data)
        except TypeError:
            return None
    return math.ceil(len(tensors[0]) / batch_size)
