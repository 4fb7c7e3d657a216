import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

import retune_lib as rt
from retune_lib.losses import bce_loss, class_weights, focal_loss, one_hot_targets, target_weights, weighted_mse_loss


def test_class_weights_schemes_and_scale():
    y = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    for scheme in rt.WEIGHT_SCHEMES:
        w = class_weights(y, scheme=scheme)
        assert w.shape == (3,) and torch.isclose(w[y].mean(), torch.tensor(1.0))  # average example keeps weight 1
        assert w[0] < w[1] < w[2]
    inv = class_weights(y)
    assert torch.allclose(inv[0] * 90, inv[2] * 1)  # each class carries the same total weight
    assert torch.allclose(class_weights(y, scheme="effective", beta=0.0), torch.ones(3))  # beta 0: no reweighting
    # the mean of weighted CE divides by the sum of the examples' weights
    z = torch.randn(100, 3)
    manual = (inv[y] * F.cross_entropy(z, y, reduction="none")).sum() / inv[y].sum()
    assert torch.allclose(F.cross_entropy(z, y, weight=inv), manual)


def test_class_weights_errors():
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no examples"):
        class_weights(torch.tensor([0, 2, 2]))
    with pytest.raises(ValueError, match="out of range for num_classes=2"):
        class_weights(torch.tensor([0, 2]), 2)
    with pytest.raises(ValueError, match="1-d tensor of integer class indices"):
        class_weights(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="scheme='log' is not supported"):
        class_weights(torch.tensor([0, 1]), scheme="log")
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\)"):
        class_weights(torch.tensor([0, 1]), scheme="effective", beta=1.0)


def test_target_weights_inverse_density():
    t = torch.cat([torch.zeros(90), torch.ones(10)])
    w = target_weights(t, bins=2)
    assert torch.isclose(w.mean(), torch.tensor(1.0)) and torch.allclose(w[:90].sum(), w[90:].sum())
    inner = torch.cat([torch.full((90,), 0.45), torch.full((10,), 0.85)])
    plain = target_weights(inner, bins=10, value_range=(0.0, 1.0))
    smooth = target_weights(inner, bins=10, smooth=2.0, value_range=(0.0, 1.0))
    assert torch.isclose(plain[-1] / plain[0], torch.tensor(9.0))
    assert 1.0 < smooth[-1] / smooth[0] < 9.0  # smoothing tempers the extremes
    assert target_weights(t.reshape(10, 10), bins=2).shape == (10, 10)
    with pytest.raises(ValueError, match="floating-point tensor"):
        target_weights(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="bins must be at least 2"):
        target_weights(t, bins=1)
    with pytest.raises(ValueError, match="outside value_range"):
        target_weights(t, value_range=(0.0, 0.5))
    with pytest.raises(ValueError, match="non-empty and finite"):
        target_weights(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="smooth must be a number >= 0"):
        target_weights(t, smooth=-1)


def test_weighted_mse_refuses_silent_broadcast():
    pred, target = torch.randn(8, 1), torch.randn(8)
    assert torch.allclose(weighted_mse_loss(pred, target), F.mse_loss(pred[:, 0], target))
    assert torch.allclose(weighted_mse_loss(pred, target, torch.ones(8) * 3), F.mse_loss(pred[:, 0], target))
    with pytest.warns(UserWarning):  # what plain PyTorch does: an 8 x 8 broadcast and a warning
        wrong = F.mse_loss(pred, target)
    assert not torch.allclose(wrong, F.mse_loss(pred[:, 0], target))
    with pytest.raises(ValueError, match=r"pred has shape \(8, 2\) but target has \(8,\)"):
        weighted_mse_loss(torch.randn(8, 2), target)
    with pytest.raises(ValueError, match="one weight per example"):
        weighted_mse_loss(pred, target, torch.ones(4))


