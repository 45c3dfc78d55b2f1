"""The in-memory (or file-backed) form every dataset loader returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from repro.errors import UserError


class DataError(UserError):
    """A dataset is missing, malformed or corrupt. The message names the path and what to do."""


@dataclass
class ImageSet:
    """Images and labels of one part (train or val). `images` is uint8 [N, 3, S, S] held in memory;
    file-backed sets (ILSVRC-2012) leave it None and decode `files` on demand in `get`."""

    labels: torch.Tensor  # int64 [N], class indices of the dataset (or of a half after `subset`)
    image_size: int
    images: torch.Tensor | None = None
    files: list[str] | None = None
    decode: object = None  # callable(path, size) -> uint8 [3, S, S] for file-backed sets

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, index: torch.Tensor) -> torch.Tensor:
        if self.images is not None:
            return self.images[index]
        files = [self.files[int(i)] for i in index]
        if hasattr(self.decode, "rows"):  # a preprocessed array: one sorted read of the whole batch
            return self.decode.rows(files, self.image_size)
        return torch.stack([self.decode(f, self.image_size) for f in files])

    def subset(self, classes: list[int]) -> "ImageSet":
        """Keep the images of `classes` (indices of this set), relabelled 0.. in the order given."""
        lookup = torch.full((int(self.labels.max()) + 1 if len(self.labels) else 1,), -1, dtype=torch.long)
        for new, old in enumerate(classes):
            if old < len(lookup):
                lookup[old] = new
        new_labels = lookup[self.labels]
        keep = (new_labels >= 0).nonzero().flatten()
        return ImageSet(
            labels=new_labels[keep],
            image_size=self.image_size,
            images=self.images[keep] if self.images is not None else None,
            files=[self.files[int(i)] for i in keep] if self.files is not None else None,
            decode=self.decode,
        )


@dataclass
class Dataset:
    name: str
    classes: list[str]  # class ids in index order (WordNet ids where the dataset has them)
    train: ImageSet
    val: ImageSet
    natural: list[bool] | None = None  # per class: natural (True) or man-made (False), where known
    info: dict = field(default_factory=dict)  # source path, cache file, content hash...


def first_per_class(images: ImageSet, k: int) -> ImageSet:
    """Keep the first `k` images of every class, in the set's order (0 = keep all)."""
    if k <= 0:
        return images
    order = torch.argsort(images.labels, stable=True)
    sorted_labels = images.labels[order]
    rank = torch.arange(len(order)) - torch.searchsorted(sorted_labels, sorted_labels)
    keep = order[rank < k].sort().values
    return ImageSet(
        labels=images.labels[keep],
        image_size=images.image_size,
        images=images.images[keep] if images.images is not None else None,
        files=[images.files[int(i)] for i in keep] if images.files is not None else None,
        decode=images.decode,
    )


def ilsvrc_synsets() -> list[str]:
    """The 1000 ILSVRC-2012 WordNet ids in class-index order."""
    return reference_lines("ilsvrc12_synsets.txt")


def natural_flags(wnids: list[str]) -> list[bool] | None:
    """Per class: natural (True) or man-made (False) under the original study's split, matched by WordNet id.
    None when some class is not an ILSVRC-2012 WordNet id."""
    index = {wnid: i for i, wnid in enumerate(ilsvrc_synsets())}
    if not wnids or any(w not in index for w in wnids):
        return None
    natural = {int(i) for i in reference_lines("ilsvrc12_half_nat_idx.txt")}
    return [index[w] in natural for w in wnids]


def reference_lines(name: str) -> list[str]:
    from importlib.resources import files

    text = files("repro.reference").joinpath(name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]
