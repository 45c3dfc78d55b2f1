"""The pytest plugin: `pytest claims/ -m cpu` trains what the selected claims need, then checks them.

A thin adapter over the study API (repro.study), registered for every pytest run of the environment (the
`pytest11` entry point), so it keeps to its own names:
- Options: the study's, prefixed: `--repro-profile`, `--repro-gpus`, `--repro-workers`, `--repro-store`,
  `--repro-dataset`, `--repro-data-root`, `--repro-set`, `--repro-natman`, `--repro-report-dir`,
  `--repro-executor`, `--repro-slurm-partition`, `--repro-slurm-time`, and `--repro-compare PATH`. The
  documented `--gpus N` is this repository's own (its conftest.py calls `add_gpus_option`), so the plugin never
  takes the name from another project's plugin or conftest.
- Markers `smoke`, `cpu`, `full` (the tiers) and `claim(module, ...)`, registered here, so that any rootdir
  knows them. The profile defaults from the marker expression (`profile_for_markers`): `-m full` -> gpu,
  `-m cpu` -> cpu, otherwise smoke; a marker only excluded (`-m "not cpu"`) does not choose its profile.
- Bad options (an unknown profile, a bad `--repro-set`, more GPUs than there are) are one usage error at
  start-up, before anything is collected.
- Fixture `study` (session): the runs of every claim named by the `claim` marker of a selected test that uses
  it, planned as one DAG and trained before the first such test runs; it gives `.table` and `.profile`.
- Fixture `record_verdict`: tests hand their `Verdict` to it; the terminal summary shows the premises and the
  verdicts in a table and the session writes the HTML report (reports/<date>-<profile>/ or --repro-report-dir).
- `expect_reproduced(verdict)`: the claim test's outcome (`PYTEST_OUTCOMES`).
- pytest-xdist (`-n 2`, `-n auto`): the first worker to need the study trains it while the others wait on a
  lock in the store and then read it (so it is trained once); each worker sends its verdicts to the
  controller in `workeroutput`, and the controller alone prints the table and writes the report.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from repro.errors import UserError
from repro.profiles import Profile
from repro.runs import Need, specs_for
from repro.study import OPTIONS, Study, StudyOptions, add_study_options, check_options, without_machine_paths

if TYPE_CHECKING:  # imports scipy: loaded when a verdict is recorded
    from repro.stats import Verdict

PREFIX = "repro-"
MARKERS = [
    "smoke: CPU, minutes, no download: library tests, claims on the original study's numbers, a synthetic sweep",
    "cpu: the study scaled to Tiny ImageNet on a CPU (profile cpu)",
    "full: the study on GPUs (profile gpu or paper)",
    "claim(module, ...): the claims (modules with NEEDS, e.g. repro.claims.coadaptation_dip) whose runs the "
    "`study` fixture trains for this test",
]
# (marker, profile): the first marker the expression asks for chooses the profile
MARKER_PROFILES = (("full", "gpu"), ("cpu", "cpu"))
# A claim test's outcome for each verdict: a red test means the claim failed, not that the study was too small
# to judge it (inconclusive: skipped) or its bases unfit to (premise not met: xfailed), each with its reason.
PYTEST_OUTCOMES = {"reproduced": "passed", "not_reproduced": "failed", "inconclusive": "skipped",
                   "premise_not_met": "xfailed"}
_WORKER_OUTPUT = "repro"


@dataclass
class StudySession:
    """What the plugin keeps for one pytest session (config.stash)."""

    options: StudyOptions  # the profile already chosen (from -m when no --repro-profile)
    profile: Profile  # checked at start-up
    started: float = field(default_factory=time.time)
    needs: list[Need] = field(default_factory=list)  # of the tests that use `study`
    study: Study | None = None  # once trained (or read back from the store the workers shared)
    verdicts: list[Verdict] = field(default_factory=list)  # as recorded
    from_workers: list[dict] = field(default_factory=list)  # (xdist controller) what each worker sent
    reports: list[tuple[str, str]] = field(default_factory=list)  # (index.html, results.json) written


_SESSION = pytest.StashKey[StudySession]()


def study_session(config) -> StudySession:
    """This pytest session's study state: its options, profile, study and verdicts."""
    return config.stash[_SESSION]


