"""One end-to-end sweep at the smoke profile: plan, train every network the five claims need on synthetic
data, evaluate every claim, and find every run again (a second session trains nothing).

The synthetic data is not ImageNet: the verdicts here check the machinery, not the paper, so they are
recorded for the report but not enforced.
"""
import json

import pytest

from repro.claims import CLAIMS, evaluate_all
from repro.cli import main
from repro.study import judge

pytestmark = [pytest.mark.smoke, pytest.mark.claim(*CLAIMS)]  # the `study` fixture trains every claim's runs


def test_the_smoke_sweep_trains_every_network_the_claims_need(study):
    assert study.profile.name == "smoke"
    assert len(study.table) == len(study.specs)  # every planned run finished and is in the table
    assert {r.treatment for r in study.table.rows} == {"base", "BnB", "BnB+", "AnB", "AnB+", "random", "base-2x"}
    # every network records what it trained; the compute-matched base twice its base's iterations
    assert all(r.iterations and r.examples_seen and r.epochs and r.final_lr is not None for r in study.table.rows)
    for matched in (r for r in study.table.rows if r.treatment == "base-2x"):
        base = study.table.base_of(matched)
        assert matched.iterations == 2 * base.iterations and matched.epochs == pytest.approx(2 * base.epochs)
    bases = [r for r in study.table.rows if r.treatment == "base"]
    chance = max(1 / r.num_classes for r in bases)
    assert all(r.top1 > 1.5 * chance for r in bases), [(r.split, r.target, r.top1) for r in bases]


def test_every_claim_gives_a_verdict_on_our_runs(study, record_verdict):
    verdicts = evaluate_all(study.table)
    assert [v.claim for v in verdicts] == [c.ID for c in CLAIMS]
    for v in verdicts:
        record_verdict(v)
        assert v.evidence == "smoke" and v.explanation


