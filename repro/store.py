"""The run store: one folder per run and a SQLite index.

    <root>/runs/<key>/spec.json          what the run is
    <root>/runs/<key>/result.json        metrics + checksums (written last: its presence means finished)
    <root>/runs/<key>/weights.safetensors
    <root>/runs/<key>/checkpoint.safetensors + checkpoint.json   (while training; next-checkpoint.safetensors
                                                                  while one is being written)
    <root>/runs/<key>/progress.json      while training: how far it is, every half minute (the status line's)
    <root>/runs/<key>/log.txt
    <root>/index.sqlite                  one row per run, for `repro status` and quick queries
    <root>/quarantine/                   corrupt files moved aside (never deleted)

Every write goes to a temporary file first and is renamed into place, so a crash leaves either the old file
or the new one. A file whose checksum does not match is reported with its path, moved to quarantine, and
the run counts as not finished (it will be retrained). A finished run's status is read without reading its
weights (result.json's own checksum and the weights' size; see `Store.result`); the weights' checksum is
checked whenever they are loaded. Locks (one file per run) let several processes and
sessions share a store: each run is trained by exactly one of them.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from safetensors.torch import load, load_file, save_file

from repro.files import atomic_write, folder_problem, sha256_file
from repro.errors import UserError
from repro.runs import RunSpec, canonical


class StoreError(UserError):
    """The store cannot be read or written. The message names the path and what to do."""


class CorruptFileWarning(UserWarning):
    pass


def default_root() -> Path:
    if os.environ.get("REPRO_STORE"):
        return Path(os.environ["REPRO_STORE"])
    cache = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    return Path(cache) / "repro" / "store"


def _atomic_write(path: Path, write) -> None:
    """Write through `write(tmp_path)` then rename (repro.files.atomic_write); on a full disk, leave the old file
    and say so."""
    try:
        atomic_write(path, write)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreError(f"disk full while writing {path}: free some space and rerun the same command; "
                             "finished runs and the last checkpoint are kept") from e
        raise StoreError(f"could not write {path}: {e}") from e


def write_json(path: Path, obj) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, sort_keys=True)))


def _iteration_of(path: Path) -> tuple[int, int] | None:
    """(iteration, total) from a checkpoint's or progress note's JSON; None if it is absent or unreadable."""
    try:
        meta = json.loads(path.read_text())
        return int(meta["iteration"]), int(meta["total"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


PROGRESS_FILES = ("progress.json", "checkpoint.json")  # a run's progress note and its checkpoint's metadata


def _progress_in(run_dir: Path) -> tuple[int, int] | None:
    return max(filter(None, (_iteration_of(run_dir / name) for name in PROGRESS_FILES)), default=None)


# A started run that has noted nothing for this long is not being trained by any process (training notes every
# repro.train.NOTE_SECONDS): `repro status` calls it stopped, and the same command resumes it from its checkpoint.
STOPPED_AFTER_SECONDS = 300


def _last_noted(run_dir: Path) -> float | None:
    """When the run last noted how far it is (its progress note or checkpoint, whichever is newer)."""
    times = []
    for name in PROGRESS_FILES:
        try:
            times.append((run_dir / name).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=None)


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def _signature(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of a file, or None if it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_size, stat.st_mtime_ns


# run folder -> ((signature of result.json, signature of the weights), metrics): runs verified in this process
_VERIFIED: dict[Path, tuple[tuple, dict]] = {}


def check_store_path(root: str | Path | None) -> None:
    """Refuse a store path that cannot become a run store (a file, or under a folder this user cannot write),
    before anything is created or trained; leaves nothing behind."""
    root = Path(root) if root else default_root()
    if problem := folder_problem(root):
        raise StoreError(f"the run store {root} cannot be {problem[0]}: {problem[1]}. Choose another place with "
                         "--store PATH or REPRO_STORE.")


class Store:
    def __init__(self, root: str | Path | None = None, create: bool = True):
        """The store at `root` (default: $REPRO_STORE or ~/.cache/repro/store). `create=False` (what only reads:
        plan, status): nothing is created, and a store that does not exist reads as empty (`exists` False)."""
        self.root = Path(root) if root else default_root()
        self.exists = (self.root / "index.sqlite").is_file()
        if not create:
            return
        try:
            (self.root / "runs").mkdir(parents=True, exist_ok=True)
            (self.root / "locks").mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the run store at {self.root}: {e}. "
                             "Choose another place with --store PATH or REPRO_STORE.") from e
        self._init_index()
        self.exists = True

    # ---- paths -------------------------------------------------------------------------------------
    def run_dir(self, spec: RunSpec) -> Path:
        return self.run_dir_of(spec.key)

    def run_dir_of(self, key: str) -> Path:
        return self.root / "runs" / key

    # ---- index -------------------------------------------------------------------------------------
    @contextmanager
    def _db(self):
        con = sqlite3.connect(self.root / "index.sqlite", timeout=60)
        try:
            with con:
                yield con
        finally:
            con.close()

    def _init_index(self):
        with self._db() as con:
            con.execute("""CREATE TABLE IF NOT EXISTS runs (
                key TEXT PRIMARY KEY, label TEXT, spec TEXT, status TEXT, top1 REAL, final_top1 REAL,
                diverged INTEGER, seconds REAL, updated REAL)""")

    def _index(self, spec: RunSpec, status: str, metrics: dict | None = None):
        m = metrics or {}
        with self._db() as con:
            con.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?)",
                        (spec.key, spec.label, canonical(spec.to_dict()), status, m.get("top1"),
                         m.get("final_top1"), int(bool(m.get("diverged"))), m.get("train_seconds"), time.time()))

    def index_finished(self, spec: RunSpec, metrics: dict) -> None:
        """Make a finished run's row say so (a process killed between writing a result and indexing it
        leaves the row 'running')."""
        status = "diverged" if metrics.get("diverged") else "done"
        with self._db() as con:
            row = con.execute("SELECT status FROM runs WHERE key = ?", (spec.key,)).fetchone()
        if row is None or row[0] != status:
            self._index(spec, status, metrics)

    def index_rows(self) -> list[dict]:
        if not self.exists:
            return []
        with self._db() as con:
            cur = con.execute("SELECT key, label, status, top1, final_top1, diverged, seconds, updated FROM runs")
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, row)) for row in cur.fetchall()]
        for row in rows:  # how far the started ones are, and whether a process trains them now
            if row["status"] == "running":
                run_dir = self.run_dir_of(row["key"])
                row["progress"], noted = _progress_in(run_dir), _last_noted(run_dir)
                if noted is None or time.time() - noted > STOPPED_AFTER_SECONDS:
                    row["status"] = "stopped"
        return rows

    # ---- finished runs -------------------------------------------------------------------------------
    # Whether a run is finished is asked often (every queued group on every poll of the scheduler, every plan),
    # so it is decided without reading the weights: result.json intact (its own checksum) and the weights file
    # of the size recorded beside their checksum. A (size, mtime) seen verified before, in this process, is not
    # read again. The weights' full checksum is checked when they are loaded (`weights`): a file damaged in
    # place, its size unchanged, is caught there, set aside, and its run retrained by the next plan.
    def is_done(self, spec: RunSpec) -> bool:
        return self.result(spec) is not None

    def result(self, spec: RunSpec) -> dict | None:
        """The metrics of a finished run, verified; None if unfinished (or found corrupt and set aside)."""
        d = self.run_dir(spec)
        path, weights = d / "result.json", d / "weights.safetensors"
        signature = (_signature(path), _signature(weights))
        if signature[0] is None:
            return None
        seen = _VERIFIED.get(d)
        if seen is not None and seen[0] == signature:
            return dict(seen[1])
        try:
            record = json.loads(path.read_text())
            metrics = record["metrics"]
            if hashlib.sha256(canonical(metrics).encode()).hexdigest() != record["sha256"]:
                raise ValueError("checksum mismatch")
        except (ValueError, KeyError, TypeError) as e:
            self._quarantine(spec, path, f"unreadable result ({e})")
            return None
        # weights_bytes is absent from results stored before it was recorded: those are checksummed (once)
        size_as_saved = signature[1] is not None and signature[1][0] == metrics.get("weights_bytes")
        if not size_as_saved and (signature[1] is None or sha256_file(weights) != metrics["weights_sha256"]):
            self._quarantine(spec, weights, "weights missing or checksum mismatch")
            self._quarantine(spec, path, "its weights were corrupt")
            return None
        _VERIFIED[d] = (signature, metrics)
        return dict(metrics)

    def weights(self, spec: RunSpec) -> dict[str, torch.Tensor]:
        """A finished run's weights, their checksum verified as they are read."""
        metrics = self.result(spec)
        if metrics is None:
            raise StoreError(f"{spec.label} ({self.run_dir(spec)}) is not finished or was corrupt; "
                             "rerun the plan to (re)train it")
        path = self.run_dir(spec) / "weights.safetensors"
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != metrics["weights_sha256"]:
            _VERIFIED.pop(self.run_dir(spec), None)
            self._quarantine(spec, path, "checksum mismatch")
            self._quarantine(spec, self.run_dir(spec) / "result.json", "its weights were corrupt")
            raise StoreError(f"{spec.label}: its weights ({path}) were corrupt and are set aside; rerun the plan "
                             "to retrain it")
        return load(data)

    def save_result(self, spec: RunSpec, weights: dict[str, torch.Tensor], metrics: dict) -> None:
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        write_json(d / "spec.json", spec.to_dict())
        write_tensors(d / "weights.safetensors", weights)
        metrics = {**metrics, "key": spec.key, "weights_sha256": sha256_file(d / "weights.safetensors"),
                   "weights_bytes": (d / "weights.safetensors").stat().st_size}
        record = {"metrics": metrics, "sha256": hashlib.sha256(canonical(metrics).encode()).hexdigest()}
        write_json(d / "result.json", record)
        self.clear_checkpoint(spec)
        self._index(spec, "diverged" if metrics.get("diverged") else "done", metrics)

    # ---- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, spec: RunSpec, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        self._started(spec)
        # checkpoint.json is the commit point: the tensors go to next-checkpoint.safetensors first, then
        # checkpoint.json (with their checksum) replaces the old one, then they move into place. A process
        # killed between two steps leaves a checkpoint.json that matches one of the two tensor files.
        staged = d / "next-checkpoint.safetensors"
        write_tensors(staged, tensors)
        meta = {**meta, "tensors_sha256": sha256_file(staged)}
        write_json(d / "checkpoint.json", meta)
        os.replace(staged, d / "checkpoint.safetensors")

    def load_checkpoint(self, spec: RunSpec) -> tuple[dict[str, torch.Tensor], dict] | None:
        d = self.run_dir(spec)
        meta_path, tensor_path = d / "checkpoint.json", d / "checkpoint.safetensors"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            staged = d / "next-checkpoint.safetensors"
            if staged.exists() and sha256_file(staged) == meta["tensors_sha256"]:
                os.replace(staged, tensor_path)  # killed after the commit, before the move
            if not tensor_path.exists() or sha256_file(tensor_path) != meta["tensors_sha256"]:
                raise ValueError("checksum mismatch")
            return load_file(str(tensor_path)), meta
        except (ValueError, KeyError, TypeError, OSError) as e:
            self._quarantine(spec, tensor_path, f"corrupt checkpoint ({e}); training restarts from scratch")
            self._quarantine(spec, meta_path, "its checkpoint was corrupt")
            return None

    def clear_checkpoint(self, spec: RunSpec) -> None:
        for name in ("checkpoint.safetensors", "checkpoint.json", "next-checkpoint.safetensors", "progress.json"):
            (self.run_dir(spec) / name).unlink(missing_ok=True)
        for tmp in self.run_dir(spec).glob(".*.tmp"):  # left by a killed process (we hold the run's lock)
            tmp.unlink(missing_ok=True)

    def _started(self, spec: RunSpec) -> None:
        """A run's first checkpoint or progress note: its spec written and the index told it is under way."""
        if not (self.run_dir(spec) / "spec.json").exists():
            write_json(self.run_dir(spec) / "spec.json", spec.to_dict())
            self._index(spec, "running")

    def checkpoint_progress(self, spec: RunSpec) -> tuple[int, int] | None:
        """(iteration, total iterations) at the run's last checkpoint, where it resumes from; None without one
        (or from a checkpoint written before the total was kept in it)."""
        return _iteration_of(self.run_dir(spec) / "checkpoint.json")

    def write_progress(self, spec: RunSpec, iteration: int, total: int) -> None:
        """How far a training run is now, for the status line. Not a point to resume from (its checkpoint is):
        checkpoints come every few minutes, this every half minute. The first note indexes the run as started
        (`repro status` lists it from its first iteration on)."""
        d = self.run_dir(spec)
        try:
            d.mkdir(parents=True, exist_ok=True)
            write_json(d / "progress.json", {"iteration": iteration, "total": total})
            self._started(spec)
        except (OSError, StoreError, sqlite3.Error):  # a full disk stops the next checkpoint, loudly: not a note
            pass

    def progress(self, spec: RunSpec) -> tuple[int, int] | None:
        """(iteration, total iterations) as far as the run has trained: its progress note or its checkpoint,
        whichever is further (a checkpoint is written in the background, after the note of its iteration);
        None without either. A run resumed after a crash notes its first iteration at once."""
        return _progress_in(self.run_dir(spec))

    def append_log(self, spec: RunSpec, line: str) -> None:
        d = self.run_dir(spec)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "log.txt", "a") as f:
            f.write(line.rstrip("\n") + "\n")

    def _quarantine(self, spec: RunSpec, path: Path, why: str) -> None:
        if not path.exists():
            return
        dest = self.root / "quarantine" / f"{spec.key}-{int(time.time() * 1000)}-{path.name}"
        dest.parent.mkdir(exist_ok=True)
        shutil.move(str(path), dest)
        warnings.warn(f"{path}: {why}; moved to {dest}, the run will be retrained", CorruptFileWarning,
                      stacklevel=3)

    # ---- locks -------------------------------------------------------------------------------------
    def try_lock(self, spec: RunSpec) -> FileLock | None:
        """Claim a run for training; None if another process holds it."""
        lock = FileLock(str(self.root / "locks" / f"{spec.key}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock
