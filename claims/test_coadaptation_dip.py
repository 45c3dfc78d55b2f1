"""Hypothesis, in the paper's words: "Transferability is negatively affected by two distinct issues: ...
(2) optimization difficulties related to splitting networks between co-adapted neurons, which was not
expected."

As a test: a network copied into itself with layers 1..n frozen (BnB) falls below its base at the worst of
n = 3..5 (Holm-corrected over those n), recovers at n = 6, 7 (above its own n = 3..5), and the same copy
fine-tuned (BnB+) ends above BnB at those layers: fine-tuning repairs the loss (repro.claims.coadaptation_dip).
It compares BnB with its base, so it rests on converged bases (the one-sided 95% bound of |BnB n=1 - base|
within 2.5% of base), on networks trained alike, and on a fine-tuned selffer that holds its base. Effects in %
of the base's accuracy over chance; the smallest that count: -1.5% (dip), +0.75% (recovery), +1.5% (repair).
"""
import pytest

from repro.claims import coadaptation_dip as claim
from repro.claims import evaluate
from repro.pytest_plugin import expect_reproduced
from repro.simulated_tables import shuffled

pytestmark = pytest.mark.claim(claim)  # the `study` fixture trains the runs this claim needs


@pytest.mark.smoke
def test_middle_layers_are_fragile_and_fine_tuning_repairs_them_in_the_original_study(original, record_verdict):
    # The original gives `reproduced`: BnB on 4 random splits (1 network per n each) falls 4.8% below base at
    # n = 5 (Holm p ~ 6e-5) and is 2.3% higher at n = 6, 7 than at n = 3..5 (p ~ 3e-6). BnB+ has only 1-2
    # networks per n, on 2 splits (0A: n = 1..7, 1A: n = 3, 5, 6); at n = 3..5, paired with BnB of the same
    # split and n, it is +4.5% and +4.2% of base higher, and the two splits agree so closely that even with
    # 1 degree of freedom the repair holds (p ~ 0.012): the weakest part, and the claim's p.
    verdict = record_verdict(evaluate(claim, original))
    assert verdict.verdict == "reproduced", verdict.explanation
    assert verdict.details["tests"]["parts"][2]["replicates"] == 2  # BnB+: splits 0 and 1 only
    assert verdict.details["tests"]["parts"][2]["effect"] == pytest.approx(4.38, abs=0.01)
    assert [p["status"] for p in verdict.premises] == ["met"] * 5
    assert verdict.effect == pytest.approx(-4.8, abs=0.1)  # BnB n=5: .5935 against .6251
    assert [leaf["smallest"] for leaf in verdict.details["tests"]["parts"][1:]] == [0.75, 1.5]


@pytest.mark.smoke
@pytest.mark.parametrize("seed", range(5))
def test_bnb_networks_relabelled_at_random_n_do_not_reproduce_it(original, seed):
    verdict = evaluate(claim, shuffled(original, ("BnB",), seed))
    assert verdict.verdict != "reproduced", verdict.explanation


@pytest.mark.smoke
@pytest.mark.parametrize("seed", range(5))
def test_base_bnb_and_bnb_plus_labels_shuffled_within_each_split_do_not_reproduce_it(original, seed):
    verdict = evaluate(claim, shuffled(original, ("base", "BnB", "BnB+"), seed))
    assert verdict.verdict != "reproduced", verdict.explanation


@pytest.mark.cpu
@pytest.mark.full
def test_fragile_coadaptation_on_our_runs(study, record_verdict):
    verdict = record_verdict(evaluate(claim, study.table))
    expect_reproduced(verdict)
