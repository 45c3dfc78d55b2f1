"""Compare two sessions' results.json claim by claim: do their effects differ by more than their replicates
allow?

Each effect's standard error is read off its 95% confidence interval (half-width / 1.96); the difference of
two independent sessions has standard error sqrt(se_a^2 + se_b^2), and |z| > 1.96 says the two sessions
disagree beyond what their own spread explains (two-sided, 5%). The claims' intervals are Student t intervals,
wider than 1.96 standard errors when replicates are few, so this reading errs on the side of "no difference".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from repro.errors import MissingFile, UserError
from repro.format import MISSING, signed
from repro.report.schema import validate

Z95 = 1.959963984540054


def load_results(path) -> dict:
    """A results.json (or the folder holding one), checked against the schema."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise MissingFile(f"no results file at {path}: pass a report folder or its results.json")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); was it written by repro's report?") from None
    try:
        validate(doc, name=str(path))
    except ValueError as e:  # the user's file, not ours
        raise UserError(str(e)) from None
    return doc


def _se(ci) -> float | None:
    if ci is None or any(v is None for v in ci):
        return None
    return (ci[1] - ci[0]) / 2 / Z95


def compare(a: dict, b: dict) -> list[dict]:
    """One row per claim in either session: both effects, b - a, its standard error, z, and `exceeds`
    (True when |z| > 1.96; None when a number is missing or the units differ)."""
    claims_a = {c["id"]: c for c in a["claims"]}
    claims_b = {c["id"]: c for c in b["claims"]}
    ids = list(claims_a) + [i for i in claims_b if i not in claims_a]
    rows = []
    for cid in ids:
        ca, cb = claims_a.get(cid), claims_b.get(cid)
        row = {"id": cid, "verdict_a": ca and ca["verdict"], "verdict_b": cb and cb["verdict"],
               "unit": (ca or cb)["unit"], "effect_a": ca and ca["effect"], "effect_b": cb and cb["effect"],
               "difference": None, "se": None, "z": None, "exceeds": None, "note": ""}
        if ca is None or cb is None:
            row["note"] = f"only in {'b' if ca is None else 'a'}"
        elif ca["unit"] != cb["unit"]:
            row["note"] = f"units differ ({ca['unit']} vs {cb['unit']})"
        elif ca["effect"] is None or cb["effect"] is None:
            row["note"] = "an effect is missing"
        else:
            row["difference"] = cb["effect"] - ca["effect"]
            se_a, se_b = _se(ca["ci"]), _se(cb["ci"])
            if se_a is None or se_b is None:
                row["note"] = "a confidence interval is missing"
            else:
                row["se"] = math.hypot(se_a, se_b)
                if row["se"] > 0:
                    row["z"] = row["difference"] / row["se"]
                    row["exceeds"] = abs(row["z"]) > Z95
                else:
                    row["exceeds"] = row["difference"] != 0
                    row["note"] = "both intervals have zero width"
        rows.append(row)
    return rows


def format_comparison(rows: list[dict], name_a: str = "a", name_b: str = "b") -> str:
    """The comparison as an aligned text table for the terminal."""
    header = ["claim", f"verdict {name_a}", f"verdict {name_b}", f"effect {name_a}", f"effect {name_b}",
              "diff", "se", "z", "differ?"]
    table = [header]
    for r in rows:
        differ = {True: "YES", False: "no", None: "?"}[r["exceeds"]]
        if r["note"]:
            differ += f" ({r['note']})"
        table.append([r["id"], str(r["verdict_a"] or "—"), str(r["verdict_b"] or "—"),
                      f"{signed(r['effect_a'])} {r['unit']}", f"{signed(r['effect_b'])} {r['unit']}",
                      signed(r["difference"]), MISSING if r["se"] is None else f"{r['se']:.2f}", signed(r["z"]),
                      differ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    exceeding = sum(1 for r in rows if r["exceeds"])
    lines.append(f"\n{exceeding} of {len(rows)} claims differ by more than their replicates allow "
                 f"(|z| > 1.96, se from each 95% CI as half-width / 1.96).")
    return "\n".join(lines)
