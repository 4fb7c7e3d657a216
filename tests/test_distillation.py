import pytest
import torch
import torch.nn.functional as F

import retune_lib as rt


def test_kd_loss_matches_hinton_and_scales_with_t_squared():
    torch.manual_seed(0)
    s, t, y = torch.randn(16, 5), torch.randn(16, 5), torch.randint(0, 5, (16,))
    T = 3.0
    soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert torch.allclose(rt.kd_loss(s, t, temperature=T, t_squared=False), soft)
    assert torch.allclose(rt.kd_loss(s, t, temperature=T), soft * T * T)
    both = rt.kd_loss(s, t, y, temperature=T, alpha=0.25)
    assert torch.allclose(both, 0.25 * F.cross_entropy(s, y) + 0.75 * soft * T * T)
    # T² keeps the soft gradient's size: without it the gradient shrinks roughly as 1/T²
    def grad_norm(temp, t_squared):
        x = s.clone().requires_grad_(True)
        rt.kd_loss(x, t, temperature=temp, t_squared=t_squared).backward()
        return x.grad.norm().item()
    assert grad_norm(8.0, False) < grad_norm(1.0, False) / 20
    assert grad_norm(1.0, True) / 3 < grad_norm(8.0, True) < grad_norm(1.0, True) * 3
    t.requires_grad_(True)
    rt.kd_loss(s.clone().requires_grad_(True), t).backward()
    assert t.grad is None  # the teacher is a fixed target


def test_kd_loss_errors():
    s = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"differ; map the teacher's classes to the student's first"):
        rt.kd_loss(s, torch.randn(4, 5))
    with pytest.raises(ValueError, match="pass labels, or alpha=0"):
        rt.kd_loss(s, s, alpha=0.5)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        rt.kd_loss(s, s, temperature=0)
    with pytest.raises(ValueError, match="alpha must be a number between 0 and 1"):
        rt.kd_loss(s, s, alpha=1.5)
    with pytest.raises(ValueError, match="student_logits must be an N x C float tensor"):
        rt.kd_loss(torch.zeros(4, dtype=torch.long), s)


@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 1, 2, 99]), r"labels holds class 99, out of range: student_logits has 3 classes, so labels must lie in 0..2"),
    (torch.tensor([0, -1, 2, 1]), r"labels holds class -1, out of range"),
    (torch.tensor([0, 1, 2]), r"student_logits has 4 rows but labels has 3 labels"),
    (torch.tensor([0.0, 1.0, 2.0, 1.0]), r"labels must be a 1-d tensor of integer class indices, got a 1-d torch.float32 tensor"),
    (torch.zeros(4, 1, dtype=torch.int64), r"labels must be a 1-d tensor of integer class indices, got a 2-d torch.int64 tensor"),
    ([0, 1, 2, 1], r"labels must be a 1-d tensor of integer class indices, got list"),
    (torch.zeros(4, dtype=torch.int64, device="meta"), r"labels is on meta but student_logits is on cpu"),
], ids=["too-large", "negative", "short", "float", "2-d", "list", "other-device"])
def test_kd_loss_checks_the_labels(labels, message):
    s = torch.randn(4, 3)
    with pytest.raises(ValueError, match=message):
        rt.kd_loss(s, s, labels, alpha=0.5)


def test_map_logits_takes_numpy_and_tensor_classes():
    import numpy as np

    z = torch.randn(3, 5)
    assert torch.equal(rt.map_logits(z, [np.array([1]), [np.int64(3)], torch.tensor(4)]), z[:, [1, 3, 4]])
    with pytest.raises(TypeError, match="groups must be a list of teacher-class lists"):
        rt.map_logits(z, 5)
    with pytest.raises(TypeError, match=r"t_squared must be True or False, got 'yes'"):
        rt.kd_loss(z, z, t_squared="yes")


def test_map_logits_merges_probability_mass():
    torch.manual_seed(0)
    z = torch.randn(6, 5)
    for T in (1.0, 4.0):
        merged = rt.map_logits(z, [[0, 2], [1], [4]], temperature=T)
        p = F.softmax(z / T, 1)
        want = torch.stack([p[:, 0] + p[:, 2], p[:, 1], p[:, 4]], 1)
        assert torch.allclose(F.softmax(merged / T, 1), want / want.sum(1, keepdim=True), atol=1e-6)
    assert torch.allclose(rt.map_logits(z, {0: [3], 1: [1]}), z[:, [3, 1]])  # one-to-one: a column selection
    with pytest.raises(ValueError, match="appears in more than one group"):
        rt.map_logits(z, [[0, 1], [1]])
    with pytest.raises(ValueError, match=r"a teacher class for student class 1 must be an integer between 0 and 4, got 7"):
        rt.map_logits(z, [[0], [7]])
    with pytest.raises(ValueError, match="student class 1 has no teacher class"):
        rt.map_logits(z, [[0], []])
    with pytest.raises(ValueError, match="keys"):
        rt.map_logits(z, {1: [0], 2: [1]})
