"""Run notebooks headless through papermill and read back the numbers they recorded (``retune run``).

A notebook records its key numbers with :func:`record_metrics`; they travel inside the executed
notebook as a display output of MIME type :data:`METRICS_MIME`, so the runner and the tests read
them back from the output notebook, with no side files. Every lesson ends by recording its results.

:func:`run_notebook` executes one notebook with papermill (its parameters checked against the cell tagged
``parameters``; a stuck cell fails after :func:`cell_timeout` seconds, naming the cell), :func:`run_all` the
workbook in order. ``retune run`` (:mod:`retune_lib.runner`), the claims report (:mod:`retune_lib.claims`) and
the notebook tests run every notebook through here.

>>> record_metrics({"accuracy": 0.5})  # doctest: +ELLIPSIS
metric...value
accuracy...0.5000...
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "METRICS_MIME", "record_metrics", "read_metrics", "notebooks_dir", "notebook_paths", "notebook_parameters",
    "check_parameter_names", "cell_timeout", "short_channel_waits", "NotebookRun", "run_notebook", "run_all",
    "format_run",
]

METRICS_MIME = "application/vnd.retune.metrics+json"
# A cell that runs longer than this is stuck (the slowest, 00's scratch sweep, takes 2-4 min at one thread): fail the notebook
# naming the cell instead of hanging the run. RETUNE_CELL_TIMEOUT overrides it (seconds).
CELL_TIMEOUT_S = 600


def cell_timeout() -> int:
    """The per-cell timeout in seconds: ``RETUNE_CELL_TIMEOUT`` if set, else :data:`CELL_TIMEOUT_S`."""
    import os

    raw = os.environ.get("RETUNE_CELL_TIMEOUT")
    if raw is None:
        return CELL_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"RETUNE_CELL_TIMEOUT must be a whole number of seconds >= 1, got {raw!r}")
    return value


# zmq.asyncio can miss the edge-triggered wake-up of a kernel channel's socket: the reply sits in the socket while
# the await sleeps on. Seen here: a widget cell replied in 0.45 s and papermill waited out the whole 240 s cell
# timeout (1 run in ~70; see pyzmq's edge-triggered ZMQ_FD notes). A poll that times out checks the socket for
# real, so no single wait is allowed to last longer than this; a stranded reply is then picked up within it.
CHANNEL_POLL_S = 1.0


def short_channel_waits(kc: Any, step: float = CHANNEL_POLL_S) -> Any:
    """Make ``kc``'s shell and iopub ``get_msg`` wait in slices of at most ``step`` seconds (same overall timeout).

    Each slice ends in a real, level-triggered poll of the socket, so a message whose wake-up was lost is
    read at most ``step`` seconds late instead of after the whole cell timeout. Returns ``kc``.
    """
    from queue import Empty

    def sliced(get_msg):
        async def get_msg_in_slices(timeout: float | None = None, **kw):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = step if deadline is None else max(0.0, min(step, deadline - time.monotonic()))
                try:
                    return await get_msg(timeout=left, **kw)
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
        get_msg_in_slices.sliced = True
        return get_msg_in_slices

    for channel in (kc.shell_channel, kc.iopub_channel):
        if not getattr(channel.get_msg, "sliced", False):
            channel.get_msg = sliced(channel.get_msg)
    return kc


def _papermill_engine() -> str:
    """Register (once) and name the papermill engine the runner uses: papermill's own, with short channel waits."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    name = "retune"
    if name in papermill_engines._engines:
        return name

    class Client(PapermillNotebookClient):
        # papermill's execute() goes through the *sync* start_new_kernel_client, which nbclient builds with
        # run_sync from its own coroutine at class creation: overriding the coroutine alone is never called.
        def start_new_kernel_client(self):
            return short_channel_waits(super().start_new_kernel_client())

        async def async_start_new_kernel_client(self):
            return short_channel_waits(await super().async_start_new_kernel_client())

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                     start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger,
                                 log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
            return Client(nb_man, **final).execute()

    papermill_engines.register(name, Engine)
    return name


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
    notebook's last line can call it without echoing the dict. When a pretrained base was loaded in this
    process, its weights' short hash is recorded too (``base_weights``), so every results table names the base.
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
    from .models import loaded_weights

    if loaded_weights() and "base_weights" not in clean:
        clean["base_weights"] = loaded_weights()
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
    """The workbook's notebooks in order; ``selection`` filters by prefix or name ("00", "02_head").

    A selection that is the path of an existing ``.ipynb`` file selects that file (your own notebook).
    """
    files = [pathlib.Path(s) for s in selection if str(s).endswith(".ipynb") and pathlib.Path(s).is_file()]
    if files and len(files) == len(selection):
        return files
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


