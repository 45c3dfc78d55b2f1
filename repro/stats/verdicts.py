"""A claim's verdict: its combined test read as one of four outcomes, with one sentence saying why.

    reproduced | not_reproduced | inconclusive   (repro.stats.tests.decide)
    premise_not_met                              a premise the claim rests on failed (repro.premises): the
                                                 test is still run and shown, but it cannot speak for the claim
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

from repro.format import p_phrase, signed
from repro.stats.tests import ALPHA, MARGIN, Test, bootstrap_ci

VERDICTS = ("reproduced", "not_reproduced", "inconclusive", "premise_not_met")


@dataclass
class Verdict:
    claim: str  # claim id, e.g. 'coadaptation_dip'
    verdict: str  # one of VERDICTS
    effect: float  # the claim's headline effect, relative to the base of the target half
    unit: str  # 'points' (percentage points of top-1) or '%' (relative)
    ci: tuple[float, float]  # 95% confidence interval of the effect
    p: float  # p-value after correction
    paper_effect: float | None  # the same effect measured on the original study's numbers
    replicates: int  # replicates (independent pairs) used
    replicates_needed: int | None  # for 80% power at the observed spread
    explanation: str  # one sentence
    evidence: str = ""  # 'original', 'smoke', 'cpu', ...
    details: dict = field(default_factory=dict)
    premises: list[dict] = field(default_factory=list)  # the premises the claim rests on (repro.premises)
    controls: list[dict] = field(default_factory=list)  # controls shown under the claim, each with its verdict

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d


def _first(test: Test, verdict: str) -> Test:
    """The first leaf with this verdict (depth first): the part that explains the claim's verdict."""
    for leaf in test.leaves():
        if leaf.verdict == verdict:
            return leaf
    return test


def explain(root: Test, headline: Test) -> str:
    """One sentence: why the test got its verdict."""
    notes = list(dict.fromkeys(root.all_notes()))  # each note once
    tail = f" ({'; '.join(notes)})" if notes else ""
    if root.verdict == "reproduced":
        return (f"Reproduced: every part holds at α = {ALPHA} (largest {p_phrase(root.p)}); {headline.name}: "
                f"{signed(headline.effect)} {headline.unit}, 95% CI [{signed(headline.ci[0])}, "
                f"{signed(headline.ci[1])}]{tail}.")
    leaf = _first(root, root.verdict)
    label = "Not reproduced" if root.verdict == "not_reproduced" else "Inconclusive"
    return f"{label}: {leaf.name}: {leaf.why}{tail}."


def premise_sentence(failed: list[dict], would_be: str) -> str:
    """One sentence for a claim whose premises failed; `would_be` is the verdict its test alone gives."""
    said = "; ".join(f"{p['title']}: {p['measured']} (rule: {p['rule']}; {p['to_satisfy']})" for p in failed)
    return (f"Premise not met: {said}; the test alone would say {would_be.replace('_', ' ')}, but it cannot "
            f"speak for the claim while the premise fails.")


def control_json(test: Test, meaning: str = "") -> dict:
    """A control shown under its claim: its own verdict, effect and sentence (and what it means)."""
    return {"name": test.name, "verdict": test.verdict, "effect": test.effect, "unit": test.unit,
            "ci": list(test.ci), "p": test.p, "replicates": test.replicates,
            "explanation": explain(test, test), "meaning": meaning, "tests": test.to_dict()}


@functools.lru_cache(maxsize=64)
def on_original(measure, layers: frozenset | None = None) -> tuple[Test, Test]:
    """A claim's (combined test, headline test) on the original study's numbers, restricted to `layers`
    (see repro.paper.original_table), cached. Tests are frozen: sharing them is safe."""
    from repro.paper import original_table

    root, headline, _ = measure(original_table(layers), {})
    return root, headline


def make_verdict(claim: str, root: Test, headline: Test, paper_effect: float | None, evidence: str,
                 details: dict | None = None, premises: list[dict] | None = None,
                 controls: list[dict] | None = None) -> Verdict:
    """The Verdict of a claim from its combined test and its premises; the headline test gives the reported
    effect and CI. A failed premise turns any verdict into premise_not_met (the test stays in the details)."""
    premises = premises or []
    failed = [p for p in premises if p["blocks"]]
    verdict, explanation = root.verdict, explain(root, headline)
    if failed:
        verdict, explanation = "premise_not_met", premise_sentence(failed, root.verdict)
    return Verdict(
        claim=claim, verdict=verdict, effect=headline.effect, unit=headline.unit, ci=tuple(headline.ci),
        p=root.p, paper_effect=paper_effect, replicates=root.replicates, replicates_needed=root.needed,
        explanation=explanation, evidence=evidence,
        details={"alpha": ALPHA, "margin_percent": MARGIN, "headline": headline.name,
                 "verdict_of_the_test": root.verdict, "explanation_of_the_test": explain(root, headline),
                 "bootstrap_ci": list(bootstrap_ci(headline.values, headline.other)),
                 "tests": root.to_dict(), **(details or {})},
        premises=premises, controls=controls or [])
