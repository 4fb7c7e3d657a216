"""Run the workbook: every notebook headless through papermill, with a results table per notebook.

A notebook records its key numbers with :func:`record_metrics`; they travel inside the executed
notebook as a display output of MIME type :data:`METRICS_MIME`, so the runner and the tests read
them back from the output notebook, with no side files.

Command line (installed as ``retune``)::

    retune run                          # all notebooks, default parameters, into runs/
    retune run 00 -p seed 1 -p device cuda
    retune list
    retune base                         # load the shipped pretrained base, checksum verified; one line
    retune base --rebuild               # also train the recipe here and compare with the shipped weights
    retune claims --seeds 10 --threads 1 2 -j 2   # every notebook at seeds 0-9: the claims report
    retune claims --seeds 10-19 --threads 1       # the confirmation seeds, never used to write a claim

>>> record_metrics({"accuracy": 0.5})  # doctest: +ELLIPSIS
metric...value
accuracy...0.5000...
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import math
import pathlib
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "METRICS_MIME", "record_metrics", "read_metrics", "notebook_paths", "notebook_parameters", "run_notebook",
    "run_all", "main",
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


@dataclass
class ClaimsJob:
    notebook: pathlib.Path
    seed: int
    threads: int
    output_dir: pathlib.Path
    status: str = "pending"
    seconds: float = 0.0
    error: str = ""
    claims: list = field(default_factory=list)
    build: str | None = None  #: the short hash of the base weights the run used


def _run_claims_job(job: ClaimsJob, parameters: Mapping[str, Any]) -> ClaimsJob:
    """One notebook at one seed and thread count, in a child process (its own OMP_NUM_THREADS), claims recorded."""
    import os
    import subprocess

    from .trials import read_claims

    env = dict(os.environ, OMP_NUM_THREADS=str(job.threads), MKL_NUM_THREADS=str(job.threads), RETUNE_CLAIMS="record")
    cmd = [sys.executable, "-m", "retune_lib.runner", "run", str(job.notebook), "--out", str(job.output_dir),
           "-p", "seed", str(job.seed)]
    for k, v in parameters.items():
        cmd += ["-p", k, repr(v)]
    code_hash = _sha256(job.notebook)  # before the run: an edit during the run must not be credited to it
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    job.seconds = time.perf_counter() - t0
    job.build = _base_key()
    out = job.output_dir / job.notebook.name
    job.claims = read_claims(out) if out.exists() else []
    job.status = "ok" if proc.returncode == 0 else "failed"
    if proc.returncode:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "error:" in ln or ln.startswith("retune:")]
        job.error = (lines[-1].strip() if lines else f"exit code {proc.returncode}")[:300]
    record = {"notebook": job.notebook.stem, "seed": job.seed, "threads": job.threads, "status": job.status,
              "seconds": job.seconds, "error": job.error, "claims": job.claims, "parameters": dict(parameters),
              "notebook_sha256": code_hash, "base": _base_key()}
    job.output_dir.mkdir(parents=True, exist_ok=True)
    tmp = job.output_dir / f".{job.notebook.stem}.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(job.output_dir / f"{job.notebook.stem}.json")  # atomic: a report never reads half a record
    return job


def _current_record(job: ClaimsJob, parameters: Mapping[str, Any]) -> bool:
    """Whether ``job`` already has a completed record for the notebook's current code and these parameters."""
    try:
        r = json.loads((job.output_dir / f"{job.notebook.stem}.json").read_text())
    except (OSError, ValueError):
        return False
    return (r.get("status") == "ok" and r.get("notebook_sha256") == _sha256(job.notebook) and _same_base(r)
            and r.get("parameters", {}) == dict(parameters) and r.get("seed") == job.seed and r.get("threads") == job.threads)


#: The default base's recipe key when runs began to record it: every earlier record was made on that base.
_BASE_BEFORE_RECORDED = "7a9038460908"


def _base_key() -> str:
    """The base the notebooks run on: the shipped weights' short hash (every lesson's numbers move with them).

    Records made before the weights shipped carry a recipe key here (or nothing): another base, so stale."""
    from .weights import BASE_WEIGHTS

    return BASE_WEIGHTS.short


