"""What a report says about the session that produced it: the command, hardware, library versions, the suite's
commit, the profile. `session_info(...)` is the dict that results.json keeps under "session" and the page's
header shows.
"""
from __future__ import annotations

import importlib.metadata
import platform
import sys
from datetime import datetime

from repro.profiles import changed_settings
from repro.provenance import git_state, hardware, training_provenance
from repro.replicates import mixed_numerics, pieces_wall_seconds


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("repro", "torch", "torchvision", "numpy", "scipy", "statsmodels", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = getattr(sys.modules.get(name), "__version__", None) or "not installed"
    return out


def split_family(profile) -> str:
    parts = []
    if profile.random_splits:
        parts.append("random A/B splits (one per replicate)")
    if profile.natman:
        parts.append("natural / man-made")
    return " + ".join(parts) or "none"


def cpu_arithmetic(profile=None) -> dict:
    """This machine's CPU instruction set and bf16 support, and the precision the profile trains in here."""
    from repro import numerics

    info = numerics.cpu_summary()
    if profile is not None:
        info["precision"] = numerics.precision_for(profile, numerics.training_device(profile))
    return info


def profile_notes(profile) -> str:
    """The profile's notes, after what this session set differently from the profile as named: the notes describe
    the named profile, and a study run with `--set recipe.epochs=32` must not read as 16 epochs."""
    changed = changed_settings(profile)
    if not changed:
        return profile.notes
    return f"This session's `{profile.name}` profile sets {', '.join(changed)}; its notes, as named: {profile.notes}"


def session_info(command: str, profile=None, wall_seconds: float = 0.0, cached: int = 0, trained: int = 0,
                 study=None, outputs=()) -> dict:
    """Everything the report's header says about a session. `profile` is a repro.profiles.Profile or None;
    `study` (a repro.study.Study) adds how its runs were trained (`training_provenance`); `outputs` are the
    folders this session writes, whose changes are not a change to the suite's code (`git_state`)."""
    commit, dirty = git_state(outputs)
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
        "notes": profile_notes(profile) if profile else None,
    }
    if profile is not None:
        info["profile"] = profile.to_dict()
    if sys.modules.get("torch") is not None:  # a session that never loaded torch trained nothing
        info["cpu"] = cpu_arithmetic(profile)
    if study is not None:
        info["training"] = training_provenance(study.results, study.specs)
        info["training_wall_seconds"] = info["training"]["training_wall_seconds"]
        if study.replicates is not None:  # a study run in pieces: what trained each replicate
            info["replicate_records"] = study.replicates
            info["numerics_by_replicate"] = mixed_numerics(study.replicates)
            info["pieces_wall_seconds"] = pieces_wall_seconds(study.replicates)
    return info
