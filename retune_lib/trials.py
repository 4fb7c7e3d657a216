"""Evidence over several seeds: trials, paired comparisons, and claims checked against their interval.

One training run is one draw of the noise: the same seed gives other numbers on another machine or
thread count, and which k examples you sampled moves accuracy by points. So a lesson runs each arm of
a comparison on the same few seeds, compares the arms *paired* (seed by seed), and states a claim
only when the confidence interval of the paired difference clears the margin the claim names.

>>> a = Trials("soft targets", [0, 1, 2], [0.91, 0.88, 0.90])
>>> b = Trials("hard labels", [0, 1, 2], [0.82, 0.80, 0.83])
>>> print(a)
0.897 ± 0.015 (3)
>>> d = compare(a, b)
>>> round(d.mean, 4), d.wins, d.n
(0.08, 3, 3)
>>> claim("soft targets beat hard labels by > 3 points", a, b, margin=0.03)  # doctest: +ELLIPSIS
✓ soft targets beat hard labels by > 3 points: ...

Exact facts (bit-identical weights, shapes, a gradient that is zero) keep plain ``assert``s; this
module is for comparisons whose numbers vary from run to run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .checks import check_nonnegative_int, check_range, is_integer, to_scalar

__all__ = [
    "CLAIMS_MIME",
    "ClaimFailed",
    "Trials",
    "Comparison",
    "MIN_SEEDS",
    "check_n_seeds",
    "trial_seeds",
    "run_trials",
    "compare",
    "claim",
    "trials_table",
    "read_claims",
]

CLAIMS_MIME = "application/vnd.retune.claim+json"
MIN_SEEDS = 3  #: a claim from fewer paired seeds is a coin toss: refuse it
MAX_SEEDS = 100  #: trial_seeds(seed, n) numbers a run's trials seed * 100 + i: more would reach the next seed's


class ClaimFailed(AssertionError):
    """A claim the evidence does not support; the message names the claim, the difference, its interval and n."""


def _t_quantile(p: float, df: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, df))


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def _number(v: Any, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{what}, got {v!r}") from None


def _check_confidence(confidence: Any) -> float:
    return check_range("confidence", confidence, 0.5, 1, high_open=True)


def _interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """Two-sided Student-t interval for the mean; a single value (or zero spread) gives a point."""
    mean, sd = _mean_sd(values)
    n = len(values)
    if n < 2 or sd == 0.0:
        return mean, mean
    half = _t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


@dataclass(frozen=True)
class Trials:
    """One variant's metric over several seeds: ``values[i]`` was measured with ``seeds[i]``.

    >>> t = Trials("head", [0, 1, 2, 3], [0.90, 0.92, 0.94, 0.96])
    >>> round(t.mean, 3), round(t.sd, 4), t.n
    (0.93, 0.0258, 4)
    >>> f"{t:.2f}"
    '0.93 ± 0.03 (4)'
    """

    name: str
    seeds: tuple[int, ...]
    values: tuple[float, ...]

    def __init__(self, name: str, seeds: Iterable[int], values: Iterable[float]):
        seeds, values = tuple(seeds), tuple(values)
        bad = next((s for s in seeds if not is_integer(s)), None)
        if bad is not None:
            raise ValueError(f"trials {name!r}: seeds must be integers, got {to_scalar(bad)!r}")
        seeds = tuple(int(to_scalar(s)) for s in seeds)
        values = tuple(_number(v, f"trials {name!r}: values must be numbers") for v in values)
        if len(seeds) != len(values):
            raise ValueError(f"trials {name!r}: {len(seeds)} seeds but {len(values)} values")
        if not seeds:
            raise ValueError(f"trials {name!r}: no seeds; run at least one")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"trials {name!r}: repeated seeds {list(seeds)}; each seed once")
        bad = [v for v in values if not math.isfinite(v)]
        if bad:
            raise ValueError(f"trials {name!r}: non-finite values {bad}")
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "values", values)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return _mean_sd(self.values)[0]

    @property
    def sd(self) -> float:
        """Sample standard deviation (n − 1 in the denominator); 0 for one seed."""
        return _mean_sd(self.values)[1]

    def ci(self, confidence: float = 0.95) -> tuple[float, float]:
        """Student-t confidence interval of the mean.

        >>> Trials("x", [0, 1, 2], [1.0, 1.0, 1.0]).ci()
        (1.0, 1.0)
        """
        return _interval(self.values, _check_confidence(confidence))

    def map(self, fn: Callable[[float], float], name: str | None = None) -> Trials:
        """A derived metric, seed by seed (e.g. an error rate from an accuracy)."""
        return Trials(name or self.name, self.seeds, [fn(v) for v in self.values])

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{self.mean:{spec}} ± {self.sd:{spec}} ({self.n})"

    def __str__(self) -> str:
        return format(self)

    def __len__(self) -> int:
        return self.n


def check_n_seeds(n_seeds: int) -> int:
    """Return ``n_seeds`` as an int if a claim can rest on that many paired trials: from 3 (:data:`MIN_SEEDS`) to 100.

    The one place the minimum is enforced: :func:`trial_seeds` calls it, and so can a notebook's parameters cell.

    >>> check_n_seeds(5)
    5
    >>> check_n_seeds(2)
    Traceback (most recent call last):
    ...
    ValueError: n_seeds must be at least 3 (a claim needs 3 paired trials), got 2
    """
    n = check_range("n_seeds", n_seeds, integer=True)
    if n < MIN_SEEDS:
        raise ValueError(f"n_seeds must be at least {MIN_SEEDS} (a claim needs {MIN_SEEDS} paired trials), got {n}")
    if n > MAX_SEEDS:
        raise ValueError(f"n_seeds must be at most {MAX_SEEDS}, got {n}")
    return n


def trial_seeds(seed: int, n: int) -> list[int]:
    """The ``n`` seeds a notebook run at ``seed`` uses for its trials: disjoint for different ``seed``.

    ``n`` is checked by :func:`check_n_seeds` (3 to 100).

    >>> trial_seeds(0, 3), trial_seeds(1, 3)
    ([0, 1, 2], [100, 101, 102])
    """
    seed, n = check_nonnegative_int(seed=seed), check_n_seeds(n)
    return [seed * 100 + i for i in range(n)]


def run_trials(
    fn: Callable[[int], float | Mapping[str, float]], seeds: Sequence[int], name: str = "",
) -> Trials | dict[str, Trials]:
    """Call ``fn(seed)`` for each seed. A float result gives one :class:`Trials`; a dict of floats
    gives ``{metric: Trials}`` (every call must return the same keys).

    >>> run_trials(lambda s: s / 10, [1, 2, 3], "x").values
    (0.1, 0.2, 0.3)
    >>> run_trials(lambda s: {"a": s, "b": -s}, [1, 2])["b"].values
    (-1.0, -2.0)
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable (a function of the seed), got {type(fn).__name__}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("run_trials needs at least one seed")
    results = [fn(s) for s in seeds]
    what = "it must return a number or a dict of numbers"
    if all(isinstance(r, Mapping) for r in results):
        keys = list(results[0])
        if any(list(r) != keys for r in results):
            raise ValueError("every call must return the same metric names")
        return {k: Trials(f"{name}: {k}" if name else k, seeds,
                          [_number(r[k], f"fn returned {r[k]!r} as {k!r} for seed {s}: {what}") for s, r in zip(seeds, results)])
                for k in keys}
    if any(isinstance(r, Mapping) for r in results):
        raise ValueError("fn must return a number for every seed, or a dict for every seed")
    values = []
    for s, r in zip(seeds, results):
        try:
            values.append(float(r))
        except (TypeError, ValueError):
            raise ValueError(f"fn returned {r!r} for seed {s}: {what}") from None
    return Trials(name, seeds, values)


