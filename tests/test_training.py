import math
from unittest import mock

import pytest
import torch
from torch import nn

import retune_lib as rt


def test_select_device():
    assert rt.select_device("cpu") == torch.device("cpu")
    for cuda, mps, expected in ((True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")):
        with mock.patch("torch.cuda.is_available", return_value=cuda), \
                mock.patch("torch.backends.mps.is_available", return_value=mps):
            assert rt.select_device("auto") == torch.device(expected)  # CUDA first, then MPS, then the CPU
    with pytest.raises(ValueError, match="device='gpu' is not supported; allowed: 'auto', 'cpu', 'cuda', 'mps'"):
        rt.select_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' is not available on this machine; allowed here: 'auto', 'cpu'"):
            rt.select_device("cuda")


def _tiny_run(seed, digits):
    small = digits.per_class(4, seed=0)
    torch.manual_seed(123)
    model = rt.SmallResNet(10, widths=(8, 8, 16, 16))
    hist = rt.fit(model, small, small, epochs=2, batch_size=16, seed=seed, progress=False, device="cpu")
    return hist, model


def test_same_seed_same_numbers_on_cpu(digits):
    h1, m1 = _tiny_run(0, digits)
    h2, m2 = _tiny_run(0, digits)
    h3, _ = _tiny_run(1, digits)
    assert h1["train_loss"] == h2["train_loss"] and h1["val_acc"] == h2["val_acc"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1["train_loss"] != h3["train_loss"]  # the seed drives the shuffling order


def test_fit_learns_and_history(digits):
    train, test = digits.split(0.3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 10))
    hist = rt.fit(model, train, test, epochs=5, lr=1e-2, progress=False, device="cpu")
    assert len(hist) == 5 and hist["epoch"] == [1, 2, 3, 4, 5]
    assert hist.last["val_acc"] > 0.85 and hist["train_loss"][-1] < hist["train_loss"][0]
    assert "val_acc" in repr(hist)


def test_fit_accepts_tuple_tensordataset_and_dataloader(digits):
    x, y = digits.x[:64], digits.y[:64]
    for data in ((x, y), torch.utils.data.TensorDataset(x, y), torch.utils.data.DataLoader(digits.subset(range(64)), batch_size=16)):
        hist = rt.fit(nn.Sequential(nn.Flatten(), nn.Linear(256, 10)), data, epochs=1, progress=False, device="cpu")
        assert math.isfinite(hist.last["train_loss"])
    with pytest.raises(TypeError, match="expected an ImageSet, an \\(x, y\\) tuple"):
        rt.fit(nn.Linear(2, 2), [1, 2, 3], epochs=1, progress=False)


def test_nan_loss_names_epoch_and_step(digits):
    calls = []

    def loss_fn(out, y):  # turns infinite on the 6th batch: epoch 2, step 2 with 4 batches per epoch
        calls.append(1)
        loss = nn.functional.cross_entropy(out, y)
        return loss * float("inf") if len(calls) == 6 else loss

    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 10))
    with pytest.raises(rt.TrainingDiverged, match=r"loss became inf at epoch 2, step 2: lower the learning rate"):
        rt.fit(model, digits.subset(range(64)), epochs=3, batch_size=16, loss_fn=loss_fn, progress=False, device="cpu")
    x = digits.x[:32].clone()
    x[:] = float("nan")
    with pytest.raises(rt.TrainingDiverged, match=r"loss became nan at epoch 1, step 1"):
        rt.fit(model, (x, digits.y[:32]), epochs=1, progress=False, device="cpu")


def test_optimizer_only_trainable_and_stale_optimizer_refused():
    model = rt.SmallResNet(5, widths=(4, 4, 8, 8))
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        rt.make_optimizer(model)
    model.fc.requires_grad_(True)
    opt = rt.make_optimizer(model, "sgd", lr=0.1, momentum=0.9)
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(model.fc.weight), id(model.fc.bias)}
    assert rt.count_parameters(model)[0] == 8 * 5 + 5
    model.fc = nn.Linear(8, 3)  # swapped after the optimizer was built
    data = (torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match=r"the optimizer does not hold 2 trainable parameters \(fc.weight, fc.bias\)"):
        rt.fit(model, data, epochs=1, optimizer=opt, progress=False)
    with pytest.raises(ValueError, match="optimizer='rmsprop' is not supported"):
        rt.make_optimizer(model, "rmsprop")


