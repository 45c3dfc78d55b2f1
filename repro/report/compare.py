"""Compare two sessions' results.json claim by claim: do their effects of the same claim part differ by more
than their replicates allow? And network by network: how many runs share a key (the same computation) but not
their numbers, by how much, and which recorded provenance differs (CPU instruction set, precision, torch...),
so that "the same computation, other rounding" reads as such. Either side may also be a run store (its
networks; no claims).

A claim is compared on one part: the one the first session's verdict names, found by name in the second's tree
of parts (details.tests), so that two sessions whose verdicts name different parts are not set against each
other. Each effect's standard error is read off its 90% confidence interval (half-width / 1.645, the interval
every verdict reports); the difference of two independent sessions has standard error sqrt(se_a^2 + se_b^2),
and |z| > 1.645 says the two sessions disagree beyond what their own spread explains (two-sided, at the 10%
of those 90% intervals). The claims' intervals are Student t intervals, wider than 1.645 standard errors
when replicates are few, so this reading errs on the side of "no difference".
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from repro import models
from repro.errors import MissingFile, UserError
from repro.format import MISSING, signed
from repro.report.schema import validate

Z90 = 1.6448536269514722  # the two-sided 90% normal quantile: the level of every interval a verdict reports


def load_store_runs(root: Path) -> dict:
    """The networks of a run store as a results-like dict: runs with their numbers and each one's provenance."""
    runs = []
    for f in sorted((root / "runs").glob("*/result.json")):
        try:
            m = json.loads(f.read_text())["metrics"]
        except (ValueError, KeyError, OSError):
            continue  # unreadable: the store's own checks set it aside when it is read
        cpu = m.get("cpu") or {}
        runs.append({"key": f.parent.name, "label": m.get("label"), "top1": m.get("top1"),
                     "final_top1": m.get("final_top1"), "curve": m.get("curve"),
                     "provenance": {"CPU model": cpu.get("cpu_model"), "CPU capability": cpu.get("cpu_capability"),
                                    "native bf16": cpu.get("native_bf16"),
                                    "precision": m.get("precision") or m.get("autocast"),
                                    "device": m.get("device"), "torch": m.get("torch"), "threads": m.get("threads")}})
    return {"store": str(root), "claims": [], "runs": runs, "session": {}}


FIGURE_FORMATS = (".png", ".svg", ".pdf")


def _is_store(path: Path) -> bool:
    return path.is_dir() and (path / "runs").is_dir() and not (path / "results.json").exists()


def check_figure(figure, sides) -> None:
    """Refuse a figure that cannot be written, before anything is compared: a format other than PNG, SVG or
    PDF, a folder that is not there, or a run store on either side (it holds networks, no results table)."""
    figure = Path(figure)
    if figure.suffix.lower() not in FIGURE_FORMATS:
        raise UserError(f"--figure {figure}: name a {', '.join(FIGURE_FORMATS)} file")
    if not figure.parent.is_dir():
        raise UserError(f"--figure {figure}: no folder {figure.parent}; make it first")
    for side in map(Path, sides):
        if _is_store(side):
            raise UserError(f"--figure draws results files, and {side} is a run store: write its results with "
                            "`repro report` first")


def draw_figure2(sides, figure) -> Path:
    """The paper's Figure 2 (random splits) for the original study and each side's results, one column each,
    named by the folder that holds the results (repro.report.figures)."""
    import matplotlib

    from repro.paper import original_table
    from repro.report.figures import RC, figure2
    from repro.results import table_from_file

    panels = [("Original study (ILSVRC-2012)", original_table())]
    for side in map(Path, sides):
        folder = side if side.is_dir() else side.parent
        panels.append((folder.name or str(folder), table_from_file(side)[0]))
    with matplotlib.rc_context(RC):
        figure2(panels).savefig(figure, dpi=110)
    return Path(figure)


def load_results(path) -> dict:
    """A results.json (or the folder holding one), checked against the schema; or a run store's networks."""
    path = Path(path)
    if _is_store(path):
        return load_store_runs(path)
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
    return (ci[1] - ci[0]) / 2 / Z90


def _part(claim: dict, name: str | None) -> dict | None:
    """A claim's numbers of the part `name`: its own row when its verdict names that part (a claim's effect,
    interval and unit are those of the part it names), else that part in its tree of tests (details.tests);
    None when it has no such part."""
    details = claim.get("details") or {}
    if name is None or details.get("headline", name) == name:
        return claim
    stack = [details.get("tests") or {}]
    while stack:
        test = stack.pop()
        if test.get("name") == name:
            return test
        stack += test.get("parts") or []
    return None


