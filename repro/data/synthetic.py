"""A procedural image dataset with the structure that makes transfer experiments meaningful.

Low-level statistics are shared by every class: all images are drawn from one bank of parts (blobs, rings,
oriented bars, gratings), one colour palette, one kind of background and noise. Higher-level structure is
class-specific: a class is a fixed composition of five parts (which part, where, which colour, light or
dark), and every image re-draws that composition with jitter of position, scale, contrast and colour, and
drops a part now and then. So the first layers of a network learn features that serve every class, and the
last layers learn compositions that serve only their own.

The classes come in two families, like the natural and man-made classes of ImageNet: the first half
("natural") are mostly curved parts arranged radially around a centre, the second half ("man-made") mostly
straight parts on a 3x3 grid. A split between the families is therefore a dissimilar split.

Deterministic: every random number comes from numpy Generators seeded from (seed, purpose); same arguments,
same bytes.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from repro.data.base import Dataset, ImageSet
from repro.errors import UserError

SLOTS = 5  # parts per class composition
MAIN_FAMILY_SHARE = 0.8  # probability that a slot takes a part of its family's own kind
DISTRACTORS = 2  # random parts added to every image

# The shared part bank. A part at offset (u, v) from its position, rotated by theta into (a, b), is
#   exp(-(d - r0)^2 / 2) * cos(2 pi freq a),   d = sqrt((a / su)^2 + (b / sv)^2),
# a Gaussian blob or bar for r0 = 0, a ring of radius r0 * su for r0 > 0, a grating patch for freq > 0.
#          theta        su     sv     freq  r0
CURVED = [(0.0,         0.045, 0.045, 0.0, 0.0),   # small blob
          (0.0,         0.08,  0.08,  0.0, 0.0),   # large blob
          (0.0,         0.02,  0.02,  0.0, 3.5),   # small ring
          (0.0,         0.025, 0.025, 0.0, 4.8),   # large ring
          (math.pi / 6, 0.02,  0.035, 0.0, 3.0)]   # elliptical ring
STRAIGHT = [(0.0,           0.025, 0.09, 0.0, 0.0),  # bars at four orientations
            (math.pi / 2,   0.025, 0.09, 0.0, 0.0),
            (math.pi / 4,   0.025, 0.09, 0.0, 0.0),
            (3 * math.pi / 4, 0.025, 0.09, 0.0, 0.0),
            (0.0,           0.07,  0.07, 7.0, 0.0),  # grating patches
            (math.pi / 2,   0.07,  0.07, 7.0, 0.0)]
PARTS = np.array(CURVED + STRAIGHT, dtype=np.float32)
GRID = np.array([(x, y) for y in (-0.27, 0.0, 0.27) for x in (-0.27, 0.0, 0.27)], dtype=np.float32)


def _rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, purpose])))


def _palette(seed: int) -> np.ndarray:
    """Six shared colours: RGB offsets from grey with a fixed strength."""
    colours = _rng(seed, 0).uniform(-1, 1, size=(6, 3)).astype(np.float32)
    return 0.45 * colours / np.linalg.norm(colours, axis=1, keepdims=True)


def _compositions(num_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Per class and slot: part index, position, colour index, sign and amplitude."""
    rng = _rng(seed, 1)
    natural = np.arange(num_classes) < num_classes // 2
    own_kind = rng.random((num_classes, SLOTS)) < MAIN_FAMILY_SHARE
    use_curved = np.where(natural[:, None], own_kind, ~own_kind)
    part = np.where(use_curved, rng.integers(0, len(CURVED), (num_classes, SLOTS)),
                    len(CURVED) + rng.integers(0, len(STRAIGHT), (num_classes, SLOTS)))
    # natural: around a centre, at evenly spread angles with jitter and class-specific radii
    centre = rng.uniform(-0.08, 0.08, (num_classes, 1, 2))
    angle = (rng.uniform(0, 2 * np.pi, (num_classes, 1)) + 2 * np.pi * np.arange(SLOTS) / SLOTS
             + rng.normal(0, 0.3, (num_classes, SLOTS)))
    radius = rng.uniform(0.1, 0.3, (num_classes, SLOTS))
    radial = centre + radius[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1)
    # man-made: distinct cells of a 3x3 grid
    cells = np.argsort(rng.random((num_classes, len(GRID))), axis=1)[:, :SLOTS]
    grid = GRID[cells] + rng.normal(0, 0.02, (num_classes, SLOTS, 2))
    return {
        "part": part,
        "position": np.where(natural[:, None, None], radial, grid).astype(np.float32),
        "colour": rng.integers(0, 6, (num_classes, SLOTS)),
        "sign": rng.choice(np.array([-1.0, 1.0], dtype=np.float32), (num_classes, SLOTS)),
        "amplitude": rng.uniform(0.6, 1.0, (num_classes, SLOTS)).astype(np.float32),
    }


SCALES = np.array([0.8, 0.95, 1.1, 1.25], dtype=np.float32)  # part sizes are drawn at these scales


def _part_bank(size: int) -> tuple[torch.Tensor, int]:
    """Every part at every scale, rendered once as a square patch: [parts, scales, p, p], and p // 2."""
    half = size // 4 + 1
    offset = torch.arange(-half, half + 1, dtype=torch.float32) / size  # patch pixel offsets, image units
    min_sigma = 0.6 / size  # keep thin parts about a pixel wide at any image size
    bank = torch.empty((len(PARTS), len(SCALES), 2 * half + 1, 2 * half + 1))
    for i, (theta, su, sv, freq, r0) in enumerate(PARTS.tolist()):
        for j, scale in enumerate(SCALES.tolist()):
            u, v = offset[None, :] / scale, offset[:, None] / scale
            a = u * math.cos(theta) + v * math.sin(theta)
            b = v * math.cos(theta) - u * math.sin(theta)
            d = torch.sqrt((a / max(su, min_sigma)) ** 2 + (b / max(sv, min_sigma)) ** 2)
            bank[i, j] = torch.exp(-0.5 * (d - r0) ** 2) * torch.cos(2 * math.pi * freq * a)
    return bank, half