def test_a_second_session_trains_nothing(study, capsys):
    store = str(study.store.root)
    assert main(["plan", "--profile", "smoke", "--store", store, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["to_train"] == 0 and plan["cached"] == plan["runs"] == len(study.specs)
    # its exit status says whether a claim came out not reproduced (on synthetic data, what it may)
    refuted = any(v.verdict == "not_reproduced" for v in judge(study))
    assert main(["run", "--profile", "smoke", "--store", store, "--quiet"]) == int(refuted)
    assert capsys.readouterr().out.startswith("repro: 0 trained,")


def test_the_smoke_design_runs_on_a_users_folder_dataset(tmp_path, capsys, monkeypatch):
    """`--dataset folder:PATH` runs a design on your own images (fixtures/tiny-folder: 8 classes of JPEGs)."""
    from pathlib import Path

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    folder = Path(__file__).parents[1] / "fixtures" / "tiny-folder"
    args = ["run", "--profile", "smoke", "--dataset", f"folder:{folder}", "--store", str(tmp_path / "store"),
            "--set", "natman=false", "--set", "replicates=1", "--claims", "coadaptation_dip", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("repro: 8 trained, 0 cached, 0 diverged")  # 2 bases, BnB at n = 1, 3, 5, 7, BnB+ at 1, 5


def test_a_session_logged_to_a_file_shows_a_line_per_finished_run():
    """Into a log (not a terminal) progress is a line per finished run, not carriage returns for every step."""
    import io

    from repro.execute import Progress

    log = io.StringIO()
    bar = Progress(total=4, cached=1, stream=log)
    bar.update()
    for step in range(5):
        bar.update(running=2, groups=1, current=f"random:0/B {step * 20}%")
    bar.update(done=2)
    bar.update(running=1)
    bar.update(done=4, running=0, groups=0)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [line.split(" done")[0] for line in lines] == ["[repro] runs 1/4", "[repro] runs 2/4", "[repro] runs 4/4"]
    assert "2 training in 1 group, 0 waiting" in lines[1] and "min left" in lines[1]


def test_a_log_gets_a_line_every_ten_minutes_while_a_long_group_trains_and_says_how_far_it_is(tmp_path,
                                                                                              monkeypatch):
    """The converged recipe's transfer group trains for hours and its networks finish together: the log says
    how far it is (from its checkpoints) every LOG_EVERY seconds, not only when runs finish."""
    import io

    import torch

    from repro import execute
    from repro.profiles import SMOKE
    from repro.runs import Need, specs_for
    from repro.store import Store

    store = Store(tmp_path / "store")
    group = [s for s in specs_for(SMOKE, [Need("random", "BnB")], device="cpu")
             if s.replicate == 0 and s.n in (1, 7)]
    assert execute.within_groups([group], store) == "" and execute.work_done(group, store, [group]) == 0
    for s in group:
        store.save_checkpoint(s, {"w": torch.zeros(1)}, {"iteration": 1560, "total": 6240})
    assert execute.within_groups([group], store) == "| random:0/B 2 networks 1560/6240"
    assert execute.work_done(group, store, [group]) == pytest.approx(0.25)
    store.write_progress(group[0], 2400, 6240)  # one network resumed before the other: they train in turn
    assert execute.within_groups([group], store) == "| random:0/B 2 networks 1560-2400/6240"
    store.write_progress(group[0], 1560, 6240)

    now = {"t": 0.0}
    monkeypatch.setattr(execute.time, "time", lambda: now["t"])
    log = io.StringIO()
    bar = execute.Progress(total=2, cached=0, stream=log)
    for minute in range(31):  # the loop updates the line every few seconds; here once a minute
        now["t"] = 60.0 * minute
        bar.update(running=2, groups=1, fraction=0.25, current=execute.within_groups([group], store))
    lines = log.getvalue().splitlines()
    assert len(lines) == 4  # at 0, 10, 20 and 30 minutes
    assert lines[-1].endswith("30.0 min, ~90 min left | random:0/B 2 networks 1560/6240"), lines[-1]


def test_the_status_line_counts_the_networks_training_and_the_groups_they_train_in():
    """Two workers, each training one target's group: 13 networks train, in 2 groups, and the rest wait."""
    import io

    from repro.execute import Progress

    log = io.StringIO()
    bar = Progress(total=96, cached=0, stream=log)
    bar.update(done=4, running=13, groups=2)
    assert "[repro] runs 4/96 done (0 cached), 13 training in 2 groups, 79 waiting," in log.getvalue()


def test_the_time_left_follows_the_share_of_the_work_done_not_the_count_of_runs(monkeypatch):
    """Bases train first and cost the most: after 2 of 10 runs holding half of the work, about as long again
    is left, not four times as long."""
    import io

    from repro import execute

    clock = iter([0.0, 600.0, 600.0])
    monkeypatch.setattr(execute.time, "time", lambda: next(clock))
    log = io.StringIO()
    bar = execute.Progress(total=10, cached=0, stream=log)
    bar.update(done=2, fraction=0.5)
    assert "~10 min left" in log.getvalue()
    bar.update(done=3)  # no new share given: the last one stands
    assert "~10 min left" in log.getvalue().splitlines()[-1]


def test_the_time_left_of_a_resumed_session_follows_its_own_pace_not_the_checkpoints_it_started_from(monkeypatch):
    """A study resumed with 40% of its work in checkpoints that trains another 10% in 10 minutes has 50
    minutes left, not the 10 that the share done alone would say."""
    import io

    from repro import execute

    clock = iter([0.0, 600.0])
    monkeypatch.setattr(execute.time, "time", lambda: next(clock))
    log = io.StringIO()
    bar = execute.Progress(total=10, cached=0, stream=log, fraction_before=0.4)
    bar.update(running=4, groups=2, fraction=0.5)
    assert log.getvalue().splitlines()[-1].endswith("10.0 min, ~50 min left")


def test_where_the_groups_have_projected_times_the_time_left_is_theirs_at_this_sessions_pace(store):
    """The share of the work done is a poor clock for a study of many hours at its start: where the cost model
    projects each group (repro.schedule.group_clock), the time left is the groups' left, shared among the
    workers, scaled by how this session's finished groups ran against their projection."""
    import io

    from repro import execute
    from repro.profiles import SMOKE
    from repro.runs import Need, groups, specs_for

    grouped = groups(specs_for(SMOKE, [Need("random", "BnB")], device="cpu"), slots=2)
    minutes = lambda group: 60.0 * len(group)  # noqa: E731
    whole = sum(len(g) for g in grouped) * 60.0
    pace = execute.Pace()
    assert execute.projected_time_left(grouped, store, minutes, 2, pace) == whole / 2
    first = grouped[0][0]
    store.write_progress(first, 50, 100)  # half way through a one-network group
    assert execute.projected_time_left(grouped, store, minutes, 2, pace) == (whole - 30.0) / 2
    pace.ratios.append(0.8)  # the groups run 20% under their projection here
    assert execute.projected_time_left(grouped, store, minutes, 2, pace) == pytest.approx((whole - 30.0) / 2 * 0.8)
    assert pace.factor == 1.0  # while fitting groups into a time limit never counts on it

    log = io.StringIO()
    bar = execute.Progress(total=10, cached=0, stream=log)
    bar.update(done=1, fraction=0.5, projected_left=2 * 3600 + 5 * 60)
    assert log.getvalue().splitlines()[-1].endswith("~2 h 05 min left")


def test_a_pytest_session_shows_its_training_progress_although_pytest_captures_output(tmp_path):
    """The `study` fixture trains inside a test; pytest captures what tests print, but not its progress."""
    import subprocess
    import sys

    from tests.test_reliability import environment

    (tmp_path / "my_claim.py").write_text("from repro.runs import Need\n\nNEEDS = [Need('random', 'BnB')]\n")
    (tmp_path / "test_needs_a_study.py").write_text(
        "import pytest\n\n"
        "import my_claim\n\n\n"
        "@pytest.mark.claim(my_claim)\n"
        "def test_trains_what_it_needs(study):\n"
        "    assert len(study.table) == len(study.specs) == 3  # both bases, BnB n=1\n")
    sets = ["replicates=1", "layers=1", "recipe.epochs=1"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "test_needs_a_study.py", "-p", "no:cacheprovider",
         "--repro-store", str(tmp_path / "store"), *[a for s in sets for a in ("--repro-set", s)]],
        cwd=tmp_path, env=environment(tmp_path), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[repro] runs")]
    assert progress[0].startswith("[repro] runs 0/3 done") and progress[-1].startswith("[repro] runs 3/3 done")


def test_the_command_trains_on_slurm_through_the_same_study_api(tmp_path, capsys, monkeypatch):
    """`repro run --executor slurm --gpus 2` on a login node without GPUs: the jobs train the runs (here, at
    once, in this process); --gpus caps the jobs in flight and is not counted against this machine's GPUs."""
    import repro.backends.slurm

    jobs = []

    class Job:
        def __init__(self, function):
            self.job_id, self.function = len(jobs), function

        def done(self):
            return True

        def result(self):
            return self.function()

    class Executor:
        folder = tmp_path / "slurm"

        def submit(self, function):
            jobs.append(Job(function))
            return jobs[-1]

    monkeypatch.setattr(repro.backends.slurm, "slurm_executor", lambda *args, **kwargs: Executor())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    # the stand-in jobs train here, on the CPU: device=cpu plans their keys for it (Slurm plans for a GPU otherwise)
    sets = ["replicates=1", "layers=1", "natman=false", "recipe.epochs=1", "device=cpu"]
    assert main(["run", "--profile", "smoke", "--store", str(tmp_path / "store"), "--executor", "slurm", "--gpus", "2",
                 "--claims", "early_layer_generality", "--quiet", *[a for s in sets for a in ("--set", s)]]) == 0
    assert capsys.readouterr().out.startswith("repro: 4 trained, 0 cached")  # bases A, B; BnB, AnB n = 1
    assert len(jobs) == 4
