"""Claim 1: the first layers are general. Frozen features of layers 1-2 transfer almost perfectly from one
random half of the classes to the other; transfer gets worse with n, and at n = 7 clearly costs accuracy.

Parts (every part must hold; relative % of the base of the target half, one value per random split):
- AnB at n = 1 and at n = 2 within ±MARGIN (2%) of base (TOST at each n; uses whichever of n = 1, 2 were
  trained, and needs at least one). Why 2%: base networks trained on different halves and seeds of the
  original study already differ by up to ±1.5% of their mean (0.615-0.634), and the drops the paper calls a
  loss are larger (AnB at n = 4: -4%, n = 5: -7.5%); a difference within 2% cannot be told apart from the
  luck of a base network.
- AnB at n = 7 below base (one-sided; needs n = 7).
- A decreasing trend: the least-squares slope of the relative effect on n within each replicate, below zero
  across replicates (one-sided; needs AnB at 3 or more n).
Headline: AnB at n = 7 relative to base.
"""
from __future__ import annotations

from repro import stats
from repro.results import Table
from repro.runs import Need
from repro.stats import MARGIN, Test

ID = "early_layer_generality"
TITLE = "Features of the first layers are general"
SENTENCE = ("Such first-layer features appear not to be specific to a particular dataset or task, but general "
            "in that they are applicable to many datasets and tasks. Features must eventually transition from "
            "general to specific by the last layer of the network ... Transferability is negatively affected by "
            "... (1) the specialization of higher layer neurons to their original task at the expense of "
            "performance on the target task, which was expected.")
NEEDS = [Need("random", "AnB")]
EQUIVALENT_N = (1, 2)
DROP_N = 7
FAMILY = "random"  # the random A/B splits


def equivalence_name(n: int) -> str:
    return f"AnB n={n} within ±{MARGIN:g}% of base"


DROP = f"AnB n={DROP_N} below base"
TREND = "AnB falls with n (slope per layer)"


def measure(table: Table, paper: dict[str, float]) -> tuple[Test, Test, dict]:
    pairs, unpaired = table.paired("AnB", FAMILY)
    present = table.layers("AnB", FAMILY)
    equivalent = [stats.one_sample(equivalence_name(n), stats.by_replicate(p for p in pairs if p.row.n == n),
                                   "equivalent", margin=MARGIN, paper_effect=paper.get(equivalence_name(n)))
                  for n in EQUIVALENT_N if n in present]
    if not equivalent:
        equivalent = [stats.untestable("AnB n=1, 2 equivalent to base",
                                       f"needs AnB at n = 1 or 2, and this table has AnB at n = {present}",
                                       direction="equivalent")]
    if DROP_N in present:
        drop = stats.one_sample(DROP, stats.by_replicate(p for p in pairs if p.row.n == DROP_N), "less",
                                paper_effect=paper.get(DROP))
    else:
        drop = stats.untestable(DROP, f"needs AnB at n = {DROP_N}, and this table has AnB at n = {present}")
    if len(present) >= 3:
        trend = stats.one_sample(TREND, stats.slope_by_replicate(pairs), "less", paper_effect=paper.get(TREND),
                                 unit="% per layer")
    else:
        trend = stats.untestable(TREND, f"needs AnB at 3 or more n, and this table has n = {present}",
                                 unit="% per layer")
    root = stats.all_of(TITLE, [stats.all_of("AnB n=1, 2 equivalent to base", equivalent), drop, trend])
    details = {
        "relative_by_n": {str(n): stats.by_replicate([p for p in pairs if p.row.n == n]).mean() for n in present},
        "points_by_n": {str(n): stats.by_replicate([p for p in pairs if p.row.n == n], "points").mean()
                        for n in present},
        "unpaired_networks": len(unpaired),
    }
    return root, drop, details


def paper_effect() -> float:
    """The headline effect on the original study's numbers (all its layers), by the same code."""
    return stats.on_original(measure)[1].effect


def evaluate(table: Table) -> stats.Verdict:
    return stats.evaluate_claim(ID, measure, table)
