"""Premises and checks: what must hold of a results table before a claim can be read from it, measured from the
table (after its failed networks are set aside: repro.results.without_failures).

A claim that compares a transferred network with its base assumes the base is converged: otherwise the
extra training a transferred network gets (its copied layers were already trained once) shows up as a gain
over the base, and the claim would measure training length, not transfer. Every claim assumes the bases
learned something. Each premise is measured here and gets a status:

    met | not_met | unmeasured (the table lacks what it needs)

`blocks` says whether it stops the claims that rest on it: a premise that is not met always blocks; an
unmeasured one blocks when it is required (nothing else checks it). `gates` says what a block makes of the
claim: premise_not_met for what the claim rests on (converged bases, networks trained alike), inconclusive
for a control that did not do what it must (a broken control is not beaten: it never counts as an effect).

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
- trained_alike: every network a claim compares trained as the base of its own target half (the same
  iterations, examples seen and final learning rate), and every one the same epochs (to 1%: the halves differ
  in size, so in iterations); the compute-matched base (base-2x) is checked by claim 4's control instead. A
  table that does not record what its networks trained leaves it unmeasured, which does not block: it says so.
- random_control_trains (a check of claim 5's control): the random-frozen network at its lowest n (1 where
  trained) reaches the bases' bar (ABOVE_CHANCE x chance). In the original it keeps 85% of its base at n = 1;
  at chance there, the control never trained and is broken, not beaten.
- selffer_fine_tuned_holds (a check of the fine-tuned selffer, claims 2 and 4): BnB+ at its lowest n trained
  (1 where trained; the cpu tier fine-tunes at n = 4 only) is not below its base by more than
  FINE_TUNED_TOLERANCE (10%) of the base's accuracy over chance, mean over replicates: fine-tuning a network
  from its own layers must not break it (the original: -1.5% at n = 1, +1% at n = 4).
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

from repro.budget import same_training
from repro.format import signed
from repro.runs import COMPUTE_MATCHED
from repro.stats import ALPHA, by_replicate

ABOVE_CHANCE = 5.0  # times chance
CONVERGED = 2.5  # % of base: the bound on |BnB n=1 - base| (module docstring)
PLATEAU = 1.0  # % of base, gained in the last quarter of training
LAST = 0.25  # the last quarter of the iterations
FINE_TUNED_TOLERANCE = 10.0  # % of the base's accuracy over chance that BnB+ may lose


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
    gates: str = "premise_not_met"  # what a block makes of the claim: premise_not_met, or inconclusive (a check)

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
    bases = [r for r in table.rows if r.treatment == "base"]
    diverged = sum(r.diverged for r in bases)  # set aside with what was built from them, not measured here
    known = [r for r in bases if not r.diverged and r.num_classes > 0 and r.top1 is not None and math.isfinite(r.top1)]
    if not known:
        none = f"every base network diverged ({diverged})" if diverged else \
            "no base network with a number of classes in the table"
        return Premise(status="unmeasured", value=None, measured=none,
                       to_satisfy="give each base its top-1 and number of classes" if not diverged else
                       "train bases that do not diverge (a lower learning rate, a longer warm-up)", **common)
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


def chance_to_pass(replicates: int | tuple[int, ...], sd: float, bias: float = 0.0, tolerance: float = CONVERGED,
                   sims: int = 20_000, seed: int = 0) -> float:
    """The probability that a study of `replicates` with per-replicate BnB-minus-base values of spread `sd`
    around a true `bias` (both % of base) meets converged_bases (Monte Carlo, deterministic). `replicates` as
    the sizes a growing study is judged at in turn, e.g. (5, 9): the chance it is met at any of those looks
    (at a bias of exactly `tolerance`, more than one look passes more often than the bound's 5%)."""
    looks = (replicates,) if isinstance(replicates, int) else tuple(replicates)
    if max(looks) < 2:
        return 0.0
    x = np.random.default_rng(seed).normal(bias, sd, (sims, max(looks)))
    met = np.zeros(sims, dtype=bool)
    for k in (k for k in looks if k >= 2):
        bound = np.abs(x[:, :k].mean(axis=1)) + special.stdtrit(k - 1, 1 - ALPHA) * x[:, :k].std(
            axis=1, ddof=1) / math.sqrt(k)
        met |= bound <= tolerance
    return float(np.mean(met))


def converged(table) -> Premise:
    rule = (f"the one-sided 95% upper bound of |BnB n=1 - base| (the bias of extra training alone, over the "
            f"replicates) within {CONVERGED:g}% of base")
    common = dict(id="converged_bases", title="Converged bases", rule=rule, required=True,
                  decision="a bound, not a point: a study must show the bias is small, not merely fail to show "
                           "it is large")
    pairs, _ = table.paired("BnB", "random")
    at1 = by_replicate((p for p in pairs if p.row.n == 1), "relative")
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
                      "halves of each replicate) narrow it, if decided before this verdict was seen; extending a "
                      "study because the premise failed looks again and passes too often (docs/statistics.md, "
                      "Looks): a longer recipe is the other way")
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