def _describe_base() -> str:
    from .weights import BASE_WEIGHTS

    return (f"the shipped weights `{BASE_WEIGHTS.file}` (sha256 `{BASE_WEIGHTS.short}`, source accuracy "
            f"{BASE_WEIGHTS.meta['source_accuracy']:.3f})")


def _same_base(record: Mapping[str, Any]) -> bool:
    return record.get("base", _BASE_BEFORE_RECORDED) == _base_key()


def _sha256(path: pathlib.Path) -> str:
    """A hash of the notebook's code cells: what its claims depend on (a prose edit keeps its runs valid)."""
    import hashlib

    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    code = "\n# -- cell --\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def load_claims_runs(
    output_dir: str | pathlib.Path = "runs/claims", selection: Sequence[str] = (),
) -> tuple[list[ClaimsJob], list[str]]:
    """The runs recorded under ``output_dir`` for the selected notebooks, and the ones left out because the
    notebook or the default pretrained base has changed since (a report only counts runs of the notebooks as they
    are now, on the base they use now)."""
    current = {p.stem: p for p in notebook_paths(selection)}
    jobs, stale = [], []
    for f in sorted(pathlib.Path(output_dir).glob("threads*/seed*/*.json")):
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            stale.append(f"{f}: unreadable")
            continue
        path = current.get(r.get("notebook"))
        if path is None:
            continue
        if r.get("notebook_sha256") != _sha256(path):
            stale.append(f"{r['notebook']} seed {r['seed']} threads {r['threads']}")
            continue
        if not _same_base(r):
            stale.append(f"{r['notebook']} seed {r['seed']} threads {r['threads']} (another base)")
            continue
        jobs.append(ClaimsJob(path, r["seed"], r["threads"], f.parent, r["status"], r["seconds"], r["error"], r["claims"],
                              r.get("base")))
    jobs.sort(key=lambda j: (j.threads, j.notebook.stem, j.seed))
    return jobs, stale


#: The notebook seeds the claims were written and tuned on; any other seed is held out (the confirmation set).
EXPLORATION_SEEDS = range(0, 10)


def parse_seeds(seeds: int | str | Sequence[int]) -> list[int]:
    """Notebook seeds from a count (``10`` means 0 .. 9), a range ``"10-19"`` (both ends included) or a list.

    >>> parse_seeds(3), parse_seeds("10-12"), parse_seeds([4, 2])
    ([0, 1, 2], [10, 11, 12], [2, 4])
    """
    from .checks import check_nonnegative_int, check_positive_int

    if isinstance(seeds, str):
        text = seeds.strip()
        if re.fullmatch(r"\d+", text):
            return list(range(check_positive_int(seeds=int(text))))
        m = re.fullmatch(r"(\d+)-(\d+)", text)
        if not m or int(m[1]) > int(m[2]):
            raise ValueError(f"seeds must be a count such as 10 or a range such as 10-19, got {seeds!r}")
        return list(range(int(m[1]), int(m[2]) + 1))
    if isinstance(seeds, (list, tuple, range)):
        if not seeds:
            raise ValueError("seeds must name at least one notebook seed")
        return sorted({check_nonnegative_int(seed=s) for s in seeds})
    return list(range(check_positive_int(seeds=seeds)))


