"""The GPU step times `repro plan` simulates with (repro/reference/gpu_step_times.json), derived from gpu_check files.

    python -m benchmarks.step_times > repro/reference/gpu_step_times.json     # from the committed H200 checks

Two kinds of network, timed two ways:
- eager (`gpu-wide`, `paper`, `paper-fast`): the bare network's step and `Group.step` of one member
  (`network_ms`, `group_ms`), and a fixed time per member and step fitted to a group the check trained as
  `repro run` does (`fit_to_plan`; else to the step of a BnB 1-7 sub-group);
- replayed as a CUDA graph (`gpu`: the small network whose eager steps wait on kernel launches): the time per
  iteration of a one-network group in the real training loop, and the per-member time fitted to the largest
  group of the same plan (`replayed`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro.cost import fit_member_overhead, fit_member_overhead_step, measurement_from_gpu_check  # noqa: E402
from repro.profiles import get_profile  # noqa: E402
from repro.runs import RunSpec, canonical, groups, specs_for, training_config  # noqa: E402
from repro.study import all_needs  # noqa: E402

NOTE = ("'network_ms': forward + backward + fused SGD of one network on a ready batch; 'group_ms': Group.step of "
        "one member; 'member_overhead_ms': the fixed time per member and step, fitted as 'member_overhead_from' "
        "says. Batch, bf16, channels_last, deterministic, uint8 images on the GPU. Derived by "
        "benchmarks/step_times.py from the files named in 'source' and in each profile's 'from'.")


def eager(check: dict, source: str, rename: dict[str, str] | None = None) -> dict[str, dict]:
    """Eager step times per profile from a check's `throughput` and `sub_groups`, with the per-member time
    fitted to the BnB 1-7 sub-group's step."""
    rename = rename or {}
    rows = [{**r, "mode": "group"} for r in check.get("sub_groups", []) if r.get("kind", "").startswith("alone")
            and "step_ms" in r] + [r for r in check.get("throughput", []) if r.get("mode") == "network"
                                   and "step_ms" in r]
    rows = [{**r, "profile": rename.get(r["profile"], r["profile"])} for r in rows]
    profiles = measurement_from_gpu_check({"device": check["device"], "throughput": rows}, source)["profiles"]
    for r in check.get("sub_groups", []):
        name = rename.get(r.get("profile"), r.get("profile"))
        timing = profiles.get(name, {})
        if r.get("kind", "").startswith("BnB") and "step_ms" in r and {"network_ms", "group_ms"} <= set(timing):
            profile = get_profile(name)
            config = canonical(training_config(profile))
            group = [RunSpec("random:0", "B", "BnB", n, 0, config) for n in range(1, 8)]
            timing["member_overhead_ms"] = round(fit_member_overhead_step(group, profile, timing,
                                                                          r["step_ms"] * 256 / r["batch"]), 3)
            timing["member_overhead_from"] = f"{source}: the step of the BnB 1-7 sub-group (sub_groups)"
    return {name: t for name, t in profiles.items() if {"network_ms", "group_ms"} <= set(t)}


def _largest_transfer(plan: dict, profile) -> tuple[list[RunSpec], dict] | None:
    plan_groups = groups(specs_for(profile, all_needs()), share=profile.share)
    measured = [(k, g) for k, g in enumerate(plan.get("groups", [])) if g.get("level") == "transfer"
                and g.get("iterations") and k < len(plan_groups)]
    if not measured:
        return None
    k, g = max(measured, key=lambda kg: kg[1]["runs"])
    if len(plan_groups[k]) != g["runs"]:
        raise ValueError(f"the plan's group {k + 1} has {len(plan_groups[k])} runs, the check trained {g['runs']}: "
                         "not the same plan")
    return plan_groups[k], g


def fit_to_plan(timing: dict, plan: dict, profile, source: str) -> dict:
    """`timing` with its per-member time fitted to the largest transfer group the check trained by `train_group`,
    its time scaled to the whole group where it was cut short."""
    found = _largest_transfer(plan, profile)
    if not found or not {"network_ms", "group_ms"} <= set(timing):
        return timing
    group, g = found
    seconds = g["seconds"] * g["of"] / g["iterations"]
    return {**timing, "member_overhead_ms": round(fit_member_overhead(group, profile, timing, seconds), 3),
            "member_overhead_from": f"{source}: {g['runs']} runs ({group[0].label} ...), {g['iterations']} of "
                                    f"{g['of']} iterations in {g['seconds']} s, trained by train_group as `repro "
                                    "run` does, scaled to the whole group"}


def replayed(plan: dict, profile, source: str, plan_key: str) -> dict | None:
    """Step times of a network whose steps are replayed CUDA graphs, from a plan the check trained: a one-network
    group's time per iteration (evaluations included) and the per-member time fitted to the largest group."""
    from repro.models import layer_flops

    alone = [g for g in plan.get("groups", []) if g.get("runs") == 1 and g.get("iterations")]
    if not alone:
        return None
    per_iteration = 1000 * sum(g["seconds"] for g in alone) / sum(g["iterations"] for g in alone)
    gflop = sum(layer_flops(profile.arch, 100, profile.recipe.crop)) / 1e9
    timing = {"batch": profile.recipe.batch_size, "gflop_per_image_fwd": round(gflop, 3),
              "network_ms": round(per_iteration, 3), "group_ms": round(per_iteration, 3),
              "from": f"{source} ({plan_key}: {len(alone)} one-network groups, "
                      f"{sum(g['iterations'] for g in alone)} iterations in "
                      f"{round(sum(g['seconds'] for g in alone), 1)} s, CUDA graphs)"}
    return fit_to_plan(timing, plan, profile, f"{source} ({plan_key})")


def committed() -> dict:
    """The shipped measurement, from the two H200 checks kept in benchmarks/: the first (its `gpu` rows are
    today's `gpu-wide` network) and the one that trained the small network's plan with CUDA graphs."""
    first_source, graphs_source = "benchmarks/gpu_check_h200.json", "benchmarks/gpu_check_h200_graphs.json"
    first = json.loads((ROOT / first_source).read_text())
    graphs = json.loads((ROOT / graphs_source).read_text())
    profiles = eager(first, first_source, rename={"gpu": "gpu-wide"})
    profiles["gpu-wide"] = fit_to_plan(profiles["gpu-wide"], first["gpu_plan"],
                                       get_profile("gpu-wide", ["replicates=1"]), f"{first_source} (gpu_plan)")
    # that check trained the plan of the cpu profile as it then was (6 epochs, fine-tuning at n = 4, 6, replicate 0)
    # with graphs: the gpu profile's network, recipe and groups at 6 epochs
    profiles["gpu"] = replayed(graphs["cpu_plan"], get_profile("gpu", ["replicates=1", "recipe.epochs=6",
                                                                       "first_replicate=0"]),
                               graphs_source, "cpu_plan")
    profiles.pop("cpu", None)
    return {"source": first_source, "device": first["device"]["name"], "torch": first["device"]["torch"],
            "profiles": profiles, "note": NOTE}


if __name__ == "__main__":
    print(json.dumps(committed(), indent=1))
