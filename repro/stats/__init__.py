"""Statistics for the claims, in three modules by job (after rliable: pure functions on arrays, then the
reading of them):

- repro.stats.samples: one value per replicate from paired networks; the spread a single replicate borrows;
  the divergence rule.
- repro.stats.tests: one-sample, two-sample and equivalence tests, Holm, the bootstrap, power; the decision
  rule (`decide`) and how parts combine (`all_of`, `any_of`). Each returns a new, frozen `Test`.
- repro.stats.verdicts: a claim's `Verdict` (four outcomes, premise_not_met included), its sentence and the
  magnitude label beside it.

Premises (converged bases, bases above chance) are measured from a table by repro.premises; the claims are
driven by repro.claims. Nothing here knows the paper: the original study's effects of the same tests are
computed by repro.claims and handed in. Everything a claim module needs is re-exported here.
"""
from repro.stats.samples import (KINDS, Sample, Spread, by_replicate, difference, difference_by_n, largest_spread,
                                 resolve_divergence, slope_by_replicate, table_spread)
from repro.stats.tests import (ALPHA, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, DIRECTIONS, LEVEL, MARGIN,
                               MAX_REPLICATES, POWER, Test, all_of, any_of, bootstrap_ci, decide, holm, one_sample,
                               replicates_needed, two_sample, untestable)
from repro.stats.verdicts import (MAGNITUDES, VERDICTS, Verdict, control_json, deciding_part, explain, magnitude,
                                  make_verdict)

__all__ = ["KINDS", "Sample", "Spread", "by_replicate", "difference", "difference_by_n", "largest_spread",
           "resolve_divergence",
           "slope_by_replicate", "table_spread", "ALPHA", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "DIRECTIONS",
           "LEVEL", "MARGIN", "MAX_REPLICATES", "POWER", "Test", "all_of", "any_of", "bootstrap_ci", "decide",
           "holm", "one_sample", "replicates_needed", "two_sample", "untestable", "MAGNITUDES", "VERDICTS",
           "Verdict", "control_json", "deciding_part", "explain", "magnitude", "make_verdict"]
