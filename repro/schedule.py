"""How long a plan takes on N GPUs: the executor's schedule, simulated with step times measured on a GPU.

    repro plan --profile paper --gpus 8 --json      # ... "projected_hours": ...

The simulation schedules the same groups in the same order as `repro.execute` does (`runs.groups` with one
slot per GPU: the big groups split into sub-groups that share a frozen prefix, longest critical path first),
each group taking the time the cost model gives it, on `gpus` identical GPUs, a group starting as soon as a
GPU is free and its parents are trained.

The cost model: one training step of a group is the measured step of one whole network (`network`: forward,
backward and SGD on a ready batch) times the share of that work its members and frozen prefixes do (from the
forward FLOPs of each layer: a frozen prefix once per source, forward only; a member's trained layers forward
and backward, 3x), plus the measured overhead of a step of `Group.step` over the bare network (`group` minus
`network`: drawing the batch, crops and mirrors), plus a fixed time per member and step (`member_overhead_ms`:
kernel launches and host work that do not shrink with a member's FLOPs), fitted for the `gpu` network to the
28-run transfer group of the measured `gpu` plan, trained as `repro run` trains it (`fit_member_overhead`), and for
the others to the step of a BnB 1-7 sub-group (`fit_member_overhead_step`). Each validation test is a forward pass over the target half's
validation set. Not modelled: decoding ILSVRC-2012 (the input pipeline is assumed to
keep up), the start-up of a group (data loading, warm-up), checkpoint writes.

On the CPU (`plan_projection`: no GPU, or `--set device=cpu`) the step times are measured on the machine itself
before anything trains, a few steps of each kind of group (repro.cpu_steps, cached per machine), and the
schedule is simulated on cores // recipe.cpu_threads workers that keep each target's group whole, as the CPU
worker pool does.

The GPU step times come from benchmarks/gpu_check_h200.json (an H200, eager, bf16, deterministic, batch 256, measured
by benchmarks/gpu_check.sh), shipped in the package as repro/reference/gpu_step_times.json; a network of another
width or crop than the one measured is scaled by its FLOPs per image.
"""
from __future__ import annotations

import heapq
import json
from importlib import resources

from repro.budget import DATASET_SIZES, iterations, recipe_from_config
from repro.models import layer_flops
from repro.profiles import Profile
from repro.runs import BASES, RunSpec, groups
from repro.transfer import prefix_source_id

MEASUREMENT = "gpu_step_times.json"


def load_measurement(path: str | None = None) -> dict:
    """The measured step times: {'source': ..., 'device': ..., 'profiles': {name: {network_ms, group_ms,
    batch, gflop_per_image_fwd}}}."""
    if path:
        with open(path) as f:
            return json.load(f)
    return json.loads(resources.files("repro.reference").joinpath(MEASUREMENT).read_text())


def measurement_from_gpu_check(check: dict, source: str) -> dict:
    """The step times of a gpu_check.json (eager, the fastest of each mode the cost model uses per profile;
    not the CUDA-graph replay, which training does not use)."""
    profiles: dict[str, dict] = {}
    for r in check.get("throughput", []):
        if "step_ms" not in r or r.get("compile") or r.get("mode") not in ("network", "group"):
            continue
        p = profiles.setdefault(r["profile"], {"batch": r["batch"], "gflop_per_image_fwd": r["gflop_per_image_fwd"]})
        key = f"{r['mode']}_ms"
        p[key] = min(p.get(key, float("inf")), r["step_ms"])
    return {"source": source, "device": check["device"]["name"], "torch": check["device"]["torch"],
            "profiles": profiles}


