"""Calibration of the claims' tests on simulated studies shaped like ours (repro.simulate): where a claim is
false, it comes out `reproduced` no more often than alpha; where the original study's effects are true,
it comes out `reproduced` more often the more replicates a study has."""
import math

import pytest

from repro.claims import CLAIMS
from repro.simulate import format_power_table, null_truths, power_table, reproduced_rate
from repro.stats import ALPHA

pytestmark = pytest.mark.smoke

SIMS = 200
# alpha plus three Monte Carlo standard errors of a rate estimated from SIMS studies
BOUND = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / SIMS)
MODULES = {claim.ID: claim for claim in CLAIMS}
NULLS = [(claim, name) for claim, truths in null_truths().items() for name in truths]


def test_every_claim_has_a_null_to_be_calibrated_against():
    assert set(null_truths()) == set(MODULES)


@pytest.mark.parametrize("replicates", [3, 8])
@pytest.mark.parametrize("claim,null", NULLS, ids=[f"{c}: {n}" for c, n in NULLS])
def test_a_false_claim_is_reproduced_at_most_alpha_of_the_time(claim, null, replicates):
    rate = reproduced_rate(MODULES[claim], null_truths()[claim][null], replicates, SIMS, seed=replicates)
    assert rate <= BOUND, f"{claim} under '{null}' with {replicates} replicates: {rate:.3f} > {BOUND:.3f}"


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
