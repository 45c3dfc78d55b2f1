"""Architectures by name, and the transfer contract every one of them keeps.

`get_model(arch, num_classes, crop)` builds the network a profile's `arch` describes (`arch.name` picks the
architecture: `ARCHITECTURES`). Importing this module loads no torch: planning and judging read how many
blocks a network has (`blocks(arch)`) without building one.

The transfer contract (what "layer n" means for any network here):
- A network is an ordered stack `net.layers` of `blocks(arch)` transferable blocks and, last, its classifier
  (never copied: the two halves may have different classes). `net.layers[k - 1]` is block k, so "copy blocks
  1..n" is a slice, and n counts blocks: 1..7 for the AlexNet (conv1..conv5, fc6, fc7), 1..9 for the
  ResNet-18 (the stem and its eight residual blocks, each with its own shortcut, so no skip connection
  crosses a cut).
- A block is called as `block(x, generator)` and holds its parameters and buffers under `layers.{k-1}.`;
  its output is deterministic (any dropout sits at a block's input), so networks sharing a frozen prefix
  compute it once (`net.features(x, upto)`) and continue from it (`net(h, start=n)`).
- Frozen means frozen whole: no gradient to the block's weights and batch-norm scales, and its batch-norm
  statistics are the ones it was copied with (frozen blocks run in inference mode, from the shared source
  network: repro.train). Fine-tuned blocks train every parameter and update their statistics.
- `net.init_weights(generator)` draws every parameter from one generator (`init_weights(net, seed)`).

The claims name positions by depth (repro.models.Depth): the first two blocks, the middle ones, the top two.

Adding an architecture (docs/extending.md): its module in this package and a line in `ARCHITECTURES`.
"""
from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    """What planning and judging need to know of an architecture, without building it."""

    module: str  # the module of this package that builds it: `build(arch, num_classes, crop)`
    block_names: tuple[str, ...]  # its transferable blocks, in order (n = 1..len)
    widths: tuple[str, ...]  # what each entry of `arch.widths` is
    description: str
    options: tuple[str, ...] = ()  # the Arch flags it reads; any other flag must keep its default
    fixed: tuple[tuple[str, object], ...] = ()  # flags whose value it has, whatever one asks (to say so in a profile)
    example_widths: tuple[int, ...] = ()  # a small instance, which the contract tests build (tests/test_transfer.py)


ARCHITECTURES = {
    "alexnet8": Architecture(
        module="alexnet8", block_names=("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"),
        widths=("conv1", "conv2", "conv3", "conv4", "conv5", "fc6/fc7"),
        description="the paper's 8-layer AlexNet-style network (7 transferable layers and the classifier)",
        options=("caffenet", "lrn", "groups", "dropout", "batchnorm"), example_widths=(8, 16, 16, 16, 16, 32)),
    "resnet18": Architecture(
        module="resnet",
        block_names=("stem", "res1.1", "res1.2", "res2.1", "res2.2", "res3.1", "res3.2", "res4.1", "res4.2"),
        widths=("stem", "stage1", "stage2", "stage3", "stage4"),
        description="a ResNet-18 for small images: a 3x3 stem and four stages of two residual blocks, batch "
                    "norm throughout (9 transferable blocks and the classifier)",
        fixed=(("batchnorm", True), ("dropout", 0.0)), example_widths=(8, 8, 8, 8, 8)),
}
NAMES = ", ".join(ARCHITECTURES)
DEFAULT = "alexnet8"  # the network of every run key and results.json written before architectures had names


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {NAMES}")
    return ARCHITECTURES[name]


def name_in(arch_config: dict | None) -> str:
    """The architecture of an `arch` as a run key or a results.json's profile stores it (a dict)."""
    return (arch_config or {}).get("name", DEFAULT)


def blocks_named(name: str) -> int:
    """How many blocks of the architecture `name` can be copied from a base: n = 1..blocks."""
    return len(architecture(name).block_names)


