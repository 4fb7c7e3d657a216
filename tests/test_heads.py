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


def test_conv_classifier_aux_heads_and_bias():
    sq = models.squeezenet1_1(weights=None)  # classifier = Dropout, Conv2d(512, 1000, 1), ReLU, AdaptiveAvgPool2d
    assert find_head(sq)[0] == "classifier.1"
    new = replace_head(sq, 4)
    assert isinstance(new, nn.Conv2d) and new.kernel_size == (1, 1) and (new.in_channels, new.out_channels) == (512, 4)
    assert sq.eval()(torch.zeros(1, 3, 24, 24)).shape == (1, 4)
    g = models.googlenet(weights=None, aux_logits=True, init_weights=False)
    assert [n for n, _ in rt.find_aux_heads(g)] == ["aux1.fc2", "aux2.fc2"]
    replace_head(g, 5)
    assert g.aux1.fc2.out_features == g.aux2.fc2.out_features == g.fc.out_features == 5
    assert rt.layer_groups(g)[-1] == ("fc", ["aux1", "aux2", "fc"])
    no_bias = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))  # like MaxViT's head
    assert replace_head(no_bias, 2).bias is None and replace_head(no_bias, 2, bias=True).bias is not None
    assert replace_head(rt.SmallResNet(10), 2, bias=False).bias is None
    with pytest.raises(TypeError, match="bias must be True, False or None"):
        replace_head(rt.SmallResNet(10), 2, bias="no")
    with pytest.raises(ValueError, match="bias applies when new is a number of classes"):
        replace_head(rt.SmallResNet(10), nn.Linear(256, 2), bias=False)


def test_class_count_may_be_a_numpy_or_tensor_integer_and_draws_like_nn_linear():
    import numpy as np

    for n in (np.int64(7), torch.tensor(7), 7):
        m = rt.SmallResNet(10)
        torch.manual_seed(3)
        new = replace_head(m, n)
        torch.manual_seed(3)
        ref = nn.Linear(256, 7)  # the same layer, the same random draws as before bias=None existed
        assert type(new.out_features) is int and torch.equal(new.weight, ref.weight) and torch.equal(new.bias, ref.bias)
    with pytest.raises(ValueError, match="positive number of output classes, got"):
        replace_head(rt.SmallResNet(10), np.int64(0))
