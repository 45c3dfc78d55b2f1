"""results.json: the numbers of a report as plain JSON, in the schema of repro/report/schema.py."""
from __future__ import annotations

import math
from datetime import datetime

from repro.premises import measure_premises
from repro.report.schema import SCHEMA_VERSION, validate
from repro.results import TRAINING, Row, Table
from repro.runs import TREATMENTS
from repro.stats import Verdict

RUN_FIELDS = ("evidence", "split", "replicate", "treatment", "n", "source", "target", "top1", "final_top1",
              "diverged", "num_classes", "key", "train_seconds", "cached") + TRAINING


def jsonable(obj):
    """Plain JSON values: tuples and sets to lists, numpy scalars to Python, NaN and inf to null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((jsonable(v) for v in obj), key=str)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:
        obj = obj.item()  # numpy scalar
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return str(obj)


def claim_texts() -> dict[str, tuple[str, str]]:
    """claim id -> (title, the paper's sentence), from the claim modules."""
    from repro.claims import CLAIMS

    return {m.ID: (m.TITLE, m.SENTENCE) for m in CLAIMS}


def claim_json(v: Verdict, texts: dict) -> dict:
    title, sentence = texts.get(v.claim, (v.claim, ""))
    waits_for = {"waits_for": v.details["waits_for"]} if v.details.get("waits_for") else {}
    return jsonable({**waits_for,
        "id": v.claim, "title": title, "sentence": sentence, "verdict": v.verdict, "effect": v.effect,
        "unit": v.unit, "ci": list(v.ci), "p": v.p, "paper_effect": v.paper_effect, "replicates": v.replicates,
        "replicates_needed": v.replicates_needed, "explanation": v.explanation, "evidence": v.evidence,
        "details": v.details, "premises": v.premises, "controls": v.controls,
    })


def design_json(table: Table, profile_name: str, session: dict) -> dict | None:
    """Whether the study confirms its profile's design or explored it: its replicates against the ones that
    chose the design (`Profile.exploratory_replicates`, from the study's own profile record, or for a record
    written before it existed, from the profile of that name today). None for the original study or an
    unknown profile."""
    from repro.profiles import PROFILES

    recorded = session.get("profile") if isinstance(session.get("profile"), dict) else {}
    if "exploratory_replicates" in recorded:
        exploratory, source = recorded["exploratory_replicates"], "the study's profile"
    elif profile_name in PROFILES:
        exploratory, source = PROFILES[profile_name].exploratory_replicates, f"the {profile_name} profile today"
    else:
        return None
    replicates = sorted({r.replicate for r in table.rows if r.split != "all"})
    used = sorted(set(replicates) & set(exploratory))
    if not exploratory:
        kind, words = "not stated", f"{source} names no replicates that chose its design"
    elif used:
        kind, words = "exploratory", (f"exploratory: replicates {_numbers(used)} chose the design ({source}: "
                                      f"its sizing seeds {_numbers(exploratory)}), so these verdicts helped make "
                                      f"the design they judge")
    else:
        kind, words = "confirmation", (f"a confirmation: none of its replicates ({_numbers(replicates)}) chose the "
                                       f"design ({source}: its sizing seeds {_numbers(exploratory)})")
    return {"replicates": replicates, "exploratory_replicates": list(exploratory), "kind": kind,
            "statement": f"Replicates {_numbers(replicates)}: {words}."}


def _numbers(values) -> str:
    return ", ".join(str(v) for v in values)


def run_order(row: Row) -> tuple:
    treatment = TREATMENTS.index(row.treatment) if row.treatment in TREATMENTS else len(TREATMENTS)
    return (row.evidence, row.split, row.replicate, row.target, treatment, row.n)


def run_json(row: Row) -> dict:
    return jsonable({name: getattr(row, name) for name in RUN_FIELDS})


def missing_json(spec) -> dict:
    """A planned run that is not finished (a repro.runs.RunSpec)."""
    return {"key": spec.key, "label": spec.label, "split": spec.split, "target": spec.target,
            "treatment": spec.treatment, "n": spec.n, "replicate": spec.replicate}


def results_document(profile_name: str, table: Table, verdicts: list[Verdict], session: dict,
                     missing=()) -> dict:
    """The whole results.json, checked against the schema. `missing`: the planned runs not finished."""
    texts = claim_texts()
    doc = {
        "schema_version": SCHEMA_VERSION,
        "profile": profile_name,
        "dataset": session.get("dataset"),
        "created": session.get("created") or datetime.now().astimezone().isoformat(timespec="seconds"),
        "wall_seconds": float(session.get("wall_seconds") or 0.0),
        "training_wall_seconds": session.get("training_wall_seconds"),
        "claims": [claim_json(v, texts) for v in verdicts],
        "premises": jsonable([p.to_dict() for p in measure_premises(table)]),
        "runs": [run_json(r) for r in sorted(table.rows, key=run_order)],
        # the bases' validation curves, so that a table judged again keeps its plateau premise
        "curves": {r.key: [list(point) for point in table.curves[r.key]] for r in table.rows
                   if r.treatment == "base" and r.key in table.curves},
        "session": jsonable(session),
    }
    design = design_json(table, profile_name, session)
    if design:
        doc["design"] = design
    if table.training_record:
        doc["training_record"] = table.training_record
    if missing:
        doc["missing_runs"] = [missing_json(s) for s in missing]
    validate(doc, name=f"the results of profile {profile_name!r}")
    return doc
