"""The statistics behind every verdict: the tests agree with scipy/statsmodels, the decision rule gives
each verdict where it should, divergence can never help a claim, and the summary table shows it all."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import DescrStatsW

from repro import stats
from repro.claims import early_layer_generality, evaluate
from repro.paper import original_table
from repro.results import Row, Table
from repro.stats import Sample, Verdict
from repro.summary import verdict_table

pytestmark = pytest.mark.smoke


def sample(*values) -> Sample:
    return Sample(dict(enumerate(values)))


# --- the tests agree with the libraries -------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["less", "greater"])
def test_one_sided_test_is_scipys_t_test(direction):
    x = [-1.2, -0.4, -2.0, -0.9, 0.3]
    test = stats.one_sample("t", sample(*x), direction, null=0.1)
    assert test.p == pytest.approx(sps.ttest_1samp(x, 0.1, alternative=direction).pvalue)
    ci = sps.ttest_1samp(x, 0.1).confidence_interval(0.95)
    assert test.ci == pytest.approx((ci.low, ci.high))


def test_equivalence_is_statsmodels_tost():
    x = [0.3, -0.5, 0.9, 0.1]
    test = stats.one_sample("tost", sample(*x), "equivalent", margin=2.0)
    assert test.p == pytest.approx(DescrStatsW(np.array(x)).ttost_mean(-2.0, 2.0)[0])


def test_two_sample_test_is_scipys_pooled_t_test():
    a, b = [-30.1, -35.2, -33.0], [-10.2, -9.1, -11.0, -10.4]
    test = stats.two_sample("two", sample(*a), sample(*b), "less")
    assert test.p == pytest.approx(sps.ttest_ind(a, b, equal_var=True, alternative="less").pvalue)
    assert test.effect == pytest.approx(np.mean(a) - np.mean(b))
    assert test.where == "3 and 4 replicates"


def test_a_single_replicate_borrows_the_tables_pooled_spread_and_says_so():
    # the original's one natural/man-made split against its four random splits
    a, b = [-35.0], [-10.2, -9.1, -11.0, -10.4]
    assert stats.two_sample("two", sample(*a), sample(*b), "less").verdict == "inconclusive"  # nothing to borrow
    spread = stats.pooled_spread({"x": sample(1.0, 1.5, 0.7), "y": sample(-2.0, -2.4)})
    assert spread.df == 3
    assert spread.sd == pytest.approx(math.sqrt((np.var([1.0, 1.5, 0.7]) * 3 + np.var([-2.0, -2.4]) * 2) / 3))
    test = stats.two_sample("two", sample(*a), sample(*b), "less", spread=spread)
    t = (test.effect) / (spread.sd * math.sqrt(1 + 1 / 4))
    assert test.p == pytest.approx(sps.t.cdf(t, spread.df))
    assert test.verdict == "reproduced" and "borrowed" in test.why
    one = stats.one_sample("one", sample(-1.0), "less", spread=spread)
    assert one.p == pytest.approx(sps.t.cdf(-1.0 / spread.sd, spread.df))
    assert "pooled over 2 replicated cells" in " ".join(one.notes)


def test_the_table_spread_pools_every_replicated_cell_of_the_original():
    spread = stats.table_spread(original_table())
    # 4 random splits x (AnB, BnB) x 7 n = 14 cells of 3 df, and the BnB+/AnB+ cells with 2 replicates
    assert spread.df >= 14 * 3 and 0.1 < spread.sd < 1.0


@settings(max_examples=15, deadline=None)  # statsmodels runs gc.collect on every call: slow
@given(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=8))
def test_holm_is_statsmodels_holm(pvalues):
    ours = stats.holm(pvalues)
    assert ours == pytest.approx(list(multipletests(pvalues, method="holm")[1]))
    assert all(a >= p for a, p in zip(ours, pvalues))


@pytest.mark.parametrize("delta,sd", [(1.0, 1.0), (3.0, 1.0), (0.5, 1.0)])
def test_replicates_needed_is_statsmodels_power(delta, sd):
    expected = math.ceil(TTestPower().solve_power(delta / sd, alpha=0.05, power=0.8, alternative="larger"))
    assert stats.replicates_needed(delta, sd) == max(2, expected)


def test_replicates_needed_for_two_samples_is_per_group():
    expected = math.ceil(TTestIndPower().solve_power(1.0, alpha=0.05, power=0.8, alternative="larger"))
    assert stats.replicates_needed(1.0, 1.0, two_sample=True) == expected


@pytest.mark.parametrize("delta,sd,why", [(1.0, 0.0, "no spread"), (-1.0, 1.0, "effect the wrong way"),
                                          (0.01, 1.0, "more than the cap"), (1.0, math.nan, "undefined spread")])
def test_replicates_needed_is_none_when_it_cannot_be_computed(delta, sd, why):
    assert stats.replicates_needed(delta, sd) is None, why


# --- the decision rule ------------------------------------------------------------------------------------


def test_a_clear_effect_in_the_papers_direction_is_reproduced():
    test = stats.one_sample("drop", sample(-13.0, -13.5, -12.8, -13.2), "less", paper_effect=-13.2)
    assert test.verdict == "reproduced" and test.p < 0.05
    assert test.why.startswith("p ")


def test_an_effect_significantly_the_other_way_is_not_reproduced():
    test = stats.one_sample("drop", sample(2.0, 2.5, 1.8, 2.2), "less")
    assert test.verdict == "not_reproduced"
    assert "wrong side" in test.why


def test_data_that_rule_out_the_papers_effect_and_show_none_are_not_reproduced():
    test = stats.one_sample("drop", sample(0.5, -0.5, 0.3, -0.3, 0.1, -0.1), "less", paper_effect=-13.0)
    assert test.verdict == "not_reproduced" and test.p_short < 0.05
    assert "short of the original study's -13.00" in test.why


def test_a_small_study_of_a_true_effect_is_inconclusive_not_refuted():
    # 3 replicates of an effect as large as the original's, but noisy: the original's effect is not ruled out
    test = stats.one_sample("drop", sample(-15.0, 2.0, -4.0), "less", paper_effect=-13.0)
    assert test.verdict == "inconclusive" and test.p_short >= 0.05


def test_too_few_replicates_for_the_spread_is_inconclusive():
    test = stats.one_sample("boost", sample(1.5, -0.5, 2.5), "greater", paper_effect=1.0)
    assert test.verdict == "inconclusive"
    assert f"{test.needed} are needed" in test.why and test.needed > 3


def test_one_replicate_is_inconclusive_because_no_test_is_possible():
    test = stats.one_sample("drop", sample(-40.0), "less", paper_effect=-40.0)
    assert test.verdict == "inconclusive" and math.isnan(test.p)
    assert "only 1 replicate" in test.why


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    inside = stats.one_sample("eq", sample(0.2, -0.1, 0.3, 0.0), "equivalent", margin=2.0)
    outside = stats.one_sample("eq", sample(-4.0, -4.3, -3.8, -4.1), "equivalent", margin=2.0)
    assert inside.verdict == "reproduced"
    assert outside.verdict == "not_reproduced" and "±2" in outside.why


def test_every_part_must_hold_and_the_claims_p_is_the_largest():
    good = stats.one_sample("a", sample(-5.0, -5.5, -4.8), "less")
    weak = stats.one_sample("b", sample(-5.0, 1.5, -2.8), "less", paper_effect=-1.0)
    both = stats.all_of("a and b", [good, weak])
    assert both.verdict == "inconclusive" and both.p == max(good.p, weak.p)
    assert both.reported == "b"
    assert stats.all_of("a alone", [good]).verdict == "reproduced"


def test_one_of_several_layers_suffices_after_holm():
    parts = [stats.one_sample(f"n={n}", sample(*v), "less") for n, v in
             [(3, [-0.5, 0.4, -0.1]), (4, [-3.0, -2.5, -3.2]), (5, [-4.8, -4.5, -5.1])]]
    raw = [p.p_raw for p in parts]
    some = stats.any_of("worst of 3..5", parts)
    assert [p.p for p in some.parts] == pytest.approx(stats.holm(raw))
    assert [p.p for p in parts] == pytest.approx(raw)  # the parts handed in are not changed
    assert some.verdict == "reproduced" and some.p == min(p.p for p in some.parts)
    assert some.reported in ("n=4", "n=5")


# --- the unit of replication and divergence ---------------------------------------------------------------


def test_networks_of_one_replicate_are_averaged_before_any_test():
    table = original_table()
    pairs, _ = table.paired("AnB", "random")
    at7 = stats.by_replicate(p for p in pairs if p.row.n == 7)
    assert len([p for p in pairs if p.row.n == 7]) == 8  # both directions of 4 splits
    assert sorted(at7.values) == [0, 1, 2, 3]  # but 4 replicates
    slopes = stats.slope_by_replicate(pairs)
    assert len(slopes) == 4 and all(s < 0 for s in slopes.values.values())


def _diverge(table: Table, **where) -> Table:
    rows = [dataclasses.replace(r, diverged=True, top1=0.001) if all(getattr(r, k) == v for k, v in where.items())
            else r for r in table.rows]
    return Table(rows, table.curves)


def test_one_diverged_network_counts_as_the_worst_of_the_other_replicates():
    table = _diverge(original_table(), treatment="AnB", n=7, split="random:0", target="B")
    verdict = evaluate(early_layer_generality, table)
    drop = verdict.details["tests"]["parts"][1]
    # replicate 0's value is replaced by the least dropped of the others, not by the diverged 0.1% top-1
    table = original_table()
    at7 = stats.difference_by_n(table.paired("AnB", "random")[0], table.paired("BnB", "random")[0], (7,))
    others = [v for r, v in at7.values.items() if r != 0]
    assert drop["values"][0] == pytest.approx(max(others))
    assert "one diverged network (replicate 0)" in verdict.explanation


def test_a_diverged_network_can_never_help_a_claim():
    # three replicates, no drop at all; a diverged treatment scoring near 0 would fake a 100% drop
    rows = []
    for r, (base, treated) in enumerate([(0.60, 0.601), (0.61, 0.608), (0.62, 0.621)]):
        rows.append(Row("t", f"random:{r}", r, "base", 0, None, "B", base, base))
        rows.append(Row("t", f"random:{r}", r, "AnB", 7, "A", "B", treated, treated, diverged=(r == 2)))
    rows[-1] = dataclasses.replace(rows[-1], top1=0.001)
    pairs, _ = Table(rows).paired("AnB", "random")
    test = stats.one_sample("drop", stats.by_replicate(pairs), "less")
    assert test.verdict != "reproduced"
    assert max(test.values) == pytest.approx(100 * (0.601 - 0.60) / 0.60)


def test_two_diverged_networks_make_the_comparison_inconclusive():
    table = _diverge(original_table(), treatment="AnB", n=7, split="random:1")  # both directions of split 1
    verdict = evaluate(early_layer_generality, table)
    assert verdict.verdict == "inconclusive"
    assert "2 diverged networks" in verdict.explanation and "MLPerf" in verdict.explanation


# --- bootstrap, verdicts, summary -------------------------------------------------------------------------


def test_the_bootstrap_is_deterministic_and_brackets_the_mean():
    x = [1.0, 2.0, 4.0, 3.5, 2.2]
    lo, hi = stats.bootstrap_ci(x)
    assert (lo, hi) == stats.bootstrap_ci(x)
    assert lo < np.mean(x) < hi
    assert all(math.isnan(v) for v in stats.bootstrap_ci([1.0]))


def test_a_verdict_must_be_one_of_four():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("c", "maybe", 0.0, "%", (0.0, 0.0), 1.0, None, 1, None, "")


def _verdicts():
    from repro.claims import evaluate_all

    return evaluate_all(original_table())


def test_every_verdict_explains_itself_in_one_sentence_and_serialises():
    for v in _verdicts():
        assert v.explanation.endswith(".") and v.explanation.count(". ") == 0, v.explanation
        assert v.explanation.split(":")[0] in ("Reproduced", "Not reproduced", "Inconclusive", "Premise not met")
        d = v.to_dict()
        assert d["claim"] == v.claim and len(d["ci"]) == 2
        assert d["details"]["tests"]["name"]


def test_the_summary_table_has_one_row_per_claim_and_says_where_the_report_is():
    verdicts = _verdicts()
    text = verdict_table(verdicts, "reports/x/index.html")
    lines = text.splitlines()
    assert lines[-1] == "report: reports/x/index.html"
    for v in verdicts:
        (row,) = [line for line in lines if line.startswith(v.claim + " ")]
        assert v.verdict.replace("_", " ") in row and "original" in row
    assert [line.split(":")[0] for line in lines[:3]] == [
        "premise Bases well above chance", "premise Converged bases", "premise Bases' curves have plateaued"]
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    widths = {len(line) for line in lines[rule:rule + 4 + len(verdicts)] if not line.startswith("-")}
    assert max(widths) <= len(lines[rule])  # fixed width: no row longer than the rule
    assert any(line.startswith("  control: AnB+ over BnB+") for line in lines)
    assert verdict_table(verdicts).splitlines()[-1] == "report: not written"


# --- claims on tables that lack layers or replicates ------------------------------------------------------


def _profile_like(layers: dict[tuple[str, str], tuple[int, ...]], replicates: int) -> Table:
    """A simulated study with the original's effects, holding only the given (family, treatment) -> n."""
    from repro.simulate import paper_truth, simulate_table

    truth = {k: {n: v[n] for n in layers.get(k, ())} for k, v in paper_truth().items()}
    return simulate_table(truth, replicates, np.random.default_rng(0))


