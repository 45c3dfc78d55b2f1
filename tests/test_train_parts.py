"""The parts of the training loop, each alone: batches, device-side tallies, evaluation, checkpoints."""
import dataclasses
import math
import time

import pytest
import torch

from repro.models import get_model
from repro.profiles import SMOKE
from repro.loader import batch_indices
from repro.runs import RunSpec, canonical, stable_seed, training_config
from repro.settings import TrainingSettings
from repro.train import (Batches, Checkpoints, Evaluation, Group, Member, Tally, augment, iterations,
                         make_optimizer, read_tallies, reset_losses)

pytestmark = pytest.mark.smoke
CONFIG = canonical(training_config(SMOKE))
BASE = RunSpec("random:0", "B", "base", 0, 0, CONFIG)
RECIPE = dataclasses.replace(SMOKE.recipe, epochs=3)


def batches(task, seed):
    per_epoch, total = iterations(RECIPE, len(task.train))
    return Batches(task.train, RECIPE, seed, per_epoch, total, torch.device("cpu"))


def member(spec=BASE, num_classes=4):
    net = get_model(SMOKE.arch, num_classes, SMOKE.recipe.crop)
    return Member(spec, net, make_optimizer(net, SMOKE.recipe, torch.device("cpu")), 0, None)


# ---- batches -------------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_batches_from_any_start(tiny_task):
    """What a resumed run relies on: iteration i's batch (images, crops, mirrors) depends on (seed, i) only,
    not on where the drawing started nor on how far ahead the crops were drawn."""
    first = batches(tiny_task, 7)
    everything = [first.get(i) for i in range(first.total)]
    for start in (0, 5, first.DRAW_AHEAD - 1):
        again = batches(tiny_task, 7)
        for i in range(start, again.total):
            x, y = again.get(i)
            assert torch.equal(x, everything[i][0]) and torch.equal(y, everything[i][1]), (start, i)
    other = batches(tiny_task, 8)
    assert not torch.equal(other.get(0)[0], everything[0][0])


def test_a_batch_is_the_images_of_its_indices_cut_as_augment_cuts_them(tiny_task):
    b = batches(tiny_task, 3)
    for i in (0, b.per_epoch - 1, b.per_epoch, b.total - 1):
        epoch, j = divmod(i, b.per_epoch)
        idx = batch_indices(3, epoch, len(tiny_task.train), RECIPE.batch_size, j)
        x, y = b.get(i)
        expected = augment(tiny_task.train.images[idx], RECIPE.crop, RECIPE.mirror, stable_seed(3, "aug", i))
        assert torch.equal(x, expected) and torch.equal(y, tiny_task.train.labels[idx]), i


# ---- tallies -------------------------------------------------------------------------------------------
def test_a_tally_sums_finite_losses_and_dates_the_first_divergence():
    m = member()
    tally = Tally(m, torch.device("cpu"))
    m.tally = tally
    iteration = torch.zeros((), dtype=torch.float64)
    for i, loss in enumerate([1.0, 2.0, 5e3, math.inf, 3.0], start=1):
        iteration.fill_(i)
        tally.add(torch.tensor(loss), iteration, limit=1e3)
    read_tallies([m])
    assert (m.loss_sum, m.loss_count) == (3.0, 2)  # nothing counts after the divergence
    assert m.diverged and m.losses == [(3, 5e3)]  # dated to the first bad loss, which is kept
    reset_losses(m)
    read_tallies([m])
    assert (m.loss_sum, m.loss_count) == (0.0, 0) and m.losses == [(3, 5e3)]  # noticed once only


def test_a_tally_starts_from_the_members_resumed_sums():
    m = dataclasses.replace(member(), loss_sum=4.0, loss_count=2)
    m.tally = Tally(m, torch.device("cpu"))
    m.tally.add(torch.tensor(2.0), torch.tensor(3.0, dtype=torch.float64), limit=1e3)
    read_tallies([m])
    assert (m.loss_sum, m.loss_count, m.diverged) == (6.0, 3, False)


# ---- evaluation ----------------------------------------------------------------------------------------
def test_evaluation_is_the_top1_of_centre_crops(tiny_task):
    m = member()
    evaluate = Evaluation(tiny_task.val, SMOKE.recipe.crop, {}, torch.device("cpu"), precision="fp32")
    [accuracy] = evaluate([m], chunk=24)  # chunks that do not divide the set
    assert m.net.training  # left in training mode
    with torch.no_grad():
        m.net.eval()
        x = augment(tiny_task.val.images, SMOKE.recipe.crop, False, None)
        expected = (m.net(x).argmax(1) == tiny_task.val.labels).float().mean().item()
    assert accuracy == pytest.approx(expected, abs=1e-9)


# ---- checkpoints ---------------------------------------------------------------------------------------
def test_a_checkpoint_round_trips_weights_momentum_and_history(tiny_task, store):
    group = Group.build([BASE], tiny_task, {}, TrainingSettings.from_profile(SMOKE, "cpu"))
    for i in range(3):
        group.step(i, group.members)
    read_tallies(group.members)
    [trained] = group.members
    trained.curve, trained.losses = [(2, 0.5)], [(2, 1.25)]
    checkpoints = Checkpoints(store, total=10)
    checkpoints.save(3, [trained])
    checkpoints.wait()

    fresh = member()
    by_start = Checkpoints(store, total=10).resume([fresh], torch.device("cpu"))
    assert by_start == {3: [fresh]}
    assert all(torch.equal(a, b) for a, b in zip(fresh.net.state_dict().values(),
                                                 trained.net.state_dict().values()))
    momentum = [trained.optimizer.state[p]["momentum_buffer"] for p in trained.net.parameters()]
    restored = [fresh.optimizer.state[p]["momentum_buffer"] for p in fresh.net.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(momentum, restored))
    assert (fresh.curve, fresh.losses) == ([(2, 0.5)], [(2, 1.25)])
    assert (fresh.loss_sum, fresh.loss_count) == (trained.loss_sum, trained.loss_count)
    assert Checkpoints(store, total=10).resume([member(RunSpec("random:1", "B", "base", 0, 0, CONFIG))],
                                               torch.device("cpu")).keys() == {0}  # none: a fresh start


def test_checkpoints_are_due_by_count_or_by_time_never_at_the_end():
    by_count = Checkpoints(None, total=10, every=3)
    assert [i for i in range(1, 11) if by_count.due(i)] == [3, 6, 9]
    by_time = Checkpoints(None, total=10, minutes=1 / 60)
    assert not by_time.due(1)
    by_time.last = time.monotonic() - 2
    assert by_time.due(1) and not by_time.due(10)
    assert not Checkpoints(None, total=10).due(5)
