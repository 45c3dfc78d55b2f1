"""Architectures by name: the registry, what a profile may say of one, and the claims' positions on a network
of another depth (the transfer contract itself: tests/test_transfer.py)."""
import dataclasses
import json

import numpy as np
import pytest

from repro.claims import coadaptation_dip, early_layer_generality, evaluate
from repro.errors import UserError
from repro.models import ARCHITECTURES, Depth, blocks, get_model, layer_flops, span
from repro.profiles import CPU, SMOKE, Arch, get_profile
from repro.results import table_from_file
from repro.runs import training_config
from repro.simulated_tables import simulate_table

pytestmark = pytest.mark.smoke
RESNET = Arch(name="resnet18", widths=(8, 8, 8, 8, 8), batchnorm=True, dropout=0.0)


@pytest.mark.parametrize("arch, count", [(SMOKE.arch, 7), (RESNET, 9)])
def test_a_network_is_its_blocks_and_a_classifier(arch, count):
    net = get_model(arch, 5, 14)
    assert blocks(arch) == count == len(ARCHITECTURES[arch.name].block_names)
    assert len(net.layers) == count + 1 and net.layers[-1](net.features(
        __import__("torch").zeros(2, 3, 14, 14), count)[-1]).shape == (2, 5)
    assert len(layer_flops(arch, 5, 14)) == count + 1


def test_an_unknown_architecture_is_refused_before_anything_is_built():
    with pytest.raises(UserError, match=r"arch.name must be one of alexnet8, resnet18, got 'resnet50'"):
        SMOKE.override(["arch.name=resnet50"])
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        get_model(dataclasses.replace(RESNET, name="vgg"), 5, 14)


@pytest.mark.parametrize("assignments, message", [
    (["arch.name=resnet18"], "arch.widths must be 5 positive widths for resnet18 (stem, stage1, stage2, stage3, "
                             "stage4), got (8, 16, 16, 16, 16, 32)"),
    (["arch.name=resnet18", "arch.widths=8,8,8,8,8", "arch.batchnorm=false"],
     "resnet18 always has arch.batchnorm=True: set it so"),
    (["arch.name=resnet18", "arch.widths=8,8,8,8,8", "arch.lrn=true"], "arch.lrn has no meaning for resnet18"),
    (["arch.widths=8,8,8"], "arch.widths must be 6 positive widths for alexnet8"),
    (["layers=1,8"], "layers must be in 1..7 (the blocks of alexnet8 that can be copied), got [8]"),
])
def test_a_profile_says_what_its_architecture_cannot_be(assignments, message):
    with pytest.raises(UserError, match="profile smoke: " + message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace(".", r"\.").replace("+", r"\+")):
        SMOKE.override(assignments)


def test_an_architecture_and_its_widths_are_set_together_in_either_order():
    """--set assignments are checked once all are made: a name without its widths is not a profile, and a
    residual network's widths are not the AlexNet's."""
    for order in (["arch.name=resnet18", "arch.widths=8,8,8,8,8"], ["arch.widths=8,8,8,8,8", "arch.name=resnet18"]):
        profile = SMOKE.override(order + ["arch.dropout=0", "layers=1,9"])
        assert (profile.arch.name, profile.arch.widths, profile.blocks, profile.layers) == ("resnet18", (8,) * 5, 9,
                                                                                           (1, 9))


def test_the_run_key_names_an_architecture_other_than_the_papers():
    """alexnet8 keys are what they were before architectures had names (tests/test_runs.py proves it on every
    committed study); any other architecture is in its key by name."""
    assert "name" not in training_config(CPU)["arch"]
    assert training_config(get_profile("cpu-resnet"))["arch"]["name"] == "resnet18"


def test_the_claims_positions_by_depth():
    assert (Depth(7).early, Depth(7).middle, Depth(7).top) == ((1, 2), (3, 4, 5), (6, 7))
    assert (Depth(9).early, Depth(9).middle, Depth(9).top) == ((1, 2), (3, 4, 5, 6, 7), (8, 9))
    assert (span((3, 4, 5)), span((6, 7)), span((1, 2, 9))) == ("3..5", "6, 7", "1, 2, 9")
    assert get_profile("cpu-resnet").depth == Depth(9)


