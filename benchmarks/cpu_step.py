"""One training step of a profile's network on this CPU, fp32 and bf16 autocast (1 intra-op thread).

    .venv/bin/python -m benchmarks.cpu_step [--profile cpu]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python -m benchmarks.cpu_step   # AVX2 kernels only

Batch of the profile's recipe, random images at its crop, channels_last, SGD with momentum: the mean
of 10 steps after 3 warm-up steps. What it answers: is bf16 native here (faster than fp32) or emulated.
"""
import argparse
import time

import torch

from repro.models import get_model, init_weights
from repro.profiles import get_profile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="cpu")
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    torch.set_num_threads(1)
    profile = get_profile(args.profile)
    r = profile.recipe
    net = init_weights(get_model(profile.arch, 100, r.crop), 0).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(r.batch_size, 3, r.crop, r.crop).to(memory_format=torch.channels_last)
    y = torch.randint(0, 100, (r.batch_size,))
    for bf16 in (False, True):
        def step():
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(3):
            step()
        t = time.perf_counter()
        for _ in range(args.steps):
            step()
        ms = 1000 * (time.perf_counter() - t) / args.steps
        print(f"{torch.backends.cpu.get_cpu_capability()} {'bf16' if bf16 else 'fp32'} {ms:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
