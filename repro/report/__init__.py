"""The reproduction report: one self-contained HTML page and a results.json per session.

    write_report(out_dir, profile_name=..., table=..., verdicts=..., session=...)  -> (index.html, results.json)
    report_original(out_dir)           the original study's own numbers through the same claims, no training
    session_info(command, profile)     what the header says about the session (hardware, versions, commit)
    load_results(path), compare(a, b), format_comparison(rows)    session against session, claim by claim

The page: a header (paper, profile, data, hardware, versions, commit, wall time, the command that reproduces
the session), the scorecard of verdicts, the paper's figures redrawn from our runs beside the original
study's, and every run. Figures are inline SVG from matplotlib, the page a jinja2 template with inline CSS:
nothing is fetched when it is opened. The results.json schema is documented in repro/report/schema.py.
"""
from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import jinja2
from markupsafe import Markup

from repro.report.compare import compare, format_comparison, load_results
from repro.report.figures import render_figures
from repro.report.schema import SCHEMA_VERSION, validate
from repro.results import Row, Table
from repro.runs import TREATMENTS
from repro.stats import Verdict

__all__ = ["write_report", "report_original", "session_info", "default_report_dir", "load_results", "compare",
           "format_comparison"]

PAPER = {
    "title": "How transferable are features in deep neural networks?",
    "authors": "Jason Yosinski, Jeff Clune, Yoshua Bengio, Hod Lipson",
    "venue": "NeurIPS 2014",
}
VERDICT_LABELS = {"reproduced": "Reproduced", "not_reproduced": "Not reproduced", "inconclusive": "Inconclusive"}
UNITS = {"points": "pts", "%": "%"}
RUN_FIELDS = ("evidence", "split", "replicate", "treatment", "n", "source", "target", "top1", "final_top1",
              "diverged", "num_classes", "key", "train_seconds", "cached")
ORIGINAL_NOTES = (
    "The networks of the original study, from its training logs: CaffeNet on ILSVRC-2012, 450k iterations of "
    "batch 256 each (about 9.5 days a network on a GPU of 2014). Four random splits give 4 BnB and 8 AnB "
    "networks per n, but only 1-2 BnB+ and AnB+ networks per n; one natural/man-made split (one network per "
    "direction and n); the random-feature control trained once on all 1000 classes. Score: the mean of the 10 "
    "best of 450 validation tests.")
ORIGINAL_SESSION = {
    "dataset": "ILSVRC-2012 (the original study's training logs)",
    "split_family": "4 random A/B splits + natural / man-made; random-feature control on all 1000 classes",
    "replicates": 4,
    "notes": ORIGINAL_NOTES,
}


def default_report_dir(profile_name: str, root="reports") -> Path:
    """reports/<YYYY-MM-DD>-<profile>/"""
    return Path(root) / f"{date.today().isoformat()}-{profile_name}"


