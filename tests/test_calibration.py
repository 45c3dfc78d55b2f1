"""Calibration of the claims' verdicts on simulated studies shaped like ours (repro.simulate), against the
confounds a skeptical reader would try:
- where a claim is false, it comes out `reproduced` no more often than alpha (including BnB+ = BnB: no repair);
- where the original study's effects are true, it comes out `not_reproduced` no more often than alpha, at 3, 5
  and 8 replicates, and `reproduced` more often the more replicates a study has (the power table);
- with undertrained bases (every transferred network shifted up by 10% of its base), the claims that rest on
  converged bases come out `premise_not_met`, and the others keep the verdict they had without the shift;
- AnB+ = BnB+ (no lingering transfer): the AnB+ vs BnB+ control comes out `reproduced` no more than alpha.

Monte Carlo error: a rate estimated from SIMS = 200 studies has a standard error of at most
sqrt(0.05 * 0.95 / 200) = 0.015 near alpha; the bounds allow alpha plus three of them (0.096).
"""
import math

import numpy as np
import pytest

from repro.claims import CLAIMS, outcome
from repro.claims import finetune_boost
from repro.simulate import (REPLICATES, format_power_table, no_lingering_transfer, null_truths, paper_truth,
                            paper_truth_rates, power_table, reproduced_rate, shifted, simulate_table,
                            verdict_rates)
from repro.stats import ALPHA

pytestmark = pytest.mark.smoke

SIMS = 200
MC_ERROR = math.sqrt(ALPHA * (1 - ALPHA) / SIMS)
BOUND = ALPHA + 3 * MC_ERROR
MODULES = {claim.ID: claim for claim in CLAIMS}
NULLS = [(claim, name) for claim, truths in null_truths().items() for name in truths]
UNDERTRAINED = 10.0  # % of base: the CPU study's BnB at n = 1 gains +10.4%


def test_every_claim_has_a_null_to_be_calibrated_against():
    assert set(null_truths()) == set(MODULES)


@pytest.mark.parametrize("replicates", [3, 8])
@pytest.mark.parametrize("claim,null", NULLS, ids=[f"{c}: {n}" for c, n in NULLS])
def test_a_false_claim_is_reproduced_at_most_alpha_of_the_time(claim, null, replicates):
    rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], replicates, SIMS, seed=replicates)
    assert rate <= BOUND, f"{claim} under '{null}' with {replicates} replicates: {rate:.3f} > {BOUND:.3f}"


@pytest.mark.parametrize("replicates", REPLICATES)
def test_a_true_claim_is_not_reproduced_at_most_alpha_of_the_time(replicates):
    # Before the decision rule was bounded, early_layer_generality came out not reproduced in ~9% of these
    # studies at 3 replicates (it said "not reproduced" once k reached the replicates needed for 80% power,
    # which misses 20% of the time by design).
    rates = paper_truth_rates(sims=SIMS)
    for claim, by_replicates in rates.items():
        rate = by_replicates[replicates]["claim"]["not_reproduced"]
        assert rate <= BOUND, f"{claim} at {replicates} replicates: not reproduced in {rate:.3f} > {BOUND:.3f}"


def test_power_rises_with_replicates_under_the_original_studys_effects(capsys):
    table = power_table(sims=SIMS)
    with capsys.disabled():
        print("\nPower (fraction reproduced) with the original study's effects, per-network noise 0.5 points:")
        print(format_power_table(table))
    mc_error = 2 * math.sqrt(0.25 / SIMS)
    for claim, by_replicates in table.items():
        p3, p5, p8 = by_replicates[3], by_replicates[5], by_replicates[8]
        assert p5 >= p3 - mc_error and p8 >= p5 - mc_error, (claim, by_replicates)
        assert p8 > p3 or p3 == 1.0, (claim, by_replicates)
        assert p8 >= 0.8, f"{claim}: 8 replicates should detect the original's own effects ({p8:.2f})"


def test_undertrained_bases_gate_the_claims_that_rest_on_them_and_leave_the_others_unchanged():
    # The same simulated networks twice (same seed), once with every transferred network 10% of its base
    # higher, as undertrained bases make them.
    truth, undertrained = paper_truth(), shifted(paper_truth(), UNDERTRAINED)
    for claim in CLAIMS:
        for seed in range(20):
            as_is = outcome(claim, simulate_table(truth, 5, np.random.default_rng(seed)))[0]
            shifted_verdict = outcome(claim, simulate_table(undertrained, 5, np.random.default_rng(seed)))[0]
            if "converged_bases" in claim.PREMISES:
                assert shifted_verdict == "premise_not_met", (claim.ID, seed, as_is)
            else:
                assert shifted_verdict == as_is, (claim.ID, seed)


@pytest.mark.parametrize("replicates", [3, 8])
def test_without_lingering_transfer_the_anb_plus_over_bnb_plus_control_is_reproduced_at_most_alpha(replicates):
    rates = verdict_rates(finetune_boost, no_lingering_transfer(paper_truth()), replicates, SIMS, seed=replicates)
    (control,) = rates["controls"]
    assert control["reproduced"] <= BOUND, control
