"""Training: deterministic on the CPU, a shared sweep equals one-at-a-time, resume equals uninterrupted."""
import dataclasses

import pytest
import torch

from repro.budget import lr_multipliers
from repro.profiles import SMOKE
from repro.runs import BASES, TREATMENTS, RunSpec, canonical, training_config
from repro.settings import TrainingSettings
from repro.train import Group, augment, paper_metric, read_tallies

pytestmark = pytest.mark.smoke
CONFIG = canonical(training_config(SMOKE))
BASE = RunSpec("random:0", "B", "base", 0, 0, CONFIG)
SETTINGS = TrainingSettings.from_profile(SMOKE, "cpu")


def run(specs, task, parents=None, store=None, recipe=SMOKE.recipe, **kw):
    settings = dataclasses.replace(SETTINGS, recipe=recipe)
    group = Group.build(specs, task, parents or {}, settings, store=store, **kw)
    return group, group.run()


@pytest.fixture(scope="module")
def parents(make_blobs):
    from repro.train import Task

    task = Task(make_blobs(256, 4, 16, 0), make_blobs(64, 4, 16, 1), 4)
    out = {}
    for half in "AB":
        spec = RunSpec("random:0", half, "base", 0, 0, CONFIG)
        group, _ = run([spec], task)
        out[spec.key] = group.members[0].net.state_dict()
    return out


def test_the_smoke_network_learns_the_toy_task(tiny_task):
    _, [metrics] = run([BASE], tiny_task, recipe=dataclasses.replace(SMOKE.recipe, epochs=8))
    assert metrics["top1"] > 0.6  # chance is 0.25
    assert not metrics["diverged"]


def test_same_spec_same_numbers(tiny_task):
    _, [a] = run([BASE], tiny_task)
    _, [b] = run([BASE], tiny_task)
    assert a["curve"] == b["curve"] and a["losses"] == b["losses"]


def test_a_shared_sweep_gives_each_network_what_it_gets_alone(tiny_task, parents):
    specs = [RunSpec("random:0", "B", t, n, 0, CONFIG) for t in TREATMENTS if t not in BASES for n in (1, 3, 7)]
    together, results = run(specs, tiny_task, parents)
    assert len(together.sources) == 3  # base B, base A and the random network: one prefix pass each per batch
    for spec, shared in zip(specs, results):
        _, [alone] = run([spec], tiny_task, parents)
        assert shared["curve"] == alone["curve"], spec.label


class Interrupt(Exception):
    pass


def stop_at_5(i, total):
    """A progress callback that interrupts training after iteration 5 (a killed process, to resume from)."""
    if i == 5:
        raise Interrupt


def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(tiny_task, store):
    _, [whole] = run([BASE], tiny_task)

    with pytest.raises(Interrupt):
        Group.build([BASE], tiny_task, {}, SETTINGS, store=store, checkpoint_every=3).run(progress=stop_at_5)
    assert store.load_checkpoint(BASE)[1]["iteration"] == 3
    before = store.load_checkpoint(BASE)[1]["train_seconds"]
    _, [resumed] = run([BASE], tiny_task, store=store, checkpoint_every=3)
    assert resumed["curve"] == whole["curve"] and resumed["losses"] == whole["losses"]
    assert 0 < before < resumed["train_seconds"]  # the time of both pieces, not of the last alone


def test_the_status_line_reads_how_far_a_group_is_between_its_checkpoints(tiny_task, store, monkeypatch):
    """A group notes how far it is every NOTE_SECONDS (its checkpoints come minutes apart, and the status line
    read them a checkpoint's interval behind); it resumes from its checkpoint all the same."""
    from repro import train

    monkeypatch.setattr(train, "NOTE_SECONDS", 0.0)
    seen = []

    def noting(i, total):
        seen.append(store.progress(BASE))
        stop_at_5(i, total)

    with pytest.raises(Interrupt):
        Group.build([BASE], tiny_task, {}, SETTINGS, store=store, checkpoint_every=3).run(progress=noting)
    total = Group.build([BASE], tiny_task, {}, SETTINGS).total
    assert seen == [(i, total) for i in range(1, 6)]
    assert store.progress(BASE) == (5, total) and store.checkpoint_progress(BASE) == (3, total)
    run([BASE], tiny_task, store=store, checkpoint_every=3)
    assert store.progress(BASE) == (total, total)
    store.clear_checkpoint(BASE)  # as a finished run's result is saved
    assert store.progress(BASE) is None and not (store.run_dir(BASE) / "progress.json").exists()


