"""Trials, paired comparisons and claims, checked against values computed by hand."""

import math
import re

import nbformat
import numpy as np
import pytest

import retune_lib as rt
from retune_lib import trials as tr

T975_DF2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom (tables)
T975_DF4 = 2.7764451051977987


def test_mean_sd_ci_by_hand():
    t = rt.Trials("x", [0, 1, 2], [2.0, 3.0, 3.0])
    assert t.mean == pytest.approx(8 / 3)
    assert t.sd == pytest.approx(math.sqrt(1 / 3))  # squared deviations 4/9, 1/9, 1/9 over n - 1 = 2
    lo, hi = t.ci()
    half = T975_DF2 * math.sqrt(1 / 3) / math.sqrt(3)
    assert lo == pytest.approx(8 / 3 - half) and hi == pytest.approx(8 / 3 + half)
    assert (lo, hi) == pytest.approx((1.2324489, 4.1008844))
    assert format(t, ".2f") == "2.67 ± 0.58 (3)"


def test_ci_five_seeds_and_degenerate():
    t = rt.Trials("x", range(5), [1.0, 2.0, 3.0, 4.0, 5.0])
    half = T975_DF4 * math.sqrt(2.5) / math.sqrt(5)
    assert t.ci() == pytest.approx((3 - half, 3 + half))
    assert rt.Trials("c", [0, 1, 2], [0.5] * 3).ci() == (0.5, 0.5)  # no spread: a point
    assert rt.Trials("one", [7], [0.5]).sd == 0.0


def test_paired_comparison_matches_by_seed():
    a = rt.Trials("a", [0, 1, 2], [3.0, 5.0, 4.0])
    b = rt.Trials("b", [2, 0, 1], [1.0, 1.0, 2.0])  # same seeds, another order: pairs are by seed
    c = rt.compare(a, b)
    assert c.diffs == (2.0, 3.0, 3.0) and c.wins == 3 and c.n == 3
    assert c.ci == pytest.approx((1.2324489, 4.1008844))
    assert "ahead on 3/3 seeds" in str(c)
    # the paired interval is much narrower than the unpaired spread would suggest
    a2 = rt.Trials("a", [0, 1, 2], [0.80, 0.90, 0.70])
    b2 = rt.Trials("b", [0, 1, 2], [0.78, 0.88, 0.68])
    assert rt.compare(a2, b2).ci == pytest.approx((0.02, 0.02))


def test_compare_against_a_constant_and_refusals():
    c = rt.compare(rt.Trials("acc", [0, 1, 2], [0.6, 0.7, 0.8]), 0.5)
    assert c.mean == pytest.approx(0.2) and c.b == "0.5"
    with pytest.raises(ValueError, match="different seeds"):
        rt.compare(rt.Trials("a", [0, 1, 2], [1, 2, 3]), rt.Trials("b", [0, 1, 3], [1, 2, 3]))
    with pytest.raises(TypeError, match="b must be Trials or a finite number"):
        rt.compare(rt.Trials("a", [0, 1, 2], [1, 2, 3]), "0.5")
    with pytest.raises(ValueError, match="repeated seeds"):
        rt.Trials("a", [0, 0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="3 seeds but 2 values"):
        rt.Trials("a", [0, 1, 2], [1, 2])
    with pytest.raises(ValueError, match="non-finite"):
        rt.Trials("a", [0, 1, 2], [1, float("nan"), 3])


def test_claim_passes_prints_and_fails_with_the_numbers(capsys):
    a = rt.Trials("soft", [0, 1, 2], [0.91, 0.88, 0.90])
    b = rt.Trials("hard", [0, 1, 2], [0.82, 0.80, 0.83])
    assert rt.claim("soft beats hard by > 3 points", a, b, margin=0.03) is None  # like print: the line is the result
    out = capsys.readouterr().out
    assert out.startswith("✓ soft beats hard by > 3 points: soft − hard = +0.0800") and "lower end > 0.03" in out
    assert out.count("soft − hard") == 1 and rt.compare(a, b).ci[0] > 0.03
    with pytest.raises(rt.ClaimFailed, match=r"claim failed: soft beats hard by > 10 points — soft − hard = \+0\.0800 "
                                              r"\[\+0\.\d+, \+0\.\d+\] \(95% CI\) needs lower end > 0\.1, n=3"):
        rt.claim("soft beats hard by > 10 points", a, b, margin=0.10)
    assert issubclass(rt.ClaimFailed, AssertionError)


def test_claim_within_and_minimum_seeds(monkeypatch, capsys):
    a = rt.Trials("a", [0, 1, 2], [0.90, 0.91, 0.92])
    b = rt.Trials("b", [0, 1, 2], [0.905, 0.905, 0.915])
    rt.claim("a and b agree within 2 points", a, b, within=0.02)
    with pytest.raises(rt.ClaimFailed, match="inside ±0.001"):
        rt.claim("a and b agree within 0.1 points", a, b, within=0.001)
    with pytest.raises(ValueError, match="rests on 2 seed"):
        rt.claim("two seeds", rt.Trials("a", [0, 1], [1, 2]), 0.0)
    with pytest.raises(ValueError, match="needs a statement"):
        rt.claim("  ", a, b)
    monkeypatch.setenv("RETUNE_CLAIMS", "record")  # the claims report: print and record, do not stop
    rt.claim("a beats b by 50 points", a, b, margin=0.5)
    assert "✗ a beats b by 50 points" in capsys.readouterr().out
    monkeypatch.setenv("RETUNE_CLAIMS", "maybe")
    with pytest.raises(ValueError, match="RETUNE_CLAIMS='maybe' is not supported"):
        rt.claim("a beats b by 50 points", a, b, margin=0.5)


def test_run_trials_and_seeds():
    assert rt.trial_seeds(0, 5) == [0, 1, 2, 3, 4] and rt.trial_seeds(2, 3) == [200, 201, 202]
    with pytest.raises(ValueError, match=r"n_seeds must be at least 3 \(a claim needs 3 paired trials\), got 0"):
        rt.trial_seeds(0, 0)
    t = rt.run_trials(lambda s: s * 2.0, [1, 2, 3], "double")
    assert t.values == (2.0, 4.0, 6.0) and t.name == "double"
    d = rt.run_trials(lambda s: {"acc": s / 10, "loss": 1.0}, [1, 2, 3], "v")
    assert d["acc"].name == "v: acc" and d["loss"].values == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="same metric names"):
        rt.run_trials(lambda s: {"a": 1.0} if s else {"b": 1.0}, [0, 1])


