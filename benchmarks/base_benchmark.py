"""Benchmark: how much the pretrained base is worth on the handwritten digits (not a timed test).

Builds the base from scratch (its own temporary cache unless ``--cache`` is given), then over ``--seeds``
paired trials per k compares, on the same k labelled digits per class and the same fixed test set:

* **linear probe** — the frozen body's features, a new linear head (full batch Adam, cached features);
* **full fine-tune** — every layer trains, the head replaced;
* **scratch** — the same architecture from random weights.

The two arms that train every layer are **tuned per trial on validation digits, the same way**: one run per
Adam rate (``--ft-lrs``, ``--scratch-lrs``), read at each checkpoint (``--ft-steps``, ``--scratch-steps``); the
test accuracy reported is the one at the (rate, steps) that scored best on validation. Scratch gets the
longer schedule (up to 1,200 steps) since it starts from nothing. The untuned recipes of the lessons (fine-tune
at 3e-4, scratch at 1e-3, 300 steps each) are reported beside them.

The labelled digits are drawn from a pool; the validation digits (``--val-fraction`` of the training split,
stratified) are disjoint from the pool and from the test set. The label efficiency is read off the mean
curves: scratch's labels at the largest k divided by the smallest k at which the better pretrained arm's mean
reaches scratch's mean there.

    python benchmarks/base_benchmark.py                       # writes reports/base.md
    python benchmarks/base_benchmark.py --recipe '{"epochs": 3}' --out /tmp/base.md
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import pathlib
import platform
import shlex
import sys
import tempfile
import time

import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scratch_equivalent(ks: list[int], scratch: list[float], accuracy: float) -> float | None:
    """The labels per class scratch needs to reach ``accuracy``: its mean curve, interpolated linearly in log k.

    None when scratch never reaches it within ``ks``; ``ks[0]`` when it already does at the smallest k.

    >>> round(scratch_equivalent([1, 10], [0.5, 0.9], 0.7), 3)  # halfway in log k between 1 and 10
    3.162
    """
    if accuracy <= scratch[0]:
        return float(ks[0])
    for (k0, a0), (k1, a1) in zip(zip(ks, scratch), zip(ks[1:], scratch[1:])):
        if a0 < accuracy <= a1:
            t = (accuracy - a0) / (a1 - a0)
            return math.exp(math.log(k0) + t * (math.log(k1) - math.log(k0)))
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="paired trials per k (default 5)")
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50], help="labels per class")
    p.add_argument("--ft-lrs", type=float, nargs="+", default=[1e-3, 3e-4], help="fine-tune: Adam rates tried")
    p.add_argument("--ft-steps", type=int, nargs="+", default=[100, 300],
                   help="fine-tune: step counts read (checkpoints of one run per rate)")
    p.add_argument("--scratch-lrs", type=float, nargs="+", default=[3e-3, 1e-3], help="scratch: Adam rates tried")
    p.add_argument("--scratch-steps", type=int, nargs="+", default=[150, 300, 600, 1200],
                   help="scratch: step counts read (checkpoints of one run per rate)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the training split")
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
    train, val = train.split(args.val_fraction, seed=0)  # labelled draws from `train`; choices on `val`
    f_test = rt.features(base, test)
    FT_FIXED, SCRATCH_FIXED = (3e-4, 300), (1e-3, 300)  # the untuned recipes (lessons 02 and 00), for comparison
    ft_checkpoints = sorted(set(args.ft_steps) | {FT_FIXED[1]})
    sc_checkpoints = sorted(set(args.scratch_steps) | {SCRATCH_FIXED[1]})
    args.ft_lrs = sorted(set(args.ft_lrs) | {FT_FIXED[0]}, reverse=True)
    args.scratch_lrs = sorted(set(args.scratch_lrs) | {SCRATCH_FIXED[0]}, reverse=True)
    seeds = rt.trial_seeds(0, args.seeds)

    def probe(k: int, s: int) -> float:
        small = train.per_class(k, seed=s)
        torch.manual_seed(s)
        head = nn.Linear(f_test.shape[1], 10)
        rt.fit(head, (rt.features(base, small), small.y), epochs=100, lr=1e-2, batch_size=1024, seed=s, progress=False)
        return rt.evaluate(head, (f_test, test.y))["accuracy"]

    def pretrained_model() -> nn.Module:
        model = copy.deepcopy(base)
        rt.unfreeze(model)
        rt.replace_head(model, 10)
        return model

    chosen: dict[tuple[str, int], list[tuple[float, int]]] = {}

    def tuned(arm: str, k: int, s: int, make_model, lrs: list[float], checkpoints: list[int],
              fixed: tuple[float, int]) -> dict[str, float]:
        """Train at each rate, read at each checkpoint; test accuracy at the best (rate, steps) on validation,
        and at the ``fixed`` (rate, steps) recipe for comparison."""
        small = train.per_class(k, seed=s)
        per_batch = -(-len(small) // 32)
        scored = []  # (validation accuracy, rate, steps, test accuracy)
        for lr in lrs:
            torch.manual_seed(s)
            model = make_model()
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            done = 0
            for target in checkpoints:
                epochs = -(-(target - done) // per_batch)
                rt.fit(model, small, epochs=epochs, optimizer=optimizer, batch_size=32, seed=s * 1000 + done,
                       progress=False)
                done += epochs * per_batch
                scored.append((rt.evaluate(model, val)["accuracy"], lr, target, rt.evaluate(model, test)["accuracy"]))
        best = max(scored, key=lambda t: t[0])  # ties: the first (higher rate, fewer steps)
        chosen.setdefault((arm, k), []).append((best[1], best[2]))
        return {"tuned": best[3], "fixed": next(t[3] for t in scored if (t[1], t[2]) == fixed)}

    t0 = time.perf_counter()
    rows = []
    for k in args.k:
        lp = rt.run_trials(lambda s: probe(k, s), seeds, f"probe k={k}")
        if args.probe_only:
            print(f"k={k:>3}  probe {lp}", flush=True)
            continue
        ft = rt.run_trials(lambda s: tuned("fine-tune", k, s, pretrained_model, args.ft_lrs, ft_checkpoints,
                                           FT_FIXED), seeds, f"fine-tune k={k}")
        sc = rt.run_trials(lambda s: tuned("scratch", k, s, lambda: rt.SmallResNet(10), args.scratch_lrs,
                                           sc_checkpoints, SCRATCH_FIXED), seeds, f"scratch k={k}")
        rows.append((k, lp, ft["tuned"], sc["tuned"], ft["fixed"], sc["fixed"]))
        print(f"k={k:>3}  probe {lp}  fine-tune {ft['tuned']} (fixed {ft['fixed']})  scratch {sc['tuned']} "
              f"(fixed {sc['fixed']})  chosen: fine-tune {chosen['fine-tune', k]}, scratch {chosen['scratch', k]}",
              flush=True)
    if args.probe_only:
        print(f"build {info['build_seconds']:.1f} s, source accuracy {info['source_accuracy']:.3f}")
        return 0
    k_top = args.k[-1]
    sweep_s = time.perf_counter() - t0

    scratch_top = rows[-1][3].mean

    def matched(arm: int) -> int | None:
        return next((k for k, *arms in rows if arms[arm].mean >= scratch_top), None)

    scratch_curve = ([r[0] for r in rows], [r[3].mean for r in rows])
    equivalents = [(k, scratch_equivalent(*scratch_curve, max(lp.mean, ft.mean))) for k, lp, ft, *_ in rows]
    eff = {name: (k_top / m if m else None) for name, m in (("linear probe", matched(0)), ("full fine-tune", matched(1)))}
    best = max((e for e in eff.values() if e), default=None)

    lines = [
        "# The pretrained base on handwritten digits: benchmark",
        "",
        f"`python benchmarks/base_benchmark.py {shlex.join(argv if argv is not None else sys.argv[1:])}`".replace("  ", " "),
        "",
        f"Recipe: `{json.dumps(dataclasses.asdict(recipe))}` (cache key `{recipe.key()}`).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.",
        "",
        f"- First build: **{info['build_seconds']:.1f} s** (rendering {info['render_seconds']:.1f} s; load call "
        f"{first_load:.1f} s); cached load: **{cached_load:.2f} s**.",
        f"- Source accuracy (5,000 fresh glyphs): {info['source_accuracy']:.3f}.",
        f"- Trials: seeds {seeds}; each draws its own k digits per class and initialisation; test set: "
        f"{len(test)} digits (fixed); labelled digits drawn from {len(train)}, validation {len(val)} (disjoint).",
        "- Both arms that train every layer are tuned the same way, per trial, on the validation digits: one run per "
        "Adam rate, read at each checkpoint, keeping the (rate, steps) best on validation (batches of 32). "
        f"Full fine-tune: rates {', '.join(f'{lr:g}' for lr in args.ft_lrs)}, checkpoints "
        f"{', '.join(map(str, ft_checkpoints))} steps. Scratch: rates {', '.join(f'{lr:g}' for lr in args.scratch_lrs)}, "
        f"checkpoints {', '.join(map(str, sc_checkpoints))} steps. The linear probe: 100 full-batch epochs at 1e-2.",
        "",
        "| k per class | linear probe | full fine-tune, tuned | scratch, tuned | best pretrained − scratch (paired, 95% CI) "
        f"| fine-tune, fixed ({FT_FIXED[0]:g}, {FT_FIXED[1]} steps) | scratch, fixed ({SCRATCH_FIXED[0]:g}, "
        f"{SCRATCH_FIXED[1]} steps) | choices (rate, steps): fine-tune; scratch |",
        "|---:|---|---|---|---|---|---|---|",
    ]
    for k, lp, ft, sc, ft_fixed, sc_fixed in rows:
        better = lp if lp.mean >= ft.mean else ft
        c = rt.compare(better, sc)
        picks = "; ".join(", ".join(f"({lr:g}, {st})" for lr, st in chosen[arm, k]) for arm in ("fine-tune", "scratch"))
        lines.append(f"| {k} | {lp} | {ft} | {sc} | {c.mean:+.3f} [{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] | {ft_fixed} "
                     f"| {sc_fixed} | {picks} |")
    lines += [
        "",
        "Label efficiency (scratch's k / the smallest k whose mean reaches scratch's mean at k="
        f"{k_top}): " + ", ".join(f"{n} {f'{e:g}x' if e else 'not reached'}" for n, e in eff.items())
        + f"; best **{f'{best:g}x' if best else 'not reached'}**.",
        "",
        "Labels scratch needs to match the best pretrained arm at each k (its mean curve, interpolated in log k): "
        + ", ".join(f"k={k}: {eq:.1f} ({eq / k:.1f}x)" if eq else f"k={k}: more than {k_top}" for k, eq in equivalents)
        + ".",
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
