"""Execute a plan: train the missing runs, dependencies first, in-process, in worker processes or as Slurm jobs.

Every backend does the same thing with a group of runs (`repro.worker.train_group`): claim the runs, load the
target half's data, train, store the results. They differ only in where that happens: this process, one
worker process per GPU or CPU slot (`--gpus N` / `--workers N`; by default `default_workers`: one CPU worker
per `recipe.cpu_threads` cores), or Slurm jobs through submitit (`--executor slurm`). `repro.backends` holds
them, their protocol (`repro.backends.Backend`) and the one function that chooses one (`backend_for`). One
loop (`train_groups`) hands the groups to each of these backends, in the order `repro.runs.groups` gives
(longest critical path first); `repro.schedule` simulates that same schedule to project a plan's hours.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from repro.backends import Backend, backend_for
from repro.format import duration
from repro.numerics import usable_cores
from repro.profiles import Profile
from repro.runs import RunSpec, groups, work
from repro.store import Store
from repro.train import stop_requested
from repro.worker import load_task

@dataclass
class Outcome:
    trained: list[str] = field(default_factory=list)  # keys
    cached: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)  # trained by another session meanwhile
    stopped: list[str] = field(default_factory=list)  # not finished at the time limit (stop_at)
    seconds: float = 0.0


def decode_first(specs: list[RunSpec], store: Store, data_root: str | None, progress: bool) -> None:
    """Decode the dataset the missing runs train on here, once, with its progress shown, before any worker
    starts (a worker would decode it silently, the status line waiting meanwhile); the workers then read the
    decoded cache. ILSVRC-2012 is decoded batch by batch while training, and synthetic data is made in
    memory: nothing to do for them."""
    missing = next((s for s in specs if not store.is_done(s)), None)
    if missing is None or missing.cfg["dataset"] in ("synthetic", "imagenet"):
        return
    if progress:
        print(f"[repro] loading {missing.cfg['dataset']} at {missing.cfg['image_size']} px (decoded into the "
              "cache the first time)", file=sys.stderr, flush=True)
    load_task(missing, data_root, progress=progress)


# ---- progress ---------------------------------------------------------------------------------------
LOG_EVERY = 600.0  # seconds: into a log, a line at least this often while networks train
LOOK_EVERY = 30.0  # seconds: how often the loop reads the running groups' checkpoints for the status line


class Progress:
    """One status line: runs done, training (the networks of the groups being trained, which train together)
    and waiting, elapsed time and an estimate of what remains (from the share of the work done, `fraction`,
    where the caller gives it: bases train first and cost the most, so a count of runs would overstate the
    time left early on). The time left is told from this session's pace: the share done since it started, not
    the share its checkpoints held before (`fraction_before`; a study resumed half way is not half as fast).

    On a terminal the line is rewritten in place; into a file or a pipe (a log, CI) it is written once per
    finished run, and every LOG_EVERY seconds while networks train (a group of the converged recipe trains for
    hours and its networks finish together), so the log shows how the session goes without a line for every
    step."""

    def __init__(self, total: int, cached: int, enabled: bool = True, stream=None, fraction_before: float = 0.0):
        self.total, self.cached, self.enabled = total, cached, enabled
        self.stream = stream or sys.stderr
        self.done, self.running, self.groups, self.t0 = cached, 0, 0, time.time()
        self.fraction: float | None = None  # of the work to train, done
        self.fraction_before = fraction_before  # of it, done before this session (checkpoints it resumes)
        self.projected_left: float | None = None  # seconds, where the cost model projects them
        self.current = ""
        self.in_place = getattr(self.stream, "isatty", lambda: False)()
        self.logged, self.logged_at = None, self.t0

    def update(self, done=None, running=None, groups=None, current=None, fraction=None, projected_left=None,
               show=True):
        """`running`: networks being trained, in `groups` groups (one per busy worker). `projected_left`: the
        cost model's seconds left (`projected_time_left`), said instead of the share-of-work estimate.
        `show=False`: take the new figures without writing the line (a group just finished: the next update,
        once the freed worker has its next group, writes it, or a log would say a worker idles)."""
        if done is not None:
            self.done = done
        if fraction is not None:
            self.fraction = fraction
        if running is not None:
            self.running = running
        if groups is not None:
            self.groups = groups
        if current is not None:
            self.current = current
        if projected_left is not None:
            self.projected_left = projected_left
        if not self.enabled or not show:
            return
        now = time.time()
        if self.in_place:
            self.stream.write("\r" + self.text(now)[:160].ljust(160))
        elif self.logged != self.done or (self.running and now - self.logged_at >= LOG_EVERY):
            self.logged, self.logged_at = self.done, now
            self.stream.write(self.text(now).rstrip() + "\n")
        self.stream.flush()

    def text(self, now: float) -> str:
        elapsed = now - self.t0
        trained = self.done - self.cached
        # (a group may finish in its worker a moment before it is collected)
        waiting = max(0, self.total - self.done - self.running)
        if self.fraction is not None:
            share, gained = self.fraction, self.fraction - self.fraction_before
        else:
            share = gained = trained / max(1, self.total - self.cached)
        left = self.total - self.done
        begun = trained > 0 or self.fraction is not None  # a share from the checkpoints of the first groups
        eta = f", ~{elapsed * (1 - share) / gained / 60:.0f} min left" if begun and left and gained > 0 else ""
        if self.projected_left is not None and left:
            eta = f", ~{duration(self.projected_left)} left"
        training = f"{self.running} training in {self.groups} group{'s' if self.groups != 1 else ''}" \
            if self.running else "0 training"
        return (f"[repro] runs {self.done}/{self.total} done ({self.cached} cached), {training}, {waiting} waiting, "
                f"{elapsed / 60:.1f} min{eta} {self.current}")

    def close(self):
        if self.enabled and self.in_place:
            self.stream.write("\n")
            self.stream.flush()


# ---- the scheduling loop ----------------------------------------------------------------------------
def _ready(group: list[RunSpec], store: Store) -> bool:
    return all(store.is_done(s.parent) for s in group if s.parent)


def execute(specs: list[RunSpec], profile: Profile, store: Store, *, data_root: str | None = None,
            workers: int = 1, gpus: int = 0, progress: bool = True, device: str | None = None,
            poll_seconds: float | None = None, split_groups: bool = False, executor: str = "local",
            slurm_partition: str | None = None, slurm_minutes: int = 24 * 60, submitit_executor=None,
            stop_at: float | None = None, seconds_of=None, replicate_first: bool = False, on_start=None,
            on_finish=None) -> Outcome:
    """Train every spec not yet in the store, on the backend `repro.backends.backend_for` chooses from the
    options. `gpus` > 0: one worker per GPU (with `executor="slurm"`: the most Slurm jobs in flight, 0 no
    cap); else `workers` CPU workers. `split_groups`: split a target's group for CPU workers too (as for
    GPUs), for a plan too small to keep them busy with whole groups (a study's replicates in order,
    repro.study.train_replicates). `poll_seconds`: how often the loop looks at running groups (default 2 s
    here, 30 s for Slurm jobs). `stop_at` (a time.time(); not for Slurm): no group starts after it, and the
    running ones stop there in a checkpoint (`Outcome.stopped`: every run left unfinished); with `seconds_of` (a
    group -> its projected seconds, repro.schedule.group_clock) groups are fitted into the time left (`fitted`)
    and the status line tells the time left from them (`projected_time_left`).
    `replicate_first`, `on_start`, `on_finish`: see `train_groups`."""
    slurm = executor == "slurm"
    if not slurm:  # Slurm jobs decode on their nodes, not on the login node
        decode_first(specs, store, data_root, progress)
    backend = backend_for(executor, store, profile, data_root=data_root, gpus=gpus, workers=workers,
                          split_groups=split_groups, device=device, slurm_partition=slurm_partition,
                          slurm_minutes=slurm_minutes, submitit_executor=submitit_executor, stop_at=stop_at)
    return train_groups(specs, store, backend, share=profile.share, progress=progress,
                        poll_seconds=poll_seconds if poll_seconds is not None else 30.0 if slurm else 2.0,
                        stop_at=stop_at, seconds_of=seconds_of, replicate_first=replicate_first,
                        on_start=on_start, on_finish=on_finish)


def train_groups(specs, store: Store, backend: Backend, *, share: bool = True, progress: bool = True,
                 poll_seconds: float = 2.0, stop_at: float | None = None, seconds_of=None,
                 replicate_first: bool = False, on_start=None, on_finish=None) -> Outcome:
    """The one scheduling loop of every backend (in-process, worker pool, Slurm): the runs not in the store
    in groups sized to the backend's slots (repro.runs.groups), each free slot given the first ready group in
    that order (longest critical path first), finished groups recorded, groups that another session holds
    retried after a pause, none started after `stop_at` (the backend stops the running ones there), and with
    `seconds_of` (a group -> its projected seconds on one slot) each group fitted into the time left before it
    (`fitted`). `backend`: any `repro.backends.Backend` (its protocol: `slots`, `split_for`, `submit`, `wait`,
    `describe`, `close`; the loop sets its `bar`). `replicate_first`: a lower replicate's groups before a
    higher one's (repro.runs.groups). `on_start(group)`, `on_finish(group)`: called in this process as a group
    is submitted and once its result is recorded (how repro.study banks a replicate as soon as it is whole)."""
    t0 = time.time()
    outcome, pending = Outcome(), []
    try:
        for s in specs:
            metrics = store.result(s)
            if metrics is not None:
                store.index_finished(s, metrics)
                outcome.cached.append(s.key)
            else:
                pending.append(s)
        bar = Progress(len(specs), len(outcome.cached), enabled=progress,
                       fraction_before=work_done(pending, store, [pending]))
        backend.bar = bar
        todo = groups(pending, share=share, slots=backend.split_for, replicate_first=replicate_first)
        running: dict = {}  # handle -> group
        not_before: dict[int, float] = {}  # groups held by another session are retried after a pause
        next_look, within, fraction = time.time() + LOOK_EVERY, "", None
        pace = Pace()
        stopping = False  # this process got SIGTERM (repro.train.stopping_on_sigterm)
        while todo or running:
            now = time.time()
            if stop_requested() and not stopping:
                stopping = True
                backend.stop()
            past_stop = stopping or (stop_at is not None and now >= stop_at)
            if past_stop and not running:
                break
            ready = [] if past_stop else [g for g in todo if not_before.get(id(g), 0) <= now and _ready(g, store)]
            room = len(ready) if backend.slots is None else backend.slots - len(running)
            if stop_at is not None and seconds_of is not None:
                ready = fitted(ready, max(0, room), todo, store, seconds_of, stop_at - now, pace.factor)
            for group in ready[:max(0, room)]:
                if group in todo:
                    todo.remove(group)
                handle = backend.submit(group)
                running[handle] = group
                pace.started(handle, group, store, seconds_of)
                if on_start is not None:
                    on_start(group)
            projected_left = None  # (None: the line keeps its last projection)
            if now >= next_look:
                next_look = now + LOOK_EVERY
                fraction, within = work_done(pending, store, running.values()), within_groups(running.values(), store)
                if seconds_of is not None:
                    projected_left = projected_time_left([*running.values(), *todo], store, seconds_of,
                                                         backend.slots, pace)
            bar.update(running=sum(len(g) for g in running.values()), groups=len(running), fraction=fraction,
                       projected_left=projected_left,
                       current=" ".join(filter(None, (backend.describe(running), within))))
            if not running:  # parents are being trained by another session
                time.sleep(poll_seconds)
                continue
            for handle, result in backend.wait(list(running), poll_seconds):
                group = running.pop(handle)
                pace.finished(handle, stop_at)
                within = within_groups(running.values(), store)  # the finished group's progress leaves the line
                bar.update(current=" ".join(filter(None, (backend.describe(running), within))), show=False)
                _record(outcome, result, bar, store, pending, running)
                _requeue(group, result, store, todo, not_before, outcome, poll_seconds)
                if on_finish is not None:
                    on_finish(group)
                next_look = 0.0  # the share done, read again with the group finished
    finally:
        backend.close()
    outcome.stopped = [s.key for s in pending if not store.is_done(s)] if stop_at is not None or stop_requested() \
        else []
    bar.update(running=0, groups=0, current="")
    bar.close()
    outcome.seconds = time.time() - t0
    return outcome


# ---- fitting groups into a time limit (--stop-after) ------------------------------------------------------
FIT_MARGIN = 1.1  # a group is started whole only if it is projected to end with this much time to spare


def time_left_of(group, store: Store, seconds_of, how_far=None) -> float:
    """Projected seconds `group` still needs on one slot: its whole time, less what its members' checkpoints
    hold (`how_far`: another reading of a run's (iteration, total), e.g. Store.progress; the least advanced
    member counts: they train together)."""
    how_far = how_far or store.checkpoint_progress
    done = [at[0] / max(1, at[1]) if (at := how_far(s)) else 0.0 for s in group]
    return seconds_of(group) * (1 - min(done, default=0.0))


def projected_time_left(groups_left, store: Store, seconds_of, slots: int | None, pace: "Pace") -> float:
    """The status line's time left: the projected time of the groups left (running ones less what they have
    trained), shared among the slots, at this session's pace against the projection."""
    work = sum(time_left_of(group, store, seconds_of, store.progress) for group in groups_left)
    return work / max(1, slots or 1) * pace.ratio


