"""The Slurm backend, through submitit (an optional dependency, imported only here, when it is used): one job
per training group, one GPU each.

    repro run --profile paper --executor slurm --slurm-partition gpu --slurm-time 1440 [--gpus 64]

The jobs share the run store (on a shared filesystem), which stays the one source of truth: each job calls
`repro.worker.train_group`, which claims its runs with file locks, trains them and writes them to the store;
this process only submits and watches. Groups are submitted in DAG order, the bases first and each transfer
group as soon as its base networks are in the store; with more than one job in flight a target's group is
split into sub-groups (repro.runs.groups). `--gpus N` caps the jobs in flight (0: submit every ready group and
let Slurm queue them). Stopping this process leaves the submitted jobs running; the same command later
finds their runs in the store (or still locked by them) and submits only what is missing.

Preemption and time limits: Slurm signals a job before it stops it; submitit then calls `checkpoint`, which
requeues the same group, and the requeued job resumes from the store's last checkpoint (every
`checkpoint_minutes` of wall time or `checkpoint_every` iterations of the profile). The loop that submits and
watches is `repro.execute.train_groups`, the same as for local workers; `repro.backends.backend_for` chooses
this backend for `--executor slurm`. Job logs: <store>/slurm/<job id>_0_log.{out,err}.
"""
from __future__ import annotations

import time

from repro.errors import UserError
from repro.profiles import Profile
from repro.store import Store
from repro.worker import train_group

CPUS_PER_JOB = 10  # decoding workers of file-backed data (repro.loader) plus the training process
MEM_GB_PER_JOB = 64
SIGNAL_SECONDS = 120  # how long before its end a job is told to checkpoint and requeue


class TrainGroup:
    """One job: train one group into the store. On preemption or timeout it requeues itself unchanged; the
    requeued job resumes from the checkpoints in the store (submitit calls `checkpoint`)."""

    def __init__(self, group, store_root: str, profile: Profile, data_root: str | None):
        self.group, self.store_root, self.profile, self.data_root = group, store_root, profile, data_root

    def __call__(self) -> dict:
        return train_group(self.group, self.store_root, self.profile, self.data_root)

    def checkpoint(self, *args, **kwargs):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


def slurm_executor(store: Store, partition: str | None, minutes: int, cluster: str | None = None):
    """A submitit executor writing its job files under <store>/slurm (cluster='local' runs jobs here)."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit: pip install 'repro[slurm]' (or pip install submitit)") \
            from None
    if cluster is None and submitit.AutoExecutor.which() != "slurm":
        raise UserError("--executor slurm: no Slurm here (srun not found). Run it on a Slurm login node, or train "
                         "on this machine with --gpus N or --workers N")
    executor = submitit.AutoExecutor(folder=store.root / "slurm", cluster=cluster)
    params = {"timeout_min": minutes, "gpus_per_node": 1, "cpus_per_task": CPUS_PER_JOB, "mem_gb": MEM_GB_PER_JOB,
              "name": "repro", "slurm_signal_delay_s": SIGNAL_SECONDS}
    if partition:
        params["slurm_partition"] = partition
    executor.update_parameters(**params)
    return executor


class Slurm:
    """The scheduling loop's Slurm backend: one job per group; `gpus` jobs in flight at most (None: all)."""

    def __init__(self, executor, store: Store, profile: Profile, data_root: str | None, gpus: int):
        self.executor, self.store, self.profile, self.data_root = executor, store, profile, data_root
        self.slots = gpus if gpus > 0 else None
        self.split_for = gpus if gpus > 0 else 8  # no cap: split as for a machine of 8 GPUs
        self.bar, self.groups = None, {}

    def submit(self, group):
        job = self.executor.submit(TrainGroup(group, str(self.store.root), self.profile, self.data_root))
        self.groups[job] = group
        return job

    def wait(self, jobs, timeout):
        finished = [job for job in jobs if job.done()]
        if not finished:
            time.sleep(timeout)
        out = []
        for job in finished:
            group = self.groups.pop(job)
            try:
                out.append((job, job.result()))
            except Exception as error:  # noqa: BLE001 - a failed job: say which, and where its log is
                raise RuntimeError(
                    f"Slurm job {job.job_id} ({len(group)} runs: {group[0].label} ...) failed: {error}\n"
                    f"Its log: {self.executor.folder}/{job.job_id}_0_log.err. Finished runs are kept in the "
                    f"store {self.store.root}; other jobs keep running; the same command goes on where this one "
                    f"stopped.") from None
        return out

    def describe(self, jobs) -> str:
        return f"| {len(jobs)} jobs: " + " ".join(str(j.job_id) for j in list(jobs)[:6])

    def stop(self):
        pass  # submitted jobs keep running in their own time limits: their runs land in the store

    def close(self):
        pass  # submitted jobs keep running: their runs land in the store
