"""Files, in one place: the SHA-256 of a file, the atomic write (a temporary file, then a rename, so that a crash
leaves either the old file or the new one, never half of one), and whether a folder can be made and written."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: str | Path, write) -> None:
    """Write `path` through `write(tmp_path)`, flush it to the disk, then rename it into place. On an error the
    temporary file is removed and the error raised; the old file, if any, is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def folder_problem(path: str | Path, try_writing: bool = True) -> tuple[str, str] | None:
    """Why `path` cannot become a folder this user writes, as (what cannot be done, why), or None: a file in its
    way ("made"), or the nearest existing folder not writable ("written"). `try_writing` makes and removes a
    folder there when the permission bits allow it; without it the disk is only read."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return "made", f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "written", f"{existing} is not writable by this user"
    if not try_writing:
        return None
    # permission bits do not tell everything (root passes os.access on /proc, a read-only mount): try it
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".repro-probe-", dir=existing))
    except OSError as error:
        return "written", f"{existing} is not writable (a folder made in it failed: {error.strerror})"
    return None