# ---------------------------------------------------------------- the session: hardware, versions, commit

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    """CPU model and cores, and the CUDA devices when the session has torch loaded (a session that never
    loaded torch trained nothing, so it used no GPU)."""
    text = f"{_cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        names = Counter(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        text += "; GPUs: " + ", ".join(f"{count} x {name}" for name, count in names.items())
    return text


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("repro", "torch", "torchvision", "numpy", "scipy", "statsmodels", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = getattr(sys.modules.get(name), "__version__", None) or "not installed"
    return out


def git_state() -> tuple[str | None, bool | None]:
    """(commit, uncommitted changes?) of the repository this package lives in; (None, None) outside one."""
    here = Path(__file__).resolve()

    def git(*args):
        return subprocess.run(["git", *args], cwd=here.parent, capture_output=True, text=True, timeout=10)

    try:
        top = git("rev-parse", "--show-toplevel")
        # an installed copy (site-packages inside some other repository) is not the suite's own checkout
        if top.returncode != 0 or not (Path(top.stdout.strip()) / "repro" / "report" / here.name).exists():
            return None, None
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:  # a repository without commits yet
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def split_family(profile) -> str:
    parts = []
    if profile.random_splits:
        parts.append("random A/B splits (one per replicate)")
    if profile.natman:
        parts.append("natural / man-made")
    return " + ".join(parts) or "none"


def session_info(command: str, profile=None, wall_seconds: float = 0.0, cached: int = 0, trained: int = 0) -> dict:
    """Everything the report's header says about a session. `profile` is a repro.profiles.Profile or None."""
    commit, dirty = git_state()
    info = {
        "command": command,
        "wall_seconds": float(wall_seconds),
        "cached": int(cached),
        "trained": int(trained),
        "dataset": profile.dataset if profile else None,
        "split_family": split_family(profile) if profile else None,
        "replicates": profile.replicates if profile else None,
        "hardware": hardware(),
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "notes": profile.notes if profile else None,
    }
    if profile is not None:
        info["profile"] = profile.to_dict()
    return info


# ---------------------------------------------------------------- numbers for JSON and for the page

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
    return jsonable({
        "id": v.claim, "title": title, "sentence": sentence, "verdict": v.verdict, "effect": v.effect,
        "unit": v.unit, "ci": list(v.ci), "p": v.p, "paper_effect": v.paper_effect, "replicates": v.replicates,
        "replicates_needed": v.replicates_needed, "explanation": v.explanation, "evidence": v.evidence,
        "details": v.details,
    })


def run_order(row: Row) -> tuple:
    treatment = TREATMENTS.index(row.treatment) if row.treatment in TREATMENTS else len(TREATMENTS)
    return (row.evidence, row.split, row.replicate, row.target, treatment, row.n)


def run_json(row: Row) -> dict:
    return jsonable({name: getattr(row, name) for name in RUN_FIELDS})


def _signed(x) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:+.2f}" if abs(x) < 10 else f"{x:+.1f}"
    return text.replace("-", "−")


def _p(p) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_phrase(p) -> str:
    """'p = 0.020', 'p < 0.001', or '' when there is no p-value (a single replicate: no test)."""
    text = _p(p)
    if text == "—":
        return ""
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _duration(seconds) -> str:
    if not seconds:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


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
             "unit": UNITS.get(t.get("unit"), t.get("unit") or ""), "p": _p_phrase(t.get("p"))} for t in found]


def scorecard(claims: list[dict]) -> list[dict]:
    out = []
    for c in claims:
        unit = UNITS.get(c["unit"], c["unit"])
        lo, hi = c["ci"]
        needed = c["replicates_needed"]
        out.append({
            **c,
            "label": VERDICT_LABELS[c["verdict"]],
            "effect_text": "—" if c["effect"] is None else f"{_signed(c['effect'])} {unit}",
            "ci_text": f"[{_signed(lo)}, {_signed(hi)}]",
            "paper_text": f"{_signed(c['paper_effect'])} {unit}" if c["paper_effect"] is not None else "—",
            "p_text": _p(c["p"]),
            "needed_text": "—" if needed is None else str(needed),
            "headline": c["details"].get("headline", ""),
            "parts": claim_parts(c["details"]),
        })
    return out


def run_rows(table: Table, original_study: bool) -> list[dict]:
    out = []
    for r in sorted(table.rows, key=run_order):
        origin = "original study" if original_study else ("cached" if r.cached else "trained")
        out.append({
            "treatment": r.treatment, "n": r.n, "replicate": r.replicate, "split": r.split,
            "target": f"{r.source}→{r.target}" if r.source else r.target,
            "top1": "—" if r.top1 is None or not math.isfinite(r.top1) else f"{r.top1:.4f}",
            "final": "—" if r.final_top1 is None or not math.isfinite(r.final_top1) else f"{r.final_top1:.4f}",
            "diverged": r.diverged, "time": _duration(r.train_seconds), "origin": origin, "key": r.key,
        })
    return out


def base_accuracy(table: Table) -> str:
    """How well the bases learned: mean top-1 per kind of half, beside chance (the first thing to check
    before reading any transfer result)."""
    halves: dict[tuple[str, int], list[float]] = {}
    for r in table.rows:
        if r.treatment == "base" and not r.diverged and r.top1 is not None and r.num_classes > 0:
            family = ("random halves" if r.split.startswith("random") else
                      "natural/man-made half" if r.split == "natman" else "whole dataset")
            halves.setdefault((family, r.num_classes), []).append(r.top1)
    return " · ".join(f"{100 * sum(v) / len(v):.1f}% top-1 on the {c}-class {family} ({len(v)} "
                      f"network{'s' if len(v) > 1 else ''}; chance {100 / c:.1f}%)"
                      for (family, c), v in sorted(halves.items()))


