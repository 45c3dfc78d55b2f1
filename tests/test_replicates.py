"""A study run in pieces: each finished replicate is a file of its study folder, a later sitting (another machine,
an empty run store) trains only the replicates the folder lacks, and the report is judged on all of them."""
import json

import pytest
import torch

from repro.cli import main, reproduce_command
from repro.profiles import SMOKE
from repro.replicates import (mixed_numerics, numerics_groups, pieces_wall_seconds, read_records, replicate_rows,
                              replicate_status, study_specs)
from repro.runs import Need, identity, specs_for
from repro.store import Store

pytestmark = pytest.mark.smoke

SMALL = ["replicates=2", "recipe.epochs=2", "layers=1", "finetune_layers=1", "natman_layers=1", "random_layers=1"]
CLAIM = ["--claims", "early_layer_generality"]  # bases of random:r and AnB, BnB at n = 1: 4 runs a replicate


def _sets(extra=()):
    return [a for s in [*SMALL, *extra] for a in ("--set", s)]


def test_the_same_network_in_another_numerics_has_another_key_but_the_same_identity():
    needs = [Need("random", "AnB")]
    fp32 = specs_for(SMOKE, needs, device="cpu")
    bf16 = [s.__class__(s.split, s.target, s.treatment, s.n, s.replicate,
                        s.config.replace('"precision":"fp32"', '"precision":"bf16"')) for s in fp32]
    assert all(a.key != b.key for a, b in zip(fp32, bf16))
    assert [identity(s) for s in fp32] == [identity(s) for s in bf16]
    other_recipe = specs_for(SMOKE.override({"recipe.lr": 0.01}), needs, device="cpu")
    assert not {identity(s) for s in fp32} & {identity(s) for s in other_recipe}


def test_replicates_are_grouped_by_the_numerics_they_were_trained_in():
    rows = [{"replicate": 4, "precision": ["fp32"], "cpus": ["AMD EPYC (Zen 3)"]},
            {"replicate": 6, "precision": ["bf16"], "cpus": ["Intel Xeon (AMX)"]},
            {"replicate": 3, "precision": ["fp32"], "cpus": ["AMD EPYC (Zen 3)"]}]
    assert numerics_groups(rows) == {"bf16 on Intel Xeon (AMX)": [6], "fp32 on AMD EPYC (Zen 3)": [3, 4]}
    assert mixed_numerics(rows[::2]) == ["fp32 on AMD EPYC (Zen 3)"]


def test_a_sitting_that_trained_replicates_side_by_side_counts_once_in_the_studys_time():
    def at(hour, minute=0):
        return f"2026-12-06T{hour:02d}:{minute:02d}:00+00:00"

    rows = [{"replicate": 4, "pieces": [[at(1), at(2)], [at(5), at(5, 30)]]},  # a second sitting finished it
            {"replicate": 5, "pieces": [[at(1, 30), at(3)], [at(5), at(6)]]},  # side by side with r4 both times
            {"replicate": 6, "pieces": [[at(8), at(8, 15)]]}]  # a third sitting, alone
    assert pieces_wall_seconds(rows) == pytest.approx((2 + 1 + 0.25) * 3600)
    rows[1]["pieces"][0][0] = None  # a piece from before records kept its times
    assert pieces_wall_seconds(rows) is None
    assert pieces_wall_seconds([{"replicate": 3}]) is None  # a row read from a report of an older suite


def test_a_mixed_study_shows_each_verdicts_part_on_each_numerics_alone():
    """Replicates trained in two numerics, the second's transfers from the other half 3 points lower: each
    verdict shows the part it names on each numerics' replicates alone, where the two disagree; the verdict
    itself is still the one on every replicate."""
    from dataclasses import replace

    import numpy as np

    from repro.claims import evaluate_all, on_replicate_groups
    from repro.format import on_replicates_alone
    from repro.summary import verdict_table
    from repro.simulated_tables import paper_truth, simulate_table

    table = simulate_table(paper_truth(), 6, np.random.default_rng(0))
    table = replace(table, rows=[replace(r, top1=r.top1 - 0.03) if r.replicate >= 3 and r.treatment == "AnB"
                                 else r for r in table.rows])
    groups = {"fp32 on one CPU": [0, 1, 2], "bf16 on another": [3, 4, 5, 6], "bf16 on a third": [7]}  # r6, r7:
    # partly trained replicates, recorded but not in the table
    verdicts = evaluate_all(table)
    shown = on_replicate_groups(verdicts, table, groups)
    assert [(v.claim, v.verdict, v.effect) for v in shown] == [(v.claim, v.verdict, v.effect) for v in verdicts]
    early = next(v for v in shown if v.claim == "early_layer_generality")
    fp32, bf16 = early.details["by_numerics"]
    assert (fp32["replicates"], fp32["used"], bf16["replicates"], bf16["used"]) == ([0, 1, 2], 3, [3, 4, 5], 3)
    assert bf16["effect"] < fp32["effect"] - 3  # 3 points of a base near 60%: about 5% of base over chance
    assert fp32["ci"][0] < fp32["effect"] < fp32["ci"][1]
    assert on_replicates_alone(bf16, "%", typographic=True).startswith("bf16 on another (r3, r4, r5): −")
    assert "early_layer_generality, AnB - BnB n=1 within ±2%, on fp32 on one CPU (r0, r1, r2): " in verdict_table(shown)
    one_numerics_in_table = {"fp32 on one CPU": [0, 1, 2, 3, 4, 5], "bf16 on a third": [7]}
    assert on_replicate_groups(verdicts, table, one_numerics_in_table) == verdicts


