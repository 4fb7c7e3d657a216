"""The claims report (``retune claims``): every notebook at many seeds and thread counts, every claim counted.

Each run executes one notebook at one notebook seed in a child process with its own thread count and
``RETUNE_CLAIMS=record``, so every :func:`~retune_lib.trials.claim` in it is recorded rather than raised, and
writes a record (``threads{T}/seed{S}/{notebook}.json`` under the output folder) naming the notebook's code and
the base weights it ran on; a later report counts only runs of the notebooks and the base as they are now.
:func:`claims_report` turns the records into ``reports/claims.md``: per claim, how many runs it passed and its
smallest slack, on the exploration seeds (0-9, where the claims were written) and on any other, the confirmation
seeds. The notebooks themselves run through :mod:`retune_lib.notebook_runs`.

>>> parse_seeds("10-12")
[10, 11, 12]
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .notebook_runs import check_parameter_names, notebook_paths

__all__ = ["EXPLORATION_SEEDS", "ClaimsJob", "parse_seeds", "run_claims", "load_claims_runs", "claims_report"]


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
        if all(c.get("scale") == "ratio" for _, c in items):   # geometric-mean ratios, slack in log units
            spread = f"{min(means):.3g}x … {max(means):.3g}x (ratio)"
        else:
            spread = f"{min(means):+.4f} … {max(means):+.4f}"
        lines.append(row + f" {spread} | {', '.join(map(str, ns))} |")
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
