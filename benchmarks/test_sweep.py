"""Benchmarks of the CPU study (pytest-benchmark; needs Tiny ImageNet via REPRO_DATA).

    REPRO_DATA=../shared/data/tiny-imagenet-200 pytest benchmarks/ --benchmark-json=benchmarks/results.json

- the `cpu-quick` plan trained as shared sweeps vs one network at a time, from empty stores, in one session:
  wall time of each, their ratio, and that both give the same numbers;
- training throughput (images/s) per treatment, one network alone;
- peak resident memory of the process (the whole study runs in one process with --workers 1);
- what sharing can save at most: each group's shared step against its networks stepped alone, weighted by
  the plan's iterations (the bound on the plan's ratio, since everything else is the same code);
- whether fusing same-shaped networks into one wider network (grouped convolutions) pays on this CPU.
"""
import resource
import time

import pytest
import torch

from repro.execute import execute
from repro.profiles import get_profile
from repro.models import get_model, layer_flops
from repro.runs import RunSpec, canonical, groups, specs_for, training_config
from repro.settings import TrainingSettings
from repro.store import Store
from repro.study import all_needs
from repro.train import Group
from repro.worker import load_task

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
    settings = TrainingSettings.from_profile(profile, "cpu")
    parents = {}
    if spec.parent:
        base = Group.build([spec.parent], task, {}, settings)
        parents[spec.parent.key] = base.members[0].net.state_dict()
    group = Group.build([spec], task, parents, settings)
    steps = 20
    group.step(0, group.members)  # warm-up

    def train():
        for i in range(1, steps + 1):
            group.step(i, group.members)

    benchmark.pedantic(train, rounds=3, iterations=1)
    images_per_second = steps * profile.recipe.batch_size / benchmark.stats.stats.mean
    benchmark.extra_info.update(images_per_second=images_per_second, threads=torch.get_num_threads())


def step_seconds(group: Group, steps: int = 8) -> float:
    group.step(0, group.members)  # warm-up
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        group.step(i, group.members)
    return (time.perf_counter() - t0) / steps


def test_what_sharing_can_save_at_most(benchmark):
    """Per group of the cpu-quick plan: one shared step vs the sum of its networks' steps alone. Sharing
    removes the repeated frozen-prefix forward passes and batch preparation, nothing else: the trained layers'
    forward and backward passes are the same work either way."""
    profile = get_profile("cpu-quick")
    settings = TrainingSettings.from_profile(profile, "cpu")
    rows = []

    def measure():
        rows.clear()
        for group in groups(specs_for(profile, all_needs())):
            task = load_task(group[0], None)
            parents = {s.parent.key: get_model(profile.arch, task.num_classes, profile.recipe.crop).state_dict()
                       for s in group if s.parent}
            shared = Group.build(group, task, parents, settings)
            alone = [Group.build([s], task, parents, settings) for s in group]
            rows.append((len(group), shared.total, step_seconds(shared), sum(step_seconds(a) for a in alone)))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    shared_total = sum(iters * shared for _, iters, shared, _ in rows)
    alone_total = sum(iters * alone for _, iters, _, alone in rows)
    bound = alone_total / shared_total
    print("\ngroup size, iterations, shared ms/step, sum of alone ms/step, ratio")
    for size, iters, shared, alone in rows:
        print(f"{size:4d} {iters:6d} {shared * 1e3:8.1f} {alone * 1e3:8.1f} {alone / shared:6.2f}")
    print(f"plan-weighted ratio (the most sharing can give this plan): {bound:.2f}x")
    benchmark.extra_info.update(groups=[list(r) for r in rows], plan_ratio_bound=bound,
                                threads=torch.get_num_threads())
    assert bound > 1.0  # sharing never costs time


def fused_or_separate(k: int, fused: bool, bf16: bool):
    """k cpu-profile conv stacks (conv1..conv5 with batch norm) as k networks or as one network with k-fold
    grouped convolutions, plus k heads; returns a training step."""
    from torch import nn
    import torch.nn.functional as F

    widths = get_profile("cpu").arch.widths[:5]
    fmt = torch.channels_last

    def stack(copies: int):
        layers, c_in = [], 3
        for j, c in enumerate(widths):
            size = 5 if j == 0 else 3
            layers += [nn.Conv2d(c_in * copies, c * copies, size, padding=size // 2, groups=copies),
                       nn.BatchNorm2d(c * copies), nn.ReLU(inplace=True)]
            if j in (0, 1, 4):
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            c_in = c
        return nn.Sequential(*layers).to(memory_format=fmt)

    stacks = [stack(k)] if fused else [stack(1) for _ in range(k)]
    heads = [nn.Sequential(nn.Flatten(), nn.LazyLinear(256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                           nn.Linear(256, 100)) for _ in range(k)]
    xs = [torch.randn(128, 3, 28, 28) for _ in range(k)]
    inputs = [torch.cat(xs, 1).contiguous(memory_format=fmt)] if fused else \
        [x.contiguous(memory_format=fmt) for x in xs]
    y = torch.randint(0, 100, (128,))

    def loss():
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            feats = [s(x) for s, x in zip(stacks, inputs)]
            per_net = feats[0].chunk(k, dim=1) if fused else feats
            return sum(F.cross_entropy(h(f).float(), y) for h, f in zip(heads, per_net))

    loss()  # materialise the lazy layers
    params = [p for m in stacks + heads for p in m.parameters()]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=True)

    def step():
        value = loss()
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    return step


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("fused", [False, True], ids=["separate", "fused"])
def test_fusing_same_shaped_networks(benchmark, fused, k, bf16):
    """Same-shaped networks (a base and the fine-tuned runs) could run as one k-times-wider network with
    grouped convolutions. Compare the `fused` and `separate` rows of one k and precision."""
    step = fused_or_separate(k, fused, bf16)
    for _ in range(2):
        step()
    benchmark.pedantic(step, rounds=10, iterations=1)
    benchmark.extra_info.update(networks=k, images_per_second=k * 128 / benchmark.stats.stats.mean)


@pytest.mark.parametrize("what", ["matmul-fp32", "matmul-bf16", "base-step-fp32", "base-step-bf16"])
def test_how_close_a_training_step_comes_to_this_cpu_peak(benchmark, what):
    """GFLOP/s of a cpu-profile base training step (forward + backward counted as 3 forwards) beside a large
    matrix product in the same precision: how much idle hardware is left for sharing or fusing to use."""
    import torch.nn.functional as F

    from repro.train import make_optimizer

    kind, precision = what.rsplit("-", 1)
    bf16 = precision == "bf16"
    if kind == "matmul":
        a, b = (torch.randn(2048, 2048, dtype=torch.bfloat16 if bf16 else torch.float32) for _ in range(2))
        flops, step = 2 * 2048 ** 3, (lambda: a @ b)
    else:
        profile = get_profile("cpu")
        net = get_model(profile.arch, 100, profile.recipe.crop).to(memory_format=torch.channels_last)
        optimizer = make_optimizer(net, profile.recipe, torch.device("cpu"))
        x = torch.randn(128, 3, 28, 28).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 100, (128,))
        flops = 3 * sum(layer_flops(profile.arch, 100, profile.recipe.crop)) * 128

        def step():
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x).float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for _ in range(3):
        step()
    benchmark.pedantic(step, rounds=20, iterations=1)
    benchmark.extra_info.update(gflops=flops / benchmark.stats.stats.mean / 1e9, threads=torch.get_num_threads())
