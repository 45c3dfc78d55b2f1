"""Power: the chance that a part of a claim comes out reproduced when its true effect is the stated smallest
effect (for an equivalence: when the truth is 0), at a spread and a number of replicates; and the replicates
that give 80% of it. The one-sided t-tests' power is the noncentral t's (as statsmodels' TTestPower and
TTestIndPower); an equivalence (TOST) is shown when both one-sided tests against its margins reject, whose
power is at least 1 - 2 (1 - p1), p1 the power of one of them at a true 0: that bound is the power used.

These numbers are told before training (`repro plan --json`, at the tier's measured noise: repro.noise) and
beside each verdict (replicates needed at the observed spread); they never decide a verdict.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

ALPHA = 0.05  # every test is one-sided at ALPHA in the claimed direction (repro.stats.tests)
POWER = 0.8  # for the replicates needed
MAX_REPLICATES = 100  # replicates needed beyond this are reported as not computable (None)


def distance(direction: str, null: float, smallest: float | None, margin: float | None) -> float:
    """How far the stated effect lies from what the test must reject: the smallest effect from the null (a
    one-sided test), the margin from a true 0 (an equivalence)."""
    if direction == "equivalent":
        return margin or math.nan
    if smallest is None:
        return math.nan
    return null - smallest if direction == "less" else smallest - null


def _one_sided(delta: float, sd: float, groups: tuple[int, ...], alpha: float, borrowed_df: int | None) -> float:
    """Power of a one-sided t-test of an effect `delta` at spread `sd` per replicate: one sample of groups[0]
    replicates, or two of groups[0] and groups[1] (pooled degrees of freedom). A group of 1 replicate borrows
    its spread (repro.stats.samples.table_spread) with `borrowed_df` degrees of freedom (None: not possible)."""
    if len(groups) == 1:
        k = groups[0]
        df = k - 1 if k >= 2 else borrowed_df
        se = sd / math.sqrt(k)
    else:
        k1, k2 = groups
        df = k1 + k2 - 2 if min(k1, k2) >= 2 else (None if borrowed_df is None else min(borrowed_df, max(k1, k2) - 1))
        se = sd * math.sqrt(1 / k1 + 1 / k2)
    if df is None or df < 1:
        return math.nan
    critical = sps.t.ppf(1 - alpha, df)
    return float(sps.nct.sf(critical, df, delta / se))


def power(direction: str, null: float, smallest: float | None, margin: float | None, sd: float,
          groups: tuple[int, ...], alpha: float = ALPHA, borrowed_df: int | None = None) -> float:
    """The chance the part comes out reproduced at its stated effect (NaN when not computable)."""
    delta = distance(direction, null, smallest, margin)
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0 or delta <= 0 or min(groups, default=0) < 1:
        return math.nan
    one = _one_sided(delta, sd, groups, alpha, borrowed_df)
    if direction == "equivalent":
        return max(0.0, 1 - 2 * (1 - one)) if math.isfinite(one) else one
    return one


def replicates_needed(direction: str, null: float, smallest: float | None, margin: float | None, sd: float,
                      two_sample: bool = False, power_wanted: float = POWER, cap: int = MAX_REPLICATES,
                      alpha: float = ALPHA) -> int | None:
    """The fewest replicates (per group, equal groups, for two samples) that give `power_wanted` at the stated
    effect and this spread. None when not computable: no spread, no stated effect, or more than `cap`."""
    delta = distance(direction, null, smallest, margin)
    if not (math.isfinite(delta) and math.isfinite(sd)) or sd <= 0 or delta <= 0:
        return None
    for k in np.arange(2, cap + 1):
        groups = (int(k), int(k)) if two_sample else (int(k),)
        if power(direction, null, smallest, margin, sd, groups, alpha) >= power_wanted:
            return int(k)
    return None