SMOKE_LAYERS = {("random", "BnB"): (1, 3, 5, 7), ("random", "AnB"): (1, 3, 5, 7), ("random", "BnB+"): (1, 5),
                ("random", "AnB+"): (1, 5), ("natman", "AnB"): (1, 7), ("natman", "random"): (1, 5)}


@pytest.mark.parametrize("table", [Table([]), _profile_like(SMOKE_LAYERS, 1), _profile_like(SMOKE_LAYERS, 3),
                                   _profile_like({("random", "AnB"): (3, 4)}, 3)],
                         ids=["empty", "smoke layers, 1 replicate", "smoke layers, 3 replicates", "AnB n=3, 4 only"])
def test_every_claim_gives_a_verdict_on_any_table(table):
    from repro.claims import evaluate_all

    for v in evaluate_all(table):
        assert v.verdict in stats.VERDICTS and v.explanation
        if v.verdict == "inconclusive" and not len(table):
            assert "needs" in v.explanation or "no networks" in v.explanation, v.explanation


def test_a_layer_the_claim_needs_and_the_profile_did_not_train_makes_it_inconclusive():
    verdict = evaluate(early_layer_generality, _profile_like({("random", "AnB"): (3, 4, 5)}, 5))
    assert verdict.verdict == "inconclusive"
    assert "needs AnB and BnB at n = 1 or 2" in verdict.explanation
