"""The HTML page: the scorecard, the header, every run, rendered through template.html.j2. Numbers are
written by repro.format, like the terminal's."""
from __future__ import annotations

import math
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from repro import models
from repro.format import duration, on_replicates_alone, p_phrase, p_value, signed
from repro.report.document import run_order
from repro.results import OVER_CHANCE, Table, family

PAPER = {
    "title": "How transferable are features in deep neural networks?",
    "authors": "Jason Yosinski, Jeff Clune, Yoshua Bengio, Hod Lipson",
    "venue": "NeurIPS 2014",
}
VERDICT_LABELS = {"reproduced": "Reproduced", "not_reproduced": "Not reproduced", "inconclusive": "Inconclusive",
                  "premise_not_met": "Premise not met"}
PREMISE_LABELS = {"met": "met", "not_met": "not met", "unmeasured": "not measured"}
UNITS = {"points": "pts", OVER_CHANCE: "%", f"{OVER_CHANCE} per layer": "%/layer"}  # the legend says what % is


def _signed(x) -> str:
    return signed(x, typographic=True)


def code_spans(text) -> Markup:
    """Free text (profile notes, explanations) with its `backticks` as <code>, everything else escaped."""
    parts = str(text or "").split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: leave the text as it is
        return escape(text or "")
    return Markup("").join(escape(p) if i % 2 == 0 else Markup("<code>%s</code>") % p for i, p in enumerate(parts))


def claim_parts(details: dict) -> list[dict]:
    """The single tests a claim is made of (the leaves of details['tests'], a tree of 'parts' written by
    repro.stats), for the scorecard; [] when the claim has one test or records none."""
    def leaves(test):
        parts = test.get("parts") or []
        return [leaf for part in parts for leaf in leaves(part)] if parts else [test]

    tests = details.get("tests")
    if not isinstance(tests, dict):
        return []
    found = [t for t in leaves(tests) if t.get("verdict") in VERDICT_LABELS and t.get("name")]
    if len(found) < 2:
        return []
    return [{"name": t["name"], "verdict": t["verdict"], "effect": _signed(t.get("effect")),
             "unit": UNITS.get(t.get("unit"), t.get("unit") or ""), "p": p_phrase(t.get("p"))} for t in found]


def verdict_label(claim: dict) -> str:
    """The badge: the verdict, except that a claim stopped only by premises that could not be measured (one
    replicate bounds nothing) says 'Premise not measured', as the premises above it do."""
    blocking = [p for p in claim.get("premises") or [] if p.get("blocks")]
    if claim["verdict"] == "premise_not_met" and blocking and all(p["status"] == "unmeasured" for p in blocking):
        return "Premise not measured"
    return VERDICT_LABELS[claim["verdict"]]


def verdict_counts(claims: list[dict]) -> list[tuple[str, str, int]]:
    """(verdict, label, count) for the summary, in VERDICT_LABELS' order; the premise pill named as its badges are."""
    out = []
    for verdict, label in VERDICT_LABELS.items():
        mine = [c for c in claims if c["verdict"] == verdict]
        labels = {verdict_label(c) for c in mine} or {label}
        out.append((verdict, labels.pop() if len(labels) == 1 else "Premise not met or not measured", len(mine)))
    return out


def scorecard(claims: list[dict]) -> list[dict]:
    out = []
    for c in claims:
        unit = UNITS.get(c["unit"], c["unit"])
        lo, hi = c["ci"]
        needed = c["replicates_needed"]
        out.append({
            **c,
            "label": verdict_label(c),
            "effect_text": "—" if c["effect"] is None else f"{_signed(c['effect'])} {unit}",
            "ci_text": f"[{_signed(lo)}, {_signed(hi)}]",
            "paper_text": f"{_signed(c['paper_effect'])} {unit}" if c["paper_effect"] is not None else "—",
            "p_text": p_value(c["p"]),
            "needed_text": "—" if needed is None else str(needed),
            "headline": c["details"].get("headline", ""),
            # beside the verdict: the effect against the original's same effect, by its confidence interval
            "magnitude": c["details"].get("magnitude", ""),
            "parts": claim_parts(c["details"]),
            "waits_for": len(c.get("waits_for", [])),
            "caveat": c["details"].get("caveat", ""),
            "by_numerics": [on_replicates_alone(g, UNITS.get(g["unit"], g["unit"]), typographic=True)
                            for g in c["details"].get("by_numerics") or []],
            "controls": [{**k, "label": VERDICT_LABELS.get(k["verdict"], k["verdict"]),
                          "magnitude": k.get("magnitude", ""),
                          "effect_text": "—" if k["effect"] is None else
                          f"{_signed(k['effect'])} {UNITS.get(k['unit'], k['unit'])}",
                          "p_text": p_phrase(k["p"])} for k in c.get("controls") or []],
        })
    return out


