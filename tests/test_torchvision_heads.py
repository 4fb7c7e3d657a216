"""Head surgery on every classification model torchvision ships, found with ``list_models``, not a hand-picked list.

Every builder is built with ``weights=None`` on the meta device (parameters without data, so vit_h_14 or
regnet_y_128gf cost no memory and no initialisation) and its forward passes run on meta tensors: shape
propagation only, no arithmetic. A handful of small models also run real forwards and a backward at about
the smallest input they accept. The whole file takes some tens of seconds on one CPU thread.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
import torch
from torch import nn
from torchvision import models

import retune_lib as rt

BUILDERS = models.list_models(module=models)  # every classification builder, none of the detection/video ones
N = 7
AUX = {"googlenet": ["aux1.fc2", "aux2.fc2"], "inception_v3": ["AuxLogits.fc"]}  # with aux_logits=True (weights=None)
SIZE = {"inception_v3": 299}  # everything else at 224 (the ViTs, Swins and MaxViT are built for it)
REAL = {"resnet18": 16, "squeezenet1_0": 24, "mobilenet_v3_small": 16, "googlenet": 16, "shufflenet_v2_x0_5": 16,
        "maxvit_t": 224}  # about the smallest input each accepts (MaxViT only takes the size it was built for)


@contextlib.contextmanager
def _parameters_on_meta():
    """Move every parameter and buffer to the meta device as it is registered.

    For builders that compute with real tensors while constructing (RegNet turns its width schedule into
    Python ints with ``.tolist()``, which ``torch.device("meta")`` cannot do). Each layer's weight exists on
    the CPU only between its creation and its registration; the initialisation afterwards runs on meta.
    """
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self, name, p):
        if p is not None and p.device.type != "meta":
            p = nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad)
        register_parameter(self, name, p)

    def buffer(self, name, b, persistent=True):
        register_buffer(self, name, b.to("meta") if b is not None else b, persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def _build(name: str, device: str = "meta") -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GoogLeNet / Inception v3 warn about their init scheme
        if device != "meta":
            return models.get_model(name, weights=None)
        try:
            with torch.device("meta"):
                return models.get_model(name, weights=None)
        except NotImplementedError:  # "Cannot copy out of meta tensor": RegNet
            with _parameters_on_meta():
                return models.get_model(name, weights=None)


def _out(layer: nn.Module) -> int:
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


def _inputs(layer: nn.Module) -> int:
    return layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels


def _surgery(name: str, model: nn.Module) -> list[str]:
    """find_head, freeze the body, replace_head(model, 7); check the new layers; return their names."""
    head_name, head = rt.find_head(model)
    assert isinstance(head, (nn.Linear, nn.Conv2d)) and _out(head) == 1000, (head_name, head)
    aux = rt.find_aux_heads(model)
    assert [n for n, _ in aux] == AUX.get(name, [])
    old = [(head_name, head)] + aux
    rt.freeze(model)
    new = rt.replace_head(model, N)
    assert rt.find_head(model) == (head_name, new)
    names = [n for n, _ in old]
    for layer_name, before in old:
        after = model.get_submodule(layer_name)
        assert after is not before and type(after) is type(before) and _out(after) == N
        assert _inputs(after) == _inputs(before)
        assert (after.bias is None) == (before.bias is None)  # MaxViT's head has no bias, and keeps none
        assert after.weight.device == before.weight.device and after.weight.dtype == before.weight.dtype
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {f"{layer}.{p}" for layer in names for p, v in model.get_submodule(layer).named_parameters()}
    assert trainable == expected  # only the new head(s): the body, and the rest of the aux branches, stay frozen
    return names


def _check_outputs(name: str, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs = []
    for train in (True, False):
        model.train(train)
        out = model(x)
        if train and name in AUX:  # GoogLeNetOutputs(logits, aux2, aux1) / InceptionOutputs(logits, aux)
            assert isinstance(out, tuple) and len(out) == 1 + len(AUX[name])
            assert all(o.shape == (len(x), N) for o in out)
            outs.extend(out)
        else:
            assert isinstance(out, torch.Tensor) and out.shape == (len(x), N)
            outs.append(out)
    return outs


def test_every_builder_is_listed():
    assert len(BUILDERS) >= 80 and {"squeezenet1_0", "googlenet", "inception_v3", "maxvit_t", "vit_h_14"} <= set(BUILDERS)
    assert set(REAL) <= set(BUILDERS) and set(AUX) <= set(BUILDERS)


@pytest.mark.parametrize("name", BUILDERS)
def test_head_surgery_on_meta(name):
    model = _build(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    new = _surgery(name, model)
    size = SIZE.get(name, 224)
    _check_outputs(name, model, torch.empty(2, 3, size, size, device="meta"))
    # freeze_to(-1) trains the head group, which holds the auxiliary branches too
    assert rt.freeze_to(model, -1) == [new[0].split(".")[0]]
    group = rt.layer_groups(model)[-1][1]
    assert all(layer.split(".")[0] in group for layer in new)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{m}.{n}" for m in group for n, _ in model.get_submodule(m).named_parameters()}


@pytest.mark.parametrize("name", list(REAL))
def test_head_surgery_with_real_forward_and_backward(name):
    torch.manual_seed(0)
    model = _build(name, "cpu")
    new = _surgery(name, model)
    size = REAL[name]
    x = torch.randn(2, 3, size, size)
    outs = _check_outputs(name, model, x)
    loss = sum(nn.functional.cross_entropy(o, torch.tensor([0, N - 1])) for o in outs)
    loss.backward()
    got = {n for n, p in model.named_parameters() if p.grad is not None}
    assert got == {f"{layer}.{p}" for layer in new for p, _ in model.get_submodule(layer).named_parameters()}
