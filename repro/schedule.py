"""How long a plan takes: the executor's schedule, simulated with the group times of the cost model (repro.cost).

    repro plan --profile paper --gpus 8 --json      # ... "projected_hours": ...

The simulation schedules the same groups in the same order as `repro.execute` does (`runs.groups` with one
slot per GPU: the big groups split into sub-groups that share a frozen prefix, longest critical path first),
each group taking the time the cost model gives it, on `gpus` identical GPUs, a group starting as soon as a
GPU is free and its parents are trained. On a GPU the step times are those measured on an H200 and shipped in
the package (repro.cost.load_measurement).

On the CPU (`plan_projection`: no GPU, or `--set device=cpu`) the step times are measured on the machine itself
before anything trains, a few steps of each kind of group (repro.cpu_steps, cached per machine), and the
schedule is simulated on cores // recipe.cpu_threads workers that keep each target's group whole, as the CPU
worker pool does.
"""
from __future__ import annotations

import heapq
import sys

from repro.cost import group_seconds, load_measurement
from repro.cpu_steps import cpu_measurement
from repro.execute import default_workers
from repro.format import duration
from repro.numerics import precision_for, training_device
from repro.profiles import Profile
from repro.runs import RunSpec, groups


def makespan(grouped: list[list[RunSpec]], seconds: list[float], gpus: int) -> float:
    """Makespan in seconds of list-scheduling `grouped` (in priority order) on `gpus` GPUs: whenever a GPU is
    free, it takes the first group in order whose parents are all trained (as repro.execute does)."""
    owner = {s.key: k for k, g in enumerate(grouped) for s in g}
    needs = [{owner[s.parent.key] for s in g if s.parent and s.parent.key in owner} for g in grouped]
    finished: set[int] = set()
    waiting = list(range(len(grouped)))
    running: list[tuple[float, int]] = []  # (end time, group) heap
    now, free = 0.0, gpus
    while waiting or running:
        for k in [k for k in waiting if needs[k] <= finished][:free]:
            waiting.remove(k)
            heapq.heappush(running, (now + seconds[k], k))
            free -= 1
        if not running:
            raise ValueError("the plan's groups wait on runs that no group trains")
        now, k = heapq.heappop(running)
        finished.add(k)
        free += 1
        while running and running[0][0] == now:
            finished.add(heapq.heappop(running)[1])
            free += 1
    return now


def projection(profile: Profile, specs: list[RunSpec], gpus: int, measurement: dict | None = None,
               split_for: int | None = None, replicate_first: bool = False) -> dict:
    """The simulated schedule of `specs` on `gpus` GPUs (or CPU workers, with `split_for=1`: CPU workers keep a
    target's group whole; `replicate_first`: in the order of repro.runs.groups' argument of that name):
    projected_hours and where the figure comes from."""
    measurement = measurement or load_measurement()
    timing = measurement["profiles"].get(profile.name)
    source = (timing or {}).get("from", measurement["source"])  # a profile measured by another check names it
    out = {"gpus": gpus, "measurement": f"{source} ({measurement['device']}, torch {measurement['torch']})"}
    if timing is None or "network_ms" not in timing or "group_ms" not in timing:
        return {**out, "projected_hours": None,
                "why_none": f"no GPU step time measured for the {profile.name} profile's network (measured: "
                            f"{', '.join(measurement['profiles'])}); benchmarks/gpu_check.sh measures it"}
    grouped = groups(specs, share=profile.share, slots=gpus if split_for is None else split_for,
                     replicate_first=replicate_first)
    seconds = [group_seconds(g, profile, timing) for g in grouped]
    span = makespan(grouped, seconds, gpus)
    busy = sum(seconds)
    return {**out, "projected_hours": round(span / 3600, 3), "groups": len(grouped),
            "gpu_hours": round(busy / 3600, 2), "gpu_utilisation": round(busy / (gpus * span), 3) if span
            else None, "longest_group_hours": round(max(seconds, default=0) / 3600, 2)}


