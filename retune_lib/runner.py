"""The ``retune`` command: run the workbook's notebooks, check the pretrained base, write the claims report.

Command line (installed as ``retune``; ``python -m retune_lib.runner`` is the same)::

    retune run                          # all notebooks, default parameters, into runs/
    retune run 00 -p seed 1 -p device cuda
    retune list
    retune base                         # load the shipped pretrained base, checksum verified; one line
    retune base --rebuild               # also train the recipe here and compare with the shipped weights
    retune claims --seeds 10 --threads 1 2 -j 2   # every notebook at seeds 0-9: the claims report
    retune claims --seeds 10-19 --threads 1       # the confirmation seeds, never used to write a claim

Running notebooks is :mod:`retune_lib.notebook_runs`, the claims report :mod:`retune_lib.claims`; their public
names are importable from here too, where they lived before (``retune_lib.runner.run_notebook`` ...).

>>> main(["list"])  # doctest: +ELLIPSIS
00_start_here
...
0
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from .claims import EXPLORATION_SEEDS, ClaimsJob, claims_report, load_claims_runs, parse_seeds, run_claims
from .notebook_runs import (
    METRICS_MIME,
    NotebookRun,
    cell_timeout,
    notebook_parameters,
    notebook_paths,
    notebooks_dir,
    read_metrics,
    record_metrics,
    run_all,
    run_notebook,
)

__all__ = [
    "main",
    # re-exported from notebook_runs and claims, their home since the runner was split
    "METRICS_MIME", "record_metrics", "read_metrics", "notebooks_dir", "notebook_paths", "notebook_parameters",
    "cell_timeout", "NotebookRun", "run_notebook", "run_all", "EXPLORATION_SEEDS", "ClaimsJob", "parse_seeds",
    "run_claims", "load_claims_runs", "claims_report",
]


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
