"""The pytest plugin: `pytest claims/ -m cpu` trains what the selected claims need, then checks them.

- Options mirror the `repro` command (`--profile`, `--gpus`, `--workers`, `--store`, `--dataset`,
  `--data-root`, `--set`, `--report-dir`) plus `--repro-compare PATH`.
- The profile defaults from the marker expression: `-m full` -> gpu, `-m cpu` -> cpu, otherwise smoke.
- Fixture `study` (session): the union of the `NEEDS` of every selected test module that uses it is planned
  as one DAG and trained before the first such test runs; the fixture gives `.table` and `.profile`.
- Fixture `record_verdict`: tests hand their `Verdict` to it; the terminal summary shows the premises and the
  verdicts in a table and the session writes the HTML report (reports/<date>-<profile>/ or --report-dir).
- `expect_reproduced(verdict)`: reproduced passes, not reproduced fails, inconclusive skips and premise not
  met xfails, with the verdict's sentence as the reason.
"""
from __future__ import annotations

import contextlib
import time

import pytest

from repro.cli import add_study_options, check_counts

_KEY = pytest.StashKey[dict]()


def pytest_addoption(parser):
    group = parser.getgroup("repro", "reproduction study")
    add_study_options(group.addoption, prefix="")
    group.addoption("--repro-compare", default=None, metavar="PATH",
                    help="compare this session's results with a previous results.json")


def _profile_name(config) -> str:
    if config.getoption("profile"):
        return config.getoption("profile")
    expr = config.getoption("-m") or ""
    if "full" in expr:
        return "gpu"
    if "cpu" in expr:
        return "cpu"
    return "smoke"


def pytest_configure(config):
    config.stash[_KEY] = {"verdicts": [], "study": None, "started": time.time(), "report": None}


@pytest.fixture(scope="session")
def study(request):
    """Train (or find in the store) every run the selected claims need; the results table of our runs."""
    from repro.runs import Need
    from repro.store import Store
    from repro.study import resolve_profile, run_study

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
        profile = resolve_profile(_profile_name(config), config.getoption("dataset"), config.getoption("set"))
        if config.getoption("executor") == "slurm":
            from repro.slurm import run_slurm

            run_slurm(profile, needs, Store(config.getoption("store")), data_root=config.getoption("data_root"),
                      partition=config.getoption("slurm_partition"), minutes=config.getoption("slurm_time"),
                      gpus=config.getoption("gpus"))
        # pytest captures what tests write; the progress of a long training session must reach the terminal
        capture = config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            state["study"] = run_study(profile, needs, Store(config.getoption("store")),
                                       data_root=config.getoption("data_root"), workers=config.getoption("workers"),
                                       gpus=config.getoption("gpus"), progress=True)
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
    def record(verdict):
        request.config.stash[_KEY]["verdicts"].append(verdict)
        return verdict

    return record


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash[_KEY]
    if state["verdicts"]:
        state["report"] = _write_reports(session.config, state)


def _write_reports(config, state) -> list[str]:
    """One report per evidence source: our runs (a study) and/or the original study's numbers."""
    from repro.cli import reproduce_command
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
                                   cached=len(study.outcome.cached), trained=len(study.outcome.trained))
            html, js = write_report(out, profile_name=evidence, table=study.table, verdicts=verdicts, session=session)
        else:
            session = session_info(command, None, time.time() - state["started"])
            html, js = write_report(out, profile_name="original", table=original_table(), verdicts=verdicts,
                                    session=session)
        written.append((str(html), str(js)))
    return written


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash[_KEY]
    if not state["verdicts"]:
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
