"""Statistics for the claims, in four modules by job (after rliable: pure functions on arrays, then the
reading of them):

- repro.stats.samples: one value per replicate from paired networks; the spread a single replicate borrows.
- repro.stats.tests: one-sample, two-sample and equivalence tests against a stated smallest effect, Holm,
  the bootstrap; the decision rule (`decide`) and how parts combine (`all_of`, `any_of`). Each returns a
  new, frozen `Test`.
- repro.stats.power: the power of a part at its stated effect, and the replicates that give 80% of it.
- repro.stats.verdicts: a claim's `Verdict` (four outcomes, premise_not_met included), its sentence and the
  magnitude label beside it.

Premises (converged bases, bases above chance) are measured from a table by repro.premises; the claims are
driven by repro.claims. Nothing here knows the paper: the original study's effects of the same tests are
computed by repro.claims and handed in. Everything a claim module needs is re-exported here.
"""
from repro.stats.power import POWER, power, replicates_needed
from repro.stats.samples import (KINDS, UNIT, Sample, Spread, by_replicate, difference, difference_by_n,
                                 largest_spread, slope_by_replicate, table_spread)
from repro.stats.tests import (ALPHA, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DIRECTIONS, LEVEL, MARGIN,
                               MAX_REPLICATES, Test, all_of, any_of, bootstrap_ci, decide, holm, one_sample,
                               two_sample, untestable)
from repro.stats.verdicts import (MAGNITUDES, VERDICTS, Verdict, control_json, deciding_part, explain, magnitude,
                                  make_verdict)

__all__ = ["POWER", "power", "replicates_needed", "KINDS", "UNIT", "Sample", "Spread", "by_replicate",
           "difference", "difference_by_n", "largest_spread", "slope_by_replicate", "table_spread", "ALPHA",
           "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "DIRECTIONS", "LEVEL", "MARGIN", "MAX_REPLICATES", "Test",
           "all_of", "any_of", "bootstrap_ci", "decide", "holm", "one_sample", "two_sample", "untestable",
           "MAGNITUDES", "VERDICTS", "Verdict", "control_json", "deciding_part", "explain", "magnitude",
           "make_verdict"]
