"""Calibration of the claims' verdicts on simulated studies shaped like ours (repro.simulate), against the
confounds a skeptical reader would try:
- where a claim is false, it comes out `reproduced` no more often than alpha (including BnB+ = BnB: no repair,
  and AnB+ = BnB+: no lingering transfer);
- where the original study's effects are true, it comes out `not_reproduced` no more often than alpha, at 3, 5
  and 8 replicates, and `reproduced` more often the more replicates a study has (the power table);
- with undertrained bases (every transferred network shifted up by 10% of its base), the claims that rest on
  converged bases come out `premise_not_met`, and the others keep the verdict they had without the shift;
- single-replicate cells (the natural/man-made split and the random control once, as in the original) that
  borrow a spread stay at or below alpha when they are 1x, 1.5x and 2x noisier per network than the cells they
  borrow from; 3x is reported;
- one diverged network in every study (scored at chance) does not raise a false claim above alpha.

Monte Carlo error. The smoke tier runs SIMS = 200 studies per rate: a standard error of at most
sqrt(0.05 * 0.95 / 200) = 0.015 near alpha, bounds alpha plus three of them (0.096), which a true rate of 8%
would pass. The `slow` tier (`pytest -m slow tests/test_calibration.py`) runs SLOW_SIMS = 2,000 per rate: a
standard error of 0.0049, bound 0.065, which certifies 5% to within the Monte Carlo error; its measured rates
are printed and quoted in docs/statistics.md.
"""
import math

import numpy as np
import pytest

from repro.claims import CLAIMS, outcome
from repro.claims import distance_penalty, finetune_boost, random_features
from repro.simulate import (REPLICATES, format_power_table, no_lingering_transfer, null_truths, paper_truth,
                            paper_truth_rates, power_table, reproduced_rate, shifted, simulate_table,
                            verdict_rates)
from repro.stats import ALPHA


def bound(sims: int) -> float:
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


SIMS = 200
SLOW_SIMS = 2_000
BOUND = bound(SIMS)
MODULES = {claim.ID: claim for claim in CLAIMS}
NULLS = [(claim, name) for claim, truths in null_truths().items() for name in truths]
UNDERTRAINED = 10.0  # % of base: the CPU study's BnB at n = 1 gains +10.4%
REPRODUCED_ON_THE_ORIGINAL = ("early_layer_generality", "coadaptation_dip", "distance_penalty", "random_features")
# single-replicate cells (natural/man-made AnB, the random control) and the null each borrowing claim is false at
BORROWERS = [(distance_penalty, "natural/man-made drops as on random splits", (("natman", "AnB"),)),
             (random_features, "random frozen as good as AnB at n=1", (("natman", "AnB"), ("natman", "random")))]


def borrowed_rate(claim, null, cells, heterogeneity, replicates, sims, seed):
    """Reproduced rate of a false claim whose natural/man-made cells have one replicate and `heterogeneity`
    times the per-network noise of the random splits' cells they borrow a spread from."""
    return reproduced_rate(claim, null_truths()[claim.ID][null], replicates, sims, seed, natman_replicates=1,
                           noise_scale={cell: heterogeneity for cell in cells})


@pytest.mark.smoke
def test_every_claim_has_a_null_to_be_calibrated_against():
    assert set(null_truths()) == set(MODULES)


@pytest.mark.smoke
@pytest.mark.parametrize("replicates", [3, 8])
@pytest.mark.parametrize("claim,null", NULLS, ids=[f"{c}: {n}" for c, n in NULLS])
def test_a_false_claim_is_reproduced_at_most_alpha_of_the_time(claim, null, replicates):
    rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], replicates, SIMS, seed=replicates)
    assert rate <= BOUND, f"{claim} under '{null}' with {replicates} replicates: {rate:.3f} > {BOUND:.3f}"


@pytest.mark.smoke
@pytest.mark.parametrize("replicates", REPLICATES)
def test_a_true_claim_is_not_reproduced_at_most_alpha_of_the_time(replicates):
    # Before the decision rule was bounded, early_layer_generality came out not reproduced in ~9% of these
    # studies at 3 replicates (it said "not reproduced" once k reached the replicates needed for 80% power,
    # which misses 20% of the time by design).
    rates = paper_truth_rates(sims=SIMS)
    for claim, by_replicates in rates.items():
        rate = by_replicates[replicates]["claim"]["not_reproduced"]
        assert rate <= BOUND, f"{claim} at {replicates} replicates: not reproduced in {rate:.3f} > {BOUND:.3f}"