def trained_alike(table, treatments: tuple[str, ...] | None = None) -> Premise:
    """The networks of `treatments` (all but the compute-matched base when None) and their bases: each trained
    as its own base, all for the same epochs (module docstring)."""
    rule = ("every network compared trained as the base of its own target half (iterations, examples seen, final "
            "learning rate) and for the same epochs as every other")
    common = dict(id="trained_alike", title="Networks trained alike", rule=rule, required=False,
                  decision="a record, not a test: what each network trained is counted, not estimated")
    bases = {r.pair_key: r for r in table.rows if r.treatment == "base"}
    chosen = [r for r in table.rows if r.treatment != COMPUTE_MATCHED and r.treatment != "base"
              and (treatments is None or r.treatment in treatments)]
    compared = [r for r in chosen + [bases[k] for k in {r.pair_key for r in chosen} if k in bases]]
    recorded = [r for r in compared if r.iterations is not None]
    if not recorded:
        return Premise(status="unmeasured", value=None, measured="the table does not record what its networks "
                       "trained (iterations, examples seen, epochs, final learning rate)",
                       to_satisfy="give each network its iterations (results.json from the suite records them)",
                       **common)
    unlike = []
    for r in chosen:
        base = bases.get(r.pair_key)
        differs = same_training(r.trained, base.trained) if base is not None else []
        if differs:
            unlike.append(f"{r.label} ({_record(r, differs)}; its base {_record(base, differs)})")
    epochs = sorted({round(r.epochs, 2) for r in compared if r.epochs is not None})
    if epochs and not math.isclose(epochs[0], epochs[-1], rel_tol=0.01):
        unlike.append(f"epochs from {epochs[0]:g} to {epochs[-1]:g} among the networks compared")
    source = f"; {table.training_record}" if table.training_record else ""
    silent = len(compared) - len(recorded)
    silent = f"; {silent} do not record it" if silent else ""
    if unlike:
        shown = "; ".join(unlike[:3]) + (f"; and {len(unlike) - 3} more" if len(unlike) > 3 else "")
        return Premise(status="not_met", value=float(len(unlike)), measured=f"trained unlike: {shown}{source}",
                       to_satisfy="train every network of the claim by one recipe to its end (a network that "
                                  "stopped early or ran another schedule measures its training, not transfer)",
                       **common)
    one = recorded[0]
    return Premise(status="met", value=0.0, measured=f"{len(recorded)} networks trained alike (e.g. {one.label}: "
                   f"{_record(one, ('iterations', 'epochs', 'final_lr'))}){silent}{source}", to_satisfy="met",
                   **common)


