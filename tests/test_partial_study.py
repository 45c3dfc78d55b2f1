"""A partial study (stopped half way, or trained with --claims): the report lists the planned runs that are
not finished, and a claim that needs some of them is inconclusive and says which it waits for."""
import json

import pytest

from repro.cli import main

pytestmark = pytest.mark.smoke

SMALL = ["replicates=1", "layers=1", "finetune_layers=1", "natman_layers=1", "random_layers=1"]


def test_a_report_of_a_partial_study_lists_the_missing_runs_and_what_each_claim_waits_for(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    report = tmp_path / "report"
    # train only what early_layer_generality needs: the bases of random:0, AnB and BnB at n = 1 (4 of 13 runs)
    assert main(["report", "--profile", "smoke", "--store", str(tmp_path / "store"), "--quiet", "--claims",
                 "early_layer_generality", "--report-dir", str(report), *[a for s in SMALL for a in ("--set", s)]]) == 0
    doc = json.loads((report / "results.json").read_text())
    missing = {m["key"]: m for m in doc["missing_runs"]}
    assert len(doc["runs"]) == 4 and len(missing) == 9
    assert {(m["split"], m["treatment"]) for m in missing.values()} == {
        ("random:0", "BnB+"), ("random:0", "AnB+"), ("random:0", "base-2x"),
        ("natman", "base"), ("natman", "AnB"), ("natman", "random")}
    claims = {c["id"]: c for c in doc["claims"]}
    assert "waits_for" not in claims["early_layer_generality"]  # all its runs are there: judged
    waits = {cid: {(missing[k]["split"], missing[k]["treatment"]) for k in c["waits_for"]}
             for cid, c in claims.items() if "waits_for" in c}
    assert waits == {
        "coadaptation_dip": {("random:0", "BnB+")},
        "distance_penalty": {("natman", "base"), ("natman", "AnB")},
        "finetune_boost": {("random:0", "BnB+"), ("random:0", "AnB+"), ("random:0", "base-2x")},
        "random_features": {("natman", "base"), ("natman", "AnB"), ("natman", "random")},
    }
    for cid in waits:
        assert claims[cid]["verdict"] == "inconclusive"
        assert f"it waits for {len(claims[cid]['waits_for'])} planned run" in \
            claims[cid]["explanation"]
    page = (report / "index.html").read_text()
    assert "Runs not finished (9 planned)" in page and all(key in page for key in missing)
    assert page.count(" not finished</a>") == 4