@pytest.mark.parametrize("n", [3, 5, 100, np.int64(4)])
def test_check_n_seeds_accepts_three_to_a_hundred(n):
    assert rt.check_n_seeds(n) == int(n) and type(rt.check_n_seeds(n)) is int
    assert len(rt.trial_seeds(1, n)) == int(n)


@pytest.mark.parametrize(
    "n, message",
    [
        (2, r"n_seeds must be at least 3 \(a claim needs 3 paired trials\), got 2"),
        (0, r"n_seeds must be at least 3 \(a claim needs 3 paired trials\), got 0"),
        (101, "n_seeds must be at most 100, got 101"),
        (2.5, "n_seeds must be an integer, got 2.5"),
        (True, "n_seeds must be an integer, got True"),
        ("5", "n_seeds must be an integer, got '5'"),
    ],
)
def test_the_seed_minimum_is_enforced_in_one_place(n, message):
    """rt.check_n_seeds is the one check; rt.trial_seeds (every notebook's seeds) goes through it."""
    for call in (rt.check_n_seeds, lambda n: rt.trial_seeds(0, n)):
        with pytest.raises(ValueError) as info:
            call(n)
        assert re.fullmatch(message, str(info.value)), str(info.value)


def test_trials_table_and_claim_records():
    table = rt.trials_table({"a": rt.Trials("a", [0, 1, 2], [0.5, 0.6, 0.7])})
    assert table.splitlines()[1].split() == ["a", "0.600", "±", "0.100", "(3)", "0.500", "0.700"]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    rec = {"claim": "c", "passed": True, "mean": 0.1, "lo": 0.05, "hi": 0.15, "n": 3, "wins": 3, "slack": 0.05,
           "rule": "lower end > 0"}
    cell.outputs = [nbformat.v4.new_output("display_data", data={tr.CLAIMS_MIME: rec})]
    nb.cells = [cell]
    assert rt.read_claims(nb) == [rec]


def test_ratio_claim_is_on_the_log_scale_and_prints_multiples(capsys):
    a = rt.Trials("CE", [0, 1, 2, 3], [9.0, 10.0, 8.5, 11.0])
    b = rt.Trials("twice", [3, 2, 1, 0], [1.2, 0.9, 1.1, 1.0])           # paired by seed, not by position
    rt.claim("more than 3-fold", a, b, ratio=3)
    line = capsys.readouterr().out
    assert line.startswith("✓ more than 3-fold: CE / twice = 9.17x [") and "lower end > 3x" in line
    # the arithmetic mean of the ratios (a raw-scale claim) would be pulled up by one large ratio; the log is not
    skewed = rt.Trials("skewed", [0, 1, 2], [1.1, 1.1, 20.0])
    with pytest.raises(rt.ClaimFailed, match="lower end > 1.5x"):
        rt.claim("more than 1.5x", skewed, 1.0, ratio=1.5)


def test_ratio_claim_refuses_bad_input():
    a = rt.Trials("a", [0, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="pass either ratio= or margin=/within= to claim, not both"):
        rt.claim("x", a, 1.0, ratio=2, margin=0.1)
    with pytest.raises(ValueError, match=r"a ratio claim needs positive values; b \('z'\) holds 0.0"):
        rt.claim("x", a, rt.Trials("z", [0, 1, 2], [1.0, 0.0, 1.0]), ratio=2)
    with pytest.raises(ValueError, match="ratio must be a number > 0, got 0"):
        rt.claim("x", a, 1.0, ratio=0)