def fitted(ready: list[list[RunSpec]], room: int, todo: list, store: Store, seconds_of, seconds_left: float,
           pace: float = 1.0) -> list[list[RunSpec]]:
    """Up to `room` groups to start now under a time limit, in the order of `ready`: a group projected to finish
    in `seconds_left` (at this session's `pace`, with FIT_MARGIN) as it is; else the most of its cheapest
    networks that do (a network's numbers do not depend on the group it trains in, only when it finishes),
    its other networks left in `todo` in its place. Room that no ready network fits goes to the first ready
    groups as they are, rather than idle: they train into checkpoints that a later run here resumes."""
    def fits(part):
        return time_left_of(part, store, seconds_of) * pace * FIT_MARGIN <= seconds_left

    out, taken = [], []
    for group in ready:
        if len(out) == room:
            break
        if fits(group):
            out.append(group)
            taken.append(group)
            continue
        cheapest = sorted(group, key=lambda s: time_left_of([s], store, seconds_of))
        k = max((k for k in range(1, len(group)) if fits(cheapest[:k])), default=0)
        if k:
            todo[todo.index(group)] = [s for s in group if s in cheapest[k:]]
            out.append([s for s in group if s in cheapest[:k]])
            taken.append(group)
    return out + [g for g in ready if not any(g is t for t in taken)][:room - len(out)]


