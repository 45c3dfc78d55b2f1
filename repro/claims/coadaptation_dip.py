"""Claim 2: fragile co-adaptation. A network copied into itself (BnB, layers 1..n frozen, the rest retrained)
loses accuracy when the cut falls in the middle of the network (n = 3..5), where neighbouring layers had
co-adapted; it recovers at n = 6, 7, where the upper layers relearn little; fine-tuning the copied layers
(BnB+) repairs the loss.

Co-adaptation is base against BnB (the paper's Section 4.1), so the claim rests on converged bases: with
undertrained bases every BnB gains from its extra training and the dip is hidden (premise converged_bases);
and on a fine-tuned selffer that works (check selffer_fine_tuned_holds).

Parts (every part must hold; % of the base of the target half's accuracy over chance, one value per random
split), each with the smallest effect that counts, stated before any data (SMALLEST): a third of the
original's effect on the part, rounded toward zero (the rule every claim uses where the paper names no
number):
- BnB below base at the worst of n = 3..5: a one-sided test at each of those n that was trained, Holm-corrected
  across them; the part holds if one holds (needs at least one of n = 3..5). Smallest: -1.5% (the original:
  -4.8% at n = 5).
- Recovery: BnB at n = 6, 7 (mean over those trained) above BnB at n = 3..5 (mean over those trained), paired
  by replicate, one-sided. The reference is the mean of the middle layers, not the worst one: choosing the
  worst layer from the same data would bias the comparison toward a recovery. Smallest: +0.75% (the
  original: +2.3%).
- Repair: BnB+ above BnB at the dip layers (n = 3..5 where both were trained), paired by replicate and n,
  one-sided. BnB+ merely "not below base" would pass when fine-tuning repairs nothing. Smallest: +1.5% (the
  original: +4.4%).
Headline: BnB at the worst of n = 3..5 (the layer with the smallest corrected p).
On a network of another depth (repro.models.Depth) the middle is n = 3 to the block below the top two and
the top is its last two blocks (a ResNet-18's 9 blocks: 3..7 and 8, 9), with the same smallest effects.
"""
from __future__ import annotations

from repro import stats
from repro.models import Depth, span
from repro.results import OVER_CHANCE, Table
from repro.runs import Need
from repro.stats import Test

ID = "coadaptation_dip"
ORDER = 2
TITLE = "Fragile co-adaptation of middle layers"
SENTENCE = ("Transferability is negatively affected by two distinct issues: ... (2) optimization difficulties "
            "related to splitting networks between co-adapted neurons, which was not expected.")
NEEDS = [Need("random", "BnB"), Need("random", "BnB+")]
PREMISES = ("bases_above_chance", "converged_bases", "trained_alike", "selffer_fine_tuned_holds",
            "bases_plateaued")
FAMILY = "random"


def dip_name(depth: Depth) -> str:
    return f"BnB below base at the worst of n={span(depth.middle)}"


def recovery_name(depth: Depth) -> str:
    return f"BnB at n={span(depth.top)} above BnB at n={span(depth.middle)}"


def repair_name(depth: Depth) -> str:
    return f"BnB+ above BnB at n={span(depth.middle)}"


# the names on the paper's network (n = 3..5 the middle, 6, 7 the top), which SMALLEST is keyed by
DIP, RECOVERY, REPAIR = dip_name(Depth()), recovery_name(Depth()), repair_name(Depth())
SMALLEST = {DIP: -1.5, RECOVERY: 0.75, REPAIR: 1.5}  # stated before any data (module docstring)


def dip_at_name(n: int) -> str:
    return f"BnB n={n} below base"


def measure(table: Table, paper: dict[str, float]) -> tuple[Test, Test, dict]:
    depth = table.depth
    dip_test, recovery_test, repair_test = dip_name(depth), recovery_name(depth), repair_name(depth)
    pairs, unpaired = table.paired("BnB", FAMILY)
    present = table.layers("BnB", FAMILY)
    middle = [n for n in depth.middle if n in present]
    top = [n for n in depth.top if n in present]

    def at(ns):
        return stats.by_replicate([p for p in pairs if p.row.n in ns])

    if middle:
        dip = stats.any_of(dip_test, [stats.one_sample(dip_at_name(n), at([n]), "less", smallest=SMALLEST[DIP],
                                                       paper_effect=paper.get(dip_at_name(n)), unit=OVER_CHANCE)
                                      for n in middle])
    else:
        dip = stats.untestable(dip_test, f"needs BnB at one of n = {span(depth.middle)}, and this table has BnB "
                                         f"at n = {present}", unit=OVER_CHANCE, smallest=SMALLEST[DIP])
    if middle and top:
        recovery = stats.one_sample(recovery_test, stats.difference(at(top), at(middle)), "greater",
                                    smallest=SMALLEST[RECOVERY], paper_effect=paper.get(recovery_test),
                                    unit=OVER_CHANCE)
    else:
        recovery = stats.untestable(recovery_test, f"needs BnB at one of n = {span(depth.middle)} and one of n = "
                                                   f"{span(depth.top)}, and this table has BnB at n = {present}",
                                    direction="greater", unit=OVER_CHANCE, smallest=SMALLEST[RECOVERY])
    plus, plus_unpaired = table.paired("BnB+", FAMILY)
    plus_n = table.layers("BnB+", FAMILY)
    dip_layers = tuple(n for n in depth.middle if n in plus_n and n in present)
    if dip_layers:
        repair = stats.one_sample(repair_test, stats.difference_by_n(plus, pairs, dip_layers), "greater",
                                  smallest=SMALLEST[REPAIR], paper_effect=paper.get(repair_test), unit=OVER_CHANCE)
    else:
        repair = stats.untestable(repair_test, f"needs BnB+ and BnB at one of n = {span(depth.middle)}, and this "
                                               f"table has BnB+ at n = {plus_n}, BnB at n = {present}",
                                  direction="greater", unit=OVER_CHANCE, smallest=SMALLEST[REPAIR])
    root = stats.all_of(TITLE, [dip, recovery, repair])
    details = {
        "over_chance_by_n": {str(n): at([n]).mean() for n in present},
        "points_by_n": {str(n): stats.by_replicate([p for p in pairs if p.row.n == n], "points").mean()
                        for n in present},
        "bnb_plus_over_chance_by_n": {str(n): stats.by_replicate([p for p in plus if p.row.n == n]).mean()
                                   for n in plus_n},
        "middle_n": middle, "top_n": top, "repair_n": list(dip_layers),
        "unpaired_networks": len(unpaired) + len(plus_unpaired),
    }
    headline = dip.part(dip.reported) if dip.parts else dip
    return root, headline, details