def test_a_group_stopped_at_its_time_limit_checkpoints_and_resumes_to_the_uninterrupted_numbers(tiny_task, store,
                                                                                                  parents):
    from repro.train import Stopped

    specs = [BASE, RunSpec("random:0", "B", "AnB", 3, 0, CONFIG)]
    _, whole = run(specs, tiny_task, parents)
    with pytest.raises(Stopped) as stop:  # a time limit already past: stop after the first iteration
        Group.build(specs, tiny_task, parents, SETTINGS, store=store).run(stop_at=0.0)
    assert stop.value.iteration == 1
    assert [store.load_checkpoint(s)[1]["iteration"] for s in specs] == [1, 1]
    total = Group.build(specs, tiny_task, parents, SETTINGS).total
    assert [store.checkpoint_progress(s) for s in specs] == [(1, total)] * 2  # what the status line reads
    _, resumed = run(specs, tiny_task, parents, store=store)
    assert [m["curve"] for m in resumed] == [m["curve"] for m in whole]
    assert [m["losses"] for m in resumed] == [m["losses"] for m in whole]


def test_networks_resumed_from_different_iterations_catch_up_then_train_together(tiny_task, store, parents,
                                                                                  monkeypatch):
    """A group whose networks stopped at different iterations (a split group's parts, trained in different
    sittings) resumes each from its own checkpoint: the least advanced trains alone until it reaches the
    other, then both train in one step (one frozen-prefix pass), and each ends with its uninterrupted numbers."""
    from repro.train import TrainingStep

    behind, ahead = (RunSpec("random:0", "B", "BnB", n, 0, CONFIG) for n in (1, 3))
    _, whole = run([behind, ahead], tiny_task, parents)

    with pytest.raises(Interrupt):  # `ahead` alone: checkpointed at iteration 3, stopped at 5
        Group.build([ahead], tiny_task, parents, SETTINGS, store=store, checkpoint_every=3).run(progress=stop_at_5)
    assert store.checkpoint_progress(behind) is None and store.checkpoint_progress(ahead)[0] == 3
    steps = []
    body = TrainingStep.body

    def counted(self, x, y, members, i, capturing=False):
        steps.append((i, [m.spec.n for m in members]))
        return body(self, x, y, members, i, capturing)

    monkeypatch.setattr(TrainingStep, "body", counted)
    group, resumed = run([behind, ahead], tiny_task, parents, store=store)
    assert steps == [(i, [1]) for i in range(3)] + [(i, [1, 3]) for i in range(3, group.total)]
    assert [m["curve"] for m in resumed] == [m["curve"] for m in whole]
    assert [m["losses"] for m in resumed] == [m["losses"] for m in whole]


