"""`resnet18`: a ResNet-18 for small images (He et al. 2016, with a 3x3 stem for 32 px images).

Blocks 1..9 = the stem (3x3 conv with stride 2, batch norm, ReLU) and eight residual blocks, two per stage; block 10
= the classifier (global average pool, linear). The stem halves the resolution (a 28 px crop: stages at 14, 7, 4, 2
px) where the CIFAR form keeps it: that costs 4x the arithmetic at the same widths, and on a CPU a wider network at
half the resolution is the better use of a step's time. `arch.widths` = (stem, stage1..stage4); stages 2-4 halve the
resolution in their first block, whose shortcut is a strided 1x1 convolution with batch norm. Each residual block
holds its own shortcut, so cutting the network between blocks cuts no skip connection (the transfer contract:
repro.models).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from repro.models.stack import BlockStack


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out)]


class Stem(nn.Module):
    dropout = 0.0

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(3, width, 3, 2), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.body(x)


class Residual(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut, then ReLU."""

    dropout = 0.0

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride), nn.ReLU(inplace=True),
                                  *_conv_bn(c_out, c_out, 3, 1))
        self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.body(x) + skip)


class Head(nn.Module):
    dropout = 0.0

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNet(BlockStack):
    def __init__(self, arch, num_classes: int, crop: int):
        super().__init__()
        self.arch = arch
        stem, *stages = arch.widths
        blocks, width = [Stem(stem)], stem
        for stage, c in enumerate(stages):
            blocks += [Residual(width, c, 1 if stage == 0 else 2), Residual(c, c, 1)]
            width = c
        self.layers = nn.ModuleList(blocks + [Head(width, num_classes)])

    def init_weights(self, g: torch.Generator) -> None:
        """He-normal convolutions (fan in), batch norm at scale 1 and shift 0, the classifier at std 0.01 and
        zero bias (the first logits near zero, as for alexnet8)."""
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.weight.normal_(0.0, (2.0 / module.weight[0].numel()) ** 0.5, generator=g)
                elif isinstance(module, nn.BatchNorm2d):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, nn.Linear):
                    module.weight.normal_(0.0, 0.01, generator=g)
                    module.bias.zero_()


def build(arch, num_classes: int, crop: int) -> ResNet:
    return ResNet(arch, num_classes, crop)
