"""Statistical tests of a claim's parts across replicates, the decision rule, and how parts combine.

Every function returns a new `Test`; none changes its arguments.

Each part states, before any data, the smallest effect that would count as the paper's claim (`smallest`, in
the part's unit; for an equivalence, its margin). One decision rule for every test (`decide`), at one level:
- reproduced: the one-sided p < ALPHA in the claimed direction (after Holm across layers where a part holds
  at the worst of several): the effect is in the claimed direction and distinguishable from its null. For
  an equivalence (TOST), the effect lies within ±margin. A real effect in the claimed direction is never
  called anything else, however small beside the original's; the magnitude label says how it compares.
- not_reproduced: the data exclude the stated smallest effect from the null's side: a one-sided test that
  the effect falls short of `smallest` has p < ALPHA (`p_short`), which covers an effect shown in the
  opposite direction; for an equivalence, the effect lies outside ±margin. An effect at least as large as
  the stated one is called not reproduced at most ALPHA of the time.
- inconclusive: neither (the interval holds both the null and the stated effect), or nothing to test: a
  single replicate with no replicated cell to borrow a spread from, a layer the claim needs that was not
  trained, replicates that are all identical.
A claim of several parts holds when every part holds (`all_of`): an intersection-union test (Berger 1982),
each part at ALPHA, the claim's p the largest p of its parts. It is not reproduced when one part is. A part
that holds at *some* layer (BnB below base at the worst of n = 3..5) is Holm-corrected across those layers,
and is not reproduced only if every layer is not (`any_of`).

Confidence intervals are two-sided at LEVEL = 1 - 2 * ALPHA = 90%, and every decision is made at that one
level: each end of the interval is the one-sided 95% bound a decision uses, so for a single test the interval
and the verdict never disagree (reproduced: the end on the null's side excludes the null, or for an
equivalence the whole interval lies inside ±margin, as TOST at 0.05 requires; not reproduced: the far end
excludes the stated smallest effect, or the whole interval lies outside ±margin). Student t intervals on
the replicate values; Welch's for two samples. Holm adjusts the p-values across layers, not the intervals.
Replicates that are all equal (spread 0) give no test: a p of exactly 0 or 1 would claim a certainty no
finite study has, so such a test is inconclusive and says so. The replicates needed (80% power at the
observed spread for the stated smallest effect; for an equivalence, to show it when the truth is 0) are
reported, not used to decide (repro.stats.power).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import special

from repro.format import p_phrase, signed
from repro.stats.power import ALPHA, MAX_REPLICATES, replicates_needed
from repro.stats.samples import Sample, Spread

LEVEL = 1 - 2 * ALPHA  # two-sided confidence intervals whose ends are the one-sided bounds the tests use
MARGIN = 2.0  # equivalence margin, % of the base's accuracy over chance (see early_layer_generality)
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
DIRECTIONS = ("less", "greater", "equivalent")
_POWER_ANALYSIS = [True]


@contextlib.contextmanager
def without_power_analysis():
    """Leave the replicates needed uncomputed (None) inside the block: the verdicts never use them, and the
    calibration's thousands of simulated studies need only the verdicts."""
    _POWER_ANALYSIS[0] = False
    try:
        yield
    finally:
        _POWER_ANALYSIS[0] = True


