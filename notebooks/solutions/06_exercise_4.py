"""Lesson 06, exercise 4: the balance `alpha` of the hard-label term, chosen on validation images.

Run after the whole notebook, in its namespace: ``%run -i solutions/06_exercise_4.py`` in a cell at the end,
or headless ``retune run 06 --then notebooks/solutions/06_exercise_4.py``.
"""
# Section 6's recipe: soft targets at T=8 with T² plus a hard-label term weighted alpha, Adam, on the same
# transfer images with their labels. Sweep alpha; choose it per seed on 200 other images of the pool (their
# labels serve as validation only); report test accuracy of every alpha and of the chosen one.
alphas = (0.1, 0.5, 0.9)

def alpha_sweep(s):
    _, unl = split(s)
    order = unl[torch.randperm(len(unl), generator=torch.Generator().manual_seed(s))]
    pick, val = order[:transfer_size], order[transfer_size:transfer_size + 200]  # the same images as section 6
    x, y, zt = train.x[pick].to(dev), train.y[pick].to(dev), teachers[s][0][pick].to(dev)
    out, val_acc = {}, {}
    for a in alphas:
        torch.manual_seed(s)                               # fit_student's recipe, keeping the model
        student = new_student().to(dev)
        opt = torch.optim.Adam(student.parameters(), lr=3e-3)
        for _ in range(steps):
            loss = rt.kd_loss(student(x), zt, y, temperature=8.0, alpha=a, t_squared=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
        val_acc[a] = (rt.predict(student, train.x[val]).argmax(1).cpu() == train.y[val]).float().mean().item()
        out[f"alpha {a:g}"] = accuracy(rt.predict(student, test))
    best = max(alphas, key=lambda a: val_acc[a])           # ties: the smallest alpha
    out["chosen on validation"] = out[f"alpha {best:g}"]
    out["chosen alpha"] = best
    print(f"seed {s}: validation accuracy " + ", ".join(f"alpha {a:g} {val_acc[a]:.3f}" for a in alphas)
          + f" -> alpha {best:g}")
    return out

sweep = rt.run_trials(alpha_sweep, seeds)
chosen = sweep.pop("chosen alpha")
print(rt.trials_table(sweep, header="test accuracy, soft targets at T=8 with T² + alpha x hard labels"))
print("alpha chosen on validation, per seed:", dict(zip(chosen.seeds, chosen.values)))
for a, b in (("alpha 0.1", "alpha 0.9"), ("alpha 0.1", "alpha 0.5"), ("alpha 0.5", "alpha 0.9")):
    print(rt.compare(sweep[a], sweep[b]))
low_vs_high = rt.compare(sweep["alpha 0.1"], sweep["alpha 0.9"])
rt.record_metrics({f"ex4_{name.replace(' ', '_')}": t.mean for name, t in sweep.items()}
                  | {"ex4_low_minus_high_alpha_low": low_vs_high.ci[0], "ex4_low_minus_high_alpha_mean": low_vs_high.mean,
                     "ex4_low_minus_high_alpha_high": low_vs_high.ci[1],
                     "ex4_chosen_alphas": ",".join(f"{v:g}" for v in chosen.values)})
