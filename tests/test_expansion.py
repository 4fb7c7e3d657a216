import pytest
import torch
from torch import nn
from torchvision import models

import retune_lib as rt
from retune_lib.expansion import expand_classes, lwf_loss, split_class, swap_parameters


def assert_old_logits_kept(after, before):
    """Equal to the last float bits (a wider matmul may sum in another order), same predictions."""
    ulp = torch.finfo(before.dtype).eps * before.abs().max()
    assert (after - before).abs().max() <= 4 * ulp
    assert torch.equal(after.argmax(1), before.argmax(1))


@pytest.mark.parametrize("init", ["default", "mean"])
def test_expand_keeps_old_logits_bit_identical(digits, init):
    torch.manual_seed(0)
    model = rt.SmallResNet(8).eval()
    before = model(digits.x[:200])
    new = expand_classes(model, 2, init=init)
    after = model(digits.x[:200])
    assert new.out_features == 10 and model.fc is new
    assert_old_logits_kept(after[:, :8], before)
    if init == "mean":
        assert torch.allclose(new.weight[8], new.weight[:8].mean(0))


@pytest.mark.parametrize("n_old", [1, 3, 5, 9])
def test_expand_any_width_copies_rows_exactly(digits, n_old):
    torch.manual_seed(0)
    model = rt.SmallResNet(n_old).eval()
    rows, bias = model.fc.weight.detach().clone(), model.fc.bias.detach().clone()
    before = model(digits.x[:300])
    new = expand_classes(model, 10 - n_old)
    assert torch.equal(new.weight[:n_old], rows) and torch.equal(new.bias[:n_old], bias)
    assert_old_logits_kept(model(digits.x[:300])[:, :n_old], before)


def test_expand_on_torchvision_and_frozen_flags():
    m = models.mobilenet_v3_small(weights=None, num_classes=4)
    rt.freeze(m)
    new = expand_classes(m, 3)
    assert m.classifier[3] is new and new.out_features == 7 and not new.weight.requires_grad


def test_expand_errors():
    with pytest.raises(ValueError, match="n_new must be a positive integer"):
        expand_classes(rt.SmallResNet(4), 0)
    with pytest.raises(ValueError, match="init='zeros' is not supported"):
        expand_classes(rt.SmallResNet(4), 1, init="zeros")
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match="is a Flatten; class expansion supports an nn.Linear classifier"):
        expand_classes(net, 1, name="0")


def test_split_children_start_as_parent(digits):
    torch.manual_seed(0)
    model = rt.SmallResNet(9).eval()
    before = model(digits.x[:50])
    new, children = split_class(model, 3, n_children=3)
    after = model(digits.x[:50])
    assert children == [3, 9, 10] and new.out_features == 11
    assert_old_logits_kept(after[:, :9], before)
    # same row, another output column: equal up to the last float bit of the matrix product
    assert torch.allclose(after[:, 9], before[:, 3], rtol=0, atol=1e-6) and torch.allclose(after[:, 10], before[:, 3], rtol=0, atol=1e-6)
    assert torch.equal(new.weight[9], new.weight[3]) and torch.equal(new.bias[10], new.bias[3])
    for bad in (9, -1, "3"):
        with pytest.raises(ValueError, match="index must be an integer between 0 and 8, got"):
            split_class(rt.SmallResNet(9), bad)
    with pytest.raises(ValueError, match="n_children must be an integer >= 2"):
        split_class(rt.SmallResNet(9), 0, n_children=1)


def test_split_keeping_probabilities(digits):
    torch.manual_seed(0)
    model = rt.SmallResNet(9).eval()
    with torch.no_grad():
        before = torch.softmax(model(digits.x[:50]), 1)
        new, children = split_class(model, 3, n_children=3, keep="probabilities")
        after = torch.softmax(model(digits.x[:50]), 1)
    others = [c for c in range(9) if c != 3]
    assert torch.allclose(after[:, others], before[:, others], atol=1e-6)
    for c in children:  # each child holds a third of the parent's probability
        assert torch.allclose(after[:, c], before[:, 3] / 3, atol=1e-6)
    assert torch.equal(new.weight[9], new.weight[3])
    with pytest.raises(ValueError, match="keep must be one of|keep="):
        split_class(rt.SmallResNet(9), 0, keep="both")
    with pytest.raises(ValueError, match="no bias"):
        split_class(nn.Sequential(nn.Linear(4, 3, bias=False)), 0, keep="probabilities")


def test_swap_parameters_keeps_adam_state(digits):
    torch.manual_seed(0)
    model = rt.SmallResNet(8, widths=(4, 4, 8, 8))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = nn.functional.cross_entropy(model(digits.x[:32]), digits.y[:32] % 8)
    loss.backward()
    opt.step()
    old_w, old_b = model.fc.weight, model.fc.bias
    m_old = opt.state[old_w]["exp_avg"].clone()
    new = expand_classes(model, 2)
    swap_parameters(opt, {old_w: new.weight, old_b: new.bias})
    held = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(new.weight) in held and id(old_w) not in held
    st = opt.state[new.weight]
    assert torch.equal(st["exp_avg"][:8], m_old) and torch.count_nonzero(st["exp_avg"][8:]) == 0
    assert float(st["step"]) == 1.0
    rt.fit(model, (digits.x[:32], digits.y[:32]), epochs=1, optimizer=opt, progress=False, device="cpu")  # it trains
    with pytest.raises(ValueError, match="not in the optimizer"):
        swap_parameters(opt, {nn.Parameter(torch.zeros(2)): nn.Parameter(torch.zeros(3))})
    with pytest.raises(ValueError, match="must contain the old one"):
        swap_parameters(opt, {new.weight: nn.Parameter(torch.zeros(3, 8))})
    with pytest.raises(ValueError, match="differ in device or dtype"):
        swap_parameters(opt, {new.bias: nn.Parameter(torch.zeros(12, dtype=torch.float64))})
    with pytest.raises(TypeError, match="expected a torch optimizer"):
        swap_parameters("adam", {})


def test_lwf_loss():
    torch.manual_seed(0)
    old = torch.randn(6, 4)
    new = torch.cat([old, torch.randn(6, 2)], 1)
    assert float(lwf_loss(new, old)) < 1e-6
    other = torch.randn(6, 6)
    plain, scaled = lwf_loss(other, old, temperature=2.0), lwf_loss(other, old, temperature=2.0, t_squared=True)
    assert plain > 0 and torch.allclose(scaled, plain * 4)
    other.requires_grad_(True)
    lwf_loss(other, old).backward()
    assert torch.count_nonzero(other.grad[:, 4:]) == 0 and torch.count_nonzero(other.grad[:, :4]) > 0
    with pytest.raises(ValueError, match="fewer than the old model's 4"):
        lwf_loss(torch.zeros(6, 3), old)
    with pytest.raises(ValueError, match="N x C logits"):
        lwf_loss(torch.zeros(6), old)
    with pytest.raises(ValueError, match="logits differ in device or dtype"):
        lwf_loss(new.double(), old)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        lwf_loss(new, old, temperature=0)
