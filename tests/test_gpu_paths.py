"""The GPU code paths, exercised on the CPU in CI: bf16 autocast and channels_last in a Group, the worker-pool
executor, the choice of GPUs, and the input pipeline of file-backed data (ILSVRC-2012).

On a GPU machine, `REPRO_TEST_DEVICE=cuda pytest -m smoke tests/test_gpu_paths.py` runs the device tests on
the GPU (benchmarks/gpu_check.py does this).
"""
import dataclasses
import os
import signal
import threading

import pytest
import torch

from repro.data import DataError, load_dataset
from repro.backends.pool import _gpu_worker_init, gpu_slots
from repro.execute import execute
from repro.loader import BatchStream, preprocess_imagenet, use_preprocessed, val_chunks
from repro.models import layer_parameters
from repro.profiles import SMOKE, get_profile
from repro.runs import RunSpec, canonical, specs_for, training_config
from repro.settings import TrainingSettings
from repro.store import Store
from repro.study import all_needs
from repro.train import Group, Task, batch_indices, iterations, request_stop
from tests.data_fixtures import jpeg_bytes, write

pytestmark = pytest.mark.smoke
CONFIG = canonical(training_config(SMOKE))
BASE = RunSpec("random:0", "B", "base", 0, 0, CONFIG)
DEVICE = torch.device(os.environ.get("REPRO_TEST_DEVICE", "cpu"))
ON_CUDA = DEVICE.type == "cuda"


def build(specs, task, parents=None, *, device="cpu", recipe=SMOKE.recipe, precision=None, **fields):
    """A group trained by the smoke profile's settings with `recipe` and other profile `fields` (bf16,
    channels_last, compile, cuda_graphs) on `device`; `precision` overrides the one decided for it there."""
    profile = dataclasses.replace(SMOKE, recipe=recipe, **fields)
    settings = TrainingSettings.from_profile(profile, torch.device(device).type)
    if precision:
        settings = settings.with_precision(precision)
    return Group.build(specs, task, parents or {}, settings, device=device)


# ---- bf16 and channels_last ----------------------------------------------------------------------------
def test_bf16_is_the_default_on_cuda_and_on_the_cpu_only_when_the_recipe_asks_and_the_cpu_has_it(tiny_task,
                                                                                                 monkeypatch):
    from repro import numerics

    assert build([BASE], tiny_task, device="cpu").precision == "fp32"
    assert build([BASE], tiny_task, device=DEVICE).precision == ("bf16" if ON_CUDA else "fp32")
    assert build([BASE], tiny_task, device=DEVICE, precision="fp32").precision == "fp32"
    cpu_bf16 = dataclasses.replace(SMOKE.recipe, cpu_bf16=True)
    monkeypatch.setattr(numerics, "native_bf16", lambda: (True, "a test"))
    assert build([BASE], tiny_task, device="cpu", recipe=cpu_bf16).precision == "bf16"
    monkeypatch.setattr(numerics, "native_bf16", lambda: (False, "a test"))
    with pytest.warns(UserWarning, match="would be emulated"):
        assert build([BASE], tiny_task, device="cpu", recipe=cpu_bf16).precision == "fp32"


def test_cpu_bf16_learns_like_fp32_and_is_repeatable(tiny_task):
    """bf16 autocast on the CPU (on request: recipe.cpu_bf16): the same spec gives the same numbers twice, and
    numbers close to fp32's (not equal: convolutions round their inputs to bf16)."""
    runs = {}
    recipe = dataclasses.replace(SMOKE.recipe, epochs=2)
    for name, precision in [("bf16", "bf16"), ("bf16 again", "bf16"), ("fp32", "fp32")]:
        group = build([BASE], tiny_task, recipe=recipe, device="cpu", precision=precision)  # native or emulated
        [metrics] = group.run()
        assert metrics["autocast"] == ("bf16" if precision == "bf16" else "none")
        runs[name] = metrics
    assert runs["bf16"]["losses"] == runs["bf16 again"]["losses"]
    assert runs["bf16"]["losses"] != runs["fp32"]["losses"]
    bf16, fp32 = ([loss for _, loss in runs[k]["losses"]] for k in ("bf16", "fp32"))
    assert bf16 == pytest.approx(fp32, rel=0.05)
    assert bf16[-1] < bf16[0]  # it learns


