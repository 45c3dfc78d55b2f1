"""The paper's five claims, one module each, in the scorecard's order.

Each module has ID, TITLE, SENTENCE (the paper's words), NEEDS (the runs it reads, as repro.runs.Need),
`measure(table, paper_effects) -> (combined test, headline test, details)`, `evaluate(table) -> Verdict` (on
the original study's table or on ours) and `paper_effect()` (the headline effect on the original study's
numbers, by the same code). The statistics and the decision rule are repro.stats'.
"""
from __future__ import annotations

from repro.claims import (coadaptation_dip, distance_penalty, early_layer_generality, finetune_boost,
                          random_features)

CLAIMS = [early_layer_generality, coadaptation_dip, distance_penalty, finetune_boost, random_features]


def evaluate_all(table) -> list:
    """Every claim's Verdict on one results table, in CLAIMS order."""
    return [claim.evaluate(table) for claim in CLAIMS]