class Pace:
    """How this session's groups run against their projected times (a busy machine is slower than the step
    times measured on an idle one): the factor that `fitted` applies, never below 1."""

    def __init__(self):
        self.ratios: list[float] = []
        self.open: dict = {}  # handle -> (started at, projected seconds)

    @property
    def ratio(self) -> float:
        """Measured over projected time, the mean over this session's finished groups (1 before any)."""
        return sum(self.ratios) / len(self.ratios) if self.ratios else 1.0

    @property
    def factor(self) -> float:
        return max(1.0, self.ratio)

    def started(self, handle, group, store: Store, seconds_of) -> None:
        if seconds_of is not None:
            self.open[handle] = (time.time(), time_left_of(group, store, seconds_of))

    def finished(self, handle, stop_at: float | None) -> None:
        start, projected = self.open.pop(handle, (None, 0.0))
        now = time.time()
        if start is not None and projected > 0 and (stop_at is None or now < stop_at):  # a stopped one ran short
            self.ratios.append((now - start) / projected)


def _record(outcome: Outcome, result: dict, bar: Progress, store: Store, specs, running: dict) -> None:
    """A group finished: its runs in the outcome, and the status line's counts (`running`: the groups left)."""
    outcome.trained += result["trained"]
    outcome.diverged += result["diverged"]
    finished = [s for s in specs if store.is_done(s)]
    bar.update(done=bar.cached + len(finished), running=sum(len(g) for g in running.values()), groups=len(running),
               fraction=work_done(specs, store, running.values()), show=False)


