"""Builders of tiny datasets on disk, in the layouts the loaders read: a few classes of a few 64px images."""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# three real ILSVRC-2012 WordNet ids: two natural (goldfish, tench) and one man-made (warplane)
WNIDS = ["n01443537", "n01440764", "n04552348"]


def jpeg_bytes(seed: int, size: int = 64, grey: bool = False) -> bytes:
    """A JPEG of a smooth random colour pattern (smooth, so that JPEG keeps it close)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
    if grey:
        image = image.convert("L")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=95)
    return out.getvalue()


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def make_tiny_imagenet_tree(root: Path, wnids=WNIDS, train_per_class: int = 3, val_per_class: int = 2) -> Path:
    """The official Tiny ImageNet layout under root/tiny-imagenet-200/. The first training image of the
    last class is greyscale."""
    tree = root / "tiny-imagenet-200"
    write(tree / "wnids.txt", "".join(f"{w}\n" for w in wnids))
    write(tree / "words.txt", "".join(f"{w}\tsome words\n" for w in wnids))
    annotations, k = [], 0
    for c, wnid in enumerate(wnids):
        for i in range(train_per_class):
            grey = c == len(wnids) - 1 and i == 0
            write(tree / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", jpeg_bytes(100 * c + i, grey=grey))
        write(tree / "train" / wnid / f"{wnid}_boxes.txt", "")
        for _ in range(val_per_class):
            write(tree / "val" / "images" / f"val_{k}.JPEG", jpeg_bytes(10_000 + k))
            annotations.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63\n")
            k += 1
    write(tree / "val" / "val_annotations.txt", "".join(annotations))
    return tree


def make_shards(tree: Path, out: Path, train_shards: int = 2) -> Path:
    """Pack an extracted tree as the shards of ../shared/data: train-<i>.tar.gz (the classes in wnids.txt
    order, spread over the shards), val-and-meta.tar.gz, and SHA256SUMS."""
    out.mkdir(parents=True, exist_ok=True)
    wnids = (tree / "wnids.txt").read_text().split()
    prefix = tree.name
    for i in range(train_shards):
        with tarfile.open(out / f"train-{i}.tar.gz", "w:gz") as tar:
            for wnid in wnids[i::train_shards]:
                tar.add(tree / "train" / wnid, arcname=f"{prefix}/train/{wnid}")
    with tarfile.open(out / "val-and-meta.tar.gz", "w:gz") as tar:
        tar.add(tree / "val", arcname=f"{prefix}/val")
        tar.add(tree / "wnids.txt", arcname=f"{prefix}/wnids.txt")
        tar.add(tree / "words.txt", arcname=f"{prefix}/words.txt")
    write_sums(out)
    return out


def write_sums(folder: Path) -> None:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.glob("*.tar.gz"))]
    write(folder / "SHA256SUMS", "".join(lines))


def make_image_folder(root: Path, classes: list[str], per_class: int = 3, suffix: str = ".jpg") -> Path:
    """torchvision's ImageFolder layout: root/train/<class>/, root/val/<class>/."""
    for part, count in (("train", per_class), ("val", 2)):
        for c, name in enumerate(classes):
            for i in range(count):
                write(root / part / name / f"img_{i}{suffix}", jpeg_bytes(1000 * c + i + (500 if part == "val" else 0)))
    return root
