"""Every notebook in notebooks/ is covered automatically: structure, and a papermill run with another seed.

nbval (``--nbval-lax``, from pyproject's addopts) executes the same notebooks with their defaults.
"""

import json
import math

import nbformat
import pytest

from conftest import NOTEBOOKS, WALL_TIMES
from retune_lib import runner

WALL_TIME_CAP_S = 300  # generous: the target is 60 s here; this only catches a runaway notebook
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
ids = [p.stem for p in NOTEBOOKS]
SEED1_METRICS = {}  # filled by test_papermill_other_seed, compared by test_same_seed_same_numbers


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_clean(path):
    raw = json.loads(path.read_text())
    assert raw["metadata"].get("kernelspec") == KERNELSPEC
    assert "widgets" not in raw["metadata"], "widget state must not be committed"
    for i, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {i} has stored outputs"
    nbformat.validate(nbformat.reads(path.read_text(), as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = tagged[0].source
    assert "seed = 0" in src and 'device = "auto"' in src
    import ast

    for node in ast.parse(src).body:  # literals only: papermill injects values after this cell
        assert isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List, ast.Tuple, ast.UnaryOp)), (
            f"parameters cell must assign literals only: {ast.unparse(node)}"
        )
    after = nb.cells[nb.cells.index(tagged[0]) + 1]
    assert "check" in after.source or "select_device" in after.source, "the next cell validates the parameters"
    assert "rt.seed_everything(seed)" in after.source, "the next cell seeds everything, so a run is reproducible"


@pytest.fixture(scope="module")
def warm_base():
    """Build (or load) the pretrained base once, so a notebook's wall time is its own, not the one-off build."""
    import retune_lib as rt

    return rt.load_base("cpu", progress=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_papermill_other_seed(path, tmp_path, warm_base):
    nb = nbformat.read(path, as_version=4)
    params = {"seed": 1, **nb.metadata.get("retune", {}).get("test_parameters", {})}
    run = runner.run_notebook(path, tmp_path, params)
    WALL_TIMES[path.stem] = run.seconds
    assert run.status == "ok", run.error
    SEED1_METRICS[path.stem] = run.metrics
    assert run.metrics, "the notebook must record its key metrics with rt.record_metrics"
    for key, value in run.metrics.items():
        if isinstance(value, float):
            assert math.isfinite(value), key
        if "acc" in key or key.startswith(("pretrained_", "scratch_")):
            assert 0.0 <= value <= 1.0, (key, value)
    assert run.seconds < WALL_TIME_CAP_S, f"{path.stem} took {run.seconds:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_bad_parameter_is_one_clear_line(path, tmp_path):
    run = runner.run_notebook(path, tmp_path, {"device": "gpu"})
    assert run.status == "failed"
    assert run.error == "ValueError: device='gpu' is not supported; allowed: 'auto', 'cpu', 'cuda', 'mps'"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_same_seed_same_numbers(path, tmp_path, warm_base):
    """Two fresh kernels, same parameters: every recorded number identical (CPU; cuDNN may pick
    nondeterministic kernels, so on a GPU machine the promise is only 'same within noise')."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("bitwise reproducibility is checked on CPU")
    nb = nbformat.read(path, as_version=4)
    params = {"seed": 1, **nb.metadata.get("retune", {}).get("test_parameters", {})}
    if path.stem not in SEED1_METRICS:
        first = runner.run_notebook(path, tmp_path / "first", params)
        assert first.status == "ok", first.error
        SEED1_METRICS[path.stem] = first.metrics
    again = runner.run_notebook(path, tmp_path / "again", params)
    assert again.status == "ok", again.error
    def numbers(metrics):  # timings (``*_seconds``, ``*speedup*``) are measurements of the machine, not results
        return {k: v for k, v in metrics.items() if not (k.endswith("_seconds") or "speedup" in k)}

    assert numbers(again.metrics) == numbers(SEED1_METRICS[path.stem])
