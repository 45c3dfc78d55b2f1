"""Premises: what must hold of a results table before a claim can be read from it, measured from the table.

A claim that compares a transferred network with its base assumes the base is converged: otherwise the
extra training a transferred network gets (its copied layers were already trained once) shows up as a gain
over the base, and the claim would measure training length, not transfer. Every claim assumes the bases
learned something. Each premise is measured here and gets a status:

    met | not_met | unmeasured (the table lacks what it needs)

`blocks` says whether it stops the claims that rest on it (their verdict becomes premise_not_met): a premise
that is not met always blocks; an unmeasured one blocks when it is required (nothing else checks it).

The rules:
- bases_above_chance: every base network scores at least ABOVE_CHANCE (5) times chance, or halfway from chance
  to 100% where that is lower (few classes). The claims read drops of up to half of a base's accuracy
  (random_features); a base at 5x chance that loses half still sits at 2.5x chance, so its effects are still
  differences of learning, not of guessing. A point estimate, because each base is one network: there is
  nothing to test across.
- converged_bases, decided on a bound: the selffer at n = 1 (BnB: layer 1 copied from its own base, frozen,
  the rest retrained: the same training as any transfer, nothing carried across tasks) measures the bias
  extra training alone gives, per replicate (the mean over its targets) in % of base. The premise is met when
  the one-sided 95% upper bound of |bias| (|mean| + t(0.95, R - 1) x SE over the R replicates: the larger end
  of the 90% interval, away from zero) is within CONVERGED (2.5%) of base. Why 2.5%: it is about half the
  smallest effect against the base that a bias could produce on its own in a gated claim, claim 2's dip on
  the original (-4.8% at n = 5), so that a bias at the bound leaves more than half of an original-sized dip
  to the networks. Claim 4's boost over base (+1.5%) is smaller, but a bias cannot produce claim 4 alone: its
  second part (AnB+ above BnB+) cancels it. What it needs: with BnB-minus-base differences of sd sigma per
  replicate, a converged study passes with the probability `chance_to_pass` gives; Tiny ImageNet's 5,000
  validation images per half put up to ~2.4% of base of binomial noise on one difference (sigma 1.7 when each
  replicate averages both halves), and then 5 replicates x 2 halves pass 71% of the time, 8 x 2 96%; with
  one half per replicate 5 replicates pass 33% and 10 pass 83% (docs/statistics.md). Fewer than 2 replicates,
  or replicates that are all equal, bound nothing: unmeasured, and it blocks.
- bases_plateaued (advisory: shown, never blocks): no base gains more than PLATEAU (1%) of its top-1 in the
  last quarter of its training (best score in the last quarter against the best before it). It measures the
  schedule as much as convergence: under a linear decay to zero the last quarter is the annealing, and after
  a step drop the jump counts as still rising, so it cannot gate a study whose recipe is not the original's.
  Convergence is decided by converged_bases, which measures it whatever the schedule.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from repro.format import signed
from repro.stats import ALPHA, by_replicate

ABOVE_CHANCE = 5.0  # times chance
CONVERGED = 2.5  # % of base: the bound on |BnB n=1 - base| (module docstring)
PLATEAU = 1.0  # % of base, gained in the last quarter of training
LAST = 0.25  # the last quarter of the iterations


@dataclass(frozen=True)
class Premise:
    id: str
    title: str
    status: str  # met | not_met | unmeasured
    value: float | None  # the measured number
    measured: str  # the measured value, in words
    rule: str  # what the suite requires
    to_satisfy: str  # what would satisfy it
    decision: str  # point estimate or test, and why (short)
    required: bool  # an unmeasured required premise blocks
    advisory: bool = False  # shown beside the others, never blocks

    @property
    def blocks(self) -> bool:
        if self.advisory:
            return False
        return self.status == "not_met" or (self.status == "unmeasured" and self.required)

    def to_dict(self) -> dict:
        return {**asdict(self), "blocks": self.blocks}


def chance_bar(num_classes: int) -> float:
    """The top-1 a base must reach: ABOVE_CHANCE x chance, or halfway from chance to perfect where that is
    lower (with 8 classes or fewer, 5x chance is out of reach or close to it)."""
    chance = 1 / num_classes
    return min(ABOVE_CHANCE * chance, (1 + chance) / 2)


def above_chance(table) -> Premise:
    rule = (f"every base network at least {ABOVE_CHANCE:g}x chance (or halfway from chance to 100%, where "
            f"that is lower)")
    common = dict(id="bases_above_chance", title="Bases well above chance", rule=rule, required=True,
                  decision="point estimate: each base is one network")
    bases = [r for r in table.rows if r.treatment == "base"]  # a diverged base scores chance, and counts
    known = [r for r in bases if r.num_classes > 0 and r.top1 is not None and math.isfinite(r.top1)]
    if not known:
        return Premise(status="unmeasured", value=None, measured="no base network with a number of classes in "
                       "the table", to_satisfy="give each base its top-1 and number of classes", **common)
    worst = min(known, key=lambda r: r.top1 / chance_bar(r.num_classes))
    ratio = worst.top1 * worst.num_classes
    bar = chance_bar(worst.num_classes)
    measured = (f"weakest base {worst.split}/{worst.target}: {100 * worst.top1:.1f}% top-1 on "
                f"{worst.num_classes} classes = {ratio:.1f}x chance")
    return Premise(status="met" if worst.top1 >= bar else "not_met", value=ratio, measured=measured,
                   to_satisfy=f"train the bases to at least {100 * bar:.1f}% top-1 on {worst.num_classes} classes",
                   **common)


def bias_bound(values) -> tuple[float, float]:
    """(mean, one-sided 95% upper bound of |mean|) of per-replicate biases: |mean| + t(1 - ALPHA, R - 1) x SE.
    NaN bound with fewer than 2 values or a spread of 0."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    mean = float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if len(x) >= 2 else 0.0
    if sd == 0:
        return mean, math.nan
    return mean, abs(mean) + float(special.stdtrit(len(x) - 1, 1 - ALPHA)) * sd / math.sqrt(len(x))


