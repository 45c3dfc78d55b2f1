"""The paper's five claims, one module each, in the scorecard's order, and the one driver that judges them.

Each module has ID, TITLE, SENTENCE (the paper's words), NEEDS (the runs it reads, as repro.runs.Need),
PREMISES (the ids of repro.premises it rests on), `measure(table, paper_effects) -> (combined test, headline
test, details)`, and optionally `controls(table, paper_effects) -> [(test, meaning)]` (controls shown under
the claim with their own verdicts) and `caveat(table) -> str`. The driver here measures the premises, runs
`measure` with the original study's effects of the same tests (measured by the same code on the same
layers), and makes the Verdict. The statistics and the decision rule are repro.stats'.
"""
from __future__ import annotations

import functools

from repro import stats
from repro.claims import (coadaptation_dip, distance_penalty, early_layer_generality, finetune_boost,
                          random_features)
from repro.premises import measure_premises

CLAIMS = [early_layer_generality, coadaptation_dip, distance_penalty, finetune_boost, random_features]


@functools.lru_cache(maxsize=64)
def on_original(measure, layers: frozenset | None = None) -> tuple[stats.Test, stats.Test]:
    """A claim's (combined test, headline test) on the original study's numbers, restricted to `layers`
    (see repro.paper.original_table), cached. Tests are frozen: sharing them is safe."""
    from repro.paper import original_table

    root, headline, _ = measure(original_table(layers), {})
    return root, headline


@functools.lru_cache(maxsize=64)
def _original_controls(controls, layers: frozenset | None) -> dict[str, float]:
    from repro.paper import original_table

    return {test.name: test.effect for test, _ in controls(original_table(layers), {})}


def evaluate(claim, table) -> stats.Verdict:
    """One claim's Verdict on a results table (the original study's or ours)."""
    layers = table.layer_set()
    paper_root, paper_headline = on_original(claim.measure, layers)
    root, headline, details = claim.measure(table, paper_root.effects_by_name())
    details = {**details, "original_headline": paper_headline.name}
    if hasattr(claim, "caveat"):
        details["caveat"] = claim.caveat(table)
    controls = []
    if hasattr(claim, "controls"):
        paper = _original_controls(claim.controls, layers)
        controls = [stats.control_json(test, meaning) for test, meaning in claim.controls(table, paper)]
    premises = [p.to_dict() for p in measure_premises(table) if p.id in claim.PREMISES]
    return stats.make_verdict(claim.ID, root, headline, paper_headline.effect, table.evidence, details,
                              premises, controls)


def outcome(claim, table) -> tuple[str, list[str]]:
    """(the claim's verdict, its controls' verdicts) on a table, without the details: for the calibration's
    thousands of simulated studies. The same premises, tests and original effects as `evaluate`."""
    layers = table.layer_set()
    paper_root, _ = on_original(claim.measure, layers)
    root, _, _ = claim.measure(table, paper_root.effects_by_name())
    controls = []
    if hasattr(claim, "controls"):
        controls = [test.verdict for test, _ in claim.controls(table, _original_controls(claim.controls, layers))]
    blocked = any(p.blocks for p in measure_premises(table) if p.id in claim.PREMISES)
    return ("premise_not_met" if blocked else root.verdict), controls


def paper_effect(claim) -> float:
    """A claim's headline effect on the original study's numbers (all its layers), by the same code."""
    return on_original(claim.measure)[1].effect


def evaluate_all(table) -> list:
    """Every claim's Verdict on one results table, in CLAIMS order."""
    return [evaluate(claim, table) for claim in CLAIMS]