def test_fit_refuses_an_empty_training_set():
    empty = (torch.zeros(0, 1, 16, 16), torch.zeros(0, dtype=torch.int64))
    with pytest.raises(ValueError, match="fit got an empty training set"):
        rt.fit(nn.Sequential(nn.Flatten(), nn.Linear(256, 10)), empty, progress=False, device="cpu")


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        rt.fit(nn.Linear(2, 2), (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64)), epochs=0)
    with pytest.raises(TypeError, match="fit needs a torch.nn.Module"):
        rt.fit("model", (torch.zeros(2, 2), torch.zeros(2, dtype=torch.int64)), epochs=1)


def test_predict_and_evaluate_restore_mode(digits):
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(256, 10))
    model.train()
    out = rt.predict(model, digits.x[:10])
    assert out.shape == (10, 10) and model.training
    assert torch.equal(out, rt.predict(model, digits.x[:10]))  # eval mode inside: dropout off
    ev = rt.evaluate(model, digits.subset(range(10)))
    assert set(ev) == {"loss", "accuracy"} and model.training


def test_fit_regression_and_cut_graph(digits):
    x = digits.x.flatten(1)[:64]
    target = x.mean(1, keepdim=True)
    model = nn.Linear(256, 1)
    hist = rt.fit(model, (x, target), (x, target), epochs=3, loss_fn=nn.functional.mse_loss, progress=False, device="cpu")
    assert "train_acc" not in hist.last and "val_acc" not in hist.last and "val_loss" in hist.last
    hard = lambda out, y: nn.functional.mse_loss((out > 0.5).float(), y)  # noqa: E731
    with pytest.raises(ValueError, match="the loss does not require grad, so nothing can train"):
        rt.fit(model, (x, target), epochs=1, loss_fn=hard, progress=False, device="cpu")


FRESH_PROCESS_RUN = """
import hashlib, sys
import torch
import retune_lib as rt
rt.seed_everything(int(sys.argv[1]))            # what every notebook's validation cell does
train, test = rt.load_digits().split(0.3, seed=0)
model = rt.SmallResNet(10, widths=(8, 8, 16, 16))  # random init drawn from the global RNG, as in the notebooks
hist = rt.fit(model, train.per_class(3, seed=int(sys.argv[1])), test, epochs=2, device="cpu", seed=5, progress=False)
digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in model.state_dict().values())).hexdigest()
print(digest, repr(hist.last["val_acc"]))
"""


def test_same_seed_same_numbers_in_fresh_processes():
    """What the notebooks promise, checked cheaply: same seed, same thread count, fresh interpreter ->
    bit-identical weights and metrics (torch seeds its global RNG randomly per process otherwise)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))

    def run(seed):
        out = subprocess.run([sys.executable, "-c", FRESH_PROCESS_RUN, str(seed)], env=env, capture_output=True,
                             text=True, check=True)
        return out.stdout.split()

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first[0] != other[0]


def test_accuracy_is_the_share_of_rows_whose_argmax_is_the_label():
    torch.manual_seed(0)
    logits, y = torch.randn(300, 7), torch.randint(7, (300,))
    got = rt.accuracy(logits, y)
    assert type(got) is float and got == (logits.argmax(1) == y).float().mean().item()  # the lessons' own expression
    assert rt.accuracy(logits, logits.argmax(1)) == 1.0
    assert rt.accuracy(torch.tensor([[0.0, 1.0], [3.0, 2.0]]), torch.tensor([1, 1])) == 0.5
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x, labels = torch.randn(50, 1, 2, 2), torch.randint(3, (50,))
    assert rt.accuracy(rt.predict(model, x), labels) == pytest.approx(rt.evaluate(model, (x, labels))["accuracy"])


@pytest.mark.parametrize(
    "logits, y, error, message",
    [
        (torch.zeros(4), torch.zeros(4, dtype=torch.int64), ValueError, r"logits must be N x C class scores, got shape \(4,\)"),
        ([[0.0, 1.0]], torch.zeros(1, dtype=torch.int64), TypeError, "logits must be a torch.Tensor, got list"),
        (torch.zeros(4, 3), torch.zeros(3, dtype=torch.int64), ValueError, "logits has 4 rows but y has 3 labels"),
        (torch.zeros(4, 3), torch.zeros(4), ValueError, "y must be a 1-d tensor of integer class indices"),
        (torch.zeros(4, 3), torch.tensor([0, 1, 2, 3]), ValueError, "y holds class 3, out of range: logits has 3 classes"),
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), ValueError, "accuracy needs at least one example"),
    ],
)
def test_accuracy_refuses_in_one_line(logits, y, error, message):
    with pytest.raises(error, match=message):
        rt.accuracy(logits, y)