def header_items(profile_name: str, session: dict, table: Table) -> tuple[list, list]:
    """(what ran: shown above the scorecard, where and with what: shown right below it)."""
    if profile_name == "original":
        runs = f"no training: {len(table)} networks from the original study's logs"
    else:
        runs = f"{session['trained']} trained, {session['cached']} from the store ({len(table)} in the table)"
    facts = [
        ("Profile", profile_name),
        ("Dataset", session.get("dataset") or "—"),
        ("Splits", session.get("split_family") or "—"),
        ("Replicates", "—" if session.get("replicates") is None else str(session["replicates"])),
        ("Runs", runs),
        ("Wall time", _duration(session.get("wall_seconds"))),
    ]
    if base_accuracy(table):
        facts.append(("Base networks", base_accuracy(table)))
    commit = session.get("git_commit")
    if commit and session.get("git_dirty"):
        commit += " (with uncommitted changes)"
    environment = [
        ("Hardware", session.get("hardware") or "—"),
        ("Versions", " · ".join(f"{k} {v}" for k, v in (session.get("versions") or {}).items())),
        ("Suite commit", commit or "not in a git checkout"),
        ("Created", session.get("created") or "—"),
    ]
    return facts, environment


# ---------------------------------------------------------------- writing

def _write_atomic(path: Path, text: str):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("template.html.j2")


def write_report(out_dir, *, profile_name: str, table: Table, verdicts: list[Verdict], session: dict,
                 original: Table | None = None) -> tuple[Path, Path]:
    """Write out_dir/index.html and out_dir/results.json; return their paths.

    `original` (the original study's table, drawn beside ours) defaults to repro.paper.original_table();
    when profile_name is 'original', `table` is the original study and is drawn alone.
    """
    out_dir = Path(out_dir)
    original_study = profile_name == "original"
    if original_study:  # what a session can't know about the original study, unless the caller said it
        session = {**session, **{k: v for k, v in ORIGINAL_SESSION.items() if session.get(k) is None}}
    if not original_study and original is None:
        from repro.paper import original_table

        original = original_table()
    texts = claim_texts()
    doc = {
        "schema_version": SCHEMA_VERSION,
        "profile": profile_name,
        "dataset": session.get("dataset"),
        "created": session.get("created") or datetime.now().astimezone().isoformat(timespec="seconds"),
        "wall_seconds": float(session.get("wall_seconds") or 0.0),
        "claims": [claim_json(v, texts) for v in verdicts],
        "runs": [run_json(r) for r in sorted(table.rows, key=run_order)],
        "session": jsonable(session),
    }
    validate(doc, name=f"the results of profile {profile_name!r}")
    figures = render_figures(table, None if original_study else original)
    counts = Counter(c["verdict"] for c in doc["claims"])
    facts, environment = header_items(profile_name, session, table)
    html = _template().render(
        paper=PAPER, profile_name=profile_name, original_study=original_study, session=session,
        header=facts, environment=environment, claims=scorecard(doc["claims"]),
        counts=[(k, VERDICT_LABELS[k], counts.get(k, 0)) for k in VERDICT_LABELS],
        figures=[{**f, "svg": Markup(f["svg"])} for f in figures],  # matplotlib's own SVG, not user text
        runs=run_rows(table, original_study),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "index.html", out_dir / "results.json"
    _write_atomic(json_path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    _write_atomic(html_path, html)
    return html_path, json_path


def report_original(out_dir, command: str = "repro report --profile original") -> tuple[Path, Path]:
    """The report of the original study itself: its networks (148 less the 12 of no claim) through the same
    claims, with no training."""
    from repro.claims import evaluate_all
    from repro.paper import original_table

    start = time.perf_counter()
    table = original_table()
    verdicts = evaluate_all(table)
    session = session_info(command, wall_seconds=time.perf_counter() - start)
    return write_report(out_dir, profile_name="original", table=table, verdicts=verdicts, session=session,
                        original=table)
