"""Reliability: a killed session resumes, two sessions share a store, a corrupt file is retrained, diverged
runs are kept and counted against the claim, a full disk damages nothing, and the parsers of specs and
options raise ValueError on garbage (hypothesis). Bad input on the command line: tests/test_cli.py.

The crash and concurrency tests run the real `repro` command in subprocesses and kill them for real. Every
session here trains the same tiny plan (5 networks, 3 groups) of the smoke profile on synthetic data.
"""
import ast
import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro.cli import main
from repro.profiles import SMOKE, get_profile
from repro.runs import TREATMENTS, RunSpec, canonical, specs_for, training_config
from repro.store import Store, StoreError
from repro.study import all_needs
from repro.train import iterations

pytestmark = pytest.mark.smoke
REPO = Path(__file__).resolve().parents[1]
# needs BnB and BnB+ on the random splits: base B, then 3 transfers from it in one group, then base A
# (groups train longest critical path first)
CLAIM = "coadaptation_dip"
SETS = ["replicates=1", "recipe.epochs=2", "layers=1,7", "finetune_layers=3", "natman_layers=2",
        "random_layers=2", "checkpoint_every=2"]
# One worker: these sessions are killed with SIGKILL, which a pool's worker processes would outlive.
TINY = ["--profile", "smoke", "--claims", CLAIM, "--quiet", "--workers", "1",
        *[a for s in SETS for a in ("--set", s)]]


# ---- helpers ------------------------------------------------------------------------------------------
def environment(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REPRO_STORE", "REPRO_DATA")}
    # one thread each: the same numbers in every process, and two sessions do not fight over the cores
    env.update(REPRO_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="1", PYTHONWARNINGS="default")
    # this checkout's repro, also where a subprocess runs in another folder and repro is not installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def launch(store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repro.cli", "run", *TINY, *extra, "--store", str(store)],
                            cwd=REPO, env=environment(store.parent), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def repro_run(store: Path, *extra: str) -> subprocess.CompletedProcess:
    process = launch(store, *extra)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def summary(out: str) -> dict[str, int]:
    """The counts of the session's last line: 'repro: 2 trained, 3 cached, 0 diverged, 0 trained by ...'."""
    m = re.search(r"(\d+) trained, (\d+) cached, (\d+) diverged, (\d+) trained by another session", out)
    assert m, out
    return dict(zip(("trained", "cached", "diverged", "elsewhere"), map(int, m.groups())))


def run_dirs(store: Path) -> dict[str, Path]:
    return {d.name: d for d in (store / "runs").iterdir()}


def spec_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "spec.json").read_text())


def results(store: Path) -> dict[str, dict]:
    """What a run computed (curves, scores, weights checksum), by key; not how long it took."""
    out = {}
    for key, d in run_dirs(store).items():
        m = json.loads((d / "result.json").read_text())["metrics"]
        out[key] = {k: m[k] for k in ("curve", "losses", "top1", "final_top1", "diverged", "weights_sha256")}
    return out


def starts(run_dir: Path) -> int:
    """How many times a run was started (train_group logs one 'start' line per attempt)."""
    return sum(" start " in line for line in (run_dir / "log.txt").read_text().splitlines())


def tiny_specs(*extra_sets: str) -> list[RunSpec]:
    return specs_for(get_profile("smoke", SETS + list(extra_sets)), all_needs([CLAIM]))


