import re

import numpy as np
import pytest

import retune_lib as rt


def test_choice_ok_and_message():
    assert rt.check_choice("dataset", "digits", rt.DATASETS) == "digits"
    with pytest.raises(ValueError, match=r"dataset='digitz' is not supported; allowed: 'digits', 'mnist', 'fashion_mnist'"):
        rt.check_choice("dataset", "digitz", rt.DATASETS)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None])
def test_positive_int_rejects(bad):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        rt.check_positive_int(epochs=bad)


def test_numbers_accept_numpy():
    assert rt.check_positive_int(epochs=np.int64(3)) == 3
    assert rt.check_nonnegative_int(seed=0) == 0
    assert rt.check_positive_float(lr=np.float32(0.5)) == 0.5


@pytest.mark.parametrize("bad", [0, -1e-3, float("nan"), float("inf"), "0.1"])
def test_positive_float_rejects(bad):
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        rt.check_positive_float(lr=bad)


def test_fraction_and_int_list():
    assert rt.check_fraction(p=0.3) == 0.3
    with pytest.raises(ValueError, match="between 0 and 1"):
        rt.check_fraction(p=1.5)
    assert rt.check_int_list("k_values", [5, 1, 5], high=10) == [1, 5]
    for bad in ([], [0], [11], "5", [1.5]):
        with pytest.raises(ValueError, match="k_values"):
            rt.check_int_list("k_values", bad, high=10)


def test_keyword_form_enforced():
    with pytest.raises(TypeError, match="exactly one keyword"):
        rt.check_positive_int(a=1, b=2)


def test_numpy_and_tensor_scalars_are_numbers():
    import numpy as np
    import torch

    assert rt.check_positive_int(n=np.int64(7)) == 7 and rt.check_positive_int(n=torch.tensor(7)) == 7
    assert rt.check_nonnegative_int(seed=torch.tensor(0)) == 0
    assert rt.check_positive_float(lr=torch.tensor(0.5)) == 0.5 and rt.check_fraction(p=np.float32(0.25)) == 0.25
    assert rt.check_int_list("k", [np.int64(2), torch.tensor(1)]) == [1, 2]
    with pytest.raises(ValueError, match="n must be a positive integer"):
        rt.check_positive_int(n=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        rt.check_positive_int(n=torch.tensor(1.5))


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (0, {"low": 0}, 0.0),                                        # a closed end holds its bound
        (1, {"low": 0, "high": 1}, 1.0),
        (1e-9, {"low": 0, "low_open": True}, 1e-9),
        (0.999, {"low": 0.5, "high": 1, "high_open": True}, 0.999),
        (-6, {"low": -6, "high": 6, "integer": True}, -6),
        (np.float32(0.25), {"low": 0, "high": 1}, 0.25),              # NumPy and 0-d tensors are numbers too
        (np.int64(7), {"low": 1, "integer": True}, 7),
        ("tensor", {"low": 0, "integer": True}, 3),
        (-1e300, {}, -1e300),                                         # unbounded: any finite number
    ],
)
def test_check_range_accepts_and_converts(value, kwargs, expected):
    import torch

    value = torch.tensor(3) if isinstance(value, str) else value
    got = rt.check_range("x", value, **kwargs)
    assert got == expected and type(got) is (int if kwargs.get("integer") else float)


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (-0.1, {"low": 0}, "x must be a number >= 0, got -0.1"),
        (0, {"low": 0, "low_open": True}, "x must be a number > 0, got 0"),            # an open end refuses its bound
        (1.0, {"low": 0.5, "high": 1, "high_open": True}, r"x must be a number in \[0.5, 1\), got 1.0"),
        (0.5, {"low": 0.5, "high": 1, "low_open": True}, r"x must be a number in \(0.5, 1\], got 0.5"),
        (3.5, {"low": 0, "high": 3}, "x must be a number between 0 and 3, got 3.5"),
        (2, {"high": 1}, "x must be a number <= 1, got 2"),
        (1, {"high": 1, "high_open": True}, "x must be a number < 1, got 1"),
        (2.5, {"low": 1, "integer": True}, "x must be an integer >= 1, got 2.5"),
        (2.0, {"low": 1, "integer": True}, "x must be an integer >= 1, got 2.0"),       # a float is not an integer
        (True, {"low": 0}, "x must be a number >= 0, got True"),                        # nor is a bool a number
        (True, {"integer": True}, "x must be an integer, got True"),
        ("1", {}, "x must be a finite number, got '1'"),
        (None, {}, "x must be a finite number, got None"),
        (float("nan"), {}, "x must be a finite number, got nan"),
        (float("inf"), {"low": 0}, "x must be a number >= 0, got inf"),                # bounded on one side: still finite
        (99, {"low": -6, "high": 6, "integer": True, "allowed": "an integer from -6 to 6 (6 groups)"},
         r"x must be an integer from -6 to 6 \(6 groups\), got 99"),
        (1_000_000, {"high": 999_999, "integer": True}, "x must be an integer <= 999999, got 1000000"),
    ],
)
def test_check_range_refuses_in_one_line_naming_argument_value_and_allowed(value, kwargs, message):
    with pytest.raises(ValueError) as info:
        rt.check_range("x", value, **kwargs)
    assert re.fullmatch(message, str(info.value)), str(info.value)


def test_check_module_returns_the_module_or_names_who_needs_one():
    from torch import nn

    layer = nn.Linear(2, 1)
    assert rt.check_module(layer) is layer and rt.check_module(layer, "fit") is layer
    with pytest.raises(TypeError) as info:
        rt.check_module("resnet18")
    assert str(info.value) == "expected a torch.nn.Module, got str"
    with pytest.raises(TypeError) as info:
        rt.check_module(nn.Linear, "fit")  # the class, not an instance
    assert str(info.value) == "fit needs a torch.nn.Module, got type"
