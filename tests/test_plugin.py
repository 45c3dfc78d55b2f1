"""The pytest plugin as a pytest user drives it: `-n 2` (pytest-xdist) and marker expressions.

Under xdist every verdict recorded in a worker reaches the controller's terminal table, results.json and the
HTML report, and the study is trained by one worker while the others wait and read it from the store. These
run real pytest sessions in subprocesses, at the smoke profile (synthetic data), so they take seconds.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from repro.claims import CLAIMS
from repro.pytest_plugin import profile_for_markers
from tests.test_reliability import environment

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[1]
CLAIM_IDS = [c.ID for c in CLAIMS]
# a smaller smoke study: 14 runs (random: 2 bases, BnB and AnB at n = 1, 3, BnB+ and AnB+ at n = 1;
# natural/man-made: 2 bases, AnB and the random control at n = 1 in both directions)
SMALL = ["replicates=1", "layers=1,3", "finetune_layers=1", "natman_layers=1", "random_layers=1"]


def pytest_session(tmp_path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=REPO,
                          env=environment(tmp_path), capture_output=True, text=True, timeout=600)


def claims_table(stdout: str) -> list[str]:
    """The rows of the terminal's claims table (one per verdict)."""
    return [line for line in stdout.splitlines() if line.split(" ")[0] in CLAIM_IDS]


@pytest.mark.parametrize("expression, profile", [
    ("cpu", "cpu"), ("full", "gpu"), ("smoke", "smoke"), ("", "smoke"),
    ("not cpu", "smoke"), ("not full", "smoke"), ("smoke and not cpu", "smoke"), ("not (cpu or full)", "smoke"),
    ("cpu and not slow", "cpu"), ("smoke or cpu", "cpu"), ("full and not cpu", "gpu"), ("not not cpu", "cpu"),
])
def test_the_profile_is_the_one_the_marker_expression_asks_for(expression, profile):
    assert profile_for_markers(expression) == profile


def test_a_marker_expression_that_excludes_cpu_does_not_choose_the_cpu_profile(tmp_path):
    (tmp_path / "test_which_profile.py").write_text(
        "from repro.pytest_plugin import _profile_name\n\n\n"
        "def test_which(request):\n"
        "    print('PROFILE', _profile_name(request.config))\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_which_profile.py",
                             "-m", "not cpu", "-s"], cwd=tmp_path, env=environment(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROFILE smoke" in result.stdout


def test_under_xdist_every_claim_on_the_original_numbers_reaches_the_controllers_report(tmp_path):
    report = tmp_path / "report"
    result = pytest_session(tmp_path, "claims/", "-m", "smoke", "-k", "original_study", "-n", "2", "--report-dir",
                            str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = claims_table(result.stdout)
    assert [r.split()[0] for r in rows] == CLAIM_IDS and all(r.split()[1] == "original" for r in rows)
    doc = json.loads((report / "results.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIM_IDS
    page = (report / "index.html").read_text()
    assert all(f'id="claim-{cid}"' in page for cid in CLAIM_IDS)


def test_under_xdist_the_study_is_trained_once_and_every_verdict_is_reported(tmp_path):
    store, report = tmp_path / "store", tmp_path / "report"
    result = pytest_session(tmp_path, "claims/", "-m", "cpu", "--profile", "smoke", "-n", "2", "--store", str(store),
                            "--report-dir", str(report), *[a for s in SMALL for a in ("--set", s)])
    # the verdicts on 1 replicate of synthetic data are not the paper's: the tests may fail, the report may not
    assert "repro: claims" in result.stdout, result.stdout + result.stderr
    rows = claims_table(result.stdout)
    assert [r.split()[0] for r in rows] == CLAIM_IDS and all(r.split()[1] == "smoke" for r in rows)
    doc = json.loads((report / "results.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIM_IDS
    assert len(doc["runs"]) == 14 and doc["session"]["trained"] == 14 and "missing_runs" not in doc
    logs = list(store.glob("runs/*/log.txt"))
    assert len(logs) == 14
    assert all(log.read_text().count(" start ") == 1 for log in logs)  # no run was trained twice
    started = [line for line in result.stderr.splitlines() if line.startswith("[repro] runs 0/")]
    assert len(started) == 1, result.stderr  # one worker trained; any other waited and found every run stored
