"""Benchmark: how much the pretrained base is worth on the handwritten digits (not a timed test).

Builds the base from scratch (its own temporary cache unless ``--cache`` is given), then over ``--seeds``
paired trials per k compares, on the same k labelled digits per class and the same fixed test set:

* **linear probe** — the frozen body's features, a new linear head (full batch Adam, cached features);
* **full fine-tune** — every layer trains, the head replaced, Adam at 3e-4 (lesson 02's rate);
* **scratch** — the same architecture from random weights, Adam at 1e-3 (lesson 00's rate).

Both networks that train every layer take the same number of optimizer steps at every k (``--steps``); a
second scratch run with twice the steps at the largest k checks that scratch was not cut short. The label
efficiency is read off the mean curves: scratch's labels at the largest k divided by the smallest k at
which the better pretrained arm's mean reaches scratch's mean there.

    python benchmarks/base_benchmark.py                       # writes reports/base.md
    python benchmarks/base_benchmark.py --recipe '{"epochs": 3}' --out /tmp/base.md
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="paired trials per k (default 5)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50], help="labels per class")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps for fine-tune and scratch")
    p.add_argument("--recipe", default="{}", help="PretrainRecipe fields as JSON, e.g. '{\"epochs\": 3}'")
    p.add_argument("--cache", default=None, help="cache folder for the base (default: a fresh temporary one)")
    p.add_argument("--out", default=str(ROOT / "reports" / "base.md"), help="markdown report to write")
    p.add_argument("--probe-only", action="store_true", help="screen a recipe: the linear probe only (seconds)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["RETUNE_CACHE"] = args.cache or tempfile.mkdtemp(prefix="retune-bench-")
    import retune_lib as rt

    recipe = rt.PretrainRecipe(**json.loads(args.recipe))
    t0 = time.perf_counter()
    base = rt.load_base("cpu", recipe=recipe, progress=False)
    first_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = rt.load_base("cpu", recipe=recipe, progress=False)
    cached_load = time.perf_counter() - t0
    info = base.info

    train, test = rt.load_digits().split(0.3, seed=0)
    f_test = rt.features(base, test)
    seeds = rt.trial_seeds(0, args.seeds)

    def epochs_for(n: int, steps: int) -> int:
        return -(-steps // -(-n // 32))

    def probe(k: int, s: int) -> float:
        small = train.per_class(k, seed=s)
        torch.manual_seed(s)
        head = nn.Linear(f_test.shape[1], 10)
        rt.fit(head, (rt.features(base, small), small.y), epochs=100, lr=1e-2, batch_size=1024, seed=s, progress=False)
        return rt.evaluate(head, (f_test, test.y))["accuracy"]

    def whole(k: int, s: int, pretrained: bool, steps: int = args.steps) -> float:
        small = train.per_class(k, seed=s)
        torch.manual_seed(s)
        if pretrained:
            model = copy.deepcopy(base)
            rt.unfreeze(model)
            rt.replace_head(model, 10)
        else:
            model = rt.SmallResNet(10)
        rt.fit(model, small, epochs=epochs_for(len(small), steps), lr=3e-4 if pretrained else 1e-3, batch_size=32,
               seed=s, progress=False)
        return rt.evaluate(model, test)["accuracy"]

    t0 = time.perf_counter()
    rows = []
    for k in args.k:
        lp = rt.run_trials(lambda s: probe(k, s), seeds, f"probe k={k}")
        if args.probe_only:
            print(f"k={k:>3}  probe {lp}", flush=True)
            continue
        ft = rt.run_trials(lambda s: whole(k, s, True), seeds, f"fine-tune k={k}")
        sc = rt.run_trials(lambda s: whole(k, s, False), seeds, f"scratch k={k}")
        rows.append((k, lp, ft, sc))
        print(f"k={k:>3}  probe {lp}  fine-tune {ft}  scratch {sc}", flush=True)
    if args.probe_only:
        print(f"build {info['build_seconds']:.1f} s, source accuracy {info['source_accuracy']:.3f}")
        return 0
    k_top = args.k[-1]
    sc_long = rt.run_trials(lambda s: whole(k_top, s, False, 2 * args.steps), seeds, f"scratch k={k_top}, 2x steps")
    sweep_s = time.perf_counter() - t0

    scratch_top = max(rows[-1][3].mean, sc_long.mean)

    def matched(arm: int) -> int | None:
        return next((k for k, *arms in rows if arms[arm].mean >= scratch_top), None)

    eff = {name: (k_top / m if m else None) for name, m in (("linear probe", matched(0)), ("full fine-tune", matched(1)))}
    best = max((e for e in eff.values() if e), default=None)

    lines = [
        "# The pretrained base on handwritten digits: benchmark",
        "",
        f"`python benchmarks/base_benchmark.py {' '.join(argv if argv is not None else sys.argv[1:])}`".replace("  ", " "),
        "",
        f"Recipe: `{json.dumps(dataclasses.asdict(recipe))}` (cache key `{recipe.key()}`).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.",
        "",
        f"- First build: **{info['build_seconds']:.1f} s** (rendering {info['render_seconds']:.1f} s; load call "
        f"{first_load:.1f} s); cached load: **{cached_load:.2f} s**.",
        f"- Source accuracy (5,000 fresh glyphs): {info['source_accuracy']:.3f}.",
        f"- Trials: seeds {seeds}; each draws its own k digits per class and initialisation; test set: "
        f"{len(test)} digits (fixed). Fine-tune and scratch: {args.steps} Adam steps of 32 images.",
        "",
        "| k per class | linear probe | full fine-tune | scratch | best pretrained − scratch (paired, 95% CI) |",
        "|---:|---|---|---|---|",
    ]
    for k, lp, ft, sc in rows:
        better = lp if lp.mean >= ft.mean else ft
        c = rt.compare(better, sc)
        lines.append(f"| {k} | {lp} | {ft} | {sc} | {c.mean:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] |")
    lines += [
        "",
        f"Scratch at k={k_top} with {2 * args.steps} steps: {sc_long} (the reference below takes the better of the two: "
        f"{scratch_top:.4f}).",
        "",
        "Label efficiency (scratch's k / the smallest k whose mean reaches scratch's mean at k="
        f"{k_top}): " + ", ".join(f"{n} {f'{e:g}x' if e else 'not reached'}" for n, e in eff.items())
        + f"; best **{f'{best:g}x' if best else 'not reached'}**.",
        f"Pretrained at k=5 vs scratch at k={k_top}: probe {rows[args.k.index(5)][1].mean:.4f}, fine-tune "
        f"{rows[args.k.index(5)][2].mean:.4f}, scratch {scratch_top:.4f}." if 5 in args.k else "",
        "",
        f"Sweep time: {sweep_s:.0f} s.",
    ]
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
