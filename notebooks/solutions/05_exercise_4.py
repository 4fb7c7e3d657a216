"""Lesson 05, exercise 4: does gradual unfreezing change accuracy by less than a point?

Run after the whole notebook, in its namespace: ``%run -i solutions/05_exercise_4.py`` in a cell at the end,
or headless ``retune run 05 --then notebooks/solutions/05_exercise_4.py``.
"""
# The notebook ran the pair (ULMFiT's recipe with and without gradual unfreezing: discriminative rates,
# one-cycle, same batches and initialisation) on the first three seeds. Run it on all of `seeds`, then on
# five more, and ask the paired interval at each size.
more_seeds = rt.trial_seeds(seed, 2 * n_seeds)       # `seeds`, then five more
pair = {gradual: rt.run_trials(lambda s, g=gradual: one_cycle_discriminative(s, g)["acc"], more_seeds,
                               "gradual" if gradual else "all groups from the start")
        for gradual in (False, True)}
for n in (3, len(seeds), len(more_seeds)):
    with_, without = (rt.Trials(t.name, t.seeds[:n], t.values[:n]) for t in (pair[True], pair[False]))
    c = rt.compare(with_, without)
    low, high = c.ci       # rt.claim(..., within=0.01) asks the same; here printed, so every size is shown
    verdict = "within a point" if -0.01 < low and high < 0.01 else "not resolved within a point"
    print(f"{n:>2} seeds: {c}  → {verdict}")
c_all = rt.compare(pair[True], pair[False])
rt.record_metrics({"ex4_gradual_gain_mean": c_all.mean, "ex4_gradual_gain_low": c_all.ci[0],
                   "ex4_gradual_gain_high": c_all.ci[1], "ex4_n_seeds": len(more_seeds)})