def test_focal_loss():
    torch.manual_seed(0)
    z, y = torch.randn(50, 4), torch.randint(0, 4, (50,))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    assert torch.allclose(focal_loss(z, y, gamma=0), F.cross_entropy(z, y))
    assert torch.allclose(focal_loss(z, y, gamma=0, weight=w), F.cross_entropy(z, y, weight=w))
    assert torch.allclose(focal_loss(z, y, gamma=0, reduction="sum"), F.cross_entropy(z, y, reduction="sum"))
    per = focal_loss(z, y, gamma=2, reduction="none")
    ce = F.cross_entropy(z, y, reduction="none")
    p = torch.exp(-ce)
    assert torch.allclose(per, (1 - p) ** 2 * ce)  # easy examples (p near 1) shrink the most
    # two classes: the softmax focal loss equals torchvision's sigmoid focal loss on the logit difference
    z2 = torch.randn(20, 2)
    y2 = torch.randint(0, 2, (20,))
    tv = sigmoid_focal_loss(z2[:, 1] - z2[:, 0], y2.float(), alpha=-1, gamma=2, reduction="mean")
    assert torch.allclose(focal_loss(z2, y2, gamma=2), tv, atol=1e-6)
    loss_fn = rt.FocalLoss(gamma=1.0, weight=w)
    assert torch.allclose(loss_fn(z, y), focal_loss(z, y, 1.0, w)) and "gamma=1.0" in repr(loss_fn)
    with pytest.raises(ValueError, match="gamma must be a number >= 0"):
        focal_loss(z, y, gamma=-1)
    with pytest.raises(ValueError, match="one value per class"):
        focal_loss(z, y, weight=torch.ones(3))
    with pytest.raises(ValueError, match="target must be a 1-d tensor of integer class indices"):
        focal_loss(z, y.float())
    with pytest.raises(ValueError, match="reduction='avg' is not supported"):
        focal_loss(z, y, reduction="avg")


def test_focal_loss_checks_the_targets_range_length_and_device():
    z = torch.randn(4, 3)
    for bad, cls in ((torch.tensor([0, 1, 2, 3]), 3), (torch.tensor([0, -1, 2, 1]), -1)):
        with pytest.raises(ValueError, match=rf"target holds class {cls}, out of range: logits has 3 classes, so labels must lie in 0..2"):
            focal_loss(z, bad)  # gather would fail deep inside torch (a device-side assert on a GPU)
    with pytest.raises(ValueError, match="logits has 4 rows but target has 3 labels"):
        focal_loss(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target is on meta but logits is on cpu"):
        focal_loss(z, torch.zeros(4, dtype=torch.int64, device="meta"))
    with pytest.raises(ValueError, match="logits must be an N x C float tensor, got shape \\(4, 3\\), torch.int64"):
        focal_loss(z.long(), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="gamma must be a number >= 0"):
        rt.FocalLoss(gamma=-2)  # refused when built, not at the first batch


def test_one_hot_and_bce():
    y = torch.tensor([1, -1, 0])
    t = one_hot_targets(y, 3)
    assert t.dtype == torch.float32 and t.tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    z = torch.randn(3, 3)
    assert torch.allclose(bce_loss(z, y), F.binary_cross_entropy_with_logits(z, t))
    assert torch.allclose(bce_loss(z, t), bce_loss(z, y))
    pw = torch.tensor([1.0, 4.0, 2.0])
    assert torch.allclose(bce_loss(z, y, pos_weight=pw), F.binary_cross_entropy_with_logits(z, t, pos_weight=pw))
    with pytest.raises(ValueError, match="label 3 is out of range: use 0..2, or -1"):
        one_hot_targets(torch.tensor([3]), 3)
    with pytest.raises(ValueError, match="label -2 is out of range"):
        one_hot_targets(torch.tensor([-2]), 3)
    with pytest.raises(ValueError, match=r"float targets must have the logits' shape \(3, 3\), got \(3,\)"):
        bce_loss(z, y.float())
    with pytest.raises(ValueError, match="3 rows but target has 2 labels"):
        bce_loss(z, y[:2])
