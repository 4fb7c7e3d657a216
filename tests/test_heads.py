import copy

import pytest
import torch
from torch import nn
from torchvision import models

import retune_lib as rt
from retune_lib.heads import (
    count_trainable, features, find_head, freeze, recalibrate_bn, replace_head, trainable_summary, unfreeze,
)

ARCHS = {  # builder, expected head name, input size
    "resnet18": (models.resnet18, "fc", 64),
    "mobilenet_v3_small": (models.mobilenet_v3_small, "classifier.3", 64),
    "efficientnet_b0": (models.efficientnet_b0, "classifier.1", 64),
    "vit_b_16": (lambda weights=None: models.vit_b_16(weights=weights, image_size=32), "heads.head", 32),
    "convnext_tiny": (models.convnext_tiny, "classifier.2", 64),
    "densenet121": (models.densenet121, "classifier", 64),
    "small_resnet": (lambda weights=None: rt.SmallResNet(69), "fc", 16),
}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_head_swap_on_torchvision_models(arch):
    build, expected, size = ARCHS[arch]
    torch.manual_seed(0)
    model = build(weights=None)
    name, head = find_head(model)
    assert name == expected and isinstance(head, nn.Linear)
    freeze(model)
    new = replace_head(model, 7)
    assert find_head(model) == (expected, new) and new.out_features == 7 and new.in_features == head.in_features
    assert count_trainable(model) == head.in_features * 7 + 7
    model.eval()
    channels = 1 if arch == "small_resnet" else 3
    x = torch.randn(2, channels, size, size)
    assert model(x).shape == (2, 7)
    assert features(model, x).shape == (2, head.in_features)
    assert find_head(model)[1] is new  # features() put the head back


def test_custom_modules_and_explicit_names():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU())
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            return self.out(self.body(x))

    net = Net()
    assert find_head(net)[0] == "out"  # the last Linear
    assert find_head(net, "body.1")[0] == "body.1"
    replace_head(net, nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 5)), name="out")
    assert net(torch.zeros(1, 16)).shape == (1, 5)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    replace_head(seq, 2)
    assert isinstance(seq[1], nn.Linear) and seq[1].out_features == 2


def test_head_errors_are_clear():
    with pytest.raises(ValueError, match="no classifier found in Sequential: it has no nn.Linear"):
        find_head(nn.Sequential(nn.Conv2d(1, 2, 3)))
    with pytest.raises(ValueError, match="the model has no submodule 'classifer'; its linear layers are: fc"):
        find_head(rt.SmallResNet(10), "classifer")
    with pytest.raises(TypeError, match="expected a torch.nn.Module, got str"):
        find_head("resnet")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive number of output classes"):
            replace_head(rt.SmallResNet(10), bad)
    with pytest.raises(ValueError, match="is a Conv2d, not nn.Linear: pass the replacement module itself"):
        replace_head(rt.SmallResNet(10), 3, name="conv1")


def test_freeze_patterns_and_errors():
    m = rt.SmallResNet(10)
    freeze(m, ["conv1", "bn1", "layer[12]"])
    assert not m.layer1[0].conv1.weight.requires_grad and m.layer3[0].conv1.weight.requires_grad
    with pytest.raises(ValueError, match="no module matches 'layer9'; the model's top-level modules are: conv1"):
        freeze(m, "layer9")
    with pytest.raises(ValueError, match="bn='frozen' is not supported; allowed: 'eval', 'train'"):
        freeze(m, bn="frozen")
    with pytest.raises(ValueError, match="not a submodule of this model"):
        freeze(m, nn.Linear(2, 2))
    with pytest.raises(TypeError, match="names, glob patterns or nn.Modules"):
        freeze(m, [3])
    unfreeze(m)
    assert count_trainable(m) == sum(p.numel() for p in m.parameters())


def test_bn_policy_survives_train_and_copies(digits):
    torch.manual_seed(0)
    m = rt.SmallResNet(10)
    m.train()
    m(digits.x[:64])  # give the statistics something to remember
    before = copy.deepcopy(m.state_dict())
    freeze(m, bn="eval")
    m.train()  # what every training loop does at each epoch
    assert not m.bn1.training and type(m.bn1).__name__ == "EvalBatchNorm2d"
    m(digits.x[64:128] * 3)
    assert torch.equal(m.bn1.running_mean, before["bn1.running_mean"])
    assert not copy.deepcopy(m).train().bn1.training
    assert set(m.state_dict()) == set(before)
    # the other policy: requires_grad=False alone does not freeze the statistics
    m2 = rt.SmallResNet(10)
    freeze(m2, bn="train")
    m2.train()
    old = m2.bn1.running_mean.clone()
    m2(digits.x[:64])
    assert not torch.equal(m2.bn1.running_mean, old)
    assert str(trainable_summary(m2)).splitlines()[2].endswith("adapting")


def test_recalibrate_bn(digits):
    torch.manual_seed(0)
    m = rt.SmallResNet(10)
    freeze(m)
    x = digits.x[:300]
    recalibrate_bn(m, (x, digits.y[:300]), batch_size=300)
    with torch.no_grad():
        pre = m.conv1(x)
    assert torch.allclose(m.bn1.running_mean, pre.mean((0, 2, 3)), atol=1e-5)
    assert not m.training and type(m.bn1).__name__ == "EvalBatchNorm2d" and m.bn1.momentum == 0.1
    with pytest.raises(ValueError, match="no batch-norm layers"):
        recalibrate_bn(nn.Linear(2, 2), (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64)))