def test_channels_last_gives_the_numbers_of_contiguous_memory_on_the_cpu(tiny_task):
    recipe = dataclasses.replace(SMOKE.recipe, epochs=0.5)  # 4 steps: differences in rounding grow with training
    results = {}
    for channels_last in (True, False):
        group = build([BASE], tiny_task, recipe=recipe, device="cpu", channels_last=channels_last)
        [metrics] = group.run()
        results[channels_last] = (metrics, group.members[0].net.state_dict())
    (a, wa), (b, wb) = results[True], results[False]
    assert [loss for _, loss in a["losses"]] == pytest.approx([loss for _, loss in b["losses"]], rel=1e-3)
    assert [acc for _, acc in a["curve"]] == pytest.approx([acc for _, acc in b["curve"]], abs=0.05)
    for name in wa:
        assert torch.allclose(wa[name].float(), wb[name].float(), rtol=1e-3, atol=1e-5), name


def test_compile_is_applied_on_cuda_only(tiny_task):
    group = build([BASE], tiny_task, device=DEVICE, compile=True)
    compiled = [layer._compiled_call_impl is not None for layer in group.members[0].net.layers]
    assert compiled == [ON_CUDA] * len(compiled)  # the smoke network has no dropout: every layer compiles


@pytest.mark.parametrize("compile", [False, True] if ON_CUDA else [False])
def test_a_group_learns_on_the_device_in_bf16_channels_last_and_frozen_layers_stay_bit_identical(tiny_task, compile):
    kw = {"device": DEVICE, "bf16": True, "channels_last": True, "compile": compile}
    base = build([BASE], tiny_task, recipe=dataclasses.replace(SMOKE.recipe, epochs=8), **kw)
    [metrics] = base.run()
    assert metrics["top1"] > 0.6 and metrics["device"].startswith(DEVICE.type)  # chance is 0.25
    parent = {k: v.detach().cpu().clone() for k, v in base.members[0].net.state_dict().items()}
    specs = [RunSpec("random:0", "B", t, 2, 0, CONFIG) for t in ("BnB", "BnB+")]
    group = build(specs, tiny_task, {BASE.key: parent}, recipe=dataclasses.replace(SMOKE.recipe, epochs=1), **kw)
    group.run()
    frozen, tuned = (m.net for m in group.members)
    for k in range(1, 9):
        for name, p in layer_parameters(frozen, k).items():
            if k <= 2:
                assert torch.equal(p.detach().cpu(), parent[name]), name
                assert not torch.equal(layer_parameters(tuned, k)[name].detach().cpu(), parent[name]), name
            else:
                assert not torch.equal(p.detach().cpu(), parent[name]), name


# ---- executors -----------------------------------------------------------------------------------------
def test_a_runs_numbers_do_not_depend_on_the_session_layout(tmp_path):
    """One process on 2 threads, or two worker processes on whatever threads their share of the cores
    gives: each network trains on recipe.cpu_threads intra-op threads, so the same curves and the same
    weights, bit for bit."""
    profile = get_profile("smoke", ["replicates=1", "natman=false", "layers=1", "finetune_layers=1",
                                    "random_layers=1", "recipe.epochs=1"])
    specs = specs_for(profile, all_needs(["early_layer_generality"]))
    assert any(s.parent for s in specs)  # a base and a transfer on it: the pool follows the DAG
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the session's own setting must not reach the training
    try:
        execute(specs, profile, Store(tmp_path / "one"), workers=1, progress=False)
        assert torch.get_num_threads() == 2  # and training gives the session its threads back
    finally:
        torch.set_num_threads(threads)
    outcome = execute(specs, profile, Store(tmp_path / "two"), workers=2, progress=False, poll_seconds=0.2)
    assert sorted(outcome.trained) == sorted(s.key for s in specs)
    one, two = Store(tmp_path / "one"), Store(tmp_path / "two")
    for s in specs:
        assert two.result(s)["curve"] == one.result(s)["curve"], s.label
        if one.result(s)["device"] == "cpu":  # what keys a CPU run's numbers (a GPU run reports torch's count)
            assert two.result(s)["threads"] == one.result(s)["threads"] == profile.recipe.cpu_threads
        w1, w2 = one.weights(s), two.weights(s)
        assert all(torch.equal(w1[k], w2[k]) for k in w1), s.label


def test_the_intra_op_thread_count_is_part_of_the_run_key():
    profile = get_profile("smoke")
    [base] = [s for s in specs_for(profile, all_needs(["early_layer_generality"])) if s.treatment == "base"][:1]
    [other] = [s for s in specs_for(profile.override(["recipe.cpu_threads=2"]), all_needs(["early_layer_generality"]))
               if s.treatment == "base"][:1]
    assert (base.split, base.target, base.replicate) == (other.split, other.target, other.replicate)
    assert base.key != other.key


def test_cuda_graphs_are_in_the_run_key_only_when_on():
    off = canonical(training_config(get_profile("smoke")))
    on = canonical(training_config(get_profile("smoke", ["cuda_graphs=true"])))
    assert "cuda_graphs" not in off and '"cuda_graphs":true' in on
    assert get_profile("gpu").cuda_graphs and not get_profile("gpu-wide").cuda_graphs


