"""The two halves of a dataset's classes, as in the original study (the split names they are drawn for:
repro.split_names).

`random:<seed>`: numpy's legacy generator seeded with [seed] draws C // 2 of the class indices without
replacement: that sorted list is half A, the rest half B. The original code called the global generator
(`numpy.random.seed([s])`, `numpy.random.choice(...)`); a private RandomState([s]) gives the same draws
without touching numpy's global state, so on ILSVRC-2012 (C = 1000, s = 0..3) these are the paper's halves.
`natman`: half A = the natural classes, half B = the man-made ones (the original index files, by WordNet id;
for a dataset whose classes are not WordNet ids, a file the user passes with --natman FILE, read by
`read_natman_file`). Within a half, classes are renumbered 0.. in increasing original index.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.base import Dataset, ImageSet
from repro.split_names import Split
from repro.errors import UserError

NO_NATMAN = "this dataset has no natural/man-made labels; pass --natman FILE"
NATMAN_FILE = ("one class name per line (the natural classes; every other class is man-made), or two columns: "
               "the class name and 'natural' or 'man-made'")
NATURAL_WORDS = {"natural": True, "man-made": False, "manmade": False, "man_made": False}


def read_natman_file(path) -> tuple[str, ...]:
    """The natural classes named in a --natman FILE (format: NATMAN_FILE; '#' starts a comment)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read the --natman file {path}: {e.strerror or e}") from None
    natural, seen = [], set()
    for number, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].replace(",", " ").split()
        if not fields:
            continue
        if len(fields) > 2 or (len(fields) == 2 and fields[1].lower() not in NATURAL_WORDS):
            raise UserError(f"{path}, line {number}: {raw.strip()!r} is not a class name, nor a class name and "
                             f"'natural' or 'man-made'. The file holds {NATMAN_FILE}.")
        if fields[0] in seen:
            raise UserError(f"{path}, line {number}: class {fields[0]!r} is listed twice")
        seen.add(fields[0])
        if len(fields) == 1 or NATURAL_WORDS[fields[1].lower()]:
            natural.append(fields[0])
    if not seen:
        raise UserError(f"the --natman file {path} names no class. It holds {NATMAN_FILE}.")
    return tuple(natural)


def natural_from_names(classes: list[str], natural_classes) -> list[bool]:
    """Per class of a dataset: is it one of `natural_classes` (the names of a --natman file)?"""
    unknown = sorted(set(natural_classes) - set(classes))
    if unknown:
        raise UserError(f"the --natman file names {len(unknown)} class(es) this dataset does not have "
                         f"({', '.join(unknown[:5])}); its classes are {', '.join(classes[:8])}"
                         f"{', ...' if len(classes) > 8 else ''}")
    chosen = set(natural_classes)
    return [c in chosen for c in classes]


def split_classes(split: str, num_classes: int, natural: list[bool] | None = None) -> dict[str, list[int]]:
    """{"A": [...], "B": [...]}: sorted original class indices of each half."""
    if num_classes < 2:
        raise UserError(f"a split needs at least 2 classes, got {num_classes}")
    parsed = Split.parse(split)
    if parsed.is_random:
        draws = np.random.RandomState([parsed.seed]).choice(np.arange(num_classes), num_classes // 2, replace=False)
        a = sorted(int(c) for c in draws)
        chosen = set(a)
        return {"A": a, "B": [c for c in range(num_classes) if c not in chosen]}
    if natural is None:
        raise UserError(f"the natman split needs natural/man-made labels: {NO_NATMAN} (its classes are "
                         f"not ILSVRC-2012 WordNet ids), or use a random:<seed> split")
    if len(natural) != num_classes:
        raise ValueError(f"natural has {len(natural)} flags for {num_classes} classes")
    halves = {"A": [c for c in range(num_classes) if natural[c]],
              "B": [c for c in range(num_classes) if not natural[c]]}
    if not halves["A"] or not halves["B"]:
        raise UserError(f"the natman split needs natural and man-made classes; this dataset has "
                         f"{len(halves['A'])} natural and {len(halves['B'])} man-made")
    return halves


def task_data(dataset: Dataset, split: str, half: str) -> tuple[ImageSet, ImageSet, int]:
    """The train and val images of one half, classes renumbered 0.. in increasing original index."""
    if half not in ("A", "B"):
        raise ValueError(f"half must be 'A' or 'B', got {half!r}")
    classes = split_classes(split, len(dataset.classes), dataset.natural)[half]
    return dataset.train.subset(classes), dataset.val.subset(classes), len(classes)
