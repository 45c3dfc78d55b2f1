"""Statistics for the claims: paired tests by replicate, equivalence, Holm, bootstrap, power; and `Verdict`.

Unit of replication. A replicate is one independent split ('random:<seed>') or initialisation. The networks
of one replicate (several n, both directions of one split) share their split and base networks, so they are
not independent: they are averaged into one value per replicate (`by_replicate`, `slope_by_replicate`) and
the tests run across replicates. On the original study this gives 4 replicates for the random splits and 1
for the natural/man-made split and for the random-feature control.

Effects are relative to the base network of the treatment's own target half, in percentage points
(100 * (top1 - base)) or in relative % (100 * (top1 - base) / base). The claims test the relative %, so that a
CPU-scale study and the paper can be set side by side; details carry the points too.

One decision rule for every test (`decide`):
- reproduced: the (corrected) one-sided p < ALPHA in the paper's direction.
- not_reproduced: the 95% CI lies entirely on the wrong side of the null (the effect is significantly the
  other way), or the study had at least the replicates needed to detect the original study's own effect with
  80% power at the spread observed here and still did not reach p < ALPHA.
- inconclusive: otherwise: too few replicates for the spread, a single replicate (no spread, so no test), a
  layer the claim needs that was not trained, or diverged networks (below).
A claim of several parts holds when every part holds. That is an intersection-union test (Berger 1982): each
part is tested at ALPHA and the claim's p is the largest p of its parts, with no correction needed for the
conjunction; one part not reproduced makes the claim not reproduced (`all_of`). A part that holds at *some*
layer (BnB below base at the worst of n = 3..5) is Holm-corrected across those layers (`any_of`).

Confidence intervals are Student t intervals on the replicate values, the interval the t-test inverts, so the
CI and the p-value never disagree. A percentile bootstrap (fixed seed, so verdicts are deterministic) of the
headline effect goes into the verdict's details beside it: with 2-5 replicates a bootstrap has too few
distinct resamples and comes out too narrow to decide with.

Divergence, after MLPerf (`resolve_divergence`): within one comparison, one diverged network counts as the
worst outcome, i.e. its replicate's value is replaced by the value among the other replicates that is least
favourable to the claim (the highest for a claimed drop, the lowest for a claimed gain, the farthest from zero
for an equivalence), so that a diverged run can never help a claim (replacing it by the *lowest* value would
help every claimed drop); two or more diverged networks make that comparison inconclusive. The verdict's
explanation says so.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats as sps
from statsmodels.stats.power import TTestIndPower, ttest_power

VERDICTS = ("reproduced", "not_reproduced", "inconclusive")
ALPHA = 0.05  # one-sided, in the paper's direction
LEVEL = 0.95  # confidence intervals
POWER = 0.8  # for the replicates needed
MARGIN = 2.0  # equivalence / non-inferiority margin, % of the base's top-1 (see early_layer_generality)
MAX_REPLICATES = 100  # replicates needed beyond this are reported as not computable (None)
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
DIRECTIONS = ("less", "greater", "equivalent")


@dataclass
class Verdict:
    claim: str  # claim id, e.g. 'coadaptation_dip'
    verdict: str  # one of VERDICTS
    effect: float  # the claim's headline effect, relative to the base of the target half
    unit: str  # 'points' (percentage points of top-1) or '%' (relative)
    ci: tuple[float, float]  # 95% confidence interval of the effect
    p: float  # p-value after correction
    paper_effect: float | None  # the same effect measured on the original study's numbers
    replicates: int  # replicates (independent pairs) used
    replicates_needed: int | None  # for 80% power at the observed spread
    explanation: str  # one sentence
    evidence: str = ""  # 'original', 'smoke', 'cpu', ...
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


# ---------------------------------------------------------------------------------------------------------
# Replicate values


@dataclass
class Sample:
    """One value per replicate, and the diverged networks behind each replicate's value."""

    values: dict[int, float]
    diverged: dict[int, set] = field(default_factory=dict)  # replicate -> identities of diverged networks

    def __len__(self):
        return len(self.values)

    def mean(self) -> float:
        """Mean over replicates (nan when empty): the number a figure or a detail reports."""
        return _mean(list(self.values.values())) if self.values else math.nan


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _identity(row) -> tuple:
    return (row.split, row.replicate, row.target, row.treatment, row.n)


