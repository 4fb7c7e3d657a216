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
