"""The input pipeline of file-backed image sets (ILSVRC-2012): batches decoded in worker processes, a few
ahead of the training loop, in exactly the order the training loop would build them itself.

    stream = BatchStream(train, data_seed, per_epoch, batch_size, total, device)
    x, y = stream.get(i)                      # uint8 images and labels of iteration i, on the device

`Group.batch` uses it when the training set is file-backed (`images is None`); augmentation stays on the
device. Batch i holds the images that `batch_indices(data_seed, epoch, ...)` picks, so what a network learns
does not depend on the pipeline, the number of workers, or a resume in between. `val_chunks` does the same
for evaluation.

A one-time preprocessed cache at a reduced resolution (for `paper-fast`): `preprocess_imagenet` decodes
ILSVRC-2012 once into uint8 arrays (.npy, memory-mapped), and `use_preprocessed` (called by
`repro.worker.load_task`) turns a decode-on-demand dataset into row reads from them. The rows are made by the
same decoder, so the pixels are the same either way; only the time differs.

    python -m repro.loader --data-root /data/imagenet --image-size 144       # once per resolution
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from repro.data.base import Dataset, DataError, ImageSet
from repro.errors import UserError
from repro.files import atomic_write, atomic_write_text
from repro.runs import stable_seed

AHEAD = 2  # batches each worker decodes ahead (a batch of 256 at 256 px is 50 MB of shared memory)


def epoch_order(data_seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the n training images in `epoch`: a permutation seeded by (data_seed, epoch)."""
    g = torch.Generator().manual_seed(stable_seed(data_seed, "epoch", epoch))
    return torch.randperm(n, generator=g)


def batch_indices(data_seed: int, epoch: int, n: int, batch_size: int, j: int) -> torch.Tensor:
    """The images of batch j of `epoch` (the training loop and the pipeline both batch by this)."""
    return epoch_order(data_seed, epoch, n)[j * batch_size:(j + 1) * batch_size]


def loader_workers() -> int:
    """Decoding processes per training process: REPRO_LOADER_WORKERS, else every core but one of this
    process's share (the GPU executor sets REPRO_LOADER_WORKERS to split the cores between its workers)."""
    from repro.numerics import usable_cores

    text = os.environ.get("REPRO_LOADER_WORKERS")
    if text:
        if not text.isdigit():
            raise UserError(f"REPRO_LOADER_WORKERS must be a number of processes (0 = decode in the training "
                             f"process), got {text!r}")
        return int(text)
    return max(1, usable_cores() - 1)


class TrainBatches(torch.utils.data.Dataset):
    """Item k is iteration start + k: (iteration, uint8 images [B, 3, S, S], labels [B])."""

    def __init__(self, images: ImageSet, data_seed: int, per_epoch: int, batch_size: int, start: int, total: int):
        self.images, self.data_seed, self.per_epoch, self.batch_size = images, data_seed, per_epoch, batch_size
        self.start, self.total = start, total
        self.order = (None, None)  # (epoch, permutation): one permutation per epoch, not one per batch

    def __len__(self) -> int:
        return self.total - self.start

    def __getitem__(self, k: int):
        i = self.start + k
        epoch, j = divmod(i, self.per_epoch)
        if self.order[0] != epoch:
            self.order = (epoch, epoch_order(self.data_seed, epoch, len(self.images)))
        idx = self.order[1][j * self.batch_size:(j + 1) * self.batch_size]
        return i, self.images.get(idx), self.images.labels[idx]


class Chunks(torch.utils.data.Dataset):
    """Item k: images k*size .. (k+1)*size - 1 of a set, in order, with their labels."""

    def __init__(self, images: ImageSet, size: int):
        self.images, self.size = images, size

    def __len__(self) -> int:
        return -(-len(self.images) // self.size)

    def __getitem__(self, k: int):
        idx = torch.arange(k * self.size, min((k + 1) * self.size, len(self.images)))
        return self.images.get(idx), self.images.labels[idx]


def _loader(dataset, device: torch.device, workers: int) -> DataLoader:
    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                      pin_memory=device.type == "cuda", prefetch_factor=AHEAD if workers else None)