@dataclass(frozen=True)
class Comparison:
    """Paired differences ``a − b`` seed by seed, their mean, interval and how often ``a`` came out ahead."""

    a: str
    b: str
    seeds: tuple[int, ...]
    diffs: tuple[float, ...]
    confidence: float = 0.95

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def mean(self) -> float:
        return _mean_sd(self.diffs)[0]

    @property
    def sd(self) -> float:
        return _mean_sd(self.diffs)[1]

    @property
    def ci(self) -> tuple[float, float]:
        return _interval(self.diffs, self.confidence)

    @property
    def wins(self) -> int:
        """Seeds on which ``a`` is strictly greater than ``b``."""
        return sum(d > 0 for d in self.diffs)

    def __str__(self) -> str:
        lo, hi = self.ci
        return (f"{self.a} − {self.b} = {self.mean:+.4f} [{lo:+.4f}, {hi:+.4f}] "
                f"({self.confidence:.0%} CI), ahead on {self.wins}/{self.n} seeds")

    def __repr__(self) -> str:  # one readable line when a notebook cell ends with a claim, not a field dump
        return f"Comparison({self})"


def _as_trials(x: Trials | float | int, seeds: Sequence[int], what: str) -> Trials:
    if isinstance(x, Trials):
        return x
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return Trials(f"{x:g}", seeds, [float(x)] * len(seeds))
    raise TypeError(f"{what} must be Trials or a finite number, got {type(x).__name__}")


