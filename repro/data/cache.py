"""Decode a list of images once, in parallel, to uint8 tensors, and cache the result on disk.

The cache file is keyed by content: a hash of the source (the checksums that shards are verified against,
or file names with sizes and modification times), the image size and FORMAT, so that a changed source or a
changed decoder is noticed.
Files are written atomically (temporary file + os.replace) under a lock, so concurrent workers decode once.
"""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from PIL import Image

from repro.data.base import DataError
from repro.files import atomic_write
from repro.numerics import usable_cores

FORMAT = 1  # bump when decoding changes: old cache files are then ignored
PARALLEL_ABOVE = 4000  # images; below this, starting worker processes costs more than it saves
CHUNK = 512


def cache_dir() -> Path:
    return Path(os.environ.get("REPRO_CACHE") or Path.home() / ".cache" / "repro") / "datasets"


def content_key(source: object, image_size: int) -> str:
    """A hash of anything JSON-able describing the source, plus the size and the decoder's format."""
    text = json.dumps({"source": source, "image_size": image_size, "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def decode_image(source: bytes | str, size: int, name: str, hint: str) -> np.ndarray:
    """One image (JPEG/PNG bytes or a path) as uint8 [3, size, size]: RGB, shorter side resized to `size`
    with antialiasing, centre-cropped. A file that cannot be decoded is an error, never skipped."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.draft("RGB", (size, size))  # JPEG: let the decoder downscale big images by 1/2..1/8 first
            image = image.convert("RGB")  # greyscale, CMYK, palette -> RGB
            width, height = image.size
            scale = size / min(width, height)
            if scale != 1:
                new = (max(size, round(width * scale)), max(size, round(height * scale)))
                image = image.resize(new, Image.Resampling.BILINEAR)  # antialiased when shrinking
            left, top = (image.size[0] - size) // 2, (image.size[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(f"cannot decode image {name}: {error}. The file is corrupt or truncated; {hint}") from None


def _decode_chunk(args) -> np.ndarray:
    items, size, hint = args
    return np.stack([decode_image(source, size, name, hint) for name, source in items])


def decode_images(items: list[tuple[str, bytes | str]], size: int, *, hint: str, progress: bool = True,
                  desc: str = "decoding") -> torch.Tensor:
    """Decode (name, bytes-or-path) items to uint8 [N, 3, size, size], in order, over all available cores."""
    from tqdm import tqdm

    out = torch.empty((len(items), 3, size, size), dtype=torch.uint8)
    chunks = [(items[i:i + CHUNK], size, hint) for i in range(0, len(items), CHUNK)]
    workers = min(usable_cores(), len(chunks))
    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress, mininterval=1.0)
    with bar:
        if workers > 1 and len(items) > PARALLEL_ABOVE:
            with _pool(workers) as pool:
                _fill(out, pool.imap(_decode_chunk, chunks), bar)
                pool.close()  # the workers end on their own; the context's terminate() then has none to stop
                pool.join()
        else:
            _fill(out, map(_decode_chunk, chunks), bar)
    return out


def _pool(workers: int):
    """Worker processes for decoding. Fork where the platform has it: unlike spawn, it does not re-run the
    user's main script in every worker (a script without an `if __name__ == "__main__"` guard would
    otherwise load the dataset again in each worker). The workers use only PIL and numpy, never torch or
    OpenMP, so the parent's threads are harmless to them; Python 3.12+ warns about them all the same."""
    Image.init()  # import every image plugin now, not in the workers
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # SIGTERM stays blocked from the fork until _decoder_init: one that came before would meet the inherited
    # handler and be lost, and Pool.terminate() would wait for that worker for ever
    previous = _sigterm_mask(signal.SIG_BLOCK)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return multiprocessing.get_context(method).Pool(workers, initializer=_decoder_init)
    finally:
        _sigterm_mask(signal.SIG_SETMASK, previous)


def _sigterm_mask(how, signals=frozenset({signal.SIGTERM})) -> set:
    """`signal.pthread_sigmask` where the platform has it (not on Windows: there, nothing to block)."""
    return signal.pthread_sigmask(how, signals) if hasattr(signal, "pthread_sigmask") else set()


def _decoder_init() -> None:
    """A forked worker inherits the parent's Python SIGTERM handler (a study's, which only asks training to
    stop): SIGTERM must end a decoder, or Pool.terminate() waits for it for ever (a study hung so at its start).
    A SIGTERM sent before this ran waits, blocked (`_pool`), and ends the worker here."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _sigterm_mask(signal.SIG_UNBLOCK)


def _fill(out: torch.Tensor, decoded, bar) -> None:
    start = 0
    for array in decoded:
        out[start:start + len(array)] = torch.from_numpy(array)
        start += len(array)
        bar.update(len(array))


def cached(name: str, key: str, build, *, progress: bool = True) -> tuple[dict, Path]:
    """The dict of tensors cached under (name, key), built with `build()` and saved the first time."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create the dataset cache folder {folder} ({error}): set REPRO_CACHE to a "
                        "writable folder") from None
    path = folder / f"{name}-{key[:20]}.pt"
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                return torch.load(path, weights_only=True, mmap=True), path
            except Exception as error:  # a damaged cache file is derived data: rebuild it, loudly
                warnings.warn(f"dataset cache {path} is unreadable ({error}); decoding the images again")
        start = time.perf_counter()
        data = build()
        data["decode_seconds"] = time.perf_counter() - start
        atomic_write(path, lambda tmp: torch.save(data, tmp))
        if progress:
            size_mb = path.stat().st_size / 2**20
            print(f"decoded in {data['decode_seconds']:.1f} s; cached {size_mb:.0f} MiB at {path}")
    return torch.load(path, weights_only=True, mmap=True), path


def file_listing(paths: list[Path], relative_to: Path) -> list:
    """Names, sizes and modification times: enough to notice a changed, added or removed file."""
    listing = []
    for path in paths:
        stat = path.stat()
        listing.append([str(path.relative_to(relative_to)), stat.st_size, stat.st_mtime_ns])
    return listing
