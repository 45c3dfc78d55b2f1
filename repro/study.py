"""A study session: plan the runs some claims need, execute what is missing, read back the results table.

Shared by the `repro` command and the pytest plugin, so both train and report the same way. A claim whose
runs are not all finished (a study stopped half way, one run with --claims, natural/man-made runs a dataset
cannot have) is not judged on what is there: `settle` makes its verdict inconclusive and says what it waits for.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field

from repro.execute import Outcome, execute
from repro.profiles import Profile, get_profile
from repro.results import Table, table_from_store
from repro.runs import Need, RunSpec, specs_for
from repro.stats import Verdict
from repro.store import Store


@dataclass
class Study:
    profile: Profile
    specs: list[RunSpec]  # the planned runs (of every claim the session reports on)
    store: Store
    outcome: Outcome
    table: Table  # the planned runs that are finished
    started: float = field(default_factory=time.time)
    left_out: dict[str, str] = field(default_factory=dict)  # split family -> why none of its runs is planned

    @property
    def wall_seconds(self) -> float:
        return time.time() - self.started

    @property
    def missing(self) -> list[RunSpec]:
        """Planned runs that are not finished."""
        finished = {r.key for r in self.table.rows}
        return [s for s in self.specs if s.key not in finished]


def resolve_profile(name: str, dataset: str | None = None, sets: list[str] | None = None,
                    natman: str | None = None) -> Profile:
    """The named profile with `--dataset`, `--set FIELD=VALUE` and `--natman FILE` applied."""
    overrides = list(sets or [])
    if dataset:
        overrides.insert(0, f"dataset={dataset}")
    profile = get_profile(name, overrides)
    if natman:
        from repro.data.splits import read_natman_file

        profile = dataclasses.replace(profile, natural_classes=read_natman_file(natman))
    return profile


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


def natman_problem(profile: Profile, data_root: str | None = None) -> str | None:
    """Why the profile's dataset cannot have natural/man-made runs, or None. Only a folder dataset can lack
    labels (synthetic, tiny-imagenet and imagenet have them by construction), so nothing is read otherwise.
    A --natman file is checked against the dataset's classes here, before anything is trained."""
    from repro.data import dataset_classes
    from repro.data.splits import NO_NATMAN, natural_from_names, split_classes

    if not profile.natman:
        return None
    if profile.natural_classes:
        classes, _ = dataset_classes(profile.dataset, data_root, num_classes=profile.num_classes or 8)
        split_classes("natman", len(classes), natural_from_names(classes, profile.natural_classes))
        return None
    if profile.dataset.startswith("folder:"):
        _, natural = dataset_classes(profile.dataset, data_root)
        return NO_NATMAN if natural is None else None
    return None


def plannable(profile: Profile, needs: list[Need], data_root: str | None = None) -> tuple[list[Need], dict]:
    """(the needs that can be planned on this dataset, {split family: why it is left out})."""
    problem = natman_problem(profile, data_root)
    if problem is None:
        return list(needs), {}
    return [n for n in needs if n.family != "natman"], {"natman": problem}


def plan(profile: Profile, needs: list[Need], store: Store, data_root: str | None = None) -> dict:
    needs, left_out = plannable(profile, needs, data_root)
    specs = specs_for(profile, needs)
    cached = sum(store.is_done(s) for s in specs)
    return {"profile": profile.name, "dataset": profile.dataset, "runs": len(specs), "cached": cached,
            "to_train": len(specs) - cached, "specs": specs, "left_out": left_out}


def read_study(profile: Profile, needs: list[Need], store: Store, outcome: Outcome | None = None, *,
               data_root: str | None = None, started: float | None = None) -> Study:
    """The study of `needs` as the store holds it now (nothing is trained)."""
    needs, left_out = plannable(profile, needs, data_root)
    specs = specs_for(profile, needs)
    outcome = outcome or Outcome()
    table = table_from_store(store, specs, evidence=profile.name, trained=set(outcome.trained))
    return Study(profile, specs, store, outcome, table, started or time.time(), left_out)


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
              workers: int | None = None, gpus: int = 0, progress: bool = True,
              report_needs: list[Need] | None = None) -> Study:
    """Train what `needs` call for and is missing; the study of `report_needs` (default: `needs`), whose runs
    outside `needs` are read from the store if finished there and listed as missing if not."""
    started = time.time()
    if workers is None:
        workers = 1 if gpus else default_workers(profile)
    trainable, _ = plannable(profile, needs, data_root)
    outcome = execute(specs_for(profile, trainable), profile, store, data_root=data_root, workers=workers,
                      gpus=gpus, progress=progress)
    return read_study(profile, report_needs or needs, store, outcome, data_root=data_root, started=started)


def settle(verdict: Verdict, study: Study) -> Verdict:
    """The verdict of a claim on our runs, made inconclusive when some of the runs it needs are not finished
    or cannot be planned on this dataset; details['waits_for'] lists the keys of the missing runs."""
    from repro.claims import CLAIMS

    claim = next((c for c in CLAIMS if c.ID == verdict.claim), None)
    if claim is None or verdict.evidence != study.profile.name:
        return verdict
    not_planned = list(dict.fromkeys(study.left_out[n.family] for n in claim.NEEDS if n.family in study.left_out))
    needs = [n for n in claim.NEEDS if n.family not in study.left_out]
    finished = {r.key for r in study.table.rows}
    waiting = [s for s in specs_for(study.profile, needs) if s.key not in finished]
    reasons = list(not_planned)
    if waiting:
        labels = ", ".join(s.label for s in waiting[:3]) + (", ..." if len(waiting) > 3 else "")
        reasons.append(f"it waits for {len(waiting)} planned run{'s' if len(waiting) > 1 else ''} that "
                       f"{'are' if len(waiting) > 1 else 'is'} not finished ({labels})")
    if not reasons:
        return verdict
    return dataclasses.replace(verdict, verdict="inconclusive", explanation=f"Inconclusive: {'; '.join(reasons)}.",
                               details={**verdict.details, "waits_for": [s.key for s in waiting],
                                        "not_planned": not_planned})
