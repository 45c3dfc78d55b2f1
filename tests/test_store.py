"""The run store: round trips, checksums that catch corruption, locks, atomic writes."""
import errno
import os
from pathlib import Path

import pytest
import torch

from repro.profiles import SMOKE
from repro.runs import RunSpec, canonical, training_config
from repro.store import CorruptFileWarning, Store, StoreError

pytestmark = pytest.mark.smoke
SPEC = RunSpec("random:1", "B", "AnB", 3, 1, canonical(training_config(SMOKE)))
WEIGHTS = {"layers.0.weights.weight": torch.randn(4, 3, 5, 5), "layers.0.weights.bias": torch.zeros(4)}


def test_a_finished_run_round_trips(store):
    assert not store.is_done(SPEC)
    store.save_result(SPEC, WEIGHTS, {"top1": 0.5, "final_top1": 0.4, "diverged": False, "curve": [[1, 0.4]]})
    again = Store(store.root)
    assert again.is_done(SPEC) and again.result(SPEC)["top1"] == 0.5
    assert all(torch.equal(again.weights(SPEC)[k], v) for k, v in WEIGHTS.items())
    [row] = again.index_rows()
    assert row["key"] == SPEC.key and row["status"] == "done"


@pytest.mark.parametrize("damage", ["truncate-weights", "truncate-result", "edit-result"])
def test_a_corrupt_file_is_reported_set_aside_and_the_run_retrained(store, damage):
    store.save_result(SPEC, WEIGHTS, {"top1": 0.5, "final_top1": 0.4, "diverged": False, "curve": []})
    d = store.run_dir(SPEC)
    path = d / ("weights.safetensors" if "weights" in damage else "result.json")
    data = path.read_bytes()
    if damage.startswith("truncate"):
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_text(path.read_text().replace('"top1": 0.5', '"top1": 0.9'))
    with pytest.warns(CorruptFileWarning, match=str(path.name)):
        assert not store.is_done(SPEC)
    assert any(store.root.joinpath("quarantine").iterdir())  # kept, never deleted


def test_weights_damaged_in_place_are_caught_when_loaded(store):
    """A flipped byte leaves the size as it was: the status (which never reads weights) cannot see it; loading
    them checks their checksum, sets them aside and makes the run unfinished, to be retrained."""
    store.save_result(SPEC, WEIGHTS, {"top1": 0.5, "final_top1": 0.4, "diverged": False, "curve": []})
    path = store.run_dir(SPEC) / "weights.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert store.is_done(SPEC)
    with pytest.warns(CorruptFileWarning, match="weights.safetensors: checksum mismatch"):
        with pytest.raises(StoreError, match="corrupt and are set aside; rerun the plan"):
            store.weights(SPEC)
    assert not store.is_done(SPEC) and not path.exists()
    assert any(p.name.endswith("weights.safetensors") for p in store.root.joinpath("quarantine").iterdir())


def later(path):
    """Move a rewritten file's mtime on by a second: a rewrite within the file system's clock tick keeps it."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_the_status_of_a_finished_run_does_not_read_its_weights(store, monkeypatch):
    store.save_result(SPEC, WEIGHTS, {"top1": 0.5, "final_top1": 0.4, "diverged": False, "curve": []})
    weights = str(store.run_dir(SPEC) / "weights.safetensors")
    opened, result_reads = [], []
    real_open, real_read_text = open, Path.read_text

    def watched_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def watched_read_text(self, *args, **kwargs):
        result_reads.append(self.name)
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watched_open)
    monkeypatch.setattr(Path, "read_text", watched_read_text)
    again = Store(store.root)
    assert all(again.is_done(SPEC) for _ in range(5))
    assert weights not in opened
    assert result_reads.count("result.json") <= 1  # verified once per process while size and mtime stay
    monkeypatch.undo()
    path = store.run_dir(SPEC) / "result.json"
    path.write_text(path.read_text().replace('"top1": 0.5', '"top1": 0.9'))  # the same size, a new mtime
    later(path)
    with pytest.warns(CorruptFileWarning, match="result.json"):
        assert not store.is_done(SPEC)


def test_a_result_stored_without_the_weights_size_is_verified_by_checksum(store):
    """Results written before the size was recorded: the weights' checksum decides, as it did then."""
    import hashlib
    import json

    from repro.runs import canonical

    store.save_result(SPEC, WEIGHTS, {"top1": 0.5, "final_top1": 0.4, "diverged": False, "curve": []})
    path = store.run_dir(SPEC) / "result.json"
    record = json.loads(path.read_text())
    metrics = {k: v for k, v in record["metrics"].items() if k != "weights_bytes"}
    path.write_text(json.dumps({"metrics": metrics, "sha256": hashlib.sha256(canonical(metrics).encode()).hexdigest()}))
    assert Store(store.root).is_done(SPEC)
    weights = store.run_dir(SPEC) / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    later(weights)
    with pytest.warns(CorruptFileWarning, match="checksum mismatch"):
        assert not store.is_done(SPEC)


def test_a_corrupt_checkpoint_restarts_the_run(store):
    store.save_checkpoint(SPEC, WEIGHTS, {"iteration": 7, "curve": [], "losses": []})
    assert store.load_checkpoint(SPEC)[1]["iteration"] == 7
    ckpt = store.run_dir(SPEC) / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.warns(CorruptFileWarning):
        assert store.load_checkpoint(SPEC) is None


def test_only_one_process_holds_a_run(store):
    first = store.try_lock(SPEC)
    assert first is not None and Store(store.root).try_lock(SPEC) is None
    first.release()
    assert store.try_lock(SPEC) is not None


def test_a_full_disk_keeps_the_previous_checkpoint(store, monkeypatch):
    store.save_checkpoint(SPEC, WEIGHTS, {"iteration": 5, "curve": [], "losses": []})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("repro.store.save_file", full)
    with pytest.raises(StoreError, match="disk full while writing .*checkpoint.safetensors"):
        store.save_checkpoint(SPEC, WEIGHTS, {"iteration": 9, "curve": [], "losses": []})
    monkeypatch.undo()
    assert store.load_checkpoint(SPEC)[1]["iteration"] == 5
    assert not list(store.run_dir(SPEC).glob(".*.tmp"))


def test_an_unwritable_store_says_where_and_what_to_do(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="--store PATH or REPRO_STORE"):
        Store(blocker / "store")
