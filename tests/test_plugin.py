"""The pytest plugin as a pytest user drives it: `-n 2` (pytest-xdist), marker expressions, bad options, and
beside other plugins.

Under xdist every verdict recorded in a worker reaches the controller's terminal table, results.json and the
HTML report, and the study is trained by one worker while the others wait and read it from the store. The
plugin is loaded in every pytest run of its environment, so it keeps to its own option names (`--repro-*`,
and `--gpus` only where this repository's conftest adds it and no other plugin owns it) and registers its
markers itself. These run real pytest sessions in subprocesses, at the smoke profile (synthetic data), so they
take seconds.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from repro.claims import CLAIMS
from repro.profiles import get_profile
from repro.pytest_plugin import profile_for_markers
from repro.runs import specs_for
from repro.study import all_needs
from tests.test_reliability import environment

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[1]
CLAIM_IDS = [c.ID for c in CLAIMS]
# a smaller smoke study: 14 runs (random: 2 bases, BnB and AnB at n = 1, 3, BnB+ and AnB+ at n = 1;
# natural/man-made: 2 bases, AnB and the random control at n = 1 in both directions)
SMALL = ["replicates=1", "layers=1,3", "finetune_layers=1", "natman_layers=1", "random_layers=1"]


def pytest_session(tmp_path, *args, cwd=REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          env={**environment(tmp_path), **env}, capture_output=True, text=True, timeout=600)


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
        "from repro.pytest_plugin import study_session\n\n\n"
        "def test_which(request):\n"
        "    print('PROFILE', study_session(request.config).profile.name)\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_which_profile.py",
                             "-m", "not cpu", "-s"], cwd=tmp_path, env=environment(tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PROFILE smoke" in result.stdout


def test_under_xdist_every_claim_on_the_original_numbers_reaches_the_controllers_report(tmp_path):
    report = tmp_path / "report"
    result = pytest_session(tmp_path, "claims/", "-m", "smoke", "-k", "original_study", "-n", "2",
                            "--repro-report-dir", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = claims_table(result.stdout)
    assert [r.split()[0] for r in rows] == CLAIM_IDS and all(r.split()[1] == "original" for r in rows)
    doc = json.loads((report / "results.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIM_IDS
    page = (report / "index.html").read_text()
    assert all(f'id="claim-{cid}"' in page for cid in CLAIM_IDS)


def test_under_xdist_the_study_is_trained_once_and_every_verdict_is_reported(tmp_path):
    store, report = tmp_path / "store", tmp_path / "report"
    result = pytest_session(tmp_path, "claims/", "-m", "cpu", "--repro-profile", "smoke", "-n", "2", "--repro-store",
                            str(store), "--repro-report-dir", str(report), *[a for s in SMALL for a in ("--repro-set", s)])
    # the verdicts on 1 replicate of synthetic data are not the paper's: the tests may fail, the report may not
    assert "repro: claims" in result.stdout, result.stdout + result.stderr
    rows = claims_table(result.stdout)
    assert [r.split()[0] for r in rows] == CLAIM_IDS and all(r.split()[1] == "smoke" for r in rows)
    doc = json.loads((report / "results.json").read_text())
    assert [c["id"] for c in doc["claims"]] == CLAIM_IDS
    assert len(doc["runs"]) == 15 and doc["session"]["trained"] == 15 and "missing_runs" not in doc  # 1 base-2x
    logs = list(store.glob("runs/*/log.txt"))
    assert len(logs) == 15
    assert all(log.read_text().count(" start ") == 1 for log in logs)  # no run was trained twice
    started = [line for line in result.stderr.splitlines() if line.startswith("[repro] runs 0/")]
    assert len(started) == 1, result.stderr  # one worker trained; any other waited and found every run stored


# ---- a good citizen: beside other plugins, in other projects, on bad input -----------------------------------
# pytest-profiling owns --profile, pytest-parallel --workers; this one takes every unprefixed name of the study's
COLLIDING_PLUGIN = """
def pytest_addoption(parser):
    for name in ("--profile", "--workers", "--gpus", "--store", "--dataset", "--data-root", "--set", "--natman",
                 "--report-dir", "--executor"):
        parser.addoption(name, default=None)