def _render(labels: np.ndarray, classes: dict, palette: np.ndarray, size: int, rng: np.random.Generator,
            chunk: int = 256) -> torch.Tensor:
    """Draw one image per label: the class's composition with per-image jitter, plus two distractor parts
    from the shared bank, on a background with a colour cast, a gradient and noise."""
    n = len(labels)
    scale = rng.uniform(SCALES[0], SCALES[-1], (n, 1, 1))
    position = (classes["position"][labels] + rng.normal(0, 0.03, (n, SLOTS, 2))) * scale
    position = position + rng.uniform(-0.12, 0.12, (n, 1, 2))
    weight = (rng.uniform(0.5, 1.0, (n, 1)) * (rng.random((n, SLOTS)) < 0.85)
              * classes["sign"][labels] * classes["amplitude"][labels])
    colour = palette[classes["colour"][labels]] + rng.normal(0, 0.12, (n, SLOTS, 3))
    part = classes["part"][labels]
    # distractors: random parts, places, colours; the same statistics in every class
    part = np.concatenate([part, rng.integers(0, len(PARTS), (n, DISTRACTORS))], axis=1)
    position = np.concatenate([position, rng.uniform(-0.4, 0.4, (n, DISTRACTORS, 2))], axis=1)
    weight = np.concatenate([weight, rng.choice([-0.8, 0.8], (n, DISTRACTORS))], axis=1)
    colour = np.concatenate([colour, palette[rng.integers(0, 6, (n, DISTRACTORS))]], axis=1)
    background = 0.5 + rng.normal(0, 0.1, (n, 3, 1, 1))
    gradient = rng.normal(0, 0.15, (n, 2))
    noise = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)

    bank, half = _part_bank(size)
    scale_index = torch.from_numpy(np.abs(scale[:, 0, 0, None] - SCALES[None]).argmin(1))
    # pixel of each part's centre, kept on the canvas; the canvas has a margin of `half` for the patches
    centre = torch.from_numpy(np.clip(np.round((position + 0.5) * size - 0.5), 0, size - 1).astype(np.int64))
    width = size + 2 * half
    patch = torch.arange(2 * half + 1)
    patch_offsets = (patch[:, None] * width + patch[None, :]).flatten()
    part, weight, colour = torch.from_numpy(part), _t(weight), _t(colour)
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    buffer = torch.empty((chunk, 3, width * width))  # reused: fresh large tensors cost page faults
    for start in range(0, n, chunk):
        s = slice(start, start + chunk)
        b = len(range(n)[s])
        canvas = buffer[:b].zero_()
        for k in range(part.shape[1]):  # a fixed summation order keeps the bytes identical on every machine
            values = bank[part[s, k], scale_index[s]].flatten(1) * weight[s, k, None]  # [b, p*p]
            index = (centre[s, k, 1] * width + centre[s, k, 0])[:, None] + patch_offsets[None]
            canvas.scatter_add_(2, index[:, None].expand(b, 3, -1), values[:, None] * colour[s, k, :, None])
        image = canvas.view(b, 3, width, width)[:, :, half:half + size, half:half + size]
        ramp = _t(gradient[s])[:, :, None, None]
        image = image + (torch.from_numpy(noise[s]).float() - 127.5) * (0.1 / 127.5)
        image += _t(background[s]) + ramp[:, :1] * axis[None, None, None, :] + ramp[:, 1:] * axis[None, None, :, None]
        images[s] = image.clamp_(0, 1).mul_(255).round_()
    return images


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def make_synthetic(num_classes: int, images_per_class: int, image_size: int, seed: int = 0) -> Dataset:
    """`images_per_class` training and max(4, images_per_class // 5) validation images per class."""
    if num_classes < 2 or images_per_class < 1 or image_size < 4:
        raise UserError(f"synthetic data needs num_classes >= 2, images_per_class >= 1 and image_size >= 4; "
                         f"got {num_classes}, {images_per_class}, {image_size} (set them in the profile or with "
                         "--set num_classes=8 --set images_per_class=48)")
    classes = _compositions(num_classes, seed)
    palette = _palette(seed)
    parts = {}
    for name, per_class, purpose in (("train", images_per_class, 2), ("val", max(4, images_per_class // 5), 3)):
        labels = np.repeat(np.arange(num_classes), per_class)
        images = _render(labels, classes, palette, image_size, _rng(seed, purpose))
        parts[name] = ImageSet(labels=torch.from_numpy(labels).long(), image_size=image_size, images=images)
    return Dataset(
        name="synthetic",
        classes=synthetic_classes(num_classes),
        train=parts["train"],
        val=parts["val"],
        natural=synthetic_natural(num_classes),
        info={"seed": seed, "images_per_class": images_per_class},
    )


def synthetic_classes(num_classes: int) -> list[str]:
    return [f"synthetic-{c:03d}" for c in range(num_classes)]


def synthetic_natural(num_classes: int) -> list[bool]:
    """The first half of the classes is the 'natural' family (curved parts, radial), the rest 'man-made'."""
    return [c < num_classes // 2 for c in range(num_classes)]