def compare(a: dict, b: dict) -> list[dict]:
    """One row per claim in either session, on the part the first session's verdict names (the second's when
    only it has the claim): both effects, b - a, its standard error, z, and `exceeds` (True when |z| > 1.645;
    None when a number is missing, the part is not in both, or the units differ)."""
    claims_a = {c["id"]: c for c in a["claims"]}
    claims_b = {c["id"]: c for c in b["claims"]}
    ids = list(claims_a) + [i for i in claims_b if i not in claims_a]
    rows = []
    for cid in ids:
        ca, cb = claims_a.get(cid), claims_b.get(cid)
        named = ((ca or cb).get("details") or {}).get("headline")
        pa, pb = (None if c is None else _part(c, named) for c in (ca, cb))
        row = {"id": cid, "part": named, "verdict_a": ca and ca["verdict"], "verdict_b": cb and cb["verdict"],
               "unit": (pa or pb or ca or cb)["unit"], "effect_a": pa and pa["effect"], "effect_b": pb and pb["effect"],
               "difference": None, "se": None, "z": None, "exceeds": None, "note": ""}
        if ca is None or cb is None:
            row["note"] = f"only in {'b' if ca is None else 'a'}"
        elif pb is None:
            row["note"] = f"b names another part and has no part {named!r}: not compared"
        elif pa["unit"] != pb["unit"]:
            row["note"] = f"units differ ({pa['unit']} vs {pb['unit']})"
        elif pa["effect"] is None or pb["effect"] is None:
            row["note"] = "an effect is missing"
        else:
            row["difference"] = pb["effect"] - pa["effect"]
            se_a, se_b = _se(pa["ci"]), _se(pb["ci"])
            if se_a is None or se_b is None:
                row["note"] = "a confidence interval is missing"
            else:
                row["se"] = math.hypot(se_a, se_b)
                if row["se"] > 0:
                    row["z"] = row["difference"] / row["se"]
                    row["exceeds"] = abs(row["z"]) > Z90
                else:
                    row["exceeds"] = row["difference"] != 0
                    row["note"] = "both intervals have zero width"
        rows.append(row)
    return rows