# A dip in the middle of a 9-block network, at n = 6, 7, recovered at its top, n = 8, 9: read with the paper's
# positions (middle 3..5, top 6, 7) it would be a network getting worse toward the top, no dip at all.
DIP_AT_6_7 = {("random", "BnB"): {1: 0.0, 2: 0.0, 3: 0.0, 5: 0.0, 6: -12.0, 7: -12.0, 8: 0.0, 9: 0.0},
              ("random", "BnB+"): {6: 0.0, 7: 0.0}}


def test_the_claims_look_where_the_networks_depth_puts_the_middle_and_the_top():
    table = simulate_table(DIP_AT_6_7, 8, np.random.default_rng(0), blocks=9, noise=0.5)
    root, _, details = coadaptation_dip.measure(table, {})
    assert [part.name for part in root.parts] == ["BnB below base at the worst of n=3..7",
                                                  "BnB at n=8, 9 above BnB at n=3..7", "BnB+ above BnB at n=3..7"]
    assert (details["middle_n"], details["top_n"]) == ([3, 5, 6, 7], [8, 9])
    assert [part.verdict for part in root.parts] == ["reproduced"] * 3
    on_the_papers_depth = dataclasses.replace(table, blocks=7,
                                              rows=[r for r in table.rows if r.n <= 7])
    assert coadaptation_dip.measure(on_the_papers_depth, {})[0].part(coadaptation_dip.RECOVERY).verdict != \
        "reproduced"


def test_the_trend_asks_for_the_same_fall_over_more_blocks():
    assert early_layer_generality.trend_smallest(Depth(7)) == early_layer_generality.SMALLEST[
        early_layer_generality.TREND]
    assert early_layer_generality.trend_smallest(Depth(9)) == pytest.approx(-0.6 * 6 / 8)


def test_a_verdict_on_another_depth_carries_no_per_part_effect_of_the_papers_network():
    """n = 7 is the paper's top layer and a ResNet-18's middle: the paper's effect at a part of the same name
    would compare different positions, so none is shown; the headline is the paper's on its own network."""
    table = simulate_table(DIP_AT_6_7, 4, np.random.default_rng(1), blocks=9)
    verdict = evaluate(coadaptation_dip, table)
    assert all(leaf.get("paper_effect") is None for leaf in _leaves(verdict.to_dict()["details"]["tests"]))
    assert np.isfinite(verdict.paper_effect)


def _leaves(tree):
    parts = tree.get("parts") or []
    return [tree] if not parts else [leaf for part in parts for leaf in _leaves(part)]


def test_a_results_file_tells_the_depth_of_its_networks(tmp_path):
    def write(arch):
        path = tmp_path / f"{arch.get('name', 'alexnet8')}.json"
        path.write_text(json.dumps({"profile": "x", "session": {"profile": {"arch": arch}}, "runs": [
            {"split": "random:0", "replicate": 0, "treatment": "BnB", "n": 9, "target": "B", "top1": 0.3,
             "num_classes": 10}]}))
        return path

    assert table_from_file(write({"name": "resnet18"}))[0].blocks == 9
    with pytest.raises(UserError, match=r"column 'n': 9 must be 0 for a base \(base, base-2x\) and 1..7"):
        table_from_file(write({}))
    with pytest.raises(UserError, match="unknown architecture 'vgg'"):
        table_from_file(write({"name": "vgg"}))


def test_a_csv_of_networks_names_their_architecture_in_its_arch_column(tmp_path):
    header = "split,replicate,treatment,n,target,top1,num_classes"

    def csv(*archs):
        path = tmp_path / "networks.csv"
        path.write_text("\n".join([header + (",arch" if archs else "")] + [
            f"random:0,0,BnB,{n},B,0.3,10" + (f",{arch}" if archs else "") for n, arch in zip((1, 9), archs or "  ")]))
        return path

    assert table_from_file(csv("resnet18", "resnet18"))[0].blocks == 9
    with pytest.raises(UserError, match=r"row 2 \(line 3\), column 'n': '9' must be .* 1..7"):
        table_from_file(csv())  # without the column: the paper's network
    with pytest.raises(UserError, match="column 'arch' names 2 architectures"):
        table_from_file(csv("resnet18", "alexnet8"))
    with pytest.raises(UserError, match="unknown architecture 'vgg'"):
        table_from_file(csv("vgg", "vgg"))


