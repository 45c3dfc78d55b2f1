"""What a report says about the session that produced it: the command, hardware, library versions, the suite's
commit, the profile. `session_info(...)` is the dict that results.json keeps under "session" and the page's
header shows.
"""
from __future__ import annotations

import importlib.metadata
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


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("repro", "torch", "torchvision", "numpy", "scipy", "statsmodels", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = getattr(sys.modules.get(name), "__version__", None) or "not installed"
    return out


def git_state() -> tuple[str | None, bool | None]:
    """(commit, uncommitted changes?) of the repository this package lives in; (None, None) outside one."""
    here = Path(__file__).resolve()

    def git(*args):
        return subprocess.run(["git", *args], cwd=here.parent, capture_output=True, text=True, timeout=10)

    try:
        top = git("rev-parse", "--show-toplevel")
        # an installed copy (site-packages inside some other repository) is not the suite's own checkout
        if top.returncode != 0 or not (Path(top.stdout.strip()) / "repro" / "report" / here.name).exists():
            return None, None
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:  # a repository without commits yet
            return None, None
        status = git("status", "--porcelain", "--untracked-files=no")
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def split_family(profile) -> str:
    parts = []
    if profile.random_splits:
        parts.append("random A/B splits (one per replicate)")
    if profile.natman:
        parts.append("natural / man-made")
    return " + ".join(parts) or "none"


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


def _iso(t: float | None) -> str | None:
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
            cpus.add(f"{cpu['cpu_model']} ({cpu['cpu_capability']}, bf16 {bf16})")
        torches.add(metrics.get("torch", "unknown"))
    return {"training_wall_seconds": max(ends) - min(starts) if starts else None,
            "training_started": _iso(min(starts, default=None)), "training_finished": _iso(max(ends, default=None)),
            "devices": sorted(devices), "precision": sorted(precisions), "cpus": sorted(cpus),
            "torch": sorted(torches)}


def cpu_arithmetic(profile=None) -> dict:
    """This machine's CPU instruction set and bf16 support, and the precision the profile trains in here."""
    from repro import numerics

    info = numerics.provenance()
    if profile is not None:
        info["precision"] = numerics.precision(profile, numerics.training_device(profile))
    return info


def session_info(command: str, profile=None, wall_seconds: float = 0.0, cached: int = 0, trained: int = 0,
                 study=None) -> dict:
    """Everything the report's header says about a session. `profile` is a repro.profiles.Profile or None;
    `study` (a repro.study.Study) adds how its runs were trained (`training_provenance`)."""
    commit, dirty = git_state()
    info = {
        "command": command,
        "wall_seconds": float(wall_seconds),
        "cached": int(cached),
        "trained": int(trained),
        "dataset": profile.dataset if profile else None,
        "split_family": split_family(profile) if profile else None,
        "replicates": profile.replicates if profile else None,
        "hardware": hardware(),
        "versions": versions(),
        "git_commit": commit,
        "git_dirty": dirty,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "notes": profile.notes if profile else None,
    }
    if profile is not None:
        info["profile"] = profile.to_dict()
    if sys.modules.get("torch") is not None:  # a session that never loaded torch trained nothing
        info["cpu"] = cpu_arithmetic(profile)
    if study is not None:
        info["training"] = training_provenance(study.results, study.specs)
        info["training_wall_seconds"] = info["training"]["training_wall_seconds"]
        if study.replicates is not None:  # a study run in pieces: what trained each replicate
            from repro.replicates import mixed_numerics

            info["replicate_records"] = study.replicates
            info["numerics_by_replicate"] = mixed_numerics(study.replicates)
    return info


