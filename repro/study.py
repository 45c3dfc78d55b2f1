"""The study API: open a study from options, train what is missing, judge the claims, write the report.

The `repro` command (repro.cli) and the pytest plugin (repro.pytest_plugin) are thin adapters over it: each
reads the options of `add_study_options` into a `StudyOptions`, and calls `check_options` (every option
checked before anything is created or trained), `train_study` and `write_study_report`. A claim whose runs are
not all finished (a study stopped half way, one run with --claims, natural/man-made runs a dataset cannot
have) is not judged on what is there: `inconclusive_if_waiting` makes its verdict inconclusive and says what it waits for.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from repro.backends import EXECUTORS
from repro.errors import UserError
from repro.files import folder_problem
from repro.profiles import PROFILES, Profile, get_profile
from repro.runs import Need, RunSpec, identity, specs_for

if TYPE_CHECKING:  # these import torch: loaded when a study is trained or read, not to check its options
    from repro.execute import Outcome
    from repro.results import Table
    from repro.stats import Verdict
    from repro.store import Store

# The options of a study, shared by `repro plan|run|report` and pytest (there prefixed: --repro-profile, ...):
# (option, StudyOptions field, keyword arguments of argparse's and pytest's addoption).
OPTIONS = [
    ("profile", "profile", dict(default=None, help=f"profile: {', '.join(PROFILES)} (pytest: from -m by default)")),
    ("gpus", "gpus", dict(type=int, default=0, help="train on N GPUs, one worker process per GPU")),
    ("workers", "workers", dict(type=int, default=None, help="train with N CPU worker processes (default: this "
                                                             "machine's cores // recipe.cpu_threads)")),
    ("store", "store", dict(default=None, help="run store folder (default: $REPRO_STORE or ~/.cache/repro/store)")),
    ("dataset", "dataset", dict(default=None, help="override the profile's dataset (e.g. folder:PATH)")),
    ("data-root", "data_root", dict(default=None, help="where the dataset is (default: $REPRO_DATA)")),
    ("set", "sets", dict(action="append", default=[], metavar="FIELD=VALUE", help="override a profile field")),
    ("natman", "natman", dict(default=None, metavar="FILE",
                              help="the natural/man-made split of a dataset without one: the natural class names, "
                                   "one a line (or two columns: name, natural|man-made)")),
    ("report-dir", "report_dir", dict(default=None, help="write DIR/index.html and DIR/results.json")),
    ("study-dir", "study_dir", dict(default=None, metavar="DIR",
                                    help="a study run in pieces (repro.replicates): each finished replicate is "
                                         "written to DIR/replicates/rN.json, a rerun trains only the replicates "
                                         "DIR lacks, and the report (DIR by default) is judged on all of them")),
    ("stop-after", "stop_after", dict(type=float, default=None, metavar="MINUTES",
                                      help="stop training after MINUTES: the running networks stop in a "
                                           "checkpoint of the store, and with --study-dir the replicate in "
                                           "progress is written with the runs it finished")),
    ("executor", "executor", dict(default="local", choices=list(EXECUTORS),
                                  help="where to train (slurm: via submitit)")),
    ("slurm-partition", "slurm_partition", dict(default=None, help="Slurm partition (with --executor slurm)")),
    ("slurm-time", "slurm_time", dict(type=int, default=24 * 60, help="Slurm time limit per job in minutes")),
]


# The options that say where this machine keeps its run store and its data: another machine has its own
# ($REPRO_STORE, $REPRO_DATA), so a command recorded for others to type again leaves them out.
MACHINE_PATHS = ("store", "data-root")


def without_machine_paths(args, prefix: str = "") -> list[str]:
    """A command's arguments without the MACHINE_PATHS options and their values (`--{prefix}store PATH` or
    `--{prefix}store=PATH`)."""
    names = tuple(f"--{prefix}{option}" for option in MACHINE_PATHS)
    args, kept = list(args), []
    while args:
        arg = args.pop(0)
        if arg in names:
            args = args[1:]
        elif not arg.startswith(tuple(f"{name}=" for name in names)):
            kept.append(arg)
    return kept


def add_study_options(add, prefix: str = "") -> None:
    """Add the study's options with `add` (argparse's add_argument or pytest's addoption), each named
    --{prefix}{option} and stored under that name with '_' for '-'."""
    for option, _, kwargs in OPTIONS:
        add(f"--{prefix}{option}", dest=f"{prefix}{option}".replace("-", "_"), **kwargs)


@dataclass(frozen=True)
class StudyOptions:
    """What a study session is asked for (the options of `add_study_options`)."""

    profile: str | None = None
    gpus: int = 0
    workers: int | None = None
    store: str | None = None
    dataset: str | None = None
    data_root: str | None = None
    sets: tuple[str, ...] = ()
    natman: str | None = None
    report_dir: str | None = None
    study_dir: str | None = None
    stop_after: float | None = None  # minutes
    executor: str = "local"
    slurm_partition: str | None = None
    slurm_time: int = 24 * 60
    command: str = ""  # the command line that asked for the study: each replicate's record keeps it

    @classmethod
    def read(cls, get, prefix: str = "", command: str = "") -> "StudyOptions":
        """The options as `get(dest)` gives them (argparse: getattr on the namespace; pytest: getoption)."""
        values = {name: get(f"{prefix}{option}".replace("-", "_")) for option, name, _ in OPTIONS}
        return cls(**{**values, "sets": tuple(values["sets"] or ())}, command=command)


def check_options(options: StudyOptions, trains: bool = True, writes: bool = True) -> Profile:
    """The profile the options ask for, after checking every option (a UserError names the first bad one).
    Creates nothing and downloads nothing: a command that cannot run leaves no store behind. `trains`: False
    for a plan, whose --gpus N is the machine it projects for, not this one, and which reads no data and
    writes no store, and for a report judged without training. Training needs a store path that can be
    written, and on this machine the data where it is said to be (repro.data.check_data). `writes`: False for
    a plan, which writes no report and no replicate records (the study folder it reads must still be a
    folder)."""
    if not options.profile:
        raise UserError(f"--profile is required: one of {', '.join(PROFILES)}")
    check_folder("study folder", "--study-dir", options.study_dir, writes)
    check_folder("report folder", "--report-dir", options.report_dir, writes)
    here = trains and options.executor == "local"
    check_devices(options.gpus, options.workers, here=here)
    if options.stop_after is not None and not options.stop_after > 0:
        raise UserError(f"--stop-after must be a positive number of minutes, got {options.stop_after:g}")
    if options.stop_after is not None and options.executor == "slurm":
        raise UserError("--stop-after stops training on this machine; Slurm jobs stop at --slurm-time")
    profile = resolve_profile(options.profile, options.dataset, list(options.sets), options.natman)
    if options.executor == "slurm" and not profile.device:  # Slurm jobs train on a GPU: keys planned for one
        profile = profile.override(["device=cuda"])
    if trains:
        from repro.store import check_store_path

        check_store_path(options.store)
    if here:  # (Slurm jobs read the data where they run)
        from repro.data import check_data

        check_data(profile.dataset, options.data_root)
    return profile


def check_folder(what: str, option: str, path: str | None, writes: bool = True) -> None:
    """Refuse a folder the command would write (`writes`) that cannot be made or written, or one it reads that
    is a file, before anything is trained: a study is not trained to fail writing its records or report."""
    problem = folder_problem(path, try_writing=writes) if path else None
    if problem and (writes or problem[0] == "made"):
        raise UserError(f"the {what} {path} cannot be {problem[0]}: {problem[1]}. Choose another folder with "
                        f"{option}.")


def check_devices(gpus: int, workers: int | None, here: bool = True) -> None:
    """`--gpus` and `--workers`: each valid (repro.backends.pool.check_gpus: the one rule for GPUs, counted only
    when they are this machine's), and not both."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if gpus and workers is not None and workers > 1:
        raise UserError("use either --gpus N (one worker per GPU) or --workers N (CPU workers), not both")
    if gpus:
        from repro.backends.pool import check_gpus  # imports torch: only when GPUs are asked for

        check_gpus(gpus, here)


@dataclass
class Study:
    profile: Profile
    specs: list[RunSpec]  # the planned runs (of every claim the session reports on)
    store: Store
    outcome: Outcome
    table: Table  # the planned runs that are finished
    started: float = field(default_factory=time.time)
    left_out: dict[str, str] = field(default_factory=dict)  # split family -> why none of its runs is planned
    replicates: list[dict] | None = None  # a study run in pieces: per recorded replicate, what trained it
    recorded: object = None  # a study run in pieces: its runs' results (repro.replicates.RecordedRuns)

    @property
    def results(self):
        """Where the study's finished runs are read: the study folder's records and the store, or the store."""
        return self.recorded or self.store

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
        raise UserError(f"unknown claim {unknown[0]!r}; choose from {', '.join(known)}")
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


def plan(profile: Profile, needs: list[Need], store: Store, data_root: str | None = None,
         study_dir: str | None = None) -> dict:
    """What the study would train: its specs, how many the store (or the study folder's replicate records)
    holds, and, for a study folder, which replicates are done and which are missing."""
    needs, left_out = plannable(profile, needs, data_root)
    specs = specs_for(profile, needs)
    out = {"profile": profile.name, "dataset": profile.dataset, "runs": len(specs), "left_out": left_out}
    if study_dir:
        from repro.replicates import replicate_rows, replicate_status, work_here

        status = replicate_status(specs, study_dir)
        here = work_here(specs, status, store)
        todo = [s for _, runs in here.values() for s in runs]
        done = [row for row in replicate_rows(status.records) if row["replicate"] in status.done]
        stale = {r: why + ("; here: extended" if here[r][0]
                           else "; here: trained again whole (this machine does not train alike)")
                 for r, why in status.stale.items()}
        out["replicates"] = {"done": done, "missing": status.missing, "stale": stale}
    else:
        todo = [s for s in specs if not store.is_done(s)]
    return {**out, "cached": len(specs) - len(todo), "to_train": len(todo), "specs": specs, "todo": todo}


def read_study(profile: Profile, needs: list[Need], store: Store, outcome: Outcome | None = None, *,
               data_root: str | None = None, started: float | None = None, study_dir: str | None = None) -> Study:
    """The study of `needs` as the store (and, for a study run in pieces, its folder's replicate records) holds
    it now; nothing is trained."""
    from repro.execute import Outcome
    from repro.results import table_from_store

    needs, left_out = plannable(profile, needs, data_root)
    specs = specs_for(profile, needs)
    outcome = outcome or Outcome()
    recorded, replicates = None, None
    if study_dir:
        from repro.replicates import RecordedRuns, replicate_rows, replicate_status, study_specs

        status = replicate_status(specs, study_dir)
        specs, recorded, replicates = study_specs(specs, status.records), RecordedRuns(status.records, store), \
            replicate_rows(status.records)
    table = table_from_store(recorded or store, specs, evidence=profile.name, trained=set(outcome.trained))
    return Study(profile, specs, store, outcome, table, started or time.time(), left_out, replicates, recorded)


def train_study(options: StudyOptions, needs: list[Need], *, profile: Profile | None = None, progress: bool = True,
                report_needs: list[Need] | None = None, quicker: str = "--profile cpu-quick") -> Study:
    """Train what `needs` call for and the store lacks, on this machine or as Slurm jobs (--executor slurm);
    the study of `report_needs` (default: `needs`), whose runs outside `needs` are read from the store if
    finished there and listed as missing if not. `profile`: check_options(options), when already checked.
    On this machine, the projected time is told first (`quicker`: how this front end asks for cpu-quick).
    SIGTERM stops it as its --stop-after limit would (repro.train.stopping_on_sigterm)."""
    from repro.store import Store
    from repro.train import stopping_on_sigterm

    started = time.time()
    profile = profile or check_options(options)
    store = Store(options.store)
    trainable, _ = plannable(profile, needs, options.data_root)
    specs = specs_for(profile, trainable)
    with stopping_on_sigterm():  # `kill` stops it as --stop-after does: what finished is kept
        if options.executor == "slurm":
            from repro.execute import execute

            outcome = execute(specs, profile, store, data_root=options.data_root, gpus=options.gpus,
                              progress=progress, executor="slurm", slurm_partition=options.slurm_partition,
                              slurm_minutes=options.slurm_time)
        else:
            from repro.execute import default_workers, execute
            from repro.schedule import tell_projection

            workers = options.workers or (1 if options.gpus else default_workers(profile))
            stop_at = started + 60 * options.stop_after if options.stop_after else None
            if options.study_dir:
                outcome = train_replicates(profile, specs, store, options, workers, progress, stop_at)
            else:
                todo = [s for s in specs if not store.is_done(s)]
                if progress:
                    tell_projection(profile, specs, store, gpus=options.gpus, workers=options.workers,
                                    quicker=quicker)
                outcome = execute(specs, profile, store, data_root=options.data_root, workers=workers,
                                  gpus=options.gpus, progress=progress, stop_at=stop_at,
                                  seconds_of=group_times(profile, specs, todo, options, stop_at, progress))
    return read_study(profile, report_needs or needs, store, outcome, data_root=options.data_root, started=started,
                      study_dir=options.study_dir)


def group_times(profile: Profile, specs: list[RunSpec], todo: list[RunSpec], options: StudyOptions,
                stop_at: float | None, progress: bool):
    """The groups' projected times (repro.schedule.group_clock) where something is to train and they serve: to
    fit each group into a time limit, and for the status line's time left (the step measured for the
    projection already told is cached); None elsewhere."""
    from repro.schedule import group_clock

    return group_clock(profile, specs, gpus=options.gpus) if todo and (stop_at or progress) else None


def train_replicates(profile: Profile, specs: list[RunSpec], store: Store, options: StudyOptions, workers: int,
                     progress: bool, stop_at: float | None = None) -> Outcome:
    """A study run in pieces: the replicates its folder lacks, in order, each written to the folder as soon as
    its last network finishes (repro.replicates); the next replicate's groups fill the workers that the one
    before leaves idle near its end (`replicate_first`). A sitting stopped at `stop_at` (--stop-after) or
    interrupted writes each replicate it began with the runs it finished (repro.replicates.Sitting keeps that
    account), and a later sitting on a machine that trains alike adds the rest (the networks stopped half way
    resume from the store's checkpoints on the same machine). Each replicate's groups are split so that every
    worker has work. A piece of a record extended here counts from when this sitting began the replicate (the
    first one: from the sitting's start) to when it is written, so replicates that overlap count their shared
    minutes in both; the study's time counts them once (repro.replicates.pieces_wall_seconds)."""
    import sys

    from repro.execute import Outcome, execute
    from repro.format import duration
    from repro.replicates import Sitting, by_replicate, replicate_status, work_here
    from repro.schedule import plan_projection

    status = replicate_status(specs, options.study_dir)
    missing = {r: s for r, s in by_replicate(specs).items() if r in status.missing}
    erase = "\r\x1b[2K" if sys.stderr.isatty() else ""  # a line said while the status line is drawn in place
    say = (lambda text: print(f"{erase}[repro] {text}", file=sys.stderr, flush=True)) if progress else \
        (lambda text: None)
    say(f"study folder {options.study_dir}: replicates done {sorted(status.done) or 'none'}, missing "
        f"{sorted(missing) or 'none'}" + "".join(f"; r{r}: {why}" for r, why in status.stale.items()))
    here = work_here(specs, status, store)  # replicate -> (the record it extends or None, the runs to train)
    todo = [s for _, runs in here.values() for s in runs]
    if todo and progress:
        out = plan_projection(profile, specs, gpus=options.gpus, workers=workers, todo=todo, split_groups=True)
        if out.get("projected_hours") is not None:
            hours = out["projected_hours"]
            say(f"{len(todo)} networks in {len(missing)} replicate{'s' if len(missing) > 1 else ''} to train: "
                f"projected {duration(hours * 3600) if hours else 'a few seconds'} on {workers} worker(s), "
                f"{out['precision']}; each replicate is written to the folder when it finishes")
    outcome = Outcome()
    seconds_of = group_times(profile, specs, todo, options, stop_at, progress)
    sitting = Sitting(options.study_dir, missing, here, store, options.command, say)

    def train(runs):
        done = execute(runs, profile, store, data_root=options.data_root, workers=workers, gpus=options.gpus,
                       progress=progress, split_groups=True, stop_at=stop_at, seconds_of=seconds_of,
                       replicate_first=True, on_start=sitting.started, on_finish=sitting.finished)
        for name in ("trained", "cached", "diverged", "elsewhere", "stopped"):
            getattr(outcome, name).extend(getattr(done, name))
        outcome.seconds += done.seconds

    try:
        sitting.open()
        train(todo)
        if sitting.again:
            train([s for r in sitting.again for s in missing[r] if not store.is_done(s)])
    finally:  # a stopped or interrupted sitting keeps what it finished, unless it is not the record's numbers
        sitting.close()
    return outcome


def judge(study: Study) -> list[Verdict]:
    """Every claim's verdict on the study's runs, inconclusive where it waits for runs; in a study whose
    replicates were trained in different numerics, each verdict's part on each numerics' replicates too."""
    from repro.claims import evaluate_all, on_replicate_groups
    from repro.replicates import numerics_groups

    verdicts = [inconclusive_if_waiting(v, study) for v in evaluate_all(study.table)]
    return on_replicate_groups(verdicts, study.table, numerics_groups(study.replicates or []))


def write_study_report(out, verdicts: list[Verdict], command: str, study: Study | None = None,
                       wall_seconds: float | None = None) -> tuple:
    """Write out/index.html and out/results.json: the verdicts on the study's runs, or, without a study, on
    the original study's numbers. Returns the two paths."""
    from repro.report import session_info, write_report

    if study is None:
        from repro.paper import original_table

        session = session_info(command, None, wall_seconds or 0.0, outputs=(out,))
        return write_report(out, profile_name="original", table=original_table(), verdicts=verdicts,
                            session=session)
    session = session_info(command, study.profile, study.wall_seconds if wall_seconds is None else wall_seconds,
                           cached=len(study.outcome.cached), trained=len(study.outcome.trained), study=study,
                           outputs=(out,))
    return write_report(out, profile_name=study.profile.name, table=study.table, verdicts=verdicts,
                        session=session, missing=study.missing)


def inconclusive_if_waiting(verdict: Verdict, study: Study) -> Verdict:
    """The verdict of a claim on our runs, made inconclusive when some of the runs it needs are not finished
    or cannot be planned on this dataset; details['waits_for'] lists the keys of the missing runs."""
    from repro.claims import CLAIMS

    claim = next((c for c in CLAIMS if c.ID == verdict.claim), None)
    if claim is None or verdict.evidence not in ("", study.profile.name):  # ("": no run finished at all)
        return verdict
    not_planned = list(dict.fromkeys(study.left_out[n.family] for n in claim.NEEDS if n.family in study.left_out))
    needs = [n for n in claim.NEEDS if n.family not in study.left_out]
    finished_keys = {r.key for r in study.table.rows}
    # by identity: a study run in pieces holds replicates trained in other numerics than this machine plans
    finished = {identity(s) for s in study.specs if s.key in finished_keys}
    waiting = [s for s in specs_for(study.profile, needs) if identity(s) not in finished]
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