def test_a_stop_signal_stops_a_group_in_a_checkpoint_as_its_time_limit_does(tiny_task, store, parents):
    import os
    import signal

    from repro.train import Stopped, stop_requested, stopping_on_sigterm

    specs = [BASE, RunSpec("random:0", "B", "AnB", 3, 0, CONFIG)]
    _, whole = run(specs, tiny_task, parents)
    before = signal.getsignal(signal.SIGTERM)
    with stopping_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill PID` sends: asks, does not end the process
        assert stop_requested()
        with pytest.raises(Stopped) as stop:
            Group.build(specs, tiny_task, parents, SETTINGS, store=store).run()
    assert not stop_requested() and signal.getsignal(signal.SIGTERM) is before  # as it was
    assert stop.value.iteration == 1 and [store.checkpoint_progress(s)[0] for s in specs] == [1, 1]
    _, resumed = run(specs, tiny_task, parents, store=store)
    assert [m["curve"] for m in resumed] == [m["curve"] for m in whole]


def test_divergence_stops_the_run_and_keeps_its_curve(tiny_task):
    recipe = dataclasses.replace(SMOKE.recipe, lr=1e6)
    _, [m] = run([BASE], tiny_task, recipe=recipe)
    assert m["diverged"] and m["top1"] == pytest.approx(0.25)


def test_schedule_warms_up_and_steps():
    recipe = dataclasses.replace(SMOKE.recipe, warmup=0.1, lr_steps=(0.5,), gamma=0.1)
    lr = lr_multipliers(recipe, 100)
    assert lr[0] == pytest.approx(0.1) and lr[9] == 1.0 and lr[49] == 1.0 and lr[50] == pytest.approx(0.1)


def test_linear_schedule_warms_up_then_decays_to_zero_at_the_last_iteration():
    recipe = dataclasses.replace(SMOKE.recipe, warmup=0.1, decay="linear", lr_steps=(0.5,))
    lr = lr_multipliers(recipe, 100)
    assert lr[0] == pytest.approx(0.1) and lr[9] == 1.0 and lr[10] == 1.0  # warm-up, then the peak
    assert lr[55] == pytest.approx(0.5) and lr[99] == pytest.approx(1 / 90)  # halfway down, one step left
    assert all(a > b for a, b in zip(lr[10:], lr[11:]))  # no steps of gamma: lr_steps are for 'step' only


def test_paper_metric_is_the_mean_of_the_k_best_tests():
    assert paper_metric([(1, 0.1), (2, 0.5), (3, 0.3), (4, 0.4)], 2) == pytest.approx(0.45)


def test_augment_crops_and_mirrors_deterministically():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).view(2, 3, 8, 8)
    a, b = augment(x, 6, True, 5), augment(x, 6, True, 5)
    assert a.shape == (2, 3, 6, 6) and torch.equal(a, b)
    centre = augment(x, 6, True, None)
    assert torch.equal(centre, augment(x[:, :, 1:7, 1:7], 6, True, None))


def test_transfer_between_halves_with_different_numbers_of_classes(tiny_task, make_blobs):
    """natural (72 classes) -> man-made (128) on Tiny ImageNet: only layers 1..7 travel, never the classifier."""
    from repro.train import Task

    source_task = Task(make_blobs(128, 3, 16, 2), make_blobs(32, 3, 16, 3), 3)
    base_a = RunSpec("natman", "A", "base", 0, 0, CONFIG)
    group, _ = run([base_a], source_task)
    parents = {base_a.key: group.members[0].net.state_dict()}
    specs = [RunSpec("natman", "B", t, n, 0, CONFIG) for t in ("AnB", "AnB+") for n in (2, 7)]
    _, results = run(specs, tiny_task, parents)
    assert all(m["num_classes"] == 4 and not m["diverged"] for m in results)


def test_checkpoints_by_wall_time_are_written_while_training_goes_on(tiny_task, store, monkeypatch):
    """A slow disk: training runs ahead while a checkpoint is written, and what was written is the state at
    the checkpoint's iteration (resuming from it gives the uninterrupted run's numbers)."""
    import threading
    import time

    _, [whole] = run([BASE], tiny_task)
    save, reached, writing = store.save_checkpoint, {"i": 0}, {}

    def slow_save(spec, tensors, meta):
        writing.setdefault(meta["iteration"], reached["i"])
        time.sleep(0.3)
        writing[meta["iteration"]] = (writing[meta["iteration"]], reached["i"])
        assert threading.current_thread().name == "checkpoint"
        save(spec, tensors, meta)

    def stop_at_9(i, total):
        reached["i"] = i
        if i == 9:
            raise Interrupt

    monkeypatch.setattr(store, "save_checkpoint", slow_save)
    # a checkpoint after every iteration
    group = Group.build([BASE], tiny_task, {}, SETTINGS, store=store, checkpoint_every=0, checkpoint_minutes=1e-9)
    with pytest.raises(Interrupt):
        group.run(progress=stop_at_9)
    first = min(writing)
    assert writing[first][1] > writing[first][0]  # iterations went on while it was written
    saved = store.load_checkpoint(BASE)[1]["iteration"]
    assert 1 <= saved <= 9
    monkeypatch.setattr(store, "save_checkpoint", save)
    _, [resumed] = run([BASE], tiny_task, store=store)
    assert resumed["curve"] == whole["curve"] and resumed["losses"] == whole["losses"]


READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


@pytest.fixture
def host_reads(monkeypatch):
    """Counts every read of a tensor's value into Python (each one a wait for the device on a GPU)."""
    calls = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: calls.append("synchronize"))
    return calls


def test_a_training_step_never_waits_for_the_device(tiny_task, parents, host_reads):
    """No value goes back to the host during a step: not the loss, not the divergence test, not the batch."""
    specs = [RunSpec("random:0", "B", t, n, 0, CONFIG) for t, n in (("base", 0), ("BnB", 3), ("AnB+", 1),
                                                                   ("random", 5))]
    group = Group.build(specs, tiny_task, parents, SETTINGS)
    host_reads.clear()
    for i in range(20):
        group.step(i, group.members)
    assert host_reads == []
    read_tallies(group.members)  # what the loop does at an evaluation or a checkpoint: one read for all
    assert host_reads == ["tolist"]


def test_host_reads_grow_with_evaluations_not_with_iterations(tiny_task, host_reads):
    counts = []
    for epochs in (2, 6):
        host_reads.clear()
        recipe = dataclasses.replace(SMOKE.recipe, epochs=epochs, evals=3)
        run([BASE], tiny_task, recipe=recipe)
        counts.append(len(host_reads))
    assert counts[0] == counts[1] <= 3 * 3  # per evaluation: the tally and the correct counts (+ the end)