class BatchStream:
    """The training batches of one group, decoded ahead. `get(i)` must be asked in order; asking for another
    iteration than the next (a resume, the first call) restarts the workers there."""

    def __init__(self, images: ImageSet, data_seed: int, per_epoch: int, batch_size: int, total: int,
                 device, workers: int | None = None):
        self.images, self.data_seed, self.per_epoch, self.batch_size = images, data_seed, per_epoch, batch_size
        self.total, self.device = total, torch.device(device)
        self.workers = loader_workers() if workers is None else workers
        self.batches, self.next = None, None

    def get(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.batches is None or i != self.next:
            dataset = TrainBatches(self.images, self.data_seed, self.per_epoch, self.batch_size, i, self.total)
            self.batches = iter(_loader(dataset, self.device, self.workers))
        k, x, y = next(self.batches)
        assert k == i, f"the loader gave iteration {k} for {i}"
        self.next = i + 1
        if self.next == self.total:
            self.batches = None  # the last batch: let the workers go
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


def val_chunks(images: ImageSet, size: int, device, workers: int | None = None):
    """(uint8 images, labels) of a whole set in order, `size` at a time, on the device. In-memory sets are
    sliced here; file-backed ones are decoded ahead in worker processes."""
    device = torch.device(device)
    if images.images is not None:
        for lo in range(0, len(images), size):
            idx = torch.arange(lo, min(lo + size, len(images)))
            yield images.get(idx).to(device), images.labels[idx].to(device)
        return
    workers = loader_workers() if workers is None else workers
    for x, y in _loader(Chunks(images, size), device, workers):
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


# ---- the preprocessed cache ---------------------------------------------------------------------------
class MemmapRows:
    """`decode` of a preprocessed set: its `files` are row numbers of the uint8 array saved at `path`."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.array = None  # opened on first use, in each process

    def __call__(self, row: str, size: int) -> torch.Tensor:
        if self.array is None:
            self.array = np.load(self.path, mmap_mode="r")
        if self.array.shape[-1] != size:
            raise DataError(f"{self.path} holds {self.array.shape[-1]} px images, not {size} px")
        return torch.from_numpy(np.array(self.array[int(row)]))

    def rows(self, rows: list[str], size: int) -> torch.Tensor:
        """Many rows at once, read in file order (one pass over the memory-mapped array instead of a seek per
        image), returned in the order asked."""
        if self.array is None:
            self.array = np.load(self.path, mmap_mode="r")
        if self.array.shape[-1] != size:
            raise DataError(f"{self.path} holds {self.array.shape[-1]} px images, not {size} px")
        wanted = np.array([int(r) for r in rows], dtype=np.int64)
        order = np.argsort(wanted, kind="stable")
        block = np.empty((len(wanted), *self.array.shape[1:]), dtype=self.array.dtype)
        block[order] = self.array[wanted[order]]
        return torch.from_numpy(block)

    def __getstate__(self):
        return {"path": self.path, "array": None}


def preprocessed_folder(source: str | Path, image_size: int, cache_dir: str | Path | None = None) -> Path:
    """Where the preprocessed copy of the ILSVRC-2012 folder `source` at `image_size` lives."""
    from repro.data.cache import cache_dir as default_cache_dir

    tag = hashlib.sha256(str(Path(source).resolve()).encode()).hexdigest()[:12]
    return Path(cache_dir or default_cache_dir()) / f"imagenet-{image_size}px-{tag}"


def preprocess_imagenet(root: str | Path | None, image_size: int, cache_dir: str | Path | None = None, *,
                        progress: bool = True) -> Path:
    """Decode every image of ILSVRC-2012 (train/ and val/ under `root`) once at `image_size` into
    train.npy and val.npy (uint8 [N, 3, S, S]) plus files.json (the source file of each row, relative to the
    data folder), in parallel over all cores. Returns the folder; one already complete is returned at once.
    Size: 62 kB per image at 144 px, so about 80 GB for the 1.33M images."""
    from filelock import FileLock

    from repro.data.imagenet import load_imagenet

    dataset = load_imagenet(root, image_size)
    source = Path(dataset.info["source"])
    folder = preprocessed_folder(source, image_size, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".lock")):
        if (folder / "files.json").exists():
            return folder
        for part in ("train", "val"):
            _decode_into(folder / f"{part}.npy", getattr(dataset, part).files, image_size, progress, part)
        files = {part: [os.path.relpath(f, source) for f in getattr(dataset, part).files] for part in ("train", "val")}
        # written last: its presence means complete
        atomic_write_text(folder / "files.json", json.dumps({"source": str(source), "image_size": image_size, **files}))
    return folder


def _decode_into(path: Path, files: list[str], size: int, progress: bool, desc: str) -> None:
    from tqdm import tqdm

    from repro.data.cache import CHUNK, _decode_chunk, _pool
    from repro.numerics import usable_cores

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(files), 3, size, size))
        hint = "replace the file with a good copy of ILSVRC-2012, then preprocess again"
        chunks = [([(f, f) for f in files[i:i + CHUNK]], size, hint) for i in range(0, len(files), CHUNK)]
        with tqdm(total=len(files), desc=f"imagenet {desc} {size}px", unit="img", disable=not progress) as bar:
            start = 0
            workers = min(usable_cores(), len(chunks))
            pool = _pool(workers) if workers > 1 else None
            try:
                for array in (pool.imap(_decode_chunk, chunks) if pool else map(_decode_chunk, chunks)):
                    out[start:start + len(array)] = array
                    start += len(array)
                    bar.update(len(array))
            finally:
                if pool:
                    pool.terminate()
        out.flush()
        del out

    atomic_write(path, write)


def use_preprocessed(dataset: Dataset, cache_dir: str | Path | None = None) -> Dataset:
    """The same dataset read from its preprocessed copy, if `preprocess_imagenet` made one for this folder and
    image size; else the dataset as it is."""
    if dataset.train.files is None or "source" not in dataset.info:
        return dataset
    source = Path(dataset.info["source"])
    folder = preprocessed_folder(source, dataset.train.image_size, cache_dir)
    if not (folder / "files.json").exists():
        return dataset
    listing = json.loads((folder / "files.json").read_text())

    def rows(images: ImageSet, part: str) -> ImageSet:
        index = {name: row for row, name in enumerate(listing[part])}
        try:
            keys = [str(index[os.path.relpath(f, source)]) for f in images.files]
        except KeyError as missing:
            raise DataError(f"{folder} was preprocessed from other files than {source} holds now ({missing} is "
                            f"not in it): delete {folder} and run `python -m repro.loader --data-root {source} "
                            f"--image-size {images.image_size}` again") from None
        return ImageSet(labels=images.labels, image_size=images.image_size, files=keys,
                        decode=MemmapRows(folder / f"{part}.npy"))

    return Dataset(name=dataset.name, classes=dataset.classes, train=rows(dataset.train, "train"),
                   val=rows(dataset.val, "val"), natural=dataset.natural,
                   info={**dataset.info, "preprocessed": str(folder)})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m repro.loader", description=preprocess_imagenet.__doc__)
    p.add_argument("--data-root", default=None, help="ILSVRC-2012 folder (default: $REPRO_DATA)")
    p.add_argument("--image-size", type=int, required=True, help="e.g. 144 for paper-fast")
    p.add_argument("--cache-dir", default=None, help="default: $REPRO_CACHE/datasets")
    args = p.parse_args(argv)
    try:
        folder = preprocess_imagenet(args.data_root, args.image_size, args.cache_dir)
    except DataError as e:
        print(f"repro: error: {e}", file=sys.stderr)
        return 2
    print(f"preprocessed ILSVRC-2012 at {args.image_size}px: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
