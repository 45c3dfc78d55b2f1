"""Tiny ImageNet (200 ILSVRC-2012 classes, 64x64 JPEGs), from an extracted folder or from its archives.

The root may hold (itself, or in a `tiny-imagenet-200/` folder inside it):
  - the extracted official tree: wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG,
    val/val_annotations.txt;
  - the gzip tar shards train-*.tar.gz + val-and-meta.tar.gz with a SHA256SUMS file (read in place, never
    extracted: no files are written next to the data, and a member that could escape a folder is refused);
  - the official tiny-imagenet-200.zip, which is extracted next to itself; downloaded (md5-checked) into
    $REPRO_CACHE/data (default ~/.cache/repro/data) when no data root is given (--data-root, REPRO_DATA): a
    root that is given must hold the data, and nothing is downloaded into it.
Images are decoded once at the requested size and cached (see cache.py); classes follow wnids.txt.
"""
from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

import torch

from repro.data.base import Dataset, DataError, ImageSet, natural_flags
from repro.data.cache import cache_dir, cached, content_key, decode_images, file_listing
from repro.files import sha256_file

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
FOLDER = "tiny-imagenet-200"
ZIP = "tiny-imagenet-200.zip"
META_SHARD = "val-and-meta.tar.gz"
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
LAYOUT = ("the official Tiny ImageNet layout: wnids.txt, train/<wnid>/images/<wnid>_<k>.JPEG, "
          "val/images/val_<k>.JPEG and val/val_annotations.txt (file<TAB>wnid<TAB>box)")
HOW_TO_GET = (f"Download {URL} (md5 {ZIP_MD5}) into that folder (it is extracted on first use), or point "
              "--data-root / REPRO_DATA at a folder holding tiny-imagenet-200/ or its shards "
              "(train-*.tar.gz, val-and-meta.tar.gz, SHA256SUMS), or leave both unset to have it downloaded "
              "into the cache")


# ----------------------------------------------------------------------------- finding the data

def base_folder(root: str | Path | None) -> Path:
    """The folder given, else REPRO_DATA, else a data folder in the user's cache (where a download lands)."""
    if root:
        return Path(root).expanduser()
    if os.environ.get("REPRO_DATA"):
        return Path(os.environ["REPRO_DATA"]).expanduser()
    return cache_dir().parent / "data"


def given(root: str | Path | None) -> bool:
    """Whether the user named where the data is (--data-root or REPRO_DATA): then it must be there, and nothing
    is downloaded; only the default folder in the cache is downloaded into."""
    return bool(root or os.environ.get("REPRO_DATA"))


def find(root: str | Path | None) -> tuple[str, Path] | None:
    """('tree' | 'shards' | 'zip', folder) of the data under `root` (in it or in its tiny-imagenet-200/), or
    None. Reads nothing but folder entries; extracts nothing."""
    base = base_folder(root)
    for folder in (base / FOLDER, base):
        if any((folder / name).exists() for name in ("wnids.txt", "train", "val")):
            return "tree", folder
        if (folder / META_SHARD).exists() or (folder / "SHA256SUMS").exists():
            return "shards", folder
        if (folder / ZIP).exists():
            return "zip", folder
    return None


def not_found(root: str | Path | None) -> str:
    base = base_folder(root)
    if not base.exists():
        return (f"the data root {base} does not exist: point --data-root / REPRO_DATA at the folder holding "
                f"{FOLDER}/ or its shards (train-*.tar.gz, {META_SHARD}, SHA256SUMS), or leave both unset to "
                f"download Tiny ImageNet into the cache ({cache_dir().parent / 'data'})")
    return (f"Tiny ImageNet not found in {base}: expected {FOLDER}/ ({LAYOUT}), its shards or {ZIP} there. "
            f"{HOW_TO_GET}.")


def locate(root: str | Path | None, download: bool = True) -> tuple[str, Path]:
    """('tree' | 'shards', folder) for the data under `root`, extracting the zip if need be; downloaded only
    into the default folder (no --data-root, no REPRO_DATA) and only when `download`."""
    found = find(root)
    if found is not None:
        kind, folder = found
        return ("tree", _extract_zip(folder / ZIP)) if kind == "zip" else found
    base = base_folder(root)
    if not download or given(root):
        raise DataError(not_found(root))
    try:
        download_zip(base)
    except Exception as error:  # no network, no space, read-only folder, bad checksum...
        raise DataError(f"Tiny ImageNet not found in {base} and the download failed ({error}). Expected "
                        f"{FOLDER}/ ({LAYOUT}), its shards or {ZIP} there. {HOW_TO_GET}.") from None
    return "tree", base / FOLDER