def _diverged_by_replicate(pairs) -> dict[int, set]:
    out: dict[int, set] = {}
    for p in pairs:
        for row in (p.row, p.base):
            if row.diverged:
                out.setdefault(p.row.replicate, set()).add(_identity(row))
    return out


def by_replicate(pairs, value: str = "relative") -> Sample:
    """The mean effect ('relative' % or 'points') of each replicate, over its targets and layers."""
    pairs = list(pairs)
    groups: dict[int, list[float]] = {}
    for p in pairs:
        groups.setdefault(p.row.replicate, []).append(getattr(p, value))
    return Sample({r: _mean(v) for r, v in sorted(groups.items())}, _diverged_by_replicate(pairs))


def slope_by_replicate(pairs, value: str = "relative") -> Sample:
    """Per replicate, the least-squares slope of the effect on n (mean over targets at each n first)."""
    pairs = list(pairs)
    groups: dict[int, dict[int, list[float]]] = {}
    for p in pairs:
        groups.setdefault(p.row.replicate, {}).setdefault(p.row.n, []).append(getattr(p, value))
    slopes = {}
    for r, by_n in sorted(groups.items()):
        if len(by_n) >= 2:
            ns = np.array(sorted(by_n), dtype=float)
            ys = np.array([_mean(by_n[n]) for n in sorted(by_n)])
            slopes[r] = float(np.polyfit(ns, ys, 1)[0]) if np.all(np.isfinite(ys)) else math.nan
    return Sample(slopes, {r: s for r, s in _diverged_by_replicate(pairs).items() if r in slopes})


def difference(a: Sample, b: Sample) -> Sample:
    """a - b for the replicates both hold (paired by replicate)."""
    common = sorted(set(a.values) & set(b.values))
    diverged = {r: a.diverged.get(r, set()) | b.diverged.get(r, set()) for r in common}
    return Sample({r: a.values[r] - b.values[r] for r in common}, {r: s for r, s in diverged.items() if s})


def _worst(values: list[float], direction: str) -> float:
    """The value least favourable to a claim of this direction."""
    if direction == "less":
        return max(values)
    if direction == "greater":
        return min(values)
    return max(values, key=abs)


def resolve_divergence(sample: Sample, direction: str) -> tuple[np.ndarray, str, str]:
    """The replicate values after the divergence rule: (values, note for the explanation, problem or '')."""
    diverged = set().union(*sample.diverged.values()) if sample.diverged else set()
    values = dict(sample.values)
    if not diverged:
        return np.array(list(values.values()), dtype=float), "", ""
    if len(diverged) >= 2:
        return np.array([]), "", (f"{len(diverged)} diverged networks in this comparison, and more than one "
                                  f"invalidates it (MLPerf rule)")
    (replicate,) = [r for r, s in sample.diverged.items() if s]
    others = [v for r, v in values.items() if r != replicate and math.isfinite(v)]
    if not others:
        return np.array([]), "", "its only replicate holds a diverged network"
    values[replicate] = _worst(others, direction)
    note = (f"one diverged network (replicate {replicate}) counted as the worst of the other replicates "
            f"({values[replicate]:+.2f})")
    return np.array(list(values.values()), dtype=float), note, ""


# ---------------------------------------------------------------------------------------------------------
# Tests