def test_a_step_replayed_as_a_cuda_graph_gives_the_eager_bits(tiny_task):
    """Base, BnB, BnB+ and random n = 2 trained eagerly and with the step captured as a CUDA graph (after 3 eager
    steps) from the same start: the same weights, curves and training losses, bit for bit. On the CPU there is
    nothing to capture: the flag must leave the numbers alone."""
    recipe = dataclasses.replace(SMOKE.recipe, epochs=3)
    torch.manual_seed(0)
    parent = build([BASE], tiny_task, device="cpu").members[0].net.state_dict()
    specs = [BASE] + [RunSpec("random:0", "B", t, 2, 0, CONFIG) for t in ("BnB", "BnB+", "random")]
    runs = {}
    for graphs in (False, True):
        group = build(specs, tiny_task, {BASE.key: parent}, recipe=recipe, device=DEVICE, cuda_graphs=graphs)
        results = group.run()
        assert (group.graph is not None and group.graph.graph is not None) == (graphs and ON_CUDA)
        runs[graphs] = ([{k: v.cpu() for k, v in m.net.state_dict().items()} for m in group.members],
                        [r["losses"] for r in results], [r["curve"] for r in results])
    (w0, losses0, curves0), (w1, losses1, curves1) = runs[False], runs[True]
    assert losses0 == losses1 and curves0 == curves1
    for a, b in zip(w0, w1):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_default_workers_fill_the_cores_at_the_recipes_threads(monkeypatch):
    from repro import execute

    monkeypatch.setattr(execute, "usable_cores", lambda: 8)
    assert execute.default_workers(get_profile("cpu", ["recipe.cpu_threads=1"])) == 8
    assert execute.default_workers(get_profile("cpu", ["recipe.cpu_threads=2"])) == 4
    assert execute.default_workers(get_profile("cpu", ["recipe.cpu_threads=16"])) == 1