def pytest_addoption(parser):
    group = parser.getgroup("repro", "reproduction study (repro)")
    add_study_options(group.addoption, prefix=PREFIX)
    group.addoption("--repro-compare", default=None, metavar="PATH",
                    help="compare this session's results with a previous results.json")


def add_gpus_option(parser) -> bool:
    """`--gpus N` as another name of `--repro-gpus`, for the documented `pytest claims/ -m full --gpus 8`:
    called by this repository's conftest.py, never by the plugin itself, so that installing the suite cannot
    take the name from another project. Where another plugin already owns `--gpus`, it is left to it (False)
    and `--repro-gpus` still works."""
    # pytest 8 builds its argparse parser only when it parses, so a clash would surface then, where nothing can
    # catch it: look first (pytest keeps its option groups in these two attributes in versions 8 and 9)
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    if any("--gpus" in option.names() for group in groups if group is not None for option in group.options):
        return False
    try:
        parser.getgroup("repro").addoption("--gpus", dest="repro_gpus", type=int, default=0,
                                           help="the same as --repro-gpus")
    except (ValueError, argparse.ArgumentError):  # pytest 9: "option names {'--gpus'} already added", argparse's
        return False
    return True


def profile_for_markers(expression: str) -> str:
    """The profile a `-m` expression asks for. A marker is asked for when marking a test with it can bring the
    test into the selection ('cpu', 'cpu and not slow', 'smoke or cpu'), not when it can only keep a test out
    ('not cpu'). Every assignment of the expression's other markers is tried."""
    from _pytest.mark.expression import Expression

    if not expression.strip():
        return "smoke"
    try:
        compiled = Expression.compile(expression)
    except Exception:  # noqa: BLE001 - pytest itself reports a malformed expression
        return "smoke"
    names = {n for n in re.findall(r"[\w.+\-:\[\]\\/]+", expression) if n not in ("and", "or", "not")}
    others = sorted(names - {m for m, _ in MARKER_PROFILES})[:10]

    def selects(on: set[str]) -> bool:
        return compiled.evaluate(lambda name, **kwargs: name in on)

    for marker, profile in MARKER_PROFILES:
        for values in itertools.product((False, True), repeat=len(others)):
            on = {n for n, v in zip(others, values) if v}
            if selects(on | {marker}) and not selects(on):
                return profile
    return "smoke"


def invocation_command(config) -> str:
    """The pytest command as another machine would type it again (without this one's store and data paths)."""
    return "pytest " + " ".join(without_machine_paths(config.invocation_params.args, PREFIX))


def study_options(config) -> StudyOptions:
    """The study's options of this pytest session; the profile from the marker expression unless given."""
    options = StudyOptions.read(config.getoption, prefix=PREFIX, command=invocation_command(config))
    return dataclasses.replace(options, profile=options.profile or profile_for_markers(config.getoption("-m") or ""))


def _in_pytest_terms(message: str, args: list[str]) -> str:
    """A study error's message with the options named as pytest knows them (--set -> --repro-set); --gpus as
    the user wrote it (`args`: the command line), since both names are this session's."""
    typed_gpus = any(a.split("=")[0] == f"--{PREFIX}gpus" for a in args)
    names = "|".join(re.escape(option) for option, _, _ in OPTIONS if option != "gpus" or typed_gpus)
    return re.sub(rf"(?<![\w-])--({names})\b", rf"--{PREFIX}\1", message)


def _check_compare_file(path: str | None) -> None:
    """--repro-compare names a results.json (or its report folder) that can be read, before anything runs."""
    if path:
        from repro.report.compare import load_results

        load_results(path)