@dataclass
class Test:
    """One statistical test of a part of a claim (or a combination of parts), and its verdict."""

    __test__ = False  # not a pytest test class

    name: str  # what it tests, in words: 'AnB n=7 below base'
    direction: str  # 'less' | 'greater' | 'equivalent' (effect against null), or 'all' | 'any' (combinations)
    unit: str = "%"
    null: float = 0.0
    margin: float | None = None  # equivalence: |effect| < margin
    effect: float = math.nan  # mean over replicates (a - b for two samples)
    ci: tuple[float, float] = (math.nan, math.nan)
    p: float = math.nan  # after correction (Holm inside `any_of`)
    p_raw: float = math.nan
    replicates: int = 0
    needed: int | None = None
    sd: float = math.nan
    paper_effect: float | None = None
    verdict: str = "inconclusive"
    why: str = ""
    notes: list[str] = field(default_factory=list)
    parts: list["Test"] = field(default_factory=list)
    reported: str = ""  # combinations: the name of the part whose effect and CI this test reports
    values: list[float] = field(default_factory=list)  # replicate values (first sample)
    other: list[float] | None = None  # second sample of a two-sample test

    @property
    def where(self) -> str:
        """The replicates behind the test, in words."""
        if self.other is not None:
            return f"{len(self.values)} and {len(self.other)} replicates"
        return f"{self.replicates} replicate{'s' if self.replicates != 1 else ''}"

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
        return self.notes + [n for part in self.parts for n in part.all_notes()]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("name", "direction", "unit", "null", "margin", "effect", "p", "p_raw",
                                           "replicates", "needed", "sd", "paper_effect", "verdict", "why",
                                           "reported", "values", "other")}
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
               paper_effect: float | None = None) -> Test:
    """A part that cannot be tested (a layer not trained, no networks): inconclusive, saying why."""
    return Test(name, direction, unit=unit, effect=effect, paper_effect=paper_effect, why=why)


def _p_value(mean: float, se: float, df: int, direction: str, null: float, margin: float | None) -> float:
    def p_less(bound):  # H1: mean < bound
        if se == 0:
            return 0.0 if mean < bound else 1.0
        return float(sps.t.cdf((mean - bound) / se, df))

    def p_greater(bound):  # H1: mean > bound
        if se == 0:
            return 0.0 if mean > bound else 1.0
        return float(sps.t.sf((mean - bound) / se, df))

    if direction == "less":
        return p_less(null)
    if direction == "greater":
        return p_greater(null)
    return max(p_greater(-margin), p_less(margin))  # TOST: both one-sided tests must reject


def _distance_to_null(effect: float, direction: str, null: float, margin: float | None) -> float:
    """How far an effect lies inside the claimed region (positive) or outside it (negative)."""
    if direction == "less":
        return null - effect
    if direction == "greater":
        return effect - null
    return margin - abs(effect)


def replicates_needed(delta: float, sd: float, two_sample: bool = False, alpha: float = ALPHA,
                      power: float = POWER, cap: int = MAX_REPLICATES) -> int | None:
    """Replicates for `power` of a one-sided t-test of an effect `delta` inside the claimed region at spread `sd`.

    Two samples: replicates per group, equal groups. None when not computable: no spread (sd 0 or undefined),
    an effect not in the claimed direction (delta <= 0, no number of replicates finds it), or more than `cap`.
    For an equivalence, `delta` is the distance to the nearer margin, and the power is that of the one-sided
    test against it (the other side's test has more power).
    """
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0 or delta <= 0:
        return None
    ks = np.arange(2, cap + 1)
    if two_sample:
        achieved = TTestIndPower().power(delta / sd, nobs1=ks, alpha=alpha, ratio=1.0, alternative="larger")
    else:
        achieved = ttest_power(delta / sd, nobs=ks, alpha=alpha, alternative="larger")
    hits = np.nonzero(np.asarray(achieved) >= power)[0]
    return int(ks[hits[0]]) if len(hits) else None


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:+.2f}"