"""


def test_the_plugin_starts_beside_a_plugin_that_owns_the_unprefixed_names(tmp_path):
    (tmp_path / "colliding_plugin.py").write_text(COLLIDING_PLUGIN)
    path = os.pathsep.join([str(tmp_path), environment(tmp_path)["PYTHONPATH"]])
    # (the real pytest-profiling and pytest-parallel, where installed, step aside for their stand-in)
    result = pytest_session(tmp_path, "--co", "-q", "claims/", "-p", "no:profiling", "-p", "no:parallel",
                            "-p", "colliding_plugin", "-m", "cpu",
                            "--profile", "theirs", "--gpus", "8", "--repro-gpus", "0", PYTHONPATH=path)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = [line for line in result.stdout.splitlines() if line.startswith("claims/test_")]
    assert {line.split("::")[0] for line in collected} == {f"claims/test_{cid}.py" for cid in CLAIM_IDS}, result.stdout
    # theirs is theirs: --gpus 8 went to the other plugin, not to the study (no GPU here: it would be refused)


def test_the_markers_are_known_in_another_rootdir(tmp_path):
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n\n@pytest.mark.cpu\n@pytest.mark.full\n@pytest.mark.smoke\ndef test_marked():\n"
        "    pass\n")
    result = pytest_session(tmp_path, "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning",
                            "test_marked.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--repro-set", "recipe.lr=fast"], "ERROR: repro: --repro-set recipe.lr=fast: expected a value of type float"),
    (["--repro-profile", "tiny"], "ERROR: repro: unknown profile 'tiny'; choose one of: smoke, cpu"),
    (["-m", "full", "--gpus", "8"], "ERROR: repro: --gpus 8 asks for more GPUs than are visible here (0); use "
                                    "--gpus N with N <= the number of GPUs, or --repro-workers N for CPU workers"),
    (["--repro-gpus", "-1"], "ERROR: repro: --repro-gpus must be 0 or a positive number of GPUs, got -1"),
    (["--repro-gpus", "2", "--repro-workers", "2"], "ERROR: repro: use either --repro-gpus N (one worker per GPU) "
                                                    "or --repro-workers N (CPU workers), not both"),
    (["--repro-dataset", "nosuch"], "ERROR: repro: unknown dataset 'nosuch'; use 'synthetic', 'tiny-imagenet', "
                                    "'imagenet' or 'folder:PATH'"),
    (["--repro-data-root", "{tmp}/nonexistent"], "ERROR: repro: the data root {tmp}/nonexistent does not exist: point "
                                                 "--repro-data-root / REPRO_DATA at the folder"),
    (["--repro-compare", "{tmp}/missing.json"], "ERROR: repro: no results file at {tmp}/missing.json: pass a report "
                                                "folder or its results.json"),
], ids=["set", "profile", "gpus", "gpus<0", "gpus+workers", "dataset", "data-root", "compare"])
def test_a_bad_option_is_one_usage_error_before_the_workers_start(tmp_path, args, message):
    """Under pytest-xdist (-n 2) as without: the controller refuses it before any worker starts, so there is one
    line and no worker traceback; nothing is created, nothing downloaded."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = pytest_session(tmp_path, "claims/", "-m", "cpu", "-n", "2", "--repro-store", str(tmp_path / "store"),
                            *args, CUDA_VISIBLE_DEVICES="")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]  # one line, no error per claim test
    assert line.startswith(message.replace("{tmp}", str(tmp_path))), line
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no store, no cache, no data folder


def test_a_gpu_marker_on_a_machine_without_a_gpu_is_refused_with_the_projection_and_the_cpu_command(tmp_path):
    networks = len(specs_for(get_profile("gpu"), all_needs()))
    result = pytest_session(tmp_path, "claims/", "-m", "full", "-n", "2", "--repro-store", str(tmp_path / "store"),
                            CUDA_VISIBLE_DEVICES="")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert re.fullmatch(r"ERROR: repro: -m full trains the gpu profile, sized for GPUs, and no GPU is visible here: "
                        rf"its {networks} networks are projected to take .+ on this CPU \(\d+ workers?, fp32\)\. For the "
                        r"study on a CPU: pytest claims/ -m cpu; to train the gpu profile here all the same, name "
                        r"it: --repro-profile gpu", line), line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the CPU's step times measured, not kept
    # asked for by name, it is the user's call (the projection is told again before training)
    named = pytest_session(tmp_path, "claims/", "-m", "full", "--repro-profile", "gpu", "--co", "-q",
                           "--repro-store", str(tmp_path / "store"), CUDA_VISIBLE_DEVICES="")
    assert named.returncode == 0 and re.search(r"\b5/\d+ tests collected", named.stdout), named.stdout + named.stderr


def test_a_test_that_uses_the_study_must_name_its_claims(tmp_path):
    (tmp_path / "test_unnamed.py").write_text("def test_unnamed(study):\n    pass\n")
    result = pytest_session(tmp_path, "test_unnamed.py", "--repro-store", str(tmp_path / "store"), cwd=tmp_path)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "test_unnamed.py::test_unnamed uses the study fixture but names no claim" in result.stderr


def test_a_verdict_becomes_a_pytest_outcome_in_one_place():
    from repro.pytest_plugin import PYTEST_OUTCOMES
    from repro.stats.verdicts import VERDICTS

    assert PYTEST_OUTCOMES == {"reproduced": "passed", "not_reproduced": "failed", "inconclusive": "skipped",
                               "premise_not_met": "xfailed"}
    assert set(PYTEST_OUTCOMES) == set(VERDICTS)
