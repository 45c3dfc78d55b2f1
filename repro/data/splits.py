"""The two halves of a dataset's classes, as in the original study.

`random:<seed>`: numpy's legacy generator seeded with [seed] draws C // 2 of the class indices without
replacement: that sorted list is half A, the rest half B. The original code called the global generator
(`numpy.random.seed([s])`, `numpy.random.choice(...)`); a private RandomState([s]) gives the same draws
without touching numpy's global state, so on ILSVRC-2012 (C = 1000, s = 0..3) these are the paper's halves.
`natman`: half A = the natural classes, half B = the man-made ones (the original index files, by WordNet id).
Within a half, classes are renumbered 0.. in increasing original index.
"""
from __future__ import annotations

import numpy as np

from repro.data.base import Dataset, ImageSet

FORMS = "'random:<seed>' (seed a non-negative integer, e.g. random:0) or 'natman'"


def split_classes(split: str, num_classes: int, natural: list[bool] | None = None) -> dict[str, list[int]]:
    """{"A": [...], "B": [...]}: sorted original class indices of each half."""
    if num_classes < 2:
        raise ValueError(f"a split needs at least 2 classes, got {num_classes}")
    if split.startswith("random:"):
        seed_text = split[len("random:"):]
        if not (seed_text.isascii() and seed_text.isdigit()) or int(seed_text) >= 2**32:
            raise ValueError(f"bad split {split!r}: the seed must be an integer from 0 to 2**32 - 1; use {FORMS}")
        draws = np.random.RandomState([int(seed_text)]).choice(np.arange(num_classes), num_classes // 2,
                                                               replace=False)
        a = sorted(int(c) for c in draws)
        chosen = set(a)
        return {"A": a, "B": [c for c in range(num_classes) if c not in chosen]}
    if split == "natman":
        if natural is None:
            raise ValueError("the natman split needs natural/man-made labels, and this dataset has none: its "
                             "classes must be ILSVRC-2012 WordNet ids (tiny-imagenet, imagenet, or a folder "
                             "dataset whose class folders are named by wnid) or synthetic; use a random:<seed> "
                             "split otherwise")
        if len(natural) != num_classes:
            raise ValueError(f"natural has {len(natural)} flags for {num_classes} classes")
        halves = {"A": [c for c in range(num_classes) if natural[c]],
                  "B": [c for c in range(num_classes) if not natural[c]]}
        if not halves["A"] or not halves["B"]:
            raise ValueError(f"the natman split needs natural and man-made classes; this dataset has "
                             f"{len(halves['A'])} natural and {len(halves['B'])} man-made")
        return halves
    raise ValueError(f"unknown split {split!r}; use {FORMS}")


def task_data(dataset: Dataset, split: str, half: str) -> tuple[ImageSet, ImageSet, int]:
    """The train and val images of one half, classes renumbered 0.. in increasing original index."""
    if half not in ("A", "B"):
        raise ValueError(f"half must be 'A' or 'B', got {half!r}")
    classes = split_classes(split, len(dataset.classes), dataset.natural)[half]
    return dataset.train.subset(classes), dataset.val.subset(classes), len(classes)
