"""The schema of results.json, as a JSON Schema dict, and a compact validator for the subset it uses.

results.json holds the numbers of one session's report, for comparing sessions (`repro compare A B`):

    {
      "schema_version": 3,                    # 2: effects in % of base, p of the whole claim; 1: and without
                                              # premises and controls
      "profile": "cpu",                       # profile name; 'original' for the original study's own numbers
      "dataset": "tiny-imagenet",             # or null when unknown
      "created": "2025-01-31T12:00:00+00:00", # ISO time the session's report was written
      "wall_seconds": 1234.5,                 # wall time of this report's command (it may train nothing)
      "training_wall_seconds": 2670.0,        # the study's training: its runs' first start to last finish
                                              # (null: no run kept its times; optional, schema 2)
      "claims": [{                            # one per claim, in the scorecard's order
        "id": "coadaptation_dip",             # claim id (the module repro.claims.<id>)
        "title": "...", "sentence": "...",    # the claim's title and the paper's sentence
        "verdict": "reproduced",              # reproduced | not_reproduced | inconclusive | premise_not_met
        "effect": -2.1,                       # the effect of the part the verdict names (details.headline),
        "unit": "% of base over chance",      #   relative to the target's own base, in this unit
        "ci": [-2.9, -1.3],                   # its 90% confidence interval (the ends: the one-sided bounds)
        "p": 0.004,                           # its p-value (Holm-corrected across layers where it applies);
                                              #   the claim's own p (the largest of its parts') is details.claim_p
        "paper_effect": -2.0,                 # the same part on the original study's numbers
        "replicates": 3,                      # its independent replicates (pairs) used
        "replicates_needed": 4,               # its replicates for 80% power at its stated smallest effect
                                              #   (details.stated_effect) and observed spread (null: not computable)
        "explanation": "...",                 # one sentence
        "evidence": "cpu",                    # where the numbers come from
        "details": {...},                     # claim-specific numbers (free form); 'verdict_of_the_test' is
                                              # what the test alone says when a premise blocks it; 'tests' the
                                              # tree of parts, each with its own effect, ci, p, smallest, verdict;
                                              # 'lost' the failed networks the claim was judged without
        "premises": [{                        # the premises the claim rests on (repro/premises.py)
          "id", "title", "status" (met | not_met | unmeasured), "value", "measured", "rule", "to_satisfy",
          "decision", "required", "advisory", "gates", "blocks"
                                              # blocks: true when it decides the verdict: premise_not_met, or
                                              # inconclusive for a control's check (gates says which)
        }],
        "controls": [{                        # controls shown under the claim, each with its own verdict
          "name", "verdict", "effect", "unit", "ci", "p", "replicates", "explanation", "meaning", "tests"
        }],
        "waits_for": ["<key>", ...],          # optional: keys of the missing runs (below) this claim needs
      }],
      "runs": [{                              # one per network, the fields of repro.results.Row
        "evidence", "split", "replicate", "treatment", "n", "source", "target", "top1", "final_top1",
        "diverged", "num_classes", "key", "train_seconds", "cached",
        "iterations", "examples_seen", "epochs", "final_lr"   # what it trained (null: not recorded; schema 3)
      }],
      "missing_runs": [{                      # optional: planned runs that are not finished (a partial study)
        "key", "label", "split", "target", "treatment", "n", "replicate"
      }],
      "session": {                            # how the session ran; see repro.report.session_info
        "command", "wall_seconds", "cached", "trained", "profile" (optional), "dataset", "split_family",
        "replicates", "hardware", "versions", "git_commit", "git_dirty" (optional), "created", "notes",
        "rejudged" (optional: command, created, git_commit, versions of a `repro report --results` session),
        "cpu" (optional: cpu_model, cpu_capability, native_bf16, native_bf16_why, onednn_max_cpu_isa, precision:
        this machine's CPU arithmetic), "training" (optional: training_wall_seconds, training_started,
        training_finished, devices, precision, cpus, torch: how the study's runs were trained, from their records),
        "training_wall_seconds" (optional),
        "replicate_records", "numerics_by_replicate", "pieces_wall_seconds" (optional: a study run in pieces,
        repro.replicates: what trained each replicate, their numerics, the sittings' time on them)
      },
      "premises": [...],                      # every premise measured on the table (as in a claim's)
      "training_record": "derived from ...",  # optional: where the runs' iterations... come from when the
                                              #   networks did not record them (repro.results.derived_training)
      "design": {                             # optional: is this study a confirmation of its profile's design?
        "replicates", "exploratory_replicates", "kind" (confirmation | exploratory | not stated), "statement"
      },
      "curves": {"<run key>": [[iteration, top1], ...]}   # the bases' validation curves (optional)
    }

Numbers that are not finite (NaN, inf) are written as null. The validator understands the JSON Schema
keywords used here: type, enum, required, properties, additionalProperties (false), items, minItems,
maxItems, minimum; so the same dict also works with the `jsonschema` package.
"""
from __future__ import annotations

