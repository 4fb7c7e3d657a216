import gzip
import struct

import numpy as np
import pytest
import torch

import retune_lib as rt


def test_digits_format(digits):
    assert digits.x.shape == (1797, 1, 16, 16) and digits.x.dtype == torch.float32
    assert digits.y.dtype == torch.int64 and digits.classes == tuple("0123456789")
    assert 0 <= digits.x.min() and digits.x.max() <= 1
    assert sum(digits.counts()) == 1797


def test_split_is_stratified_seeded_and_disjoint(digits):
    a_train, a_test = digits.split(0.3, seed=0)
    b_train, b_test = digits.split(0.3, seed=0)
    c_train, _ = digits.split(0.3, seed=1)
    assert torch.equal(a_test.x, b_test.x) and not torch.equal(a_train.x, c_train.x)
    assert len(a_train) + len(a_test) == len(digits)
    full = np.array(digits.counts()) * 0.3
    assert np.all(np.abs(np.array(a_test.counts()) - full) <= 1)


def test_per_class_and_bad_k(digits):
    s = digits.per_class(3, seed=0)
    assert s.counts() == [3] * 10
    assert torch.equal(s.x, digits.per_class(3, seed=0).x)
    assert not torch.equal(s.x, digits.per_class(3, seed=1).x)
    with pytest.raises(ValueError, match="k=500 labels per class is more than 'digits' has: its smallest class holds 174"):
        digits.per_class(500)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        digits.per_class(0)


def test_only_classes_relabels(digits):
    s = digits.only_classes(["7", 2])
    assert s.classes == ("7", "2") and set(s.y.tolist()) == {0, 1}
    assert s.counts() == [digits.counts()[7], digits.counts()[2]]
    kept = digits.only_classes([2], relabel=False)
    assert set(kept.y.tolist()) == {2} and kept.classes == digits.classes
    for bad in (["x"], [10], [2, 2]):
        with pytest.raises(ValueError):
            digits.only_classes(bad)


def test_imageset_validates():
    with pytest.raises(ValueError, match="N x C x H x W"):
        rt.ImageSet(torch.zeros(3, 16, 16), torch.zeros(3, dtype=torch.int64), ("a",))
    with pytest.raises(TypeError, match="int64"):
        rt.ImageSet(torch.zeros(3, 1, 4, 4), torch.zeros(3), ("a",))
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        rt.ImageSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), ("a", "b"))


def test_render_glyphs_deterministic_and_balanced():
    a = rt.render_glyphs(n=3000, seed=5)
    b = rt.render_glyphs(n=3000, seed=5)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert a.x.shape == (3000, 1, 16, 16) and a.classes == rt.SOURCE_CLASSES
    assert min(a.counts()) > 0  # every class appears
    levels = torch.unique((a.x * 16).round())
    assert 0.1 < a.x.mean() < 0.5 and len(levels) > 10
    clean = rt.render_glyphs(n=50, seed=0, distortion=0)
    assert clean.x.shape == (50, 1, 16, 16)


def test_render_glyphs_nist_style_matches_the_digits_statistics():
    """style='nist' normalises like scikit-learn's digits: nearly every glyph has ink in all 8 rows of the 8 x 8
    grid, and its ink (sum of the 8 x 8 levels / 16) is about the digits' 19.5 whatever the character."""
    digits = rt.load_digits(size=8).x
    glyphs = rt.render_glyphs(n=2000, seed=1, size=8, style="nist").x
    printed = rt.render_glyphs(n=2000, seed=1, size=8).x

    def full_height(x):  # share of images with ink in all 8 rows
        return ((x > 0).any(3)[:, 0].sum(1) == 8).float().mean()

    def ink(x):
        return (x * 16).round().sum((1, 2, 3)) / 16

    assert full_height(digits) == 1.0 and full_height(glyphs) > 0.95 and full_height(printed) < 0.8
    assert abs(ink(glyphs).mean() - ink(digits).mean()) < 1.0 and abs(ink(printed).mean() - ink(digits).mean()) > 3
    assert ink(glyphs).std() < 2 * ink(digits).std() < ink(printed).std()
    assert torch.equal(rt.render_glyphs(n=300, seed=2, style="print").x, rt.render_glyphs(n=300, seed=2).x)


def test_render_glyphs_bad_input():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        rt.render_glyphs(n=0)
    with pytest.raises(ValueError, match="distortion must be a number between 0"):
        rt.render_glyphs(n=10, distortion=-1)
    with pytest.raises(ValueError, match="single characters"):
        rt.render_glyphs(n=10, classes=["ab", "c"])
    with pytest.raises(ValueError, match="no shipped font has a glyph for \\['\u4e2d'\\]"):
        rt.render_glyphs(n=10, classes=["a", "\u4e2d"])
    with pytest.raises(ValueError, match="style='cursive' is not supported; allowed: 'print', 'nist'"):
        rt.render_glyphs(n=10, style="cursive")


def test_load_dataset_rejects_unknown():
    with pytest.raises(ValueError, match="dataset='cifar' is not supported"):
        rt.load_dataset("cifar")


def _write_idx(path, array, magic):
    with gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.astype(np.uint8).tobytes())


def _plant_mnist(root, folder, n_train=12, n_test=6):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x00000803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 0x00000801)


@pytest.mark.parametrize("which,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_offline_from_planted_files(tmp_path, which, folder):
    _plant_mnist(tmp_path, folder)
    s = rt.load_mnist(tmp_path, which, train=True)
    assert s.x.shape == (12, 1, 16, 16) and s.name == which and len(s.classes) == 10
    assert s.y.tolist() == [i % 10 for i in range(12)]
    both = rt.load_dataset(which, root=tmp_path)
    assert len(both) == 18
    if which == "fashion_mnist":
        assert s.classes[0] == "T-shirt/top"


def test_mnist_missing_is_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist is not under .* pass download=True .* dataset='digits'"):
        rt.load_mnist(tmp_path, "mnist")


def test_rotate_matches_torchvision_per_image(digits):
    import torchvision.transforms.v2.functional as TF

    x = digits.x[:4]
    angles = torch.tensor([0.0, 30.0, -45.0, 90.0])
    out = rt.rotate(x, angles)
    for img, got, deg in zip(x, out, angles.tolist()):
        ref = TF.rotate(img, deg, interpolation=TF.InterpolationMode.BILINEAR)
        assert torch.allclose(got, ref, atol=1e-5), deg
    assert torch.allclose(rt.rotate(x, 30.0), rt.rotate(x, torch.full((4,), 30.0)))
    with pytest.raises(ValueError, match=r"one angle per image \(4\) or a single angle"):
        rt.rotate(x, torch.zeros(3))
    with pytest.raises(ValueError, match="float N x C x H x W"):
        rt.rotate(x[0], 10.0)
    with pytest.raises(ValueError, match="angles must be finite"):
        rt.rotate(x, float("nan"))
