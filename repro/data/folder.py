"""Any dataset in torchvision's ImageFolder layout: root/train/<class>/**/<image>, root/val/<class>/**/<image>.

Classes are the sorted folder names of train/ (val/ must have the same ones); images are decoded once and
cached like Tiny ImageNet. Class folders named by ILSVRC-2012 WordNet ids inherit the natural/man-made split.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from repro.data.base import Dataset, DataError, ImageSet, natural_flags
from repro.data.cache import cached, content_key, decode_images, file_listing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT = "torchvision's ImageFolder layout: train/<class>/<images> and val/<class>/<images>, the same classes in both"


def folder_classes(root: str | Path) -> list[str]:
    """The class names (sorted folder names of train/), checked against val/."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist. Expected {LAYOUT}.")
    found = {}
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise DataError(f"{root}: no {part}/ folder. Expected {LAYOUT}.")
        found[part] = sorted(d.name for d in os.scandir(root / part) if d.is_dir())
    if not found["train"]:
        raise DataError(f"{root / 'train'} has no class folders. Expected {LAYOUT}.")
    if found["train"] != found["val"]:
        only_train = sorted(set(found["train"]) - set(found["val"]))
        only_val = sorted(set(found["val"]) - set(found["train"]))
        raise DataError(f"{root}: train/ and val/ have different classes (only in train/: {only_train[:5]}; "
                        f"only in val/: {only_val[:5]}). Expected {LAYOUT}.")
    return found["train"]


def list_images(folder: Path) -> list[Path]:
    """Every image file under `folder`, in sorted path order."""
    files = []
    for directory, _, names in os.walk(folder):
        files += [Path(directory) / name for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(files)


def load_folder(root: str | Path, image_size: int, progress: bool = True) -> Dataset:
    root = Path(root).expanduser().resolve()
    classes = folder_classes(root)
    files = {}
    for part in ("train", "val"):
        files[part] = [(label, path) for label, name in enumerate(classes) for path in list_images(root / part / name)]
        present = {label for label, _ in files[part]}
        empty = [name for label, name in enumerate(classes) if label not in present]
        if empty:
            raise DataError(f"{root / part}: no images in class folders {empty[:5]} (image files end in "
                            f"{', '.join(IMAGE_SUFFIXES)}). Expected {LAYOUT}.")
    source = {part: file_listing([path for _, path in files[part]], root) for part in files}
    hint = f"replace the file in {root} with a readable image"

    def build() -> dict:
        data = {"classes": classes}
        for part in ("train", "val"):
            items = [(str(path), str(path)) for _, path in files[part]]
            data[f"{part}_images"] = decode_images(items, image_size, hint=hint, progress=progress,
                                                   desc=f"{root.name} {part} {image_size}px")
            data[f"{part}_labels"] = torch.tensor([label for label, _ in files[part]], dtype=torch.long)
        return data

    data, cache_file = cached(f"folder-{root.name}-{image_size}px", content_key(source, image_size),
                              build, progress=progress)
    return Dataset(
        name=f"folder:{root}",
        classes=list(data["classes"]),
        train=ImageSet(labels=data["train_labels"], image_size=image_size, images=data["train_images"]),
        val=ImageSet(labels=data["val_labels"], image_size=image_size, images=data["val_images"]),
        natural=natural_flags(classes),
        info={"source": str(root), "cache": str(cache_file), "decode_seconds": float(data["decode_seconds"])},
    )