def premise_rows(doc: dict) -> list[dict]:
    """The premises measured on the table, with the claims each one gates, for the first screen."""
    rests = {}
    for c in doc["claims"]:
        for p in c.get("premises") or []:
            rests.setdefault(p["id"], []).append(c["id"])
    rows = []
    for p in doc.get("premises") or []:
        advisory, blocks = p.get("advisory", False), p.get("blocks", p["status"] == "not_met")
        label = PREMISE_LABELS[p["status"]] + (" (blocks nothing)" if advisory and p["status"] != "met"
                                               else " (blocks)" if blocks and p["status"] == "unmeasured" else "")
        rows.append({**p, "advisory": advisory, "blocks": blocks, "label": label, "claims": rests.get(p["id"], [])})
    return rows


def run_rows(table: Table, original_study: bool) -> list[dict]:
    out = []
    for r in sorted(table.rows, key=run_order):
        origin = "original study" if original_study else ("cached" if r.cached else "trained")
        out.append({
            "treatment": r.treatment, "n": r.n, "replicate": r.replicate, "split": r.split,
            "target": f"{r.source}→{r.target}" if r.source else r.target,
            "top1": "—" if r.top1 is None or not math.isfinite(r.top1) else f"{r.top1:.4f}",
            "final": "—" if r.final_top1 is None or not math.isfinite(r.final_top1) else f"{r.final_top1:.4f}",
            "diverged": r.diverged, "group_time": duration(r.train_seconds), "origin": origin, "key": r.key,
        })
    return out


def base_accuracy(table: Table) -> str:
    """How well the bases learned: mean top-1 per kind of half, beside chance (the first thing to check
    before reading any transfer result)."""
    halves: dict[tuple[str, int], list[float]] = {}
    for r in table.rows:
        if r.treatment == "base" and not r.diverged and r.top1 is not None and r.num_classes > 0:
            kind = {"random": "random halves", "natman": "natural/man-made half"}.get(family(r.split),
                                                                                     "whole dataset")
            halves.setdefault((kind, r.num_classes), []).append(r.top1)
    return " · ".join(f"{100 * sum(v) / len(v):.1f}% top-1 on the {c}-class {kind} ({len(v)} "
                      f"network{'s' if len(v) > 1 else ''}; chance {100 / c:.1f}%)"
                      for (kind, c), v in sorted(halves.items()))


def cpu_arithmetic(session: dict) -> str:
    """The instruction set and precision of this machine, and of the runs where they were trained elsewhere."""
    cpu, training = session.get("cpu"), session.get("training") or {}
    parts = []
    if cpu:
        bf16 = "native" if cpu["native_bf16"] else "not native"
        trains = f", trains in {cpu['precision']}" if cpu.get("precision") else ""
        parts.append(f"this machine: {cpu.get('cpu_model', '?')}, {cpu['cpu_capability']} kernels, bf16 {bf16}{trains}")
    if training.get("cpus") or training.get("precision"):
        parts.append(f"runs trained in {', '.join(training.get('precision') or ['?'])} on "
                     f"{'; '.join(training.get('cpus') or training.get('devices') or ['?'])}")
    return " · ".join(parts) or "—"


def header_items(profile_name: str, session: dict, table: Table, design: dict | None = None) -> tuple[list, list]:
    """(what ran: shown above the scorecard, where and with what: shown right below it)."""
    trained_nothing = False
    if profile_name == "original":
        runs = f"no training: {len(table)} networks from the original study's logs"
    elif session.get("results_file"):
        runs = f"no training: {len(table)} networks read from {session['results_file']}"
    elif session.get("cached") and not session.get("trained"):  # a store that held every run already
        trained_nothing = True
        runs = (f"{len(table)} networks, all from the run store: trained by an earlier session, not by the command "
                "that wrote this page")
    else:
        runs = f"{session['trained']} trained, {session['cached']} from the store ({len(table)} in the table)"
    wall = duration(session.get("wall_seconds"))
    facts = [
        ("Profile", profile_name),
        ("Dataset", session.get("dataset") or "—"),
        ("Splits", session.get("split_family") or "—"),
        ("Network", network_fact(profile_name, session, table)),
        ("Replicates", replicates_fact(session.get("replicates"), table)),
        *([("Evidence", design["statement"])] if design else []),
        ("Runs", runs),
        ("Training wall time", training_wall_fact(session, trained_nothing)),
        ("Wall time of the command below", f"{wall} (it trained nothing)" if trained_nothing else wall),
    ]
    rejudged = session.get("rejudged")
    if rejudged:
        facts.append(("Verdicts", f"judged again without training by {rejudged['command']} "
                                  f"({rejudged['created']}, suite commit {rejudged.get('git_commit') or '—'})"))
    if base_accuracy(table):
        facts.append(("Base networks", base_accuracy(table)))
    commit = session.get("git_commit")
    if commit and session.get("git_dirty"):
        commit += " (with uncommitted changes)"
    environment = [
        ("Hardware", session.get("hardware") or "—"),
        ("CPU arithmetic", cpu_arithmetic(session)),
        ("Versions", " · ".join(f"{k} {v}" for k, v in (session.get("versions") or {}).items())),
        ("Suite commit", commit or "not in a git checkout"),
        ("Created", session.get("created") or "—"),
    ]
    return facts, environment + replicate_items(session)


