"""Execute a plan: train the missing runs, dependencies first, in-process or in worker processes.

All executors do the same thing with a group of runs (`train_group`): claim the runs (file locks, so two
sessions on one store never train a run twice), load the target half's data, train, store the results.
They differ only in where that happens: this process, one worker process per GPU or CPU slot
(`--gpus N` / `--workers N`; by default `default_workers`: one CPU worker per `recipe.cpu_threads` cores), or
Slurm jobs through submitit (`repro.slurm`). One loop (`schedule`) hands the groups to each of these backends,
in the order `repro.runs.groups` gives (longest critical path first); `repro.schedule` simulates that same
schedule to project a plan's hours.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import torch

from repro import numerics
from repro.errors import UserError
from repro.profiles import Profile
from repro.runs import RunSpec, groups, work
from repro.settings import TrainingSettings
from repro.store import Store
from repro.train import Group, Task

_DATASETS: dict = {}  # one decoded dataset per process and configuration


@dataclass
class Outcome:
    trained: list[str] = field(default_factory=list)  # keys
    cached: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # trained by another session meanwhile
    seconds: float = 0.0


def load_task(spec: RunSpec, data_root: str | None, progress: bool = False) -> Task:
    from repro.data import load_dataset
    from repro.data.splits import task_data

    cfg = spec.cfg
    ident = json.dumps([cfg["dataset"], cfg["image_size"], cfg["num_classes"], cfg["images_per_class"],
                        cfg["train_per_class"], cfg["val_per_class"], data_root])
    if ident not in _DATASETS:
        _DATASETS.clear()  # keep one decoded dataset in memory at a time
        _DATASETS[ident] = load_dataset(cfg["dataset"], root=data_root, image_size=cfg["image_size"],
                                        num_classes=cfg["num_classes"], images_per_class=cfg["images_per_class"],
                                        train_per_class=cfg["train_per_class"], val_per_class=cfg["val_per_class"],
                                        progress=progress)
        if cfg["dataset"] == "imagenet":  # read from a preprocessed copy where `python -m repro.loader` made one
            from repro.loader import use_preprocessed

            _DATASETS[ident] = use_preprocessed(_DATASETS[ident])
    dataset = _DATASETS[ident]
    if cfg.get("natural_classes"):  # the natural/man-made split of a --natman file
        from dataclasses import replace

        from repro.data.splits import natural_from_names

        dataset = replace(dataset, natural=natural_from_names(dataset.classes, cfg["natural_classes"]))
    train, val, num_classes = task_data(dataset, spec.split, spec.target)
    return Task(train, val, num_classes)


def decode_first(specs: list[RunSpec], store: Store, data_root: str | None, progress: bool) -> None:
    """Decode the dataset the missing runs train on here, once, with its progress shown, before any worker
    starts (a worker would decode it silently, the status line waiting meanwhile); the workers then read the
    decoded cache. ILSVRC-2012 is decoded batch by batch while training, and synthetic data is made in
    memory: nothing to do for them."""
    missing = next((s for s in specs if not store.is_done(s)), None)
    if missing is None or missing.cfg["dataset"] in ("synthetic", "imagenet"):
        return
    if progress:
        print(f"[repro] loading {missing.cfg['dataset']} at {missing.cfg['image_size']} px (decoded into the "
              "cache the first time)", file=sys.stderr, flush=True)
    load_task(missing, data_root, progress=progress)


def default_device() -> str:
    from repro.numerics import default_device

    return default_device()


def planned_device(spec: RunSpec, device: str | None = None) -> str:
    """The device a run was planned for (its key says which), or `device` if that is of the same type: a
    run planned for a GPU is not trained on the CPU under its key, nor the other way round."""
    planned = spec.cfg.get("numerics", {}).get("device") or default_device()
    if device is None:
        return planned
    if torch.device(device).type != planned:
        raise ValueError(f"{spec.label} was planned for {planned} (its key {spec.key} says so) but would train on "
                         f"{device}; plan it for {device} (--set device={torch.device(device).type})")
    return device


def train_group(specs: list[RunSpec], store_root: str, profile: Profile, data_root: str | None = None,
                device: str | None = None, progress=None) -> dict:
    """Claim, train and store one group. Returns {'trained': [...], 'diverged': [...], 'elsewhere': [...]}."""
    store = Store(store_root)
    locks, mine, elsewhere = [], [], []
    for spec in specs:
        if store.is_done(spec):
            continue
        lock = store.try_lock(spec)
        if lock is None:
            elsewhere.append(spec.key)
            continue
        if store.is_done(spec):  # finished by another session between the check and the lock
            lock.release()
            continue
        locks.append(lock)
        mine.append(spec)
    try:
        if not mine:
            return {"trained": [], "diverged": [], "elsewhere": elsewhere}
        device = planned_device(mine[0], device)
        settings = TrainingSettings.from_config(mine[0].cfg, profile, device)
        task = load_task(mine[0], data_root)
        parents = {s.parent.key: store.weights(s.parent) for s in mine if s.parent}
        group = Group.build(mine, task, parents, settings, device=device, store=store,
                            checkpoint_every=profile.checkpoint_every, checkpoint_minutes=profile.checkpoint_minutes)
        for spec in mine:
            store.append_log(spec, f"{time.strftime('%F %T')} start {spec.label} in a group of {len(mine)} "
                                   f"on {device}, {group.total} iterations")
        started = time.time()
        results = group.run(progress)
        # provenance of each run: when it trained, and on which CPU arithmetic (repro compare names differences)
        trained = {"started": started, "finished": time.time(), "cpu": numerics.cpu_summary(),
                   "precision": group.precision}
        results = [{**metrics, **trained} for metrics in results]
        for spec, member, metrics in zip(mine, group.members, results):
            store.save_result(spec, member.net.state_dict(), metrics)
            store.append_log(spec, f"{time.strftime('%F %T')} finished: top1 {metrics['top1']:.4f}"
                                   f"{' (DIVERGED)' if metrics['diverged'] else ''} in {metrics['train_seconds']:.1f}s")
        return {"trained": [s.key for s in mine],
                "diverged": [s.key for s, m in zip(mine, results) if m["diverged"]],
                "elsewhere": elsewhere}
    finally:
        for lock in locks:
            lock.release()


# ---- progress ---------------------------------------------------------------------------------------
class Progress:
    """One status line: runs done, training (the networks of the groups being trained, which train together)
    and waiting, elapsed time and an estimate of what remains (from the share of the work done, `fraction`,
    where the caller gives it: bases train first and cost the most, so a count of runs would overstate the
    time left early on).

    On a terminal the line is rewritten in place; into a file or a pipe (a log, CI) it is written once per
    finished run instead, so the log shows how the session went without a line for every step."""

    def __init__(self, total: int, cached: int, enabled: bool = True, stream=None):
        self.total, self.cached, self.enabled = total, cached, enabled
        self.stream = stream or sys.stderr
        self.done, self.running, self.groups, self.t0 = cached, 0, 0, time.time()
        self.fraction: float | None = None  # of the work to train, done
        self.current = ""
        self.in_place = getattr(self.stream, "isatty", lambda: False)()
        self.logged = None

    def update(self, done=None, running=None, groups=None, current=None, fraction=None):
        """`running`: networks being trained, in `groups` groups (one per busy worker)."""
        if done is not None:
            self.done = done
        if fraction is not None:
            self.fraction = fraction
        if running is not None:
            self.running = running
        if groups is not None:
            self.groups = groups
        if current is not None:
            self.current = current
        if not self.enabled:
            return
        if self.in_place:
            self.stream.write("\r" + self.text()[:160].ljust(160))
        elif self.logged != self.done:
            self.logged = self.done
            self.stream.write(self.text().rstrip() + "\n")
        self.stream.flush()

    def text(self) -> str:
        elapsed = time.time() - self.t0
        trained = self.done - self.cached
        # (a group may finish in its worker a moment before it is collected)
        waiting = max(0, self.total - self.done - self.running)
        share = self.fraction if self.fraction is not None else trained / max(1, self.total - self.cached)
        left = self.total - self.done
        eta = f", ~{elapsed * (1 - share) / share / 60:.0f} min left" if trained > 0 and left and share > 0 else ""
        training = f"{self.running} training in {self.groups} group{'s' if self.groups != 1 else ''}" \
            if self.running else "0 training"
        return (f"[repro] runs {self.done}/{self.total} done ({self.cached} cached), {training}, {waiting} waiting, "
                f"{elapsed / 60:.1f} min{eta} {self.current}")

    def close(self):
        if self.enabled and self.in_place:
            self.stream.write("\n")
            self.stream.flush()


# ---- the scheduling loop ----------------------------------------------------------------------------
def _ready(group: list[RunSpec], store: Store) -> bool:
    return all(store.is_done(s.parent) for s in group if s.parent)


def execute(specs: list[RunSpec], profile: Profile, store: Store, *, data_root: str | None = None,
            workers: int = 1, gpus: int = 0, progress: bool = True, device: str | None = None,
            poll_seconds: float = 2.0, split_groups: bool = False) -> Outcome:
    """Train every spec not yet in the store. `gpus` > 0: one worker per GPU; else `workers` CPU workers.
    `split_groups`: split a target's group for CPU workers too (as for GPUs), for a plan too small to keep
    them busy with whole groups (one replicate at a time, repro.replicates)."""
    decode_first(specs, store, data_root, progress)
    if gpus:
        backend = Pool(gpu_slots(gpus), store, profile, data_root)
    elif workers > 1:
        backend = Pool([None] * workers, store, profile, data_root, split_groups)
    else:
        backend = Inline(store, profile, data_root, device)
    return train_groups(specs, store, backend, share=profile.share, progress=progress, poll_seconds=poll_seconds)


def train_groups(specs, store: Store, backend, *, share: bool = True, progress: bool = True,
             poll_seconds: float = 2.0) -> Outcome:
    """The one scheduling loop of every backend (in-process, worker pool, Slurm): the runs not in the store
    in groups sized to the backend's slots (repro.runs.groups), each free slot given the first ready group in
    that order (longest critical path first), finished groups recorded, groups that another session holds
    retried after a pause. `backend`: `slots` (None: no limit), `split_for` (the number of GPUs the groups
    are split for: 1 keeps a target's group whole), `submit(group) -> handle`,
    `wait(handles, timeout) -> [(handle, result)]`, `describe(handles) -> str`, `close()`."""
    t0 = time.time()
    outcome, pending = Outcome(), []
    try:
        for s in specs:
            metrics = store.result(s)
            if metrics is not None:
                store.index_finished(s, metrics)
                outcome.cached.append(s.key)
            else:
                pending.append(s)
        bar = Progress(len(specs), len(outcome.cached), enabled=progress)
        bar.update()
        backend.bar = bar
        todo = groups(pending, share=share, slots=backend.split_for)
        running: dict = {}  # handle -> group
        not_before: dict[int, float] = {}  # groups held by another session are retried after a pause
        while todo or running:
            now = time.time()
            ready = [g for g in todo if not_before.get(id(g), 0) <= now and _ready(g, store)]
            room = len(ready) if backend.slots is None else backend.slots - len(running)
            for group in ready[:max(0, room)]:
                todo.remove(group)
                running[backend.submit(group)] = group
            bar.update(running=sum(len(g) for g in running.values()), groups=len(running),
                       current=backend.describe(running))
            if not running:  # parents are being trained by another session
                time.sleep(poll_seconds)
                continue
            for handle, result in backend.wait(list(running), poll_seconds):
                group = running.pop(handle)
                _record(outcome, result, bar, store, pending, running)
                _requeue(group, result, store, todo, not_before, outcome, poll_seconds)
    finally:
        backend.close()
    bar.update(running=0, groups=0, current="")
    bar.close()
    outcome.seconds = time.time() - t0
    return outcome


def _record(outcome: Outcome, result: dict, bar: Progress, store: Store, specs, running: dict) -> None:
    """A group finished: its runs in the outcome, and the status line's counts (`running`: the groups left)."""
    outcome.trained += result["trained"]
    outcome.diverged += result["diverged"]
    finished = [s for s in specs if store.is_done(s)]
    bar.update(done=bar.cached + len(finished), running=sum(len(g) for g in running.values()), groups=len(running),
               fraction=sum(map(work, finished)) / max(1e-9, sum(map(work, specs))))


def _requeue(group, result, store, todo, not_before, outcome, poll_seconds):
    """Runs another session holds: retried after a pause (then trained here only if that session died)."""
    held = [s for s in group if s.key in result["elsewhere"]]
    waiting = [s for s in held if not store.is_done(s)]
    outcome.elsewhere += [s.key for s in held if store.is_done(s)]
    if waiting:
        todo.append(waiting)
        not_before[id(waiting)] = time.time() + poll_seconds


# ---- backends ---------------------------------------------------------------------------------------
class Inline:
    """Train each group in this process, one at a time (the CPU default, and tests)."""

    slots = split_for = 1

    def __init__(self, store: Store, profile: Profile, data_root: str | None, device: str | None):
        self.store, self.profile, self.data_root, self.device = store, profile, data_root, device
        self.bar, self.done = None, {}

    def submit(self, group):
        label = f"| {group[0].split}/{group[0].target} r{group[0].replicate}: {len(group)} nets"

        def tick(i, total):
            self.bar.update(running=len(group), groups=1, current=f"{label} {100 * i // total}%")

        handle = len(self.done)
        self.done[handle] = train_group(group, str(self.store.root), self.profile, self.data_root, self.device,
                                        tick)
        return handle

    def wait(self, handles, timeout):
        return [(h, self.done.pop(h)) for h in handles]

    def describe(self, handles) -> str:
        return ""

    def close(self):
        pass


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


def machine_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(profile: Profile) -> int:
    """CPU worker processes when none are asked for: one per `recipe.cpu_threads` cores. Each training
    process runs with exactly that many intra-op threads (part of the run key), so the numbers are the same
    on a machine of any size; the machine's size only sets how many networks train at once."""
    return max(1, machine_cores() // profile.recipe.cpu_threads)


def _gpu_worker_init(slots, lock, decoders: int = 0):
    """Pin this worker to one GPU before CUDA is initialised in it (and give it its share of the cores for
    decoding file-backed data, see repro.loader)."""
    with lock:
        os.environ["CUDA_VISIBLE_DEVICES"] = slots.pop(0)
    if decoders:
        os.environ.setdefault("REPRO_LOADER_WORKERS", str(decoders))


def _cpu_worker_init(threads: int):
    torch.set_num_threads(threads)


def _pool_train(group, store_root, profile, data_root):
    return train_group(group, store_root, profile, data_root, None, None)


class Pool:
    """One worker process per slot: a GPU id (pinned before CUDA starts in it) or None (a CPU worker with its
    share of the cores)."""

    def __init__(self, slots: list, store: Store, profile: Profile, data_root: str | None,
                 split_groups: bool = False):
        self.slots, self.store, self.profile, self.data_root = len(slots), store, profile, data_root
        # GPUs: groups split into sub-groups to keep them all busy; CPU workers keep a target's group whole
        # (on the CPU sharing one batch across it pays, README: Benchmarks) unless asked to split
        self.split_for = 1 if all(s is None for s in slots) and not split_groups else len(slots)
        self.bar = None
        ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
        self.manager = None
        if all(s is None for s in slots):
            init, initargs = _cpu_worker_init, (max(1, (os.cpu_count() or 1) // len(slots)),)
        else:
            self.manager = ctx.Manager()
            decoders = max(1, (os.cpu_count() or 1) // len(slots) - 1)
            init, initargs = _gpu_worker_init, (self.manager.list(slots), self.manager.Lock(), decoders)
        self.pool = ProcessPoolExecutor(max_workers=len(slots), mp_context=ctx, initializer=init,
                                        initargs=initargs)

    def submit(self, group):
        return self.pool.submit(_pool_train, group, str(self.store.root), self.profile, self.data_root)

    def wait(self, handles, timeout):
        finished, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)
        return [(f, f.result()) for f in finished]

    def describe(self, handles) -> str:
        return ""

    def close(self):
        self.pool.shutdown()
        if self.manager is not None:
            self.manager.shutdown()
