"""Lesson 04, exercise 1: what the class-weight power buys, and what it costs, on every seed.

Run after the whole notebook, in its namespace: ``%run -i solutions/04_exercise_1.py`` in a cell at the end,
or headless ``retune run 04 --then notebooks/solutions/04_exercise_1.py``.
"""
# The panel trains one seed's head per slider position. Here: the same heads (weights 1 / count**power,
# scaled to mean 1 over the examples, plain cross-entropy) for every power the slider offers, on every seed
# of section 2's table, paired.
powers = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)

def power_sweep(s):
    y = train.y[keeps[s]]
    counts = torch.bincount(y, minlength=10).float()
    out = {}
    for power in powers:
        w = counts.pow(-power)
        w = (w / w[y].mean()).to(dev)
        r = scores(fit_classes(lambda logits: F.cross_entropy(logits, y.to(dev), weight=w), s))
        for key in ("balanced", "rare", "common"):
            out[f"{key}, power {power:g}"] = float(r[key])
    return out

sweep = rt.run_trials(power_sweep, class_seeds)
print(f"{'power':>6} {'balanced acc':>18} {'rare recall':>18} {'common recall':>18}")
for power in powers:
    print(f"{power:>6g} " + " ".join(f"{format(sweep[f'{key}, power {power:g}']):>18}" for key in ("balanced", "rare", "common")))
for a, b in ((0.5, 0.0), (1.0, 0.5), (1.5, 1.0)):
    print(rt.compare(sweep[f"rare, power {a:g}"], sweep[f"rare, power {b:g}"]))
print(rt.compare(sweep["common, power 1.5"], sweep["common, power 0"]))
rt.record_metrics({f"ex1_{key}_power_{power:g}": sweep[f"{key}, power {power:g}"].mean
                   for power in powers for key in ("balanced", "rare", "common")})
