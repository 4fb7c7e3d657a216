import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import retune_lib as rt  # noqa: E402


def test_plot_per_class_bars_and_errors():
    fig = rt.plot_per_class({"a": [0.9, 0.5, 0.7], "b": [0.8, 0.7, 0.6]}, "accuracy", "runs", divider=2,
                            class_names=["x", "y", "z"], ylim=(0, 1))
    ax = fig.axes[0]
    assert len(ax.patches) == 6 and ax.get_title() == "runs" and ax.get_ylabel() == "accuracy"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    plt.close(fig)
    with pytest.raises(ValueError, match="one value per class; got lengths"):
        rt.plot_per_class({"a": [1, 2], "b": [1]}, "y", "t")
    with pytest.raises(ValueError, match="values is empty"):
        rt.plot_per_class({}, "y", "t")
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        rt.plot_per_class({"a": [1, 2, 3]}, "y", "t", class_names=["p", "q"])


def test_plot_curves_checks_lengths():
    fig = rt.plot_curves([1, 2, 4], {"a": [0.1, 0.2, 0.3]}, "k", "acc", "t", logx=True)
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="curve 'a' has 2 points for 3 x values"):
        rt.plot_curves([1, 2, 3], {"a": [0.1, 0.2]}, "k", "acc", "t")


def test_plot_curves_refuses_a_log_axis_at_zero():
    with pytest.raises(ValueError, match="logx needs positive x values"):
        rt.plot_curves([0, 1, 2], {"a": [0.1, 0.2, 0.3]}, "steps", "acc", "t", logx=True)