def work_done(specs, store: Store, running_groups) -> float:
    """The share of the training of `specs` done: finished runs whole, running ones as far as they are
    (Store.progress; repro.runs.work weighs a run by the layers it trains)."""
    done = sum(work(s) for s in specs if store.is_done(s))
    for group in running_groups:
        for s in group:
            at = store.progress(s)
            if at and not store.is_done(s):
                done += work(s) * at[0] / max(1, at[1])
    return done / max(1e-9, sum(map(work, specs)))


def within_groups(running_groups, store: Store) -> str:
    """How far each running group is, by its networks' progress notes (Store.progress): "| random:3/B 18
    networks 2400/6240" ("" before any has one); networks resumed from checkpoints of different iterations, the
    least advanced catching up (repro.train.Group.run), as the range they span: "949-2543/6240"."""
    words = []
    for group in running_groups:
        at = [a for a in map(store.progress, group) if a]
        if at:
            first = group[0]
            what = first.treatment if len(group) == 1 else f"{len(group)} networks"
            lo, hi = min(a[0] for a in at), max(a[0] for a in at)
            words.append(f"{first.split}/{first.target} {what} {lo}{f'-{hi}' if hi > lo else ''}/"
                         f"{max(a[1] for a in at)}")
    return "| " + "; ".join(words) if words else ""


def _requeue(group, result, store, todo, not_before, outcome, poll_seconds):
    """Runs another session holds: retried after a pause (then trained here only if that session died)."""
    held = [s for s in group if s.key in result["elsewhere"]]
    waiting = [s for s in held if not store.is_done(s)]
    outcome.elsewhere += [s.key for s in held if store.is_done(s)]
    if waiting:
        todo.append(waiting)
        not_before[id(waiting)] = time.time() + poll_seconds


def default_workers(profile: Profile) -> int:
    """CPU worker processes when none are asked for: one per `recipe.cpu_threads` cores. Each training
    process runs with exactly that many intra-op threads (part of the run key), so the numbers are the same
    on a machine of any size; the machine's size only sets how many networks train at once."""
    return max(1, usable_cores() // profile.recipe.cpu_threads)