def _refuse_a_gpu_marker_without_a_gpu(config, profile: Profile) -> None:
    """`-m full` chooses a profile sized for GPUs; on a machine without one it would train for hours on the CPU.
    Refused, with the projection here and the command for a CPU, unless the profile was named
    (--repro-profile gpu: train it on this CPU all the same) or GPUs or the CPU were asked for."""
    marker = dict((p, m) for m, p in MARKER_PROFILES).get(profile.name)
    if marker != "full" or config.getoption("repro_profile") or config.getoption("repro_gpus") or profile.device:
        return
    from repro.numerics import default_device

    if default_device() == "cuda":
        return
    from repro.format import duration
    from repro.schedule import plan_projection
    from repro.study import all_needs

    specs = specs_for(profile, all_needs())
    projected = plan_projection(profile, specs, keep=False)
    raise UserError(f"-m {marker} trains the {profile.name} profile, sized for GPUs, and no GPU is visible here: "
                    f"its {len(specs)} networks are projected to take {duration(projected['projected_hours'] * 3600)} "
                    f"on this CPU ({projected['workers']} workers, {projected['precision']}). For the study on a "
                    f"CPU: pytest claims/ -m cpu; to train the {profile.name} profile here all the same, name it: "
                    f"--{PREFIX}profile {profile.name}")


def pytest_configure(config):
    """Every option checked before anything is collected (under pytest-xdist in the controller, before the
    workers start): a bad one is one usage error, and nothing is created or downloaded."""
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    options = study_options(config)
    try:
        profile = check_options(options)
        _check_compare_file(config.getoption("repro_compare"))
        if not _is_worker(config):
            _refuse_a_gpu_marker_without_a_gpu(config, profile)
    except UserError as e:
        raise pytest.UsageError(f"repro: {_in_pytest_terms(str(e), config.invocation_params.args)}") from None
    config.stash[_SESSION] = StudySession(options, profile)


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def _claims_needs(items) -> list[Need]:
    """The runs that the tests using `study` need: the NEEDS of the claims their `claim` markers name."""
    needs: list[Need] = []
    for item in items:
        if "study" not in getattr(item, "fixturenames", ()):
            continue
        claims = [claim for marker in item.iter_markers("claim") for claim in marker.args]
        if not claims:
            raise pytest.UsageError(f"repro: {item.nodeid} uses the study fixture but names no claim: mark it "
                                    "(or its module) with @pytest.mark.claim(claim_module)")
        for claim in claims:
            needs += [n for n in claim.NEEDS if n not in needs]
    return needs


def pytest_collection_finish(session):
    if _SESSION in session.config.stash:
        session.config.stash[_SESSION].needs = _claims_needs(session.items)


@contextlib.contextmanager
def _one_worker_trains(config, state: StudySession):
    """Under pytest-xdist, hold the study's lock while training, so that one worker trains and the others
    wait and then find every run in the store. Outside xdist, nothing."""
    if not _is_worker(config):
        yield
        return
    from filelock import FileLock

    from repro.runs import canonical
    from repro.store import Store

    what = canonical([state.profile.to_dict(), [dataclasses.astuple(n) for n in state.needs]])
    digest = hashlib.sha256(what.encode()).hexdigest()[:16]
    with FileLock(str(Store(state.options.store).root / "locks" / f"study-{digest}.lock")):
        yield


@pytest.fixture(scope="session")
def study(request):
    """Train (or find in the store) every run the selected claims need; the results table of our runs."""
    from repro.study import train_study

    config = request.config
    state = config.stash[_SESSION]
    if state.study is None:
        # pytest captures what tests write; the progress of a long training session must reach the terminal
        capture = config.pluginmanager.getplugin("capturemanager")
        with _one_worker_trains(config, state), \
                capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            state.study = train_study(state.options, state.needs, profile=state.profile, progress=True,
                                          quicker="--repro-profile cpu-quick")
    return state.study


def expect_reproduced(verdict) -> None:
    """End a claim test as its verdict says (PYTEST_OUTCOMES): reproduced passes, not reproduced fails,
    inconclusive is skipped and premise not met is xfailed, with the verdict's sentence as the reason."""
    outcome = PYTEST_OUTCOMES[verdict.verdict]
    if outcome == "failed":
        pytest.fail(verdict.explanation, pytrace=False)
    if outcome == "xfailed":
        pytest.xfail(verdict.explanation)
    if outcome == "skipped":
        pytest.skip(verdict.explanation)


@pytest.fixture
def record_verdict(request):
    """Hand a claim's Verdict to the session's report; returns it, made inconclusive where the claim waits for
    runs that are not finished or cannot be planned (repro.study.inconclusive_if_waiting)."""
    def record(verdict):
        from repro.study import inconclusive_if_waiting

        state = request.config.stash[_SESSION]
        if state.study is not None:
            verdict = inconclusive_if_waiting(verdict, state.study)
        state.verdicts.append(verdict)
        return verdict

    return record


