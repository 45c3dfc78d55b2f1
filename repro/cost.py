"""The cost model: how long a group of networks takes to train, from the FLOPs of its layers and a measured step.

One training step of a group is the measured step of one whole network (`network`: forward, backward and SGD on
a ready batch) times the share of that work its members and frozen prefixes do (from the forward FLOPs of each
layer, repro.models.layer_flops: a frozen prefix once per source, forward only; a member's trained layers forward
and backward, 3x), plus the measured overhead of a step of `Group.step` over the bare network (`group` minus
`network`: drawing the batch, crops and mirrors), plus a fixed time per member and step (`member_overhead_ms`:
kernel launches and host work that do not shrink with a member's FLOPs), fitted for the `gpu` network to the
28-run transfer group of the measured `gpu` plan, trained as `repro run` trains it (`fit_member_overhead`), and
for the others to the step of a BnB 1-7 sub-group (`fit_member_overhead_step`). Each validation test is a
forward pass over the target half's validation set. Not modelled: decoding ILSVRC-2012 (the input pipeline is
assumed to keep up), the start-up of a group (data loading, warm-up), checkpoint writes.

The step times it is fed (a "measurement": {'source', 'device', 'torch', 'profiles': {name: timing}}) come from a
GPU or from this machine's CPU (repro.cpu_steps). The GPU ones come from benchmarks/gpu_check_h200.json (an H200,
eager, bf16, deterministic, batch 256, measured by benchmarks/gpu_check.sh), shipped in the package as
repro/reference/gpu_step_times.json; a network of another width or crop than the one measured is scaled by its
FLOPs per image. repro.schedule simulates the executor's schedule with the group times given here.
"""
from __future__ import annotations

import json
from importlib import resources

from repro.budget import DATASET_SIZES, eval_points, iterations, recipe_from_config
from repro.models import layer_flops
from repro.profiles import Profile
from repro.runs import BASES, RunSpec
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