def blocks(arch) -> int:
    """How many blocks of this network (a repro.profiles.Arch) can be copied from a base."""
    return blocks_named(arch.name)


def problems(arch, defaults) -> list[str]:
    """What is wrong with `arch` for its architecture (an empty list: nothing), `defaults` an Arch() to compare
    the flags it does not read against."""
    if arch.name not in ARCHITECTURES:
        return [f"arch.name must be one of {NAMES}, got {arch.name!r}"]
    spec = ARCHITECTURES[arch.name]
    found = []
    if len(arch.widths) != len(spec.widths) or min(arch.widths) < 1:
        found.append(f"arch.widths must be {len(spec.widths)} positive widths for {arch.name} "
                     f"({', '.join(spec.widths)}), got {arch.widths}")
    fixed = dict(spec.fixed)
    for flag in ("caffenet", "lrn", "groups", "dropout", "batchnorm"):
        if flag in fixed and getattr(arch, flag) != fixed[flag]:
            found.append(f"{arch.name} always has arch.{flag}={fixed[flag]}: set it so")
        elif flag not in spec.options and flag not in fixed and getattr(arch, flag) != getattr(defaults, flag):
            found.append(f"arch.{flag} has no meaning for {arch.name}: leave it at {getattr(defaults, flag)}")
    return found


@dataclass(frozen=True)
class Depth:
    """The positions the claims name, for a network of `blocks` transferable blocks: the first two (where
    features are general), the top two (the most specific), and the middle between them (where the paper
    found co-adapted neurons). On the paper's network: 1-2, 3-5 and 6-7."""

    blocks: int = 7

    @property
    def early(self) -> tuple[int, ...]:
        return (1, 2)

    @property
    def middle(self) -> tuple[int, ...]:
        return tuple(range(3, self.blocks - 1))

    @property
    def top(self) -> tuple[int, ...]:
        return (self.blocks - 1, self.blocks)


def span(ns) -> str:
    """n = 3, 4, 5 as '3..5', two as '6, 7'."""
    ns = list(ns)
    return f"{ns[0]}..{ns[-1]}" if len(ns) > 2 and ns == list(range(ns[0], ns[-1] + 1)) else ", ".join(map(str, ns))


def _module(arch):
    return importlib.import_module(f"repro.models.{architecture(arch.name).module}")


def get_model(arch, num_classes: int, crop: int):
    """The network `arch` describes, for `num_classes` classes and `crop` x `crop` images (not initialised:
    `init_weights`)."""
    return _module(arch).build(arch, num_classes, crop)


def init_weights(net, seed: int):
    """Initialise every parameter of `net` from one seed (its architecture's own rule)."""
    import torch

    net.init_weights(torch.Generator().manual_seed(seed))
    return net


def layer_parameters(net, k: int) -> dict:
    """The parameters of block k (1-based; the classifier is blocks + 1), by their state-dict names."""
    prefix = f"layers.{k - 1}."
    return {name: p for name, p in net.named_parameters() if name.startswith(prefix)}


@functools.lru_cache(maxsize=None)
def layer_flops(arch, num_classes: int, crop: int) -> tuple[int, ...]:
    """Forward FLOPs per image of each block and the classifier of the network of this shape: multiply-adds
    x 2 of every convolution and linear map in it, counted on one image of `crop` x `crop` pixels."""
    import torch
    from torch import nn

    net = get_model(arch, num_classes, crop).eval()
    counts = [0] * len(net.layers)

    def counter(k):
        def count(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                counts[k] += 2 * output[0].numel() * module.weight[0].numel()
            else:
                counts[k] += 2 * module.in_features * module.out_features
        return count

    for k, layer in enumerate(net.layers):
        for module in layer.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.register_forward_hook(counter(k))
    with torch.no_grad():
        net(torch.zeros(1, 3, crop, crop))
    return tuple(counts)
