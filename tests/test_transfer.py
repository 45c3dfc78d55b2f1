"""Transfer copies exactly layers 1..n; frozen layers stay bit-identical; fine-tuned ones move."""
import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.models import get_model, init_weights, layer_parameters
from repro.profiles import SMOKE
from repro.runs import RunSpec, canonical, training_config
from repro.settings import TrainingSettings
from repro.train import Group
from repro.transfer import build_treatment, transfer_layers

pytestmark = pytest.mark.smoke
CONFIG = canonical(training_config(SMOKE))
SETTINGS = TrainingSettings.from_profile(SMOKE, "cpu")


def make_net():
    return get_model(SMOKE.arch, 4, SMOKE.recipe.crop)


@given(st.integers(1, 7), st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
@settings(max_examples=25, deadline=None)
def test_transfer_copies_exactly_layers_1_to_n(n, seed_a, seed_b):
    source = init_weights(make_net(), seed_a)
    target = init_weights(make_net(), seed_b)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    transfer_layers(target, source.state_dict(), n)
    for k in range(1, 9):
        for name, p in layer_parameters(target, k).items():
            expected = source.state_dict()[name] if k <= n else before[name]
            assert torch.equal(p, expected), (k, name)


@pytest.mark.parametrize("treatment, frozen", [("BnB", True), ("AnB", True), ("random", True),
                                               ("BnB+", False), ("AnB+", False)])
def test_treatments_freeze_or_train_the_copied_layers(treatment, frozen):
    base = init_weights(make_net(), 7).state_dict()
    spec = RunSpec("random:0", "B", treatment, 3, 0, CONFIG)
    net = build_treatment(spec, make_net, None if treatment == "random" else base)
    for k in range(1, 9):
        for p in layer_parameters(net, k).values():
            assert p.requires_grad == (k > 3 or not frozen)


def test_random_control_shares_its_random_layers_across_n():
    a = build_treatment(RunSpec("natman", "A", "random", 2, 0, CONFIG), make_net)
    b = build_treatment(RunSpec("natman", "A", "random", 5, 0, CONFIG), make_net)
    assert all(torch.equal(p, layer_parameters(b, 1)[n]) for n, p in layer_parameters(a, 1).items())


def train_treatments(tiny_task, treatments, n=2):
    base_spec = RunSpec("random:0", "B", "base", 0, 0, CONFIG)
    base = Group.build([base_spec], tiny_task, {}, SETTINGS)
    base.run()
    parent = {k: v.clone() for k, v in base.members[0].net.state_dict().items()}
    specs = [RunSpec("random:0", "B", t, n, 0, CONFIG) for t in treatments]
    group = Group.build(specs, tiny_task, {base_spec.key: parent}, SETTINGS)
    group.run()
    return parent, {m.spec.treatment: m.net.state_dict() for m in group.members}


def test_frozen_weights_are_bit_identical_after_training_and_fine_tuned_ones_change(tiny_task):
    parent, nets = train_treatments(tiny_task, ["BnB", "BnB+"], n=2)
    for name in parent:
        if name.endswith("num_batches_tracked"):  # a step counter: equal whenever both trained as long
            continue
        layer = int(name.split(".")[1]) + 1
        if layer <= 2:
            assert torch.equal(nets["BnB"][name], parent[name]), name
            assert not torch.equal(nets["BnB+"][name], parent[name]), name
        else:
            assert not torch.equal(nets["BnB"][name], parent[name]), name


def test_frozen_layers_have_no_optimizer_state(tiny_task):
    spec = RunSpec("random:0", "B", "random", 4, 0, CONFIG)
    group = Group.build([spec], tiny_task, {}, SETTINGS)
    optimised = {id(p) for g in group.members[0].optimizer.param_groups for p in g["params"]}
    for k in range(1, 9):
        for p in layer_parameters(group.members[0].net, k).values():
            assert (id(p) in optimised) == (k > 4)