def half_sizes(profile: Profile, spec: RunSpec) -> tuple[int, int, int]:
    """(classes, train images, val images) of the half a run trains on."""
    if profile.dataset in DATASET_SIZES:
        train_total, val_per_class, num_classes, natural = DATASET_SIZES[profile.dataset]
        train_per_class = train_total / num_classes
    else:
        num_classes, train_per_class = profile.num_classes, profile.images_per_class
        val_per_class, natural = max(4, profile.images_per_class // 5), profile.num_classes // 2
    if profile.train_per_class:
        train_per_class = min(train_per_class, profile.train_per_class)
    if profile.val_per_class:
        val_per_class = min(val_per_class, profile.val_per_class)
    if spec.split == "natman":
        classes = natural if spec.target == "A" else num_classes - natural
    else:
        classes = num_classes // 2 if spec.target == "A" else num_classes - num_classes // 2
    return classes, int(classes * train_per_class), int(classes * val_per_class)


def step_ms(group: list[RunSpec], profile: Profile, timing: dict) -> tuple[float, float]:
    """(milliseconds of one training step of the group, milliseconds of one forward pass of a batch through
    it), from the cost model."""
    recipe = profile.recipe
    classes, _, _ = half_sizes(profile, group[0])
    flops = layer_flops(profile.arch, classes, recipe.crop)
    full = sum(flops)
    network_ms = timing["network_ms"] * (full / 1e9 / timing["gflop_per_image_fwd"]) * (
        recipe.batch_size / timing["batch"])
    overhead_ms = max(0.0, timing["group_ms"] - timing["network_ms"]) + \
        timing.get("member_overhead_ms", 0.0) * len(group)
    prefix: dict[str, int] = {}  # source -> deepest frozen layer computed from it
    trained = 0.0  # forward FLOPs per image of the members' own layers
    for spec in group:
        source = prefix_source_id(spec)
        start = spec.n if source else 0
        if source:
            prefix[source] = max(prefix.get(source, 0), start)
        trained += sum(flops[start:])
    prefixes = sum(sum(flops[:k]) for k in prefix.values())
    step_share = (prefixes + 3 * trained) / (3 * full)  # in whole-network training steps
    forward_share = (prefixes + trained) / (3 * full)  # a forward pass is about a third of a training step
    # measured on a CPU (repro.cpu_steps): a transfer group's step over what its FLOP shares give
    scale = timing.get("transfer_scale", 1.0) if any(s.treatment not in BASES for s in group) else 1.0
    return overhead_ms + scale * network_ms * step_share, scale * network_ms * forward_share


def group_seconds(group: list[RunSpec], profile: Profile, timing: dict) -> float:
    """Simulated seconds to train one group from start to end (see the module's cost model), by the group's own
    recipe (the compute-matched base trains twice the profile's epochs)."""
    from repro.train import eval_points

    recipe = recipe_from_config(group[0].cfg["recipe"])
    _, train, val = half_sizes(profile, group[0])
    step, forward = step_ms(group, profile, timing)
    _, total = iterations(recipe, train)
    tests = len(eval_points(recipe, total))
    return (total * step + tests * (val / recipe.batch_size) * forward) / 1000


def fit_member_overhead(group: list[RunSpec], profile: Profile, timing: dict, seconds: float) -> float:
    """The per-member, per-step milliseconds that make `group_seconds` give the measured `seconds`."""
    without = group_seconds(group, profile, {**timing, "member_overhead_ms": 0.0})
    _, total = iterations(profile.recipe, half_sizes(profile, group[0])[1])
    return max(0.0, (seconds - without) * 1000 / (total * len(group)))


def fit_member_overhead_step(group: list[RunSpec], profile: Profile, timing: dict, measured_ms: float) -> float:
    """The per-member milliseconds that make `step_ms` give a measured step time of the group."""
    without, _ = step_ms(group, profile, {**timing, "member_overhead_ms": 0.0})
    return max(0.0, (measured_ms - without) / len(group))


def simulate(grouped: list[list[RunSpec]], seconds: list[float], gpus: int) -> float:
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
               split_for: int | None = None) -> dict:
    """The simulated schedule of `specs` on `gpus` GPUs (or CPU workers, with `split_for=1`: CPU workers keep a
    target's group whole): projected_hours and where the figure comes from."""
    measurement = measurement or load_measurement()
    timing = measurement["profiles"].get(profile.name)
    source = (timing or {}).get("from", measurement["source"])  # a profile measured by another check names it
    out = {"gpus": gpus, "measurement": f"{source} ({measurement['device']}, torch {measurement['torch']})"}
    if timing is None or "network_ms" not in timing or "group_ms" not in timing:
        return {**out, "projected_hours": None,
                "why_none": f"no GPU step time measured for the {profile.name} profile's network (measured: "
                            f"{', '.join(measurement['profiles'])}); benchmarks/gpu_check.sh measures it"}
    grouped = groups(specs, share=profile.share, slots=gpus if split_for is None else split_for)
    seconds = [group_seconds(g, profile, timing) for g in grouped]
    makespan = simulate(grouped, seconds, gpus)
    busy = sum(seconds)
    return {**out, "projected_hours": round(makespan / 3600, 3), "groups": len(grouped),
            "gpu_hours": round(busy / 3600, 2), "gpu_utilisation": round(busy / (gpus * makespan), 3) if makespan
            else None, "longest_group_hours": round(max(seconds, default=0) / 3600, 2)}


