"""Datasets: synthetic, tiny-imagenet, imagenet and folder:PATH, all returned as a `Dataset`.

    dataset = load_dataset("tiny-imagenet", image_size=32)        # data found via REPRO_DATA
    train, val, num_classes = task_data(dataset, "random:0", "A")  # one half, classes renumbered 0..
"""
from __future__ import annotations

import os
from pathlib import Path

from repro.data.base import (Dataset, DataError, ImageSet, first_per_class, ilsvrc_synsets, natural_flags,
                             reference_lines)
from repro.data.splits import split_classes, task_data
from repro.errors import UserError
from repro.profiles import DATASET_NAMES

__all__ = ["Dataset", "DataError", "ImageSet", "check_data", "dataset_classes", "load_dataset", "resolve_root",
           "shipped_classes", "split_classes", "task_data"]


def load_dataset(name: str, *, root: str | None = None, image_size: int, num_classes: int = 0,
                 images_per_class: int = 0, train_per_class: int = 0, val_per_class: int = 0, seed: int = 0,
                 progress: bool = True) -> Dataset:
    """The dataset `name` at `image_size`. `num_classes`, `images_per_class` and `seed` shape the synthetic
    data only; `train_per_class` / `val_per_class` (0 = all) keep the first k images of every class in
    sorted file-name order. `root` (default REPRO_DATA) is where tiny-imagenet and imagenet are found."""
    if name == "synthetic":
        from repro.data.synthetic import make_synthetic

        dataset = make_synthetic(num_classes, images_per_class, image_size, seed)
    elif name == "tiny-imagenet":
        from repro.data.tiny_imagenet import load_tiny_imagenet

        dataset = load_tiny_imagenet(root, image_size, progress)
    elif name == "imagenet":
        from repro.data.imagenet import load_imagenet

        return load_imagenet(root, image_size, train_per_class, val_per_class)  # trims while listing files
    elif name.startswith("folder:"):
        from repro.data.folder import load_folder

        dataset = load_folder(resolve_root(name, root), image_size, progress)
    else:
        raise UserError(f"unknown dataset {name!r}; use {DATASET_NAMES}")
    dataset.train = first_per_class(dataset.train, train_per_class)
    dataset.val = first_per_class(dataset.val, val_per_class)
    return dataset


def resolve_root(name: str, root: str | None = None) -> Path | None:
    """The folder a dataset is read from: PATH of folder:PATH, else `root`, else REPRO_DATA (None for synthetic)."""
    if name == "synthetic":
        return None
    if name.startswith("folder:"):
        if not name[len("folder:"):]:
            raise UserError("folder datasets are named folder:PATH, with PATH the folder holding train/ and val/")
        return Path(name[len("folder:"):]).expanduser()
    if name not in ("tiny-imagenet", "imagenet"):
        raise UserError(f"unknown dataset {name!r}; use {DATASET_NAMES}")
    if root:
        return Path(root).expanduser()
    return Path(os.environ["REPRO_DATA"]).expanduser() if os.environ.get("REPRO_DATA") else None


def check_data(name: str, root: str | None = None) -> None:
    """Refuse, before anything is trained or created, a dataset that is not where it is said to be: a data root
    that does not exist or holds no Tiny ImageNet (nothing is downloaded into a folder the user named), no
    ILSVRC-2012 folder, a folder dataset without its train/ and val/ class folders. Reads folder entries only."""
    if name == "tiny-imagenet":
        from repro.data.tiny_imagenet import find, given, not_found

        if given(root) and find(root) is None:
            raise DataError(not_found(root))
    elif name == "imagenet":
        from repro.data.imagenet import locate

        locate(root)
    elif name.startswith("folder:"):
        from repro.data.folder import folder_classes

        folder_classes(resolve_root(name, root))
    elif root and not Path(root).expanduser().exists():
        raise DataError(f"the data root {root} does not exist (the {name} dataset reads none): leave --data-root "
                        "out, or point it at the data")


def dataset_classes(name: str, root: str | None = None, *, num_classes: int = 8) -> tuple[list[str], list[bool] | None]:
    """Class ids and natural flags, without decoding any image. `num_classes` is for synthetic only."""
    if name == "synthetic":
        from repro.data.synthetic import synthetic_classes, synthetic_natural

        return synthetic_classes(num_classes), synthetic_natural(num_classes)
    if name == "tiny-imagenet":
        from repro.data.tiny_imagenet import tiny_imagenet_classes

        classes = tiny_imagenet_classes(root)
    elif name == "imagenet":
        from repro.data.imagenet import imagenet_classes

        classes = imagenet_classes(root)
    elif name.startswith("folder:"):
        from repro.data.folder import folder_classes

        classes = folder_classes(resolve_root(name, root))
    else:
        raise UserError(f"unknown dataset {name!r}; use {DATASET_NAMES}")
    return classes, natural_flags(classes)


def shipped_classes(name: str, root: str | None = None, *, num_classes: int = 8) -> tuple[list[str], list[bool] | None]:
    """Like `dataset_classes`, but imagenet and tiny-imagenet from the class lists shipped with the package (the
    1000 ILSVRC-2012 synsets; Tiny ImageNet's wnids.txt), so their halves are known without the images."""
    if name == "imagenet":
        classes = ilsvrc_synsets()
    elif name == "tiny-imagenet":
        classes = reference_lines("tiny_imagenet_wnids.txt")
    else:
        return dataset_classes(name, root, num_classes=num_classes)
    return classes, natural_flags(classes)