def _fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def decide(test: Test) -> Test:
    """Apply the decision rule (module docstring) to a test whose p, CI, replicates and needed are set."""
    if not math.isfinite(test.p):
        return test  # untestable: verdict inconclusive, `why` already says why
    k, lo, hi, where = test.replicates, test.ci[0], test.ci[1], test.where
    if test.direction == "less":
        wrong_side, boundary = lo > test.null, f"{test.null:+g}"
    elif test.direction == "greater":
        wrong_side, boundary = hi < test.null, f"{test.null:+g}"
    else:
        wrong_side, boundary = lo > test.margin or hi < -test.margin, f"±{test.margin:g}"
    if test.p < ALPHA:
        test.verdict, test.why = "reproduced", f"p = {_fmt_p(test.p)} < {ALPHA} with {where}"
    elif wrong_side:
        test.verdict = "not_reproduced"
        test.why = f"the 95% CI [{_fmt(lo)}, {_fmt(hi)}] lies entirely on the wrong side of {boundary}"
    elif test.needed is not None and k >= test.needed:
        test.verdict = "not_reproduced"
        test.why = (f"p = {_fmt_p(test.p)} with {where}, at least the {test.needed} needed to detect the original "
                    f"study's effect ({_fmt(test.paper_effect)} {test.unit}) at this spread")
    else:
        test.verdict = "inconclusive"
        if test.needed is not None:
            need = f"{test.needed} are needed to detect the original study's effect at this spread"
        elif test.paper_effect is None:
            need = "the original study's effect is not known, so the replicates needed are not either"
        elif not (math.isfinite(test.sd) and test.sd > 0):
            need = "the spread is zero, so the replicates needed cannot be computed"
        elif _distance_to_null(test.paper_effect, test.direction, test.null, test.margin) <= 0:
            need = "the original study's own effect is not in the claimed direction"
        else:
            need = f"more than {MAX_REPLICATES} would be needed to detect the original study's effect"
        test.why = f"p = {_fmt_p(test.p)} with {where}; {need}"
    return test


