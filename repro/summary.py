"""The terminal summary of a session's verdicts: a fixed-width table, one row per claim (like pytest-benchmark's).

    claim                   evidence  verdict       effect [95% CI]            original  p        replicates used/needed
    early_layer_generality  original  reproduced    -13.22 % [-13.74, -12.69]  -13.22 %  < 0.001  4 / 3
    ...
    report: reports/2025-01-31-cpu/index.html
"""
from __future__ import annotations

import math

from repro.format import p_value, signed
from repro.stats import Verdict

COLUMNS = ("claim", "evidence", "verdict", "effect [95% CI]", "original", "p", "replicates used/needed")
UNITS = {"% per layer": "%/layer"}


def _cells(v: Verdict) -> list[str]:
    unit = UNITS.get(v.unit, v.unit)
    lo, hi = v.ci
    ci = "" if not (math.isfinite(lo) and math.isfinite(hi)) else f" [{signed(lo)}, {signed(hi)}]"
    needed = "—" if v.replicates_needed is None else str(v.replicates_needed)
    return [v.claim, v.evidence or "—", v.verdict.replace("_", " "), f"{signed(v.effect)} {unit}{ci}",
            f"{signed(v.paper_effect)} {unit}" if v.paper_effect is not None else "—", p_value(v.p),
            f"{v.replicates} / {needed}"]


def verdict_table(verdicts: list[Verdict], report_path: str | None = None) -> str:
    """The verdicts as a fixed-width table; the last line says where the report was written."""
    rows = [list(COLUMNS)] + [_cells(v) for v in verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = "-" * len(line(rows[0]))
    counts = {k: sum(v.verdict == k for v in verdicts) for k in ("reproduced", "not_reproduced", "inconclusive")}
    out = [rule, line(rows[0]), rule] + [line(r) for r in rows[1:]] + [rule]
    out.append(f"{counts['reproduced']} reproduced, {counts['not_reproduced']} not reproduced, "
               f"{counts['inconclusive']} inconclusive. Effects in % of the base of the target half; p one-sided "
               f"in the paper's direction, corrected (Holm across layers, largest p across a claim's parts)")
    out.append(f"report: {report_path}" if report_path else "report: not written")
    return "\n".join(out)
