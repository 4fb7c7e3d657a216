import pytest
import torch
from torchvision import models

import retune_lib as rt


def test_layer_groups_resnets_and_feature_models():
    expected = ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert [n for n, _ in rt.layer_groups(rt.SmallResNet(10))] == expected
    groups = rt.layer_groups(models.resnet18(weights=None))
    assert [n for n, _ in groups] == expected and groups[0][1] == ["conv1", "bn1"]
    mob = rt.layer_groups(models.mobilenet_v3_small(weights=None))
    assert mob[0][0] == "features.0" and mob[-1][0] == "classifier" and len(mob) == 14
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        rt.layer_groups("resnet")


def test_discriminative_lr_covers_everything_once():
    model = rt.SmallResNet(10)
    groups = rt.discriminative_lr(model, lr=1e-2, decay=2.0, weight_decay=0.01)
    assert [g["lr"] for g in groups] == pytest.approx([1e-2 / 2**k for k in range(5, -1, -1)])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter, exactly once
    torch.optim.AdamW(groups)  # a torch optimizer accepts them as they are
    with pytest.raises(ValueError, match="decay must be >= 1"):
        rt.discriminative_lr(model, 1e-3, decay=0.5)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        rt.discriminative_lr(model, 0)


def test_frozen_groups_in_the_optimizer_stay_put_until_unfrozen(digits):
    torch.manual_seed(0)
    model = rt.SmallResNet(10, widths=(4, 4, 8, 8))
    opt = torch.optim.AdamW(rt.discriminative_lr(model, lr=1e-2, weight_decay=0.1))
    rt.freeze_to(model, -1)
    before = model.layer1[0].conv1.weight.detach().clone()
    rt.fit(model, (digits.x[:64], digits.y[:64]), epochs=1, optimizer=opt, progress=False, device="cpu")
    assert torch.equal(model.layer1[0].conv1.weight, before)  # no grad, no step, no weight decay
    assert rt.gradual_unfreeze(model, 5) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    rt.fit(model, (digits.x[:64], digits.y[:64]), epochs=1, optimizer=opt, progress=False, device="cpu")
    assert not torch.equal(model.layer1[0].conv1.weight, before)  # same optimizer, no add_param_group


def test_freeze_to_and_gradual_unfreeze():
    model = rt.SmallResNet(10)
    assert rt.freeze_to(model, -1) == ["fc"]
    assert not model.layer4[0].conv1.weight.requires_grad and model.fc.weight.requires_grad
    assert type(model.bn1).__name__ == "EvalBatchNorm2d"
    assert rt.freeze_to(model, 0) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert all(p.requires_grad for p in model.parameters()) and type(model.bn1).__name__ == "BatchNorm2d"
    assert rt.freeze_to(model, 6) == [] and not any(p.requires_grad for p in model.parameters())
    assert [rt.gradual_unfreeze(model, e, every=2)[0] for e in range(0, 12, 2)] == [
        "fc", "layer4", "layer3", "layer2", "layer1", "stem"]
    for bad in (7, -7, 1.5):
        with pytest.raises(ValueError, match="n must be an integer from -6 to 6"):
            rt.freeze_to(model, bad)
    with pytest.raises(ValueError, match="epoch must be an integer >= 0"):
        rt.gradual_unfreeze(model, -1)


def test_fine_tune_freezes_then_trains_everything_at_discriminative_rates(digits):
    torch.manual_seed(0)
    model = rt.SmallResNet(10, widths=(4, 4, 8, 8))
    stem0 = model.conv1.weight.detach().clone()
    data = (digits.x[:64], digits.y[:64])
    other = rt.SmallResNet(10, widths=(4, 4, 8, 8))
    h = rt.fine_tune(model, data, epochs=2, freeze_epochs=1, device="cpu", progress=False)
    assert len(h) == 3 and all(p.requires_grad for p in model.parameters())
    assert not torch.equal(model.conv1.weight, stem0)                      # the stem trained in phase 2
    h0 = rt.fine_tune(other, data, epochs=1, freeze_epochs=0, one_cycle=False, device="cpu", progress=False)
    assert len(h0) == 1
    with pytest.raises(ValueError, match="freeze_epochs must be an integer >= 0"):
        rt.fine_tune(model, data, freeze_epochs=-1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        rt.fine_tune(model, data, epochs=0, device="cpu", progress=False)
