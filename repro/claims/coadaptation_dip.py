"""Claim 2: fragile co-adaptation. A network copied into itself (BnB, layers 1..n frozen, the rest retrained)
loses accuracy when the cut falls in the middle of the network (n = 3..5), where neighbouring layers had
co-adapted; it recovers at n = 6, 7, where the upper layers relearn little; fine-tuning the copied layers
(BnB+) removes the loss.

Parts (every part must hold; relative % of the base of the target half, one value per random split):
- BnB below base at the worst of n = 3..5: a one-sided test at each of those n that was trained, Holm-corrected
  across them; the part holds if one holds (needs at least one of n = 3..5).
- Recovery: BnB at n = 6, 7 (mean over those trained) above BnB at n = 3..5 (mean over those trained), paired
  by replicate, one-sided. The reference is the mean of the middle layers, not the worst one: choosing the
  worst layer from the same data would bias the comparison toward a recovery.
- BnB+ not below base: non-inferiority at -MARGIN (2% of base, as in early_layer_generality), on the mean
  over the n trained within each replicate.
Headline: BnB at the worst of n = 3..5 (the layer with the smallest corrected p).
"""
from __future__ import annotations

from repro import stats
from repro.results import Table
from repro.runs import Need
from repro.stats import MARGIN, Test

ID = "coadaptation_dip"
TITLE = "Fragile co-adaptation of middle layers"
SENTENCE = ("Transferability is negatively affected by two distinct issues: ... (2) optimization difficulties "
            "related to splitting networks between co-adapted neurons, which was not expected.")
NEEDS = [Need("random", "BnB"), Need("random", "BnB+")]
MIDDLE_N = (3, 4, 5)
TOP_N = (6, 7)
FAMILY = "random"

DIP = "BnB below base at the worst of n=3..5"
RECOVERY = "BnB at n=6, 7 above BnB at n=3..5"
FINETUNED = f"BnB+ not below base by more than {MARGIN:g}%"


def dip_name(n: int) -> str:
    return f"BnB n={n} below base"


def measure(table: Table, paper: dict[str, float]) -> tuple[Test, Test, dict]:
    pairs, unpaired = table.paired("BnB", FAMILY)
    present = table.layers("BnB", FAMILY)
    middle = [n for n in MIDDLE_N if n in present]
    top = [n for n in TOP_N if n in present]

    def at(ns):
        return stats.by_replicate([p for p in pairs if p.row.n in ns])

    if middle:
        dip = stats.any_of(DIP, [stats.one_sample(dip_name(n), at([n]), "less", paper_effect=paper.get(dip_name(n)))
                                 for n in middle])
    else:
        dip = stats.untestable(DIP, f"needs BnB at one of n = 3..5, and this table has BnB at n = {present}")
    if middle and top:
        recovery = stats.one_sample(RECOVERY, stats.difference(at(top), at(middle)), "greater",
                                    paper_effect=paper.get(RECOVERY))
    else:
        recovery = stats.untestable(RECOVERY, f"needs BnB at one of n = 3..5 and one of n = 6, 7, and this table "
                                              f"has BnB at n = {present}", direction="greater")
    plus, plus_unpaired = table.paired("BnB+", FAMILY)
    if plus:
        finetuned = stats.one_sample(FINETUNED, stats.by_replicate(plus), "greater", null=-MARGIN,
                                     paper_effect=paper.get(FINETUNED))
    else:
        finetuned = stats.untestable(FINETUNED, "needs BnB+ networks with their base, and this table has none",
                                     direction="greater")
    root = stats.all_of(TITLE, [dip, recovery, finetuned])
    details = {
        "relative_by_n": {str(n): at([n]).mean() for n in present},
        "points_by_n": {str(n): stats.by_replicate([p for p in pairs if p.row.n == n], "points").mean()
                        for n in present},
        "bnb_plus_relative_by_n": {str(n): stats.by_replicate([p for p in plus if p.row.n == n]).mean()
                                   for n in table.layers("BnB+", FAMILY)},
        "middle_n": middle, "top_n": top, "unpaired_networks": len(unpaired) + len(plus_unpaired),
    }
    headline = dip.part(dip.reported) if dip.parts else dip
    return root, headline, details


def paper_effect() -> float:
    """The headline effect on the original study's numbers (all its layers), by the same code."""
    return stats.on_original(measure)[1].effect


def evaluate(table: Table) -> stats.Verdict:
    return stats.evaluate_claim(ID, measure, table)
