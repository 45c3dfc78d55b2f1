"""Hypothesis, in the paper's words: "A final surprising result is that initializing a network with
transferred features from almost any number of layers can produce a boost to generalization that lingers
even after fine-tuning to the target dataset."

As a test, the paper's Table 1 (repro.claims.finetune_boost): AnB+ (layers 1..n copied from the other half,
then fine-tuned) ends above the base of its own target half, averaged over the n trained, AND above the
selffer BnB+ (the same training, nothing carried across tasks), each against its own base, paired by
replicate and n; each by at least +0.75% of the base's accuracy over chance (a third of Table 1's effects).
The first part rests on converged bases; the second cancels the extra training. Under the claim, a control
with its own verdict: does the boost survive a base trained as long in total (base-2x)?
"""
import dataclasses
import math

import numpy as np
import pytest

from repro.claims import finetune_boost as claim
from repro.claims import evaluate
from repro.paper import original_table
from repro.pytest_plugin import expect_reproduced
from repro.results import Table
from repro.simulated_tables import shuffled, transfer_adds_nothing
from repro.stats import ALPHA

pytestmark = pytest.mark.claim(claim)  # the `study` fixture trains the runs this claim needs


@pytest.mark.smoke
def test_in_the_original_study_the_boost_over_base_holds_but_the_selffer_gains_as_much(original, record_verdict):
    # The original gives `not reproduced`. AnB+ has 1-2 networks per n, 7 on split 0 (target 0B, n = 1..7) and
    # 3 on split 1 (target 1B, n = 2..4): against their own bases they gain +1.6% and +1.4%, a boost that
    # holds with 1 degree of freedom (p ~ 0.015). But BnB+, the same training with nothing carried across
    # tasks (0A: n = 1..7; 1A: n = 3, 5, 6), gains as much: paired by replicate and n (split 0 at n = 1..7,
    # split 1 at n = 3), AnB+ is +0.10% above BnB+, 90% CI [-0.40, +0.61]: the two splits agree closely
    # enough to exclude the +0.75% the claim states. The paper's Table 1 shows AnB+ 1.4 points above BnB+ only
    # because it compares every network with the mean of all bases.
    verdict = record_verdict(evaluate(claim, original))
    assert verdict.verdict == "not_reproduced", verdict.explanation
    boost, over = verdict.details["tests"]["parts"]
    assert boost["verdict"] == "reproduced" and boost["effect"] == pytest.approx(1.52, abs=0.01)
    assert over["verdict"] == "not_reproduced" and over["effect"] == pytest.approx(0.10, abs=0.01)
    assert over["ci"][1] < claim.SMALLEST[claim.OVER] == 0.75
    assert over["replicates"] == 2 and verdict.details["common_n"] == [1, 2, 3, 4, 5, 6, 7]
    assert verdict.explanation.startswith(f"Not reproduced: {claim.OVER}:")
    # the original trained no compute-matched base: its control cannot say whether the boost survives one
    (matched,) = verdict.controls
    assert matched["verdict"] == "inconclusive" and "0 base-2x" in matched["explanation"]
    assert verdict.details["headline"] == claim.OVER  # the page names the part the explanation names
    assert "mean of all bases" in verdict.details["caveat"]


@pytest.mark.smoke
def test_anb_plus_is_compared_with_bnb_plus_at_the_same_n():
    # Split 1 has AnB+ at n = 2, 3, 4 and BnB+ at n = 3, 5, 6: only n = 3 is compared there. A per-replicate
    # mean would set AnB+ at n = 2..4 against BnB+ at n = 3, 5, 6 (the old control: -0.07%).
    table = original_table()
    plus, selfer = table.paired("AnB+", "random")[0], table.paired("BnB+", "random")[0]
    over = claim.measure(table, {})[0].part(claim.OVER)
    at3 = [p.over_chance for p in plus if p.row.replicate == 1 and p.row.n == 3][0] - \
        [p.over_chance for p in selfer if p.row.replicate == 1 and p.row.n == 3][0]
    assert over.values[1] == pytest.approx(at3)


@pytest.mark.smoke
def test_when_transfer_adds_nothing_the_claim_is_not_reproduced(original):
    # Every AnB+ given the gain of BnB+ of its own replicate and n over its own base: the boost over base
    # stays (+1.6%), and the claim must not come out reproduced; nor in noisy copies of that table more
    # often than alpha.
    verdict = evaluate(claim, transfer_adds_nothing(original))
    assert verdict.verdict in ("not_reproduced", "inconclusive"), verdict.explanation
    rng = np.random.default_rng(0)
    copies = 100
    reproduced = 0
    for _ in range(copies):
        base = transfer_adds_nothing(original)
        noisy = Table([dataclasses.replace(r, top1=min(1.0, max(1e-4, r.top1 + rng.normal(0, 0.005))))
                       for r in base.rows], base.curves)
        reproduced += evaluate(claim, noisy).verdict == "reproduced"
    assert reproduced / copies <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / copies)


@pytest.mark.smoke
def test_the_papers_table_1_and_the_confound_of_its_bases(original):
    details = evaluate(claim, original).details
    table1 = details["table1"]
    # The paper's Table 1, computed its way (each network against the mean of all bases, AnB+ against BnB+).
    assert table1["1-7"]["paper_style_points_over_base"] == pytest.approx(1.6, abs=0.05)
    assert table1["1-7"]["paper_style_points_over_bnb_plus"] == pytest.approx(1.4, abs=0.05)
    assert table1["3-7"]["paper_style_points_over_base"] == pytest.approx(1.8, abs=0.05)
    assert table1["5-7"]["paper_style_points_over_bnb_plus"] == pytest.approx(1.7, abs=0.05)
    # Paired with their own bases, AnB+ and BnB+ gain the same (README: about +1.0 point each): AnB+ mostly
    # targets the strongest base (0B), BnB+ the weakest (0A, 1A).
    assert details["targets"]["AnB+"] == {"random:0/B": 7, "random:1/B": 3}
    assert table1["1-7"]["paired_points_anb_plus"] == pytest.approx(1.0, abs=0.05)
    assert table1["1-7"]["paired_points_bnb_plus"] == pytest.approx(1.0, abs=0.05)
    assert details["mean_base_of_targets"]["AnB+"] > details["mean_base_of_targets"]["BnB+"] + 0.01


@pytest.mark.smoke
def test_base_and_anb_plus_labels_shuffled_within_each_split_are_reproduced_no_more_often_than_alpha(original):
    # Which of a target's networks is the base, and which n each AnB+ is, drawn at random. With only 2
    # replicates, every shuffle is a fresh small study in which the claim is false, so at most about alpha of
    # them may pass by chance (none of these 100 do now that AnB+ must also beat BnB+; 4 did when the claim
    # was AnB+ above base alone); a test that passed more often would not be calibrated.
    shuffles = 100
    verdicts = [evaluate(claim, shuffled(original, ("base", "AnB+"), seed)).verdict for seed in range(shuffles)]
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / shuffles)
    assert verdicts.count("reproduced") / shuffles <= bound


@pytest.mark.cpu
@pytest.mark.full
def test_transfer_then_fine_tuning_generalizes_better_on_our_runs(study, record_verdict):
    verdict = record_verdict(evaluate(claim, study.table))
    expect_reproduced(verdict)
