"""The power a plan tells before it trains: every claim part with its stated effect, the spread measured on a
study of the tier (not assumed), the replicates and the power; the shipped spreads are what the committed
studies give; more replicates never lower it; the compute-matched bases' cost is stated."""
import json
import math
from pathlib import Path

import pytest

from repro.cli import main
from repro.paper import original_table
from repro.planned_power import MEASURED_ON, load_spreads, measure_spreads, planned_power, replicates_for_power
from repro.profiles import get_profile
from repro.results import table_from_file

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).parent.parent


def test_the_shipped_spreads_are_those_the_committed_studies_give():
    # python -m repro.planned_power --write regenerates them
    shipped = load_spreads()
    for tier, table in (("cpu", table_from_file(ROOT / MEASURED_ON["cpu"])[0]), ("original", original_table())):
        measured = measure_spreads(table)
        assert measured.keys() == shipped[tier].keys()
        for claim, parts in measured.items():
            for name, spread in parts.items():
                assert shipped[tier][claim][name]["sd"] == pytest.approx(spread["sd"]), (tier, name)


def test_the_plan_tells_each_parts_stated_effect_spread_and_power(capsys):
    assert main(["plan", "--profile", "gpu", "--gpus", "1", "--json", "--store", "/nonexistent-store"]) == 0
    out = json.loads(capsys.readouterr().out)
    power = out["power"]
    assert power["replicates"] == 5 and power["spreads_of"] == "cpu" and "1.5-epochs" in power["measured_on"]
    parts = {p["part"]: p for claim in power["claims"] for p in claim["parts"]}
    drop = parts["AnB below BnB at n=7"]
    assert drop["stated_effect"] == -4.0 and drop["replicates"] == [5] and 0 < drop["power"] < 1
    assert drop["sd"] == pytest.approx(load_spreads()["cpu"]["early_layer_generality"]["AnB below BnB at n=7"]["sd"])
    # the gpu profile fine-tunes at n = 6 too, which the cpu study did not: it says where its spread came from
    assert all(p["sd_from"].startswith(("measured on", "not measured there")) for p in parts.values())
    assert parts["AnB top-layer drop: natural/man-made minus random splits"]["replicates"] == [5, 5]
    for claim in power["claims"]:  # every part must hold: at most the weakest (the dip: at most its layers' sum)
        required = [p["power"] for p in claim["parts"] if not p["part"].endswith(" below base")]
        assert claim["claim_power_at_most"] <= min(required) + 1e-9
    # and what the compute-matched bases cost
    cost = out["compute_matched_bases"]
    assert cost["runs"] == 5 and 0 < cost["projected_hours"] < 0.1 * out["projected_hours"]


def test_more_replicates_never_lower_the_power_and_the_paper_profile_assumes_the_originals_spreads():
    cpu = {r: planned_power(get_profile("cpu"), r) for r in (3, 5, 8)}
    for i, claim in enumerate(cpu[3]["claims"]):
        for j, part in enumerate(claim["parts"]):
            powers = [cpu[r]["claims"][i]["parts"][j]["power"] for r in (3, 5, 8)]
            assert all(math.isfinite(p) for p in powers) and powers == sorted(powers), (part["part"], powers)
    paper = planned_power(get_profile("paper"))
    assert paper["spreads_of"] == "original" and paper["replicates"] == 4
    random_features = next(c for c in paper["claims"] if c["id"] == "random_features")
    beats = random_features["parts"][0]
    assert beats["replicates"] == [1] and 0 < beats["power"] <= 1  # one natural/man-made split, a borrowed spread


def _halved(spreads: dict, replicates: int) -> dict:
    return {claim: {name: {**spread, "sd": spread["sd"] / 2, "replicates": replicates}
                    for name, spread in parts.items()} for claim, parts in spreads.items()}


def test_a_study_in_progress_plans_on_its_own_spreads_only_where_three_replicates_measure_them():
    gpu = get_profile("gpu")
    tier = planned_power(gpu)
    cpu = load_spreads()["cpu"]
    from_two = planned_power(gpu, own=_halved(cpu, 2), own_name="this study")
    assert from_two["claims"] == tier["claims"]  # a spread of 2 replicates is no better than the tier's
    own = _halved(cpu, 3)
    mine = planned_power(gpu, own=own, own_name="this study")
    for claim, theirs in zip(mine["claims"], tier["claims"]):
        for part, before in zip(claim["parts"], theirs["parts"]):
            measured = own.get(claim["id"], {}).get(part["part"])
            if measured:
                assert part["sd"] == pytest.approx(measured["sd"]) and part["sd_from"] == \
                    "measured on this study (3 replicates)"
                assert part["power"] >= before["power"], part["part"]
            else:  # a layer the cpu study did not train: still the tier's stand-in
                assert part["sd"] == before["sd"] and part["sd_from"] == before["sd_from"]


def test_the_replicates_each_claim_needs_are_the_fewest_at_which_its_power_bound_reaches_80_percent():
    gpu = get_profile("gpu")
    for own in ({}, _halved(load_spreads()["cpu"], 3)):
        needed = replicates_for_power(gpu, own, "this study")
        assert set(needed) == {c["id"] for c in planned_power(gpu)["claims"]}
        assert any(needed.values()), needed

        def bound(claim, k):
            return next(c for c in planned_power(gpu, k, own, "this study")["claims"]
                        if c["id"] == claim)["claim_power_at_most"]

        for claim, k in needed.items():
            if k is None:
                assert bound(claim, 100) < 0.8
            else:
                assert bound(claim, k) >= 0.8 and (k == 2 or bound(claim, k - 1) < 0.8), (claim, k)
    tier, halved = replicates_for_power(gpu), replicates_for_power(gpu, _halved(load_spreads()["cpu"], 3), "s")
    assert all((halved[c] or 101) <= (tier[c] or 101) for c in tier)  # less noise never needs more replicates


def test_the_plan_of_a_study_folder_uses_its_replicates_spreads_and_says_what_80_percent_needs(capsys):
    folder = ROOT / "reports" / "cpu-resnet-tiny-imagenet"  # 3 committed replicate records
    assert main(["plan", "--profile", "cpu-resnet", "--study-dir", str(folder), "--json",
                 "--store", "/nonexistent-store"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["projected_hours"] == 0.0  # every run recorded: nothing to train, and the plan says so
    power = out["power"]
    own = measure_spreads(table_from_file(folder / "results.json")[0])
    parts = [(claim["id"], part) for claim in power["claims"] for part in claim["parts"]]
    mine = [(c, p) for c, p in parts if p["sd_from"].startswith("measured on this study's replicates")]
    assert len(mine) >= len(parts) // 2
    for claim, part in mine:
        assert part["sd"] == pytest.approx(own[claim][part["part"]]["sd"])
    assert set(power["replicates_for_80"]) == {c["id"] for c in power["claims"]}
    assert main(["plan", "--profile", "cpu-resnet", "--study-dir", str(folder), "--store", "/nonexistent"]) == 0
    text = capsys.readouterr().out
    assert "projected: nothing to train" in text and text.count("; 80% needs ") == 5
