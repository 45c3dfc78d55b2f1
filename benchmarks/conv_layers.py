"""Each convolution of a profile's network timed alone on this CPU: forward, and the backward of its input and
weights, in GFLOP/s beside this machine's fp32 matmul peak (benchmarks.step_peak.matmul_gflops), so that a
step's ratio to the peak (benchmarks/step_peak.py) can be traced to the layers that lose it.

    .venv/bin/python -m benchmarks.conv_layers [--profile gpu] [--repeats 10]

Batch, crop and threads are the profile's (`recipe.batch_size`, `recipe.crop`, `recipe.cpu_threads`), the
memory format channels_last as in training; each time is the median of `--repeats` calls. The first layer has
no input gradient (its input is the image), so its backward counts the weights' only.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from benchmarks.step_peak import matmul_gflops
from repro.models import get_model
from repro.profiles import get_profile


def median_seconds(f, repeats: int) -> float:
    f()
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def conv_inputs(net: nn.Module, batch: int, crop: int) -> list[tuple[nn.Conv2d, tuple]]:
    """Every convolution of the network with the shape of its input, found by running a probe batch."""
    found = []
    hooks = [m.register_forward_pre_hook(lambda m, args: found.append((m, tuple(args[0].shape))))
             for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.zeros(batch, 3, crop, crop))
    for h in hooks:
        h.remove()
    return found


def standalone(conv: nn.Conv2d, shape: tuple, dtype: torch.dtype = torch.float32):
    """A fresh convolution of `conv`'s shape, its input of `shape` and a gradient for its output (channels_last,
    in `dtype`), and its forward FLOPs: (conv, x, grad, flop). The first layer's input (the image) needs no
    gradient, so its backward is its weights' only."""
    conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     groups=conv.groups).to(dtype, memory_format=torch.channels_last)
    x = torch.randn(shape, dtype=dtype).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(conv.in_channels != 3)
    grad = torch.randn_like(conv(x))
    flop = 2 * grad.numel() * conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
    return conv, x, grad, flop


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="gpu")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    recipe = profile.recipe
    torch.set_num_threads(recipe.cpu_threads)
    net = get_model(profile.arch, 100, recipe.crop)
    print(f"{args.profile}: batch {recipe.batch_size}, {recipe.crop} px, {recipe.cpu_threads} thread(s); fp32 matmul "
          f"peak {matmul_gflops(torch.float32):.1f} GFLOP/s")
    for conv, shape in conv_inputs(net, recipe.batch_size, recipe.crop):
        conv, x, grad, flop = standalone(conv, shape)
        first = not x.requires_grad
        forward = median_seconds(lambda: conv(x), args.repeats)

        def forward_backward():
            conv(x).backward(grad)

        backward = max(1e-9, median_seconds(forward_backward, args.repeats) - forward)
        backward_flop = flop * (1 if first else 2)
        print(f"  conv {conv.in_channels}->{conv.out_channels} {conv.kernel_size[0]}x{conv.kernel_size[1]} at "
              f"{shape[-1]} px: forward {1e3 * forward:6.1f} ms {flop / forward / 1e9:5.1f} GFLOP/s, backward "
              f"{1e3 * backward:6.1f} ms {backward_flop / backward / 1e9:5.1f} GFLOP/s"
              + (" (weights only)" if first else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
