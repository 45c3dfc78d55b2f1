"""A study run in pieces, replicate by replicate: each finished replicate is one file in the study's folder.

A long study (the converged tier on a CPU takes many hours) runs over several sittings, on whatever machine
each sitting gets, and a sitting may end with an empty cache. The replicate is the unit: its bases and every
network built from them train in one sitting, on one machine, in one numerics, and when the last of them
finishes the replicate is written to `<study folder>/replicates/r<N>.json`: every run's spec and metrics (no
weights) and what trained it. Those files are meant to be committed. A later sitting reads them, trains only the
replicates that have none, and the study is the union of the files, merged by run key.

A replicate counts as done when its file holds every run the plan has for it, compared by `identity` (the run
key without the numerics): a replicate trained in bf16 on one machine stands for the same networks as the fp32
plan of another. Every comparison a claim makes is within one replicate (a network beside the base of its own
target half), so within one numerics; across replicates, mixed numerics add to the replicate-to-replicate
spread that the tests already estimate, and the report lists each replicate's machine and precision.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from repro.errors import UserError
from repro.files import atomic_write_text
from repro.provenance import git_state, hardware, iso_time, training_provenance
from repro.runs import RunSpec, identity

FOLDER = "replicates"
_NAME = re.compile(r"^r(\d+)\.json$")


@dataclass(frozen=True)
class ReplicateRecord:
    """One finished replicate as its file holds it: key -> (spec, metrics), and what trained it."""

    replicate: int
    runs: dict[str, tuple[RunSpec, dict]]
    trained_by: dict
    path: Path
    lacks: tuple[str, ...] = ()  # a replicate stopped part way: the labels of the runs it did not finish

    @property
    def specs(self) -> list[RunSpec]:
        return [spec for spec, _ in self.runs.values()]


def record_path(study_dir, replicate: int) -> Path:
    return Path(study_dir) / FOLDER / f"r{replicate}.json"


def read_records(study_dir) -> dict[int, ReplicateRecord]:
    """The replicate files of a study folder (none yet: {}). A file that cannot be read is one UserError naming
    it: a study is never judged on part of a replicate."""
    folder = Path(study_dir) / FOLDER
    records: dict[int, ReplicateRecord] = {}
    for path in sorted(folder.glob("r*.json")) if folder.is_dir() else []:
        match = _NAME.match(path.name)
        if not match:
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            runs = {}
            for run in doc["runs"]:
                spec = RunSpec.from_dict(run["spec"])
                runs[spec.key] = (spec, dict(run["metrics"]))
            record = ReplicateRecord(int(doc["replicate"]), runs, dict(doc["trained_by"]), path,
                                     tuple(doc.get("lacks", ())))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{path} is not a readable replicate record ({e}): restore it from git, or delete it "
                            f"to train replicate {match.group(1)} again") from None
        if record.replicate != int(match.group(1)) or any(s.replicate != record.replicate for s in record.specs):
            raise UserError(f"{path} holds runs of another replicate than its name says: restore it from git")
        records[record.replicate] = record
    return records


def by_replicate(specs) -> dict[int, list[RunSpec]]:
    out: dict[int, list[RunSpec]] = {}
    for s in specs:
        out.setdefault(s.replicate, []).append(s)
    return dict(sorted(out.items()))


@dataclass
class ReplicateStatus:
    """Which of a plan's replicates a study folder holds whole (`done`), which it lacks (`missing`, in order),
    which of the missing have a file that no longer holds the plan's runs (`stale`: replicate -> why), and every
    record the folder has (`records`)."""

    records: dict[int, ReplicateRecord] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    stale: dict[int, str] = field(default_factory=dict)


def replicate_status(specs, study_dir) -> ReplicateStatus:
    status = ReplicateStatus(records=read_records(study_dir))
    for r, planned in by_replicate(specs).items():
        record = status.records.get(r)
        if record is None:
            status.missing.append(r)
            continue
        held = {identity(s) for s in record.specs}
        lacking = [s for s in planned if identity(s) not in held]
        if lacking:
            status.missing.append(r)
            status.stale[r] = (f"{record.path.name} lacks {len(lacking)} of the plan's {len(planned)} runs (e.g. "
                               f"{lacking[0].label}): trained again whole, or only what it lacks on a machine that trains "
                               f"alike")
        else:
            status.done.append(r)
    return status


def study_specs(planned, records: dict[int, ReplicateRecord]) -> list[RunSpec]:
    """The study's runs, merged by identity: a planned run that a replicate record holds is the recorded one
    (under the numerics it was trained in), any other the planned one (under this machine's)."""
    recorded = {identity(s): s for record in records.values() for s in record.specs}
    return [recorded.get(identity(s), s) for s in planned]


def _arithmetic(metrics: dict) -> tuple:
    cpu = metrics.get("cpu") or {}
    return (str(metrics.get("device")), metrics.get("precision"), metrics.get("torch"), cpu.get("cpu_model"),
            cpu.get("cpu_family"), cpu.get("cpu_capability"), cpu.get("native_bf16"), cpu.get("onednn_max_cpu_isa"))


def trained_here_alike(record: ReplicateRecord, planned: list[RunSpec]) -> bool:
    """Whether this machine trains the replicate's runs in the arithmetic its record was trained in: on the CPU,
    with the same precision, torch, CPU model (name, family and model number: a VM's 'AMD EPYC' is a Zen 1 and
    a Zen 4 alike), kernel instruction set, bf16 support and oneDNN limit (same key,
    same computation: the runs it lacks can then be added to it, and a base retrained for them comes back bit
    for bit). A GPU record is never extended: its replicate is trained again whole."""
    from repro.numerics import cpu_summary

    import torch

    kinds = {_arithmetic(m) for _, m in record.runs.values()}
    if len(kinds) != 1 or not planned:
        return False
    numerics = planned[0].cfg.get("numerics", {})
    here = cpu_summary()
    return next(iter(kinds)) == ("cpu", numerics.get("precision"), torch.__version__, here["cpu_model"],
                                 here["cpu_family"], here["cpu_capability"], here["native_bf16"],
                                 here["onednn_max_cpu_isa"]) \
        and numerics.get("device") == "cpu"


def recorded(record: ReplicateRecord | None, planned: list[RunSpec]) -> list[RunSpec]:
    """The planned runs a record holds (compared by identity: in whatever numerics it was trained)."""
    held = {identity(s) for s in record.specs} if record else set()
    return [s for s in planned if identity(s) in held]


def to_train_here(record: ReplicateRecord | None, planned: list[RunSpec], store) \
        -> tuple[ReplicateRecord | None, list[RunSpec]]:
    """What this machine trains of a replicate the study lacks, as (the record it extends or None, the runs
    the store has not finished). A record that trains alike here (a replicate stopped part way, or one the
    plan has grown) is extended: the runs it lacks, and the bases they copy from trained again, which must
    come back as recorded (`retrained_differently`). Any other replicate is trained whole."""
    if record is not None and trained_here_alike(record, planned):
        held = recorded(record, planned)
        todo = with_parents([s for s in planned if s not in held], store)
    else:
        record, todo = None, planned
    return record, [s for s in todo if not store.is_done(s)]


def work_here(specs, status: ReplicateStatus, store) -> dict[int, tuple[ReplicateRecord | None, list[RunSpec]]]:
    """What this machine would train of each replicate a study folder lacks: replicate -> `to_train_here`."""
    return {r: to_train_here(status.records.get(r), planned, store)
            for r, planned in by_replicate(specs).items() if r in status.missing}


def retrained_differently(record: ReplicateRecord, store) -> list[str]:
    """The record's runs that this machine's store holds too (bases trained again to extend it) with another
    curve, losses or top-1 than recorded: each one means this machine's arithmetic is not the record's after
    all (CPUs of one model name can differ), so the networks added here would not be built on the recorded
    ones, and the record is not extended."""
    differ = []
    for spec, metrics in record.runs.values():
        again = store.result(spec)
        if again is not None and any(again.get(k) != metrics.get(k) for k in ("curve", "losses", "top1")):
            differ.append(spec.label)
    return differ


def with_parents(specs, store) -> list[RunSpec]:
    """`specs` and every ancestor of theirs that the store has not finished (trained first)."""
    out: dict[str, RunSpec] = {}

    def add(spec):
        if spec.parent is not None and not store.is_done(spec.parent):
            add(spec.parent)
        out.setdefault(spec.key, spec)

    for s in specs:
        add(s)
    return list(out.values())


def write_record(study_dir, replicate: int, specs, store, command: str = "",
                 previous: ReplicateRecord | None = None, partial: bool = False,
                 piece_began: float | None = None) -> Path:
    """Write the file of a finished replicate from the run store (every spec must be finished there), or, with
    `previous`, that record extended by the runs it lacks (its own runs keep their recorded numbers; the wall
    time is the previous pieces' plus this one's, from `piece_began` to now, so the pause between sittings is
    not counted). Each piece keeps when it began and was written (`began_at`, `written_at`: the first at the
    record's top, later ones in "extended"), so a study's time counts a sitting once however many replicates
    trained side by side in it (`pieces_wall_seconds`). `partial`: a replicate stopped part way, written with
    the runs it finished ("lacks" lists the others); a later sitting on a machine that trains alike extends it
    (`to_train_here`)."""
    now = time.time()
    piece_seconds = None if piece_began is None else now - piece_began
    interval = {"began_at": iso_time(piece_began), "written_at": iso_time(now)}
    recorded = {identity(s): (s, m) for s, m in previous.runs.values()} if previous else {}
    runs, held, fresh, lacks = [], [], [], []
    for spec in specs:
        spec, metrics = recorded.get(identity(spec), (spec, None))
        is_fresh = metrics is None
        if is_fresh:
            metrics = store.result(spec)
        if metrics is None:
            if not partial:
                raise ValueError(f"replicate {replicate} is not finished: {spec.label} has no result")
            lacks.append(spec.label)
            continue
        held.append(spec)
        fresh += [spec] if is_fresh else []
        runs.append({"key": spec.key, "label": spec.label, "spec": spec.to_dict(), "metrics": metrics})
    commit, dirty = git_state(outputs=(study_dir,))
    machine = hardware()
    began = {"hardware": machine, "command": command, "git_commit": commit, "git_dirty": dirty, **interval}
    trained = training_provenance(RecordedRuns({replicate: previous} if previous else {}, store), held)
    if previous:  # who began the record stays at its top; each later piece is listed with its own
        before = previous.trained_by
        began = {field: before.get(field) for field in began}
        trained["extended"] = before.get("extended", []) + [
            {"runs": [s.label for s in fresh], "git_commit": commit, "git_dirty": dirty, "hardware": machine,
             "command": command, "wall_seconds": piece_seconds, **interval}]
        if before.get("training_wall_seconds") is not None and piece_seconds is not None:
            trained["training_wall_seconds"] = before["training_wall_seconds"] + piece_seconds
    doc = {"replicate": replicate, "trained_by": {**began, **trained}, "runs": runs}
    if lacks:
        doc["lacks"] = lacks
    path = record_path(study_dir, replicate)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return path


class Sitting:
    """One sitting's account of the replicates a study folder lacks (repro.study.train_replicates): when it
    began each, each written to the folder the moment it is whole (`finished`, called as each group ends), and,
    when the sitting ends, each one it began written with the runs it finished (`close`). A record extended
    here whose bases came back otherwise than recorded is not extended: `again` lists those replicates, to
    train again whole in this machine's numbers."""

    def __init__(self, study_dir, missing: dict[int, list[RunSpec]],
                 here: dict[int, tuple[ReplicateRecord | None, list[RunSpec]]], store, command: str = "",
                 say=lambda text: None):
        self.study_dir, self.missing, self.here, self.store, self.command, self.say = \
            study_dir, missing, here, store, command, say
        self.previous = {r: record for r, (record, _) in here.items()}  # the record each one extends, or None
        self.began: dict[int, float] = {}  # replicate -> when this sitting began it
        self.written: set[int] = set()  # replicates written whole
        self.again: list[int] = []

    def open(self) -> None:
        """Begin with the first replicate missing (its time includes the sitting's start), and write at once
        those that need no training here (the store or the record holds every run)."""
        if self.missing:
            self.begin(next(iter(self.missing)))
        for r, (_, runs) in self.here.items():
            if not runs:
                self.began.setdefault(r, time.time())
                self.finished(self.missing[r])

    def begin(self, r: int) -> None:
        self.began[r] = time.time()
        previous, planned = self.previous[r], self.missing[r]
        self.say(f"replicate r{r} ({list(self.missing).index(r) + 1} of {len(self.missing)})" +
                 (f": adding the {len(planned) - len(recorded(previous, planned))} runs its record lacks (this "
                  f"machine trains alike; {len(self.here[r][1])} to train here with the bases they copy from)"
                  if previous is not None else ""))

    def started(self, group) -> None:
        for r in sorted({s.replicate for s in group} - set(self.began)):
            self.begin(r)

    def finished(self, group) -> None:
        for r in sorted({s.replicate for s in group}):
            if r not in self.written and self._whole(r) and self._alike(r):
                self._write(r)

    def close(self) -> None:
        """The sitting ends (done, stopped or interrupted): what it began and did not finish is written with
        the runs it finished, unless it extends a record it did not train alike."""
        for r in self.missing:
            if r in self.began and r not in self.written and self._alike(r):
                self._write(r)

    def _finished(self, r: int) -> list[RunSpec]:
        """r's planned runs its record holds or this machine's store has finished."""
        held = recorded(self.previous[r], self.missing[r])
        return [s for s in self.missing[r] if s in held or self.store.is_done(s)]

    def _whole(self, r: int) -> bool:
        return len(self._finished(r)) == len(self.missing[r])

    def _alike(self, r: int) -> bool:
        """Whether the runs of r's record that this machine trained again came back as recorded."""
        previous = self.previous[r]
        differ = retrained_differently(previous, self.store) if previous is not None else []
        if differ:
            self.say(f"replicate r{r}: {differ[0]} came out differently here than in {previous.path.name} (not "
                     f"the record's arithmetic after all): the replicate is trained again whole")
            self.previous[r] = None
            self.again.append(r)
        return not differ

    def _write(self, r: int) -> None:
        """Write what replicate r holds now (all of it, or the runs finished so far). A piece that finished
        none of a recorded replicate's runs still adds its time to the record."""
        planned, previous, finished = self.missing[r], self.previous[r], self._finished(r)
        whole = len(finished) == len(planned)
        if finished or previous is not None:
            path = write_record(self.study_dir, r, planned, self.store, self.command, previous=previous,
                                partial=not whole, piece_began=self.began[r])
            self.say(f"replicate r{r} written to {path}" + ("" if whole else
                     f" with the {len(finished)} of its {len(planned)} runs finished: the same command continues "
                     f"it (on a machine that trains alike, the {len(planned) - len(finished)} others and the "
                     f"bases they copy from; elsewhere the replicate trains again whole)"))
        if whole:
            self.written.add(r)


class RecordedRuns:
    """The finished runs of a study folder's records, then of a run store, behind the store's `result(spec)`
    (and `run_dir`, for runs whose times are only in their log): what the results table and the report read."""

    def __init__(self, records: dict[int, ReplicateRecord], store):
        self.store = store
        self.metrics = {key: metrics for record in records.values() for key, (_, metrics) in record.runs.items()}

    def result(self, spec: RunSpec) -> dict | None:
        found = self.metrics.get(spec.key)
        return dict(found) if found is not None else self.store.result(spec)

    def run_dir(self, spec: RunSpec) -> Path:
        return self.store.run_dir(spec)


def replicate_rows(records: dict[int, ReplicateRecord]) -> list[dict]:
    """Per recorded replicate: what trained it (machine, CPU, precision, wall time), for the report."""
    rows = []
    for r, record in sorted(records.items()):
        t = record.trained_by
        rows.append({"replicate": r, "file": f"{FOLDER}/{record.path.name}", "networks": len(record.runs),
                     "lacks": len(record.lacks),
                     "hardware": t.get("hardware"), "cpus": t.get("cpus"), "devices": t.get("devices"),
                     "precision": t.get("precision"), "torch": t.get("torch"),
                     "training_wall_seconds": t.get("training_wall_seconds"),
                     "training_started": t.get("training_started"), "training_finished": t.get("training_finished"),
                     "git_commit": t.get("git_commit"),
                     "pieces": [[piece.get("began_at"), piece.get("written_at")]
                                for piece in [t, *t.get("extended", [])]]})
    return rows


def pieces_wall_seconds(rows: list[dict]) -> float | None:
    """The time a study's sittings spent on its replicates, from the rows of `replicate_rows`: the union of
    every piece's interval (began to written), so replicates trained side by side in one sitting count it once.
    None when a record has a piece from before records kept those times."""
    try:
        intervals = sorted((datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp())
                           for row in rows for a, b in row.get("pieces") or [(None, None)])
    except TypeError:  # a time not recorded
        return None
    total, end = 0.0, float("-inf")
    for start, stop in intervals:
        total += max(0.0, stop - max(start, end))
        end = max(end, stop)
    return total if intervals else None


def numerics_groups(rows: list[dict]) -> dict[str, list[int]]:
    """A study's replicates by the numerics they were trained in (precision on CPU kind or device), from the
    rows of `replicate_rows`: more than one group is a mixed study."""
    groups: dict[str, list[int]] = {}
    for r in rows:
        numerics = f"{'/'.join(r.get('precision') or [])} on {'; '.join(r.get('cpus') or r.get('devices') or [])}"
        groups.setdefault(numerics, []).append(r["replicate"])
    return {numerics: sorted(groups[numerics]) for numerics in sorted(groups)}


def mixed_numerics(rows: list[dict]) -> list[str]:
    """The distinct numerics of a study's replicates: more than one is a mixed study."""
    return list(numerics_groups(rows))
