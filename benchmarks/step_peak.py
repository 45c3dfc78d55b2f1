"""The training step of a profile's network against this CPU's own matmul peak, measured in the same run.

    .venv/bin/python -m benchmarks.step_peak [--profile gpu] [--out benchmarks/results/step_peak_NAME.json]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python -m benchmarks.step_peak   # AVX2 kernels

For each precision the kernels compute natively here (fp32 always; bf16 where AVX512-BF16 or AMX is used):
- the peak: the best of a few square matmuls (2048 x 2048, the largest that stays quick) at the profile's
  `recipe.cpu_threads`, in GFLOP/s;
- the step: the real `Group` step body of one base network (forward, backward, SGD on a ready batch,
  `repro.train.TrainingStep.body`) at the profile's batch, crop and threads, the median of a few steps; its
  GFLOP/s counts 3 x the forward FLOPs of the batch (forward, and a backward of twice the forward);
- the ratio of the two, and where the step's time goes (torch.profiler, self CPU time by operator, top 12).

The ratio is the figure to compare across machines: the step's absolute time follows the CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from repro.numerics import cpu_summary, native_bf16
from repro.profiles import get_profile

MATMUL = 2048


def matmul_gflops(dtype: torch.dtype, repeats: int = 5) -> float:
    a, b = torch.randn(MATMUL, MATMUL, dtype=dtype), torch.randn(MATMUL, MATMUL, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL ** 3 / best / 1e9


def _group(profile, precision: str):
    from repro.cost import half_sizes
    from repro.cpu_steps import _task
    from repro.models import layer_flops
    from repro.runs import Need, specs_for
    from repro.settings import TrainingSettings
    from repro.train import Group

    recipe = dataclasses.replace(profile.recipe, epochs=1000)  # enough iterations; a step's time is the same
    base = specs_for(profile, [Need("random", "base")], device="cpu")[0]
    classes, _, _ = half_sizes(profile, base)
    settings = TrainingSettings.from_profile(dataclasses.replace(profile, recipe=recipe), "cpu")
    group = Group.build([base], _task(profile, classes, 2 * recipe.batch_size), {}, settings.with_precision(precision))
    gflop = sum(layer_flops(profile.arch, classes, recipe.crop)) * recipe.batch_size / 1e9
    return group, gflop


def step_ms(group, steps: int) -> float:
    x, y = group.batches.get(0)
    for i in range(2):
        group.training_step.body(x, y, group.members, i)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        group.training_step.body(x, y, group.members, i + 2)
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


def where_the_time_goes(group, top: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    x, y = group.batches.get(0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(3):
            group.training_step.body(x, y, group.members, i)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // 3}
            for e in events[:top]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="gpu")
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    profile = get_profile(args.profile)
    torch.set_num_threads(profile.recipe.cpu_threads)
    native, why = native_bf16()
    precisions = ["fp32"] + (["bf16"] if native else [])
    out = {"profile": profile.name, "threads": profile.recipe.cpu_threads, "machine": cpu_summary(),
           "torch": torch.__version__, "python": platform.python_version(), "bf16": why, "precisions": {}}
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        group, gflop = _group(profile, precision)
        peak = matmul_gflops(dtype)
        ms = step_ms(group, args.steps)
        step_gflops = 3 * gflop / (ms / 1000)
        peak_after = matmul_gflops(dtype)  # again after the step: the machine's state may have changed meanwhile
        row = {"matmul_gflops": round(max(peak, peak_after), 1), "matmul_gflops_before_after": [round(peak, 1),
               round(peak_after, 1)], "step_ms": round(ms, 1), "step_gflop": round(3 * gflop, 3),
               "step_gflops": round(step_gflops, 1), "ratio_to_peak": round(step_gflops / max(peak, peak_after), 3),
               "where_the_time_goes": where_the_time_goes(group)}
        out["precisions"][precision] = row
        print(f"{profile.name} {precision} on {out['machine']['cpu_model']} ({out['machine']['cpu_capability']}, "
              f"{profile.recipe.cpu_threads} thread): step {row['step_ms']} ms = {row['step_gflops']} GFLOP/s, "
              f"matmul peak {row['matmul_gflops']} GFLOP/s, ratio {row['ratio_to_peak']:.0%}", flush=True)
        for e in row["where_the_time_goes"][:6]:
            print(f"    {e['share']:6.1%}  {e['op']} ({e['calls_per_step']} a step)")
    if not native:
        print(f"bf16 not measured: {why}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