def format_comparison(rows: list[dict], name_a: str = "a", name_b: str = "b") -> str:
    """The comparison as an aligned text table for the terminal."""
    header = ["claim", "part", f"verdict {name_a}", f"verdict {name_b}", f"effect {name_a}", f"effect {name_b}",
              "diff", "se", "z", "differ?"]
    table = [header]
    for r in rows:
        differ = {True: "YES", False: "no", None: "?"}[r["exceeds"]]
        if r["note"]:
            differ += f" ({r['note']})"
        table.append([r["id"], r["part"] or "—", str(r["verdict_a"] or "—"), str(r["verdict_b"] or "—"),
                      f"{signed(r['effect_a'])} {r['unit']}", f"{signed(r['effect_b'])} {r['unit']}",
                      signed(r["difference"]), MISSING if r["se"] is None else f"{r['se']:.2f}", signed(r["z"]),
                      differ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    exceeding = sum(1 for r in rows if r["exceeds"])
    lines.append(f"\n{exceeding} of {len(rows)} claims differ by more than their replicates allow on the part "
                 f"named (|z| > 1.645, two-sided at 10%; se from each 90% CI as half-width / 1.645).")
    return "\n".join(lines)


def _label(run: dict) -> str:
    if run.get("label"):
        return run["label"]
    n = f" n={run['n']}" if run.get("n") else ""
    return f"{run.get('treatment')}{n} {run.get('split')}/{run.get('target')} r{run.get('replicate')}"


def session_provenance(doc: dict) -> dict:
    """What a results.json records about where its networks were trained (None: not recorded)."""
    session = doc.get("session") or {}
    cpu, training = session.get("cpu") or {}, session.get("training") or {}
    versions = session.get("versions") or {}

    def joined(values):
        return ", ".join(values) if values else None

    return {"CPU": joined(training.get("cpus")) or cpu.get("cpu_model"),
            "CPU capability": cpu.get("cpu_capability"), "native bf16": cpu.get("native_bf16"),
            "precision": joined(training.get("precision")) or cpu.get("precision"),
            "device": joined(training.get("devices")), "torch": joined(training.get("torch")) or versions.get("torch"),
            "hardware": session.get("hardware")}


def _provenance(doc: dict) -> dict:
    """Session provenance, or for a store every value its runs record (joined)."""
    if "store" not in doc:
        return session_provenance(doc)
    out: dict[str, set] = {}
    for r in doc["runs"]:
        for k, v in r["provenance"].items():
            out.setdefault(k, set()).add("not recorded" if v is None else str(v))
    return {k: ", ".join(sorted(v)) for k, v in out.items()}


def compare_runs(a: dict, b: dict) -> dict:
    """The networks of both sides with one key: how many have the same numbers (top-1, last test, curve where
    both keep it), the largest top-1 difference, and the recorded provenance that differs."""
    runs_a = {r["key"]: r for r in a["runs"]}
    shared = [(runs_a[r["key"]], r) for r in b["runs"] if r["key"] in runs_a]
    differing, largest = [], None
    for x, y in shared:
        fields = ["top1", "final_top1"] + (["curve"] if x.get("curve") is not None and y.get("curve") is not None
                                           else [])
        if any(x.get(f) != y.get(f) for f in fields):
            differing.append(_label(y))
            if x.get("top1") is not None and y.get("top1") is not None:
                gap = abs(y["top1"] - x["top1"])
                if largest is None or gap > largest[0]:
                    largest = (gap, _label(y), x["top1"], y["top1"])
    prov_a, prov_b = _provenance(a), _provenance(b)
    provenance = {k: (prov_a.get(k), prov_b.get(k)) for k in list(prov_a) + [k for k in prov_b if k not in prov_a]
                  if prov_a.get(k) != prov_b.get(k)}
    return {"shared": len(shared), "only_a": len(runs_a) - len(shared), "only_b": len(b["runs"]) - len(shared),
            "same": len(shared) - len(differing), "differ": len(differing), "differing": differing,
            "largest": None if largest is None else {"top1_difference": largest[0], "run": largest[1],
                                                     "top1_a": largest[2], "top1_b": largest[3]},
            "provenance": provenance}


def format_run_comparison(runs: dict, name_a: str = "a", name_b: str = "b") -> str:
    lines = [f"Networks: {runs['shared']} share a key (the same computation); {runs['same']} have the same numbers, "
             f"{runs['differ']} do not. Only in {name_a}: {runs['only_a']}; only in {name_b}: {runs['only_b']}."]
    if runs["largest"]:
        big = runs["largest"]
        lines.append(f"Largest top-1 difference: {100 * big['top1_difference']:.2f} points ({big['run']}: "
                     f"{100 * big['top1_a']:.2f}% in {name_a}, {100 * big['top1_b']:.2f}% in {name_b}).")
    if runs["provenance"]:
        lines.append("Provenance that differs:")
        lines += [f"  {k}: {'not recorded' if va is None else va} in {name_a}; "
                  f"{'not recorded' if vb is None else vb} in {name_b}" for k, (va, vb) in runs["provenance"].items()]
    if runs["differ"]:
        lines.append("The same computation, other rounding: a run key fixes the computation (data, recipe, precision, "
                     "device type, ...); other instruction sets or library versions round it differently."
                     if runs["provenance"] else
                     "Nothing recorded differs between the two: same keys with other numbers on the same kind of "
                     "machine are not expected (see repro.numerics and tests/test_train_golden.py).")
    elif runs["shared"]:
        lines.append("Every shared network has the same numbers, bit for bit.")
    return "\n".join(lines)


def network_of(doc: dict) -> str | None:
    """The architecture a results document's networks are (None: not recorded, e.g. the original study)."""
    profile = (doc.get("session") or {}).get("profile")
    if not isinstance(profile, dict):
        return None
    return models.name_in(profile.get("arch"))


def comparison_text(a: dict, b: dict, name_a: str = "a", name_b: str = "b") -> str:
    """`repro compare`: the claims (where both sides have them), then the networks."""
    parts = []
    net_a, net_b = network_of(a), network_of(b)
    if net_a and net_b and net_a != net_b:
        parts.append(f"Two architectures: {net_a} in {name_a}, {net_b} in {name_b}. Each claim is judged at its own "
                     f"network's positions (early, middle, top: repro.models.Depth), so a part that names n may "
                     f"name another n on each side; the rows pair the parts each verdict names.")
    if a["claims"] or b["claims"]:
        parts.append(format_comparison(compare(a, b), name_a, name_b))
    else:
        parts.append("Claims: not compared (a run store holds networks, not verdicts; `repro report` judges them).")
    parts.append(format_run_comparison(compare_runs(a, b), name_a, name_b))
    return "\n\n".join(parts)
