"""Premises: what must hold of a results table before a claim can be read from it, measured from the table.

A claim that compares a transferred network with its base assumes the base is converged: otherwise the
extra training a transferred network gets (its copied layers were already trained once) shows up as a gain
over the base, and the claim would measure training length, not transfer. Every claim assumes the bases
learned something. Each premise is measured here and gets a status:

    met | not_met | unmeasured (the table lacks what it needs)

`blocks` says whether it stops the claims that rest on it (their verdict becomes premise_not_met): a premise
that is not met always blocks; an unmeasured one blocks when it is required (nothing else checks it).

The rules, and why each is a point estimate rather than a test:
- bases_above_chance: every base network scores at least ABOVE_CHANCE (5) times chance, or halfway from chance
  to 100% where that is lower (few classes). The claims read drops of up to half of a base's accuracy
  (random_features); a base at 5x chance that loses half still sits at 2.5x chance, so its effects are still
  differences of learning, not of guessing. A point estimate, because each base is one network: there is
  nothing to test across.
- converged_bases: the selffer at n = 1 (BnB: layer 1 copied from its own base, frozen, the rest retrained:
  the same training as any transfer, nothing carried across tasks) within ±CONVERGED (2%) of its base, as
  the mean over replicates of its relative effect (the original: +0.56%). A point estimate, not a test: an
  equivalence test (TOST) cannot pass with 1-2 replicates even for perfectly converged bases, which would
  gate every small study, and a test of "differs from 0" would let an undertrained study through whenever it
  has few replicates (absence of evidence). The 2% margin is the claims' own (repro.stats.MARGIN): the
  effect a study can tell from the luck of a base network.
- bases_plateaued (beside it, from the validation curves where the table has them): no base gains more than
  PLATEAU (1%) of its top-1 in the last quarter of its training (best score in the last quarter against the
  best before it). Supporting evidence: unmeasured (no curves, e.g. a table from a CSV) does not block; a
  curve still rising does.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from repro.format import signed
from repro.stats import MARGIN, by_replicate

ABOVE_CHANCE = 5.0  # times chance
CONVERGED = MARGIN  # % of base
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

    @property
    def blocks(self) -> bool:
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


def converged(table) -> Premise:
    rule = f"the selffer BnB at n = 1 within ±{CONVERGED:g}% of its base (mean over replicates)"
    common = dict(id="converged_bases", title="Converged bases", rule=rule, required=True,
                  decision="point estimate: a test would gate small studies or wave undertrained ones through")
    pairs, _ = table.paired("BnB", "random")
    at1 = by_replicate(p for p in pairs if p.row.n == 1 and not p.diverged)
    value = at1.mean()
    if not math.isfinite(value):
        return Premise(status="unmeasured", value=None, measured="no BnB network at n = 1 with its base",
                       to_satisfy="train BnB at n = 1 on the random splits (it measures what extra training "
                                  "alone gives)", **common)
    measured = f"BnB n=1 {signed(value)}% of base ({len(at1)} replicate{'s' if len(at1) != 1 else ''})"
    met = abs(value) <= CONVERGED
    return Premise(status="met" if met else "not_met", value=value, measured=measured,
                   to_satisfy=("train the bases longer, until retraining from layer 1 no longer gains more "
                               f"than {CONVERGED:g}%") if value > 0 else
                   (f"train until BnB n=1 loses no more than {CONVERGED:g}% of its base"), **common)


def plateaued(table) -> Premise:
    rule = (f"no base gains more than {PLATEAU:g}% of its top-1 in the last quarter of its training "
            f"(validation curve)")
    common = dict(id="bases_plateaued", title="Bases' curves have plateaued", rule=rule, required=False,
                  decision="point estimate per curve; supporting evidence beside converged_bases")
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
                   to_satisfy="train the bases until their validation curves flatten", **common)


PREMISES = {"bases_above_chance": above_chance, "converged_bases": converged, "bases_plateaued": plateaued}


def measure_premises(table) -> list[Premise]:
    """Every premise, measured on the table, in a fixed order."""
    return [check(table) for check in PREMISES.values()]