def status_json(store: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["status", "--store", str(store), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def assert_index_matches_folders(store: Path, capsys) -> None:
    """Every finished run is in the index exactly once, done; `repro status` says the same."""
    finished = {k for k, d in run_dirs(store).items() if (d / "result.json").exists()}
    rows = Store(store).index_rows()
    assert sorted(r["key"] for r in rows) == sorted(finished)
    assert {r["status"] for r in rows} == {"done"}
    status = status_json(store, capsys)
    assert status["counts"] == {"done": len(finished)}
    assert {r["key"] for r in status["runs"]} == finished


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A store holding the tiny plan, trained by one uninterrupted session."""
    store = tmp_path_factory.mktemp("uninterrupted") / "store"
    assert summary(repro_run(store).stdout)["trained"] == len(tiny_specs()) == 5
    return store


# ---- kill and resume ----------------------------------------------------------------------------------
def transfer_iteration(store: Path) -> int:
    """The iteration of the transfers' last checkpoint (0 before one): by then both bases are finished."""
    for d in (store / "runs").glob("*"):
        try:
            if spec_of(d)["treatment"] != "base":
                return json.loads((d / "checkpoint.json").read_text())["iteration"]
        except (FileNotFoundError, json.JSONDecodeError):  # not written yet (or being replaced, on some systems)
            pass
    return 0


def test_a_killed_session_resumes_from_its_last_checkpoint_and_retrains_nothing_finished(tmp_path, finished,
                                                                                          capsys):
    store = tmp_path / "store"
    profile = get_profile("smoke", SETS)
    _, total = iterations(profile.recipe, profile.images_per_class * profile.num_classes // 2)  # one half
    kill_after = random.Random(2014).randrange(2, total - 8, 2)  # a seeded random point in the transfers
    victim = launch(store)
    deadline = time.time() + 120
    while not (store / "runs").exists() or transfer_iteration(store) < kill_after:
        assert victim.poll() is None, f"the session ended before the kill: {victim.stderr.read()}"
        assert time.time() < deadline, f"no transfer checkpoint at iteration {kill_after} within 120 s"
        time.sleep(0.002)
    victim.send_signal(signal.SIGKILL)  # wherever it is now: training, writing a checkpoint, or a result
    victim.communicate()

    runs = run_dirs(store)
    done = {k: (d / "result.json").stat().st_mtime_ns for k, d in runs.items() if (d / "result.json").exists()}
    interrupted = {k: json.loads((d / "checkpoint.json").read_text())["iteration"] for k, d in runs.items()
                   if k not in done and (d / "checkpoint.json").exists()}
    assert done and interrupted, (done, interrupted)
    for key in interrupted:  # a transfer was interrupted after the base it copies from had finished
        assert RunSpec.from_dict(spec_of(runs[key])).parent.key in done

    counts = summary(repro_run(store).stdout)
    assert counts["cached"] == len(done) and counts["trained"] == 5 - len(done)
    for key, mtime in done.items():  # finished runs were not trained again
        assert (runs[key] / "result.json").stat().st_mtime_ns == mtime and starts(runs[key]) == 1
    for key, iteration in interrupted.items():  # interrupted runs went on from their last checkpoint
        assert iteration > 0
        assert f"resumed from the checkpoint at iteration {iteration}" in (runs[key] / "log.txt").read_text()
    assert results(store) == results(finished)  # the same curves and the same weights, bit for bit
    assert not [p.name for p in store.glob("runs/*/*") if "checkpoint" in p.name or p.name.endswith(".tmp")]
    assert_index_matches_folders(store, capsys)


class Killed(BaseException):
    """Stands for the process dying at this point (not an OSError: nothing is cleaned up)."""


@pytest.mark.parametrize("dies_at, resumes_at", [(1, 5), (2, 9)])  # 1: before checkpoint.json, 2: after
def test_a_process_killed_while_writing_a_checkpoint_resumes_from_a_whole_one(store, monkeypatch, dies_at,
                                                                               resumes_at):
    import torch

    spec = tiny_specs()[0]
    tensors = {5: {"w": torch.zeros(3)}, 9: {"w": torch.ones(3)}}
    store.save_checkpoint(spec, tensors[5], {"iteration": 5})
    replace, calls = os.replace, []

    def dying_replace(src, dst):  # the renames of a checkpoint: tensors, checkpoint.json, tensors into place
        calls.append(dst)
        if len(calls) == dies_at + 1:
            raise Killed
        replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(Killed):
        store.save_checkpoint(spec, tensors[9], {"iteration": 9})
    monkeypatch.undo()
    loaded, meta = Store(store.root).load_checkpoint(spec)
    assert meta["iteration"] == resumes_at and torch.equal(loaded["w"], tensors[resumes_at]["w"])


def test_a_network_is_the_same_in_every_process():
    """Nothing of a new network depends on the global random state (a process's own): the same numbers after
    a resume in another process. (Batch norm's running statistics once did, through a shape probe.)"""
    import torch

    from repro.models import get_model
    from repro.transfer import build_treatment

    spec = tiny_specs()[0]
    states = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        states.append(build_treatment(spec, lambda: get_model(SMOKE.arch, 4, SMOKE.recipe.crop)).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


# ---- concurrent sessions ------------------------------------------------------------------------------
def test_two_sessions_on_one_store_train_each_run_exactly_once(tmp_path, finished, capsys):
    store = tmp_path / "store"
    sessions = [launch(store, "--workers", "1") for _ in range(2)]
    outputs = [s.communicate(timeout=300) for s in sessions]
    for s, (out, err) in zip(sessions, outputs):
        assert s.returncode == 0, err
    trained = [summary(out)["trained"] for out, _ in outputs]
    assert sum(trained) == 5 and min(trained) >= 1, trained  # both worked, and no run was trained twice
    for key, d in run_dirs(store).items():
        log = (d / "log.txt").read_text()
        assert starts(d) == 1 and log.count(" finished: ") == 1, log
    assert results(store) == results(finished)
    assert_index_matches_folders(store, capsys)


# ---- integrity ----------------------------------------------------------------------------------------
def test_a_truncated_weights_file_is_reported_set_aside_and_its_run_retrained(tmp_path, finished, capsys):
    store = tmp_path / "store"
    shutil.copytree(finished, store)
    [base_b] = [d for d in run_dirs(store).values() if spec_of(d)["treatment"] == "base" and
                spec_of(d)["target"] == "B"]  # the base every BnB transfer copies from
    weights = base_b / "weights.safetensors"
    original = weights.read_bytes()
    weights.write_bytes(original[: len(original) // 2])

    session = repro_run(store)
    assert str(weights) in session.stderr and "checksum mismatch" in session.stderr
    assert summary(session.stdout) == {"trained": 1, "cached": 4, "diverged": 0, "elsewhere": 0}
    [kept] = [p for p in (store / "quarantine").iterdir() if p.name.endswith("weights.safetensors")]
    assert kept.read_bytes() == original[: len(original) // 2]  # set aside, never deleted
    assert weights.read_bytes() == original  # retrained, bit-identical on the CPU: its transfers stay valid
    assert starts(base_b) == 2 and all(starts(d) == 1 for d in run_dirs(store).values() if d != base_b)
    assert results(store) == results(finished)
    assert_index_matches_folders(store, capsys)


def test_no_pickle_loading_remains_in_the_library():
    """torch.load unpickles unless told weights_only=True; the store uses safetensors, which never does."""
    unsafe = []
    for path in (REPO / "repro").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = ast.unparse(node.func)
                safe = any(k.arg == "weights_only" and ast.unparse(k.value) == "True" for k in node.keywords)
                if name == "torch.load" and not safe or name in ("pickle.load", "pickle.loads"):
                    unsafe.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
                if name == "np.load" and any(k.arg == "allow_pickle" for k in node.keywords):
                    unsafe.append(f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node)}")
    assert not unsafe


# ---- divergence ---------------------------------------------------------------------------------------
def test_diverged_runs_are_kept_with_their_curves_and_counted_against_the_claim(tmp_path, capsys):
    """Half way through, the learning rate is multiplied by 1e8: every base blows up after its second test.
    The session goes on (the transfers copy from the blown-up bases and diverge too), every run is stored
    as diverged with the curve it had, and the claim's divergence rule makes the comparison inconclusive."""
    from repro.claims import coadaptation_dip, evaluate
    from repro.results import table_from_store

    store = tmp_path / "store"
    sets = ["replicates=2", "layers=3,7", "recipe.lr_steps=0.5", "recipe.gamma=1e8"]  # 2 replicates, a middle n
    session = repro_run(store, *[a for s in sets for a in ("--set", s)])  # exit 0
    specs = tiny_specs(*sets)
    assert summary(session.stdout) == {"trained": 10, "cached": 0, "diverged": 10, "elsewhere": 0}
    assert len(specs) == 10 and session.stdout.count("diverged (stored with its curve; see") == 10
    assert status_json(store, capsys)["counts"] == {"diverged": 10}

    for d in run_dirs(store).values():
        m = json.loads((d / "result.json").read_text())["metrics"]
        stopped = m["losses"][-1][0]
        assert m["diverged"] and stopped < m["iterations"]  # stopped early...
        assert not m["losses"][-1][1] <= SMOKE.divergence_loss  # ...at a loss that was NaN, inf or too high
        assert m["top1"] == pytest.approx(1 / m["num_classes"])  # scored as chance, not as its best test
        if spec_of(d)["treatment"] == "base":  # its curve up to the blow-up is kept
            assert len(m["curve"]) == 2 and all(i < stopped for i, _ in m["curve"])

    table = table_from_store(Store(store), specs, evidence="smoke")
    assert len(table) == 10 and all(r.diverged for r in table.rows)
    verdict = evaluate(coadaptation_dip, table)
    assert verdict.verdict == "premise_not_met"  # every base diverged: none is left to be above chance
    assert "Bases well above chance: every base network diverged" in verdict.explanation
    assert verdict.details["verdict_of_the_test"] == "inconclusive"  # nothing left to test
    lost = verdict.details["lost"]  # each diverged network the claim would have read, set aside and listed
    assert lost and all(x["why"] == "diverged" for x in lost)
    assert {x["network"] for x in lost} == {r.label for r in table.rows if r.treatment in ("base", "BnB", "BnB+")}


# ---- a full disk ---------------------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """In-process training on one thread: on a busy 2-core machine two threads are several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_full_disk_while_checkpointing_stops_the_session_and_damages_nothing(tmp_path, monkeypatch, capsys,
                                                                               one_thread):
    """The disk fills while the second group to train (the transfers from base B) writes its fifth checkpoint:
    a clear StoreError, base B (finished before) and the run's fourth checkpoint intact; the CLI turns it into
    exit 2; freed, the same command resumes."""
    import repro.store
    from repro.execute import execute
    from repro.runs import groups

    store = Store(tmp_path / "store")
    profile = get_profile("smoke", SETS)
    specs = tiny_specs()
    order = groups(specs)
    finished_first, victim = order[0][0], order[1][0]  # here: base B, then the first of the transfers copying it
    assert victim.parent == finished_first
    save_file, seen = repro.store.save_file, {}

    def filling_disk(tensors, path, *args, **kwargs):
        if victim.key in path:
            seen.setdefault("checkpoints", 0)
            seen["checkpoints"] += 1
            if seen["checkpoints"] == 5:
                seen["before"] = {p.name: p.read_bytes() for p in store.run_dir(victim).iterdir()}
                raise OSError(errno.ENOSPC, "No space left on device")
        return save_file(tensors, path, *args, **kwargs)

    monkeypatch.setattr(repro.store, "save_file", filling_disk)
    with pytest.raises(StoreError, match=r"disk full while writing .*checkpoint.safetensors: free some space"):
        execute(specs, profile, store, progress=False)
    assert store.is_done(finished_first)
    weights_first = store.weights(finished_first)
    assert {p.name: p.read_bytes() for p in store.run_dir(victim).iterdir()} == seen["before"]
    assert store.load_checkpoint(victim)[1]["iteration"] == 8  # checkpoints every 2 iterations: 2, 4, 6, 8
    assert not list(store.root.glob("runs/*/.*.tmp"))

    seen.clear()
    capsys.readouterr()
    args = ["run", *TINY, "--store", str(store.root)]
    assert main(args) == 2
    assert "repro: error: disk full while writing" in capsys.readouterr().err

    monkeypatch.undo()
    assert main(args) == 0
    assert "resumed from the checkpoint at iteration 8" in (store.run_dir(victim) / "log.txt").read_text()
    assert all(store.is_done(s) for s in specs)
    assert all(store.weights(finished_first)[k].equal(v) for k, v in weights_first.items())


# ---- property tests of the parsers ---------------------------------------------------------------------
INT_FIELDS = ["replicates", "num_classes", "images_per_class", "checkpoint_every", "recipe.batch_size",
              "recipe.evals", "recipe.top_k", "recipe.crop"]
FLOAT_FIELDS = ["recipe.lr", "recipe.momentum", "recipe.weight_decay", "recipe.epochs", "divergence_loss"]
BOOL_FIELDS = ["natman", "random_splits", "share", "recipe.mirror", "arch.batchnorm"]
TUPLE_FIELDS = ["layers", "finetune_layers", "natman_layers", "random_layers"]
KINDS = {**dict.fromkeys(INT_FIELDS, int), **dict.fromkeys(FLOAT_FIELDS, float), **dict.fromkeys(BOOL_FIELDS, bool),
         **dict.fromkeys(TUPLE_FIELDS + ["recipe.lr_steps"], tuple), "dataset": str}


def field_value(profile, field: str):
    value = profile
    for part in field.split("."):
        value = getattr(value, part)
    return value


finite = st.floats(allow_nan=False, allow_infinity=False)
VALID = {"recipe.crop": st.integers(1, SMOKE.image_size), "recipe.epochs": st.floats(0.01, 1e6)}  # else refused


@given(data=st.data())
def test_valid_set_values_round_trip(data):
    field = data.draw(st.sampled_from(INT_FIELDS + FLOAT_FIELDS + BOOL_FIELDS + TUPLE_FIELDS + ["recipe.lr_steps"]))
    if field in INT_FIELDS:
        value = data.draw(VALID.get(field, st.integers(1, 10**9)))
        text = str(value)
    elif field in FLOAT_FIELDS:
        value = data.draw(VALID.get(field, finite))
        text = repr(value)
    elif field in BOOL_FIELDS:
        value = data.draw(st.booleans())
        words = ["true", "1", "yes", "True", "YES"] if value else ["false", "0", "no", "False", "NO"]
        text = data.draw(st.sampled_from(words))
    elif field in TUPLE_FIELDS:
        value = tuple(data.draw(st.lists(st.integers(1, 7), max_size=7)))
        text = data.draw(st.sampled_from(["{}", "({})", "[{}]"])).format(",".join(map(str, value)))
    else:
        value = tuple(data.draw(st.lists(finite, min_size=1, max_size=4)))
        text = ",".join(map(repr, value))
    profile = SMOKE.override([f"{field}={text}"])
    assert field_value(profile, field) == value
    assert profile.override({field: text}) == profile


@given(field=st.sampled_from([*KINDS, "arch", "recipe"]), text=st.text(max_size=30))
def test_garbage_set_values_raise_a_value_error_naming_the_field(field, text):
    try:
        profile = SMOKE.override([f"{field}={text}"])
    except ValueError as e:
        assert field in str(e)
        return
    assert field not in ("arch", "recipe"), "a group of fields was replaced by a string"
    assert type(field_value(profile, field)) is KINDS[field]


@given(item=st.text(max_size=40))
def test_garbage_set_assignments_raise_value_errors(item):
    name = item.split("=")[0]
    try:
        SMOKE.override([item])
    except ValueError as e:
        assert "--set" in str(e) or repr(name) in str(e) or name.strip() in str(e)


VALID_SPEC = RunSpec("random:3", "B", "AnB", 4, 1, canonical(training_config(SMOKE))).to_dict()
anything = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=6)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(d=st.one_of(
    st.dictionaries(st.sampled_from(list(VALID_SPEC) + ["extra"]), anything, max_size=7),
    st.builds(lambda k, v: {**VALID_SPEC, k: v}, st.sampled_from(list(VALID_SPEC)),
              anything | st.sampled_from(TREATMENTS) | st.from_regex(r"random:\w{0,4}|natman", fullmatch=True)),
))
def test_run_spec_from_any_dict_is_a_spec_or_a_clear_error(d):
    try:
        spec = RunSpec.from_dict(d)
    except (ValueError, TypeError, KeyError):
        return
    assert RunSpec.from_dict(spec.to_dict()) == spec and RunSpec.from_dict(spec.to_dict()).key == spec.key
    assert isinstance(spec.n, int) and not isinstance(spec.n, bool) and isinstance(spec.split, str)


@given(split=st.one_of(st.text(max_size=12), st.from_regex(r"random:.{0,12}", fullmatch=True),
                       st.integers(0, 2**40).map(lambda s: f"random:{s}"), st.just("natman")))
def test_split_specs_give_two_halves_or_a_value_error_naming_them(split):
    from repro.data.splits import split_classes

    try:
        halves = split_classes(split, 10, [True] * 4 + [False] * 6)
    except ValueError as e:
        assert repr(split) in str(e) and "random:<seed>" in str(e)
        return
    assert split == "natman" or re.fullmatch(r"random:[0-9]+", split)
    assert sorted(halves["A"] + halves["B"]) == list(range(10)) and len(halves["A"]) in (4, 5)
