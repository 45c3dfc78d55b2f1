"""The surgery that builds a treatment network from a base.

BnB / AnB copy layers 1..n from the base of the same / the other half and freeze them; BnB+ / AnB+ copy the
same layers and fine-tune them; `random` freezes n randomly initialised layers. Layers above n always start
from the treatment's own fresh initialisation. Frozen means: no gradient, so no weight decay, no optimizer
state, and the copied weights stay bit-identical through training.
"""
from __future__ import annotations

import torch

from torch import nn

from repro.models import init_weights
from repro.runs import BASES, RunSpec


def transfer_layers(net: nn.Module, source: dict[str, torch.Tensor], n: int) -> nn.Module:
    """Copy exactly blocks 1..n of `source` (a state dict of a network of the same architecture) into `net`."""
    prefixes = tuple(f"layers.{k}." for k in range(n))
    own = net.state_dict()
    copied = {name: source[name] for name in own if name.startswith(prefixes)}
    missing = [name for name in own if name.startswith(prefixes) and name not in source]
    if missing:
        raise ValueError(f"source network lacks layers needed for n={n}: {missing}")
    for name, tensor in copied.items():
        if tensor.shape != own[name].shape:
            raise ValueError(f"cannot copy {name}: source shape {tuple(tensor.shape)} != {tuple(own[name].shape)}")
    net.load_state_dict({**own, **{k: v.clone() for k, v in copied.items()}})
    return net


def freeze_layers(net: nn.Module, n: int) -> nn.Module:
    for layer in net.layers[:n]:
        for p in layer.parameters():
            p.requires_grad_(False)
    return net


def random_source(spec: RunSpec, make_net) -> nn.Module:
    """The random network whose first n layers the `random` control freezes (shared by every n)."""
    return init_weights(make_net(), spec.random_source_seed)


def build_treatment(spec: RunSpec, make_net, parent_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A fresh network for `spec`: its own initialisation, then layers 1..n from the base (or random)."""
    net = init_weights(make_net(), spec.init_seed)
    if spec.treatment in BASES:
        return net
    if spec.treatment == "random":
        source = random_source(spec, make_net).state_dict()
    else:
        if parent_state is None:
            raise ValueError(f"{spec.label} copies from {spec.parent.label}, whose weights were not given")
        source = parent_state
    transfer_layers(net, source, spec.n)
    if spec.frozen:
        freeze_layers(net, spec.n)
    return net


def prefix_source_id(spec: RunSpec) -> str | None:
    """Frozen networks with the same source share the forward pass through their frozen layers."""
    if not spec.frozen:
        return None
    if spec.treatment == "random":
        return f"random:{spec.random_source_seed}"
    return spec.parent.key