def compare(a: Trials, b: Trials | float, confidence: float = 0.95) -> Comparison:
    """Pair ``a`` and ``b`` on their seeds (both must hold the same seeds) and return ``a − b``.

    ``b`` may be a number: the comparison is then against that constant (e.g. chance level).

    >>> c = compare(Trials("a", [0, 1, 2], [3.0, 5.0, 4.0]), Trials("b", [2, 0, 1], [1.0, 1.0, 2.0]))
    >>> c.diffs, c.mean, c.wins
    ((2.0, 3.0, 3.0), 2.6666666666666665, 3)
    """
    if not isinstance(a, Trials):
        raise TypeError(f"a must be Trials (from run_trials), got {type(a).__name__}")
    b = _as_trials(b, a.seeds, "b")
    confidence = _check_confidence(confidence)
    if sorted(a.seeds) != sorted(b.seeds):
        raise ValueError(
            f"{a.name!r} and {b.name!r} were run on different seeds ({list(a.seeds)} vs {list(b.seeds)}): "
            "a paired comparison needs the same seeds for both arms"
        )
    bv = dict(zip(b.seeds, b.values))
    diffs = [va - bv[s] for s, va in zip(a.seeds, a.values)]
    return Comparison(a.name, b.name, a.seeds, tuple(diffs), confidence)


def _mode() -> str:
    mode = os.environ.get("RETUNE_CLAIMS", "assert")
    if mode not in ("assert", "record"):
        raise ValueError(f"RETUNE_CLAIMS={mode!r} is not supported; allowed: 'assert', 'record'")
    return mode


