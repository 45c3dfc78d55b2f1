"""The bf16 training step of alexnet8 on a CPU with native bf16 (AMX or AVX512-BF16), the suite's way against
other ways of doing it, each as a share of this machine's bf16 matmul peak measured in the same run:

- autocast, channels_last: the suite's step (`repro.train.autocast_context`; fp32 weights, bf16 compute);
- autocast, NCHW: the same in the default memory format;
- bf16 weights: the network held in bf16 (batch norm included), no autocast, with fp32 master copies that SGD
  updates and copies back (the classic mixed-precision loop);
- fp32 tensors, oneDNN bf16 math: no autocast; oneDNN rounds the inputs of convolutions and matrix products
  to bf16 and computes them on the bf16 units (`torch.backends.mkldnn.*.fp32_precision`);
- torch.compile (with --compile): the suite's step under Inductor, and Inductor on what follows each
  convolution only (batch norm, max-pool, ReLU: the memory-bound passes), the convolutions eager;
- the convolutions alone: forward and backward of the network's five convolutions at the step's shapes, in
  bf16 channels_last, summed: what the step would take if nothing but its convolutions cost time (the ceiling
  the other ops leave).

    .venv/bin/python -m benchmarks.bf16_step [--profile gpu] [--steps 30] [--compile] [--out FILE.json]

Every variant starts from the same weights and trains step for step in turn (so all see the same machine
state); it needs a quiet machine, and says so and stops where bf16 is not native.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.conv_layers import conv_inputs, median_seconds, standalone
from benchmarks.step_peak import matmul_gflops
from benchmarks.step_variants import medians_in_turn
from repro.models import get_model, layer_flops
from repro.numerics import cpu_summary, native_bf16
from repro.profiles import get_profile
from repro.train import autocast_context


class AutocastStep:
    def __init__(self, net: nn.Module, memory_format):
        self.net, self.memory_format = net, memory_format
        self.optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def __call__(self, x, y):
        x = x.contiguous(memory_format=self.memory_format)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(torch.device("cpu"), "bf16"):
            loss = F.cross_entropy(self.net(x).float(), y)
        loss.backward()
        self.optimizer.step()


class Bf16WeightsStep:
    """The network in bf16; SGD steps fp32 master copies of its parameters and copies them back."""

    def __init__(self, net: nn.Module):
        self.net = net.to(torch.bfloat16)
        self.params = list(self.net.parameters())
        self.masters = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        self.optimizer = torch.optim.SGD(self.masters, lr=0.01, momentum=0.9)

    def __call__(self, x, y):
        for p in self.params:
            p.grad = None
        loss = F.cross_entropy(self.net(x.to(torch.bfloat16)).float(), y)
        loss.backward()
        for p, m in zip(self.params, self.masters):
            m.grad = p.grad.float()
        self.optimizer.step()
        with torch.no_grad():
            for p, m in zip(self.params, self.masters):
                p.copy_(m)


class Fp32WithBf16MathStep:
    """fp32 tensors throughout; oneDNN computes the convolutions and matrix products from bf16-rounded inputs
    (`torch.backends.mkldnn.*.fp32_precision = "bf16"`, set for this step only)."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

    def __call__(self, x, y):
        backends = torch.backends.mkldnn.conv, torch.backends.mkldnn.matmul
        before = [b.fp32_precision for b in backends]
        for b in backends:
            b.fp32_precision = "bf16"
        try:
            self.optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(self.net(x), y).backward()
            self.optimizer.step()
        finally:
            for b, was in zip(backends, before):
                b.fp32_precision = was


def convolutions_alone_ms(net: nn.Module, batch: int, crop: int, repeats: int) -> list[dict]:
    """Forward and backward of each convolution of the network at its shape in the step (bf16, channels_last):
    its time and GFLOP/s (the first layer's backward is its weights' only)."""
    rows = []
    for conv, shape in conv_inputs(copy.deepcopy(net).float(), batch, crop):
        conv, x, grad, flop = standalone(conv, shape, torch.bfloat16)
        first = not x.requires_grad

        def forward_backward():
            conv(x).backward(grad)

        seconds = median_seconds(forward_backward, repeats)
        rows.append({"layer": f"conv {conv.in_channels}->{conv.out_channels} {conv.kernel_size[0]}x"
                              f"{conv.kernel_size[1]} at {shape[-1]} px", "ms": round(1000 * seconds, 2),
                     "gflops": round(flop * (2 if first else 3) / seconds / 1e9, 1)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="gpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--compile", action="store_true", help="also the suite's step under torch.compile (Inductor)")
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    native, why = native_bf16()
    if not native:
        print(f"bf16 is not native on this CPU ({why}): nothing to measure here")
        return 0
    profile = get_profile(args.profile)
    recipe, classes = profile.recipe, 100
    torch.set_num_threads(recipe.cpu_threads)
    torch.manual_seed(0)
    net = get_model(profile.arch, classes, recipe.crop)
    steps = {"autocast, channels_last (the suite's)":
             AutocastStep(copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last),
             "autocast, NCHW": AutocastStep(copy.deepcopy(net), torch.contiguous_format),
             "bf16 weights, fp32 masters":
             Bf16WeightsStep(copy.deepcopy(net).to(memory_format=torch.channels_last)),
             "fp32 tensors, oneDNN bf16 math":
             Fp32WithBf16MathStep(copy.deepcopy(net).to(memory_format=torch.channels_last))}
    if args.compile:
        compiled = AutocastStep(copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last)
        compiled.net = torch.compile(compiled.net)
        steps["torch.compile (autocast, channels_last)"] = compiled
        fused = AutocastStep(copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last)
        for layer in fused.net.layers:
            layer.after = torch.compile(layer.after)
        steps["torch.compile of each layer's batch norm, pool and ReLU only"] = fused
    x = torch.randn(recipe.batch_size, 3, recipe.crop, recipe.crop).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (recipe.batch_size,))
    gflop = 3 * sum(layer_flops(profile.arch, classes, recipe.crop)) * recipe.batch_size / 1e9
    peak_before = matmul_gflops(torch.bfloat16)
    rows = medians_in_turn(steps, x, y, args.steps)
    convs = convolutions_alone_ms(net, recipe.batch_size, recipe.crop, 10)
    peak = max(peak_before, matmul_gflops(torch.bfloat16))
    rows["the convolutions alone (ceiling)"] = sum(c["ms"] for c in convs)
    machine = cpu_summary()
    print(f"{profile.name} bf16 on {machine['cpu_model']} ({machine['cpu_family']}, {why}): batch "
          f"{recipe.batch_size}, {recipe.crop} px, {recipe.cpu_threads} thread(s), {args.steps} steps each; "
          f"bf16 matmul peak {peak:.1f} GFLOP/s (2048^2)")
    out = {"profile": profile.name, "machine": machine, "torch": torch.__version__, "bf16": why,
           "threads": recipe.cpu_threads, "step_gflop": round(gflop, 3), "bf16_matmul_gflops": round(peak, 1),
           "variants": {}}
    for name, ms in rows.items():
        rate = gflop / ms * 1000
        out["variants"][name] = {"step_ms": round(ms, 2), "gflops": round(rate, 1),
                                 "ratio_to_peak": round(rate / peak, 3)}
        print(f"  {name}: {ms:.1f} ms, {rate:.1f} GFLOP/s = {rate / peak:.0%} of the peak")
    out["convolutions"] = convs
    for c in convs:
        print(f"    {c['layer']}: forward and backward {c['ms']:.1f} ms, {c['gflops']:.1f} GFLOP/s = "
              f"{c['gflops'] / peak:.0%} of the peak")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
