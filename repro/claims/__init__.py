"""The paper's five claims, one module each, in the scorecard's order, and the one driver that judges them.

Every module of this package but `protocol` is a claim, found when the package is imported (CLAIMS, sorted by their
ORDER), and satisfies `repro.claims.protocol.Claim` (checked then): ID, ORDER, TITLE, SENTENCE (the paper's words),
NEEDS (the runs it reads, as repro.runs.Need), PREMISES (the ids of repro.premises it rests on), SMALLEST (the
smallest effect of each test that counts as the claim, stated before any data), `measure(table, paper_effects) ->
(combined test, headline test, details)`, and optionally `controls(table, paper_effects) -> [(test, meaning)]`
(controls shown under the claim with their own verdicts) and `caveat(table) -> str` (their defaults:
repro.claims.protocol.OPTIONAL). The driver here sets the table's failed networks aside (a diverged network and what
was built from it: repro.results.without_failures), measures the premises and checks on what is left, runs `measure`
with the original study's effects of the same tests (measured by the same code on the same layers; for a network of
another depth, only the headline on the paper's own network), and makes the Verdict, which lists what the claim
lost. The statistics and the decision rule are repro.stats'.
"""
from __future__ import annotations

import functools
import importlib
import math
import pkgutil
from dataclasses import replace
from typing import NamedTuple

from repro import stats
from repro.claims.protocol import check_claim, member, no_caveat, no_controls
from repro.premises import measure_premises
from repro.profiles import MAX_LAYER as PAPER_BLOCKS
from repro.results import BASES, Table, without_failures


def _claim_modules() -> list:
    """Every module of this package but the protocol is a claim: each checked, in the scorecard's order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if info.name != "protocol")
    return sorted((check_claim(importlib.import_module(f"{__name__}.{name}")) for name in names),
                  key=lambda claim: claim.ORDER)


CLAIMS = _claim_modules()


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


def _controls(claim, kept: Table) -> list:
    """A claim's controls on the table without its failed networks, as [(test, meaning)] ([]: it has none)."""
    controls = member(claim, "controls")
    if controls is no_controls:
        return []
    return controls(kept, _original_controls(controls, kept.layer_set()) if kept.blocks == PAPER_BLOCKS else {})


def _treatments(claim) -> tuple[str, ...]:
    return tuple(dict.fromkeys(need.treatment for need in claim.NEEDS))


def lost_by(claim, lost) -> list[dict]:
    """The failed networks (repro.results.Lost) a claim would have read: of its treatments, and the bases."""
    treatments = _treatments(claim)
    return [x.to_dict() for x in lost if x.row.treatment in treatments + BASES]


class Judged(NamedTuple):
    """A claim measured on a table, before it becomes a Verdict."""

    root: stats.Test  # the combined test
    headline: stats.Test
    details: dict
    premises: list  # repro.premises.Premise, those the claim rests on
    kept: Table  # the table without its failed networks
    lost: list[dict]  # the failed networks the claim would have read
    paper_headline: stats.Test  # the headline on the original study's numbers


def _judge(claim, table) -> Judged:
    kept, lost = without_failures(table)
    if kept.blocks == PAPER_BLOCKS:
        paper_root, paper_headline = on_original(claim.measure, kept.layer_set())
        paper = paper_root.effects_by_name()
    else:  # n means another position on another depth: the paper's effects on its own network, none per part
        paper_root, paper_headline = on_original(claim.measure)
        paper = {}
    root, headline, details = claim.measure(kept, paper)
    premises = [p for p in measure_premises(table, _treatments(claim)) if p.id in claim.PREMISES]
    return Judged(root, headline, {**details, "original_headline": paper_headline.name}, premises, kept,
                  lost_by(claim, lost), paper_headline)


def evaluate(claim, table) -> stats.Verdict:
    """One claim's Verdict on a results table (the original study's or ours)."""
    root, headline, details, premises, kept, lost, paper_headline = _judge(claim, table)
    caveat = member(claim, "caveat")
    if caveat is not no_caveat:
        details["caveat"] = caveat(kept)
    controls = [stats.control_json(test, meaning) for test, meaning in _controls(claim, kept)]
    if lost:
        details["lost"] = lost
    verdict = stats.make_verdict(claim.ID, root, headline, paper_headline.effect, table.evidence, details,
                                 [p.to_dict() for p in premises], controls)
    if lost:  # what the claim judged without, in its one sentence
        shown = "; ".join(f"{x['network']}: {x['why']}" for x in lost[:3])
        more = f"; and {len(lost) - 3} more" if len(lost) > 3 else ""
        verdict.explanation = (f"{verdict.explanation[:-1]} (judged without {len(lost)} failed "
                               f"network{'s' if len(lost) > 1 else ''}: {shown}{more}).")
    return verdict


def outcome(claim, table) -> tuple[str, list[str]]:
    """(the claim's verdict, its controls' verdicts) on a table, without the details: for the calibration's
    thousands of simulated studies. The same failures set aside, premises, checks, tests and original effects
    as `evaluate`."""
    root, _, _, premises, kept, _, _ = _judge(claim, table)
    controls = [test.verdict for test, _ in _controls(claim, kept)]
    if any(p.blocks and p.gates == "premise_not_met" for p in premises):
        return "premise_not_met", controls
    if any(p.blocks for p in premises):
        return "inconclusive", controls
    return root.verdict, controls


def paper_effect(claim) -> float:
    """A claim's headline effect on the original study's numbers (all its layers), by the same code."""
    return on_original(claim.measure)[1].effect


def evaluate_all(table) -> list:
    """Every claim's Verdict on one results table, in CLAIMS order."""
    return [evaluate(claim, table) for claim in CLAIMS]


def on_replicate_groups(verdicts, table, groups: dict[str, list[int]]) -> list:
    """The verdicts with the part each names measured again on each group of replicates alone, in
    details['by_numerics']: for a study whose replicates were trained in different numerics (`groups`: numerics
    -> its replicates, repro.replicates.numerics_groups), whether each numerics tells the same story; unchanged
    where the table's replicates have one numerics. Descriptive: the verdict stays the one on every replicate (a
    network is compared with the base of its own replicate, in its own numerics, and the numerics' differences
    are part of the spread between replicates)."""
    in_table = {r.replicate for r in table.rows}  # a partly trained replicate's record has no runs in the table
    groups = {numerics: [r for r in replicates if r in in_table] for numerics, replicates in groups.items()}
    groups = {numerics: replicates for numerics, replicates in groups.items() if replicates}
    if len(groups) < 2:  # one numerics: the verdict on every replicate says it all
        return verdicts
    out = []
    for verdict in verdicts:
        claim = next((c for c in CLAIMS if c.ID == verdict.claim), None)
        name = verdict.details.get("headline")
        if claim is None or not name:
            out.append(verdict)
            continue
        rows = []
        for numerics, replicates in groups.items():
            alone = replace(table, rows=[r for r in table.rows if r.replicate in replicates])
            try:
                part = _judge(claim, alone).root.part(name)
            except KeyError:  # these replicates alone do not have the part (its networks are elsewhere)
                continue
            rows.append({"numerics": numerics, "replicates": replicates, "effect": _number(part.effect),
                         "ci": [_number(x) for x in part.ci], "unit": part.unit, "used": part.replicates})
        out.append(replace(verdict, details={**verdict.details, "by_numerics": rows}))
    return out


def _number(x: float) -> float | None:
    return None if x is None or math.isnan(x) else x
