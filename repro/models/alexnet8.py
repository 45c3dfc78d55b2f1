"""`alexnet8`, the 8-layer network of the paper: layers 1..7 = conv1..conv5, fc6, fc7; layer 8 = the classifier.

`Net.layers[k - 1]` is layer k, so "copy layers 1..n" is a slice (the transfer contract: repro.models). Each layer
ends with its nonlinearity (and pooling / LRN, as in CaffeNet: conv -> ReLU -> pool -> LRN, computed as conv -> pool ->
ReLU -> LRN: max-pooling and ReLU commute exactly, values and gradients bit for bit, and the ReLU after the pool
touches a quarter of the elements; docs/performance.md has the time it saves). Dropout sits at the
*input* of fc7 and fc8, so that the output of layer n is a deterministic feature map that networks sharing a frozen
prefix can compute once.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from repro.models.stack import BlockStack


class Layer(nn.Module):
    """One layer: an optional input dropout, the weights (conv or linear), then ReLU / pool / LRN."""

    def __init__(self, weights: nn.Module, after: list[nn.Module], dropout: float = 0.0, flatten: bool = False):
        super().__init__()
        self.dropout = dropout
        self.flatten = flatten
        self.weights = weights
        self.after = nn.Sequential(*after)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.flatten:
            x = x.flatten(1)
        if self.training and self.dropout > 0:
            # A per-network generator keeps the masks of one network independent of what trains beside it.
            device = generator.device if generator is not None else x.device
            keep = torch.rand(x.shape, generator=generator, device=device).to(x.device) >= self.dropout
            x = x * keep / (1 - self.dropout)
        return self.after(self.weights(x))


def _pool():
    return nn.MaxPool2d(3, 2, ceil_mode=True)


class LRN(nn.LocalResponseNorm):
    """CaffeNet's local response normalisation, in the dtype of its input. Under autocast `pow` is on the
    fp32 list, so the stock module turns a bf16 activation into fp32 (and every layer after it would run on
    fp32 inputs); here autocast is off inside, so bf16 stays bf16 and fp32 is computed exactly as before."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        with torch.autocast(x.device.type, enabled=False):  # the same formula, in x's dtype
            sq = F.pad(x * x, (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
            window = sum(sq[:, j:j + x.shape[1]] for j in range(self.size))
            return x / (window * (self.alpha / self.size) + self.k).pow(self.beta)


def _lrn():
    return LRN(5, alpha=1e-4, beta=0.75, k=1.0)


class Net(BlockStack):
    def __init__(self, arch, num_classes: int, crop: int):
        super().__init__()
        self.arch = arch
        c1, c2, c3, c4, c5, f = arch.widths
        g = 2 if arch.groups else 1
        norm = [_lrn()] if arch.lrn else []
        bn = (lambda c: [nn.BatchNorm2d(c)]) if arch.batchnorm else (lambda c: [])
        if arch.caffenet:
            conv1 = nn.Conv2d(3, c1, 11, stride=4)
            conv2 = nn.Conv2d(c1, c2, 5, padding=2, groups=g)
        else:
            # Scaled-down stem for small images: same structure, 5x5 stride 1 then 3x3 convolutions.
            conv1 = nn.Conv2d(3, c1, 5, stride=1 if crop <= 64 else 2, padding=2)
            conv2 = nn.Conv2d(c1, c2, 3, padding=1, groups=g)
        convs = [
            Layer(conv1, [*bn(c1), _pool(), nn.ReLU(inplace=True), *norm]),
            Layer(conv2, [*bn(c2), _pool(), nn.ReLU(inplace=True), *[_lrn() for _ in norm]]),
            Layer(nn.Conv2d(c2, c3, 3, padding=1), [*bn(c3), nn.ReLU(inplace=True)]),
            Layer(nn.Conv2d(c3, c4, 3, padding=1, groups=g), [*bn(c4), nn.ReLU(inplace=True)]),
            Layer(nn.Conv2d(c4, c5, 3, padding=1, groups=g), [*bn(c5), _pool(), nn.ReLU(inplace=True)]),
        ]
        with torch.no_grad():
            x = torch.zeros(1, 3, crop, crop)
            for layer in convs:  # in eval mode: the probe must not move batch-norm running statistics
                x = layer.eval()(x)
                layer.train()
        flat = x.numel()
        self.feature_shape = tuple(x.shape[1:])
        self.layers = nn.ModuleList(convs + [
            Layer(nn.Linear(flat, f), [nn.ReLU(inplace=True)], flatten=True),
            Layer(nn.Linear(f, f), [nn.ReLU(inplace=True)], dropout=arch.dropout),
            Layer(nn.Linear(f, num_classes), [], dropout=arch.dropout),
        ])

    def init_weights(self, g: torch.Generator) -> None:
        """Every layer from one generator.

        CaffeNet gets the paper's Gaussian init (std 0.01, fc6/fc7 0.005; biases 1 for conv2, conv4, conv5,
        fc6, fc7). The scaled networks have no normalisation to rescue that tiny init at our short budgets, so
        they use He-normal weights and zero biases (a stated deviation), with the classifier at std 0.01 as
        in CaffeNet so that the first logits are near zero (max-pooled ReLU features are not zero-mean).
        """
        for k, layer in enumerate(self.layers, start=1):
            w, b = layer.weights.weight, layer.weights.bias
            with torch.no_grad():
                if self.arch.caffenet:
                    std = 0.005 if k in (6, 7) else 0.01
                    w.normal_(0.0, std, generator=g)
                    b.fill_(1.0 if k in (2, 4, 5, 6, 7) else 0.0)
                else:
                    std = 0.01 if k == len(self.layers) else (2.0 / w[0].numel()) ** 0.5
                    w.normal_(0.0, std, generator=g)
                    b.zero_()


def build(arch, num_classes: int, crop: int) -> Net:
    return Net(arch, num_classes, crop)