def claim(
    statement: str, a: Trials, b: Trials | float = 0.0, *, margin: float = 0.0, within: float | None = None,
    ratio: float | None = None, confidence: float = 0.95,
) -> None:
    """Check a comparative statement against the paired evidence, print one line, and record it.

    It returns nothing, like ``print``: the printed line is the result (a notebook cell ending in a
    claim shows it once). For the numbers themselves, call :func:`compare` with the same arguments.

    * default: "``a`` exceeds ``b`` by more than ``margin``" holds when the lower end of the
      confidence interval of ``a − b`` is above ``margin``. For "``a`` is below ``b``", swap them.
    * ``within=tol``: "``a`` and ``b`` agree within ``tol``" holds when the whole interval lies in
      ``[-tol, tol]``.
    * ``ratio=r``: "``a`` is more than ``r`` times ``b``" (positive values) holds when the lower end of the
      interval of the paired ``log(a / b)`` is above ``log(r)``: ratios are averaged on the log scale, and the
      line shows the geometric-mean ratio and its interval as multiples (``9.2x [8.1x, 10.4x]``).

    At least 3 seeds are required. A claim that fails raises :class:`ClaimFailed` naming the claim,
    the mean difference, its interval and n (with ``RETUNE_CLAIMS=record`` in the environment it is
    printed and recorded instead, so a claims report sees every claim of a notebook).

    >>> a = Trials("a", [0, 1, 2], [0.5, 0.6, 0.7])
    >>> claim("a is above 0.9", a, 0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    retune_lib.trials.ClaimFailed: claim failed: a is above 0.9 — a − 0.9 = -0.3000 [...] (95% CI) ..., n=3
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("claim needs a statement: the sentence the evidence must support")
    if ratio is not None:
        return _ratio_claim(statement, a, b, ratio, margin, within, confidence)
    comp = compare(a, b, confidence)
    if comp.n < MIN_SEEDS:
        raise ValueError(f"claim {statement!r} rests on {comp.n} seed(s); use at least {MIN_SEEDS}")
    lo, hi = comp.ci
    if within is not None:
        check_range("within", within, 0, low_open=True)
        passed = -within < lo and hi < within
        slack = min(lo + within, within - hi)  # how far the interval stays inside the band
        rule = f"inside ±{within:g}"
    else:
        check_range("margin", margin)
        passed = lo > margin
        slack = lo - margin  # how far the interval's lower end clears the margin
        rule = f"lower end > {margin:g}"
    line = f"{'✓' if passed else '✗'} {statement}: {comp} — {rule}"
    print(line)
    _record(statement, comp, passed, slack, rule)
    if not passed and _mode() == "assert":
        raise ClaimFailed(
            f"claim failed: {statement} — {comp.a} − {comp.b} = {comp.mean:+.4f} [{lo:+.4f}, {hi:+.4f}] "
            f"({confidence:.0%} CI) needs {rule}, n={comp.n}"
        )


def _log_trials(t: Trials | float, seeds: Sequence[int], what: str) -> Trials:
    t = _as_trials(t, seeds, what)
    bad = [v for v in t.values if not v > 0]
    if bad:
        raise ValueError(f"a ratio claim needs positive values; {what} ({t.name!r}) holds {bad[0]!r}")
    return Trials(t.name, t.seeds, [math.log(v) for v in t.values])


def _ratio_claim(statement: str, a: Trials, b: Trials | float, ratio: float, margin: float, within: float | None,
                 confidence: float) -> None:
    """claim(..., ratio=r): the paired log(a / b) must clear log(r); printed and recorded as multiples."""
    if within is not None or margin != 0.0:
        raise ValueError("pass either ratio= or margin=/within= to claim, not both")
    ratio = check_range("ratio", ratio, 0, low_open=True)
    if not isinstance(a, Trials):
        raise TypeError(f"a must be Trials (from run_trials), got {type(a).__name__}")
    comp = compare(_log_trials(a, a.seeds, "a"), _log_trials(b, a.seeds, "b"), confidence)
    if comp.n < MIN_SEEDS:
        raise ValueError(f"claim {statement!r} rests on {comp.n} seed(s); use at least {MIN_SEEDS}")
    lo, hi = comp.ci
    passed = lo > math.log(ratio)
    rule = f"lower end > {ratio:.3g}x"
    shown = (f"{comp.a} / {comp.b} = {math.exp(comp.mean):.3g}x [{math.exp(lo):.3g}x, {math.exp(hi):.3g}x] "
             f"({confidence:.0%} CI, geometric mean), larger on {comp.wins}/{comp.n} seeds")
    print(f"{'✓' if passed else '✗'} {statement}: {shown} — {rule}")
    _record(statement, comp, passed, lo - math.log(ratio), rule, scale="ratio")
    if not passed and _mode() == "assert":
        raise ClaimFailed(f"claim failed: {statement} — {shown} needs {rule}, n={comp.n}")


def _record(statement: str, comp: Comparison, passed: bool, slack: float, rule: str, scale: str = "difference") -> None:
    lo, hi = comp.ci
    mean = comp.mean
    if scale == "ratio":  # recorded as multiples; the slack stays in log units (log of lower end / bar)
        mean, lo, hi = math.exp(mean), math.exp(lo), math.exp(hi)
    record = {"claim": statement, "passed": bool(passed), "mean": mean, "lo": lo, "hi": hi, "n": comp.n,
              "wins": comp.wins, "slack": slack, "rule": rule, "scale": scale}
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display({CLAIMS_MIME: record}, raw=True)
    except ImportError:  # pragma: no cover - IPython ships with the notebooks' dependencies
        pass


def read_claims(notebook: Any) -> list[dict]:
    """Every claim recorded in an executed notebook (a path or an ``nbformat`` node), in order."""
    import json
    import pathlib

    import nbformat

    nb = nbformat.read(str(notebook), as_version=4) if isinstance(notebook, (str, pathlib.Path)) else notebook
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            value = out.get("data", {}).get(CLAIMS_MIME)
            if value is not None:
                found.append(json.loads(value) if isinstance(value, str) else dict(value))
    return found


def trials_table(rows: Mapping[str, Trials], digits: int = 3, header: str = "variant") -> str:
    """A small text table, one row per variant: ``mean ± sd (n)`` and the range over seeds.

    >>> print(trials_table({"a": Trials("a", [0, 1, 2], [0.5, 0.6, 0.7])}))
    variant  mean ± sd (n)      min    max
    a        0.600 ± 0.100 (3)  0.500  0.700
    """
    if not rows:
        raise ValueError("trials_table needs at least one row")
    digits = check_nonnegative_int(digits=digits)
    cells = [[header, "mean ± sd (n)", "min", "max"]]
    for name, t in rows.items():
        cells.append([str(name), format(t, f".{digits}f"), f"{min(t.values):.{digits}f}", f"{max(t.values):.{digits}f}"])
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)