def plan_projection(profile: Profile, specs: list[RunSpec], *, gpus: int = 0, workers: int | None = None,
                    todo: list[RunSpec] | None = None, split_groups: bool = False, keep: bool = True,
                    stream=None) -> dict:
    """The projected wall time of training `todo` (default: every spec) where the plan trains: on `gpus` GPUs
    (or this machine's GPU), from the step times measured on an H200; else on this machine's CPU with `workers`
    worker processes (default: cores // recipe.cpu_threads), from a short measurement of this CPU
    (repro.cpu_steps; `keep` False: not cached; `stream`: where to say that it measures). With the precision
    the networks train in there. `split_groups`: the CPU workers split a target's group as GPUs do and train
    one replicate after another (repro.study.train_replicates)."""
    from repro.numerics import precision, training_device

    device = "cuda" if gpus else training_device(profile)
    used = precision(profile, device)
    todo = specs if todo is None else todo
    if device == "cuda":
        return {**projection(profile, todo, max(1, gpus)), "device": "cuda", "precision": used}
    from repro.cpu_steps import cpu_measurement
    from repro.study import default_workers

    workers = workers or default_workers(profile)
    if not todo:
        return {"device": "cpu", "precision": used, "workers": workers, "projected_hours": 0.0, "groups": 0}
    measurement = cpu_measurement(profile, specs, used, keep=keep, stream=stream)
    if split_groups:  # one replicate after another, each split across the workers: the sum of their makespans
        from repro.replicates import by_replicate

        parts = [projection(profile, part, workers, measurement, split_for=workers)
                 for part in by_replicate(todo).values()]
        out = {**parts[0], "projected_hours": round(sum(p["projected_hours"] for p in parts), 3),
               "groups": sum(p["groups"] for p in parts), "gpu_hours": round(sum(p["gpu_hours"] for p in parts), 2),
               "longest_group_hours": max(p["longest_group_hours"] for p in parts)}
        out["gpu_utilisation"] = round(out["gpu_hours"] / (workers * out["projected_hours"]), 3) \
            if out["projected_hours"] else None
    else:
        out = projection(profile, todo, workers, measurement, split_for=1)
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
    import sys

    stream = stream or sys.stderr
    todo = [s for s in specs if not store.is_done(s)]
    out = plan_projection(profile, specs, gpus=gpus, workers=workers, todo=todo, stream=stream)
    hours = out.get("projected_hours")
    if not todo or hours is None:
        return out
    where = (f"{out['workers']} CPU worker{'s' if out['workers'] > 1 else ''}" if out["device"] == "cpu"
             else f"{out['gpus']} GPU{'s' if out['gpus'] > 1 else ''}")
    from repro.format import duration

    when = duration(hours * 3600) if hours else "a few seconds"
    stream.write(f"[repro] {len(todo)} networks to train: projected {when} on {where}, "
                 f"{out['precision']} (cost model of repro.schedule, step times {out['measurement']})\n")
    if out["device"] == "cpu" and hours > 1 and profile.name != "cpu-quick":
        stream.write(f"[repro] that is over an hour: for a quicker first look use {quicker}\n")
    stream.flush()
    return out
