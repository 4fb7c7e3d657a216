"""Shared fixtures, the thread setting for parallel workers, and the report of notebook wall times.

``make test`` runs pytest-xdist workers (``-n auto --dist loadscope`` in pyproject: each notebook and each
test module stays on one worker, in order). Two workers that each let torch use every core would
oversubscribe the CPU (OpenMP spin-waits make that many times slower), so each worker, and every kernel
it starts, uses one thread unless ``OMP_NUM_THREADS`` is already set.
"""

from __future__ import annotations

import collections
import os
import pathlib

if os.environ.get("PYTEST_XDIST_WORKER") and int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported by any test module
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: "how it ran" -> notebook stem -> seconds; filled from test reports (also from xdist workers)
WALL_TIMES: dict[str, dict[str, float]] = collections.defaultdict(lambda: collections.defaultdict(float))


def smoke_parameters(path) -> dict:
    """The notebook's ``retune.smoke_parameters`` metadata: small budgets that run every cell in seconds.

    A smoke run checks that the code runs, that parameters reach it and that every claim is computed and
    recorded. It does not check the claims: at these budgets they are not meant to hold. The claims are
    checked at the notebook's defaults by nbval here, and at twenty seeds by the claims report.
    """
    import nbformat

    from retune_lib.notebook_runs import check_parameter_names

    nb = nbformat.read(path, as_version=4)
    params = nb.metadata.get("retune", {}).get("smoke_parameters")
    assert params, f"{path.stem}: metadata.retune.smoke_parameters is missing (small budgets for the smoke runs)"
    check_parameter_names(path, params)
    return {"seed": 1, **params}


@pytest.fixture(scope="session")
def digits():
    import retune_lib as rt

    return rt.load_digits()


def pytest_runtest_logreport(report):
    """Sum nbval's per-cell durations per notebook; take the papermill (smoke) runs' own wall time."""
    if report.when != "call":
        return
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        WALL_TIMES["nbval, defaults"][pathlib.Path(path).stem] += report.duration
    for key, value in getattr(report, "user_properties", []):
        if key == "papermill_seconds":
            WALL_TIMES["papermill, smoke"][report.nodeid.split("[", 1)[1].rstrip("]")] = value
        elif key in ("browser_run_all_seconds", "widget_latency_seconds"):  # tests/test_browser.py
            kind = "JupyterLab Run All" if key.startswith("browser") else "widget latency (max)"
            WALL_TIMES[kind][report.nodeid.split("::")[1].removeprefix("TestJupyterLab_")] = value


def pytest_terminal_summary(terminalreporter):
    if not WALL_TIMES:
        return
    terminalreporter.section("notebook wall times (s)")
    kinds = sorted(WALL_TIMES)
    names = sorted({n for k in kinds for n in WALL_TIMES[k]})
    terminalreporter.write_line(f"{'notebook':<32}" + "".join(f"{k:>22}" for k in kinds))
    for name in names:
        cells = "".join(f"{WALL_TIMES[k][name]:>22.2f}" if name in WALL_TIMES[k] else f"{'-':>22}" for k in kinds)
        terminalreporter.write_line(f"{name:<32}{cells}")
