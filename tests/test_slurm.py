"""Slurm through submitit: groups go out as jobs in DAG order, the store stays the one source of truth, and a
preempted job requeues itself and resumes from its checkpoint.

The scheduling is tested with a fake executor (jobs run in this process when they "end"); the job itself with
submitit's local executor, which runs it in another process and requeues it on the signal Slurm sends.
"""
import os
import signal
import time
from pathlib import Path

import pytest
import submitit

from repro.backends import Backend, backend_for
from repro.backends.slurm import Slurm, TrainGroup, slurm_executor
from repro.execute import execute
from repro.profiles import get_profile
from repro.runs import specs_for
from repro.store import Store
from repro.study import all_needs

pytestmark = pytest.mark.smoke
PROFILE = get_profile("smoke", ["replicates=1", "natman=false", "layers=1", "finetune_layers=1", "random_layers=1",
                                "recipe.epochs=1"])
NEEDS = all_needs(["early_layer_generality"])  # base A, base B, then AnB and BnB n=1 on B: two levels of the DAG


class FakeJob:
    def __init__(self, job_id, function, executor):
        self.job_id, self.function, self.executor, self.polls = job_id, function, executor, 0

    def done(self):
        self.polls += 1
        return self.polls > 1  # each job runs for one poll

    def result(self):
        self.executor.in_flight -= 1
        return self.function()  # "the job ran": train the group in this process


class FakeExecutor:
    folder = Path("fake-slurm")

    def __init__(self, store, error: Exception | None = None):
        self.store, self.error, self.submitted, self.in_flight, self.most_in_flight = store, error, [], 0, 0

    def submit(self, function):
        parents_done = all(self.store.is_done(s.parent) for s in function.group if s.parent)
        self.submitted.append(([s.label for s in function.group], parents_done))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return FakeJob(len(self.submitted) - 1, function if self.error is None else self.fail, self)

    def fail(self):
        raise self.error


def run(store, executor, **kw):
    return execute(specs_for(PROFILE, NEEDS), PROFILE, store, executor="slurm", submitit_executor=executor,
                   progress=False, poll_seconds=0.01, **kw)


def test_groups_go_out_in_dag_order_and_every_run_lands_in_the_store(tmp_path):
    store = Store(tmp_path / "store")
    executor = FakeExecutor(store)
    outcome = run(store, executor)
    specs = specs_for(PROFILE, NEEDS)
    assert sorted(outcome.trained) == sorted(s.key for s in specs) and all(store.is_done(s) for s in specs)
    labels = [group for group, _ in executor.submitted]
    # one job per GPU: the transfers of a target split into sub-groups by the frozen prefix they share
    assert labels == [["base random:0/A r0"], ["base random:0/B r0"],
                      ["BnB n=1 random:0/B->B r0"], ["AnB n=1 random:0/A->B r0"]]
    assert all(parents_done for _, parents_done in executor.submitted)  # a transfer waits for its base
    again = FakeExecutor(store)
    assert sorted(run(store, again).cached) == sorted(s.key for s in specs) and again.submitted == []


def test_gpus_caps_the_jobs_in_flight(tmp_path):
    store = Store(tmp_path / "store")
    executor = FakeExecutor(store)
    run(store, executor, gpus=1)
    assert executor.most_in_flight == 1 and len(executor.submitted) == 3  # one GPU: the target's group whole


def test_a_failed_job_stops_the_session_naming_the_job_and_its_log(tmp_path):
    store = Store(tmp_path / "store")
    executor = FakeExecutor(store, error=RuntimeError("CUDA error: out of memory"))
    with pytest.raises(RuntimeError, match=r"Slurm job 0 \(1 runs: base random:0/A r0 \.\.\.\) failed: CUDA error: "
                                           r"out of memory\nIts log: fake-slurm/0_0_log\.err"):
        run(store, executor)


def test_without_slurm_the_slurm_executor_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(submitit.AutoExecutor, "which", staticmethod(lambda: "local"))
    with pytest.raises(ValueError, match=r"no Slurm here.*--gpus N or --workers N"):
        slurm_executor(Store(tmp_path / "store"), "gpu", 60)
    with pytest.raises(ValueError, match="--slurm-time must be a positive number of minutes"):
        run(Store(tmp_path / "store"), FakeExecutor(None), slurm_minutes=0)


def test_the_chooser_gives_the_slurm_backend_for_the_slurm_executor(tmp_path):
    backend = backend_for("slurm", Store(tmp_path / "store"), PROFILE, gpus=3, submitit_executor=FakeExecutor(None))
    assert isinstance(backend, Slurm) and isinstance(backend, Backend)
    assert (backend.slots, backend.split_for) == (3, 3)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_preempted_job_requeues_itself_and_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    repo = str(Path(__file__).parents[1])  # the job's process imports repro from here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    profile = PROFILE.override(["recipe.epochs=20", "checkpoint_every=20"])  # 300 iterations
    store = Store(tmp_path / "store")
    base = specs_for(profile, NEEDS)[0]
    function = TrainGroup([base], str(store.root), profile, None)
    assert function.checkpoint().function is function  # requeued as it is: the store holds the progress
    job = slurm_executor(store, None, 5, cluster="local").submit(function)
    checkpoint = store.run_dir(base) / "checkpoint.json"
    deadline = time.time() + 60
    while not checkpoint.exists() and time.time() < deadline and not job.done():
        time.sleep(0.02)
    assert checkpoint.exists(), job.stderr()
    [task] = _children(job._process.pid)  # the job's task, under submitit's local controller
    os.kill(task, signal.SIGUSR2)  # what Slurm sends before preempting or timing out a job
    result = job.result()
    assert result["trained"] == [base.key] and store.is_done(base)
    log = (store.run_dir(base) / "log.txt").read_text()
    assert "resumed from the checkpoint at iteration" in log, log
