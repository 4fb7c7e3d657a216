"""Widget latency against its goal: how long a widget panel takes to redraw after a control moves.

The browser test (tests/test_browser.py) moves one control of every widget panel in JupyterLab and writes
what it measured to runs/browser/NOTEBOOK.json. This script prints, per notebook, the slowest panel's
latency as a ratio of the goal (2 s: a slider a learner drags should feel immediate), with the machine's
load when it was measured. Run it on an idle machine:

    python benchmarks/widget_latency.py --run      # runs the browser test alone first (about 3 minutes)
    python benchmarks/widget_latency.py            # reads the last browser test's measurements

Exit status 1 when a panel misses the goal, 2 when there is nothing to read.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MEASURED = ROOT / "runs" / "browser"
GOAL_S = 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the browser test first (pytest -m browser)")
    parser.add_argument("--goal", type=float, default=GOAL_S, help=f"seconds (default {GOAL_S:g})")
    args = parser.parse_args(argv)
    if args.run:
        for old in MEASURED.glob("*.json"):
            old.unlink()
        subprocess.run([sys.executable, "-m", "pytest", "-m", "browser", "-p", "no:xdist", "-q", "-o", "addopts=",
                        "-p", "no:cacheprovider", str(ROOT / "tests" / "test_browser.py")], cwd=ROOT, check=False)
    rows = [json.loads(p.read_text()) for p in sorted(MEASURED.glob("*.json"))]
    if not rows:
        print(f"nothing measured in {MEASURED}: run the browser test (pytest -m browser) or pass --run")
        return 2
    print(f"widget latency, slowest panel per notebook; goal {args.goal:g} s ({os.cpu_count()} cores here)")
    print(f"{'notebook':<32}{'latency (s)':>12}{'latency / goal':>16}{'load then':>11}")
    missed = 0
    for r in rows:
        worst = max(r["latencies_seconds"])
        missed += worst > args.goal
        print(f"{r['notebook']:<32}{worst:>12.2f}{worst / args.goal:>16.2f}{r['load']:>11.2f}")
    print("every panel within its goal" if not missed else f"{missed} notebook(s) over the goal")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
