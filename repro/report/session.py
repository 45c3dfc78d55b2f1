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


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    """CPU model and cores, and the CUDA devices when the session has torch loaded (a session that never
    loaded torch trained nothing, so it used no GPU)."""
    text = f"{_cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}"
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


def session_info(command: str, profile=None, wall_seconds: float = 0.0, cached: int = 0, trained: int = 0) -> dict:
    """Everything the report's header says about a session. `profile` is a repro.profiles.Profile or None."""
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
    return info


