"""The pytest plugin: `pytest claims/ -m cpu` trains what the selected claims need, then checks them.

- Options mirror the `repro` command (`--profile`, `--gpus`, `--workers`, `--store`, `--dataset`,
  `--data-root`, `--set`, `--natman`, `--report-dir`) plus `--repro-compare PATH`.
- The profile defaults from the marker expression (`profile_for_markers`): `-m full` -> gpu, `-m cpu` -> cpu,
  otherwise smoke; a marker only excluded (`-m "not cpu"`) does not choose its profile.
- Fixture `study` (session): the union of the `NEEDS` of every selected test module that uses it is planned
  as one DAG and trained before the first such test runs; the fixture gives `.table` and `.profile`.
- Fixture `record_verdict`: tests hand their `Verdict` to it; the terminal summary shows the premises and the
  verdicts in a table and the session writes the HTML report (reports/<date>-<profile>/ or --report-dir).
- `expect_reproduced(verdict)`: reproduced passes, not reproduced fails, inconclusive skips and premise not
  met xfails, with the verdict's sentence as the reason.
- pytest-xdist (`-n 2`, `-n auto`): the first worker to need the study trains it while the others wait on a
  lock in the store and then read it (so it is trained once); each worker sends its verdicts to the
  controller in `workeroutput`, and the controller alone prints the table and writes the report.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
import time

import pytest

from repro.cli import add_study_options, check_counts

_KEY = pytest.StashKey[dict]()
_WORKER_OUTPUT = "repro"
# (marker, profile): the first marker the expression asks for chooses the profile
MARKER_PROFILES = (("full", "gpu"), ("cpu", "cpu"))


def pytest_addoption(parser):
    group = parser.getgroup("repro", "reproduction study")
    add_study_options(group.addoption, prefix="")
    group.addoption("--repro-compare", default=None, metavar="PATH",
                    help="compare this session's results with a previous results.json")


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


def _profile_name(config) -> str:
    return config.getoption("profile") or profile_for_markers(config.getoption("-m") or "")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    config.stash[_KEY] = {"verdicts": [], "study": None, "started": time.time(), "report": None, "workers": []}


def _profile(config):
    from repro.study import resolve_profile

    profile = resolve_profile(_profile_name(config), config.getoption("dataset"), config.getoption("set"),
                              config.getoption("natman"))
    if config.getoption("executor") == "slurm" and not profile.device:  # Slurm jobs train on a GPU
        profile = profile.override(["device=cuda"])
    return profile


@contextlib.contextmanager
def _one_worker_trains(config, store, specs):
    """Under pytest-xdist, hold the study's lock while training, so that one worker trains and the others
    wait and then find every run in the store. Outside xdist, nothing."""
    if not _is_worker(config):
        yield
        return
    from filelock import FileLock

    digest = hashlib.sha256("".join(sorted(s.key for s in specs)).encode()).hexdigest()[:16]
    with FileLock(str(store.root / "locks" / f"study-{digest}.lock")):
        yield


@pytest.fixture(scope="session")
def study(request):
    """Train (or find in the store) every run the selected claims need; the results table of our runs."""
    from repro.runs import Need, specs_for
    from repro.store import Store
    from repro.study import plannable, run_study

    config = request.config
    state = config.stash[_KEY]
    if state["study"] is None:
        check_counts(config.getoption("gpus"), config.getoption("workers"))
        needs: list[Need] = []
        for item in request.session.items:
            if "study" in getattr(item, "fixturenames", ()):
                for need in getattr(item.module, "NEEDS", []):
                    if need not in needs:
                        needs.append(need)
        profile = _profile(config)
        store = Store(config.getoption("store"))
        data_root = config.getoption("data_root")
        state["needs"] = needs
        with _one_worker_trains(config, store, specs_for(profile, plannable(profile, needs, data_root)[0])):
            if config.getoption("executor") == "slurm":
                from repro.slurm import run_slurm

                run_slurm(profile, plannable(profile, needs, data_root)[0], store, data_root=data_root,
                          partition=config.getoption("slurm_partition"), minutes=config.getoption("slurm_time"),
                          gpus=config.getoption("gpus"))
            # pytest captures what tests write; the progress of a long training session must reach the terminal
            capture = config.pluginmanager.getplugin("capturemanager")
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                if config.getoption("executor") != "slurm":  # the time, told before the first network trains
                    from repro.schedule import tell_projection

                    tell_projection(profile, specs_for(profile, plannable(profile, needs, data_root)[0]), store,
                                    gpus=config.getoption("gpus"), workers=config.getoption("workers"),
                                    quicker="--repro-profile cpu-quick")
                state["study"] = run_study(profile, needs, store, data_root=data_root,
                                           workers=config.getoption("workers"), gpus=config.getoption("gpus"),
                                           progress=True)
    return state["study"]


def expect_reproduced(verdict) -> None:
    """A claim test's outcome from its verdict: reproduced passes, not reproduced fails; inconclusive is
    skipped and premise not met is xfailed, each with the reason, so that a red claim means the claim failed
    and not that the study was too small or its bases unfit to judge it."""
    if verdict.verdict == "reproduced":
        return
    if verdict.verdict == "not_reproduced":
        pytest.fail(verdict.explanation, pytrace=False)
    if verdict.verdict == "premise_not_met":
        pytest.xfail(verdict.explanation)
    pytest.skip(verdict.explanation)


@pytest.fixture
def record_verdict(request):
    """Hand a claim's Verdict to the session's report; returns it, made inconclusive where the claim waits for
    runs that are not finished or cannot be planned (repro.study.settle)."""
    def record(verdict):
        from repro.study import settle

        state = request.config.stash[_KEY]
        if state["study"] is not None:
            verdict = settle(verdict, state["study"])
        state["verdicts"].append(verdict)
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
        node.config.stash[_KEY]["workers"].append(json.loads(sent))


def _merge_workers(config, state) -> None:
    """(controller) The verdicts of every worker, and the study they shared read back from the store."""
    from repro.execute import Outcome
    from repro.runs import Need
    from repro.store import Store
    from repro.study import read_study

    sent = state["workers"]
    state["verdicts"] += [_verdict_from_json(v) for w in sent for v in w["verdicts"]]
    studies = [w["study"] for w in sent if w["study"]]
    if studies:
        needs = list(dict.fromkeys(Need(*n) for s in studies for n in s["needs"]))
        trained = list(dict.fromkeys(k for s in studies for k in s["trained"]))
        cached = [k for k in dict.fromkeys(k for s in studies for k in s["cached"]) if k not in trained]
        outcome = Outcome(trained=trained, cached=cached, seconds=max(s["seconds"] for s in studies))
        state["study"] = read_study(_profile(config), needs, Store(config.getoption("store")), outcome,
                                    data_root=config.getoption("data_root"), started=state["started"])


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    state = config.stash[_KEY]
    if _is_worker(config):  # the controller reports; a worker only sends
        study = state["study"]
        config.workeroutput[_WORKER_OUTPUT] = json.dumps({
            "verdicts": [_verdict_to_json(v) for v in state["verdicts"]],
            "study": study and {"needs": [[n.family, n.treatment] for n in state["needs"]],
                                "trained": study.outcome.trained, "cached": study.outcome.cached,
                                "seconds": study.outcome.seconds},
        })
        return
    if state["workers"]:
        _merge_workers(config, state)
    if state["verdicts"]:
        state["verdicts"] = _in_claim_order(state["verdicts"])
        state["report"] = _write_reports(config, state)


def _in_claim_order(verdicts: list) -> list:
    from repro.claims import CLAIMS

    order = {c.ID: i for i, c in enumerate(CLAIMS)}
    return sorted(verdicts, key=lambda v: (v.evidence != "original", order.get(v.claim, len(order))))


def _write_reports(config, state) -> list[str]:
    """One report per evidence source: our runs (a study) and/or the original study's numbers."""
    from repro.paper import original_table
    from repro.report import default_report_dir, session_info, write_report

    written = []
    by_evidence: dict[str, list] = {}
    for v in state["verdicts"]:
        by_evidence.setdefault(v.evidence, []).append(v)
    study = state["study"]
    command = "pytest " + " ".join(config.invocation_params.args)
    for evidence, verdicts in by_evidence.items():
        ours = study is not None and evidence == study.profile.name
        if not ours and evidence != "original":
            continue
        out = config.getoption("report_dir")
        if out is None or (study is not None and not ours):
            out = default_report_dir(evidence)
        if ours:
            session = session_info(command, study.profile, time.time() - state["started"],
                                   cached=len(study.outcome.cached), trained=len(study.outcome.trained), study=study)
            html, js = write_report(out, profile_name=evidence, table=study.table, verdicts=verdicts,
                                    session=session, missing=study.missing)
        else:
            session = session_info(command, None, time.time() - state["started"])
            html, js = write_report(out, profile_name="original", table=original_table(), verdicts=verdicts,
                                    session=session)
        written.append((str(html), str(js)))
    return written


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash[_KEY]
    if not state["verdicts"] or _is_worker(config):
        return
    from repro.summary import verdict_table

    reports = state["report"] or []
    terminalreporter.section("repro: claims")
    terminalreporter.write_line(verdict_table(state["verdicts"], ", ".join(h for h, _ in reports) or None))
    compare_path = config.getoption("repro_compare")
    if compare_path and reports:
        from repro.report.compare import compare, format_comparison, load_results

        terminalreporter.section("repro: comparison with " + compare_path)
        terminalreporter.write_line(format_comparison(compare(load_results(compare_path),
                                                              load_results(reports[0][1]))))
