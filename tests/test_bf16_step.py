"""The bf16 step's alternatives that benchmarks/bf16_step.py times do what their names say, so that the figures
in docs/performance.md compare like with like."""
import pytest
import torch

from benchmarks.bf16_step import Bf16WeightsStep, Fp32WithBf16MathStep
from repro.models import get_model
from repro.profiles import SMOKE

pytestmark = pytest.mark.smoke


def small_batch():
    torch.manual_seed(0)
    return torch.randn(8, 3, 14, 14), torch.randint(0, 4, (8,))


def test_bf16_weights_train_in_bf16_and_sgd_steps_fp32_masters():
    net = get_model(SMOKE.arch, 4, 14)
    before = [p.detach().clone() for p in net.parameters()]
    step = Bf16WeightsStep(net)
    x, y = small_batch()
    for _ in range(3):
        step(x, y)
    assert all(p.dtype == torch.bfloat16 for p in net.parameters())
    assert all(m.dtype == torch.float32 for m in step.masters)
    assert all(torch.equal(p, m.to(torch.bfloat16)) for p, m in zip(net.parameters(), step.masters))
    assert any(not torch.equal(m, b) for m, b in zip(step.masters, before)), "SGD moved no master weight"


def test_onednn_bf16_math_is_set_for_its_step_only():
    backends = torch.backends.mkldnn.conv, torch.backends.mkldnn.matmul
    before = [b.fp32_precision for b in backends]
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = get_model(SMOKE.arch, 4, 14)

        def forward(self, x):
            seen.append([b.fp32_precision for b in backends])
            return self.net(x)

    step = Fp32WithBf16MathStep(Probe())
    step(*small_batch())
    assert seen == [["bf16", "bf16"]]
    assert [b.fp32_precision for b in backends] == before
    assert all(p.dtype == torch.float32 for p in step.net.parameters())
