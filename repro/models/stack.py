"""What every network of the transfer contract shares (repro.models): a stack of blocks, then the classifier,
run from any block on."""
from __future__ import annotations

import torch
from torch import nn


class BlockStack(nn.Module):
    """A network as `self.layers`: its transferable blocks in order, then its classifier."""

    layers: nn.ModuleList

    def forward(self, x: torch.Tensor, start: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
        """Run blocks start+1.. and the classifier on `x`, the output of block `start` (the image when 0)."""
        for layer in self.layers[start:]:
            x = layer(x, generator)
        return x

    def features(self, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """Outputs of blocks 1..upto (deterministic: dropout is never inside a block's output)."""
        outs = []
        for layer in self.layers[:upto]:
            x = layer(x)
            outs.append(x)
        return outs
