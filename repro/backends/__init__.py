"""Where the groups of runs train: the backends of the one scheduling loop (`repro.execute.train_groups`).

A backend is anything that satisfies `Backend`: it says how many groups it runs at once (`slots`) and for how
many GPUs a target's group is split (`split_for`), starts a group (`submit`), reports the groups that have
finished (`wait`), and describes the running ones for the status line. Each backend runs
`repro.worker.train_group` on the groups it is given, here (`inline.Inline`), in worker processes
(`pool.Pool`: one per GPU or CPU slot) or as Slurm jobs (`slurm.Slurm`, through submitit, an optional
dependency). `backend_for` is the one place that chooses a backend from the options; a new backend is a new
module here and one branch there (docs/extending.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from repro.errors import UserError

if TYPE_CHECKING:
    from repro.profiles import Profile
    from repro.runs import RunSpec
    from repro.store import Store

EXECUTORS = ("local", "slurm")  # --executor


@runtime_checkable
class Backend(Protocol):
    """The protocol every backend of `repro.execute.train_groups` implements."""

    slots: int | None
    """How many groups run at once: the loop submits no more (None: no limit, e.g. Slurm with no cap)."""

    split_for: int
    """The number of GPUs a target's group is split for (repro.runs.groups): 1 keeps each group whole."""

    bar: Any
    """The status line (repro.execute.Progress); set by the loop before the first `submit`."""

    def submit(self, group: list[RunSpec]) -> Any:
        """Start training one group (claim, train, store: repro.worker.train_group); return a handle for it."""

    def wait(self, handles: list, timeout: float) -> list[tuple[Any, dict]]:
        """The groups among `handles` that have finished, as (handle, train_group's result), waiting up to
        `timeout` seconds for at least one; a failed group raises, saying where its log is."""

    def describe(self, handles: list) -> str:
        """A few words on the running groups for the status line ("" for nothing to add)."""

    def stop(self) -> None:
        """Ask the running groups to stop now, each in a checkpoint (this process got SIGTERM: see
        repro.train.stopping_on_sigterm); called once. A group trained in this process stops by itself."""

    def close(self) -> None:
        """Release what the backend holds (worker processes); called once, when the loop ends or fails."""


def backend_for(executor: str, store: Store, profile: Profile, *, data_root: str | None = None, gpus: int = 0,
                workers: int = 1, split_groups: bool = False, device: str | None = None,
                slurm_partition: str | None = None, slurm_minutes: int = 24 * 60,
                submitit_executor=None, stop_at: float | None = None) -> Backend:
    """The one place a backend is chosen. `executor="slurm"`: one Slurm job per group, at most `gpus` in flight
    (0: no cap; `submitit_executor`: a submitit executor to use instead of a Slurm one, for tests);
    otherwise on this machine: `gpus` > 0 one worker process per GPU, `workers` > 1 CPU worker processes
    (`split_groups`: split a target's group for them as for GPUs), else this process (on `device`). `stop_at`
    (a time.time(); this machine's backends only): their groups stop there, each in a checkpoint
    (repro.worker.train_group)."""
    if executor == "slurm":
        from repro.backends.slurm import Slurm, slurm_executor

        if slurm_minutes < 1:
            raise UserError(f"--slurm-time must be a positive number of minutes, got {slurm_minutes}")
        submitit_executor = submitit_executor or slurm_executor(store, slurm_partition, slurm_minutes)
        return Slurm(submitit_executor, store, profile, data_root, gpus)
    if executor != "local":
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if gpus:
        from repro.backends.pool import Pool, gpu_slots

        return Pool(gpu_slots(gpus), store, profile, data_root, stop_at=stop_at)
    if workers > 1:
        from repro.backends.pool import Pool

        return Pool([None] * workers, store, profile, data_root, split_groups, stop_at)
    from repro.backends.inline import Inline

    return Inline(store, profile, data_root, device, stop_at)