def chance_to_pass(replicates: int, sd: float, bias: float = 0.0, tolerance: float = CONVERGED,
                   sims: int = 20_000, seed: int = 0) -> float:
    """The probability that a study of `replicates` with per-replicate BnB-minus-base values of spread `sd`
    around a true `bias` (both % of base) meets converged_bases (Monte Carlo, deterministic)."""
    if replicates < 2:
        return 0.0
    x = np.random.default_rng(seed).normal(bias, sd, (sims, replicates))
    bound = np.abs(x.mean(axis=1)) + special.stdtrit(replicates - 1, 1 - ALPHA) * x.std(axis=1, ddof=1) / math.sqrt(
        replicates)
    return float(np.mean(bound <= tolerance))


def converged(table) -> Premise:
    rule = (f"the one-sided 95% upper bound of |BnB n=1 - base| (the bias of extra training alone, over the "
            f"replicates) within {CONVERGED:g}% of base")
    common = dict(id="converged_bases", title="Converged bases", rule=rule, required=True,
                  decision="a bound, not a point: a study must show the bias is small, not merely fail to show "
                           "it is large")
    pairs, _ = table.paired("BnB", "random")
    at1 = by_replicate(p for p in pairs if p.row.n == 1 and not p.diverged)
    values = list(at1.values.values())
    mean, bound = bias_bound(values)
    if not math.isfinite(mean):
        return Premise(status="unmeasured", value=None, measured="no BnB network at n = 1 with its base",
                       to_satisfy="train BnB at n = 1 on the random splits (it measures what extra training "
                                  "alone gives), in 2 or more replicates", **common)
    k = len(values)
    measured = f"BnB n=1 {signed(mean)}% of base ({k} replicate{'s' if k != 1 else ''})"
    if not math.isfinite(bound):
        why = "1 replicate bounds nothing" if k < 2 else f"the {k} replicates are identical (spread 0)"
        return Premise(status="unmeasured", value=mean, measured=f"{measured}: {why}",
                       to_satisfy="train BnB at n = 1 in 2 or more independent replicates (5 replicates x 2 "
                                  "halves pass 71% of converged studies at Tiny ImageNet's validation noise)",
                       **common)
    measured += f", |bias| at most {bound:.2f}% (one-sided 95% bound)"
    if bound <= CONVERGED:
        to_satisfy = "met"
    elif abs(mean) > CONVERGED:
        to_satisfy = (f"train the bases longer, until retraining from layer 1 no longer gains more than {CONVERGED:g}%"
                      if mean > 0 else f"train until BnB n=1 loses no more than {CONVERGED:g}% of its base")
    else:
        to_satisfy = ("the mean is inside the tolerance but the bound is not: more replicates (or BnB n=1 on both "
                      "halves of each replicate) narrow it")
    return Premise(status="met" if bound <= CONVERGED else "not_met", value=mean, measured=measured,
                   to_satisfy=to_satisfy, **common)


def plateaued(table) -> Premise:
    rule = (f"advisory: no base gains more than {PLATEAU:g}% of its top-1 in the last quarter of its training "
            f"(validation curve)")
    common = dict(id="bases_plateaued", title="Bases' curves have plateaued (advisory)", rule=rule, required=False,
                  advisory=True,
                  decision="advisory, never blocks: the last quarter of a curve measures the schedule (annealing, "
                           "a step drop) as much as convergence, which converged_bases decides")
    gains = {}
    for r in table.rows:
        curve = table.curves.get(r.key) if r.treatment == "base" and r.key else None
        if not curve or len(curve) < 4:
            continue
        end = max(i for i, _ in curve)
        late = [v for i, v in curve if i > (1 - LAST) * end]
        early = [v for i, v in curve if i <= (1 - LAST) * end]
        if late and early and max(early) > 0:
            gains[f"{r.split}/{r.target}"] = 100 * (max(late) - max(early)) / max(early)
    if not gains:
        return Premise(status="unmeasured", value=None, measured="no validation curves of the bases in the table",
                       to_satisfy="keep the bases' validation curves (a study's own store has them)", **common)
    name, gain = max(gains.items(), key=lambda kv: kv[1])
    measured = f"largest late gain {signed(gain)}% of top-1 ({name}; {len(gains)} curves)"
    return Premise(status="met" if gain <= PLATEAU else "not_met", value=gain, measured=measured,
                   to_satisfy="met" if gain <= PLATEAU else "a curve still rising in its last quarter: see "
                              "converged_bases for whether that matters", **common)


PREMISES = {"bases_above_chance": above_chance, "converged_bases": converged, "bases_plateaued": plateaued}


def measure_premises(table) -> list[Premise]:
    """Every premise, measured on the table, in a fixed order."""
    return [check(table) for check in PREMISES.values()]
