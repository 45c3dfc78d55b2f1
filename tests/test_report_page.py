"""What the report page says, beyond its numbers: premises drawn as what they do (an advisory one blocks
nothing), a claim stopped by a premise nobody could measure says so, free text without raw backticks, a
header that does not pass a report written from a full store for the study, a run's time named as its
group's, and mean lines that do not cross the n nobody trained."""
import dataclasses
import math

import pytest
from matplotlib.figure import Figure

from repro.paper import original_table
from repro.profiles import CPU
from repro.report import session_info, write_report
from repro.report.figures import plot_means
from repro.report.page import code_spans, header_items, premise_rows, verdict_counts, verdict_label
from repro.results import Table

pytestmark = pytest.mark.smoke


def premise(id_, status, blocks, advisory=False):
    return {"id": id_, "title": id_, "status": status, "blocks": blocks, "advisory": advisory, "measured": "",
            "rule": "", "to_satisfy": "", "decision": "", "required": not advisory}


CONVERGED_UNMEASURED = premise("converged_bases", "unmeasured", blocks=True)
CONVERGED_NOT_MET = premise("converged_bases", "not_met", blocks=True)
PLATEAU_NOT_MET = premise("bases_plateaued", "not_met", blocks=False, advisory=True)


def claim(verdict, *premises):
    return {"id": "coadaptation_dip", "verdict": verdict, "premises": list(premises)}


def test_an_advisory_premise_that_is_not_met_is_drawn_as_blocking_nothing():
    rows = premise_rows({"claims": [claim("premise_not_met", CONVERGED_NOT_MET, PLATEAU_NOT_MET)],
                         "premises": [CONVERGED_NOT_MET, PLATEAU_NOT_MET, CONVERGED_UNMEASURED]})
    assert [(r["label"], r["blocks"], r["advisory"]) for r in rows] == [
        ("not met", True, False), ("not met (blocks nothing)", False, True), ("not measured (blocks)", True, False)]


def test_a_claim_stopped_only_by_premises_not_measured_says_so():
    one_replicate = claim("premise_not_met", CONVERGED_UNMEASURED, PLATEAU_NOT_MET)
    refused = claim("premise_not_met", CONVERGED_NOT_MET)
    assert verdict_label(one_replicate) == "Premise not measured"
    assert verdict_label(refused) == "Premise not met"
    assert verdict_label(claim("inconclusive", CONVERGED_UNMEASURED)) == "Inconclusive"
    assert verdict_counts([one_replicate])[3] == ("premise_not_met", "Premise not measured", 1)
    assert verdict_counts([one_replicate, refused])[3] == ("premise_not_met", "Premise not met or not measured", 2)
    assert verdict_counts([])[3] == ("premise_not_met", "Premise not met", 0)


def test_backticks_become_code_and_everything_else_is_escaped():
    assert code_spans("run `repro plan --profile cpu` <now>") == \
        "run <code>repro plan --profile cpu</code> &lt;now&gt;"
    assert code_spans("`<b>`") == "<code>&lt;b&gt;</code>"
    assert code_spans("one ` alone") == "one ` alone"  # unmatched: left as written


def test_a_report_written_from_a_full_store_does_not_pass_its_command_for_the_study():
    table = original_table()
    session = session_info("pytest claims/ -m cpu --report-dir reports/x", CPU, wall_seconds=2.3, cached=102,
                           trained=0)
    facts = dict(header_items("cpu", session, table)[0])
    assert facts["Runs"].startswith(f"{len(table)} networks, all from the run store: trained by an earlier session")
    assert facts["Wall time of the command below"] == "2.3 s (it trained nothing)"
    assert facts["Training wall time"].startswith("not recorded")
    trained = dict(header_items("cpu", {**session, "trained": 96, "cached": 0}, table)[0])
    assert trained["Runs"] == f"96 trained, 0 from the store ({len(table)} in the table)"
    assert trained["Wall time of the command below"] == "2.3 s"


def test_the_page_names_a_runs_time_as_its_groups_and_the_command_with_its_commit(tmp_path):
    session = {**session_info("pytest claims/ -m cpu", CPU, wall_seconds=60.0, trained=1), "git_commit": "3c3bc34df8"}
    html, _ = write_report(tmp_path, profile_name="cpu", table=Table(original_table().rows[:3]), verdicts=[],
                           session=session, original=original_table())
    page = html.read_text()
    assert "its group's train time" in page and ">train time<" not in page
    assert "at suite commit 3c3bc34" in page
    assert "`" not in page.split('id="session"')[1].split("</section>")[0]  # the profile's notes


def test_a_mean_line_joins_only_adjacent_n():
    ax = Figure().subplots()
    plot_means(ax, [1, 2, 7], [0.5, 0.4, 0.1], "#000000")
    (line,) = ax.get_lines()
    xs = list(line.get_xdata())
    assert xs[:2] == [1, 2] and math.isnan(xs[2]) and xs[3] == 7
    assert line.get_marker() == "_"  # a lone n still shows its mean


def test_the_header_counts_the_replicates_in_the_table_not_only_those_the_profile_plans():
    rows = [dataclasses.replace(r, evidence="cpu") for r in original_table().rows]
    session = session_info("repro report --results one.json", CPU)  # the cpu profile plans 3 replicates
    one = Table([r for r in rows if r.replicate == 0])
    assert dict(header_items("cpu", session, one)[0])["Replicates"] == "1 in the table (the profile plans 3)"
    three = Table([r for r in rows if r.replicate <= 2])
    assert dict(header_items("cpu", session, three)[0])["Replicates"] == "3"


def test_a_study_in_pieces_is_timed_by_its_replicates_training_not_by_the_days_between_sittings():
    rows = [dataclasses.replace(r, evidence="cpu") for r in original_table().rows]
    session = session_info("repro report --study-dir study", CPU)
    session["training_wall_seconds"] = 3 * 86400.0  # the first sitting's first start to the last one's last finish
    session["replicate_records"] = [{"replicate": r, "networks": 36, "file": f"replicates/r{r}.json",
                                     "training_wall_seconds": 3600.0} for r in (0, 1)]
    wall = dict(header_items("cpu", session, Table(rows))[0])["Training wall time"]
    assert wall.startswith("2 h 00 min, the 2 replicates' training times summed") and "spans 72 h" in wall
    assert "a sitting that trained several side by side counts once for each" in wall
    session["pieces_wall_seconds"] = 5400.0  # the two trained side by side for half an hour
    wall = dict(header_items("cpu", session, Table(rows))[0])["Training wall time"]
    assert wall.startswith("1 h 30 min, the sittings' time on the 2 replicates, a sitting counted once (the "
                           "replicates' own times, each below, sum to 2 h 00 min)") and "spans 72 h" in wall
    del session["pieces_wall_seconds"]
    session["replicate_records"][1]["training_wall_seconds"] = None  # a record from before records kept it
    assert dict(header_items("cpu", session, Table(rows))[0])["Training wall time"].startswith("72 h")