@dataclass(frozen=True)
class Test:
    """One statistical test of a part of a claim (or a combination of parts), and its verdict."""

    __test__ = False  # not a pytest test class

    name: str  # what it tests, in words: 'AnB n=7 below base'
    direction: str  # 'less' | 'greater' | 'equivalent' (effect against null), or 'all' | 'any' (combinations)
    unit: str = "%"
    null: float = 0.0
    margin: float | None = None  # equivalence: |effect| < margin
    smallest: float | None = None  # the smallest effect that counts as the claim, stated before the data
    effect: float = math.nan  # mean over replicates (a - b for two samples)
    ci: tuple[float, float] = (math.nan, math.nan)
    p: float = math.nan  # after correction (Holm inside `any_of`)
    p_raw: float = math.nan
    p_short: float = math.nan  # p that the effect falls short of the stated smallest effect
    replicates: int = 0
    needed: int | None = None
    sd: float = math.nan
    paper_effect: float | None = None
    verdict: str = "inconclusive"
    why: str = ""
    notes: tuple[str, ...] = ()
    parts: tuple["Test", ...] = ()
    reported: str = ""  # combinations: the name of the part whose effect and CI this test reports
    values: tuple[float, ...] = ()  # replicate values (first sample)
    other: tuple[float, ...] | None = None  # second sample of a two-sample test
    borrowed: str = ""  # where the spread came from, when a single replicate borrowed it

    @property
    def where(self) -> str:
        """The replicates behind the test, in words."""
        if self.other is not None:
            return f"{len(self.values)} and {len(self.other)} replicates"
        return f"{self.replicates} replicate{'s' if self.replicates != 1 else ''}"

    @property
    def stated(self) -> str:
        """The effect this part tests for, in words: what was stated before the data."""
        if self.direction == "equivalent":
            return f"within ±{self.margin:g} {self.unit}"
        if self.smallest is None:
            return ""
        return f"{'below' if self.direction == 'less' else 'above'} {signed(self.null)} {self.unit}, at least " \
               f"{signed(self.smallest)}"

    def part(self, name: str) -> "Test":
        """This test or one of its parts, at any depth, by name."""
        if self.name == name:
            return self
        for part in self.parts:
            try:
                return part.part(name)
            except KeyError:
                pass
        raise KeyError(f"{self.name!r} has no part named {name!r}")

    def leaves(self) -> list["Test"]:
        return [leaf for part in self.parts for leaf in part.leaves()] if self.parts else [self]

    def all_notes(self) -> list[str]:
        return list(self.notes) + [n for part in self.parts for n in part.all_notes()]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "direction", "unit", "null", "margin", "smallest", "effect", "p",
                                           "p_raw", "p_short", "replicates", "needed", "sd", "paper_effect",
                                           "verdict", "why", "reported", "borrowed")}
        d["values"] = list(self.values)
        d["other"] = None if self.other is None else list(self.other)
        d["ci"] = list(self.ci)
        d["parts"] = [p.to_dict() for p in self.parts]
        return d

    def effects_by_name(self) -> dict[str, float]:
        """Every test's effect by name (used to look up the original study's effect of the same test)."""
        out = {self.name: self.effect}
        for part in self.parts:
            out.update(part.effects_by_name())
        return out


def untestable(name: str, why: str, direction: str = "less", unit: str = "%", effect: float = math.nan,
               paper_effect: float | None = None, smallest: float | None = None,
               margin: float | None = None) -> Test:
    """A part that cannot be tested (a layer not trained, no networks): inconclusive, saying why."""
    return Test(name, direction, unit=unit, effect=effect, paper_effect=paper_effect, why=why, smallest=smallest,
                margin=margin)


def _p_less(mean: float, bound: float, se: float, df: float) -> float:  # H1: mean < bound
    if not se > 0:
        raise ValueError("a t-test needs a positive standard error (identical replicates are caught before)")
    return float(special.stdtr(df, (mean - bound) / se))


def _p_greater(mean: float, bound: float, se: float, df: float) -> float:  # H1: mean > bound
    if not se > 0:
        raise ValueError("a t-test needs a positive standard error (identical replicates are caught before)")
    return float(special.stdtr(df, -(mean - bound) / se))


def p_value(mean: float, se: float, df: float, direction: str, null: float, margin: float | None) -> float:
    """One-sided p in the claimed direction; for an equivalence, TOST (both one-sided tests must reject)."""
    if direction == "less":
        return _p_less(mean, null, se, df)
    if direction == "greater":
        return _p_greater(mean, null, se, df)
    return max(_p_greater(mean, -margin, se, df), _p_less(mean, margin, se, df))


def p_short(mean: float, se: float, df: float, direction: str, margin: float | None, smallest: float) -> float:
    """p that the effect falls short of the stated smallest effect (from the null's side, or beyond it): below
    ALPHA exactly when the 90% interval excludes it. For an equivalence, p that the effect lies outside
    ±margin: below ALPHA exactly when the whole 90% interval lies outside."""
    if direction == "equivalent":
        return min(_p_greater(mean, margin, se, df), _p_less(mean, -margin, se, df))
    return _p_greater(mean, smallest, se, df) if direction == "less" else _p_less(mean, smallest, se, df)


