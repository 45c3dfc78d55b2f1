"""How numbers are written for a reader: the one formatter of signed effects, p-values and durations.

The terminal table, the HTML report, a comparison of sessions and the verdicts' explanations all write an
effect of -2.1 points as "-2.10" and a p-value below 0.001 as "< 0.001", so a number reads the same wherever
it is seen. A missing number (None, NaN, inf) is written "—". No imports beyond the standard library: every
module may use it.
"""
from __future__ import annotations

import math

MISSING = "—"
TYPOGRAPHIC_MINUS = "−"  # U+2212, for the HTML page


def _missing(x) -> bool:
    return x is None or not math.isfinite(x)


def signed(x, digits: int = 2, *, typographic: bool = False) -> str:
    """'+1.23', '-0.50'; with typographic=True the minus is U+2212 (for the page); '—' when missing."""
    if _missing(x):
        return MISSING
    text = f"{x:+.{digits}f}"
    return text.replace("-", TYPOGRAPHIC_MINUS) if typographic else text


def p_value(p) -> str:
    """'0.020', '< 0.001', or '—' when there is no p-value (a single replicate: no test)."""
    if _missing(p):
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p) -> str:
    """'p = 0.020', 'p < 0.001', or '' when there is no p-value."""
    text = p_value(p)
    if text == MISSING:
        return ""
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def duration(seconds) -> str:
    """'12.3 s', '4.5 min', '2 h 05 min'; '—' for none."""
    if not seconds:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def on_replicates_alone(group: dict, unit: str, *, typographic: bool = False) -> str:
    """A part measured on one group of a study's replicates alone (a mixed study's numerics:
    repro.claims.on_replicate_groups): 'bf16 on ... (r6, r7): +1.20 % [-0.30, +2.70], 2 used'."""
    replicates = ", ".join(f"r{r}" for r in group["replicates"])
    lo, hi = group["ci"]
    effect = MISSING if _missing(group["effect"]) else f"{signed(group['effect'], typographic=typographic)} {unit}"
    interval = "" if _missing(lo) or _missing(hi) else \
        f" [{signed(lo, typographic=typographic)}, {signed(hi, typographic=typographic)}]"
    return f"{group['numerics']} ({replicates}): {effect}{interval}, {group['used']} used"
