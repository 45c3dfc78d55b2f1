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
    """A claim's verdict. Its effect, interval, p and replicates are those of the part the verdict names
    (`deciding_part`): the row, the sentence, the page and results.json all speak of that one part."""

    claim: str  # claim id, e.g. 'coadaptation_dip'
    verdict: str  # one of VERDICTS
    effect: float  # the named part's effect, relative to the base of the target half
    unit: str  # its unit: '% of base over chance', 'points', ...
    ci: tuple[float, float]  # its confidence interval at LEVEL (90%: its ends are the one-sided tests' bounds)
    p: float  # its p-value (Holm-corrected across layers where the part holds at the worst of several)
    paper_effect: float | None  # the same part measured on the original study's numbers
    replicates: int  # its replicates (independent pairs) used
    replicates_needed: int | None  # its replicates for 80% power at its stated effect and observed spread
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


MAGNITUDES = ("similar to the original", "smaller than the original", "larger than the original")


def magnitude(test: Test) -> str:
    """How a test's effect compares with the original study's effect of the same test, by its confidence
    interval: 'smaller than the original' or 'larger' when the interval excludes the original's effect (for a
    one-sided test: weaker or stronger in the claimed direction; for an equivalence: closer to zero or farther
    from it), 'similar to the original' when it holds it, '' when there is nothing to compare."""
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
    """One sentence: why the test got its verdict, with the numbers of the part it names."""
    notes = list(dict.fromkeys(root.all_notes()))  # each note once
    tail = f" ({'; '.join(notes)})" if notes else ""
    if root.verdict == "reproduced":
        return f"Reproduced: every part holds at α = {ALPHA}; {headline.name}: {headline.why}{tail}."
    leaf = _first(root, root.verdict)
    label = "Not reproduced" if root.verdict == "not_reproduced" else "Inconclusive"
    return f"{label}: {leaf.name}: {leaf.why}{tail}."


def premise_sentence(failed: list[dict], would_be: str) -> str:
    """One sentence for a claim whose premises failed; `would_be` is the verdict its test alone gives."""
    said = "; ".join(f"{p['title']}: {p['measured']} (rule: {p['rule']}; {p['to_satisfy']})" for p in failed)
    return (f"Premise not met: {said}; the test alone would say {would_be.replace('_', ' ')}, but it cannot "
            f"speak for the claim while the premise fails.")


def check_sentence(failed: list[dict], would_be: str) -> str:
    """One sentence for a claim a failed control check leaves inconclusive (repro.premises: a control that did
    not do what it must is broken, not beaten, and never counts as an effect)."""
    said = "; ".join(f"{p['title']}: {p['measured']} (rule: {p['rule']})" for p in failed)
    return (f"Inconclusive: a control the claim leans on failed its check: {said}; the test alone would say "
            f"{would_be.replace('_', ' ')}, but a broken control cannot speak for the claim.")


def control_json(test: Test, meaning: str = "") -> dict:
    """A control shown under its claim: its own verdict, effect and sentence (and what it means)."""
    return {"name": test.name, "verdict": test.verdict, "effect": test.effect, "unit": test.unit,
            "ci": list(test.ci), "p": test.p, "replicates": test.replicates, "magnitude": magnitude(test),
            "explanation": explain(test, test), "meaning": meaning, "tests": test.to_dict()}


def make_verdict(claim: str, root: Test, headline: Test, paper_effect: float | None, evidence: str,
                 details: dict | None = None, premises: list[dict] | None = None,
                 controls: list[dict] | None = None) -> Verdict:
    """The Verdict of a claim from its combined test and its premises and checks. The reported effect, CI, p,
    replicates, replicates needed and original effect are those of the part the verdict names
    (`deciding_part`: the claim's headline when every part holds, else the part that fails), and so is the
    magnitude label; the claim's own p (the largest of its parts') stays in the details. A failed premise turns
    any verdict into premise_not_met, a failed control check into inconclusive (the test stays in the
    details). `paper_effect`: the original's effect of the claim's headline, used when the part named has none
    of its own."""
    named = deciding_part(root, headline)
    if named is not headline or (named.paper_effect is not None and math.isfinite(named.paper_effect)):
        paper_effect = named.paper_effect
    premises = premises or []
    failed = [p for p in premises if p["blocks"] and p["gates"] == "premise_not_met"]
    broken = [p for p in premises if p["blocks"] and p["gates"] == "inconclusive"]
    verdict, explanation = root.verdict, explain(root, named)
    if failed:
        verdict, explanation = "premise_not_met", premise_sentence(failed, root.verdict)
    elif broken:
        verdict, explanation = "inconclusive", check_sentence(broken, root.verdict)
    return Verdict(
        claim=claim, verdict=verdict, effect=named.effect, unit=named.unit, ci=tuple(named.ci), p=named.p,
        paper_effect=paper_effect, replicates=named.replicates, replicates_needed=named.needed,
        explanation=explanation, evidence=evidence,
        details={"alpha": ALPHA, "level": LEVEL, "margin": MARGIN, "headline": named.name,
                 "stated_effect": named.stated, "claim_p": root.p, "magnitude": magnitude(named),
                 "verdict_of_the_test": root.verdict, "explanation_of_the_test": explain(root, named),
                 "bootstrap_ci": list(bootstrap_ci(named.values, named.other)),
                 "tests": root.to_dict(), **(details or {})},
        premises=premises, controls=controls or [])
