"""Fusing same-target members (k networks as one k-lane network with grouped convolutions) would be allowed only
if a member's numbers did not depend on which members share its lanes. This is the swap test: train a member in
a fused network beside other lane-mates, or in another lane, and compare its weights bit for bit.

What it found on the CPU (fp32 and bf16 autocast, oneDNN): a member's numbers do not depend on its lane-mates or
its lane, but in fp32 they differ from the same member trained alone (another convolution kernel), so fusion
would have to be used for every group, one member or many. It does not pay on the CPU (README, benchmarks/
test_sweep.py), so the suite does not fuse; benchmarks/gpu_check.py runs this test on the GPU
(REPRO_TEST_DEVICE=cuda) and records what fusion would give there.
"""
import os

import pytest
import torch
import torch.nn.functional as F

pytestmark = pytest.mark.smoke
DEVICE = torch.device(os.environ.get("REPRO_TEST_DEVICE", "cpu"))


def member(seed: int, widths=(8, 16, 16), classes: int = 4):
    g = torch.Generator().manual_seed(seed)
    convs, c = [], 3
    for w in widths:
        convs.append((torch.randn(w, c, 3, 3, generator=g) * 0.2, torch.randn(w, generator=g) * 0.1))
        c = w
    return convs, (torch.randn(classes, c * 4 * 4, generator=g) * 0.05, torch.zeros(classes))


def train_fused(members, x, y, bf16: bool, steps: int = 3):
    """The members as one network with len(members) lanes; returns each member's trained weights."""
    k = len(members)
    convs = [tuple(torch.cat([m[0][j][i] for m in members]).to(DEVICE).requires_grad_() for i in (0, 1))
             for j in range(len(members[0][0]))]
    heads = [tuple(t.clone().to(DEVICE).requires_grad_() for t in m[1]) for m in members]
    params = [p for c in convs for p in c] + [p for h in heads for p in h]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, foreach=True)
    for _ in range(steps):
        h = x.repeat(1, k, 1, 1).contiguous(memory_format=torch.channels_last)
        with torch.autocast(DEVICE.type, torch.bfloat16, enabled=bf16):
            for w, b in convs:
                h = F.relu(F.conv2d(h, w, b, padding=1, groups=k))
                if h.shape[-1] > 4:
                    h = F.max_pool2d(h, 2)
            loss = sum(F.cross_entropy(F.linear(f.flatten(1), hw, hb).float(), y)
                       for f, (hw, hb) in zip(h.chunk(k, 1), heads))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    out = []
    for lane in range(k):
        convs_of = [torch.cat([t.detach().chunk(k)[lane].flatten() for t in c]) for c in convs]
        out.append(torch.cat(convs_of + [t.detach().flatten() for t in heads[lane]]).cpu())
    return out


def swap_test(bf16: bool) -> dict:
    x = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(9)).to(DEVICE)
    y = torch.arange(16, device=DEVICE) % 4
    a, b, c, d = (member(s) for s in range(4))
    first = train_fused([a, b, c], x, y, bf16)[0]
    return {"other_mates": torch.equal(first, train_fused([a, d, b], x, y, bf16)[0]),
            "other_lane": torch.equal(first, train_fused([b, a, c], x, y, bf16)[1]),
            "alone": torch.equal(first, train_fused([a], x, y, bf16)[0])}


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_a_fused_member_learns_the_same_whoever_shares_its_lanes(bf16):
    if bf16 and DEVICE.type == "cpu" and not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN bf16 here")
    found = swap_test(bf16)
    assert found["other_mates"] and found["other_lane"], found
