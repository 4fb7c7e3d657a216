"""Run the workbook: every notebook headless through papermill, with a results table per notebook.

A notebook records its key numbers with :func:`record_metrics`; they travel inside the executed
notebook as a display output of MIME type :data:`METRICS_MIME`, so the runner and the tests read
them back from the output notebook, with no side files.

Command line (installed as ``retune``)::

    retune run                          # all notebooks, default parameters, into runs/
    retune run 00 -p seed 1 -p device cuda
    retune list

>>> record_metrics({"accuracy": 0.5})  # doctest: +NORMALIZE_WHITESPACE
metric    value
accuracy  0.5000
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import pathlib
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METRICS_MIME", "record_metrics", "read_metrics", "notebook_paths", "run_notebook", "run_all", "main"]

METRICS_MIME = "application/vnd.retune.metrics+json"
CELL_TIMEOUT_S = 600  # a cell that runs longer is stuck: fail the notebook instead of hanging the run


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def record_metrics(metrics: Mapping[str, Any]) -> None:
    """Record a notebook's key numbers (machine-readable for the runner and tests) and print them.

    Values must be numbers, strings or booleans; non-finite numbers are refused. Returns nothing, so a
    notebook's last line can call it without echoing the dict.
    """
    if not isinstance(metrics, Mapping) or not metrics:
        raise ValueError("record_metrics needs a non-empty dict of name -> value")
    clean: dict[str, Any] = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {k!r}")
        if hasattr(v, "item") and callable(v.item):  # tensors / numpy scalars
            v = v.item()
        if not isinstance(v, (int, float, str, bool)):
            raise TypeError(f"metric {k!r} must be a number, string or bool, got {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"metric {k!r} is {v}: a notebook must not record a non-finite result")
        clean[k] = v
    text = _table(list(clean.items()), ["metric", "value"])
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({METRICS_MIME: clean, "text/plain": text}, raw=True)
            return None
    except ImportError:
        pass
    print(text)
    return None


def read_metrics(notebook: str | pathlib.Path | Any) -> dict[str, Any]:
    """The metrics recorded in an executed notebook (a path or an ``nbformat`` node); later calls win."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, pathlib.Path)) else notebook
    found: dict[str, Any] = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if METRICS_MIME in data:
                value = data[METRICS_MIME]
                found.update(json.loads(value) if isinstance(value, str) else value)
    return found


def notebooks_dir() -> pathlib.Path:
    """The ``notebooks/`` folder of the checkout (the runner is meant to be run from a clone)."""
    here = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
    if here.is_dir():
        return here
    cwd = pathlib.Path.cwd() / "notebooks"
    if cwd.is_dir():
        return cwd
    raise FileNotFoundError("no notebooks/ folder found: run from a clone of the Retune repository")


def notebook_paths(selection: Sequence[str] = ()) -> list[pathlib.Path]:
    """The workbook's notebooks in order; ``selection`` filters by prefix or name ("00", "02_head")."""
    paths = sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return paths
    chosen = [p for p in paths if any(p.name.startswith(s) or p.stem == s for s in selection)]
    unknown = [s for s in selection if not any(p.name.startswith(s) or p.stem == s for p in paths)]
    if unknown:
        raise ValueError(f"no notebook matches {unknown}; available: {[p.stem for p in paths]}")
    return chosen


@dataclass
class NotebookRun:
    name: str
    status: str
    seconds: float
    output: pathlib.Path
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def run_notebook(
    path: str | pathlib.Path, output_dir: str | pathlib.Path = "runs", parameters: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> NotebookRun:
    """Execute one notebook with papermill (``parameters`` injected after its ``parameters`` cell)."""
    import papermill as pm

    path = pathlib.Path(path)
    out = pathlib.Path(output_dir) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(path), str(out), parameters=dict(parameters or {}), cwd=str(path.parent),
            progress_bar=progress, kernel_name="python3", execution_timeout=CELL_TIMEOUT_S,
        )
        status, error = "ok", ""
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's error
        status = "failed"
        error = (getattr(e, "ename", type(e).__name__) + ": " + str(getattr(e, "evalue", e))).splitlines()[0][:300]
    seconds = time.perf_counter() - t0
    metrics = read_metrics(out) if out.exists() else {}
    return NotebookRun(path.stem, status, seconds, out, metrics, error)


def run_all(
    selection: Sequence[str] = (), output_dir: str | pathlib.Path = "runs", parameters: Mapping[str, Any] | None = None,
    echo: bool = True,
) -> list[NotebookRun]:
    """Run the selected notebooks (all by default) in order; print one results table per notebook."""
    runs = []
    for path in notebook_paths(selection):
        if echo:
            print(f"running {path.name} ...", flush=True)
        run = run_notebook(path, output_dir, parameters)
        runs.append(run)
        if echo:
            print(format_run(run), flush=True)
    if echo and runs:
        print(_table([(r.name, r.status, f"{r.seconds:.1f}") for r in runs], ["notebook", "status", "seconds"]))
    return runs


def format_run(run: NotebookRun) -> str:
    head = f"== {run.name}: {run.status} in {run.seconds:.1f} s -> {run.output}"
    lines = [head]
    if run.error:
        lines.append(f"   error: {run.error}")
    if run.metrics:
        lines.append(_table(list(run.metrics.items()), ["metric", "value"]))
    return "\n".join(lines) + "\n"


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: Sequence[str] | None = None) -> int:
    """``retune run [NOTEBOOK ...] [-p NAME VALUE ...] [--out DIR]`` and ``retune list``."""
    parser = argparse.ArgumentParser(prog="retune", description="Run the Retune workbook's notebooks headless.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run_p = sub.add_parser("run", help="execute notebooks with papermill and print their results")
    run_p.add_argument("notebooks", nargs="*", help="prefixes such as 00 or 02_head (default: all)")
    run_p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                       help="a papermill parameter (Python literal), e.g. -p seed 1 -p device cuda")
    run_p.add_argument("--out", default="runs", help="output folder for executed notebooks (default: runs)")
    sub.add_parser("list", help="list the notebooks")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "list":
            for p in notebook_paths():
                print(p.stem)
            return 0
        params = {k: _parse_value(v) for k, v in args.parameter}
        runs = run_all(args.notebooks, args.out, params)
    except (ValueError, FileNotFoundError) as e:
        print(f"retune: {e}", file=sys.stderr)
        return 2
    return 0 if runs and all(r.status == "ok" for r in runs) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