def test_gpu_slots_respect_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")
    assert gpu_slots(2) == ["3", "5"]
    with pytest.raises(ValueError, match=r"--gpus 4 asks for more GPUs than are visible here \(3\)"):
        gpu_slots(4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # set but empty: no GPU at all
    with pytest.raises(ValueError, match=r"visible here \(0\).*--workers N"):
        gpu_slots(1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert gpu_slots(2) == ["0", "1"]
    for bad in (0, -1):
        with pytest.raises(ValueError, match="--gpus must be a positive number"):
            gpu_slots(bad)


def test_a_gpu_worker_is_pinned_to_its_gpu_and_given_its_share_of_decoders(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    monkeypatch.setenv("REPRO_LOADER_WORKERS", "")
    monkeypatch.delenv("REPRO_LOADER_WORKERS")  # (set first, so that the value set below is undone)
    slots = ["2", "3"]
    before = signal.getsignal(signal.SIGTERM)
    try:
        _gpu_worker_init(slots, threading.Lock(), 5)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2" and slots == ["3"]
        assert os.environ["REPRO_LOADER_WORKERS"] == "5"
        assert signal.getsignal(signal.SIGTERM) is request_stop  # Pool.stop ends the worker's group in a checkpoint
    finally:  # a worker's handler, not this test process's (a SIGTERM test after it expects the default)
        signal.signal(signal.SIGTERM, before)


# ---- file-backed data (ILSVRC-2012) --------------------------------------------------------------------
WNIDS = ["n01440764", "n01443537", "n04552348"]  # ILSVRC classes 0, 1 and 895


def fake_imagenet(root, train_per_class=6, val_per_class=3):
    for c, wnid in enumerate(WNIDS):
        for i in range(train_per_class):
            write(root / "train" / wnid / f"{wnid}_{i}.JPEG", jpeg_bytes(100 * c + i, size=24 + 4 * i))
        for i in range(val_per_class):
            write(root / "val" / wnid / f"ILSVRC2012_val_{c}{i:07d}.JPEG", jpeg_bytes(5000 + 10 * c + i))
    return root


def in_memory(images):
    return dataclasses.replace(images, images=images.get(torch.arange(len(images))), files=None, decode=None)


@pytest.fixture
def imagenet(tmp_path):
    return load_dataset("imagenet", root=str(fake_imagenet(tmp_path / "imagenet")), image_size=16, progress=False)


def test_the_loader_gives_the_batches_of_the_in_memory_path_from_any_start(imagenet):
    train, seed, batch = imagenet.train, 1234, 4
    assert train.images is None and len(train) == 18
    per_epoch, total = iterations(dataclasses.replace(SMOKE.recipe, batch_size=batch, epochs=3), len(train))
    memory = in_memory(train)
    stream = BatchStream(train, seed, per_epoch, batch, total, "cpu", workers=1)
    for start in (0, 5):  # a fresh start, then a resume in the middle of epoch 1
        for i in range(start, total):
            epoch, j = divmod(i, per_epoch)
            idx = batch_indices(seed, epoch, len(train), batch, j)
            x, y = stream.get(i)
            assert torch.equal(x, memory.get(idx)) and torch.equal(y, train.labels[idx]), i
    chunks = list(val_chunks(imagenet.val, 4, "cpu", workers=1))
    assert torch.equal(torch.cat([x for x, _ in chunks]), in_memory(imagenet.val).images)
    assert torch.equal(torch.cat([y for _, y in chunks]), imagenet.val.labels)


def test_a_group_learns_the_same_from_files_as_from_memory(imagenet):
    recipe = dataclasses.replace(SMOKE.recipe, batch_size=6, epochs=2, evals=2)
    curves = []
    for train, val in ((imagenet.train, imagenet.val), (in_memory(imagenet.train), in_memory(imagenet.val))):
        group = build([BASE], Task(train, val, 3), recipe=recipe)
        assert (group.stream is None) == (train.images is not None)
        [metrics] = group.run()
        curves.append((metrics["curve"], metrics["losses"]))
    assert curves[0] == curves[1]


def test_the_preprocessed_cache_holds_the_decoded_images(tmp_path, imagenet):
    root = tmp_path / "imagenet"
    folder = preprocess_imagenet(root, 16, tmp_path / "cache", progress=False)
    assert preprocess_imagenet(root, 16, tmp_path / "cache", progress=False) == folder  # once only
    cached = use_preprocessed(imagenet, tmp_path / "cache")
    assert cached.info["preprocessed"] == str(folder) and cached.train.images is None
    for part in ("train", "val"):
        everything = torch.arange(len(getattr(imagenet, part)))
        assert torch.equal(getattr(cached, part).get(everything), getattr(imagenet, part).get(everything))
        shuffled = torch.randperm(len(everything), generator=torch.Generator().manual_seed(0)).repeat(2)
        # read in one sorted pass, returned in the order asked (repeats included)
        assert torch.equal(getattr(cached, part).get(shuffled), getattr(imagenet, part).get(shuffled))
    trimmed = load_dataset("imagenet", root=str(root), image_size=16, train_per_class=2, progress=False)
    half = use_preprocessed(trimmed, tmp_path / "cache").train.subset([2])
    assert torch.equal(half.get(torch.arange(2)), trimmed.train.subset([2]).get(torch.arange(2)))
    assert use_preprocessed(imagenet, tmp_path / "elsewhere") is imagenet  # no cache: files as they are


def test_a_preprocessed_cache_of_other_files_is_refused(tmp_path, imagenet):
    root = tmp_path / "imagenet"
    preprocess_imagenet(root, 16, tmp_path / "cache", progress=False)
    write(root / "train" / WNIDS[0] / "zz_new.JPEG", jpeg_bytes(1))
    changed = load_dataset("imagenet", root=str(root), image_size=16, progress=False)
    with pytest.raises(DataError, match=r"preprocessed from other files .*zz_new.*python -m repro.loader"):
        use_preprocessed(changed, tmp_path / "cache")


def test_lrn_stays_in_bf16_under_autocast_and_is_unchanged_in_fp32():
    """CaffeNet's LRN: the stock module leaves autocast's bf16 for fp32 (`pow` is on its fp32 list)."""
    from repro.models.alexnet8 import LRN

    x = torch.randn(4, 16, 7, 7) * 30
    lrn, stock = LRN(5, alpha=1e-4, beta=0.75, k=1.0), torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    assert torch.equal(lrn(x), stock(x))
    with torch.autocast("cpu", torch.bfloat16):
        assert stock(x.bfloat16()).dtype == torch.float32
        out = lrn(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), stock(x), rtol=0.02, atol=0.02)


def test_one_chooser_gives_each_local_backend_the_protocol(tmp_path, monkeypatch):
    from repro.backends import Backend, backend_for
    from repro.backends.inline import Inline
    from repro.backends.pool import Pool

    store, profile = Store(tmp_path / "store"), get_profile("smoke")
    inline = backend_for("local", store, profile)
    assert isinstance(inline, Inline) and isinstance(inline, Backend) and (inline.slots, inline.split_for) == (1, 1)
    pool = backend_for("local", store, profile, workers=2)
    try:  # CPU workers keep a target's group whole unless asked to split it
        assert isinstance(pool, Pool) and isinstance(pool, Backend) and (pool.slots, pool.split_for) == (2, 1)
    finally:
        pool.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ValueError, match="more GPUs than are visible"):
        backend_for("local", store, profile, gpus=1)
    with pytest.raises(ValueError, match="--executor must be one of local, slurm"):
        backend_for("cloud", store, profile)
