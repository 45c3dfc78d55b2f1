"""Transfer copies exactly blocks 1..n; frozen blocks stay bit-identical (batch-norm statistics included);
fine-tuned ones move. For every architecture (repro.models.ARCHITECTURES): the transfer contract."""
import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.models import ARCHITECTURES, get_model, init_weights, layer_parameters
from repro.profiles import SMOKE, Arch
from repro.runs import RunSpec, canonical, training_config
from repro.settings import TrainingSettings
from repro.train import Group
from repro.transfer import build_treatment, transfer_layers

pytestmark = pytest.mark.smoke
# the smoke profile on each architecture at its example widths: the paper's network as the smoke profile has it
PROFILES = {name: SMOKE if name == SMOKE.arch.name else
            dataclasses.replace(SMOKE, arch=Arch(name=name, widths=spec.example_widths, **dict(spec.fixed)))
            for name, spec in ARCHITECTURES.items()}


class Setup:
    def __init__(self, name):
        self.profile = PROFILES[name]
        self.blocks = self.profile.blocks
        self.config = canonical(training_config(self.profile))
        self.settings = TrainingSettings.from_profile(self.profile, "cpu")

    def make_net(self):
        return get_model(self.profile.arch, 4, self.profile.recipe.crop)

    def spec(self, treatment, n, split="random:0", target="B"):
        return RunSpec(split, target, treatment, n, 0, self.config)


@pytest.fixture(params=sorted(PROFILES))
def setup(request):
    return Setup(request.param)


@pytest.mark.parametrize("name", sorted(PROFILES))
@given(data=st.data(), seed_a=st.integers(0, 2**31 - 1), seed_b=st.integers(0, 2**31 - 1))
@settings(max_examples=15, deadline=None)
def test_transfer_copies_exactly_blocks_1_to_n(name, data, seed_a, seed_b):
    setup = Setup(name)
    n = data.draw(st.integers(1, setup.blocks))
    source = init_weights(setup.make_net(), seed_a)
    source.train()(torch.randn(8, 3, 14, 14))  # moves the batch-norm statistics: they must travel too
    target = init_weights(setup.make_net(), seed_b)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    transfer_layers(target, source.state_dict(), n)
    for name, tensor in target.state_dict().items():
        block = int(name.split(".")[1]) + 1
        expected = source.state_dict()[name] if block <= n else before[name]
        assert torch.equal(tensor, expected), (block, name)


def test_a_shared_prefix_continues_to_the_same_output(setup):
    """The output of blocks 1..n, computed once and continued from block n + 1, is the whole network's
    output (frozen networks sharing a source compute their prefix once: repro.train)."""
    net = init_weights(setup.make_net(), 3).eval()
    x = torch.randn(4, 3, 14, 14)
    with torch.no_grad():
        whole = net(x)
        features = net.features(x, setup.blocks)
        for n in range(1, setup.blocks + 1):
            assert torch.allclose(net(features[n - 1], start=n), whole, atol=1e-6), n


@pytest.mark.parametrize("treatment, frozen", [("BnB", True), ("AnB", True), ("random", True),
                                               ("BnB+", False), ("AnB+", False)])
def test_treatments_freeze_or_train_the_copied_layers(setup, treatment, frozen):
    base = init_weights(setup.make_net(), 7).state_dict()
    net = build_treatment(setup.spec(treatment, 3), setup.make_net, None if treatment == "random" else base)
    for k in range(1, setup.blocks + 2):
        for p in layer_parameters(net, k).values():
            assert p.requires_grad == (k > 3 or not frozen)


def test_random_control_shares_its_random_layers_across_n(setup):
    a = build_treatment(setup.spec("random", 2, "natman", "A"), setup.make_net)
    b = build_treatment(setup.spec("random", 5, "natman", "A"), setup.make_net)
    assert all(torch.equal(p, layer_parameters(b, 1)[n]) for n, p in layer_parameters(a, 1).items())


def train_treatments(setup, tiny_task, treatments, n=2):
    base_spec = setup.spec("base", 0)
    base = Group.build([base_spec], tiny_task, {}, setup.settings)
    base.run()
    parent = {k: v.clone() for k, v in base.members[0].net.state_dict().items()}
    specs = [setup.spec(t, n) for t in treatments]
    group = Group.build(specs, tiny_task, {base_spec.key: parent}, setup.settings)
    group.run()
    return parent, {m.spec.treatment: m.net.state_dict() for m in group.members}


def test_frozen_blocks_are_bit_identical_after_training_and_fine_tuned_ones_change(setup, tiny_task):
    """Frozen is frozen whole: weights, batch-norm scales and batch-norm statistics stay what they were
    copied as (frozen blocks run in inference mode); a fine-tuned copy moves all of them."""
    parent, nets = train_treatments(setup, tiny_task, ["BnB", "BnB+"], n=2)
    for name in parent:
        if name.endswith("num_batches_tracked"):  # a step counter: equal whenever both trained as long
            continue
        block = int(name.split(".")[1]) + 1
        if block <= 2:
            assert torch.equal(nets["BnB"][name], parent[name]), name
            assert not torch.equal(nets["BnB+"][name], parent[name]), name
        else:
            assert not torch.equal(nets["BnB"][name], parent[name]), name


def test_frozen_blocks_have_no_optimizer_state(setup, tiny_task):
    group = Group.build([setup.spec("random", 4)], tiny_task, {}, setup.settings)
    optimised = {id(p) for g in group.members[0].optimizer.param_groups for p in g["params"]}
    for k in range(1, setup.blocks + 2):
        for p in layer_parameters(group.members[0].net, k).values():
            assert (id(p) in optimised) == (k > 4)


def test_frozen_blocks_compute_with_the_statistics_they_were_copied_with(setup, tiny_task):
    """The shared source of a frozen prefix runs in inference mode through training: its batch-norm layers
    normalise with the base's running statistics, never the batch's, and never update them."""
    base_spec = setup.spec("base", 0)
    base = Group.build([base_spec], tiny_task, {}, setup.settings)
    base.run()
    parent = {k: v.clone() for k, v in base.members[0].net.state_dict().items()}
    group = Group.build([setup.spec("BnB", 3), setup.spec("BnB", 5)], tiny_task,
                        {base_spec.key: parent}, setup.settings)
    group.run()
    (source,) = group.sources.values()
    assert not any(module.training for module in source.modules())
    for name, tensor in source.state_dict().items():
        if int(name.split(".")[1]) < 5:
            assert torch.equal(tensor, parent[name]), name
