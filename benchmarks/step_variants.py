"""The training step of alexnet8 against variants of it on this CPU: CaffeNet's conv -> ReLU -> pool in place of
alexnet8's conv -> pool -> ReLU (asserted bit-identical), and with --compile the same network under
torch.compile. The same weights trained step for step in turn (so all see the same machine state); each
variant's median step and its GFLOP/s as a share of this machine's fp32 matmul peak measured in the same run.

    .venv/bin/python -m benchmarks.step_variants [--profile gpu] [--steps 40] [--compile]

It needs a quiet machine (nothing else on the cores): the differences are a few percent of a step.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from benchmarks.step_peak import matmul_gflops
from repro.models import get_model, layer_flops
from repro.profiles import get_profile


def relu_then_pool(net: nn.Module) -> nn.Module:
    """A copy of an alexnet8 network with CaffeNet's order: ReLU, then max-pool."""
    net = copy.deepcopy(net)
    for layer in net.layers:
        modules = list(layer.after)
        kinds = [type(m) for m in modules]
        if nn.MaxPool2d in kinds:
            i = kinds.index(nn.MaxPool2d)
            modules[i], modules[i + 1] = modules[i + 1], modules[i]
            layer.after = nn.Sequential(*modules)
    return net


def medians_in_turn(steps: dict, x: torch.Tensor, y: torch.Tensor, repeats: int) -> dict[str, float]:
    """Each step (name -> a callable on a batch) run `repeats` times in turn with the others, after two
    warm-up rounds (and compilation), in alternating order so that none always goes first: its median in ms."""
    times = {name: [] for name in steps}
    for i in range(repeats + 2):
        for name in (list(steps) if i % 2 else list(reversed(steps))):
            start = time.perf_counter()
            steps[name](x, y)
            if i >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="gpu")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--compile", action="store_true", help="also the network under torch.compile (Inductor)")
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    recipe, classes = profile.recipe, 100
    torch.set_num_threads(recipe.cpu_threads)
    torch.manual_seed(0)
    ours = get_model(profile.arch, classes, recipe.crop).to(memory_format=torch.channels_last)
    nets = {"pool -> ReLU (alexnet8)": ours, "ReLU -> pool (CaffeNet)": relu_then_pool(ours)}
    optimizers = {name: torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9) for name, net in nets.items()}
    if args.compile:
        compiled = copy.deepcopy(ours)
        optimizers["torch.compile"] = torch.optim.SGD(compiled.parameters(), lr=0.01, momentum=0.9)
        nets["torch.compile"] = torch.compile(compiled)
    x = torch.randn(recipe.batch_size, 3, recipe.crop, recipe.crop).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (recipe.batch_size,))
    gflop = 3 * sum(layer_flops(profile.arch, classes, recipe.crop)) * recipe.batch_size / 1e9
    peak = matmul_gflops(torch.float32)
    def sgd_step(name):
        def step(x, y):
            optimizers[name].zero_grad(set_to_none=True)
            nn.functional.cross_entropy(nets[name](x), y).backward()
            optimizers[name].step()
        return step

    medians = medians_in_turn({name: sgd_step(name) for name in nets}, x, y, args.steps)
    a, b = ours, nets["ReLU -> pool (CaffeNet)"]
    assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values())), \
        "the two orders trained different bits"
    print(f"{profile.name}: batch {recipe.batch_size}, {recipe.crop} px, {recipe.cpu_threads} thread(s), "
          f"{args.steps} steps each, the two orders bit-identical; fp32 matmul peak {peak:.1f} GFLOP/s")
    for name, ms in medians.items():
        print(f"  {name}: median {ms:.1f} ms, {gflop / ms * 1000:.1f} GFLOP/s = {gflop / ms * 1000 / peak:.0%} of "
              f"the peak")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
