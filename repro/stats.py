"""Statistics for the claims: paired tests by replicate, equivalence, Holm, bootstrap, power; and `Verdict`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

VERDICTS = ("reproduced", "not_reproduced", "inconclusive")


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

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ci"] = list(self.ci)
        return d