def _p(p: float) -> str:
    return p_phrase(p) or "no p"


def decide(test: Test) -> Test:
    """The test with its verdict and reason, by the decision rule (module docstring), from p and p_short."""
    if not math.isfinite(test.p):
        return test  # untestable: verdict inconclusive, `why` already says why
    lo, hi, where = test.ci[0], test.ci[1], test.where
    if test.borrowed:
        where += ", with a spread borrowed from the table's replicated cells"
    interval = f"{signed(test.effect)} {test.unit}, {LEVEL:.0%} CI [{signed(lo)}, {signed(hi)}]"
    if test.p < ALPHA:
        bound = "" if test.p < 0.001 else f" < {ALPHA}"
        return replace(test, verdict="reproduced", why=f"{interval}, {_p(test.p)}{bound} with {where}")
    if test.p_short < ALPHA:
        if test.direction == "equivalent":
            against = f"lies outside ±{test.margin:g} {test.unit}"
        elif (lo > test.null) if test.direction == "less" else (hi < test.null):  # the whole interval
            against = f"lies on the wrong side of {signed(test.null)}"
        else:
            against = f"excludes the stated smallest effect, {signed(test.smallest)} {test.unit}"
        return replace(test, verdict="not_reproduced", why=f"{interval}, {against} (with {where})")
    if test.needed is not None:
        need = f"{test.needed} would detect the stated effect at this spread (80% power)"
    elif not (math.isfinite(test.sd) and test.sd > 0):
        need = "the spread is zero, so the replicates needed cannot be computed"
    else:
        need = f"more than {MAX_REPLICATES} would be needed to detect the stated effect at this spread"
    holds = (f"holds both ±{test.margin:g} and values outside" if test.direction == "equivalent" else
             f"holds both {signed(test.null)} and the stated smallest effect, {signed(test.smallest)}")
    return replace(test, verdict="inconclusive",
                   why=f"{interval} {holds} ({_p(test.p)} with {where}); {need}")


def _finish(test: Test, sd: float, se: float, df: float, groups: tuple[int, ...]) -> Test:
    """CI, p, p_short, replicates needed, verdict of a test whose effect, sd, standard error and df are known.
    `groups`: the replicates of each sample (one for a one-sample test), for the power analysis."""
    half = float(special.stdtrit(df, 0.5 + LEVEL / 2)) * se
    p = p_value(test.effect, se, df, test.direction, test.null, test.margin)
    short = p_short(test.effect, se, df, test.direction, test.margin, test.smallest)
    needed = replicates_needed(test.direction, test.null, test.smallest, test.margin, sd,
                               two_sample=len(groups) == 2) if _POWER_ANALYSIS[0] else None
    return decide(replace(test, sd=sd, ci=(test.effect - half, test.effect + half), p=p, p_raw=p, p_short=short,
                          needed=needed))


def _borrowed_notes(spread: Spread) -> tuple[str, ...]:
    """The same words for every test that borrowed a spread, one per source, so the explanation says each once."""
    return tuple(f"single replicates tested with a borrowed seed-to-seed spread: {s}" for s in spread.sources)


ROUNDING = 1e-9  # a spread below this (in the unit of the test) is rounding: the replicates are identical


def _identical(sd: float, mean: float) -> bool:
    return sd <= ROUNDING * max(1.0, abs(mean))


IDENTICAL = ("the {k} replicates are identical (spread 0), so no t-test is possible: a p of 0 or 1 would claim "
             "a certainty no finite study has (were the same networks counted twice?)")


def _stated(direction: str, margin: float | None, smallest: float | None, null: float) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "equivalent":
        if not margin:
            raise ValueError("an equivalence test needs a positive margin")
        return
    if smallest is None:
        raise ValueError("a one-sided test needs the smallest effect that counts as the claim (stated before data)")
    if (smallest > null) if direction == "less" else (smallest < null):
        raise ValueError(f"the smallest effect {smallest:g} must lie on the claimed side of the null {null:g}")


