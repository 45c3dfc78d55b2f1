"""Hypothesis, in the paper's words: "We also document that the transferability of features decreases as
the distance between the base task and target task increases."

As a test: frozen transfer of the top layers (n = 6, 7) loses more of its base's accuracy between the
natural and the man-made halves (both directions) than between random halves; in the original at n = 7,
-25 points against -8 (repro.claims.distance_penalty). In % of each base's accuracy over chance and in points
alike (stated: -8% of it), so that weaker natural/man-made bases alone cannot make the penalty.
"""
import numpy as np
import pytest

from repro.claims import distance_penalty as claim
from repro.claims import evaluate
from repro.pytest_plugin import expect_reproduced
from repro.simulated_tables import paper_truth, simulate_table, swapped_families

pytestmark = pytest.mark.claim(claim)  # the `study` fixture trains the runs this claim needs


@pytest.mark.smoke
def test_top_layers_transfer_worse_between_natural_and_man_made_in_the_original_study(original, record_verdict):
    # The original gives `reproduced`, under one stated rule. At n = 6, 7 AnB loses 35% of its base
    # between natural and man-made classes (mean of both directions) and 10% between random halves: -25%.
    # The natural/man-made split is one replicate, so it borrows the largest seed-to-seed spread among the
    # table's replicated frozen-transfer cells (BnB n=1 on the random splits: 0.53% of base, 3 degrees of
    # freedom), the rule random_features uses too; the random splits keep their own spread (Welch).
    verdict = record_verdict(evaluate(claim, original))
    assert verdict.verdict == "reproduced", verdict.explanation
    assert verdict.effect == pytest.approx(-25.0, abs=0.2)
    assert verdict.details["natman_points_by_n"]["7"] == pytest.approx(-25.0, abs=0.05)  # README: -25.0
    assert verdict.details["random_points_by_n"]["7"] == pytest.approx(-8.3, abs=0.05)  # README: -8.3
    assert ("single replicates tested with a borrowed seed-to-seed spread: the largest of 14 replicated frozen "
            "transfer cells (BnB n=1 (random): sd 0.53, 3 degrees of freedom") in verdict.explanation
    assert "72/128" not in verdict.details["caveat"] and "449/551 in the original" in verdict.details["caveat"]
    # and in points, against the same -8% stated as points of its bases over chance (-4.9 points)
    points = verdict.details["tests"]["parts"][1]
    assert points["name"] == claim.PENALTY_POINTS and points["verdict"] == "reproduced"
    assert points["effect"] == pytest.approx(-14.4, abs=0.1) and points["smallest"] == pytest.approx(-4.94, abs=0.01)


@pytest.mark.smoke
def test_random_and_natural_man_made_splits_swapped_do_not_reproduce_it(original):
    verdict = evaluate(claim, swapped_families(original))
    assert verdict.verdict != "reproduced", verdict.explanation


@pytest.mark.smoke
@pytest.mark.parametrize("seed", range(3))
def test_swapping_the_split_families_of_a_simulated_study_with_the_papers_effects_undoes_it(seed):
    # A control with teeth: 5 simulated replicates with the original's effects are reproduced; the same
    # networks with the split families swapped are not.
    table = simulate_table(paper_truth(), 5, np.random.default_rng(seed))
    assert evaluate(claim, table).verdict == "reproduced"
    verdict = evaluate(claim, swapped_families(table))
    assert verdict.verdict != "reproduced", verdict.explanation


@pytest.mark.cpu
@pytest.mark.full
def test_distant_tasks_transfer_worse_on_our_runs(study, record_verdict):
    verdict = record_verdict(evaluate(claim, study.table))
    expect_reproduced(verdict)