def run_claims(
    selection: Sequence[str] = (), seeds: int | str | Sequence[int] = 10, threads: Sequence[int] = (1, 2), jobs: int = 2,
    output_dir: str | pathlib.Path = "runs/claims", parameters: Mapping[str, Any] | None = None, echo: bool = True,
    rerun: bool = False,
) -> list[ClaimsJob]:
    """Run every selected notebook at each notebook seed and thread count, claims in record mode.

    ``seeds`` is a count (``10``: seeds 0 .. 9), a range such as ``"10-19"``, or a list (:func:`parse_seeds`).

    A run already recorded under ``output_dir`` for the notebook's current code, with the same parameters,
    that completed, is kept rather than repeated (an interrupted report resumes where it stopped);
    ``rerun=True`` repeats every run.

    At most ``jobs`` notebooks run at once, and never more threads in all than the machine has cores
    (oversubscribed OpenMP threads slow torch down many times over).
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    from .checks import check_positive_int

    seeds = parse_seeds(seeds)
    jobs = check_positive_int(jobs=jobs)
    threads = [check_positive_int(threads=t) for t in threads]
    paths = notebook_paths(selection)
    parameters = dict(parameters or {})
    if "seed" in parameters:
        raise ValueError("retune claims sets the seed itself (--seeds); do not pass -p seed")
    for path in paths:
        check_parameter_names(path, parameters)
    cores = os.cpu_count() or 1
    done: list[ClaimsJob] = []
    for t in threads:
        todo = [ClaimsJob(p, s, t, pathlib.Path(output_dir) / f"threads{t}" / f"seed{s}") for s in seeds for p in paths]
        if not rerun:
            kept = [j for j in todo if _current_record(j, parameters)]
            todo = [j for j in todo if j not in kept]
            if echo and kept:
                print(f"keeping {len(kept)} runs at {t} thread(s) already recorded for the current code "
                      f"(--rerun repeats them)", flush=True)
        workers = max(1, min(jobs, cores // t))
        if echo:
            print(f"{len(todo)} runs at {t} thread(s), {workers} at a time ...", flush=True)
        with ThreadPoolExecutor(workers) as pool:
            for job in pool.map(lambda j: _run_claims_job(j, parameters), todo):
                done.append(job)
                if echo:
                    bad = sum(not c["passed"] for c in job.claims)
                    print(f"  {job.notebook.stem} seed {job.seed} threads {t}: {job.status}, {len(job.claims)} claims"
                          f"{f', {bad} FAILED' if bad else ''}, {job.seconds:.0f} s{('  ' + job.error) if job.error else ''}",
                          flush=True)
    return done


def claims_report(jobs: Sequence[ClaimsJob], command: str = "", seconds: float | None = None) -> str:
    """A markdown report: per notebook and claim, the pass rate over runs and the smallest slack."""
    import datetime
    import platform

    import torch

    lines = ["# Claims report", ""]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Generated {when} by `{command or 'retune claims'}`"
                 + (f" in {seconds / 60:.1f} min" if seconds is not None else "") + ".")
    lines.append(f"Machine: {platform.machine()}, {__import__('os').cpu_count()} cores, python "
                 f"{platform.python_version()}, torch {torch.__version__}; pretrained base: " + _describe_base()
                 + " (runs recorded on other weights are left out).")
    lines.append("")
    lines.append("Each run executes a notebook at its defaults with `-p seed S`; every comparative claim in it is "
                 "checked by `rt.claim` over the notebook's own paired trial seeds (`rt.trial_seeds(S, n_seeds)`, "
                 "disjoint for each S). *Slack* is how far the 95% interval clears the claim's rule (the lower end "
                 "above the margin, or the interval inside the ±band); negative means the claim failed.")
    lines.append("")
    failed_runs = [j for j in jobs if j.status != "ok"]
    by_claim: dict[tuple[str, str], list[tuple[ClaimsJob, dict]]] = {}
    for j in jobs:
        for c in j.claims:
            by_claim.setdefault((j.notebook.stem, c["claim"]), []).append((j, c))
    sets = [(name, [j for j in jobs if (j.seed in EXPLORATION_SEEDS) == explore])
            for name, explore in (("exploration", True), ("confirmation", False))]
    sets = [(name, js) for name, js in sets if js]

    def coverage(js: Sequence[ClaimsJob]) -> str:
        parts = []
        for t in sorted({j.threads for j in js}):
            ts = sorted({j.seed for j in js if j.threads == t})
            span = (str(ts[0]) if len(ts) == 1 else f"{ts[0]}–{ts[-1]}" if ts == list(range(ts[0], ts[-1] + 1))
                    else ", ".join(map(str, ts)))
            parts.append(f"{t} thread(s): seeds {span}, {sum(j.threads == t for j in js)} runs")
        return "; ".join(parts)

    def in_set(items: list[tuple[ClaimsJob, dict]], js: Sequence[ClaimsJob]) -> list[dict]:
        ids = {id(j) for j in js}
        return [c for j, c in items if id(j) in ids]

    if any(name == "confirmation" for name, _ in sets):
        lines.append(f"Notebook seeds {EXPLORATION_SEEDS.start}–{EXPLORATION_SEEDS.stop - 1} are the **exploration** set: the "
                     "claims' statements and margins were written and revised on them. Any other seed is the "
                     "**confirmation** set: run only after every claim was frozen, and never used to change one. A claim "
                     "that fails there is reported as failed.")
        lines.append("")
    for name, js in sets:
        keys = {(j.notebook.stem, c["claim"]) for j in js for c in j.claims}
        passing = [k for k in keys if all(c["passed"] for c in in_set(by_claim[k], js))]
        bad = [j for j in js if j.status != "ok"]
        lines.append(f"**{name.capitalize()}: {len(passing)} of {len(keys)} claims passed in every run**; "
                     f"{len(js) - len(bad)} of {len(js)} notebook runs completed ({coverage(js)}).")
        lines.append("")
    head = "| notebook | claim | rule |"
    rule = "|---|---|---|"
    for name, _ in sets:
        head += f" {name}: passed | {name}: smallest slack |"
        rule += "---|---|"
    lines.append(head + " mean difference (min … max) | seeds per claim |")
    lines.append(rule + "---|---|")
    for (nb, text), items in by_claim.items():
        row = f"| {nb} | {text} | {items[0][1]['rule']} |"
        for _, js in sets:
            cs = in_set(items, js)
            expected = sum(1 for j in js if j.notebook.stem == nb)
            if not cs:
                row += " – | – |"
                continue
            passed = sum(c["passed"] for c in cs)
            count = f"{passed}/{len(cs)}" + (f" (in {len(cs)} of {expected} runs)" if len(cs) != expected else "")
            row += f" {count} | {min(c['slack'] for c in cs):+.4f} |"
        means = [c["mean"] for _, c in items]
        ns = sorted({c["n"] for _, c in items})
        lines.append(row + f" {min(means):+.4f} … {max(means):+.4f} | {', '.join(map(str, ns))} |")
    lines.append("")
    threads = sorted({j.threads for j in jobs})
    tight = sorted(((min(c["slack"] for _, c in v), k) for k, v in by_claim.items()))[:5]
    if tight:
        lines.append("Tightest claims (smallest slack): " + "; ".join(f"{nb} “{t}” {s:+.4f}" for s, (nb, t) in tight) + ".")
        lines.append("")
    failed_claims = [(j, c) for j in jobs for c in j.claims if not c["passed"]]
    if failed_claims:
        lines.append("## Claims that failed")
        lines.append("")
        for j, c in failed_claims:
            kind = "exploration" if j.seed in EXPLORATION_SEEDS else "confirmation"
            lines.append(f"- {j.notebook.stem}, seed {j.seed} ({kind}), {j.threads} thread(s): {c['claim']} — mean "
                         f"{c['mean']:+.4f}, slack {c['slack']:+.4f}")
        lines.append("")
    if failed_runs:
        lines.append("## Runs that did not complete")
        lines.append("")
        for j in failed_runs:
            lines.append(f"- {j.notebook.stem}, seed {j.seed}, {j.threads} thread(s): {j.error}")
        lines.append("")
    lines.append("## Run times (seconds, while other runs shared the machine)")
    lines.append("")
    lines.append("| notebook | " + " | ".join(f"{t} thread(s): median (max)" for t in threads) + " |")
    lines.append("|---|" + "---|" * len(threads))
    for nb in sorted({j.notebook.stem for j in jobs}):
        cells = []
        for t in threads:
            secs = sorted(j.seconds for j in jobs if j.notebook.stem == nb and j.threads == t)
            cells.append(f"{secs[len(secs) // 2]:.0f} ({secs[-1]:.0f})" if secs else "–")
        lines.append(f"| {nb} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _base_command(rebuild: bool) -> int:
    """``retune base``: load the shipped weights (checksum verified); ``--rebuild``: train the recipe here too."""
    from .models import PretrainRecipe, load_base
    from .weights import BASE_WEIGHTS, tensor_digest_of

    load_base("cpu")  # prints the one line: file, hash verified, source accuracy, load time
    if rebuild:
        base = load_base("cpu", recipe=PretrainRecipe(), rebuild=True, progress=sys.stderr.isatty(), verbose=False)
        i = base.info
        same = "identical to" if i["weights"] == tensor_digest_of() else "other weights than"
        print(f"rebuilt PretrainRecipe() in {i['build_seconds']:.1f} s: source accuracy {i['source_accuracy']:.3f} "
              f"(shipped weights: {BASE_WEIGHTS.meta['source_accuracy']:.3f}), {same} the shipped ones; cached at "
              f"{i['loaded_from']}: load it with rt.load_base(recipe=rt.PretrainRecipe())")
    return 0


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
    run_p.add_argument("--then", nargs="+", default=[], metavar="FILE",
                       help="Python files run at the end in the notebook's namespace (an exercise's solution, "
                            "e.g. notebooks/solutions/05_exercise_4.py)")
    sub.add_parser("list", help="list the notebooks")
    bp = sub.add_parser("base", help="load and verify the shipped pretrained base (--rebuild: train one here from the recipe)")
    bp.add_argument("--rebuild", action="store_true",
                    help="train the default recipe's base on this machine into the cache (about a minute) and print "
                         "its source accuracy beside the shipped weights'")
    cl = sub.add_parser("claims", help="run notebooks at many seeds and thread counts; write the claims report")
    cl.add_argument("notebooks", nargs="*", help="prefixes such as 00 or 02_head (default: all)")
    cl.add_argument("--seeds", default="10", help="notebook seeds: a count N for 0 .. N-1 (default 10), or a range "
                    "A-B such as 10-19, the confirmation seeds")
    cl.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts (default: 1 2)")
    cl.add_argument("-j", "--jobs", type=int, default=2, help="notebooks at once, capped by cores / threads (default 2)")
    cl.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    cl.add_argument("--out", default="runs/claims", help="folder for the executed notebooks (default: runs/claims)")
    cl.add_argument("--report", default="reports/claims.md", help="markdown report to write (default: reports/claims.md)")
    cl.add_argument("--rerun", action="store_true",
                    help="repeat runs already recorded for the notebook's current code (default: keep them)")
    cl.add_argument("--report-only", action="store_true",
                    help="run nothing: write the report from the runs already in --out (of the notebooks as they are now)")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "list":
            for p in notebook_paths():
                print(p.stem)
            return 0
        if args.cmd == "base":
            return _base_command(args.rebuild)
        if args.cmd == "claims":
            params = {k: _parse_value(v) for k, v in args.parameter}
            t0 = time.perf_counter()
            seeds = parse_seeds(args.seeds)
            if not args.report_only:
                run_claims(args.notebooks, seeds, args.threads, args.jobs, args.out, params, rerun=args.rerun)
            jobs, stale = load_claims_runs(args.out, args.notebooks)
            if stale:
                print(f"left out {len(stale)} runs of notebooks that changed since: {', '.join(stale[:5])}"
                      + (" ..." if len(stale) > 5 else ""))
            command = "retune claims " + " ".join(argv if argv is not None else sys.argv[2:])
            text = claims_report(jobs, command.strip(), None if args.report_only else time.perf_counter() - t0)
            report = pathlib.Path(args.report)
            report.parent.mkdir(parents=True, exist_ok=True)
            tmp = report.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(report)
            print(text)
            ok = all(j.status == "ok" and all(c["passed"] for c in j.claims) for j in jobs)
            return 0 if ok else 1
        params = {k: _parse_value(v) for k, v in args.parameter}
        runs = run_all(args.notebooks, args.out, params, then=args.then)
    except (ValueError, FileNotFoundError) as e:  # WeightsError is a ValueError
        print(f"retune: {e}", file=sys.stderr)
        return 2
    return 0 if runs and all(r.status == "ok" for r in runs) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