def _record(row, fields) -> str:
    words = {"iterations": "{:,} iterations", "examples_seen": "{:,} examples", "epochs": "{:.3g} epochs",
             "final_lr": "final lr {:.2g}"}
    return ", ".join(words[f].format(getattr(row, f)) for f in fields if getattr(row, f) is not None)


def random_control_trains(table) -> Premise:
    """Claim 5's control: the random-frozen network at its lowest n reaches the bases' bar (module docstring)."""
    rule = (f"the random-frozen network at its lowest n (1 where trained) at least {ABOVE_CHANCE:g}x chance (the "
            f"bases' bar): a control at chance never trained")
    common = dict(id="random_control_trains", title="Random control trains", rule=rule, required=False,
                  gates="inconclusive", decision="point estimate: each control is one network")
    control = [r for r in table.rows if r.treatment == "random" and r.num_classes > 0]
    if not control:
        return Premise(status="unmeasured", value=None, measured="no random-frozen network in the table",
                       to_satisfy="train the random control (claim 5 needs it)", **common)
    lowest = min(r.n for r in control)
    at = [r for r in control if r.n == lowest]
    worst = min(at, key=lambda r: r.top1 / chance_bar(r.num_classes))
    ratio = worst.top1 * worst.num_classes
    measured = (f"random frozen n={lowest}: weakest {worst.split}/{worst.target} r{worst.replicate} "
                f"{100 * worst.top1:.1f}% top-1 on {worst.num_classes} classes = {ratio:.1f}x chance")
    met = worst.top1 >= chance_bar(worst.num_classes)
    return Premise(status="met" if met else "not_met", value=ratio, measured=measured,
                   to_satisfy="met" if met else "the control's classifier did not learn: check its training "
                                                "(its frozen random layers are not what fails at n = 1)", **common)


def selffer_fine_tuned_holds(table) -> Premise:
    """The fine-tuned selffer at its lowest n is not below its base by more than the tolerance (module
    docstring)."""
    rule = (f"BnB+ at its lowest n (1 where trained) not below its base by more than {FINE_TUNED_TOLERANCE:g}% of "
            f"the base's accuracy over chance (mean over replicates)")
    common = dict(id="selffer_fine_tuned_holds", title="Fine-tuned selffer holds its base", rule=rule,
                  required=False, gates="inconclusive", decision="point estimate: a check of a control, not a test")
    pairs, _ = table.paired("BnB+", ("random",))
    if not pairs:
        return Premise(status="unmeasured", value=None, measured="no BnB+ network with its base in the table",
                       to_satisfy="train BnB+ (claims 2 and 4 need it)", **common)
    lowest = min(p.row.n for p in pairs)
    mean = by_replicate(p for p in pairs if p.row.n == lowest).mean()
    measured = f"BnB+ n={lowest} {signed(mean)}% of its base over chance ({len({p.row.replicate for p in pairs})} " \
               f"replicates)"
    met = math.isfinite(mean) and mean >= -FINE_TUNED_TOLERANCE
    return Premise(status="met" if met else "not_met", value=mean, measured=measured,
                   to_satisfy="met" if met else "fine-tuning broke the network it started from: check the "
                                                "fine-tuned recipe (learning rate of the copied layers)", **common)


PREMISES = {"bases_above_chance": above_chance, "converged_bases": converged, "trained_alike": trained_alike,
            "random_control_trains": random_control_trains, "selffer_fine_tuned_holds": selffer_fine_tuned_holds,
            "bases_plateaued": plateaued}


def measure_premises(table, treatments: tuple[str, ...] | None = None) -> list[Premise]:
    """Every premise and check, measured on the table (its failed networks set aside first), in a fixed order;
    `treatments`: the networks a claim compares, for trained_alike (None: every network)."""
    from repro.results import without_failures

    kept, _ = without_failures(table)
    return [above_chance(table) if check is above_chance else trained_alike(kept, treatments)
            if check is trained_alike else check(kept) for check in PREMISES.values()]
