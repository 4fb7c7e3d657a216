"""retune_lib — the helper library of the Retune workbook (retraining pretrained PyTorch networks).

One import gives the fixed names the notebooks use::

    import retune_lib as rt
    train, test = rt.load_digits().split(0.3, seed=0)
    base = rt.load_base()
    history = rt.fit(model, train, test, epochs=5)

Modules by concept, from the bottom of the import graph up:

* :mod:`~retune_lib.checks` — argument checks (one-line errors); :mod:`~retune_lib.cache` — checked files on disk;
* :mod:`~retune_lib.data` — :class:`ImageSet`, the target digits and loaders; :mod:`~retune_lib.pen`,
  :mod:`~retune_lib.real_digits`, :mod:`~retune_lib.glyphs` — the source set the base is pretrained on;
* :mod:`~retune_lib.training`, :mod:`~retune_lib.weights`, :mod:`~retune_lib.models` — fit, the shipped weights,
  the base;
* one module per lesson's technique: :mod:`~retune_lib.outputs`, :mod:`~retune_lib.gradients`,
  :mod:`~retune_lib.heads`, :mod:`~retune_lib.expansion`, :mod:`~retune_lib.losses`, :mod:`~retune_lib.unfreezing`,
  :mod:`~retune_lib.distillation`;
* :mod:`~retune_lib.trials` — claims over paired seeds; :mod:`~retune_lib.plots`;
* :mod:`~retune_lib.notebook_runs` — running notebooks, their recorded metrics; :mod:`~retune_lib.claims` — the
  claims report; :mod:`~retune_lib.runner` — the ``retune`` command.
"""

from __future__ import annotations

from .cache import CacheError, cache_dir, load_checked, save_checked
from .checks import (
    check_choice,
    check_float_list,
    check_fraction,
    check_int_list,
    check_module,
    check_nonnegative_int,
    check_positive_float,
    check_positive_int,
    check_range,
)
from .data import DATASETS, IMAGE_SIZE, ImageSet, load_dataset, load_digits, load_mnist, per_class_indices, rotate
from .distillation import kd_loss, map_logits
from .expansion import expand_classes, lwf_loss, split_class, swap_parameters
from .glyphs import SOURCE_CLASSES, render_glyphs
from .gradients import GradientReport, gradient_flow
from .losses import (
    WEIGHT_SCHEMES,
    FocalLoss,
    bce_loss,
    class_weights,
    focal_loss,
    one_hot_targets,
    target_weights,
    weighted_mse_loss,
)
from .heads import (
    count_trainable,
    features,
    find_aux_heads,
    find_head,
    freeze,
    recalibrate_bn,
    replace_head,
    trainable_summary,
    unfreeze,
)
from .models import PretrainRecipe, SmallResNet, base_path, build_base, load_base, resnet18, source_accuracy
from .weights import BASE_WEIGHTS, Weights, WeightsError, weights_path
from .notebook_runs import read_metrics, record_metrics
from .outputs import BoundedOutput, soft_threshold, ste_round, ste_threshold, straight_through
from .real_digits import mnist_5k
from .plots import plot_confusion, plot_curves, plot_history, plot_per_class, show_images
from .trials import (
    ClaimFailed,
    Comparison,
    Trials,
    check_n_seeds,
    claim,
    compare,
    read_claims,
    run_trials,
    trial_seeds,
    trials_table,
)
from .unfreezing import discriminative_lr, fine_tune, freeze_to, gradual_unfreeze, layer_groups
from .training import (
    DEVICES,
    History,
    TrainingDiverged,
    accuracy,
    count_parameters,
    evaluate,
    fit,
    make_optimizer,
    predict,
    seed_everything,
    select_device,
    start,
    trainable_parameters,
)

__version__ = "0.1.0"


def versions(device=None) -> str:
    """One line of versions, the shipped base weights' short hash and the device in use, for a notebook's setup cell.

    >>> "torch" in versions()
    True
    """
    import platform

    import sklearn
    import torch
    import torchvision

    dev = select_device(device) if device is not None else None
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev is not None and dev.type == "cuda" else ""
    return (
        f"python {platform.python_version()} | torch {torch.__version__} | torchvision {torchvision.__version__} | "
        f"scikit-learn {sklearn.__version__} | retune_lib {__version__} | base weights {BASE_WEIGHTS.short}"
        + (f" | device {dev}{gpu}" if dev is not None else "")
    )
