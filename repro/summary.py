"""The terminal summary of a session's verdicts: a fixed-width table, one row per claim (like pytest-benchmark's).

    claim                   evidence  verdict       effect [90% CI]            original  p        replicates used/needed
    early_layer_generality  original  reproduced    -13.22 % [-13.74, -12.69]  -13.22 %  < 0.001  4 / 3
    ...
    report: reports/2025-01-31-cpu/index.html
"""
from __future__ import annotations

import math

from repro.format import on_replicates_alone, p_value, signed
from repro.results import OVER_CHANCE
from repro.stats import LEVEL, VERDICTS, Verdict

COLUMNS = ("claim", "evidence", "verdict", f"effect [{LEVEL:.0%} CI]", "original", "p", "replicates used/needed")
UNITS = {OVER_CHANCE: "%", f"{OVER_CHANCE} per layer": "%/layer"}  # the footer says what % is


def _cells(v: Verdict) -> list[str]:
    unit = UNITS.get(v.unit, v.unit)
    lo, hi = v.ci
    ci = "" if not (math.isfinite(lo) and math.isfinite(hi)) else f" [{signed(lo)}, {signed(hi)}]"
    needed = "—" if v.replicates_needed is None else str(v.replicates_needed)
    size = {"similar to the original": "similar", "smaller than the original": "smaller",
            "larger than the original": "larger"}.get(v.magnitude, "")
    verdict = v.verdict.replace("_", " ") + (f" ({size})" if size else "")
    return [v.claim, v.evidence or "—", verdict, f"{signed(v.effect)} {unit}{ci}",
            f"{signed(v.paper_effect)} {unit}" if v.paper_effect is not None else "—", p_value(v.p),
            f"{v.replicates} / {needed}"]


def premise_lines(verdicts: list[Verdict]) -> list[str]:
    """One line per premise the claims rest on (as measured on the table), first those that block."""
    seen: dict[str, dict] = {}
    for v in verdicts:
        for p in v.premises:
            seen.setdefault(p["id"], p)
    status = {"met": "met", "not_met": "NOT MET", "unmeasured": "not measured"}
    return [f"premise {p['title']}: {status[p['status']]}: {p['measured']} (rule: {p['rule']})"
            for p in sorted(seen.values(), key=lambda p: not p["blocks"])]


def _control_cells(v: Verdict, c: dict) -> list[str]:
    unit = UNITS.get(c["unit"], c["unit"])
    lo, hi = c["ci"]
    ci = "" if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)) else \
        f" [{signed(lo)}, {signed(hi)}]"
    effect = c["effect"]
    shown = "—" if effect is None or not math.isfinite(effect) else f"{signed(effect)} {unit}{ci}"
    return [f"  control: {c['name']}", v.evidence or "—", c["verdict"].replace("_", " "), shown, "",
            p_value(c["p"]), f"{c['replicates']}"]


def counts_line(verdicts: list[Verdict]) -> str:
    """'2 reproduced, 0 not reproduced, 1 inconclusive, 2 premise not met'."""
    counts = {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
    return ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in VERDICTS)


def verdict_table(verdicts: list[Verdict], report_path: str | None = None) -> str:
    """The premises, then the verdicts as a fixed-width table (a claim's controls indented under it); the last
    line says where the report was written."""
    rows = [list(COLUMNS)]
    for v in verdicts:
        rows.append(_cells(v))
        rows += [_control_cells(v, c) for c in v.controls]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = "-" * len(line(rows[0]))
    out = premise_lines(verdicts) + [rule, line(rows[0]), rule] + [line(r) for r in rows[1:]] + [rule]
    out.append(f"{counts_line(verdicts)}. Each row is the part its verdict names: its effect in % of the base's "
               f"accuracy over chance (of each network's own target half) unless marked, {LEVEL:.0%} CI, p one-sided "
               f"in the paper's direction (Holm across layers), replicates used / needed for 80% power at the part's "
               f"stated smallest effect")
    for v in verdicts:
        for c in v.controls:
            if c.get("meaning"):
                out.append(f"{v.claim}, control: {c['meaning']}")
        if v.verdict == "premise_not_met":
            out.append(f"{v.claim}: {v.explanation}")
        for group in v.details.get("by_numerics") or []:
            alone = on_replicates_alone(group, UNITS.get(group["unit"], group["unit"]))
            out.append(f"{v.claim}, {v.details['headline']}, on {alone}")
    out.append(f"report: {report_path}" if report_path else "report: not written")
    return "\n".join(out)
