"""The worker-pool backend: one worker process per GPU (`--gpus N`, each pinned to its GPU) or per CPU slot
(`--workers N`), and the choice of this machine's GPUs."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from repro.errors import UserError
from repro.numerics import usable_cores
from repro.profiles import Profile
from repro.store import Store
from repro.train import request_stop
from repro.worker import train_group


def visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use, respecting an existing CUDA_VISIBLE_DEVICES ("" = none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v.strip() for v in visible.split(",") if v.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def check_gpus(gpus: int, here: bool = True) -> None:
    """The one rule for `--gpus N`: 0 (train on the CPU) or a positive number, and, for GPUs of this
    machine (`here`; not Slurm's), no more than are visible."""
    if gpus < 0:
        raise UserError(f"--gpus must be 0 or a positive number of GPUs, got {gpus}")
    if here and gpus > len(visible_gpus()):
        raise UserError(f"--gpus {gpus} asks for more GPUs than are visible here ({len(visible_gpus())}); "
                        "use --gpus N with N <= the number of GPUs, or --workers N for CPU workers")


def gpu_slots(gpus: int) -> list[str]:
    """Device ids for N workers."""
    if gpus < 1:
        raise UserError(f"--gpus must be a positive number of GPUs, got {gpus}")
    check_gpus(gpus)
    return visible_gpus()[:gpus]


def _gpu_worker_init(slots, lock, decoders: int = 0):
    """Pin this worker to one GPU before CUDA is initialised in it (and give it its share of the cores for
    decoding file-backed data, see repro.loader)."""
    signal.signal(signal.SIGTERM, request_stop)  # Pool.stop: end the group in a checkpoint
    with lock:
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.pop(0)
    if decoders:
        os.environ.setdefault("REPRO_LOADER_WORKERS", str(decoders))


def _cpu_worker_init(threads: int):
    signal.signal(signal.SIGTERM, request_stop)  # Pool.stop: end the group in a checkpoint
    torch.set_num_threads(threads)


def _pool_train(group, store_root, profile, data_root, stop_at):
    return train_group(group, store_root, profile, data_root, None, None, stop_at)


class Pool:
    """One worker process per slot: a GPU id (pinned before CUDA starts in it) or None (a CPU worker with its
    share of the cores)."""

    def __init__(self, slots: list, store: Store, profile: Profile, data_root: str | None,
                 split_groups: bool = False, stop_at: float | None = None):
        self.slots, self.store, self.profile, self.data_root = len(slots), store, profile, data_root
        self.stop_at = stop_at
        # GPUs: groups split into sub-groups to keep them all busy; CPU workers keep a target's group whole
        # (on the CPU sharing one batch across it pays, README: Benchmarks) unless asked to split
        self.split_for = 1 if all(s is None for s in slots) and not split_groups else len(slots)
        self.bar = None
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        self.manager = None
        if all(s is None for s in slots):
            init, initargs = _cpu_worker_init, (max(1, usable_cores() // len(slots)),)
        else:
            self.manager = ctx.Manager()
            decoders = max(1, usable_cores() // len(slots) - 1)
            init, initargs = _gpu_worker_init, (self.manager.list(slots), self.manager.Lock(), decoders)
        self.pool = ProcessPoolExecutor(max_workers=len(slots), mp_context=ctx, initializer=init,
                                        initargs=initargs)

    def submit(self, group):
        return self.pool.submit(_pool_train, group, str(self.store.root), self.profile, self.data_root, self.stop_at)

    def wait(self, handles, timeout):
        finished, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [(f, f.result()) for f in finished]

    def describe(self, handles) -> str:
        return ""

    def stop(self):
        for process in list((getattr(self.pool, "_processes", None) or {}).values()):
            process.terminate()  # SIGTERM, which a worker takes as request_stop (its initializer)

    def close(self):
        self.pool.shutdown()
        if self.manager is not None:
            self.manager.shutdown()
