"""Shared fixtures, and the report of notebook wall times at the end of the run."""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: notebook stem -> seconds, filled by tests/test_notebooks.py, printed at the end of the session
WALL_TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
def digits():
    import retune_lib as rt

    return rt.load_digits()


def pytest_terminal_summary(terminalreporter):
    if WALL_TIMES:
        terminalreporter.section("notebook wall times (papermill, non-default parameters)")
        for name, seconds in sorted(WALL_TIMES.items()):
            terminalreporter.write_line(f"{name:<36} {seconds:7.1f} s")
