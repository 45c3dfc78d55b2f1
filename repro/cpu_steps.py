"""A short measurement of this machine's CPU training steps, for the cost model (repro.cost).

    repro plan --profile cpu --json      # ... "projected_hours": ..., "precision": "fp32"

A few steps of each kind of group the plan has, timed with the real `Group.step` at the profile's
`recipe.cpu_threads`, on random images of the profile's size (the step's time does not depend on the pixels):

- `network_ms`: one base network's forward, backward and SGD on a ready batch (`Group.training_step.body`);
- `group_ms`: the same network's whole `Group.step` (drawing the batch, crops and mirrors as well);
- `transfer_scale`: the measured step of the plan's largest transfer group (frozen prefixes shared per source,
  fine-tuned members) over what the cost model gives it from the FLOP shares of its members (on a CPU the
  frozen layers in inference mode and the trained layers' backward cost less than their FLOP share says;
  docs/performance.md has the factor measured there); it multiplies the FLOP-share part of every transfer
  group's step. (On the GPU the cost model fits a time per member instead, `fit_member_overhead_step`: there
  a member's step waits on kernel launches, here on arithmetic.)

The result is kept per machine (CPU model, instruction set, native bf16, oneDNN limit, torch), network,
precision and threads under $REPRO_CACHE/step_times, so `repro plan` measures once. Not measured: several
workers sharing the memory bandwidth (each worker is timed alone), data loading, checkpoint writes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path

import torch

from repro.cost import half_sizes, step_ms
from repro.data.base import ImageSet
from repro.files import atomic_write_text
from repro.models import get_model, init_weights, layer_flops
from repro.numerics import cpu_summary
from repro.profiles import Profile
from repro.runs import RunSpec, canonical, groups
from repro.settings import TrainingSettings
from repro.train import Group, Task

WARMUP, STEPS = 2, 4
BUDGET_SECONDS = 8  # the most one kind of step is timed for (at least one call)
MAX_GROUP_SECONDS = 40  # a transfer group slower than this to time is left out (member overhead 0)


def cache_dir() -> Path:
    return Path(os.environ.get("REPRO_CACHE") or Path.home() / ".cache" / "repro") / "step_times"


def _largest_transfer_group(specs: list[RunSpec], share: bool) -> list[RunSpec]:
    transfers = [g for g in groups(specs, share=share, slots=1) if any(s.parent for s in g)]
    return max(transfers, key=len, default=[])


def _identity(profile: Profile, group: list[RunSpec], precision: str) -> dict:
    """What a cached measurement is valid for. The CPU's family and model too: a VM's name for it ('AMD EPYC')
    is one for a Zen 1 and a Zen 3 alike. The network as torch prints it: its layers' order decides the step's
    time (a shared ~/.cache or a changed network keeps no stale figure)."""
    machine = cpu_summary()
    network = repr(get_model(profile.arch, 2, profile.recipe.crop))
    return {"cpu_model": machine["cpu_model"], "cpu_family": machine["cpu_family"],
            "network": hashlib.sha256(network.encode()).hexdigest()[:16],
            "cpu_capability": machine["cpu_capability"],
            "native_bf16": machine["native_bf16"], "onednn_max_cpu_isa": machine["onednn_max_cpu_isa"],
            "torch": torch.__version__, "arch": dataclasses.asdict(profile.arch), "image_size": profile.image_size,
            "crop": profile.recipe.crop, "batch": profile.recipe.batch_size, "threads": profile.recipe.cpu_threads,
            "channels_last": profile.channels_last, "precision": precision,
            "transfer_group": sorted(f"{s.treatment}:{s.n}" for s in group)}


def _task(profile: Profile, classes: int, images: int):
    g = torch.Generator().manual_seed(0)
    size = profile.image_size

    def part(n):
        return ImageSet(labels=torch.arange(n) % classes, image_size=size,
                        images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g))

    return Task(part(images), part(classes), classes)


def _timed(run, steps: int) -> float:
    """Milliseconds of a call of run(i) after WARMUP calls: the median of `steps` (robust to another process
    taking the core for a moment). A slow network (a step over BUDGET_SECONDS / 4) is timed by fewer calls, the
    first ones included: its one-time costs are small beside its step."""
    times = []
    for i in range(WARMUP + steps):
        start = time.perf_counter()
        run(i)
        times.append(time.perf_counter() - start)
        if sum(times) > BUDGET_SECONDS and (len(times) > WARMUP or times[-1] > BUDGET_SECONDS / 4):
            break
    timed = times[WARMUP:] or times[-1:]
    return 1000 * sorted(timed)[len(timed) // 2]


def measure(profile: Profile, specs: list[RunSpec], precision: str) -> dict:
    """Time the steps (see the module's docstring); returns the cost model's timing dict."""
    recipe = profile.recipe
    first = specs[0]
    base = RunSpec(first.split, "A", "base", 0, first.replicate, first.config)
    classes, _, _ = half_sizes(profile, base)
    # enough images and epochs for the steps timed here (the learning-rate schedule does not change a step's time)
    timing_recipe = dataclasses.replace(recipe, epochs=10 * (WARMUP + STEPS))
    task = _task(profile, classes, 2 * recipe.batch_size)
    settings = TrainingSettings.from_profile(dataclasses.replace(profile, recipe=timing_recipe), "cpu")
    settings = settings.with_precision(precision)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.cpu_threads)
    try:
        one = Group.build([base], task, {}, settings)
        x, y = one.batches.get(0)
        network_ms = _timed(lambda i: one.training_step.body(x, y, one.members, i), STEPS)
        group_ms = _timed(lambda i: one.step(i, one.members), STEPS)
        timing = {"batch": recipe.batch_size, "network_ms": network_ms, "group_ms": group_ms,
                  "gflop_per_image_fwd": sum(layer_flops(profile.arch, classes, recipe.crop)) / 1e9,
                  "member_overhead_ms": 0.0}
        group = _largest_transfer_group(specs, profile.share)
        if group and network_ms * len(group) * (WARMUP + 3) > 1000 * MAX_GROUP_SECONDS:
            timing["transfer_group"] = {"members": len(group), "step_ms": None,
                                        "why": f"not measured: it would take over {MAX_GROUP_SECONDS} s here"}
        elif group:
            parent_net = init_weights(get_model(profile.arch, classes, recipe.crop), 0)
            parents = {s.parent.key: parent_net.state_dict() for s in group if s.parent}
            big = Group.build(group, task, parents, settings)
            measured = _timed(lambda i: big.step(i, big.members), 3)
            timing["transfer_group"] = {"members": len(group), "step_ms": round(measured, 1)}
            modelled, _ = step_ms(group, profile, timing)
            overhead = max(0.0, group_ms - network_ms)
            timing["transfer_scale"] = max(0.05, (measured - overhead) / (modelled - overhead))
    finally:
        torch.set_num_threads(threads)
    return timing


def cpu_measurement(profile: Profile, specs: list[RunSpec], precision: str, refresh: bool = False,
                    keep: bool = True, stream=None) -> dict:
    """The measurement in repro.cost's format ({'source', 'device', 'torch', 'profiles': {name: timing}}),
    from the cache when this machine measured this network before; a new one is cached unless `keep` is False
    (a command that is refused leaves nothing behind), and said on `stream` before it starts."""
    group = _largest_transfer_group(specs, profile.share)
    identity = _identity(profile, group, precision)
    path = cache_dir() / f"{hashlib.sha256(canonical(identity).encode()).hexdigest()[:16]}.json"
    timing = None
    if path.is_file() and not refresh:
        try:
            timing = json.loads(path.read_text())["timing"]
        except (ValueError, KeyError):
            timing = None  # a damaged cache file is measured again
    source = f"measured on this CPU ({identity['threads']} thread{'s' if identity['threads'] > 1 else ''}, " \
             f"{precision}, {identity['cpu_capability']})"
    if timing is None:
        if stream is not None:
            stream.write("[repro] timing a few training steps on this CPU, to project the plan (once per machine "
                         "and network)\n")
            stream.flush()
        start = time.perf_counter()
        timing = measure(profile, specs, precision)
        timing["seconds_to_measure"] = round(time.perf_counter() - start, 1)
        source += _save(path, identity, timing) if keep else ", not cached"
    else:
        source += f", cached in {path}"
    return {"source": source, "device": identity["cpu_model"], "torch": identity["torch"],
            "profiles": {profile.name: timing}, "cache": str(path)}


def _save(path: Path, identity: dict, timing: dict) -> str:
    """Cache a measurement; '' or what the source says when it could not be (measured again next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps({"identity": identity, "timing": timing}, indent=1))
    except OSError as error:  # a read-only cache
        return f", not cached ({error.strerror})"
    return ""
