"""Claim 3: transfer costs more between dissimilar tasks. Frozen features of the top layers transferred
between the natural and the man-made halves of the classes (both directions) lose more of their base's
accuracy than features transferred between two random halves. The original at n = 7: -25.0 points (about 42%
of base) natural<->man-made against -8.3 points (13%) on random splits.

Test: per replicate, the drop of AnB at the top layers (the n of 6 and 7 trained in both families, mean over them
and over the two directions; on a network of another depth its top two blocks, repro.models.Depth), natural/man-made
minus random splits, below zero: Welch's two-sample t-test, one-sided (repro.stats.two_sample; the two families need
not share a spread). A side with a single replicate (the original's one natural/man-made split) borrows the largest
seed-to-seed spread of the table's replicated frozen-transfer cells, the rule every claim uses for single-replicate
cells (repro.stats.samples.table_spread). A difference of two transfers, each against its own base, cancels a shift
common to every transferred network, so the claim needs no convergence premise.

Robust to base accuracy: the penalty is judged twice, and both parts must hold. In % of each base's accuracy
over chance, equal losses in points on weaker bases (the natural/man-made halves of Tiny ImageNet are) are a
larger share of them and alone would make a penalty; in points, equal shares of stronger bases would. Base
accuracy alone moves one of the two, never both the same way; a distance between the tasks moves both.
Smallest effects, stated before any data: -8% of the base's accuracy over chance (a third of the original's
-25.0%, rounded toward zero, the rule every claim uses where the paper names no number), and in points the
same -8% of the mean accuracy over chance of the table's bases in the comparison (the original: -5.0 points
against its -16.7).
Headline: the penalty in % of base over chance.
"""
from __future__ import annotations

from repro import stats
from repro.results import OVER_CHANCE, Table
from repro.runs import Need
from repro.stats import Test

ID = "distance_penalty"
ORDER = 3
TITLE = "Transfer costs more between dissimilar tasks"
SENTENCE = ("We also document that the transferability of features decreases as the distance between the base "
            "task and target task increases.")
NEEDS = [Need("random", "AnB"), Need("natman", "AnB")]
PREMISES = ("bases_above_chance", "trained_alike")

PENALTY = "AnB top-layer drop: natural/man-made minus random splits"
PENALTY_POINTS = "the same drop in points"
SMALLEST = {PENALTY: -8.0}  # stated before any data; in points: this share of the bases' accuracy over chance


def caveat(table: Table) -> str:
    classes = {r.target: r.num_classes for r in table.rows if r.treatment == "base" and r.split == "natman"}
    counts = f"{classes.get('A', '?')}/{classes.get('B', '?')}"
    here = f"{counts} here, " if classes and counts != "449/551" else ""
    return (f"The natural and man-made halves also differ in class count ({here}449/551 in the original), and a "
            f"half with more classes is a harder task: part of the penalty may come from the class counts, not "
            f"from the distance between the tasks.")


def measure(table: Table, paper: dict[str, float]) -> tuple[Test, Test, dict]:
    natman, natman_unpaired = table.paired("AnB", "natman")
    random, random_unpaired = table.paired("AnB", "random")
    natman_n, random_n = table.layers("AnB", "natman"), table.layers("AnB", "random")
    top = [n for n in table.depth.top if n in natman_n and n in random_n]
    if top:
        bases = [p.base for p in natman + random if p.row.n in top]  # of the networks compared
        bases_points = 100 * sum(b.top1 - 1 / b.num_classes for b in bases) / len(bases)  # over chance
        smallest_points = SMALLEST[PENALTY] / 100 * bases_points
        parts = [stats.two_sample(name, stats.by_replicate((p for p in natman if p.row.n in top), value),
                                  stats.by_replicate((p for p in random if p.row.n in top), value), "less",
                                  smallest=smallest, paper_effect=paper.get(name), unit=unit,
                                  spread=stats.table_spread(table, "AnB", value))
                 for name, value, unit, smallest in ((PENALTY, stats.UNIT, OVER_CHANCE, SMALLEST[PENALTY]),
                                                     (PENALTY_POINTS, "points", "points", smallest_points))]
    else:
        why = (f"needs AnB at n = {' or '.join(map(str, table.depth.top))} on both split families, and this "
               f"table has natural/man-made n = {natman_n}, random n = {random_n}")
        parts = [stats.untestable(PENALTY, why, unit=OVER_CHANCE, smallest=SMALLEST[PENALTY]),
                 stats.untestable(PENALTY_POINTS, why, unit="points")]
    root = stats.all_of(TITLE, parts)
    penalty = root.part(PENALTY)

    def mean(pairs, n, value=stats.UNIT, target=None):
        chosen = [p for p in pairs if p.row.n == n and (target is None or p.row.target == target)]
        return stats.by_replicate(chosen, value).mean()

    details = {
        "top_n": top,
        "natman_over_chance_by_n": {str(n): mean(natman, n) for n in natman_n},
        "natman_points_by_n": {str(n): mean(natman, n, "points") for n in natman_n},
        # natural = half A, man-made = half B: natural -> man-made targets B
        "natural_to_manmade_over_chance_by_n": {str(n): mean(natman, n, target="B") for n in natman_n},
        "manmade_to_natural_over_chance_by_n": {str(n): mean(natman, n, target="A") for n in natman_n},
        "random_over_chance_by_n": {str(n): mean(random, n) for n in random_n},
        "random_points_by_n": {str(n): mean(random, n, "points") for n in random_n},
        "unpaired_networks": len(natman_unpaired) + len(random_unpaired),
    }
    return root, penalty, details