from repro.runs import TREATMENTS
from repro.stats import VERDICTS

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # 2: effects in % of base and the claim's own p; 1: no premises or controls

NUMBER_OR_NULL = {"type": ["number", "null"]}
STRING_OR_NULL = {"type": ["string", "null"]}

CLAIM = {
    "type": "object",
    "required": ["id", "verdict", "effect", "unit", "ci", "p", "paper_effect", "replicates",
                 "replicates_needed", "explanation"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "sentence": {"type": "string"},
        "verdict": {"enum": list(VERDICTS)},
        "effect": NUMBER_OR_NULL,
        "unit": {"type": "string"},
        "ci": {"type": "array", "items": NUMBER_OR_NULL, "minItems": 2, "maxItems": 2},
        "p": NUMBER_OR_NULL,
        "paper_effect": NUMBER_OR_NULL,
        "replicates": {"type": "integer", "minimum": 0},
        "replicates_needed": {"type": ["integer", "null"]},
        "explanation": {"type": "string"},
        "evidence": {"type": "string"},
        "details": {"type": "object"},
        "waits_for": {"type": "array", "items": {"type": "string"}},
        "premises": {"type": "array", "items": {"type": "object"}},
        "controls": {"type": "array", "items": {"type": "object"}},
    },
    "additionalProperties": False,
}

MISSING_RUN = {
    "type": "object",
    "required": ["key", "label", "split", "target", "treatment", "n", "replicate"],
    "properties": {
        "key": {"type": "string"},
        "label": {"type": "string"},
        "split": {"type": "string"},
        "target": {"type": "string"},
        "treatment": {"enum": list(TREATMENTS)},
        "n": {"type": "integer", "minimum": 0},
        "replicate": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}

RUN = {
    "type": "object",
    "required": ["evidence", "split", "replicate", "treatment", "n", "source", "target", "top1", "final_top1",
                 "diverged", "num_classes", "key", "train_seconds", "cached"],
    "properties": {
        "evidence": {"type": "string"},
        "split": {"type": "string"},
        "replicate": {"type": "integer", "minimum": 0},
        "treatment": {"enum": list(TREATMENTS)},
        "n": {"type": "integer", "minimum": 0},
        "source": STRING_OR_NULL,
        "target": {"type": "string"},
        "top1": NUMBER_OR_NULL,
        "final_top1": NUMBER_OR_NULL,
        "diverged": {"type": "boolean"},
        "num_classes": {"type": "integer", "minimum": 0},
        "key": {"type": "string"},
        "train_seconds": {"type": "number", "minimum": 0},
        "cached": {"type": "boolean"},
        "iterations": {"type": ["integer", "null"], "minimum": 0},
        "examples_seen": {"type": ["integer", "null"], "minimum": 0},
        "epochs": NUMBER_OR_NULL,
        "final_lr": NUMBER_OR_NULL,
    },
    "additionalProperties": False,
}

SESSION = {
    "type": "object",
    "required": ["command", "wall_seconds", "cached", "trained", "dataset", "split_family", "replicates",
                 "hardware", "versions", "git_commit", "created", "notes"],
    "properties": {
        "command": {"type": "string"},
        "wall_seconds": {"type": "number", "minimum": 0},
        "cached": {"type": "integer", "minimum": 0},
        "trained": {"type": "integer", "minimum": 0},
        "profile": {"type": ["object", "null"]},
        "dataset": STRING_OR_NULL,
        "split_family": STRING_OR_NULL,
        "replicates": {"type": ["integer", "null"]},
        "hardware": {"type": "string"},
        "versions": {"type": "object"},
        "git_commit": STRING_OR_NULL,
        "git_dirty": {"type": ["boolean", "null"]},
        "created": {"type": "string"},
        "notes": STRING_OR_NULL,
        "cpu": {"type": "object"},
        "training": {"type": "object"},
        "training_wall_seconds": NUMBER_OR_NULL,
    },
    # the session may carry more (the lead's CLI adds what it knows); the fields above are always there
}

RESULTS = {
    "type": "object",
    "required": ["schema_version", "profile", "dataset", "created", "wall_seconds", "claims", "runs", "session"],
    "properties": {
        "schema_version": {"enum": list(READABLE_VERSIONS)},
        "profile": {"type": "string"},
        "dataset": STRING_OR_NULL,
        "created": {"type": "string"},
        "wall_seconds": {"type": "number", "minimum": 0},
        "training_wall_seconds": NUMBER_OR_NULL,
        "claims": {"type": "array", "items": CLAIM},
        "premises": {"type": "array", "items": {"type": "object"}},
        "runs": {"type": "array", "items": RUN},
        "design": {"type": "object", "required": ["replicates", "exploratory_replicates", "kind", "statement"]},
        "training_record": {"type": "string"},
        "missing_runs": {"type": "array", "items": MISSING_RUN},
        "curves": {"type": "object"},
        "session": SESSION,
    },
    "additionalProperties": False,
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(doc, schema: dict = RESULTS, path: str = "$") -> list[str]:
    """Every way `doc` breaks `schema`, as 'path: what is wrong' lines (empty when it conforms)."""
    out = []
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_TYPES[t](doc) for t in types):
            return [f"{path}: expected {' or '.join(types)}, got {type(doc).__name__} {doc!r:.60}"]
    if "enum" in schema and doc not in schema["enum"]:
        out.append(f"{path}: {doc!r} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](doc) and doc < schema["minimum"]:
        out.append(f"{path}: {doc} is below the minimum {schema['minimum']}")
    if isinstance(doc, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing required field {k!r}" for k in schema.get("required", []) if k not in doc]
        if schema.get("additionalProperties") is False:
            out += [f"{path}: unexpected field {k!r} (not in the documented schema)" for k in doc if k not in props]
        for k, sub in props.items():
            if k in doc:
                out += errors(doc[k], sub, f"{path}.{k}")
    if isinstance(doc, list):
        if "minItems" in schema and len(doc) < schema["minItems"]:
            out.append(f"{path}: {len(doc)} items, at least {schema['minItems']} expected")
        if "maxItems" in schema and len(doc) > schema["maxItems"]:
            out.append(f"{path}: {len(doc)} items, at most {schema['maxItems']} expected")
        if "items" in schema:
            for i, item in enumerate(doc):
                out += errors(item, schema["items"], f"{path}[{i}]")
    return out


def validate(doc, schema: dict = RESULTS, name: str = "results.json") -> None:
    """Raise ValueError listing every schema violation of `doc` (named `name` in the message)."""
    problems = errors(doc, schema)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{name} does not follow the results schema (repro/report/schema.py):\n  {shown}{more}")
