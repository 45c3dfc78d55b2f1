"""The schedule: big groups split into sub-groups for N GPUs, and `repro plan --gpus N` projecting its hours
from a simulation of that schedule with step times measured on a GPU."""
import json
from pathlib import Path

import pytest
import torch

from repro.profiles import get_profile
from repro.runs import groups, specs_for
from repro.cost import load_measurement
from repro.schedule import makespan, projection
from repro.study import all_needs

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[1]


def test_for_several_gpus_a_group_splits_into_sub_groups_that_share_a_frozen_prefix():
    plan = specs_for(get_profile("cpu"), all_needs())
    whole, split = groups(plan), groups(plan, slots=8)
    assert len(split) > len(whole) and sorted(s.key for g in split for s in g) == sorted(s.key for s in plan)
    for g in split:
        if len(g) > 1:  # several runs together only where they share one frozen source
            assert all(s.frozen for s in g)
            assert len({(s.treatment == "random", s.parent.key if s.parent else None) for s in g}) == 1
    bnb = [g for g in split if g[0].treatment == "BnB"]
    assert bnb and all(len(g) == 7 for g in bnb)  # BnB 1-7 of one target and replicate, as one sub-group
    position = {s.key: k for k, g in enumerate(split) for s in g}
    assert all(position[s.parent.key] < k for k, g in enumerate(split) for s in g if s.parent)
    assert groups(plan, slots=1) == whole  # one GPU or CPU: the groups as before


def test_the_simulation_keeps_every_gpu_busy_and_waits_for_parents():
    plan = specs_for(get_profile("smoke"), all_needs())
    grouped = groups(plan, slots=2)
    hour = [3600.0] * len(grouped)
    bases = sum(1 for g in grouped if not any(s.parent for s in g))
    assert makespan(grouped, hour, 1) == 3600 * len(grouped)
    assert makespan(grouped, hour, len(grouped)) == 3600 * 2  # bases, then every transfer at once
    two = makespan(grouped, hour, 2)
    assert 3600 * len(grouped) / 2 <= two <= 3600 * (len(grouped) + 1) / 2 + 3600 * (bases % 2)


def test_replicates_in_order_keep_both_workers_busy_where_one_after_another_leaves_one_idle():
    from repro.replicates import by_replicate

    plan = specs_for(get_profile("smoke").override({"replicates": 3, "layers": 1, "finetune_layers": 1}),
                     all_needs(["early_layer_generality", "coadaptation_dip"]))
    ordered = groups(plan, slots=2, replicate_first=True)
    assert [g[0].replicate for g in ordered] == sorted(g[0].replicate for g in ordered)
    one_after_another = sum(makespan(part, [3600.0] * len(part), 2)
                            for part in (groups(runs, slots=2) for runs in by_replicate(plan).values()))
    assert makespan(ordered, [3600.0] * len(ordered), 2) < one_after_another  # each replicate has 5 groups