def one_sample(name: str, sample: Sample, direction: str, *, null: float = 0.0, margin: float | None = None,
               paper_effect: float | None = None, unit: str = "%") -> Test:
    """One-sided t-test of the replicate values against `null` ('less'/'greater'), or TOST within ±margin."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "equivalent" and not margin:
        raise ValueError("an equivalence test needs a positive margin")
    test = Test(name, direction, unit=unit, null=null, margin=margin, paper_effect=paper_effect)
    values, note, problem = resolve_divergence(sample, direction)
    test.notes = [f"{name}: {note}"] if note else []
    values = values[np.isfinite(values)] if len(values) else values
    test.values, test.replicates = [float(v) for v in values], len(values)
    if problem or len(values) == 0:
        test.why = problem or "no networks of this comparison in the table"
        return test
    test.effect = float(np.mean(values))
    if len(values) < 2:
        test.why = ("only 1 replicate (one independent split or initialisation): no spread to test against, "
                    "so no test is possible")
        return test
    k = len(values)
    test.sd = float(np.std(values, ddof=1))
    se = test.sd / math.sqrt(k)
    half = float(sps.t.ppf(0.5 + LEVEL / 2, k - 1)) * se
    test.ci = (test.effect - half, test.effect + half)
    test.p = test.p_raw = _p_value(test.effect, se, k - 1, direction, null, margin)
    if paper_effect is not None:
        test.needed = replicates_needed(_distance_to_null(paper_effect, direction, null, margin), test.sd)
    return decide(test)


def two_sample(name: str, a: Sample, b: Sample, direction: str, *, paper_effect: float | None = None,
               unit: str = "%") -> Test:
    """Student's two-sample t-test (pooled spread) of mean(a) - mean(b) against 0, one-sided.

    Pooled rather than Welch: the two samples are networks of the same recipe, and pooling still gives a test
    when one side has a single replicate (the original natural/man-made split), assuming its spread is that
    of the other side. Replicates used and needed are per group (the smaller group).
    """
    if direction not in ("less", "greater"):
        raise ValueError(f"a two-sample test here is one-sided: 'less' or 'greater', got {direction!r}")
    opposite = "greater" if direction == "less" else "less"
    test = Test(name, direction, unit=unit, paper_effect=paper_effect)
    xa, note_a, problem_a = resolve_divergence(a, direction)
    xb, note_b, problem_b = resolve_divergence(b, opposite)
    diverged = len(set().union(*a.diverged.values(), *b.diverged.values()))
    test.notes = [f"{name}: {n}" for n in (note_a, note_b) if n]
    xa = xa[np.isfinite(xa)] if len(xa) else xa
    xb = xb[np.isfinite(xb)] if len(xb) else xb
    test.values, test.other = [float(v) for v in xa], [float(v) for v in xb]
    test.replicates = min(len(xa), len(xb))
    if diverged >= 2:
        test.why = f"{diverged} diverged networks in this comparison, and more than one invalidates it (MLPerf rule)"
        return test
    if problem_a or problem_b or len(xa) == 0 or len(xb) == 0:
        test.why = problem_a or problem_b or "one side of the comparison has no networks in the table"
        return test
    test.effect = float(np.mean(xa) - np.mean(xb))
    df = len(xa) + len(xb) - 2
    if df < 1:
        test.why = "only 1 replicate on each side: no spread to test against, so no test is possible"
        return test
    pooled = (np.sum((xa - xa.mean()) ** 2) + np.sum((xb - xb.mean()) ** 2)) / df
    test.sd = float(math.sqrt(pooled))
    se = test.sd * math.sqrt(1 / len(xa) + 1 / len(xb))
    half = float(sps.t.ppf(0.5 + LEVEL / 2, df)) * se
    test.ci = (test.effect - half, test.effect + half)
    test.p = test.p_raw = _p_value(test.effect, se, df, direction, 0.0, None)
    if paper_effect is not None:
        test.needed = replicates_needed(_distance_to_null(paper_effect, direction, 0.0, None), test.sd,
                                        two_sample=True)
    return decide(test)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (as statsmodels' multipletests(method='holm'), which would also
    run a full garbage collection on every call: too slow for the calibration's thousands of studies)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    m = len(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


def _combined(name: str, kind: str, parts: list[Test], chosen: Test, p: float) -> Test:
    """A combination of parts. Replicates needed: every part of an `all_of` must hold, so the most any part
    needs (None if any part's is unknown); one part of an `any_of` suffices, so the fewest any part needs."""
    needs = [t.needed for t in parts]
    if kind == "all":
        needed = None if any(n is None for n in needs) else max(needs)
    else:
        needed = min((n for n in needs if n is not None), default=None)
    return Test(name, kind, unit=chosen.unit, effect=chosen.effect, ci=chosen.ci, p=p, p_raw=p,
                replicates=min(t.replicates for t in parts), paper_effect=chosen.paper_effect, needed=needed,
                parts=parts, why=chosen.why, reported=chosen.name)


def all_of(name: str, parts: list[Test]) -> Test:
    """Every part must hold (intersection-union test): p = the largest p; reported effect = the weakest part."""
    if not parts:
        raise ValueError(f"{name}: a combination needs at least one part")
    weakest = max(parts, key=lambda t: t.p if math.isfinite(t.p) else math.inf)
    p = max((t.p for t in parts), key=lambda x: x if math.isfinite(x) else math.inf)
    test = _combined(name, "all", parts, weakest, p)
    if all(t.verdict == "reproduced" for t in parts):
        test.verdict = "reproduced"
    else:
        failed = [t for t in parts if t.verdict == "not_reproduced"]
        test.verdict = "not_reproduced" if failed else "inconclusive"
        first = (failed or [t for t in parts if t.verdict == "inconclusive"])[0]
        test.why = first.why
    return test


def any_of(name: str, parts: list[Test]) -> Test:
    """At least one part must hold: Holm-corrected across the parts; reported = the part with the smallest p.

    The parts' p-values are replaced by Holm-adjusted ones (raw ones stay in `p_raw`) and re-decided; their
    replicates needed stay those of the uncorrected test (a slight underestimate).
    """
    if not parts:
        raise ValueError(f"{name}: a combination needs at least one part")
    testable = [t for t in parts if math.isfinite(t.p_raw)]
    if testable:
        adjusted = holm([t.p_raw for t in testable])
        for t, p in zip(testable, adjusted):
            t.p = float(p)
            decide(t)
        chosen = min(testable, key=lambda t: t.p)
    else:  # nothing testable: report the most extreme effect in the claimed direction
        sign = -1.0 if parts[0].direction == "less" else 1.0
        chosen = max(parts, key=lambda t: sign * t.effect if math.isfinite(t.effect) else -math.inf)
    test = _combined(name, "any", parts, chosen, chosen.p)
    if any(t.verdict == "reproduced" for t in parts):
        test.verdict = "reproduced"
    elif all(t.verdict == "not_reproduced" for t in parts):
        test.verdict = "not_reproduced"
    else:
        test.verdict = "inconclusive"
    return test


# ---------------------------------------------------------------------------------------------------------
# Bootstrap and the verdict


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


def _first(test: Test, verdict: str) -> Test:
    """The first leaf with this verdict (depth first): the part that explains the claim's verdict."""
    for leaf in test.leaves():
        if leaf.verdict == verdict:
            return leaf
    return test


def explain(root: Test, headline: Test) -> str:
    """One sentence: why the claim got its verdict."""
    notes = root.all_notes()
    tail = f" ({'; '.join(notes)})" if notes else ""
    if root.verdict == "reproduced":
        return (f"Reproduced: every part holds at α = {ALPHA} (largest p = {_fmt_p(root.p)}); {headline.name}: "
                f"{_fmt(headline.effect)} {headline.unit}, 95% CI [{_fmt(headline.ci[0])}, "
                f"{_fmt(headline.ci[1])}]{tail}.")
    leaf = _first(root, root.verdict)
    label = "Not reproduced" if root.verdict == "not_reproduced" else "Inconclusive"
    return f"{label}: {leaf.name}: {leaf.why}{tail}."


@functools.lru_cache(maxsize=64)
def on_original(measure, layers: frozenset | None = None) -> tuple[Test, Test]:
    """A claim's (combined test, headline test) on the original study's numbers, restricted to `layers`
    (see repro.paper.original_table), cached. The returned tests are shared: read them, don't change them."""
    from repro.paper import original_table

    root, headline, _ = measure(original_table(layers), {})
    return root, headline


def evaluate_claim(claim: str, measure, table) -> Verdict:
    """Run a claim's `measure(table, paper_effects) -> (root, headline, details)` on a table, with the original
    study's effects measured by the same code on the same layers (for the replicates needed, and to report)."""
    paper_root, paper_headline = on_original(measure, table.layer_set())
    root, headline, details = measure(table, paper_root.effects_by_name())
    details = {**details, "original_headline": paper_headline.name}
    return make_verdict(claim, root, headline, paper_headline.effect, table.evidence, details)


def make_verdict(claim: str, root: Test, headline: Test, paper_effect: float | None, evidence: str,
                 details: dict | None = None) -> Verdict:
    """The Verdict of a claim from its combined test; the headline test gives the reported effect and CI."""
    return Verdict(
        claim=claim, verdict=root.verdict, effect=headline.effect, unit=headline.unit, ci=tuple(headline.ci),
        p=root.p, paper_effect=paper_effect, replicates=root.replicates, replicates_needed=root.needed,
        explanation=explain(root, headline), evidence=evidence,
        details={"alpha": ALPHA, "margin_percent": MARGIN, "headline": headline.name,
                 "bootstrap_ci": list(bootstrap_ci(headline.values, headline.other)),
                 "tests": root.to_dict(), **(details or {})})