def download_zip(folder: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    folder.mkdir(parents=True, exist_ok=True)
    download_and_extract_archive(URL, download_root=str(folder), md5=ZIP_MD5)


def _extract_zip(zip_path: Path) -> Path:
    from torchvision.datasets.utils import extract_archive

    try:
        extract_archive(str(zip_path), str(zip_path.parent))
    except Exception as error:
        raise DataError(f"cannot extract {zip_path} ({error}): delete it and download it again from {URL}, "
                        f"or extract it yourself into {zip_path.parent}") from None
    return zip_path.parent / FOLDER


# ----------------------------------------------------------------------------- reading the entries

# An entry is (path parts relative to the dataset folder, bytes or path of the file, where it is for messages).

def _tree_entries(folder: Path) -> list[tuple[tuple[str, ...], Path, str]]:
    """The entries of every file of the extracted tree that the layout uses."""
    entries = []
    for name in ("wnids.txt", "val/val_annotations.txt"):
        if (folder / name).is_file():
            entries.append((tuple(name.split("/")), folder / name, str(folder / name)))
    for part in ("train", "val"):
        for directory, _, files in os.walk(folder / part):
            for file in files:
                path = Path(directory) / file
                entries.append((path.relative_to(folder).parts, path, str(path)))
    return entries


def check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Refuse a member that could write outside its folder if extracted: absolute, '..', links, devices."""
    parts = PurePosixPath(member.name).parts
    unsafe = (member.name.startswith(("/", "\\")) or ".." in parts or member.issym() or member.islnk()
              or not (member.isfile() or member.isdir()))
    try:  # the standard library's own 'data' extraction filter (Python 3.10.12+, 3.11.4+)
        if hasattr(tarfile, "data_filter"):
            tarfile.data_filter(member, "/destination")
    except tarfile.FilterError:
        unsafe = True
    if unsafe:
        raise DataError(f"{archive}: refusing unsafe archive member {member.name!r} (absolute path, '..', link "
                        "or special file). The archive is damaged or not the original: download it again.")


def _shard_entries(folder: Path, progress: bool) -> list[tuple[tuple[str, ...], bytes, str]]:
    from tqdm import tqdm

    entries = []
    for archive in tqdm(verify_shards(folder), desc="reading archives", unit="archive", disable=not progress):
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                check_member(member, archive)
                if member.isfile():
                    parts = _strip(PurePosixPath(member.name).parts)
                    entries.append((parts, tar.extractfile(member).read(), f"{archive}:{member.name}"))
    return entries


def _strip(parts: tuple[str, ...]) -> tuple[str, ...]:
    return parts[1:] if parts and parts[0] == FOLDER else parts


def _shard_sums(folder: Path) -> dict[str, str]:
    sums_file = folder / "SHA256SUMS"
    if not sums_file.is_file():
        raise DataError(f"{folder}: found Tiny ImageNet shards but no SHA256SUMS file next to them. Expected "
                        f"train-*.tar.gz, {META_SHARD} and SHA256SUMS (sha256sum output). {HOW_TO_GET}.")
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest.lower()
    if META_SHARD not in sums:
        raise DataError(f"{sums_file} does not list {META_SHARD}; expected the checksums of train-*.tar.gz and "
                        f"{META_SHARD}. {HOW_TO_GET}.")
    return sums


def verify_shards(folder: Path) -> list[Path]:
    """The archives listed in SHA256SUMS, after checking each one's checksum."""
    archives = []
    for name, digest in sorted(_shard_sums(folder).items()):
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing (listed in {folder / 'SHA256SUMS'}). {HOW_TO_GET}.")
        actual = sha256_file(path)
        if actual != digest:
            raise DataError(f"checksum mismatch for {path}: SHA256SUMS says {digest}, the file has {actual}. "
                            "The file is damaged or incomplete: download it again.")
        archives.append(path)
    return archives


# ----------------------------------------------------------------------------- the layout

def _text(source: bytes | Path) -> str:
    return source.decode() if isinstance(source, bytes) else source.read_text()


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def assemble(entries, where: Path) -> tuple[list[str], list, list[int], list, list[int]]:
    """Check the layout and order the images: (wnids, train items, train labels, val items, val labels).
    Items are (name, bytes-or-path); within a class, images are in sorted file-name order."""
    wnids_text = annotations_text = None
    train, val = [], {}
    for parts, source, origin in entries:
        if parts == ("wnids.txt",):
            wnids_text = _text(source)
        elif parts == ("val", "val_annotations.txt"):
            annotations_text = _text(source)
        elif len(parts) == 4 and parts[0] == "train" and parts[2] == "images" and _is_image(parts[3]):
            train.append((parts[1], parts[3], (origin, source)))
        elif len(parts) == 3 and parts[:2] == ("val", "images") and _is_image(parts[2]):
            val[parts[2]] = (origin, source)
    if wnids_text is None:
        raise DataError(f"{where}: no wnids.txt. Expected {LAYOUT}.")
    if annotations_text is None:
        raise DataError(f"{where}: no val/val_annotations.txt. Expected {LAYOUT}.")
    wnids = [line.strip() for line in wnids_text.splitlines() if line.strip()]
    label = {wnid: i for i, wnid in enumerate(wnids)}
    found = {wnid for wnid, _, _ in train}
    missing, extra = [w for w in wnids if w not in found], sorted(found - set(wnids))
    if missing or extra:
        raise DataError(f"{where}: the class folders of train/ do not match wnids.txt (no images for "
                        f"{missing[:5]}{'...' if len(missing) > 5 else ''}; not in wnids.txt: {extra[:5]}). "
                        f"Expected {LAYOUT}.")
    train.sort(key=lambda item: (label[item[0]], item[1]))
    train_items = [item for _, _, item in train]
    train_labels = [label[wnid] for wnid, _, _ in train]

    val_wnid = {}
    for line in annotations_text.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2:
            val_wnid[fields[0].strip()] = fields[1].strip()
    unlabelled = [name for name in val if val_wnid.get(name) not in label]
    if unlabelled or not val:
        raise DataError(f"{where}: {len(unlabelled)} validation images have no known class in "
                        f"val/val_annotations.txt (e.g. {unlabelled[:3]}), or there are none. Expected {LAYOUT}.")
    val_sorted = sorted(val, key=lambda name: (label[val_wnid[name]], name))
    val_items = [val[name] for name in val_sorted]
    val_labels = [label[val_wnid[name]] for name in val_sorted]
    return wnids, train_items, train_labels, val_items, val_labels


# ----------------------------------------------------------------------------- loading

def load_tiny_imagenet(root: str | Path | None, image_size: int, progress: bool = True) -> Dataset:
    kind, folder = locate(root)
    if kind == "shards":
        # keyed by the checksums the shards are verified against when decoded: the same content, whatever the
        # files' times (a data folder copied or mounted anew each day is not decoded again)
        source = {"sha256sums": _shard_sums(folder)}
        hint = f"download the shards in {folder} again (check them with `sha256sum -c SHA256SUMS`)"
    else:
        entries = _tree_entries(folder)
        source = file_listing([path for _, path, _ in entries], folder)
        hint = f"extract the archive into {folder.parent} again, or download {URL} again"

    def build() -> dict:
        found = _shard_entries(folder, progress) if kind == "shards" else entries
        wnids, train_items, train_labels, val_items, val_labels = assemble(found, folder)
        size = f"{image_size}px"
        return {
            "classes": wnids,
            "train_images": decode_images(train_items, image_size, hint=hint, progress=progress,
                                          desc=f"tiny-imagenet train {size}"),
            "train_labels": torch.tensor(train_labels, dtype=torch.long),
            "val_images": decode_images(val_items, image_size, hint=hint, progress=progress,
                                        desc=f"tiny-imagenet val {size}"),
            "val_labels": torch.tensor(val_labels, dtype=torch.long),
        }

    data, cache_file = cached(f"tiny-imagenet-{image_size}px", content_key(source, image_size), build,
                              progress=progress)
    classes = list(data["classes"])
    return Dataset(
        name="tiny-imagenet",
        classes=classes,
        train=ImageSet(labels=data["train_labels"], image_size=image_size, images=data["train_images"]),
        val=ImageSet(labels=data["val_labels"], image_size=image_size, images=data["val_images"]),
        natural=natural_flags(classes),
        info={"source": str(folder), "format": kind, "cache": str(cache_file),
              "decode_seconds": float(data["decode_seconds"])},
    )


def tiny_imagenet_classes(root: str | Path | None) -> list[str]:
    """The 200 WordNet ids in class order, read from wnids.txt without touching the images."""
    kind, folder = locate(root, download=False)
    if kind == "tree":
        if not (folder / "wnids.txt").is_file():
            raise DataError(f"{folder}: no wnids.txt. Expected {LAYOUT}.")
        text = (folder / "wnids.txt").read_text()
    else:
        archive = folder / META_SHARD
        if not archive.is_file():
            raise DataError(f"{archive} is missing: it holds wnids.txt. {HOW_TO_GET}.")
        text = None
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                check_member(member, archive)
                if member.isfile() and _strip(PurePosixPath(member.name).parts) == ("wnids.txt",):
                    text = tar.extractfile(member).read().decode()
                    break
        if text is None:
            raise DataError(f"{archive} holds no wnids.txt. Expected {LAYOUT}. {HOW_TO_GET}.")
    return [line.strip() for line in text.splitlines() if line.strip()]
