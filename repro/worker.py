"""What one worker does with one group of runs, whichever backend (repro.backends) runs it: claim the runs
(file locks, so two sessions on one store never train a run twice), load the target half's data, train, store
the results. The backends call `train_group` in this process, in a worker process or in a Slurm job."""
from __future__ import annotations

import json
import time

import torch

from repro import numerics
from repro.profiles import Profile
from repro.runs import RunSpec
from repro.settings import TrainingSettings
from repro.store import Store
from repro.train import Group, Stopped, Task

_DATASETS: dict = {}  # one decoded dataset per process and configuration


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
                device: str | None = None, progress=None, stop_at: float | None = None) -> dict:
    """Claim, train and store one group. Returns {'trained': [...], 'diverged': [...], 'elsewhere': [...],
    'stopped': [...]}: keys; 'stopped', the group's runs when `stop_at` (a time.time()) came first (each left in
    a checkpoint of the store, from which the next session on this store continues)."""
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
            return {"trained": [], "diverged": [], "elsewhere": elsewhere, "stopped": []}
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
        try:
            results = group.run(progress, stop_at)
        except Stopped as stop:
            for spec in mine:
                store.append_log(spec, f"{time.strftime('%F %T')} {stop}: checkpoint kept")
            return {"trained": [], "diverged": [], "elsewhere": elsewhere, "stopped": [s.key for s in mine]}
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
                "elsewhere": elsewhere, "stopped": []}
    finally:
        for lock in locks:
            lock.release()
