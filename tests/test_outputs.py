import math

import pytest
import torch
from torch import nn

import retune_lib as rt
from retune_lib.gradients import gradient_flow
from retune_lib.outputs import BoundedOutput, soft_threshold, ste_round, ste_threshold, straight_through


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_bounded_output_bounds_and_gradcheck(kind):
    b = BoundedOutput(-2.0, 3.0, kind)
    x = torch.linspace(-50, 50, 101)
    y = b(x)
    assert y.min() >= -2.0 and y.max() <= 3.0 and torch.all(y[1:] >= y[:-1])
    assert math.isclose(float(b(torch.tensor(0.0))), 0.5, abs_tol=1e-6)
    xd = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(b, (xd,))
    assert "kind=" in repr(b)


def test_bounded_tanh_is_sigmoid_with_input_doubled():
    x = torch.linspace(-10, 10, 201, dtype=torch.float64)
    tanh_form, sigmoid_form = BoundedOutput(-2.0, 3.0, "tanh"), BoundedOutput(-2.0, 3.0, "sigmoid")
    assert torch.allclose(tanh_form(x), sigmoid_form(2 * x), atol=1e-12)


@pytest.mark.parametrize(
    "lo,hi,msg",
    [(1.0, 1.0, "needs lo < hi"), (2.0, 1.0, "needs lo < hi"), (float("nan"), 1.0, "lo must be a finite number, got nan"),
     (0.0, float("inf"), "hi must be a finite number, got inf"), ("0", 1.0, "lo must be a finite number, got '0'")],
)
def test_bounded_output_bad_bounds(lo, hi, msg):
    with pytest.raises(ValueError, match=msg):
        BoundedOutput(lo, hi)


def test_bounded_output_bad_kind_and_input():
    with pytest.raises(ValueError, match="kind='relu' is not supported; allowed: 'sigmoid', 'tanh'"):
        BoundedOutput(0, 1, "relu")
    with pytest.raises(TypeError, match="expects a tensor"):
        BoundedOutput(0, 1)([1.0])


def test_straight_through_forward_hard_backward_soft():
    x = torch.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    y = ste_threshold(x, threshold=0.0, temperature=2.0)
    assert y.tolist() == [0.0, 1.0, 1.0]
    y.sum().backward()
    s = torch.sigmoid(x.detach() / 2.0)
    assert torch.allclose(x.grad, s * (1 - s) / 2.0)
    x2 = torch.tensor([0.4, 1.6], requires_grad=True)
    ste_round(x2).sum().backward()
    assert x2.grad.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="same shape"):
        straight_through(torch.zeros(2), torch.zeros(3))
    with pytest.raises(TypeError, match="two tensors"):
        straight_through([0.0], torch.zeros(1))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        soft_threshold(torch.zeros(1), temperature=0)


def test_hard_ops_have_no_useful_gradient():
    x = torch.randn(5, requires_grad=True)
    assert (x > 0).float().requires_grad is False
    torch.round(x).sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_gradient_flow_reports():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    x = torch.randn(5, 3)
    ok = gradient_flow(model, lambda: model(x).pow(2).mean())
    assert ok.all_receive and set(ok.receiving) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    cut = gradient_flow(model, lambda: (model(x) > 0).float().mean())
    assert not cut.all_receive and "does not require grad" in cut.error and all(v is None for v in cut.norms.values())
    leaf = gradient_flow(model, lambda: torch.tensor((model(x) > 0).float(), requires_grad=True).mean())
    assert leaf.error == "" and leaf.missing == list(leaf.norms)
    zero = gradient_flow(model, lambda: torch.round(torch.sigmoid(model(x))).mean())
    assert zero.receiving == [] and "(zero)" in str(zero)
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(TypeError, match="needs a torch.nn.Module"):
        gradient_flow("m", lambda: x.sum())
    with pytest.raises(ValueError, match="scalar tensor"):
        gradient_flow(model, lambda: model(x))
    assert rt.gradient_flow(model, lambda: model(x).sum()).all_receive  # as the lessons call it: every layer learns