def test_a_study_in_pieces_trains_each_missing_replicate_once_and_judges_them_all(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    study = tmp_path / "study"
    common = ["--profile", "smoke", "--study-dir", str(study), *CLAIM, *_sets()]

    # the first sitting trains both replicates and writes each as it finishes
    assert main(["run", *common, "--store", str(tmp_path / "store1"), "--workers", "2"]) == 0
    records = read_records(study)
    assert sorted(records) == [0, 1] and all(len(r.runs) == 4 for r in records.values())
    trained_by = records[0].trained_by
    assert trained_by["precision"] == ["fp32"] and trained_by["cpus"] and trained_by["training_wall_seconds"] > 0
    assert trained_by["command"] == reproduce_command(["run", *common, "--store", str(tmp_path / "store1"),
                                                       "--workers", "2"])  # what a later sitting types again
    assert trained_by["command"].startswith(("repro run --profile smoke", "python -m repro.cli run --profile"))
    assert "--store" not in trained_by["command"]

    # a later sitting on a machine with an empty store: the folder lacks r1 only, so r1 alone is trained
    first_r0 = (study / "replicates" / "r0.json").read_text()
    (study / "replicates" / "r1.json").unlink()
    capsys.readouterr()
    assert main(["plan", *common, "--store", str(tmp_path / "store2")]) == 0
    plan = capsys.readouterr().out
    assert "replicate r0 done" in plan and "replicate r1 missing" in plan and "4 to train" in plan
    assert main(["report", *common, "--store", str(tmp_path / "store2"), "--quiet"]) == 0
    assert (study / "replicates" / "r0.json").read_text() == first_r0  # a recorded replicate is never retrained
    assert sorted(read_records(study)) == [0, 1]
    doc = json.loads((study / "results.json").read_text())
    elg = [c for c in doc["claims"] if c["id"] == "early_layer_generality"][0]
    assert "waits_for" not in elg  # judged on both replicates: nothing it needs is missing
    assert [r["replicate"] for r in doc["session"]["replicate_records"]] == [0, 1]
    assert doc["session"]["numerics_by_replicate"] == ["fp32 on " + trained_by["cpus"][0]]
    assert {r["replicate"] for r in doc["runs"]} == {0, 1}
    page = (study / "index.html").read_text()
    assert "Replicate r0" in page and "Replicate r1" in page

    # judged without training: a fresh clone judges the committed records alone; what is missing waits
    (study / "replicates" / "r1.json").unlink()
    assert main(["report", *common, "--store", str(tmp_path / "store3"), "--no-train", "--quiet"]) == 0
    assert not (tmp_path / "store3").exists() and sorted(read_records(study)) == [0]
    doc = json.loads((study / "results.json").read_text())
    assert {r["replicate"] for r in doc["runs"]} == {0} and doc["session"]["trained"] == 0
    elg = [c for c in doc["claims"] if c["id"] == "early_layer_generality"][0]
    assert elg["verdict"] == "inconclusive" and len(elg["waits_for"]) == 4  # r1's four runs

    # a folder with no record yet (a new study, or a mistyped path): every claim waits for all of its runs,
    # none is judged "premise not met" on premises that nothing could measure
    assert main(["report", *common[:3], str(tmp_path / "empty"), *common[4:], "--store", str(tmp_path / "store4"),
                 "--no-train", "--quiet"]) == 0
    doc = json.loads((tmp_path / "empty" / "results.json").read_text())
    assert {c["verdict"] for c in doc["claims"]} == {"inconclusive"}
    elg = [c for c in doc["claims"] if c["id"] == "early_layer_generality"][0]
    assert len(elg["waits_for"]) == 8  # both replicates' four runs


def _record(tmp_path, replicate, specs, precision="bf16"):
    folder = tmp_path / "replicates"
    folder.mkdir(exist_ok=True)
    runs = []
    for s in specs:
        spec = s.__class__(s.split, s.target, s.treatment, s.n, s.replicate,
                           s.config.replace('"precision":"fp32"', f'"precision":"{precision}"'))
        runs.append({"key": spec.key, "spec": spec.to_dict(), "metrics": {"top1": 0.5}})
    (folder / f"r{replicate}.json").write_text(json.dumps({"replicate": replicate, "trained_by": {}, "runs": runs}))


def test_a_replicate_trained_in_other_numerics_counts_as_done_and_stands_for_the_planned_runs(tmp_path):
    specs = specs_for(SMOKE.override({"replicates": 2}), [Need("random", "BnB")], device="cpu")
    r0 = [s for s in specs if s.replicate == 0]
    _record(tmp_path, 0, r0)
    status = replicate_status(specs, tmp_path)
    assert status.done == [0] and status.missing == [1] and not status.stale
    merged = study_specs(specs, status.records)
    assert [identity(s) for s in merged] == [identity(s) for s in specs]
    assert {s.cfg["numerics"]["precision"] for s in merged if s.replicate == 0} == {"bf16"}
    assert {s.cfg["numerics"]["precision"] for s in merged if s.replicate == 1} == {"fp32"}


def test_a_record_that_lacks_runs_of_the_plan_is_trained_again_whole(tmp_path):
    specs = specs_for(SMOKE, [Need("random", "BnB")], device="cpu")
    _record(tmp_path, 0, [s for s in specs if s.replicate == 0 and s.n != 7])
    status = replicate_status(specs, tmp_path)
    assert status.missing == [0, 1] and "lacks 1 of the plan's" in status.stale[0]


def test_an_unreadable_record_is_one_error_that_says_what_to_do(tmp_path):
    (tmp_path / "replicates").mkdir()
    (tmp_path / "replicates" / "r3.json").write_text("{not json")
    with pytest.raises(Exception, match=r"r3.json is not a readable replicate record .*restore it from git"):
        read_records(tmp_path)


def test_a_record_that_lacks_runs_is_completed_in_place_on_a_machine_that_trains_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    study = tmp_path / "study"
    one = ["--profile", "smoke", "--study-dir", str(study), *_sets(["replicates=1"])]
    assert main(["run", *one, "--claims", "early_layer_generality", "--store", str(tmp_path / "s1"), "--quiet"]) == 0
    before = read_records(study)[0]
    # the plan grows (a second claim's runs); an empty store on this machine adds only what the record lacks,
    # retraining the base those runs copy from, which comes back bit for bit
    assert main(["run", *one, "--claims", "early_layer_generality,coadaptation_dip", "--store",
                 str(tmp_path / "s2"), "--quiet"]) == 0
    after = read_records(study)[0]
    assert set(before.runs) < set(after.runs)
    assert all(after.runs[k][1] == m for k, (_, m) in before.runs.items())
    added = set(after.runs) - set(before.runs)
    assert {after.runs[k][0].treatment for k in added} == {"BnB+"}
    assert [e["runs"] for e in after.trained_by["extended"]] == [[after.runs[k][0].label for k in added]]
    began = ("command", "git_commit", "git_dirty", "hardware")  # who began it stays; the piece has its own
    assert [after.trained_by[f] for f in began] == [before.trained_by[f] for f in began]
    assert "early_layer_generality,coadaptation_dip" in after.trained_by["extended"][0]["command"]
    retrained = Store(tmp_path / "s2")
    base = next(spec for spec, _ in before.runs.values() if spec.treatment == "base" and spec.target == "B")
    assert retrained.result(base)["curve"] == before.runs[base.key][1]["curve"]


class StopAfterFirstGroup:
    """A clock for repro.execute whose time limit comes the moment the first group has finished (a sitting
    that ends part way through a replicate, made deterministic)."""

    def __init__(self, monkeypatch):
        import time

        import repro.execute

        self.real, self.past = time, False
        record = repro.execute._record

        def record_then_stop(*args, **kwargs):
            record(*args, **kwargs)
            self.past = True

        monkeypatch.setattr(repro.execute, "_record", record_then_stop)
        monkeypatch.setattr(repro.execute, "time", self)

    def time(self):
        return float("inf") if self.past else self.real.time()

    def sleep(self, seconds):
        self.real.sleep(seconds)


def test_a_replicate_stopped_part_way_keeps_what_it_finished_and_a_later_sitting_adds_the_rest(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    one = ["--profile", "smoke", *CLAIM, *_sets(["replicates=1"]), "--quiet"]
    assert main(["run", *one, "--study-dir", str(tmp_path / "whole"), "--store", str(tmp_path / "s0")]) == 0
    [whole] = read_records(tmp_path / "whole").values()

    # the sitting's time runs out after the first group: the replicate is written with what it finished
    study = tmp_path / "pieces"
    with monkeypatch.context() as m:
        StopAfterFirstGroup(m)
        assert main(["run", *one, "--study-dir", str(study), "--store", str(tmp_path / "s1"),
                     "--stop-after", "600"]) == 0
    assert "stopped (at --stop-after" in capsys.readouterr().out
    [part] = read_records(study).values()
    assert 0 < len(part.runs) < 4 and len(part.lacks) == 4 - len(part.runs)
    assert all(whole.runs[k][1]["curve"] == m["curve"] for k, (_, m) in part.runs.items())
    assert main(["plan", *one[:-1], "--study-dir", str(study), "--store", str(tmp_path / "s2")]) == 0
    assert f"lacks {4 - len(part.runs)} of the plan's 4 runs" in capsys.readouterr().out.replace("\n", " ")

    # a sitting stopped before it finished anything: the record keeps its runs and adds the piece's time
    assert main(["run", *one, "--study-dir", str(study), "--store", str(tmp_path / "s2"), "--stop-after",
                 "0.0001"]) == 0
    [idle] = read_records(study).values()
    assert set(idle.runs) == set(part.runs) and [e["runs"] for e in idle.trained_by["extended"]] == [[]]
    assert idle.trained_by["training_wall_seconds"] > part.trained_by["training_wall_seconds"]

    # a later sitting on a machine that trains alike, with an empty store: the rest, on bases trained again
    assert main(["run", *one, "--study-dir", str(study), "--store", str(tmp_path / "s2")]) == 0
    [done] = read_records(study).values()
    assert not done.lacks and set(done.runs) == set(whole.runs)
    assert all(done.runs[k][1]["curve"] == m["curve"] and done.runs[k][1]["top1"] == m["top1"]
               for k, (_, m) in whole.runs.items())
    assert [len(e["runs"]) for e in done.trained_by["extended"]] == [0, 4 - len(part.runs)]
    assert done.trained_by["training_wall_seconds"] == pytest.approx(
        part.trained_by["training_wall_seconds"] + sum(e["wall_seconds"] for e in done.trained_by["extended"]))
    pieces = [[done.trained_by["began_at"], done.trained_by["written_at"]]] + \
        [[e["began_at"], e["written_at"]] for e in done.trained_by["extended"]]
    assert all(pieces) and pieces == sorted(pieces)  # each sitting's piece, when it began and was written
    wall = done.trained_by["training_wall_seconds"]  # the first piece's runs, then the later pieces whole
    assert wall - 3 <= pieces_wall_seconds(replicate_rows({0: done})) <= wall + 120  # + loading the data


def test_a_base_that_comes_back_otherwise_than_recorded_is_not_mixed_into_its_replicate(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    one = ["--profile", "smoke", *CLAIM, *_sets(["replicates=1"]), "--study-dir", str(tmp_path / "study")]
    with monkeypatch.context() as m:
        StopAfterFirstGroup(m)
        assert main(["run", *one, "--store", str(tmp_path / "s1"), "--stop-after", "600", "--quiet"]) == 0
    path = tmp_path / "study" / "replicates" / "r0.json"
    doc = json.loads(path.read_text())
    doc["runs"][0]["metrics"]["curve"][-1][1] += 0.01  # as another CPU of the same name would have trained it
    path.write_text(json.dumps(doc))
    capsys.readouterr()
    assert main(["run", *one, "--store", str(tmp_path / "s2")]) == 0
    assert "came out differently here than in r0.json" in capsys.readouterr().err
    [done] = read_records(tmp_path / "study").values()
    store = Store(tmp_path / "s2")
    assert len(done.runs) == 4 and "extended" not in done.trained_by
    assert all(store.result(spec)["curve"] == m["curve"] for spec, m in done.runs.values())


def test_a_study_sent_sigterm_stops_its_workers_in_checkpoints_and_keeps_what_finished(tmp_path):
    """`kill PID` of a study running in the background (nohup, where Ctrl-C cannot reach it, or a batch
    system's stop) ends it as --stop-after's limit would: its worker processes stop in checkpoints, and the
    replicate in progress is written with the runs it finished."""
    import signal
    import subprocess
    import sys
    import time

    from pathlib import Path

    from tests.test_reliability import REPO, environment

    study, store = tmp_path / "study", tmp_path / "store"
    command = [sys.executable, "-m", "repro.cli", "run", "--profile", "smoke", *CLAIM, "--workers", "2",
               *_sets(["replicates=1", "recipe.epochs=60"]), "--study-dir", str(study), "--store", str(store)]
    session = subprocess.Popen(command, cwd=REPO, env=environment(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list(store.glob("runs/*/result.json")) and time.time() < deadline and session.poll() is None:
        time.sleep(0.2)
    assert session.poll() is None, "the study ended before it could be stopped: train it longer"
    children = subprocess.run(["pgrep", "-P", str(session.pid)], capture_output=True, text=True).stdout.split()
    assert children  # its worker processes
    session.send_signal(signal.SIGTERM)
    out, err = session.communicate(timeout=120)
    assert "stopped (at --stop-after, or by SIGTERM)" in out, err[-2000:]
    [part] = read_records(study).values()
    assert part.lacks and len(part.runs) + len(part.lacks) == 4  # the bases it finished, the rest to come
    kept = [log.read_text() for log in store.glob("runs/*/log.txt")]
    assert any("checkpoint kept" in log for log in kept)  # a worker stopped in a checkpoint, not killed
    time.sleep(1)

    def running(pid):  # an exited process not yet reaped (state Z) is not running
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    assert not [pid for pid in children if running(pid)]  # no worker left behind


def test_stop_after_must_be_a_positive_number_of_minutes(tmp_path, capsys):
    assert main(["run", "--profile", "smoke", "--store", str(tmp_path / "s"), "--stop-after", "0"]) == 2
    assert "--stop-after must be a positive number of minutes" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


class OneGroupAtATime:
    """A backend with two slots that 'trains' a group by storing a result for each of its runs, finishing the
    oldest running group at each wait; at every submit it notes the replicate submitted, the replicates of the
    groups still running and the replicates the study folder holds whole."""

    def __init__(self, store, study):
        self.store, self.study, self.slots, self.split_for = store, study, 2, 2
        self.submitted, self.running, self.log = [], [], []

    def submit(self, group):
        whole = sorted(r for r, record in read_records(self.study).items() if not record.lacks)
        self.log.append((group[0].replicate, [self.submitted[h][0].replicate for h in self.running], whole))
        self.submitted.append(group)
        self.running.append(len(self.submitted) - 1)
        return len(self.submitted) - 1

    def wait(self, handles, timeout):
        oldest = min(handles)
        for spec in self.submitted[oldest]:
            self.store.save_result(spec, {"w": torch.zeros(1)}, {"top1": 0.5, "diverged": False})
        self.running.remove(oldest)
        return [(oldest, {"trained": [s.key for s in self.submitted[oldest]], "diverged": [], "elsewhere": []})]

    def describe(self, handles):
        return ""

    def close(self):
        pass


def test_the_next_replicate_fills_a_worker_the_last_one_leaves_idle_and_each_is_written_when_it_is_whole(
        tmp_path, monkeypatch):
    import repro.execute
    from repro.study import StudyOptions, all_needs, train_replicates

    profile = SMOKE.override({"replicates": 2, "layers": 1, "finetune_layers": 1})
    specs = specs_for(profile, all_needs(["early_layer_generality", "coadaptation_dip"]), device="cpu")
    study, store = tmp_path / "study", Store(tmp_path / "store")
    backend = OneGroupAtATime(store, study)
    monkeypatch.setattr(repro.execute, "backend_for", lambda *args, **kwargs: backend)
    monkeypatch.setattr(repro.execute, "decode_first", lambda *args, **kwargs: None)
    train_replicates(profile, specs, store, StudyOptions(study_dir=str(study)), workers=2, progress=False)

    replicates = [r for r, _, _ in backend.log]
    assert replicates == sorted(replicates)  # every group of r0 is started before any of r1
    r0_groups = replicates.count(0)
    assert r0_groups % 2 == 1  # an odd number on two workers: the last one would train alone
    first_of_r1, running, whole = backend.log[r0_groups]
    assert running == [0] and whole == []  # r1 begins beside r0's last group, not after it
    assert backend.log[r0_groups + 1][2] == [0]  # r0 is written as soon as its last group has finished
    records = read_records(study)
    assert sorted(records) == [0, 1] and not any(record.lacks for record in records.values())
    assert all(set(record.runs) == {s.key for s in specs if s.replicate == r} for r, record in records.items())
