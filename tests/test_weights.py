"""The shipped base weights: loaded by default with their checksum verified, refused in one line when altered or
missing; a user's own state dict loads when it fits and is refused in one line when it does not."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch

import retune_lib as rt
from retune_lib import claims, models, runner, weights


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if anything trains a base: the default path must only load."""

    def refuse(*a, **kw):
        raise AssertionError("a base was built on a path that must only load the shipped weights")

    monkeypatch.setattr(models, "build_base", refuse)


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped file copied into a temporary pretrained/ folder that load_base reads instead."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    copy = folder / rt.BASE_WEIGHTS.file
    shutil.copyfile(rt.weights_path(), copy)
    monkeypatch.setattr(weights, "PRETRAINED_DIR", folder)
    return copy


def test_the_shipped_file_is_small_and_matches_its_recorded_hash():
    path = rt.weights_path()
    assert path.is_file() and path.stat().st_size < 10 * 2**20
    assert weights.file_sha256(path) == rt.BASE_WEIGHTS.sha256
    assert path.name == f"base_mnist-{rt.BASE_WEIGHTS.sha256[:8]}.pt"  # torchvision's naming: hash prefix in the name


def test_the_shipped_weights_are_the_default_recipe():
    """The recipe recorded beside the file is the default PretrainRecipe (so --rebuild trains the same recipe)."""
    import dataclasses

    recorded = dict(rt.BASE_WEIGHTS.recipe, widths=tuple(rt.BASE_WEIGHTS.recipe["widths"]))
    assert recorded == dataclasses.asdict(rt.PretrainRecipe())
    for key in ("source_accuracy", "build_seconds", "commit", "built", "data", "recipe_key"):
        assert key in rt.BASE_WEIGHTS.meta, key


def test_load_base_loads_the_shipped_weights_and_builds_nothing(tmp_path, monkeypatch, no_build, capsys):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "cache"))
    base = rt.load_base("cpu")
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"pretrained base: shipped weights {rt.BASE_WEIGHTS.file}, sha256 verified")
    assert "\n" not in line and "loaded in" in line
    assert base.info["weights"] == rt.BASE_WEIGHTS.short and base.info["kind"] == "shipped"
    assert base.fc.out_features == len(rt.SOURCE_CLASSES) and not base.training
    state = torch.load(rt.weights_path(), map_location="cpu", weights_only=True)  # a plain state dict
    assert all(torch.equal(v, state[k]) for k, v in base.state_dict().items())
    assert not list((tmp_path / "cache").glob("*.pt"))  # nothing written to the cache
    assert claims._base_key() == rt.BASE_WEIGHTS.short and rt.BASE_WEIGHTS.short in rt.versions()


def test_load_base_takes_no_global_random_numbers(no_build):
    import random

    rt.seed_everything(3)
    rt.load_base("cpu", verbose=False)
    after = (random.random(), torch.rand(1).item())
    rt.seed_everything(3)
    assert (random.random(), torch.rand(1).item()) == after


@pytest.mark.parametrize("damage", ["flip", "truncate", "append"])
def test_an_altered_shipped_file_is_refused_in_one_line(shipped_copy, no_build, damage):
    raw = bytearray(shipped_copy.read_bytes())
    if damage == "flip":  # one byte inside a tensor: torch.load would read it without complaint
        raw[len(raw) // 2] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) // 3]
    else:
        raw += b"\0"
    shipped_copy.write_bytes(bytes(raw))
    actual = weights.file_sha256(shipped_copy)
    with pytest.raises(rt.WeightsError) as e:
        rt.load_base("cpu")
    msg = str(e.value)
    assert "\n" not in msg and str(shipped_copy) in msg
    assert actual in msg and rt.BASE_WEIGHTS.sha256 in msg and "is not loaded" in msg


def test_a_missing_shipped_file_is_one_line(shipped_copy, no_build):
    shipped_copy.unlink()
    with pytest.raises(rt.WeightsError, match=r"^the shipped weights file .*base_mnist-\w+\.pt is missing; reinstall"):
        rt.load_base("cpu")


def test_retune_base_refuses_an_altered_file_in_one_line(shipped_copy, capsys):
    shipped_copy.write_bytes(shipped_copy.read_bytes()[:-10])
    assert runner.main(["base"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("retune: ") and "fails its checksum" in err[0]


def test_retune_base_prints_one_verified_line():
    out = subprocess.run([sys.executable, "-m", "retune_lib.runner", "base"], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and "sha256 verified" in lines[0] and rt.BASE_WEIGHTS.short in lines[0]


def _tiny_base(widths=(4, 4, 8, 8), classes=None):
    torch.manual_seed(0)
    return rt.SmallResNet(classes or len(rt.SOURCE_CLASSES), widths=widths)


def test_your_own_state_dict_loads_with_its_widths(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(models, "source_accuracy", lambda model, recipe=None, n=5000: 0.25)  # rendering takes seconds
    mine = _tiny_base()
    path = tmp_path / "mine.pt"
    torch.save(mine.state_dict(), path)
    base = rt.load_base("cpu", path=path)
    assert base.widths == (4, 4, 8, 8) and base.info["kind"] == "yours" and base.info["source_accuracy"] == 0.25
    assert all(torch.equal(v, mine.state_dict()[k]) for k, v in base.state_dict().items())
    assert base.info["weights"] == weights.file_sha256(path)[:12]
    assert capsys.readouterr().out.startswith(f"pretrained base: your weights {path}")
    torch.save({"epoch": 3, "state_dict": mine.state_dict()}, tmp_path / "ckpt.pt")  # a training checkpoint
    assert rt.load_base("cpu", path=tmp_path / "ckpt.pt", verbose=False).widths == (4, 4, 8, 8)
    rt.save_checked({"recipe": "x", "state_dict": mine.state_dict(), "info": {}}, tmp_path / "cached.pt")  # a cache file
    assert rt.load_base("cpu", path=tmp_path / "cached.pt", verbose=False).widths == (4, 4, 8, 8)


@pytest.mark.parametrize("case, expected", [
    ("ten-classes", r"^\S+ does not fit the base \(a SmallResNet with one output per source class, 69; widths "
                    r"\(4, 4, 8, 8\)\): fc.weight is 10x8, the model's is 69x8 \(and 1 more shapes differ\)$"),
    ("resnet18", r"^\S+ does not fit the base .*: conv1.weight is 64x3x7x7, the model's is 64x1x3x3 .*name\(s\) the model "
                 r"does not have \(e.g. layer1.1.conv1.weight\)$"),
    ("missing-name", r"^\S+ does not fit the base .*: 1 name\(s\) missing \(e.g. fc.bias\)$"),
    ("garbage", r"^\S+ is not a weights file torch.load can read safely \(\w+: .*\)$"),
    ("a-list", r"^\S+ holds a list, not a state dict of named tensors; save one with torch.save\(model.state_dict\(\), path\)$"),
    ("no-file", r"^no weights file at \S+$"),
    ("whole-model", r"^\S+ is not a weights file torch.load can read safely \(\w+: .*\)$"),
])
def test_your_weights_that_do_not_fit_are_one_clear_line(tmp_path, case, expected):
    path = tmp_path / "mine.pt"
    if case == "ten-classes":
        torch.save(_tiny_base(classes=10).state_dict(), path)
    elif case == "resnet18":
        torch.save(rt.resnet18(weights=None).state_dict(), path)
    elif case == "missing-name":
        state = _tiny_base().state_dict()
        del state["fc.bias"]
        torch.save(state, path)
    elif case == "garbage":
        path.write_bytes(b"not a checkpoint")
    elif case == "a-list":
        torch.save([torch.ones(2)], path)
    elif case == "whole-model":  # torch.save(model): weights_only refuses to unpickle a module
        torch.save(_tiny_base(), path)
    with pytest.raises(rt.WeightsError, match=expected) as e:
        rt.load_base("cpu", path=path)
    assert "\n" not in str(e.value)


def test_path_and_recipe_together_are_refused():
    with pytest.raises(ValueError, match="path= .* or recipe=/rebuild=True .*, not both"):
        rt.load_base("cpu", path="x.pt", recipe=rt.PretrainRecipe())


def test_results_tables_name_the_weights(no_build, capsys):
    rt.load_base("cpu", verbose=False)
    rt.record_metrics({"accuracy": 0.5})
    assert f"base_weights  {rt.BASE_WEIGHTS.short}" in capsys.readouterr().out


def test_the_wheel_ships_the_weights(tmp_path):
    """`pip install retune-lib` (not only an editable clone) gets the file: it is package data."""
    root = pathlib.Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(root), "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"could not build a wheel here: {proc.stderr.strip().splitlines()[-1:]}")
    wheel = next(tmp_path.glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        assert f"retune_lib/pretrained/{rt.BASE_WEIGHTS.file}" in z.namelist()
        assert weights.hashlib.sha256(z.read(f"retune_lib/pretrained/{rt.BASE_WEIGHTS.file}")).hexdigest() == rt.BASE_WEIGHTS.sha256
