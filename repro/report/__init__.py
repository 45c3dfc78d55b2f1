"""The reproduction report: one self-contained HTML page and a results.json per session.

    write_report(out_dir, profile_name=..., table=..., verdicts=..., session=...)  -> (index.html, results.json)
    report_original(out_dir)           the original study's own numbers through the same claims, no training
    session_info(command, profile)     what the header says about the session (hardware, versions, commit)
    load_results(path), compare(a, b), format_comparison(rows)    session against session, claim by claim

The page: a header (paper, profile, data, hardware, versions, commit, wall time, the command that reproduces
the session), the scorecard of verdicts, the paper's figures redrawn from our runs beside the original
study's, and every run. Figures are inline SVG from matplotlib, the page a jinja2 template with inline CSS:
nothing is fetched when it is opened. The results.json schema is documented in repro/report/schema.py.

One module per job: session.py (the session's header: command, hardware, versions, commit), document.py
(results.json), page.py (the HTML), figures.py, compare.py; this file writes them. Numbers are formatted by repro.format.
"""
from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

from repro.files import atomic_write_text
from repro.report.compare import compare, format_comparison, load_results
from repro.report.document import jsonable, results_document
from repro.report.figures import render_figures
from repro.report.page import render_page
from repro.report.session import session_info
from repro.results import Table
from repro.stats import Verdict

__all__ = ["write_report", "report_original", "session_info", "default_report_dir", "load_results", "compare",
           "format_comparison", "jsonable"]

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


def write_report(out_dir, *, profile_name: str, table: Table, verdicts: list[Verdict], session: dict,
                 original: Table | None = None, missing=()) -> tuple[Path, Path]:
    """Write out_dir/index.html and out_dir/results.json; return their paths.

    `missing`: the planned runs (repro.runs.RunSpec) that are not finished, listed in both files; a claim that
    waits for some of them says so (details['waits_for'] of its verdict, see repro.study.inconclusive_if_waiting).
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
    doc = results_document(profile_name, table, verdicts, session, missing)
    figures = render_figures(table, None if original_study else original)
    html = render_page(doc, profile_name=profile_name, session=session, table=table, figures=figures)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "index.html", out_dir / "results.json"
    atomic_write_text(json_path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
    atomic_write_text(html_path, html)
    return html_path, json_path


def report_original(out_dir, command: str = "repro report --profile original") -> tuple[Path, Path]:
    """The report of the original study itself: its networks (148 less the 12 of no claim) through the same
    claims, with no training."""
    from repro.claims import evaluate_all
    from repro.paper import original_table

    start = time.perf_counter()
    table = original_table()
    verdicts = evaluate_all(table)
    session = session_info(command, wall_seconds=time.perf_counter() - start, outputs=(out_dir,))
    return write_report(out_dir, profile_name="original", table=table, verdicts=verdicts, session=session,
                        original=table)