def one_sample(name: str, sample: Sample, direction: str, *, null: float = 0.0, margin: float | None = None,
               smallest: float | None = None, paper_effect: float | None = None, unit: str = "%",
               spread: Spread | None = None) -> Test:
    """One-sided t-test of the replicate values against `null` ('less'/'greater'), or TOST within ±margin;
    `smallest`: the stated smallest effect of a one-sided test (the module docstring says what it decides).

    A single replicate is tested with `spread` (repro.stats.samples.table_spread), if given.
    """
    _stated(direction, margin, smallest, null)
    test = Test(name, direction, unit=unit, null=null, margin=margin, smallest=smallest, paper_effect=paper_effect)
    values = np.array([v for v in sample.values.values() if math.isfinite(v)], dtype=float)
    test = replace(test, values=tuple(float(v) for v in values), replicates=len(values))
    if len(values) == 0:
        return replace(test, why="no networks of this comparison in the table")
    test = replace(test, effect=float(np.mean(values)))
    k = len(values)
    if k < 2:
        if spread is None:
            return replace(test, why="only 1 replicate (one independent split or initialisation), and no "
                                     "replicated cell in the table to borrow a spread from: no test is possible")
        return _finish(replace(test, borrowed=spread.source, notes=test.notes + _borrowed_notes(spread)),
                       spread.sd, spread.sd, spread.df, (1,))
    sd = float(np.std(values, ddof=1))
    if _identical(sd, test.effect):
        return replace(test, sd=0.0, why=IDENTICAL.format(k=k))
    return _finish(test, sd, sd / math.sqrt(k), k - 1, (k,))


