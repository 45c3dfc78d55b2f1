"""The premise pilot's table: a recipe is chosen on its own lines, by the premise's rule on replicate means."""
import json

import pytest

from benchmarks.convergence_frontier import premise_table, table

pytestmark = pytest.mark.smoke


def line(name, replicate, target, base, bnb1, profile="gpu"):
    return {"name": name, "profile": profile, "replicate": replicate, "target": target, "base_top1": base,
            "bnb1_top1": bnb1, "bnb1_vs_base": 100 * (bnb1 - base) / base, "base_cpu_s": 700.0,
            "precision": "bf16", "cpu": {"cpu_model": "a CPU", "cpu_family": None, "cpu_capability": "AVX512"}}


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_small_steady_bias_on_five_replicates_meets_the_premise(tmp_path):
    rows = [line("long", r, t, 0.44, 0.44 * (1 + b / 100))
            for r, b in zip(range(100, 105), (1.0, 1.6, 1.2, 1.4, 1.3)) for t in "AB"]
    verdict = premise_table("long", write(tmp_path / "f.jsonl", rows)).splitlines()[-1]
    assert "premise on 5 replicates: mean +1.30% of base" in verdict and verdict.endswith("met (tolerance 2.5%)")
    assert "not met" not in verdict


def test_the_same_mean_with_a_wide_spread_does_not(tmp_path):
    rows = [line("short", r, t, 0.44, 0.44 * (1 + b / 100))
            for r, b in zip(range(100, 105), (-1.0, 4.0, 0.0, 3.5, 0.0)) for t in "AB"]
    assert premise_table("short", write(tmp_path / "f.jsonl", rows)).splitlines()[-1].endswith(
        "not met (tolerance 2.5%)")


def test_a_replicate_with_one_half_only_is_left_out_of_the_bound(tmp_path):
    rows = [line("long", r, t, 0.44, 0.45) for r in (100, 101, 102) for t in "AB"] + [line("long", 103, "A", 0.44, 0.2)]
    assert "premise on 3 replicates" in premise_table("long", write(tmp_path / "f.jsonl", rows))


def test_the_frontier_table_holds_the_cpu_profiles_variants_only(tmp_path):
    rows = [line("b128 lin", 0, "B", 0.25, 0.26, profile="cpu"), line("gpu recipe", 100, "B", 0.42, 0.43)]
    text = table(write(tmp_path / "f.jsonl", rows))
    assert "b128 lin" in text and "gpu recipe" not in text
