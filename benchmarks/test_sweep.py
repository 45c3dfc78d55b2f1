"""Benchmarks of the CPU study (pytest-benchmark; needs Tiny ImageNet via REPRO_DATA).

    REPRO_DATA=../shared/data/tiny-imagenet-200 pytest benchmarks/ --benchmark-json=benchmarks/results.json

- the `cpu-quick` plan trained as shared sweeps vs one network at a time, from empty stores, in one session:
  wall time of each, their ratio, and that both give the same numbers;
- training throughput (images/s) per treatment, one network alone;
- peak resident memory of the process (the whole study runs in one process with --workers 1).
"""
import resource
import time

import pytest
import torch

from repro.execute import execute, load_task
from repro.profiles import get_profile
from repro.runs import RunSpec, canonical, specs_for, training_config
from repro.store import Store
from repro.study import all_needs
from repro.train import Group

RESULTS: dict = {}


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def train_plan(profile, root):
    specs = specs_for(profile, all_needs())
    store = Store(root)
    t0 = time.perf_counter()
    execute(specs, profile, store, progress=False)
    return time.perf_counter() - t0, {s.key: store.result(s)["curve"] for s in specs}


def test_cpu_quick_plan_shared_sweep(benchmark, tmp_path):
    profile = get_profile("cpu-quick")
    load_task(specs_for(profile, all_needs())[0], None)  # decode/cache the data outside the timing
    seconds, curves = benchmark.pedantic(train_plan, args=(profile, tmp_path / "shared"), rounds=1, iterations=1)
    RESULTS["shared"] = (seconds, curves)
    benchmark.extra_info.update(wall_seconds=seconds, runs=len(curves), peak_rss_gib=peak_rss_gib())


def test_cpu_quick_plan_one_at_a_time(benchmark, tmp_path):
    profile = get_profile("cpu-quick", ["share=false"])
    seconds, curves = benchmark.pedantic(train_plan, args=(profile, tmp_path / "alone"), rounds=1, iterations=1)
    benchmark.extra_info.update(wall_seconds=seconds, runs=len(curves), peak_rss_gib=peak_rss_gib())
    if "shared" in RESULTS:
        shared_seconds, shared_curves = RESULTS["shared"]
        benchmark.extra_info["speedup_of_shared_sweep"] = seconds / shared_seconds
        print(f"\ncpu-quick plan: one at a time {seconds:.0f}s, shared sweep {shared_seconds:.0f}s, "
              f"ratio {seconds / shared_seconds:.2f}x; peak RSS {peak_rss_gib():.2f} GiB")
        # The same specs give the same numbers however they are grouped.
        assert curves == shared_curves


@pytest.mark.parametrize("treatment, n", [("base", 0), ("BnB", 1), ("BnB", 4), ("BnB", 7), ("BnB+", 4),
                                          ("random", 2)])
def test_training_throughput_per_treatment(benchmark, treatment, n):
    profile = get_profile("cpu")
    config = canonical(training_config(profile))
    spec = RunSpec("random:0", "B", treatment, n, 0, config)
    task = load_task(spec, None)
    parents = {}
    if spec.parent:
        base = Group.build([spec.parent], task, {}, arch=profile.arch, recipe=profile.recipe)
        parents[spec.parent.key] = base.members[0].net.state_dict()
    group = Group.build([spec], task, parents, arch=profile.arch, recipe=profile.recipe)
    steps = 20
    group.step(0, group.members)  # warm-up

    def train():
        for i in range(1, steps + 1):
            group.step(i, group.members)

    benchmark.pedantic(train, rounds=3, iterations=1)
    images_per_second = steps * profile.recipe.batch_size / benchmark.stats.stats.mean
    benchmark.extra_info.update(images_per_second=images_per_second, threads=torch.get_num_threads())