def two_sample(name: str, a: Sample, b: Sample, direction: str, *, smallest: float,
               paper_effect: float | None = None, unit: str = "%", spread: Spread | None = None) -> Test:
    """Welch's two-sample t-test of mean(a) - mean(b) against 0, one-sided: each group keeps its own spread
    (one natural/man-made split against several random ones need not share a spread), with the
    Welch-Satterthwaite degrees of freedom; `smallest`: the stated smallest difference.

    A side with a single replicate takes `spread` (repro.stats.samples.table_spread) and its degrees of
    freedom in place of its own. Replicates used and needed are per group (the smaller group).
    """
    if direction not in ("less", "greater"):
        raise ValueError(f"a two-sample test here is one-sided: 'less' or 'greater', got {direction!r}")
    _stated(direction, None, smallest, 0.0)
    test = Test(name, direction, unit=unit, smallest=smallest, paper_effect=paper_effect)
    xa = np.array([v for v in a.values.values() if math.isfinite(v)], dtype=float)
    xb = np.array([v for v in b.values.values() if math.isfinite(v)], dtype=float)
    test = replace(test, values=tuple(float(v) for v in xa), other=tuple(float(v) for v in xb),
                   replicates=min(len(xa), len(xb)))
    if len(xa) == 0 or len(xb) == 0:
        return replace(test, why="one side of the comparison has no networks in the table")
    test = replace(test, effect=float(np.mean(xa) - np.mean(xb)))
    sides = []  # (variance of the mean, degrees of freedom) of each side
    for x in (xa, xb):
        if len(x) >= 2:
            sd = float(np.std(x, ddof=1))
            if _identical(sd, float(np.mean(x))):
                return replace(test, sd=0.0, why=IDENTICAL.format(k=len(x)))
            sides.append((sd ** 2 / len(x), len(x) - 1))
        elif spread is None:
            return replace(test, why="a side has only 1 replicate, and no replicated cell in the table to borrow a "
                                     "spread from: no test is possible")
        else:
            sides.append((spread.sd ** 2, spread.df))
    if min(len(xa), len(xb)) < 2:
        test = replace(test, borrowed=spread.source, notes=test.notes + _borrowed_notes(spread))
    var = sides[0][0] + sides[1][0]
    df = var ** 2 / sum(v ** 2 / d for v, d in sides)  # Welch-Satterthwaite
    sd = math.sqrt(var / (1 / len(xa) + 1 / len(xb)))  # the spread a per-group power analysis would assume
    return _finish(test, sd, math.sqrt(var), df, (len(xa), len(xb)))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (as statsmodels' multipletests(method='holm'), which would also
    run a full garbage collection on every call: too slow for the calibration's thousands of studies)."""
    p = np.asarray(pvalues, dtype=float)
    if len(p) == 0:
        return []
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def _verdict_of(kind: str, parts) -> str:
    verdicts = [t.verdict for t in parts]
    if kind == "all":
        if all(v == "reproduced" for v in verdicts):
            return "reproduced"
        return "not_reproduced" if "not_reproduced" in verdicts else "inconclusive"
    if "reproduced" in verdicts:
        return "reproduced"
    return "not_reproduced" if all(v == "not_reproduced" for v in verdicts) else "inconclusive"


def _combined(name: str, kind: str, parts: tuple[Test, ...], chosen: Test, p: float) -> Test:
    """A combination of parts. Replicates needed: every part of an `all_of` must hold, so the most any part
    needs (None if any part's is unknown); one part of an `any_of` suffices, so the fewest any part needs."""
    needs = [t.needed for t in parts]
    if kind == "all":
        needed = None if any(n is None for n in needs) else max(needs)
    else:
        needed = min((n for n in needs if n is not None), default=None)
    shorts = [t.p_short for t in parts if math.isfinite(t.p_short)]
    short = (min(shorts) if kind == "all" else max(shorts)) if shorts else math.nan
    if kind == "any" and len(shorts) < len(parts):
        short = math.nan  # an untestable layer cannot be said to fail
    verdict = _verdict_of(kind, parts)
    why = chosen.why
    if verdict != "reproduced":
        first = next((t for t in parts if t.verdict == verdict), chosen)
        why = first.why
    return Test(name, kind, unit=chosen.unit, effect=chosen.effect, ci=chosen.ci, p=p, p_raw=p, p_short=short,
                replicates=min(t.replicates for t in parts), paper_effect=chosen.paper_effect, needed=needed,
                smallest=chosen.smallest, parts=parts, why=why, reported=chosen.name, verdict=verdict)


def all_of(name: str, parts: list[Test]) -> Test:
    """Every part must hold (intersection-union test): p = the largest p; reported effect = the weakest part.
    Not reproduced when any part is (each at the one level of the intervals: see the module docstring)."""
    if not parts:
        raise ValueError(f"{name}: a combination needs at least one part")
    parts = tuple(parts)
    weakest = max(parts, key=lambda t: t.p if math.isfinite(t.p) else math.inf)
    p = max((t.p for t in parts), key=lambda x: x if math.isfinite(x) else math.inf)
    return _combined(name, "all", parts, weakest, p)


def any_of(name: str, parts: list[Test]) -> Test:
    """At least one part must hold: Holm-corrected across the parts; reported = the part with the smallest p.

    Returns new parts with Holm-adjusted p-values (raw ones in `p_raw`), re-decided; their replicates needed
    stay those of the uncorrected test (a slight underestimate).
    """
    if not parts:
        raise ValueError(f"{name}: a combination needs at least one part")
    testable = [i for i, t in enumerate(parts) if math.isfinite(t.p_raw)]
    adjusted = dict(zip(testable, holm([parts[i].p_raw for i in testable])))
    parts = tuple(decide(replace(t, p=float(adjusted[i]))) if i in adjusted else t for i, t in enumerate(parts))
    if testable:
        chosen = min((parts[i] for i in testable), key=lambda t: t.p)
    else:  # nothing testable: report the most extreme effect in the claimed direction
        sign = -1.0 if parts[0].direction == "less" else 1.0
        chosen = max(parts, key=lambda t: sign * t.effect if math.isfinite(t.effect) else -math.inf)
    return _combined(name, "any", parts, chosen, chosen.p)


def bootstrap_ci(values, other=None, level: float = LEVEL, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (or of mean(values) - mean(other), resampled independently)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or (other is not None and len(other) < 1):
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    stat = x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)
    if other is not None:
        y = np.asarray(other, dtype=float)
        stat = stat - y[rng.integers(0, len(y), (resamples, len(y)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return (float(np.percentile(stat, tail)), float(np.percentile(stat, 100 - tail)))
