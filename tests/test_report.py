"""The HTML report and results.json: complete, in the documented schema, and self-contained."""
import dataclasses
import hashlib
import json
import math
import re
from datetime import date, datetime

import numpy as np
import pytest
from markupsafe import escape

from repro.claims import CLAIMS
from repro.paper import original_table
from repro.profiles import SMOKE
from repro.report import (compare, default_report_dir, format_comparison, load_results, report_original,
                          session_info, write_report)
from repro.report.schema import errors, validate
from repro.results import Row, Table
from repro.stats import VERDICTS, Verdict

pytestmark = pytest.mark.smoke

CLAIM_IDS = ("early_layer_generality", "coadaptation_dip", "distance_penalty", "finetune_boost", "random_features")
FROZEN_DROP = {"BnB": [0, 0, 1, 3, 4, 1, 0], "AnB": [0, 0.5, 1, 3, 5, 6, 8]}  # points below base at n = 1..7


def ours_table() -> Table:
    """A small study of our own, shaped like the smoke profile's: two replicates; random splits with every
    treatment (transfers target B); natural/man-made in both directions; the random-feature control; and one
    diverged network. Base networks carry validation curves."""
    rng = np.random.default_rng(0)
    rows, curves = [], {}

    def add(split, r, treatment, n, target, top1, diverged=False):
        source = {"BnB": target, "BnB+": target, "AnB": "AB"[target == "A"], "AnB+": "AB"[target == "A"]}
        key = hashlib.sha256(f"{split}{r}{treatment}{n}{target}".encode()).hexdigest()[:20]
        final = float("nan") if diverged else top1 - 0.005
        rows.append(Row("smoke", split, r, treatment, n, source.get(treatment), target, top1, final,
                        diverged=diverged, num_classes=4, key=key, train_seconds=3.0 + n, cached=r == 0))
        if treatment == "base":
            curves[key] = [(i * 20, top1 * (1 - math.exp(-i / 2))) for i in range(1, 9)]

    for r in range(2):
        for target, level in (("A", 0.55), ("B", 0.6)):
            add(f"random:{r}", r, "base", 0, target, level + rng.normal(0, 0.005))
            add("natman", r, "base", 0, target, level - 0.05 + rng.normal(0, 0.005))
        base_b = next(x.top1 for x in rows if x.split == f"random:{r}" and x.treatment == "base" and x.target == "B")
        for n in (1, 3, 5, 7):
            diverged = r == 1 and n == 7
            for t in ("BnB", "AnB"):
                top1 = 0.25 if diverged and t == "AnB" else base_b - FROZEN_DROP[t][n - 1] / 100
                add(f"random:{r}", r, t, n, "B", top1 + rng.normal(0, 0.003), diverged=diverged and t == "AnB")
        for n in (1, 5):
            add(f"random:{r}", r, "BnB+", n, "B", base_b + 0.005 + rng.normal(0, 0.003))
            add(f"random:{r}", r, "AnB+", n, "B", base_b + 0.012 + rng.normal(0, 0.003))
        for target in ("A", "B"):
            base = next(x for x in rows if x.split == "natman" and x.replicate == r and x.target == target)
            for n in (1, 7):
                add("natman", r, "AnB", n, target, base.top1 * (1 - 0.04 * n))
                add("natman", r, "random", n, target, base.top1 * (0.9 if n == 1 else 0.45))
    return Table(rows, curves)


def verdicts_for(evidence: str) -> list[Verdict]:
    """One hand-made verdict per claim, every verdict kind among them, one with no effect at all (NaN)."""
    out = []
    for i, claim in enumerate(CLAIM_IDS):
        effect = float("nan") if i == 4 else -2.5 + i
        details = {"spread": np.float64(0.5), "headline": f"headline of claim {i}", "tests": {
            "name": "both parts", "verdict": VERDICTS[i % 4], "parts": [
                {"name": f"first part of claim {i}", "verdict": "reproduced", "effect": 1.0, "unit": "%", "p": 0.01},
                {"name": f"second part of claim {i}", "verdict": VERDICTS[i % 4], "effect": -1.0, "unit": "%",
                 "p": 1e-5, "parts": []}]}}
        out.append(Verdict(claim, VERDICTS[i % 4], effect, "points", (effect - 1, effect + 1), 0.01 * (i + 1),
                           -2.0 + i, 2, 3 + i, f"hand-made verdict number {i}", evidence, details))
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    original = report_original(root / "original")
    session = session_info("pytest -m smoke", SMOKE, wall_seconds=12.5, cached=20, trained=22)
    ours = write_report(root / "smoke", profile_name="smoke", table=ours_table(), verdicts=verdicts_for("smoke"),
                        session=session, original=original_table())
    return {"original": original, "smoke": ours}


