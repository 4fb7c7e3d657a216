"""Lesson 02, exercise 6: layer4 + head against the linear head, at 1 and at 100 labelled digits per class.

Run after the whole notebook, in its namespace: ``%run -i solutions/02_exercise_6.py`` in a cell at the end,
or headless ``retune run 02 --then notebooks/solutions/02_exercise_6.py``.
"""
# The panel answers on one seed. Here: the same two variants (`run_variant`, section 2's recipe and budget)
# on every seed, paired, at both ends of the slider.
edges = {}
for k_ in (1, 100):
    pair = {v: rt.Trials(f"{v}, k={k_}", seeds, [run_variant(v, k_, s)["accuracy"] for s in seeds])
            for v in ("linear head", "layer4 + head")}
    edges[k_] = rt.compare(pair["layer4 + head"], pair["linear head"])
    print(f"k={k_:>3}: linear head {pair['linear head']}, layer4 + head {pair['layer4 + head']}")
    print(f"        {edges[k_]}")
rt.record_metrics({f"ex6_layer4_minus_linear_k{k_}_{what}": value for k_, c in edges.items()
                   for what, value in (("mean", c.mean), ("low", c.ci[0]), ("high", c.ci[1]))})