def notebook_parameters(path: str | pathlib.Path) -> dict[str, Any]:
    """The names and default values assigned in a notebook's cell tagged ``parameters``.

    >>> sorted(notebook_parameters(notebook_paths(["00"])[0]))[:2]
    ['dataset', 'device']
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"{pathlib.Path(path).name} has no cell tagged 'parameters'")
    found: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        found[target.id] = ast.literal_eval(node.value)
                    except ValueError:
                        found[target.id] = None
    return found


def check_parameter_names(path: str | pathlib.Path, parameters: Mapping[str, Any]) -> None:
    """Refuse a parameter the notebook does not have (papermill would only log it and run the defaults)."""
    allowed = notebook_parameters(path)
    unknown = [k for k in parameters if k not in allowed]
    if unknown:
        raise ValueError(
            f"{pathlib.Path(path).stem} has no parameter {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(allowed)}"
        )


def _failed_cell(out: pathlib.Path) -> str:
    """'cell N (first line)' of the cell that raised or was still running in a papermill output notebook."""
    import nbformat

    try:
        nb = nbformat.read(str(out), as_version=4)
    except Exception:  # noqa: BLE001 - the output may be missing or half-written
        return ""
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("papermill", {})
        errored = any(o.get("output_type") == "error" for o in cell.get("outputs", []))  # a timeout interrupts it
        if meta.get("exception") or meta.get("status") == "running" or errored:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            return f"cell {i} ({first.strip()[:60]})"
    return ""


def solution_paths(files: Sequence[str | pathlib.Path]) -> list[pathlib.Path]:
    """The solution scripts to run after a notebook: each must be an existing ``.py`` file."""
    paths = [pathlib.Path(f).resolve() for f in files]
    bad = [str(f) for f, p in zip(files, paths) if p.suffix != ".py" or not p.is_file()]
    if bad:
        raise ValueError(f"--then takes existing .py files (e.g. notebooks/solutions/05_exercise_4.py); not found: {bad}")
    return paths


def _copy_figures(notebook_dir: pathlib.Path, output_dir: pathlib.Path) -> None:
    """The lessons' figures (``figures/*.svg`` beside the notebooks, linked from their markdown) beside the
    executed copies too, so those show them."""
    figures = notebook_dir / "figures"
    if figures.is_dir() and figures.resolve() != (output_dir / "figures").resolve():
        shutil.copytree(figures, output_dir / "figures", dirs_exist_ok=True)


def run_notebook(
    path: str | pathlib.Path, output_dir: str | pathlib.Path = "runs", parameters: Mapping[str, Any] | None = None,
    progress: bool = False, then: Sequence[str | pathlib.Path] = (),
) -> NotebookRun:
    """Execute one notebook with papermill (``parameters`` injected after its ``parameters`` cell).

    ``then``: Python files (an exercise's solution) run at the end in the notebook's namespace, each as a
    cell ``%run -i FILE`` appended to the run's copy (the notebook itself is not changed).
    Unknown parameter names are refused before anything runs. A failed run's ``error`` is one line:
    the exception, and for a stuck cell (over :func:`cell_timeout` seconds) the cell that hung.
    """
    import papermill as pm

    path = pathlib.Path(path)
    parameters = dict(parameters or {})
    check_parameter_names(path, parameters)
    extra = solution_paths(then)
    out = pathlib.Path(output_dir) / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    _copy_figures(path.parent, out.parent)
    source = path
    if extra:
        import nbformat

        nb = nbformat.read(str(path), as_version=4)
        for f in extra:
            nb.cells.append(nbformat.v4.new_code_cell(f"%run -i {json.dumps(str(f))}", metadata={"tags": ["solution"]}))
        source = pathlib.Path(tempfile.mkdtemp(prefix="retune-then-")) / path.name  # not left beside the output
        nbformat.write(nb, str(source))
    timeout = cell_timeout()
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(out), parameters=parameters, cwd=str(path.parent),
            progress_bar=progress, kernel_name="python3", execution_timeout=timeout, engine_name=_papermill_engine(),
        )
        status, error = "ok", ""
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's error
        status = "failed"
        error = (getattr(e, "ename", type(e).__name__) + ": " + str(getattr(e, "evalue", e))).splitlines()[0][:300]
        if "timed out" in error.lower() or "Timeout" in error:
            where = _failed_cell(out)
            error = f"{path.stem}: {where or 'a cell'} ran over the {timeout} s cell timeout (stuck?)"
    seconds = time.perf_counter() - t0
    if source != path:
        shutil.rmtree(source.parent, ignore_errors=True)
    metrics = read_metrics(out) if out.exists() else {}
    return NotebookRun(path.stem, status, seconds, out, metrics, error)


def run_all(
    selection: Sequence[str] = (), output_dir: str | pathlib.Path = "runs", parameters: Mapping[str, Any] | None = None,
    echo: bool = True, then: Sequence[str | pathlib.Path] = (),
) -> list[NotebookRun]:
    """Run the selected notebooks (all by default) in order; print one results table per notebook."""
    paths = notebook_paths(selection)
    for path in paths:  # refuse a misspelt parameter before anything runs
        check_parameter_names(path, dict(parameters or {}))
    solution_paths(then)
    if then and len(paths) != 1:
        raise ValueError(f"--then runs a solution after one notebook; {len(paths)} notebooks were selected")
    runs = []
    for path in paths:
        if echo:
            print(f"running {path.name} ...", flush=True)
        run = run_notebook(path, output_dir, parameters, then=then)
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