def test_report_writes_exactly_index_html_and_results_json(reports):
    for html, js in reports.values():
        assert (html.name, js.name) == ("index.html", "results.json")
        assert sorted(p.name for p in html.parent.iterdir()) == ["index.html", "results.json"]


def test_results_json_follows_the_documented_schema(reports):
    for _, js in reports.values():
        doc = json.loads(js.read_text(), parse_constant=lambda c: pytest.fail(f"{js} holds {c}"))
        assert errors(doc) == []
        assert load_results(js.parent) == doc


def test_original_report_holds_every_claim_and_network_of_the_original_study(reports):
    html, js = reports["original"]
    doc = json.loads(js.read_text())
    table = original_table()
    assert doc["profile"] == "original"
    assert [c["id"] for c in doc["claims"]] == [m.ID for m in CLAIMS]
    assert len(doc["runs"]) == len(table)
    assert {r["key"] for r in doc["runs"]} == {r.key for r in table.rows}
    assert doc["session"]["dataset"].startswith("ILSVRC-2012")
    page = html.read_text()
    for claim in CLAIMS:
        assert str(escape(claim.TITLE)) in page
    assert "This session" not in page  # the original study is drawn alone


def test_the_premises_come_first_and_the_finetune_boost_says_why_it_is_not_the_papers_table_1(reports):
    html, js = reports["original"]
    doc = json.loads(js.read_text())
    assert [p["id"] for p in doc["premises"]] == ["bases_above_chance", "converged_bases", "trained_alike",
                                                  "random_control_trains", "selffer_fine_tuned_holds",
                                                  "bases_plateaued"]
    assert all(p["status"] == "met" for p in doc["premises"])
    page = html.read_text()
    assert page.index('id="premise-converged_bases"') < page.index('class="scorecard"')  # the first screen
    (boost,) = [c for c in doc["claims"] if c["id"] == "finetune_boost"]
    assert boost["verdict"] != "reproduced" and boost["details"]["headline"] == "AnB+ above BnB+, each against " \
        "its own base, at the n both have"  # the part that fails, named on the page and in the explanation
    assert "comes from the longer training, not from transfer" in boost["details"]["caveat"]
    assert str(escape(boost["details"]["caveat"])) in page and "effect similar to the original" in page
    (penalty,) = [c for c in doc["claims"] if c["id"] == "distance_penalty"]
    assert "449/551 in the original" in penalty["details"]["caveat"] and "Caveat:" in page


def test_our_report_shows_every_run_verdict_and_figure(reports):
    html, js = reports["smoke"]
    doc = json.loads(js.read_text())
    table = ours_table()
    page = html.read_text()
    assert len(doc["runs"]) == len(table)
    assert all(r.key in page for r in table.rows)
    assert [r["diverged"] for r in doc["runs"]].count(True) == 1
    assert page.count('class="diverged"') == 1
    assert {c["verdict"] for c in doc["claims"]} == set(VERDICTS)
    for kind in VERDICTS:
        assert f'class="badge {kind}"' in page
    assert doc["claims"][4]["effect"] is None and doc["claims"][4]["ci"] == [None, None]
    assert doc["session"]["profile"]["name"] == "smoke" and doc["session"]["trained"] == 22
    assert page.count("<svg") == 5
    assert "Original study (ILSVRC-2012)" in page and "This session (smoke)" in page
    assert "pytest -m smoke" in page


def test_header_says_how_well_the_bases_learned_beside_chance(reports):
    table = ours_table()
    bases = [r.top1 for r in table.rows if r.treatment == "base" and r.split.startswith("random")]
    mean = 100 * sum(bases) / len(bases)
    assert (f"{mean:.1f}% top-1 on the 4-class random halves (4 networks; chance 25.0%)"
            in reports["smoke"][0].read_text())
    assert "62.5% top-1 on the 500-class random halves (8 networks; chance 0.2%)" in \
        reports["original"][0].read_text()