def group_clock(profile: Profile, specs: list[RunSpec], *, gpus: int = 0):
    """A group -> its projected seconds on one slot where the plan trains, from the step times the projection
    uses (on the CPU: measured here, cached); None where there are none. What fits groups into a sitting's
    time limit (repro.execute.fitted)."""
    device = "cuda" if gpus else training_device(profile)
    measurement = load_measurement() if device == "cuda" else \
        cpu_measurement(profile, specs, precision_for(profile, device))
    timing = measurement["profiles"].get(profile.name)
    if not timing or "network_ms" not in timing or "group_ms" not in timing:
        return None
    return lambda group: group_seconds(group, profile, timing)


def plan_projection(profile: Profile, specs: list[RunSpec], *, gpus: int = 0, workers: int | None = None,
                    todo: list[RunSpec] | None = None, split_groups: bool = False, keep: bool = True,
                    stream=None) -> dict:
    """The projected wall time of training `todo` (default: every spec) where the plan trains: on `gpus` GPUs
    (or this machine's GPU), from the step times measured on an H200; else on this machine's CPU with `workers`
    worker processes (default: cores // recipe.cpu_threads), from a short measurement of this CPU
    (repro.cpu_steps; `keep` False: not cached; `stream`: where to say that it measures). With the precision
    the networks train in there. `split_groups`: the CPU workers split a target's group as GPUs do and train
    the replicates in order, the next one's groups filling the workers its predecessor leaves idle
    (repro.study.train_replicates)."""
    device = "cuda" if gpus else training_device(profile)
    used = precision_for(profile, device)
    todo = specs if todo is None else todo
    if device == "cuda":
        return {**projection(profile, todo, max(1, gpus), replicate_first=split_groups), "device": "cuda",
                "precision": used}
    workers = workers or default_workers(profile)
    if not todo:
        return {"device": "cpu", "precision": used, "workers": workers, "projected_hours": 0.0, "groups": 0}
    measurement = cpu_measurement(profile, specs, used, keep=keep, stream=stream)
    out = projection(profile, todo, workers, measurement, split_for=workers if split_groups else 1,
                     replicate_first=split_groups)
    timing = measurement["profiles"][profile.name]
    out.pop("gpus")
    busy, utilisation = out.pop("gpu_hours", None), out.pop("gpu_utilisation", None)
    return {"device": "cpu", "precision": used, "workers": workers, **out,
            "worker_hours": busy, "worker_utilisation": utilisation,
            "step_ms": {"network": round(timing["network_ms"], 1), "group": round(timing["group_ms"], 1),
                        "transfer_group": timing.get("transfer_group")},
            "transfer_scale": round(timing.get("transfer_scale", 1.0), 3),
            "measured_in_seconds": timing.get("seconds_to_measure"), "measurement_cache": measurement["cache"]}


def tell_projection(profile: Profile, specs: list[RunSpec], store, *, gpus: int = 0, workers: int | None = None,
                    quicker: str = "--profile cpu-quick", stream=None) -> dict:
    """Say, before anything trains, how long training the plan's missing runs is projected to take here; when it
    is over an hour on the CPU, suggest the quicker profile (`quicker`: how to ask for it). Returns the
    projection (projected_hours 0 when nothing is missing)."""
    stream = stream or sys.stderr
    todo = [s for s in specs if not store.is_done(s)]
    out = plan_projection(profile, specs, gpus=gpus, workers=workers, todo=todo, stream=stream)
    hours = out.get("projected_hours")
    if not todo or hours is None:
        return out
    where = (f"{out['workers']} CPU worker{'s' if out['workers'] > 1 else ''}" if out["device"] == "cpu"
             else f"{out['gpus']} GPU{'s' if out['gpus'] > 1 else ''}")
    when = duration(hours * 3600) if hours else "a few seconds"
    stream.write(f"[repro] {len(todo)} networks to train: projected {when} on {where}, "
                 f"{out['precision']} (cost model of repro.cost, step times {out['measurement']})\n")
    if out["device"] == "cpu" and hours > 1 and profile.name != "cpu-quick":
        stream.write(f"[repro] that is over an hour: for a quicker first look use {quicker}\n")
    stream.flush()
    return out
