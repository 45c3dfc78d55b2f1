"""The original study's numbers read as a results Table: the README's headline numbers come back out."""
import numpy as np
import pytest

from repro import paper
from repro.paper import original_table

pytestmark = pytest.mark.smoke

# repro/reference/README.md, "Headline numbers": mean top-1 per n = 1..7
HEADLINE = {
    "BnB": [.6267, .6235, .6211, .6048, .5935, .6188, .6232],
    "AnB": [.6282, .6239, .6189, .5998, .5780, .5806, .5425],
    "BnB+": [.6177, .6215, .6313, .6287, .6301, .6276, .6266],
    "AnB+": [.6373, .6358, .6426, .6398, .6446, .6460, .6465],
}
NATURAL_TO_MANMADE = [.5392, .5214, .5008, .4616, .4098, .3742, .2914]  # base .5372
MANMADE_TO_NATURAL = [.6571, .6506, .6250, .5824, .5219, .4850, .3990]  # base .6534
README_ROUNDING = 5e-5 + 1e-9  # the README rounds to 4 decimals
RANDOM_FROZEN = [.4917, .4026, .0011, .0191, .0499, .0145, .0146]  # base .5763, 1000 classes


def mean_top1(rows):
    assert rows, "no networks selected"
    return float(np.mean([r.top1 for r in rows]))


def test_every_network_but_the_reduced_ones_is_read():
    table = original_table()
    assert len(table) == 148 - 12
    assert {r.evidence for r in table.rows} == {"original"}


def test_the_eight_random_split_bases_average_0_6251():
    bases = [r for r in original_table().rows if r.treatment == "base" and r.split.startswith("random:")]
    assert len(bases) == 8
    assert mean_top1(bases) == pytest.approx(0.6251, abs=README_ROUNDING)
    assert np.std([r.top1 for r in bases]) == pytest.approx(0.005, abs=1e-3)


@pytest.mark.parametrize("treatment", list(HEADLINE))
def test_random_split_means_per_layer_match_the_readme(treatment):
    table = original_table()
    means = [mean_top1([r for r in table.rows if r.treatment == treatment and r.n == n and
                        r.split.startswith("random:")]) for n in range(1, 8)]
    assert means == pytest.approx(HEADLINE[treatment], abs=README_ROUNDING)


def test_natural_man_made_transfer_both_ways_matches_the_readme():
    table = original_table()
    base_natural, base_manmade = table.select(split="natman", treatment="base", target="A")[0], \
        table.select(split="natman", treatment="base", target="B")[0]
    assert (base_manmade.top1, base_natural.top1) == pytest.approx((0.5372, 0.6534), abs=README_ROUNDING)
    to_manmade = [table.select(split="natman", treatment="AnB", source="A", target="B", n=n)[0].top1
                  for n in range(1, 8)]
    to_natural = [table.select(split="natman", treatment="AnB", source="B", target="A", n=n)[0].top1
                  for n in range(1, 8)]
    assert to_manmade == pytest.approx(NATURAL_TO_MANMADE, abs=README_ROUNDING)
    assert to_natural == pytest.approx(MANMADE_TO_NATURAL, abs=README_ROUNDING)
    assert (base_natural.num_classes, base_manmade.num_classes) == (449, 551)


def test_random_frozen_layers_on_1000_classes_match_the_readme():
    table = original_table()
    frozen = sorted(table.select(treatment="random"), key=lambda r: r.n)
    assert [r.top1 for r in frozen] == pytest.approx(RANDOM_FROZEN, abs=README_ROUNDING)
    (base,) = table.select(split="all", treatment="base")
    assert base.top1 == pytest.approx(0.5763, abs=README_ROUNDING)
    assert all(table.base_of(r) is base and r.num_classes == 1000 for r in frozen)


def test_every_treatment_pairs_with_the_base_of_its_own_target_half():
    table = original_table()
    for row in table.rows:
        if row.treatment == "base":
            continue
        base = table.base_of(row)
        assert base is not None, row
        assert (base.split, base.replicate, base.target) == (row.split, row.replicate, row.target)
    # '0A0B_1_3': base net 0A, target 0B, layers 1..3
    (row,) = table.select(treatment="AnB", split="random:0", source="A", target="B", n=3)
    assert table.base_of(row).key == "half0B"


def test_rows_are_keyed_by_their_original_run_folder_and_carry_its_curve():
    table = original_table()
    keys = {r.key for r in table.rows}
    for key in ("half0A", "transfer0A0B_1_3", "transfer-ft0A0B_1_3", "transfer-ft0A0A_1_1", "halfnatmanA",
                "transfernatmanAB_1_3", "netbase", "nolearn_1_3"):
        assert key in keys
        assert len(table.curves[key]) == 450, key  # one test every 1000 of 450k iterations
    assert set(table.curves) == keys  # the 'reduced' networks' curves are left out with them
    (row,) = table.select(key="transfer0A0B_1_3")
    assert (row.treatment, row.split, row.source, row.target, row.n) == ("AnB", "random:0", "A", "B", 3)
    # the paper's metric: the mean of the 10 highest tests
    top10 = sorted(v for _, v in table.curves["transfer0A0B_1_3"])[-10:]
    assert row.top1 == pytest.approx(np.mean(top10), abs=1e-5)


def test_most_fine_tuned_transfers_target_the_strongest_base():
    table = original_table()
    targets = [table.base_of(r).key for r in table.select(treatment="AnB+")]
    assert targets.count("half0B") == 7 and len(targets) == 10
    assert table.select(key="half0B")[0].top1 == max(r.top1 for r in table.select(treatment="base")
                                                     if r.split.startswith("random:"))


def test_each_call_gives_a_table_of_its_own():
    a, b = original_table(), original_table()
    a.rows.clear()
    a.curves.clear()
    assert len(b) == 136 and b.curves


def test_restricting_to_the_layers_of_another_table_keeps_every_base():
    full = original_table()
    layers = frozenset({("AnB", "random", 7), ("random", "natman", 3)})
    table = original_table(layers)
    assert {(r.treatment, r.n) for r in table.rows if r.treatment != "base"} == {("AnB", 7), ("random", 3)}
    assert len(table.select(treatment="base")) == len(full.select(treatment="base")) == 11


def test_a_network_name_that_breaks_the_naming_is_reported_by_name():
    with pytest.raises(ValueError, match="0A0C_1_3"):
        paper._row("AnB", "0A0C_1_3", 0.5, 0.5)
    with pytest.raises(ValueError, match="BnB"):
        paper._row("BnB", "0A0B_1_3", 0.5, 0.5)  # a selffer copies within one half