def test_plan_reports_projected_hours_from_the_committed_gpu_measurement(capsys):
    from repro.cli import main

    assert main(["plan", "--profile", "paper", "--gpus", "8", "--json", "--store", "/nonexistent-store"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["projected_hours"] > 0 and "gpu_check_h200.json" in out["projection"]["measurement"]
    profile = get_profile("paper")
    one = projection(profile, specs_for(profile, all_needs()), 1)
    # 8 GPUs: at most the work of one divided by 8, plus the longest group
    assert one["projected_hours"] / 8 <= out["projected_hours"] <= one["projected_hours"] / 8 + \
        out["projection"]["longest_group_hours"]
    assert main(["plan", "--profile", "gpu", "--gpus", "1", "--json", "--store", "/nonexistent-store"]) == 0
    assert json.loads(capsys.readouterr().out)["projected_hours"] > 0


def test_the_shipped_step_times_are_those_of_the_committed_measurements():
    from benchmarks.step_times import committed

    assert load_measurement() == committed()  # python -m benchmarks.step_times > repro/reference/gpu_step_times.json
    check = json.loads((ROOT / "benchmarks" / "gpu_check_h200.json").read_text())
    assert load_measurement()["device"] == check["device"]["name"]


def test_the_gpu_profile_is_projected_within_15_minutes_on_one_gpu_from_its_own_measurement():
    profile = get_profile("gpu")
    out = projection(profile, specs_for(profile, all_needs()), 1)
    assert out["projected_hours"] <= 0.25 and "gpu_check_h200_graphs.json" in out["measurement"]
    # 5 compute-matched bases and 5 selffers BnB n=1 on half A beside the 170 networks of the paper's design
    assert len(specs_for(profile, all_needs())) == 180 and profile.replicates == 5


def test_the_paper_plan_has_the_originals_design_and_fits_24_hours_on_8_gpus():
    profile = get_profile("paper")
    specs = specs_for(profile, all_needs())
    assert {s.replicate for s in specs if s.split == "natman"} == {0}  # one natural/man-made split, as the original
    assert {s.replicate for s in specs if s.treatment in ("BnB+", "AnB+")} == {0, 1, 2}
    assert {s.replicate for s in specs if s.treatment in ("BnB", "AnB")} == {0, 1, 2, 3}
    assert projection(profile, specs, 8)["projected_hours"] <= 24
    every = get_profile("paper", ["finetune_replicates=0", "natman_replicates=0"])
    assert len(specs_for(every, all_needs())) == 244 > len(specs) == 139  # 3 compute-matched bases


def test_a_profile_without_a_measurement_says_so():
    profile = get_profile("cpu")  # a CPU profile: never measured on a GPU
    out = projection(profile, specs_for(profile, all_needs()), 1)
    assert out["projected_hours"] is None and "gpu_check.sh" in out["why_none"]


class Recording:
    """A backend that 'trains' a group by storing empty results at once, and records what it was given."""

    def __init__(self, store, slots, split_for):
        self.store, self.slots, self.split_for, self.submitted, self.most_running = store, slots, split_for, [], 0
        self.running = []

    def submit(self, group):
        self.submitted.append(group)
        self.running.append(len(self.submitted) - 1)
        self.most_running = max(self.most_running, len(self.running))
        return len(self.submitted) - 1

    def wait(self, handles, timeout):
        return [self.finish(h) for h in handles]

    def finish(self, h):
        for spec in self.submitted[h]:
            self.store.save_result(spec, {"w": torch.zeros(1)}, {"top1": 0.5, "diverged": False})
        self.running.remove(h)
        return h, {"trained": [s.key for s in self.submitted[h]], "diverged": [], "elsewhere": []}

    def describe(self, handles):
        return ""

    def close(self):
        pass


@pytest.mark.parametrize("gpus", [1, 4])
def test_the_one_loop_trains_parents_first_and_splits_groups_for_several_gpus(store, gpus):
    from repro.execute import train_groups

    plan = specs_for(get_profile("smoke"), all_needs())
    backend = Recording(store, slots=gpus, split_for=gpus)
    outcome = train_groups(plan, store, backend, progress=False, poll_seconds=0.01)
    assert sorted(outcome.trained) == sorted(s.key for s in plan)
    assert backend.submitted == groups(plan, slots=gpus)  # the order the simulation assumes
    assert backend.most_running <= gpus
    done = set()
    for group in backend.submitted:
        assert all(s.parent.key in done for s in group if s.parent)
        done |= {s.key for s in group}


def test_the_loop_tells_the_time_left_from_the_groups_projected_times(store, capsys, monkeypatch):
    from repro import execute

    monkeypatch.setattr(execute.Pace, "ratio", 1.0)  # (this backend trains in no time: its pace would be 0)
    plan = specs_for(get_profile("smoke"), all_needs())
    execute.train_groups(plan, store, Recording(store, slots=2, split_for=2), poll_seconds=0.01,
                         seconds_of=lambda group: 36_000.0 * len(group))  # ten hours a network
    told = [line.split("~")[1] for line in capsys.readouterr().err.splitlines() if "left" in line]
    assert any(" h " in left for left in told)  # hours, as projected; the share done would say minutes


class OneAtATime(Recording):
    """Finishes one group per wait, and notes what the log said last beside the groups it is training then."""

    def __init__(self, store, slots, split_for, log):
        super().__init__(store, slots, split_for)
        self.log, self.lines_seen, self.told = log, 0, []

    def wait(self, handles, timeout):
        lines = self.log.getvalue().splitlines()
        if len(lines) > self.lines_seen:  # a line written since the last wait: what trains now
            self.told.append((lines[-1], len(self.running)))
            self.lines_seen = len(lines)
        return [self.finish(handles[0])]


@pytest.mark.parametrize("seconds_of", [None, lambda group: 600.0 * len(group)], ids=["share", "projected"])
def test_a_logged_line_counts_the_group_that_took_a_finished_groups_worker(store, monkeypatch, seconds_of):
    """Two workers: as a group finishes, the next starts on its worker; the log's line for the finished run
    says two groups train, not one (as if a worker idled), whether it tells the time left from the share done
    or from the groups' projected times (a study's `repro run`)."""
    import io
    import re
    import sys

    from repro.execute import train_groups

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    plan = specs_for(get_profile("smoke"), all_needs())
    backend = OneAtATime(store, slots=2, split_for=2, log=log)
    train_groups(plan, store, backend, poll_seconds=0.01, seconds_of=seconds_of)
    told = [(int(m.group(1)) if (m := re.search(r"in (\d+) group", line)) else 0, busy)
            for line, busy in backend.told]
    assert len(told) > 5 and sum(busy == 2 for _, busy in told) > 5
    assert all(groups_said == busy for groups_said, busy in told), told


def _train_before_a_stop(store, seconds_left, seconds_of):
    import time

    from repro.execute import train_groups

    plan = specs_for(get_profile("smoke"), all_needs())
    backend = Recording(store, slots=2, split_for=2)
    outcome = train_groups(plan, store, backend, progress=False, poll_seconds=0.01,
                           stop_at=time.time() + seconds_left, seconds_of=seconds_of)
    assert sorted(outcome.trained) == sorted(s.key for s in plan)  # here every group finishes at once
    return plan, backend.submitted


def test_under_a_time_limit_a_group_that_cannot_finish_starts_with_the_networks_that_can():
    """A group projected to end after the sitting's limit would bank nothing: the networks of it that fit are
    started on their own, the rest later; where nothing fits, the plan's groups start as they are."""
    each = 1000.0  # projected seconds per network
    plan, submitted = _train_before_a_stop(store=_store(), seconds_left=1.5 * each,
                                           seconds_of=lambda group: each * len(group))
    assert all(len(group) == 1 for group in submitted) and len(submitted) == len(plan)
    _, as_planned = _train_before_a_stop(store=_store(), seconds_left=0.5 * each,
                                         seconds_of=lambda group: each * len(group))
    assert as_planned == groups(plan, slots=2)  # none would finish: they train into checkpoints as planned


def test_under_a_time_limit_a_worker_that_no_network_fits_trains_into_checkpoints_rather_than_idle(store):
    from repro.execute import fitted

    plan = specs_for(get_profile("smoke"), all_needs())
    short, long = [g for g in groups(plan, slots=2) if len(g) == 1][:2]
    seconds_of = lambda g: sum(100.0 if s in short else 10_000.0 for s in g)  # noqa: E731
    assert fitted([long, short], 1, [long, short], store, seconds_of, 1000.0) == [short]  # what fits goes first
    assert fitted([long, short], 2, [long, short], store, seconds_of, 1000.0) == [short, long]  # then the rest


def _store():
    import tempfile

    from repro.store import Store

    return Store(Path(tempfile.mkdtemp()) / "store")


def test_a_groups_time_left_counts_what_its_checkpoints_hold_and_the_pace_never_assumes_faster_than_projected(
        store):
    from repro.execute import Pace, fitted, time_left_of

    plan = specs_for(get_profile("smoke"), all_needs())
    group = next(g for g in groups(plan, slots=1) if len(g) >= 3)
    half = group[:2]
    for s in half:
        store.save_checkpoint(s, {"w": torch.zeros(1)}, {"iteration": 50, "total": 100})
    assert time_left_of(half, store, lambda g: 600.0) == 300.0
    assert time_left_of(group, store, lambda g: 600.0) == 600.0  # the least advanced member counts
    todo = [group]
    # 100 s a network: within 350 s (and the 10% margin) the two half-trained ones and one fresh one fit, since
    # a fresh member makes the part train from the start
    part = fitted([group], 1, todo, store, lambda g: 100.0 * len(g), 350.0)
    assert part == [group[:3]]
    assert todo[0] == [s for s in group if s not in part[0]]  # the rest waits in the group's place

    pace = Pace()
    assert pace.factor == 1.0
    pace.open["fast"] = (0.0, 1e12)  # finished long before its projection: the factor stays at 1
    pace.finished("fast", stop_at=None)
    assert pace.factor == 1.0
    import time

    pace.open["slow"] = (time.time() - 300.0, 100.0)  # took three times its projection
    pace.finished("slow", stop_at=None)
    assert 1.4 < pace.factor < 1.6  # the mean of 0 and 3, which fitted applies to every later group
