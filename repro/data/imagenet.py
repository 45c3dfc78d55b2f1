"""ILSVRC-2012 in the usual folder layout: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG.

Classes are indexed in the order of the 1000 WordNet ids of ilsvrc12_synsets.txt (restricted to the
classes present, which must be the same in train/ and val/). The set is file-backed: images are decoded on
demand by `decode_file` (shorter side resized to the image size, centre crop), never all held in memory.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from repro.data.base import Dataset, DataError, ImageSet, ilsvrc_synsets, natural_flags
from repro.data.cache import decode_image

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
LAYOUT = ("ILSVRC-2012 in class folders: train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, folders named by the "
          "WordNet ids of ilsvrc12_synsets.txt")
HOW_TO_GET = ("Download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org "
              "(registration needed), extract each class's tar into train/<wnid>/, sort the validation images "
              "into val/<wnid>/ (e.g. with the widely used valprep.sh), and point --data-root / REPRO_DATA at the "
              "folder holding train/ and val/ (or at its parent, as imagenet/)")


def decode_file(path: str, size: int) -> torch.Tensor:
    """One image file as uint8 [3, size, size] (top-level, so that DataLoader workers can pickle it)."""
    return torch.from_numpy(decode_image(path, size, path, "replace the file with a good copy of ILSVRC-2012"))


def locate(root: str | Path | None) -> Path:
    if root:
        base = Path(root).expanduser()
    elif os.environ.get("REPRO_DATA"):
        base = Path(os.environ["REPRO_DATA"]).expanduser()
    else:
        raise DataError(f"no ILSVRC-2012 folder given: set --data-root or REPRO_DATA. {HOW_TO_GET}.")
    for folder in (base / "imagenet", base):
        if (folder / "train").is_dir() and (folder / "val").is_dir():
            return folder
    raise DataError(f"ILSVRC-2012 not found in {base} (nor in {base / 'imagenet'}): expected {LAYOUT}. {HOW_TO_GET}.")


def imagenet_classes(root: str | Path | None) -> list[str]:
    """The WordNet ids present, in the order of ilsvrc12_synsets.txt."""
    folder = locate(root)
    synsets = ilsvrc_synsets()
    found = {}
    for part in ("train", "val"):
        entries = list(os.scandir(folder / part))
        loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES)]
        if loose:
            raise DataError(f"{folder / part} holds images directly (e.g. {loose[0]}), not in class folders. "
                            f"Expected {LAYOUT}. {HOW_TO_GET}.")
        found[part] = {e.name for e in entries if e.is_dir()}
        unknown = sorted(found[part] - set(synsets))
        if unknown:
            raise DataError(f"{folder / part}: folders {unknown[:5]} are not ILSVRC-2012 WordNet ids. "
                            f"Expected {LAYOUT}.")
    if not found["train"] or found["train"] != found["val"]:
        missing = sorted(found["train"] ^ found["val"])
        raise DataError(f"{folder}: classes missing from train/ or val/ (e.g. {missing[:5]}; train/ has "
                        f"{len(found['train'])} classes, val/ {len(found['val'])}). Expected {LAYOUT}. {HOW_TO_GET}.")
    return [wnid for wnid in synsets if wnid in found["train"]]


def _image_set(folder: Path, classes: list[str], size: int, per_class: int) -> ImageSet:
    files, labels = [], []
    for label, wnid in enumerate(classes):
        names = sorted(e.name for e in os.scandir(folder / wnid) if e.name.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise DataError(f"{folder / wnid} holds no images. Expected {LAYOUT}. {HOW_TO_GET}.")
        if per_class > 0:
            names = names[:per_class]
        files += [str(folder / wnid / name) for name in names]
        labels += [label] * len(names)
    return ImageSet(labels=torch.tensor(labels, dtype=torch.long), image_size=size, files=files, decode=decode_file)


def load_imagenet(root: str | Path | None, image_size: int, train_per_class: int = 0,
                  val_per_class: int = 0) -> Dataset:
    folder = locate(root)
    classes = imagenet_classes(folder)
    return Dataset(
        name="imagenet",
        classes=classes,
        train=_image_set(folder / "train", classes, image_size, train_per_class),
        val=_image_set(folder / "val", classes, image_size, val_per_class),
        natural=natural_flags(classes),
        info={"source": str(folder), "missing_classes": 1000 - len(classes)},
    )
