"""A claim's verdict: its combined test read as one of four outcomes, with one sentence saying why.

    reproduced | not_reproduced | inconclusive   (repro.stats.tests.decide)
    premise_not_met                              a premise the claim rests on failed (repro.premises): the
                                                 test is still run and shown, but it cannot speak for the claim
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from repro.format import p_phrase, signed
from repro.stats.tests import ALPHA, LEVEL, MARGIN, Test, bootstrap_ci

VERDICTS = ("reproduced", "not_reproduced", "inconclusive", "premise_not_met")


@dataclass
class Verdict:
    claim: str  # claim id, e.g. 'coadaptation_dip'
    verdict: str  # one of VERDICTS
    effect: float  # the claim's headline effect, relative to the base of the target half
    unit: str  # 'points' (percentage points of top-1) or '%' (relative)
    ci: tuple[float, float]  # confidence interval at LEVEL (90%: its ends are the one-sided tests' bounds)
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

    @property
    def magnitude(self) -> str:
        """The effect against the original study's same effect (see `magnitude`): '' when not comparable."""
        return self.details.get("magnitude", "")

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


MAGNITUDES = ("consistent with the original", "smaller than the original", "larger than the original")


def magnitude(test: Test) -> str:
    """How a test's effect compares with the original study's effect of the same test, by its confidence
    interval: 'smaller than the original' or 'larger' when the interval excludes the original's effect (for a
    one-sided test: weaker or stronger in the claimed direction; for an equivalence: closer to zero or farther
    from it), 'consistent with the original' when it holds it, '' when there is nothing to compare."""
    paper, (lo, hi) = test.paper_effect, test.ci
    if paper is None or not all(math.isfinite(x) for x in (paper, lo, hi)):
        return ""
    if lo <= paper <= hi:
        return MAGNITUDES[0]
    if test.direction == "equivalent":
        nearest = 0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))
        return MAGNITUDES[1] if max(abs(lo), abs(hi)) < abs(paper) else (
            MAGNITUDES[2] if nearest > abs(paper) else "different from the original")
    sign = -1.0 if test.direction == "less" else 1.0
    return MAGNITUDES[1] if sign * (hi if sign > 0 else lo) < sign * paper else MAGNITUDES[2]


def deciding_part(root: Test, headline: Test) -> Test:
    """The part a claim's verdict names, in its headline and in its explanation alike: the claim's own
    headline when every part holds; otherwise the first part with the claim's verdict (the one that fails)."""
    return headline if root.verdict == "reproduced" else _first(root, root.verdict)


def explain(root: Test, headline: Test) -> str:
    """One sentence: why the test got its verdict."""
    notes = list(dict.fromkeys(root.all_notes()))  # each note once
    tail = f" ({'; '.join(notes)})" if notes else ""
    if root.verdict == "reproduced":
        return (f"Reproduced: every part holds at α = {ALPHA} (largest {p_phrase(root.p)}); {headline.name}: "
                f"{signed(headline.effect)} {headline.unit}, {LEVEL:.0%} CI [{signed(headline.ci[0])}, "
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
            "ci": list(test.ci), "p": test.p, "replicates": test.replicates, "magnitude": magnitude(test),
            "explanation": explain(test, test), "meaning": meaning, "tests": test.to_dict()}


def make_verdict(claim: str, root: Test, headline: Test, paper_effect: float | None, evidence: str,
                 details: dict | None = None, premises: list[dict] | None = None,
                 controls: list[dict] | None = None) -> Verdict:
    """The Verdict of a claim from its combined test and its premises. The reported effect, CI and original
    effect are those of the part the verdict names (`deciding_part`: the claim's headline when every part
    holds, else the part that fails), and so is the magnitude label. A failed premise turns any verdict into
    premise_not_met (the test stays in the details). `paper_effect`: the original's effect of the claim's
    headline, used when the part named has none of its own."""
    named = deciding_part(root, headline)
    if named is not headline or (named.paper_effect is not None and math.isfinite(named.paper_effect)):
        paper_effect = named.paper_effect
    headline = named
    premises = premises or []
    failed = [p for p in premises if p["blocks"]]
    verdict, explanation = root.verdict, explain(root, headline)
    if failed:
        verdict, explanation = "premise_not_met", premise_sentence(failed, root.verdict)
    return Verdict(
        claim=claim, verdict=verdict, effect=headline.effect, unit=headline.unit, ci=tuple(headline.ci),
        p=root.p, paper_effect=paper_effect, replicates=root.replicates, replicates_needed=root.needed,
        explanation=explanation, evidence=evidence,
        details={"alpha": ALPHA, "level": LEVEL, "margin_percent": MARGIN, "headline": headline.name,
                 "magnitude": magnitude(headline),
                 "verdict_of_the_test": root.verdict, "explanation_of_the_test": explain(root, headline),
                 "bootstrap_ci": list(bootstrap_ci(headline.values, headline.other)),
                 "tests": root.to_dict(), **(details or {})},
        premises=premises, controls=controls or [])
