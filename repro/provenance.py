"""Where results come from: this machine's hardware, the suite's commit, and how a set of finished runs was
trained (from the runs' own records). A study folder's replicate records (repro.replicates) and a report's
header (repro.report.session) both say it.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from repro.numerics import cpu_model


def hardware() -> str:
    """CPU model and cores, and the CUDA devices when the session has torch loaded (a session that never
    loaded torch trained nothing, so it used no GPU)."""
    text = f"{cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        names = Counter(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        text += "; GPUs: " + ", ".join(f"{count} x {name}" for name, count in names.items())
    return text


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)


def git_state(outputs=()) -> tuple[str | None, bool | None]:
    """(commit, uncommitted changes?) of the repository this package lives in; (None, None) outside one.
    Changes under `outputs` (folders the suite itself writes, e.g. a study folder's records) do not count."""
    here = Path(__file__).resolve()
    try:
        found = _git(here.parent, "rev-parse", "--show-toplevel")
        top = Path(found.stdout.strip())
        # an installed copy (site-packages inside some other repository) is not the suite's own checkout
        if found.returncode != 0 or not (top / "repro" / here.name).exists():
            return None, None
        commit = _git(here.parent, "rev-parse", "HEAD")
        if commit.returncode != 0:  # a repository without commits yet
            return None, None
        return commit.stdout.strip(), has_changes(top, outputs)
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def has_changes(top: Path, outputs=()) -> bool:
    """Whether tracked files of the repository at `top` differ from its commit, outside the `outputs` folders."""
    top = top.resolve()
    resolved = (Path(p).resolve() for p in outputs)
    # the whole checkout is never an output folder
    excluded = [f":(exclude){p.relative_to(top)}" for p in resolved if p != top and p.is_relative_to(top)]
    status = _git(top, "status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return bool(status.stdout.strip())


def _log_times(store, spec) -> tuple[float | None, float | None]:
    """(start, end) of a run's training from its log (runs trained before their metrics kept the times)."""
    start = end = None
    try:
        lines = (store.run_dir(spec) / "log.txt").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        stamp, _, rest = line[:19], line[19:20], line[20:]
        try:
            t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").timestamp()
        except ValueError:
            continue
        if rest.startswith("start ") and start is None:
            start = t
        elif rest.startswith("finished"):
            end = t
    return start, end


def iso_time(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def training_provenance(store, specs) -> dict:
    """How the study's finished runs were trained, from their own records: the training's wall time (the first
    start to the last finish, which spans the pauses of a study trained over several sessions), and the devices,
    precisions, CPUs and torch versions that trained them."""
    starts, ends, devices, precisions, cpus, torches = [], [], set(), set(), set(), set()
    for spec in specs:
        metrics = store.result(spec)
        if metrics is None:
            continue
        start, end = metrics.get("started"), metrics.get("finished")
        if start is None or end is None:
            start, end = _log_times(store, spec)
        if start is not None and end is not None:
            starts.append(start)
            ends.append(end)
        devices.add(metrics.get("device", "unknown"))
        precisions.add(metrics.get("precision") or ("bf16" if metrics.get("autocast") == "bf16" else "fp32"))
        cpu = metrics.get("cpu")
        if cpu:
            bf16 = "native" if cpu["native_bf16"] else "not native"
            family = f"{cpu['cpu_family']}, " if cpu.get("cpu_family") else ""
            cpus.add(f"{cpu['cpu_model']} ({family}{cpu['cpu_capability']}, bf16 {bf16})")
        torches.add(metrics.get("torch", "unknown"))
    return {"training_wall_seconds": max(ends) - min(starts) if starts else None,
            "training_started": iso_time(min(starts, default=None)),
            "training_finished": iso_time(max(ends, default=None)),
            "devices": sorted(devices), "precision": sorted(precisions), "cpus": sorted(cpus),
            "torch": sorted(torches)}
