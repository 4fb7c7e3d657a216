"""Every bad input to the public API is one clear line from the library, never a traceback from deep inside torch.

Each case of the table calls one public function wrongly and must raise a library exception (``ValueError``,
``TypeError``, or the library's own ``CacheError``, ``TrainingDiverged``; a ``FileNotFoundError`` where a file
is missing) that the library raised itself (the innermost frame of the traceback is in ``retune_lib``), with a
one-line message that names the offending argument or value (the regex fragment). All tensors and models are tiny.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

import retune_lib as rt
from retune_lib import claims, notebook_runs, runner

LIBRARY = pathlib.Path(rt.__file__).resolve().parent
ERRORS = (ValueError, TypeError, rt.CacheError, rt.TrainingDiverged, FileNotFoundError)
NAN, INF = float("nan"), float("inf")


@dataclass
class Ctx:
    tmp: pathlib.Path
    monkeypatch: pytest.MonkeyPatch


def tiny(classes: int = 3) -> rt.SmallResNet:
    torch.manual_seed(0)
    return rt.SmallResNet(classes, widths=(4, 4, 8, 8))


def xy(n: int = 6, classes: int = 3):
    return torch.rand(n, 1, 16, 16), torch.arange(n) % classes


def imageset(n: int = 6, classes: int = 3) -> rt.ImageSet:
    x, y = xy(n, classes)
    return rt.ImageSet(x, y, tuple("abcdefghij"[:classes]), "toy")


def fit(model=None, data=None, optimizer=None, **kw):
    kw = {"epochs": 1, "progress": False, "device": "cpu", **kw}
    return rt.fit(tiny() if model is None else model, xy() if data is None else data, optimizer=optimizer, **kw)


def absent_device() -> str:
    if not torch.cuda.is_available():
        return "cuda"
    return "mps"


def with_nan(t: torch.Tensor, value: float = NAN) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = value
    return t


def trials(name="a", seeds=(0, 1, 2), values=(0.5, 0.6, 0.7)) -> rt.Trials:
    return rt.Trials(name, seeds, values)


def frozen_all(model):
    model.requires_grad_(False)
    return model


def stale_optimizer():
    """``(model, None, optimizer)`` for ``fit(*...)``: the head was replaced after the optimizer was built."""
    model = tiny()
    opt = rt.make_optimizer(model)
    model.fc = nn.Linear(8, 3)
    return model, None, opt


def other_scheduler():
    model = tiny()
    opt = rt.make_optimizer(model)
    sched = torch.optim.lr_scheduler.StepLR(rt.make_optimizer(model), 1)  # steps another optimizer
    return fit(model, optimizer=opt, scheduler=sched)


def truncated_cache(ctx):
    path = rt.save_checked({"w": torch.arange(1000.0)}, ctx.tmp / "t.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return rt.load_checked(path)


def garbage_cache(ctx):
    (ctx.tmp / "g.pt").write_bytes(b"\x00not a zip file at all" * 10)
    return rt.load_checked(ctx.tmp / "g.pt")


def tampered_cache(ctx):
    path = rt.save_checked({"w": torch.zeros(100)}, ctx.tmp / "x.pt")
    record = torch.load(path, weights_only=True)
    record["payload"]["w"][3] = 1.0
    torch.save(record, path)
    return rt.load_checked(path)


def interrupted_cache_write(ctx):
    """The process dies (here: an exception) after half the bytes are written: nothing appears under the real name."""
    import retune_lib.cache as cache

    real_save = torch.save

    def half_then_crash(obj, f, *a, **kw):
        real_save(obj, f, *a, **kw)
        f.truncate(f.tell() // 2)
        raise KeyboardInterrupt("simulated crash in the middle of the write")

    ctx.monkeypatch.setattr(cache.torch, "save", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        rt.save_checked({"w": torch.ones(1000)}, ctx.tmp / "w.pt")
    ctx.monkeypatch.undo()
    assert not list(ctx.tmp.glob(".w.pt.*")), "the temporary file was left behind"
    return rt.load_checked(ctx.tmp / "w.pt")


def cache_dir_is_a_file(ctx):
    (ctx.tmp / "afile").write_text("x")
    ctx.monkeypatch.setenv("RETUNE_CACHE", str(ctx.tmp / "afile"))
    return rt.cache_dir()


def weights_not_cached(ctx):
    ctx.monkeypatch.setenv("TORCH_HOME", str(ctx.tmp))
    return rt.resnet18(weights="imagenet")


def bad_env(ctx, name, value, fn):
    ctx.monkeypatch.setenv(name, value)
    return fn()


M = tiny  # short alias for the table

#: Cases that, before issue #12, raised an error from inside torch, scikit-learn or Python (or a bare
#: AttributeError), or passed silently; the library now refuses them itself.
NEEDED_A_FIX = {
    "ImageSet-nan-pixels", "ImageSet-inf-pixels", "ImageSet-uint8-pixels", "split-empty-set", "split-class-of-one",
    "split-test-smaller-than-classes", "PretrainRecipe-zero-epochs", "PretrainRecipe-label-smoothing",
    "PretrainRecipe-widths", "load_base-recipe-not-a-recipe", "replace_head-bias-not-bool", "count_trainable-not-a-module",
    "fit-nan-inputs", "fit-inf-regression-targets", "fit-labels-out-of-range", "fit-negative-labels", "fit-float-labels",
    "fit-float64-inputs", "fit-uint8-inputs", "fit-inputs-on-meta", "fit-model-on-meta", "fit-optimizer-not-an-optimizer",
    "fit-scheduler-of-another-optimizer", "fit-scheduler-without-step", "fit-loss-fn-not-callable", "evaluate-nan-inputs",
    "evaluate-labels-out-of-range", "evaluate-zero-batch-size", "evaluate-not-a-module", "predict-zero-batch-size",
    "predict-float64-inputs", "make_optimizer-negative-weight-decay", "make_optimizer-not-parameters", "weighted_mse-list",
    "focal_loss-target-too-large", "focal_loss-negative-target", "focal_loss-target-other-device",
    "focal_loss-integer-logits", "focal_loss-weight-list", "FocalLoss-negative-gamma", "FocalLoss-unknown-reduction",
    "bce_loss-logits-list", "freeze_to-unknown-bn-policy", "kd_loss-label-out-of-range", "kd_loss-float-labels",
    "kd_loss-labels-short", "kd_loss-labels-other-device", "kd_loss-t-squared-not-bool", "map_logits-groups-not-a-list",
    "soft_threshold-list-input", "soft_threshold-nan-threshold", "ste_round-list-input", "save_checked-module-in-payload",
    "cache_dir-is-a-file", "Trials-text-value", "Trials-fractional-seed", "Trials.ci-confidence", "run_trials-fn-not-callable",
    "run_trials-text-result", "trials_table-negative-digits",
}

CASES = [
    # --- checks -------------------------------------------------------------------------------------------------
    ("check_choice-unknown", lambda c: rt.check_choice("dataset", "digitz", rt.DATASETS), r"dataset='digitz' is not supported; allowed: 'digits'"),
    ("check_positive_int-zero", lambda c: rt.check_positive_int(epochs=0), r"epochs must be a positive integer .*got 0"),
    ("check_positive_int-string", lambda c: rt.check_positive_int(epochs="3"), r"epochs must be a positive integer .*got '3'"),
    ("check_positive_int-two-keywords", lambda c: rt.check_positive_int(a=1, b=2), r"pass exactly one keyword argument"),
    ("check_nonnegative_int-negative", lambda c: rt.check_nonnegative_int(seed=-1), r"seed must be an integer >= 0, got -1"),
    ("check_positive_float-nan", lambda c: rt.check_positive_float(lr=NAN), r"lr must be a finite number > 0, got nan"),
    ("check_positive_float-inf", lambda c: rt.check_positive_float(lr=INF), r"lr must be a finite number > 0, got inf"),
    ("check_fraction-nan", lambda c: rt.check_fraction(p=NAN), r"p must be a number between 0 and 1, got nan"),
    ("check_int_list-empty", lambda c: rt.check_int_list("k_values", []), r"k_values must be a non-empty list of integers"),
    ("check_int_list-out-of-range", lambda c: rt.check_int_list("k_values", [0, 5], high=50), r"k_values must hold integers between 1 and 50, got 0"),
    # --- data ---------------------------------------------------------------------------------------------------
    ("ImageSet-x-not-a-tensor", lambda c: rt.ImageSet(np.zeros((2, 1, 4, 4)), torch.zeros(2, dtype=torch.int64), ("a",)), r"ImageSet needs tensors"),
    ("ImageSet-x-3d", lambda c: rt.ImageSet(torch.zeros(2, 4, 4), torch.zeros(2, dtype=torch.int64), ("a",)), r"x of shape N x C x H x W .* got \(2, 4, 4\)"),
    ("ImageSet-length-mismatch", lambda c: rt.ImageSet(torch.zeros(3, 1, 4, 4), torch.zeros(2, dtype=torch.int64), ("a",)), r"got \(3, 1, 4, 4\) and \(2,\)"),
    ("ImageSet-float-labels", lambda c: rt.ImageSet(torch.zeros(2, 1, 4, 4), torch.zeros(2), ("a",)), r"labels must be int64 class indices, got torch.float32"),
    ("ImageSet-label-out-of-range", lambda c: rt.ImageSet(torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), ("a", "b")), r"labels must lie in 0..1 for 2 classes"),
    ("ImageSet-nan-pixels", lambda c: rt.ImageSet(with_nan(torch.zeros(2, 1, 4, 4)), torch.zeros(2, dtype=torch.int64), ("a",)), r"x holds NaN or infinite values"),
    ("ImageSet-inf-pixels", lambda c: rt.ImageSet(with_nan(torch.zeros(2, 1, 4, 4), INF), torch.zeros(2, dtype=torch.int64), ("a",)), r"x holds NaN or infinite values"),
    ("ImageSet-uint8-pixels", lambda c: rt.ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), ("a",)), r"x must be a floating-point tensor .*got torch.uint8"),
    ("per_class-k-larger-than-a-class", lambda c: imageset(6).per_class(3), r"k=3 labels per class is more than 'toy' has: its smallest class holds 2"),
    ("per_class-k-zero", lambda c: imageset().per_class(0), r"k must be a positive integer"),
    ("per_class-empty-set", lambda c: imageset(0).per_class(1), r"k=1 labels per class .* its smallest class holds 0"),
    ("split-fraction-one", lambda c: imageset().split(1.0), r"test_fraction must be strictly between 0 and 1, got 1.0"),
    ("split-empty-set", lambda c: imageset(0).split(0.3), r"cannot split 'toy' \(0 examples, 3 classes\) with test_fraction=0.3"),
    ("split-class-of-one", lambda c: imageset(4).split(0.5), r"cannot split 'toy' .*test_fraction=0.5.*least populated class"),
    ("split-test-smaller-than-classes", lambda c: imageset(30, 10).split(0.1), r"cannot split 'toy' .*test_fraction=0.1"),
    ("only_classes-unknown-name", lambda c: imageset().only_classes(["z"]), r"unknown class 'z'"),
    ("only_classes-index-out-of-range", lambda c: imageset().only_classes([5]), r"class index must be an integer between 0 and 2, got 5"),
    ("only_classes-repeated", lambda c: imageset().only_classes([1, 1]), r"only_classes got a class twice"),
    ("load_dataset-unknown", lambda c: rt.load_dataset("cifar10"), r"dataset='cifar10' is not supported"),
    ("load_mnist-unknown-which", lambda c: rt.load_mnist(c.tmp, "kmnist"), r"which='kmnist' is not supported"),
    ("load_mnist-files-missing", lambda c: rt.load_mnist(c.tmp, "mnist"), r"mnist is not under .*pass download=True"),
    ("load_digits-size-zero", lambda c: rt.load_digits(size=0), r"size must be a positive integer"),
    ("render_glyphs-n-zero", lambda c: rt.render_glyphs(n=0), r"n must be a positive integer"),
    ("render_glyphs-single-class", lambda c: rt.render_glyphs(n=4, classes="A"), r"classes must be at least two single characters"),
    ("render_glyphs-repeated-class", lambda c: rt.render_glyphs(n=4, classes="AA"), r"classes must not repeat a character"),
    ("render_glyphs-distortion", lambda c: rt.render_glyphs(n=4, distortion=5), r"distortion must be a number between 0 .* got 5"),
    ("rotate-integer-images", lambda c: rt.rotate(torch.zeros(2, 1, 4, 4, dtype=torch.int64), 90), r"images must be a float N x C x H x W tensor"),
    ("rotate-angle-count", lambda c: rt.rotate(torch.zeros(2, 1, 4, 4), [1.0, 2.0, 3.0]), r"need one angle per image \(2\) or a single angle"),
    ("rotate-nan-angle", lambda c: rt.rotate(torch.zeros(2, 1, 4, 4), [1.0, NAN]), r"angles must be finite"),
    # --- models -------------------------------------------------------------------------------------------------
    ("SmallResNet-zero-classes", lambda c: rt.SmallResNet(0), r"num_classes must be a positive integer"),
    ("SmallResNet-three-widths", lambda c: rt.SmallResNet(3, widths=(4, 4, 8)), r"widths must be four positive integers"),
    ("SmallResNet-zero-channels", lambda c: rt.SmallResNet(3, in_channels=0), r"in_channels must be a positive integer"),
    ("resnet18-unknown-weights", lambda c: rt.resnet18(weights="imagenet1k"), r"weights='imagenet1k' is not supported; allowed: 'imagenet', None"),
    ("resnet18-weights-not-cached", weights_not_cached, r"ImageNet weights for resnet18 are not in the torch hub cache"),
    ("PretrainRecipe-zero-epochs", lambda c: rt.PretrainRecipe(epochs=0), r"epochs must be a positive integer"),
    ("PretrainRecipe-label-smoothing", lambda c: rt.PretrainRecipe(label_smoothing=1.5), r"label_smoothing must be a number in \[0, 1\), got 1.5"),
    ("PretrainRecipe-widths", lambda c: rt.PretrainRecipe(widths=(8, 8)), r"widths must be four positive integers"),
    ("load_base-recipe-not-a-recipe", lambda c: rt.load_base("cpu", recipe={"epochs": 1}), r"recipe must be a PretrainRecipe, got dict"),
    ("load_base-unknown-device", lambda c: rt.load_base("gpu"), r"device='gpu' is not supported"),
    # --- heads --------------------------------------------------------------------------------------------------
    ("find_head-not-a-module", lambda c: rt.find_head("resnet18"), r"expected a torch.nn.Module, got str"),
    ("find_head-unknown-name", lambda c: rt.find_head(M(), "classifer"), r"the model has no submodule 'classifer'; its linear layers are: fc"),
    ("find_head-name-not-a-string", lambda c: rt.find_head(M(), 3), r"name must be a dotted module name .* got 3"),
    ("find_head-no-classifier", lambda c: rt.find_head(nn.Sequential(nn.Conv2d(1, 2, 3))), r"no classifier found in Sequential: it has no nn.Linear"),
    ("replace_head-zero-classes", lambda c: rt.replace_head(M(), 0), r"positive number of output classes, got 0"),
    ("replace_head-fractional-classes", lambda c: rt.replace_head(M(), 2.5), r"positive number of output classes, got 2.5"),
    ("replace_head-numpy-float-classes", lambda c: rt.replace_head(M(), np.float64(7.5)), r"positive number of output classes, got 7.5$"),
    ("replace_head-bool-classes", lambda c: rt.replace_head(M(), True), r"positive number of output classes, got True"),
    ("replace_head-3x3-conv", lambda c: rt.replace_head(M(), 3, name="conv1"), r"'conv1' is a Conv2d, not nn.Linear: pass the replacement module itself"),
    ("replace_head-bias-not-bool", lambda c: rt.replace_head(M(), 3, bias="no"), r"bias must be True, False or None .* got 'no'"),
    ("freeze-unknown-module", lambda c: rt.freeze(M(), "layer9"), r"no module matches 'layer9'; the model's top-level modules are: conv1"),
    ("freeze-glob-matches-nothing", lambda c: rt.freeze(M(), "block*"), r"no module matches 'block\*'"),
    ("freeze-unknown-bn-policy", lambda c: rt.freeze(M(), bn="frozen"), r"bn='frozen' is not supported; allowed: 'eval', 'train'"),
    ("freeze-foreign-module", lambda c: rt.freeze(M(), nn.Linear(2, 2)), r"the Linear passed is not a submodule of this model"),
    ("freeze-not-a-name", lambda c: rt.freeze(M(), [3]), r"modules must be names, glob patterns or nn.Modules, got int"),
    ("unfreeze-glob-matches-nothing", lambda c: rt.unfreeze(M(), "fc.*x"), r"no module matches 'fc.\*x'"),
    ("count_trainable-not-a-module", lambda c: rt.count_trainable("model"), r"expected a torch.nn.Module, got str"),
    ("recalibrate_bn-no-batch-norm", lambda c: rt.recalibrate_bn(nn.Linear(2, 2), (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64))), r"the model has no batch-norm layers"),
    ("recalibrate_bn-batch-size-zero", lambda c: rt.recalibrate_bn(M(), xy(), batch_size=0), r"batch_size must be a positive integer"),
    ("features-unknown-head", lambda c: rt.features(M(), xy()[0], head="fc2"), r"the model has no submodule 'fc2'"),
    ("features-data-of-wrong-type", lambda c: rt.features(M(), [1, 2, 3]), r"expected an ImageSet, an \(x, y\) tuple of tensors"),
    # --- training -----------------------------------------------------------------------------------------------
    ("select_device-unknown", lambda c: rt.select_device("gpu"), r"device='gpu' is not supported; allowed: 'auto', 'cpu', 'cuda', 'mps'"),
    ("select_device-absent", lambda c: rt.select_device(absent_device()), r"device='(cuda|mps)' is not available on this machine"),
    ("select_device-meta", lambda c: rt.select_device("meta"), r"device='meta' is not supported"),
    ("select_device-not-a-string", lambda c: rt.select_device(0), r"device must be a string such as 'auto' or 'cpu', got int"),
    ("seed_everything-negative", lambda c: rt.seed_everything(-1), r"seed must be an integer >= 0, got -1"),
    ("fit-zero-epochs", lambda c: fit(epochs=0), r"epochs must be a positive integer"),
    ("fit-zero-batch-size", lambda c: fit(batch_size=0), r"batch_size must be a positive integer"),
    ("fit-not-a-module", lambda c: fit(model="resnet"), r"fit needs a torch.nn.Module, got str"),
    ("fit-empty-training-set", lambda c: fit(data=xy(0)), r"fit got an empty training set"),
    ("fit-data-of-wrong-type", lambda c: fit(data=[1, 2, 3]), r"expected an ImageSet, an \(x, y\) tuple of tensors"),
    ("fit-length-mismatch", lambda c: fit(data=(xy()[0], xy()[1][:5])), r"inputs and targets differ in length: 6 vs 5"),
    ("fit-nan-inputs", lambda c: fit(data=(with_nan(xy()[0]), xy()[1])), r"loss became nan at epoch 1, step 1: .*inputs hold NaN or infinite values"),
    ("fit-inf-regression-targets", lambda c: fit(nn.Linear(3, 1), (torch.rand(4, 3), with_nan(torch.rand(4, 1), INF)), loss_fn=nn.functional.mse_loss), r"loss became inf at epoch 1, step 1: .*targets hold NaN or infinite values"),
    ("fit-labels-out-of-range", lambda c: fit(data=(xy()[0], torch.tensor([0, 1, 2, 0, 1, 7]))), r"targets hold class 7, out of range: the model has 3 outputs"),
    ("fit-negative-labels", lambda c: fit(data=(xy()[0], torch.tensor([0, 1, 2, 0, 1, -1]))), r"targets hold class -1, out of range"),
    ("fit-float-labels", lambda c: fit(data=(xy()[0], xy()[1].float())), r"targets are torch.float32 of shape \(6,\) .* int64 class indices"),
    ("fit-float64-inputs", lambda c: fit(data=(xy()[0].double(), xy()[1])), r"inputs are torch.float64 but the model's parameters are torch.float32"),
    ("fit-uint8-inputs", lambda c: fit(data=((xy()[0] * 255).to(torch.uint8), xy()[1])), r"inputs are torch.uint8 but the model's parameters are torch.float32"),
    ("fit-inputs-on-meta", lambda c: fit(data=(xy()[0].to("meta"), xy()[1])), r"inputs are on the meta device"),
    ("fit-model-on-meta", lambda c: fit(model=M().to("meta")), r"the model's parameters are on the meta device"),
    ("fit-device-meta", lambda c: fit(device="meta"), r"device='meta' is not supported"),
    ("fit-device-absent", lambda c: fit(device=absent_device()), r"is not available on this machine"),
    ("fit-negative-seed", lambda c: fit(seed=-1), r"seed must be an integer >= 0"),
    ("fit-optimizer-missing-new-head", lambda c: fit(*stale_optimizer()), r"the optimizer does not hold 2 trainable parameters \(fc.weight, fc.bias\)"),
    ("fit-optimizer-not-an-optimizer", lambda c: fit(optimizer="adam"), r"optimizer must be a torch.optim.Optimizer .* got str"),
    ("fit-scheduler-of-another-optimizer", lambda c: other_scheduler(), r"scheduler steps another optimizer"),
    ("fit-scheduler-without-step", lambda c: fit(scheduler="cosine"), r"scheduler must have a step\(\) method .* got str"),
    ("fit-loss-fn-not-callable", lambda c: fit(loss_fn="cross_entropy"), r"loss_fn must be callable .* got str"),
    ("evaluate-empty", lambda c: rt.evaluate(M(), xy(0)), r"cannot evaluate on an empty dataset"),
    ("evaluate-nan-inputs", lambda c: rt.evaluate(M(), (with_nan(xy()[0]), xy()[1])), r"inputs hold NaN or infinite values"),
    ("evaluate-labels-out-of-range", lambda c: rt.evaluate(M(), (xy()[0], torch.tensor([0, 1, 2, 0, 1, 3]))), r"targets hold class 3, out of range: the model has 3 outputs"),
    ("evaluate-zero-batch-size", lambda c: rt.evaluate(M(), xy(), batch_size=0), r"batch_size must be a positive integer"),
    ("evaluate-not-a-module", lambda c: rt.evaluate("model", xy()), r"evaluate needs a torch.nn.Module, got str"),
    ("evaluate-device-absent", lambda c: rt.evaluate(M(), xy(), device=absent_device()), r"is not available on this machine"),
    ("predict-zero-batch-size", lambda c: rt.predict(M(), xy()[0], batch_size=0), r"batch_size must be a positive integer"),
    ("predict-float64-inputs", lambda c: rt.predict(M(), xy()[0].double()), r"inputs are torch.float64 but the model's parameters are torch.float32"),
    ("make_optimizer-unknown", lambda c: rt.make_optimizer(M(), "rmsprop"), r"optimizer='rmsprop' is not supported"),
    ("make_optimizer-nothing-trainable", lambda c: rt.make_optimizer(frozen_all(M())), r"the model has no trainable parameters"),
    ("make_optimizer-zero-lr", lambda c: rt.make_optimizer(M(), lr=0), r"lr must be a finite number > 0"),
    ("make_optimizer-negative-weight-decay", lambda c: rt.make_optimizer(M(), weight_decay=-0.1), r"weight_decay must be a number >= 0, got -0.1"),
    ("make_optimizer-empty-list", lambda c: rt.make_optimizer([]), r"make_optimizer got an empty parameter list"),
    ("make_optimizer-not-parameters", lambda c: rt.make_optimizer([1, 2]), r"make_optimizer needs parameters .* got int"),
    # --- losses -------------------------------------------------------------------------------------------------
    ("class_weights-float-labels", lambda c: rt.class_weights(torch.tensor([0.0, 1.0])), r"labels must be a 1-d tensor of integer class indices"),
    ("class_weights-missing-class", lambda c: rt.class_weights(torch.tensor([0, 1]), 3), r"class\(es\) \[2\] have no examples"),
    ("class_weights-single-class-labels", lambda c: rt.class_weights(torch.zeros(4, dtype=torch.int64), 2), r"class\(es\) \[1\] have no examples"),
    ("class_weights-empty", lambda c: rt.class_weights(torch.zeros(0, dtype=torch.int64)), r"labels is empty"),
    ("class_weights-unknown-scheme", lambda c: rt.class_weights(torch.tensor([0, 1]), scheme="log"), r"scheme='log' is not supported"),
    ("class_weights-beta-one", lambda c: rt.class_weights(torch.tensor([0, 1]), scheme="effective", beta=1.0), r"beta must be a number in \[0, 1\)"),
    ("target_weights-nan", lambda c: rt.target_weights(torch.tensor([0.0, NAN, 1.0])), r"targets must be non-empty and finite"),
    ("target_weights-inf", lambda c: rt.target_weights(torch.tensor([0.0, INF, 1.0])), r"targets must be non-empty and finite"),
    ("target_weights-integers", lambda c: rt.target_weights(torch.tensor([0, 1])), r"targets must be a floating-point tensor"),
    ("target_weights-one-bin", lambda c: rt.target_weights(torch.rand(5), bins=1), r"bins must be at least 2"),
    ("weighted_mse-silent-broadcast", lambda c: rt.weighted_mse_loss(torch.zeros(8, 2), torch.zeros(8)), r"pred has shape \(8, 2\) but target has \(8,\)"),
    ("weighted_mse-weight-shape", lambda c: rt.weighted_mse_loss(torch.zeros(8), torch.zeros(8), torch.ones(3)), r"one weight per example"),
    ("weighted_mse-list", lambda c: rt.weighted_mse_loss([1.0, 2.0], torch.zeros(2)), r"pred must be a torch.Tensor, got list"),
    ("focal_loss-target-too-large", lambda c: rt.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 3])), r"target holds class 3, out of range: logits has 3 classes"),
    ("focal_loss-negative-target", lambda c: rt.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, -1, 2])), r"target holds class -1, out of range"),
    ("focal_loss-target-short", lambda c: rt.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2])), r"logits has 4 rows but target has 3 labels"),
    ("focal_loss-target-other-device", lambda c: rt.focal_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.int64, device="meta")), r"target is on meta but logits is on cpu"),
    ("focal_loss-integer-logits", lambda c: rt.focal_loss(torch.zeros(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64)), r"logits must be an N x C float tensor, got shape \(4, 3\), torch.int64"),
    ("focal_loss-weight-list", lambda c: rt.focal_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.int64), weight=[1.0, 1.0, 1.0]), r"weight must hold one value per class \(3\), got list"),
    ("focal_loss-negative-gamma", lambda c: rt.focal_loss(torch.randn(4, 3), torch.zeros(4, dtype=torch.int64), gamma=-1), r"gamma must be a number >= 0, got -1"),
    ("FocalLoss-negative-gamma", lambda c: rt.FocalLoss(gamma=-1), r"gamma must be a number >= 0, got -1"),
    ("FocalLoss-unknown-reduction", lambda c: rt.FocalLoss(reduction="avg"), r"reduction='avg' is not supported"),
    ("one_hot-label-out-of-range", lambda c: rt.one_hot_targets(torch.tensor([0, 3]), 3), r"label 3 is out of range: use 0..2, or -1"),
    ("bce_loss-float-target-shape", lambda c: rt.bce_loss(torch.zeros(3, 3), torch.zeros(3)), r"float targets must have the logits' shape \(3, 3\), got \(3,\)"),
    ("bce_loss-2d-integer-target", lambda c: rt.bce_loss(torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.int64)), r"integer targets must be N class indices"),
    ("bce_loss-logits-list", lambda c: rt.bce_loss([[0.0]], torch.zeros(1)), r"logits must be a torch.Tensor, got list"),
    # --- expansion ----------------------------------------------------------------------------------------------
    ("expand_classes-zero", lambda c: rt.expand_classes(M(), 0), r"n_new must be a positive integer"),
    ("expand_classes-unknown-init", lambda c: rt.expand_classes(M(), 2, init="zeros"), r"init='zeros' is not supported"),
    ("expand_classes-conv-layer", lambda c: rt.expand_classes(M(), 2, name="conv1"), r"'conv1' is a Conv2d; class expansion supports an nn.Linear"),
    ("split_class-index-out-of-range", lambda c: rt.split_class(M(), 5), r"index must be an integer between 0 and 2, got 5"),
    ("split_class-one-child", lambda c: rt.split_class(M(), 0, n_children=1), r"n_children must be an integer >= 2, got 1"),
    ("split_class-unknown-keep", lambda c: rt.split_class(M(), 0, keep="logit"), r"keep='logit' is not supported"),
    ("split_class-probabilities-without-bias", lambda c: rt.split_class(nn.Sequential(nn.Linear(3, 3, bias=False)), 0, keep="probabilities"), r"this layer has no bias"),
    ("swap_parameters-not-an-optimizer", lambda c: rt.swap_parameters("adam", {}), r"expected a torch optimizer, got str"),
    ("swap_parameters-not-in-optimizer", lambda c: rt.swap_parameters(rt.make_optimizer(nn.Linear(2, 2)), {nn.Parameter(torch.zeros(2)): nn.Parameter(torch.zeros(3))}), r"a parameter of shape \(2,\) to replace is not in the optimizer"),
    ("swap_parameters-shrinks", lambda c: (lambda l: rt.swap_parameters(rt.make_optimizer(l), {l.bias: nn.Parameter(torch.zeros(1))}))(nn.Linear(2, 2)), r"cannot carry state from shape \(2,\) to \(1,\)"),
    ("lwf_loss-fewer-outputs", lambda c: rt.lwf_loss(torch.zeros(2, 2), torch.zeros(2, 3)), r"the new model has 2 outputs, fewer than the old model's 3"),
    ("lwf_loss-dtype-mismatch", lambda c: rt.lwf_loss(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64)), r"new and old logits differ in device or dtype"),
    ("lwf_loss-not-tensors", lambda c: rt.lwf_loss([0.0], [0.0]), r"lwf_loss expects two tensors of logits"),
    # --- unfreezing ---------------------------------------------------------------------------------------------
    ("layer_groups-not-a-module", lambda c: rt.layer_groups("resnet"), r"expected a torch.nn.Module, got str"),
    ("freeze_to-out-of-range", lambda c: rt.freeze_to(M(), 99), r"n must be an integer from -6 to 6 \(the model has 6 groups\), got 99"),
    ("freeze_to-fractional", lambda c: rt.freeze_to(M(), 1.5), r"n must be an integer from -6 to 6 .* got 1.5"),
    ("freeze_to-unknown-bn-policy", lambda c: rt.freeze_to(M(), 0, bn="frozen"), r"bn='frozen' is not supported; allowed: 'eval', 'train'"),
    ("gradual_unfreeze-negative-epoch", lambda c: rt.gradual_unfreeze(M(), -1), r"epoch must be an integer >= 0, got -1"),
    ("gradual_unfreeze-every-zero", lambda c: rt.gradual_unfreeze(M(), 0, every=0), r"every must be a positive integer"),
    ("discriminative_lr-decay-below-one", lambda c: rt.discriminative_lr(M(), 1e-3, decay=0.5), r"decay must be >= 1"),
    ("discriminative_lr-negative-weight-decay", lambda c: rt.discriminative_lr(M(), 1e-3, weight_decay=-1), r"weight_decay must be a number >= 0, got -1"),
    ("fine_tune-negative-freeze-epochs", lambda c: rt.fine_tune(M(), xy(), freeze_epochs=-1, device="cpu", progress=False), r"freeze_epochs must be an integer >= 0, got -1"),
    ("fine_tune-zero-epochs", lambda c: rt.fine_tune(M(), xy(), epochs=0, device="cpu", progress=False), r"epochs must be a positive integer"),
    # --- distillation -------------------------------------------------------------------------------------------
    ("kd_loss-label-out-of-range", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 99]), alpha=0.5), r"labels holds class 99, out of range: student_logits has 3 classes"),
    ("kd_loss-float-labels", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4), alpha=0.5), r"labels must be a 1-d tensor of integer class indices, got a 1-d torch.float32 tensor"),
    ("kd_loss-labels-short", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1]), alpha=0.5), r"student_logits has 4 rows but labels has 2 labels"),
    ("kd_loss-labels-other-device", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), torch.zeros(4, dtype=torch.int64, device="meta"), alpha=0.5), r"labels is on meta but student_logits is on cpu"),
    ("kd_loss-labels-missing", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), alpha=0.5), r"pass labels, or alpha=0"),
    ("kd_loss-class-mismatch", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 5)), r"student logits \(4, 3\) and teacher logits \(4, 5\) differ"),
    ("kd_loss-teacher-other-device", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3, device="meta")), r"student logits are on cpu but the teacher's are on meta"),
    ("kd_loss-nan-temperature", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), temperature=NAN), r"temperature must be a finite number > 0, got nan"),
    ("kd_loss-alpha-above-one", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), alpha=1.5), r"alpha must be a number between 0 and 1, got 1.5"),
    ("kd_loss-t-squared-not-bool", lambda c: rt.kd_loss(torch.randn(4, 3), torch.randn(4, 3), t_squared="yes"), r"t_squared must be True or False, got 'yes'"),
    ("map_logits-shared-class", lambda c: rt.map_logits(torch.randn(2, 4), [[0, 1], [1]]), r"teacher class 1 appears in more than one group"),
    ("map_logits-class-out-of-range", lambda c: rt.map_logits(torch.randn(2, 4), [[0], [7]]), r"a teacher class for student class 1 must be an integer between 0 and 3, got 7"),
    ("map_logits-single-student-class", lambda c: rt.map_logits(torch.randn(2, 4), [[0, 1]]), r"need at least two student classes"),
    ("map_logits-groups-not-a-list", lambda c: rt.map_logits(torch.randn(2, 4), 5), r"groups must be a list of teacher-class lists .* got int"),
    # --- outputs ------------------------------------------------------------------------------------------------
    ("BoundedOutput-empty-interval", lambda c: rt.BoundedOutput(1.0, 0.0), r"BoundedOutput needs lo < hi, got lo=1.0, hi=0.0"),
    ("BoundedOutput-nan-bound", lambda c: rt.BoundedOutput(NAN, 1.0), r"lo must be a finite number, got nan"),
    ("BoundedOutput-unknown-kind", lambda c: rt.BoundedOutput(0.0, 1.0, "relu"), r"kind='relu' is not supported"),
    ("BoundedOutput-list-input", lambda c: rt.BoundedOutput(0.0, 1.0)([1.0]), r"BoundedOutput expects a tensor, got list"),
    ("straight_through-shapes", lambda c: rt.straight_through(torch.zeros(2), torch.zeros(3)), r"hard and soft must have the same shape"),
    ("soft_threshold-zero-temperature", lambda c: rt.soft_threshold(torch.zeros(2), temperature=0), r"temperature must be a finite number > 0"),
    ("soft_threshold-list-input", lambda c: rt.soft_threshold([0.5, 1.0]), r"x must be a torch.Tensor, got list"),
    ("soft_threshold-nan-threshold", lambda c: rt.soft_threshold(torch.zeros(2), threshold=NAN), r"threshold must be a finite number or a tensor, got nan"),
    ("ste_threshold-negative-temperature", lambda c: rt.ste_threshold(torch.zeros(2), temperature=-1), r"temperature must be a finite number > 0"),
    ("ste_round-list-input", lambda c: rt.ste_round([0.4]), r"x must be a torch.Tensor, got list"),
    # --- cache --------------------------------------------------------------------------------------------------
    ("save_checked-not-a-dict", lambda c: rt.save_checked([1, 2], c.tmp / "l.pt"), r"save_checked stores a dict, got list"),
    ("save_checked-module-in-payload", lambda c: rt.save_checked({"model": nn.Linear(2, 2)}, c.tmp / "m.pt"), r"payload\['model'\] is a Linear: .*tensors, numbers, strings"),
    ("load_checked-missing", lambda c: rt.load_checked(c.tmp / "nope.pt"), r"no cached file at .*nope.pt"),
    ("load_checked-garbage", garbage_cache, r"cached file .*g.pt is unreadable"),
    ("load_checked-truncated", truncated_cache, r"cached file .*t.pt is unreadable"),
    ("load_checked-tampered", tampered_cache, r"cached file .*x.pt is corrupted: its contents do not match the stored digest"),
    ("load_checked-wrong-format", lambda c: (torch.save({"x": torch.zeros(1)}, c.tmp / "o.pt"), rt.load_checked(c.tmp / "o.pt")), r"cached file .*o.pt is not a retune cache file of format 1"),
    ("save_checked-interrupted-midway", interrupted_cache_write, r"no cached file at .*w.pt"),
    ("cache_dir-is-a-file", cache_dir_is_a_file, r"RETUNE_CACHE='.*afile' is not a directory"),
    # --- trials -------------------------------------------------------------------------------------------------
    ("Trials-length-mismatch", lambda c: trials(seeds=(0, 1)), r"trials 'a': 2 seeds but 3 values"),
    ("Trials-no-seeds", lambda c: trials(seeds=(), values=()), r"trials 'a': no seeds"),
    ("Trials-repeated-seed", lambda c: trials(seeds=(0, 0, 1)), r"trials 'a': repeated seeds \[0, 0, 1\]"),
    ("Trials-nan-value", lambda c: trials(values=(0.5, NAN, 0.7)), r"trials 'a': non-finite values \[nan\]"),
    ("Trials-text-value", lambda c: trials(values=(0.5, "high", 0.7)), r"trials 'a': values must be numbers, got 'high'"),
    ("Trials-fractional-seed", lambda c: trials(seeds=(0, 1.5, 2)), r"trials 'a': seeds must be integers, got 1.5"),
    ("Trials.ci-confidence", lambda c: trials().ci(2.0), r"confidence must be a number in \[0.5, 1\), got 2.0"),
    ("trial_seeds-too-many", lambda c: rt.trial_seeds(0, 101), r"n_seeds must be at most 100, got 101"),
    ("run_trials-no-seeds", lambda c: rt.run_trials(lambda s: 0.0, []), r"run_trials needs at least one seed"),
    ("run_trials-fn-not-callable", lambda c: rt.run_trials(0.5, [0, 1]), r"fn must be callable .* got float"),
    ("run_trials-text-result", lambda c: rt.run_trials(lambda s: "good", [0, 1]), r"fn returned 'good' for seed 0: .*a number or a dict"),
    ("compare-different-seeds", lambda c: rt.compare(trials(), trials("b", seeds=(3, 4, 5))), r"'a' and 'b' were run on different seeds"),
    ("compare-not-trials", lambda c: rt.compare([0.5, 0.6], trials()), r"a must be Trials \(from run_trials\), got list"),
    ("compare-confidence", lambda c: rt.compare(trials(), 0.5, confidence=1.0), r"confidence must be a number in \[0.5, 1\), got 1.0"),
    ("claim-two-seeds", lambda c: rt.claim("a beats 0", trials(seeds=(0, 1), values=(0.5, 0.6))), r"claim 'a beats 0' rests on 2 seed\(s\); use at least 3"),
    ("claim-empty-statement", lambda c: rt.claim("  ", trials()), r"claim needs a statement"),
    ("claim-zero-tolerance", lambda c: rt.claim("a is 0.6", trials(), 0.6, within=0), r"within must be a number > 0, got 0"),
    ("trials_table-empty", lambda c: rt.trials_table({}), r"trials_table needs at least one row"),
    ("trials_table-negative-digits", lambda c: rt.trials_table({"a": trials()}, digits=-1), r"digits must be an integer >= 0, got -1"),
    # --- gradients ----------------------------------------------------------------------------------------------
    ("gradient_flow-not-a-module", lambda c: rt.gradient_flow("model", lambda: 0), r"gradient_flow needs a torch.nn.Module, got str"),
    ("gradient_flow-nothing-trainable", lambda c: rt.gradient_flow(frozen_all(nn.Linear(2, 2)), lambda: 0), r"the model has no trainable parameters"),
    ("gradient_flow-loss-not-callable", lambda c: rt.gradient_flow(nn.Linear(2, 2), 0.5), r"gradient_flow needs a function that computes the loss"),
    ("gradient_flow-vector-loss", lambda c: rt.gradient_flow(nn.Linear(2, 2), lambda: torch.zeros(3)), r"loss_fn must return a scalar tensor"),
    # --- runner -------------------------------------------------------------------------------------------------
    ("record_metrics-nan", lambda c: rt.record_metrics({"acc": NAN}), r"metric 'acc' is nan: a notebook must not record a non-finite result"),
    ("record_metrics-empty", lambda c: rt.record_metrics({}), r"record_metrics needs a non-empty dict"),
    ("record_metrics-list-value", lambda c: rt.record_metrics({"acc": [0.5]}), r"metric 'acc' must be a number, string or bool, got list"),
    ("run_all-unknown-parameter", lambda c: notebook_runs.run_all(["01"], c.tmp, {"sede": 1}, echo=False), r"01_differentiable_transforms has no parameter 'sede'; allowed: "),
    ("notebook_paths-unknown-notebook", lambda c: notebook_runs.notebook_paths(["99"]), r"no notebook matches \['99'\]"),
    ("run_claims-seed-parameter", lambda c: claims.run_claims(["01"], 1, [1], 1, c.tmp, {"seed": 1}, echo=False), r"retune claims sets the seed itself"),
    ("cell_timeout-not-a-number", lambda c: bad_env(c, "RETUNE_CELL_TIMEOUT", "soon", notebook_runs.cell_timeout), r"RETUNE_CELL_TIMEOUT must be a whole number of seconds >= 1, got 'soon'"),
]


def test_the_table_is_large_and_ids_unique():
    ids = [case[0] for case in CASES]
    assert len(ids) >= 80 and len(set(ids)) == len(ids), [i for i in ids if ids.count(i) > 1]
    assert NEEDED_A_FIX <= set(ids)


@pytest.mark.parametrize("call, pattern", [pytest.param(f, p, id=i) for i, f, p in CASES])
def test_bad_input_is_one_clear_library_error(call, pattern, tmp_path, monkeypatch):
    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ERRORS) as info:
        call(Ctx(tmp_path, monkeypatch))
    message = str(info.value)
    assert re.search(pattern, message), f"{type(info.value).__name__}: {message!r} does not match {pattern!r}"
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    where = pathlib.Path(info.traceback[-1].path).resolve()
    assert LIBRARY in where.parents, f"raised in {where}, not by retune_lib: {type(info.value).__name__}: {message}"


def test_cli_refuses_an_unknown_parameter_in_one_line(capsys):
    assert runner.main(["run", "01", "-p", "sede", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == err.splitlines()[0] and err.startswith("retune: 01_differentiable_transforms has no parameter 'sede'")
    assert runner.main(["run", "99"]) == 2
    assert "retune: no notebook matches ['99']" in capsys.readouterr().err


def test_an_interrupted_cache_write_leaves_the_old_file(tmp_path, monkeypatch):
    import retune_lib.cache as cache

    path = rt.save_checked({"v": torch.tensor(1)}, tmp_path / "f.pt")

    def crash(obj, f, *a, **kw):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.torch, "save", crash)
    with pytest.raises(OSError, match="No space left"):
        rt.save_checked({"v": torch.tensor(2)}, path)
    monkeypatch.undo()
    assert rt.load_checked(path)["v"] == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["f.pt"]


def test_a_corrupt_base_is_reported_and_rebuilt(tmp_path, monkeypatch):
    """load_base never uses a bad cached file: it warns in one line and rebuilds (the build faked: it takes a minute)."""
    import retune_lib.models as models

    monkeypatch.setenv("RETUNE_CACHE", str(tmp_path))
    recipe = rt.PretrainRecipe(widths=(4, 4, 8, 8))
    builds = []

    def fake_build(recipe, device="auto", progress=True):
        builds.append(recipe)
        return rt.SmallResNet(len(rt.SOURCE_CLASSES), widths=recipe.widths), {"source_accuracy": 0.5, "build_seconds": 0.0}

    monkeypatch.setattr(models, "build_base", fake_build)
    path = rt.base_path(recipe)
    path.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match=r"cached file .* is unreadable .*; rebuilding the base"):
        base = rt.load_base("cpu", recipe=recipe, progress=False)
    assert len(builds) == 1 and base.info["built_now"] and rt.load_checked(path)["recipe"] == recipe.key()
    rt.load_base("cpu", recipe=recipe, progress=False)  # now loads: no second build
    assert len(builds) == 1