def test_scorecard_names_the_headline_and_every_part_of_a_claim(reports):
    page = reports["smoke"][0].read_text()
    assert "headline of claim 0" in page
    assert '<li class="reproduced">first part of claim 0: <span class="num">+1.00 %, p = 0.010</span>' in page
    assert '<li class="not_reproduced">second part of claim 1: <span class="num">−1.00 %, p &lt; 0.001</span>' in page


EXTERNAL = [
    re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?!#|data:)[^"'\s>]""", re.I),  # any src/href but in-page or data:
    re.compile(r"""url\(\s*["']?\s*(?!#|data:)""", re.I),
    re.compile(r"<script\b", re.I),
    re.compile(r"<link\b", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"<(?:iframe|object|embed|img|video|audio)\b", re.I),
]


def test_html_references_nothing_outside_itself(reports):
    for html, _ in reports.values():
        page = html.read_text()
        for pattern in EXTERNAL:
            match = pattern.search(page)
            assert match is None, f"{html} refers outside itself: ...{page[match.start() - 60:match.end() + 60]}..."


def test_schema_names_what_is_wrong(reports):
    doc = json.loads(reports["smoke"][1].read_text())
    del doc["claims"][0]["p"]
    doc["claims"][1]["verdict"] = "maybe"
    doc["runs"][0]["top1"] = "high"
    doc["runs"][1]["extra"] = 1
    doc["session"]["cached"] = True
    problems = errors(doc)
    assert problems == [
        "$.claims[0]: missing required field 'p'",
        "$.claims[1].verdict: 'maybe' is not one of ['reproduced', 'not_reproduced', 'inconclusive', "
        "'premise_not_met']",
        "$.runs[0].top1: expected number or null, got str 'high'",
        "$.runs[1]: unexpected field 'extra' (not in the documented schema)",
        "$.session.cached: expected integer, got bool True",
    ]
    with pytest.raises(ValueError, match="missing required field 'p'"):
        validate(doc)


def test_figures_say_so_when_a_session_lacks_a_kind_of_run(tmp_path):
    only_frozen = Table([r for r in ours_table().rows if r.split == "random:0" and r.treatment in ("base", "BnB")])
    html, _ = write_report(tmp_path / "r", profile_name="smoke", table=only_frozen, verdicts=[],
                           session=session_info("x", SMOKE), original=original_table())
    page = html.read_text()
    assert page.count("<svg") == 5
    assert "No claims were evaluated in this session." in page
    assert "no validation curves of base networks recorded" in page


def test_report_refuses_a_session_missing_what_the_header_needs(tmp_path):
    session = session_info("repro report --profile smoke", SMOKE)
    del session["hardware"]
    with pytest.raises(ValueError, match="missing required field 'hardware'"):
        write_report(tmp_path / "r", profile_name="smoke", table=ours_table(), verdicts=[], session=session,
                     original=original_table())
    assert not (tmp_path / "r").exists()


def test_session_info_describes_machine_and_profile():
    info = session_info("repro run --profile smoke", SMOKE, wall_seconds=3, cached=1, trained=2)
    assert info["dataset"] == "synthetic" and info["replicates"] == SMOKE.replicates
    assert info["notes"] == SMOKE.notes and info["profile"]["recipe"]["lr"] == SMOKE.recipe.lr
    assert info["versions"]["python"].count(".") == 2 and "numpy" in info["versions"]
    assert "logical cores" in info["hardware"]
    assert info["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", info["git_commit"])
    assert datetime.fromisoformat(info["created"]).tzinfo is not None
    assert "profile" not in session_info("x")


def test_a_session_that_changed_its_profile_says_what_before_the_named_profiles_notes():
    changed = SMOKE.override(["recipe.epochs=3", "recipe.cpu_bf16=true", "replicates=4", "finetune_layers=1,2"])
    notes = session_info("repro run --profile smoke --set ...", changed)["notes"]
    assert notes == ("This session's `smoke` profile sets recipe.epochs=3, recipe.cpu_bf16=true, replicates=4, "
                     f"finetune_layers=1,2; its notes, as named: {SMOKE.notes}")
    assert session_info("x", SMOKE.override(["replicates=" + str(SMOKE.replicates)]))["notes"] == SMOKE.notes
    renamed = dataclasses.replace(SMOKE, name="theirs", notes="a profile of their own")  # not the suite's to compare
    assert session_info("x", renamed)["notes"] == "a profile of their own"