@pytest.mark.smoke
def test_power_rises_with_replicates_under_the_original_studys_effects(capsys):
    table = power_table(sims=SIMS)
    with capsys.disabled():
        print("\nPower (fraction reproduced) with the original study's effects, per-network noise 0.5 points:")
        print(format_power_table(table))
    mc_error = 2 * math.sqrt(0.25 / SIMS)
    for claim, by_replicates in table.items():
        p3, p5, p8 = by_replicates[3], by_replicates[5], by_replicates[8]
        assert p5 >= p3 - mc_error and p8 >= p5 - mc_error, (claim, by_replicates)
        if claim in REPRODUCED_ON_THE_ORIGINAL:
            assert p8 > p3 or p3 == 1.0, (claim, by_replicates)
            assert p8 >= 0.8, f"{claim}: 8 replicates should detect the original's own effects ({p8:.2f})"
    # claim 4 as the paper states it (AnB+ above BnB+ too) is not what the original's own numbers show: its
    # AnB+ gains about what BnB+ gains, so even 8 replicates of those effects rarely reproduce it
    assert table["finetune_boost"][8] < 0.5


@pytest.mark.smoke
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


@pytest.mark.smoke
@pytest.mark.parametrize("replicates", [3, 8])
def test_without_lingering_transfer_claim_4_is_reproduced_at_most_alpha_even_with_undertrained_bases(replicates):
    # AnB+ = BnB+, both +2.4% of base (a bias just inside the converged premise's tolerance): the boost over
    # base is real, and all of it is longer training; claim 4's second part must catch it.
    truth = shifted(no_lingering_transfer(paper_truth()), 2.4)
    rates = verdict_rates(finetune_boost, truth, replicates, SIMS, seed=replicates)
    assert rates["claim"]["reproduced"] <= BOUND, rates


@pytest.mark.smoke
@pytest.mark.parametrize("heterogeneity", [1.0, 1.5, 2.0])
@pytest.mark.parametrize("claim,null,cells", BORROWERS, ids=[c.ID for c, _, _ in BORROWERS])
def test_a_single_replicate_cell_that_borrows_a_spread_is_calibrated_under_heterogeneous_noise(
        claim, null, cells, heterogeneity):
    rate = borrowed_rate(claim, null, cells, heterogeneity, 5, SIMS, seed=7)
    assert rate <= BOUND, f"{claim.ID}, single-replicate cells {heterogeneity}x as noisy: {rate:.3f} > {BOUND:.3f}"


@pytest.mark.smoke
@pytest.mark.parametrize("claim,null", NULLS[:1] + [n for n in NULLS if n[1] == "no repair: BnB+ as BnB"],
                         ids=lambda x: str(x))
def test_one_diverged_network_per_study_does_not_make_a_false_claim_pass(claim, null):
    rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], 3, SIMS, seed=11, diverged=True)
    assert rate <= BOUND, f"{claim} under '{null}' with a diverged network: {rate:.3f} > {BOUND:.3f}"


# --- the slow tier: 2,000 studies per rate --------------------------------------------------------------------


@pytest.mark.slow
def test_at_2000_studies_per_rate_every_false_claim_stays_within_alpha(capsys):
    limit = bound(SLOW_SIMS)
    lines, over = [], []
    for claim, null in NULLS:
        for replicates in (3, 8):
            rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], replicates, SLOW_SIMS, seed=replicates)
            lines.append(f"{claim:24s} {null:48s} R={replicates}: reproduced {rate:.4f}")
            over += [lines[-1]] if rate > limit else []
    for claim in (finetune_boost,):
        truth = shifted(no_lingering_transfer(paper_truth()), 2.4)
        rate = reproduced_rate(claim, truth, 5, SLOW_SIMS, seed=5)
        name = "AnB+ as BnB+, both +2.4% (bias at the tolerance)"
        lines.append(f"{claim.ID:24s} {name:48s} R=5: reproduced {rate:.4f}")
        over += [lines[-1]] if rate > limit else []
    for claim, null, cells in BORROWERS:
        for heterogeneity in (1.0, 1.5, 2.0, 3.0):
            rate = borrowed_rate(claim, null, cells, heterogeneity, 5, SLOW_SIMS, seed=7)
            name = f"{null}, natman once, {heterogeneity:g}x noise"
            lines.append(f"{claim.ID:24s} {name:48s} R=5: reproduced {rate:.4f}")
            over += [lines[-1]] if rate > limit and heterogeneity <= 2 else []
    for claim, null in NULLS:
        rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], 3, SLOW_SIMS, seed=11, diverged=True)
        lines.append(f"{claim:24s} {null + ', one diverged':48s} R=3: reproduced {rate:.4f}")
        over += [lines[-1]] if rate > limit else []
    rates = paper_truth_rates(sims=SLOW_SIMS)
    for claim, by_replicates in rates.items():
        for replicates, r in by_replicates.items():
            lines.append(f"{claim:24s} {'original effects: not reproduced':48s} R={replicates}: "
                         f"{r['claim']['not_reproduced']:.4f} (reproduced {r['claim']['reproduced']:.4f})")
            over += [lines[-1]] if r["claim"]["not_reproduced"] > limit else []
    with capsys.disabled():
        print(f"\nCalibration at {SLOW_SIMS} simulated studies per rate (bound {limit:.4f}):")
        print("\n".join(lines))
    assert not over, over
