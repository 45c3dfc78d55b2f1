"""A study session: plan the runs some claims need, execute what is missing, read back the results table.

Shared by the `repro` command and the pytest plugin, so both train and report the same way.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from repro.execute import Outcome, execute
from repro.profiles import Profile, get_profile
from repro.results import Table, table_from_store
from repro.runs import Need, RunSpec, specs_for
from repro.store import Store


@dataclass
class Study:
    profile: Profile
    specs: list[RunSpec]
    store: Store
    outcome: Outcome
    table: Table
    started: float = field(default_factory=time.time)

    @property
    def wall_seconds(self) -> float:
        return time.time() - self.started


def resolve_profile(name: str, dataset: str | None = None, sets: list[str] | None = None) -> Profile:
    """The named profile with `--dataset` and `--set FIELD=VALUE` applied."""
    overrides = list(sets or [])
    if dataset:
        overrides.insert(0, f"dataset={dataset}")
    return get_profile(name, overrides)


def all_needs(claim_ids: list[str] | None = None) -> list[Need]:
    from repro.claims import CLAIMS

    known = {c.ID: c for c in CLAIMS}
    unknown = [c for c in claim_ids or [] if c not in known]
    if unknown:
        raise ValueError(f"unknown claim {unknown[0]!r}; choose from {', '.join(known)}")
    chosen = [known[c] for c in claim_ids] if claim_ids else list(known.values())
    needs: list[Need] = []
    for claim in chosen:
        needs += [n for n in claim.NEEDS if n not in needs]
    return needs


def plan(profile: Profile, needs: list[Need], store: Store) -> dict:
    specs = specs_for(profile, needs)
    cached = sum(store.is_done(s) for s in specs)
    return {"profile": profile.name, "dataset": profile.dataset, "runs": len(specs), "cached": cached,
            "to_train": len(specs) - cached, "specs": specs}


def machine_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers(profile: Profile) -> int:
    """CPU worker processes when none are asked for: one per `recipe.cpu_threads` cores. Each training
    process runs with exactly that many intra-op threads (part of the run key), so the numbers are the same
    on a machine of any size; the machine's size only sets how many networks train at once."""
    return max(1, machine_cores() // profile.recipe.cpu_threads)


def run_study(profile: Profile, needs: list[Need], store: Store, *, data_root: str | None = None,
              workers: int | None = None, gpus: int = 0, progress: bool = True) -> Study:
    started = time.time()
    if workers is None:
        workers = 1 if gpus else default_workers(profile)
    specs = specs_for(profile, needs)
    outcome = execute(specs, profile, store, data_root=data_root, workers=workers, gpus=gpus, progress=progress)
    table = table_from_store(store, specs, evidence=profile.name, trained=set(outcome.trained))
    return Study(profile, specs, store, outcome, table, started)