# ---- pytest-xdist: workers send what they recorded, the controller reports --------------------------------

def _verdict_to_json(verdict) -> dict:
    return json.loads(json.dumps(verdict.to_dict(), default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _verdict_from_json(d: dict):
    from repro.stats import Verdict

    return Verdict(**{**d, "ci": tuple(d["ci"])})


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """(controller) A worker finished: keep its verdicts and what its study trained."""
    sent = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if sent:
        node.config.stash[_SESSION].from_workers.append(json.loads(sent))


def _merge_workers(state: StudySession) -> None:
    """(controller) The verdicts of every worker, and the study they shared read back from the store."""
    from repro.execute import Outcome
    from repro.store import Store
    from repro.study import read_study

    sent = state.from_workers
    state.verdicts += [_verdict_from_json(v) for w in sent for v in w["verdicts"]]
    studies = [w["study"] for w in sent if w["study"]]
    if studies:
        needs = list(dict.fromkeys(Need(*n) for s in studies for n in s["needs"]))
        trained = list(dict.fromkeys(k for s in studies for k in s["trained"]))
        cached = [k for k in dict.fromkeys(k for s in studies for k in s["cached"]) if k not in trained]
        outcome = Outcome(trained=trained, cached=cached, seconds=max(s["seconds"] for s in studies))
        state.study = read_study(state.profile, needs, Store(state.options.store), outcome,
                                 data_root=state.options.data_root, started=state.started,
                                 study_dir=state.options.study_dir)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _SESSION not in config.stash:
        return
    state = config.stash[_SESSION]
    if _is_worker(config):  # the controller reports; a worker only sends
        study = state.study
        config.workeroutput[_WORKER_OUTPUT] = json.dumps({
            "verdicts": [_verdict_to_json(v) for v in state.verdicts],
            "study": study and {"needs": [[n.family, n.treatment] for n in state.needs],
                                "trained": study.outcome.trained, "cached": study.outcome.cached,
                                "seconds": study.outcome.seconds},
        })
        return
    if state.from_workers:
        _merge_workers(state)
    if state.verdicts:
        state.verdicts = _in_claim_order(state.verdicts)
        state.reports = _write_reports(config, state)


def _in_claim_order(verdicts: list) -> list:
    from repro.claims import CLAIMS

    order = {c.ID: i for i, c in enumerate(CLAIMS)}
    return sorted(verdicts, key=lambda v: (v.evidence != "original", order.get(v.claim, len(order))))


def _write_reports(config, state: StudySession) -> list[tuple[str, str]]:
    """One report per evidence source (repro.study.write_study_report): our runs (a study) and/or the original
    study's numbers. --repro-report-dir names the folder of the first; a second goes to its default folder."""
    from repro.report import default_report_dir
    from repro.study import write_study_report

    by_evidence: dict[str, list] = {}
    for v in state.verdicts:
        by_evidence.setdefault(v.evidence, []).append(v)
    study = state.study
    command = invocation_command(config)
    written = []
    for evidence, verdicts in by_evidence.items():
        ours = study is not None and evidence == study.profile.name
        if not ours and evidence != "original":
            continue
        out = state.options.report_dir or state.options.study_dir
        if out is None or (study is not None and not ours):
            out = default_report_dir(evidence)
        html, js = write_study_report(out, verdicts, command, study if ours else None,
                                      wall_seconds=time.time() - state.started)
        written.append((str(html), str(js)))
    return written


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash.get(_SESSION, None)
    if state is None or not state.verdicts or _is_worker(config):
        return
    from repro.summary import verdict_table

    terminalreporter.section("repro: claims")
    terminalreporter.write_line(verdict_table(state.verdicts, ", ".join(h for h, _ in state.reports) or None))
    compare_path = config.getoption("repro_compare")
    if compare_path and state.reports:
        from repro.report.compare import compare, format_comparison, load_results

        terminalreporter.section("repro: comparison with " + compare_path)
        terminalreporter.write_line(format_comparison(compare(load_results(compare_path),
                                                              load_results(state.reports[0][1]))))