def network_fact(profile_name: str, session: dict, table: Table) -> str:
    """The architecture by name, its widths and what n counts (repro.models)."""
    if profile_name == "original":
        return "CaffeNet, the original's (n: its 7 transferable layers)"
    arch = (session.get("profile") or {}).get("arch") or {}
    name = models.name_in(arch)
    widths = "-".join(str(w) for w in arch.get("widths") or ())
    spec = models.ARCHITECTURES.get(name)
    what = spec.description if spec else "an architecture this suite does not know"
    return f"{name}{f' (widths {widths})' if widths else ''}: {what}; n counts {table.blocks} blocks"


def replicates_fact(planned: int | None, table) -> str:
    """The replicates in the table; the profile's count beside them only where the table holds another."""
    held = len({r.replicate for r in table.rows if r.evidence != "original"})
    if planned is None or not held:
        return "—" if planned is None else str(planned)
    return str(held) if held == planned else f"{held} in the table (the profile plans {planned})"


def training_wall_fact(session: dict, trained_nothing: bool) -> str:
    """How long the study's training took: in a study run in pieces, the time its sittings spent on the
    replicates, a sitting counted once however many replicates trained side by side in it (the runs' first
    start to last finish would count the days between sittings); from records older than the pieces' times,
    the replicates' own times summed, which counts such a sitting once per replicate."""
    span = session.get("training_wall_seconds")
    spans = f"the runs' first start to last finish spans {duration(span) if span is not None else '—'}, " \
            f"across sittings"
    walls = [r.get("training_wall_seconds") for r in session.get("replicate_records") or []]
    pieces = session.get("pieces_wall_seconds")
    if walls and pieces is not None:
        on = "the replicate" if len(walls) == 1 else f"the {len(walls)} replicates"
        return (f"{duration(pieces)}, the sittings' time on {on}, a sitting counted once (the replicates' own "
                f"times, each below, sum to {duration(sum(w or 0.0 for w in walls))}); {spans}")
    if walls and all(walls):
        summed = "the replicate's training time" if len(walls) == 1 else \
            f"the {len(walls)} replicates' training times summed (each below; a sitting that trained several " \
            f"side by side counts once for each)"
        return f"{duration(sum(walls))}, {summed}; {spans}"
    if span is not None:
        return f"{duration(span)} (the runs' first start to last finish)"
    return "not recorded (the runs were trained before reports kept it)" if trained_nothing else "—"


def replicate_items(session: dict) -> list[tuple[str, str]]:
    """A study run in pieces (repro.replicates): what trained each replicate, and whether its numerics differ."""
    rows = session.get("replicate_records")
    if not rows:
        return []
    numerics = session.get("numerics_by_replicate") or []
    items = [("Numerics", f"one for every replicate: {numerics[0]}" if len(numerics) == 1 else
              f"mixed ({'; '.join(numerics)}): each network is compared with the base of its own replicate, "
              f"trained in the same numerics")]
    for r in rows:
        wall = r.get("training_wall_seconds")
        items.append((f"Replicate r{r['replicate']}",
                      f"{r['networks']} networks" + (f" (stopped part way: {r['lacks']} more to train)"
                                                     if r.get("lacks") else "") +
                      f" in {'/'.join(r.get('precision') or ['?'])} on "
                      f"{'; '.join(r.get('cpus') or r.get('devices') or ['?'])} ({r.get('hardware') or '?'}); "
                      f"{duration(wall) if wall else 'wall time unknown'}, {r.get('training_started') or '?'}, "
                      f"suite commit {(r.get('git_commit') or '—')[:12]}; {r['file']}"))
    return items


def command_line(session: dict) -> str:
    """Where the command that wrote the page ran: a command of an older commit may not run, or may train
    another study, at today's code (a report's README says what trains it again)."""
    commit = session.get("git_commit")
    return f"at suite commit {commit[:7]}{' with uncommitted changes' if session.get('git_dirty') else ''}" \
        if commit else "outside a git checkout"


def missing_rows(doc: dict) -> list[dict]:
    """The planned runs not finished, each with the claims that wait for it."""
    waiting: dict[str, list[str]] = {}
    for c in doc["claims"]:
        for key in c.get("waits_for", []):
            waiting.setdefault(key, []).append(c["id"])
    return [{**m, "claims": ", ".join(waiting.get(m["key"], [])) or "—"} for m in doc.get("missing_runs", [])]


def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["code"] = code_spans
    return env.get_template("template.html.j2")


def render_page(doc: dict, *, profile_name: str, session: dict, table: Table, figures: list[dict]) -> str:
    """The self-contained HTML page of a results document `doc` (repro.report.document)."""
    original_study = profile_name == "original"
    facts, environment = header_items(profile_name, session, table, doc.get("design"))
    return _template().render(
        paper=PAPER, profile_name=profile_name, original_study=original_study, session=session,
        header=facts, environment=environment, command_at=command_line(session), claims=scorecard(doc["claims"]),
        premises=premise_rows(doc),
        counts=verdict_counts(doc["claims"]),
        figures=[{**f, "svg": Markup(f["svg"])} for f in figures],  # matplotlib's own SVG, not user text
        runs=run_rows(table, original_study), missing=missing_rows(doc),
    )