def test_the_figures_draw_each_panel_on_its_own_networks_blocks():
    from repro.paper import original_table
    from repro.report.figures import figure2, figure_random

    truth = {**DIP_AT_6_7, ("natman", "AnB"): {1: 0.0, 9: -30.0}, ("natman", "random"): {1: -10.0, 9: -90.0}}
    ours = simulate_table(truth, 2, np.random.default_rng(2), blocks=9)
    panels = [("Original study", original_table()), ("This session", ours)]
    for figure in (figure2, figure_random):
        fig = figure(panels)
        fig.canvas.draw()
        ticks = [[t.get_text() for t in ax.get_xticklabels()] for ax in fig.axes[:2]]
        assert ticks[0][-1] == "7" and ticks[1][-1] == "9", (figure.__name__, ticks)


def test_the_report_names_the_network_and_what_n_counts():
    from repro.report.page import network_fact

    resnet = simulate_table(DIP_AT_6_7, 2, np.random.default_rng(3), blocks=9)
    session = {"profile": {"arch": dataclasses.asdict(get_profile("cpu-resnet").arch)}}
    assert network_fact("cpu-resnet", session, resnet).startswith("resnet18 (widths 16-16-32-64-128): a ResNet-18")
    assert network_fact("cpu-resnet", session, resnet).endswith("n counts 9 blocks")
    assert network_fact("cpu", {"profile": {"arch": {"widths": [32, 64, 96, 96, 64, 256]}}},
                        simulate_table(DIP_AT_6_7, 2, np.random.default_rng(3))).startswith(
        "alexnet8 (widths 32-64-96-96-64-256): the paper's 8-layer")


def test_compare_says_when_two_studies_trained_different_networks():
    from repro.report.compare import comparison_text

    def doc(arch):
        return {"claims": [], "runs": [], "session": {"profile": {"arch": arch}}}

    text = comparison_text(doc({"widths": [8] * 6}), doc({"name": "resnet18", "widths": [8] * 5}))
    assert text.startswith("Two architectures: alexnet8 in a, resnet18 in b.")
    assert "Two architectures" not in comparison_text(doc({"widths": [8] * 6}), doc({"widths": [16] * 6}))


@pytest.mark.parametrize("arch", [SMOKE.arch, get_profile("gpu").arch,
                                  dataclasses.replace(SMOKE.arch, lrn=True, batchnorm=False)],
                         ids=["smoke", "gpu", "lrn"])
def test_pooling_before_the_relu_trains_the_bits_of_the_papers_relu_then_pool(arch):
    """alexnet8 computes conv -> pool -> ReLU where CaffeNet has conv -> ReLU -> pool: max and ReLU commute, so
    a few SGD steps give the same weights, batch-norm statistics and losses bit for bit as the paper's order."""
    import torch
    from torch import nn

    from benchmarks.step_variants import relu_then_pool

    torch.manual_seed(0)
    ours = get_model(arch, 10, 28).to(memory_format=torch.channels_last)
    papers = relu_then_pool(ours)
    orders = [([type(m) for m in a.after], [type(m) for m in b.after]) for a, b in zip(ours.layers, papers.layers)]
    pooled = [(a, b) for a, b in orders if nn.MaxPool2d in a]
    assert len(pooled) == 3
    for a, b in pooled:
        pool = a.index(nn.MaxPool2d)
        assert a[pool + 1] is nn.ReLU, "alexnet8 pools before its ReLU"
        assert b[pool:pool + 2] == [nn.ReLU, nn.MaxPool2d], "the paper's order: ReLU, then pool"
    optimizers = [torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9) for net in (ours, papers)]
    for _ in range(3):
        x = torch.randn(16, 3, 28, 28).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (16,))
        losses = []
        for net, optimizer in zip((ours, papers), optimizers):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss)
        assert torch.equal(*losses)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), papers.state_dict().values()))