def test_default_report_dir_is_dated_per_profile():
    assert str(default_report_dir("cpu")) == f"reports/{date.today().isoformat()}-cpu"


def results_with(effects: dict) -> dict:
    claims = [{"id": cid, "verdict": "reproduced", "effect": e, "unit": "points", "ci": ci, "p": 0.01,
               "paper_effect": 1.0, "replicates": 3, "replicates_needed": 3, "explanation": ""}
              for cid, (e, ci) in effects.items()]
    return {"claims": claims}


def test_compare_flags_effects_that_differ_beyond_their_replicates():
    a = results_with({"same": (1.0, [0.0, 2.0]), "moved": (1.0, [0.8, 1.2]), "only_a": (1.0, [0.0, 2.0])})
    b = results_with({"same": (1.2, [0.2, 2.2]), "moved": (3.0, [2.8, 3.2]), "only_b": (1.0, [0.0, 2.0])})
    rows = {r["id"]: r for r in compare(a, b)}
    assert rows["same"]["exceeds"] is False and rows["moved"]["exceeds"] is True
    assert rows["moved"]["difference"] == pytest.approx(2.0)
    se = math.hypot(0.2 / 1.644854, 0.2 / 1.644854)  # from the 90% intervals every verdict reports
    assert rows["moved"]["se"] == pytest.approx(se, rel=1e-5)
    assert rows["moved"]["z"] == pytest.approx(2.0 / se, rel=1e-5)
    assert rows["only_a"]["exceeds"] is None and rows["only_b"]["note"] == "only in b"
    text = format_comparison(list(rows.values()))
    assert "moved" in text and "YES" in text and "1 of 4 claims differ" in text
    assert "90% CI" in text and "1.645" in text and "1.96" not in text and "95%" not in text


def test_the_report_says_whether_a_study_confirms_its_profiles_design_or_explored_it():
    from repro.report.document import design_json

    sizing = ours_table()  # replicates 0 and 1
    cpu = {"profile": {"name": "cpu", "exploratory_replicates": [0, 1, 2]}}
    explored = design_json(sizing, "cpu", cpu)
    assert explored["kind"] == "exploratory" and explored["statement"].startswith("Replicates 0, 1: exploratory")
    confirming = Table([dataclasses.replace(r, replicate=r.replicate + 3) for r in sizing.rows])
    assert design_json(confirming, "cpu", cpu)["kind"] == "confirmation"
    # a results.json written before profiles named their sizing seeds: the profile of that name today says
    assert design_json(sizing, "cpu", {"profile": {"name": "cpu"}})["statement"].endswith(
        "(the cpu profile today: its sizing seeds 0, 1, 2), so these verdicts helped make the design they judge.")
    assert design_json(sizing, "smoke", {})["kind"] == "not stated"
    assert design_json(original_table(), "original", {}) is None


def test_compare_sets_the_same_part_against_itself_never_two_parts():
    # a names its n = 7 drop, b names its n = 1 equivalence (another part failed there) but holds n = 7 in its
    # tree: the drops are compared; a part b does not hold is not compared at all
    tree = {"name": "claim", "parts": [{"name": "n=7", "effect": -12.0, "ci": [-14.0, -10.0], "unit": "%",
                                        "parts": []}]}
    a = {"claims": [{"id": "c", "verdict": "reproduced", "effect": -13.0, "unit": "%", "ci": [-14.0, -12.0],
                     "details": {"headline": "n=7"}}]}
    b = {"claims": [{"id": "c", "verdict": "inconclusive", "effect": 0.5, "unit": "%", "ci": [-3.0, 4.0],
                     "details": {"headline": "n=1", "tests": tree}}]}
    (row,) = compare(a, b)
    assert (row["part"], row["effect_a"], row["effect_b"]) == ("n=7", -13.0, -12.0)
    b["claims"][0]["details"]["tests"] = {"name": "claim", "parts": []}
    (row,) = compare(a, b)
    assert row["exceeds"] is None and "not compared" in row["note"]


def test_comparing_a_session_with_itself_finds_no_difference(reports):
    doc = load_results(reports["smoke"][1])
    rows = compare(doc, doc)
    assert [r["exceeds"] for r in rows] == [False, False, False, False, None]  # the fifth has no effect


def test_load_results_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass a report folder or its results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_results(tmp_path)
