"""One prepared check of a GPU machine, in about 8 minutes: what the suite gets out of the device.

    bash benchmarks/gpu_check.sh                    # on the GPU machine; results in $OUT
    python benchmarks/gpu_check.py --dry-run        # on any CPU: every step, shrunk to a minute or two

Steps, each with its own time cap, each saved to $OUT/gpu_check.json as soon as it ends (a run cut short keeps
what it measured):
 1. device: its name, memory, torch and CUDA versions, the datasheet's dense bf16 peak, a measured bf16 matmul.
 2. tests: `pytest -m smoke` of the device tests (tests/test_gpu_paths.py, test_fusion.py, test_determinism.py,
    test_train.py) with REPRO_TEST_DEVICE=cuda, log in $OUT/pytest.log.
 3. determinism: a small `gpu-wide`-profile group trained twice in deterministic mode (the default) and twice with
    `deterministic=False` (cuDNN autotuning): bit-identical or not, and the step time of each (the cost).
 3b. graphs: the `gpu` (and `cpu`) network's group step eager and as a replayed CUDA graph (repro.train.StepGraph): the same
    bits from the same start? the step time of each.
 4. swap: the fusion swap test (tests/test_fusion.py) on the GPU: does a fused member's numbers depend on its
    lane-mates, its lane, or on being fused at all; and a fused against a separate step of 4 networks.
 5. sub-groups: the step time of each kind of sub-group the scheduler makes (a base or fine-tuned run alone,
    BnB/AnB 1-7 sharing a frozen prefix, the random control 1-7) and of the bare network (eager and as one
    CUDA graph), for the `gpu-wide`, `paper` and `paper-fast` networks (the bare network for `gpu` too); TFLOP/s of the work done and % of the bf16 peak; the cost model's
    prediction beside each (repro.cost.step_ms).
 6. decode: JPEG decoding per CPU core for ILSVRC-sized images (500x375) at 256 and 144 px.
 7. plan: the `gpu` profile's plan with replicates=1 (its steps replayed CUDA graphs), trained by
    `train_group` as `repro run` does, for half the time left; wall time, network-iterations/s. Tiny ImageNet where REPRO_DATA points at it; else synthetic
    images of the same count and size (the same iterations and so the same time; accuracies mean nothing).
 7b. gpu_wide_plan: the same for the `gpu-wide` profile (the 64 px network, eager), for the time left.
 8. projections: the step times of steps 5 and 7 as a measurement file for the cost model (repro.cost)
    ($OUT/gpu_step_times.json, benchmarks/step_times.py), and `projected_hours` of the `paper` and `paper-fast`
    plans on 8 GPUs, the `gpu` plan on 1 and 8 and the `gpu-wide` plan on 1, simulated with them.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro.data.base import ImageSet  # noqa: E402
from repro.models import get_model, layer_flops  # noqa: E402
from repro.profiles import get_profile  # noqa: E402
from repro.runs import RunSpec, canonical, groups, specs_for, training_config  # noqa: E402
from repro.settings import TrainingSettings  # noqa: E402
from repro.train import Group, Task, iterations, read_tallies  # noqa: E402

# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s, without sparsity), by device name.
BF16_PEAKS = [("H200", 989), ("GH200", 989), ("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989),
              ("A100", 312), ("L40S", 362), ("A10G", 70), ("L4", 121)]
ORIGINAL_GPU_DAYS_PER_NETWORK, ORIGINAL_NETWORKS = 9.5, 163
# train images, val images per class, classes, natural classes (the natman split's half A)
DATASET_SIZES = {"imagenet": (1_281_167, 50, 1000, 449), "tiny-imagenet": (100_000, 50, 200, 72)}


def bf16_peak(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAKS if key in name), None)


class Report:
    """The results so far, rewritten to $OUT/gpu_check.json after every step."""

    def __init__(self, out: Path, budget: float):
        self.out, self.t0, self.budget, self.data = out, time.time(), budget, {}

    def left(self) -> float:
        return self.budget - (time.time() - self.t0)

    def save(self, key: str, value) -> None:
        self.data[key] = value
        self.data["elapsed_seconds"] = round(time.time() - self.t0, 1)
        (self.out / "gpu_check.json").write_text(json.dumps(self.data, indent=1, default=str))


def say(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_ms(step, warmup: int, end: int, device: torch.device) -> float:
    """Milliseconds per call of step(i) for i in warmup..end-1, after step(i) for i < warmup, synchronised."""
    for i in range(warmup):
        step(i)
    sync(device)
    t = time.perf_counter()
    for i in range(warmup, end):
        step(i)
    sync(device)
    return 1000 * (time.perf_counter() - t) / (end - warmup)


# ---- 1. device ----------------------------------------------------------------------------------------
def device_info(device: torch.device, dry: bool) -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count(), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}")
    else:
        info["name"] = "cpu"
    info["bf16_peak_tflops"] = bf16_peak(info["name"])
    n = 512 if dry else 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    reps = 2 if dry else 20
    for _ in range(reps):
        a @ b
    sync(device)
    info["bf16_matmul_tflops"] = round(2 * n**3 * reps / (time.perf_counter() - t) / 1e12, 1)
    return info


# ---- 2. tests -----------------------------------------------------------------------------------------
def run_tests(out: Path, device: torch.device, dry: bool, timeout: float) -> dict:
    files = ["tests/test_gpu_paths.py", "tests/test_fusion.py", "tests/test_determinism.py"] + \
        ([] if dry else ["tests/test_train.py"])
    cmd = [sys.executable, "-m", "pytest", "-m", "smoke", *files, "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if dry:
        cmd += ["-k", "autocast or compile or bit_identical or lane or default"]
    env = {**os.environ, "REPRO_TEST_DEVICE": device.type, "PYTHONPATH": str(ROOT)}
    t = time.time()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        log, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:  # its output comes as bytes
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        log, rc = f"{text(e.stdout)}{text(e.stderr)}\nTIMED OUT after {timeout:.0f} s", "timeout"
    (out / "pytest.log").write_text(log)
    summary = [line for line in str(log).splitlines() if " passed" in line or " failed" in line or "error" in line]
    return {"command": " ".join(cmd[1:]), "returncode": rc, "summary": summary[-1:] if summary else [],
            "seconds": round(time.time() - t, 1)}


# ---- 3. throughput ------------------------------------------------------------------------------------
def fake_task(profile, num_classes: int, batch: int, device: torch.device) -> Task:
    """Random uint8 images already on the device: data loading is not measured here."""
    n = 4 * batch
    images = torch.randint(0, 256, (n, 3, profile.image_size, profile.image_size), dtype=torch.uint8, device=device)
    train = ImageSet(labels=torch.arange(n) % num_classes, image_size=profile.image_size, images=images)
    return Task(train, train, num_classes)


def device_settings(profile, recipe, device: torch.device, **fields) -> TrainingSettings:
    """The profile's settings with `recipe` on `device`, channels_last, and the other profile `fields` given
    (compile, deterministic, cuda_graphs: off and deterministic unless given)."""
    fields = {"compile": False, "deterministic": True, "cuda_graphs": False, **fields}
    profile = dataclasses.replace(profile, recipe=recipe, channels_last=True, **fields)
    return TrainingSettings.from_profile(profile, device.type)


def measure(profile_name: str, num_classes: int, mode: str, compile: bool, device: torch.device, batch: int,
            steps: int, warmup: int) -> dict:
    """Training images/s of one network: `mode` 'group' (Group.step) or 'network' (the bare network)."""
    profile = get_profile(profile_name)
    recipe = dataclasses.replace(profile.recipe, batch_size=batch)
    flops = sum(layer_flops(profile.arch, num_classes, recipe.crop))
    spec = RunSpec("random:0", "A", "base", 0, 0, canonical(training_config(profile)))
    settings = device_settings(profile, recipe, device, compile=compile and mode == "group")
    group = Group.build([spec], fake_task(profile, num_classes, batch, device), {}, settings, device=device)
    member = group.members[0]
    if mode == "group":
        def step(i):
            group.step(i, group.members)
    else:
        net = member.net
        for layer in net.layers:
            layer.dropout = 0.0  # the network's own ceiling
        if compile and device.type == "cuda":
            net.compile()
        x, y = group.batches.get(0)
        autocast = device.type == "cuda"

        def step(i):
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast, cache_enabled=False):
                loss = F.cross_entropy(net(x).float(), y)
            member.optimizer.zero_grad(set_to_none=mode == "network")
            loss.backward()
            member.optimizer.step()

        if mode == "network-graph" and device.type == "cuda":
            # The whole step (forward, backward, SGD) captured once and replayed: what CUDA graphs would buy
            # over eager launches (PyTorch's "whole network capture"; static input, grads kept, not set to None).
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for i in range(3):
                    step(i)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step(0)

            def step(i):  # noqa: F811 - the replay replaces the eager step
                graph.replay()

    t = time.perf_counter()
    for i in range(warmup):
        step(i)
    sync(device)
    first = time.perf_counter() - t  # includes compilation and cuDNN's search
    t = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync(device)
    seconds = time.perf_counter() - t
    rate = steps * batch / seconds
    return {"profile": profile_name, "crop": recipe.crop, "mode": mode, "compile": compile and device.type == "cuda",
            "batch": batch, "images_per_second": round(rate, 1), "step_ms": round(1000 * seconds / steps, 2),
            "tflops": round(rate * 3 * flops / 1e12, 2), "gflop_per_image_fwd": round(flops / 1e9, 3),
            "warmup_seconds": round(first, 1)}


def throughput(device: torch.device, dry: bool, report: Report, stop_at: float,
               modes=("group", "network")) -> list[dict]:
    peak = report.data["device"]["bf16_peak_tflops"]
    batch, steps, warmup = (8, 2, 1) if dry else (256, 30, 5)
    nets = [("gpu", 100), ("gpu-wide", 100), ("paper", 500), ("paper-fast", 500)]
    plan = [(p, c, mode, False) for p, c in nets for mode in modes]
    results = []
    for profile_name, classes, mode, compile in plan:
        if compile and device.type != "cuda":
            continue  # the Group compiles on CUDA only
        if time.time() > stop_at:
            results.append({"profile": profile_name, "mode": mode, "compile": compile, "skipped": "out of time"})
            continue
        try:
            r = measure(profile_name, classes, mode, compile, device, batch, steps, warmup)
            r["fraction_of_bf16_peak"] = round(r["tflops"] / peak, 3) if peak else None
        except Exception as error:  # noqa: BLE001 - one failed measurement must not cost the others
            r = {"profile": profile_name, "mode": mode, "compile": compile, "error": repr(error)[:500]}
        say("throughput", json.dumps(r))
        results.append(r)
        report.save("throughput", results)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


# ---- 3. determinism -----------------------------------------------------------------------------------
def small_group(profile, device, batch, deterministic=True, kinds=("base", "BnB", "random"), n=3, steps=0,
                cuda_graphs=False):
    """A group of the profile's network on random uint8 images on the device: one member of each kind (`steps`:
    enough epochs of the 4-batch stand-in set for that many steps)."""
    classes = 100
    recipe = dataclasses.replace(profile.recipe, batch_size=batch,
                                 **({"epochs": steps / 4 + 1} if steps else {}))
    config = canonical(training_config(profile))
    base = RunSpec("random:0", "B", "base", 0, 0, config)
    specs = [base if k == "base" else RunSpec("random:0", "B", k, n, 0, config) for k in kinds]
    torch.manual_seed(0)  # the same parent every time
    parents = {base.key: get_model(profile.arch, classes, recipe.crop).state_dict()}
    settings = device_settings(profile, recipe, device, deterministic=deterministic, cuda_graphs=cuda_graphs)
    return Group.build(specs, fake_task(profile, classes, batch, device), parents, settings, device=device)


# ---- 3b. CUDA graphs ----------------------------------------------------------------------------------
def graphs(device: torch.device, dry: bool, stop_at: float) -> dict:
    """The `cpu` network's group step (base, BnB n=3, BnB+ n=3, random n=3) trained eagerly and replayed as a
    CUDA graph (repro.train.StepGraph) from the same start: the same bits? the step time of each."""
    profile = get_profile("cpu")
    batch, steps, timed_from = (8, 8, 5) if dry else (128, 80, 20)
    kinds = ("base", "BnB", "BnB+", "random")
    out = {"profile": "cpu", "batch": batch, "steps": steps, "members": [f"{k} n=3" for k in kinds]}
    states = {}
    for on in (False, True):
        if time.time() > stop_at:
            out[f"cuda_graphs={on}"] = {"skipped": "out of time"}
            continue
        group = small_group(profile, device, batch, kinds=kinds, steps=steps, cuda_graphs=on)
        ms = timed_ms(lambda i: group.step(i, group.members), timed_from, steps, device)
        read_tallies(group.members)
        states[on] = ([torch.cat([v.detach().float().flatten().cpu() for v in m.net.state_dict().values()])
                       for m in group.members], [m.loss_sum for m in group.members])
        out[f"cuda_graphs={on}"] = {"step_ms": round(ms, 3), "captured": bool(group.graph and group.graph.graph),
                                     "loss_sums": [round(v, 6) for v in states[on][1]]}
    if len(states) == 2:
        out["bit_identical"] = all(torch.equal(a, b) for a, b in zip(states[False][0], states[True][0])) and \
            states[False][1] == states[True][1]
        eager, graph = out["cuda_graphs=False"]["step_ms"], out["cuda_graphs=True"]["step_ms"]
        out["speedup"] = round(eager / graph, 2) if graph else None
    return out


def determinism(device: torch.device, dry: bool, stop_at: float) -> dict:
    """Two trainings of the same group in one process, per mode: equal bit for bit? And the step time."""
    profile = get_profile("gpu-wide")
    batch, steps = (8, 3) if dry else (256, 60)
    out = {"profile": "gpu-wide", "batch": batch, "steps": steps, "members": ["base", "BnB n=3", "random n=3"]}
    for mode in (True, False):
        weights, times = [], []
        for _ in range(2):
            if time.time() > stop_at:
                out[f"deterministic={mode}"] = {"skipped": "out of time"}
                break
            group = small_group(profile, device, batch, deterministic=mode)
            # one step of warm-up: cuDNN's search, allocations
            times.append(timed_ms(lambda i: group.step(i, group.members), 1, steps, device))
            weights.append([torch.cat([p.detach().float().flatten().cpu() for p in m.net.parameters()])
                            for m in group.members])
        else:
            same = all(torch.equal(a, b) for a, b in zip(*weights))
            out[f"deterministic={mode}"] = {"bit_identical": same, "step_ms": round(min(times), 2)}
    d, n = out.get("deterministic=True", {}), out.get("deterministic=False", {})
    if "step_ms" in d and "step_ms" in n:
        out["cost_of_determinism"] = round(d["step_ms"] / n["step_ms"] - 1, 3)
    torch.use_deterministic_algorithms(True, warn_only=True)  # back to the default for what follows
    torch.backends.cudnn.benchmark = False
    return out


# ---- 4. swap ------------------------------------------------------------------------------------------
def swap(device: torch.device, dry: bool) -> dict:
    os.environ["REPRO_TEST_DEVICE"] = device.type
    sys.path.insert(0, str(ROOT / "tests"))
    import test_fusion

    test_fusion.DEVICE = device
    out = {precision: test_fusion.swap_test(precision == "bf16") for precision in ("fp32", "bf16")}
    out["note"] = ("other_mates / other_lane: a member fused with other networks, or in another lane, learns the "
                   "same bits; alone: the same bits as trained alone (one lane)")
    return out


# ---- 5. sub-groups ------------------------------------------------------------------------------------
KINDS = {"alone (base, fine-tuned)": ("base",), "BnB 1-7 (shared prefix)": tuple(f"BnB:{n}" for n in range(1, 8)),
         "random 1-7 (shared prefix)": tuple(f"random:{n}" for n in range(1, 8))}


def sub_groups(device: torch.device, dry: bool, report: "Report", stop_at: float) -> list[dict]:
    """Step time of each kind of sub-group, with the FLOPs its members and prefixes compute, and the cost
    model's prediction (from the committed step times) beside it."""
    from repro.cost import load_measurement, step_ms

    peak = report.data["device"]["bf16_peak_tflops"]
    batch, steps, warmup = (8, 2, 1) if dry else (256, 30, 5)
    committed = load_measurement()
    rows = []
    for name, classes in (("gpu-wide", 100), ("paper", 500), ("paper-fast", 500)):
        profile = get_profile(name)
        config = canonical(training_config(profile))
        base = RunSpec("random:0", "B", "base", 0, 0, config)
        flops = layer_flops(profile.arch, classes, profile.recipe.crop)
        for kind, members in KINDS.items():
            if time.time() > stop_at:
                rows.append({"profile": name, "kind": kind, "skipped": "out of time"})
                continue
            try:
                specs = [base if m == "base" else RunSpec("random:0", "B", m.split(":")[0], int(m.split(":")[1]), 0,
                                                            config) for m in members]
                # enough epochs of the 4-batch stand-in set for the warm-up and timed steps at any profile
                recipe = dataclasses.replace(profile.recipe, batch_size=batch, epochs=(warmup + steps) / 4 + 1)
                parents = {base.key: get_model(profile.arch, classes, recipe.crop).state_dict()}
                settings = device_settings(profile, recipe, device, cuda_graphs=profile.cuda_graphs)
                group = Group.build(specs, fake_task(profile, classes, batch, device), parents, settings,
                                    device=device)
                ms = timed_ms(lambda i: group.step(i, group.members), warmup, warmup + steps, device)
                deepest = max((s.n for s in specs if s.frozen), default=0)
                work = sum(flops[:deepest]) + 3 * sum(sum(flops[(s.n if s.frozen else 0):]) for s in specs)
                tflops = work * batch / (ms / 1000) / 1e12
                row = {"profile": name, "kind": kind, "members": len(specs), "batch": batch, "step_ms": round(ms, 2),
                       "gflop_per_image_fwd": round(sum(flops) / 1e9, 3),
                       "tflops": round(tflops, 2), "fraction_of_bf16_peak": round(tflops / peak, 4) if peak else None}
                timing = committed["profiles"].get(name)
                if timing:
                    row["model_ms_from_committed"] = round(step_ms(specs, profile, timing)[0] * 256 / batch, 2)
            except Exception as error:  # noqa: BLE001 - one failed measurement must not cost the others
                row = {"profile": name, "kind": kind, "error": repr(error)[:500]}
            say("sub-group", json.dumps(row))
            rows.append(row)
            report.save("sub_groups", rows)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


# ---- 6. decode ----------------------------------------------------------------------------------------
def decode_rate(dry: bool) -> dict:
    """Images/s of one core decoding an ILSVRC-sized JPEG (500x375, ~110 kB) as repro.data.imagenet does."""
    import io

    import numpy as np
    from PIL import Image

    from repro.data.imagenet import decode_file

    rng = np.random.default_rng(0)
    small = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
    noise = rng.normal(0, 18, (375, 500, 3))
    image = Image.fromarray(np.clip(np.asarray(small) + noise, 0, 255).astype(np.uint8))
    path = Path(tempfile.mkdtemp()) / "ilsvrc-like.JPEG"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    out = {"jpeg_kb": round(len(buffer.getvalue()) / 1000, 1)}
    n = 5 if dry else 200
    for size in (256, 144):
        t = time.perf_counter()
        for _ in range(n):
            decode_file(str(path), size)
        out[f"images_per_second_per_core_{size}px"] = round(n / (time.perf_counter() - t), 1)
    return out


# ---- 7. the gpu plan ----------------------------------------------------------------------------------
class OutOfTime(Exception):
    pass


def gpu_plan_profile(dry: bool, name: str = "gpu"):
    sets = ["replicates=1"]
    if not os.environ.get("REPRO_DATA"):
        # no Tiny ImageNet here: synthetic images of its count and size (same iterations, same time)
        sets += ["dataset=synthetic", "num_classes=200", "images_per_class=500", "val_per_class=50"]
    if dry:
        sets += ["num_classes=8", "images_per_class=40", "val_per_class=10", "recipe.batch_size=16",
                 "recipe.epochs=1", "recipe.evals=2"]
    return get_profile(name, sets)


def run_plan(device: torch.device, dry: bool, report: Report, stop_at: float, name: str = "gpu",
             key: str = "gpu_plan") -> dict:
    from repro.worker import load_task, train_group
    from repro.store import Store
    from repro.study import all_needs

    profile = gpu_plan_profile(dry, name)
    specs = specs_for(profile, all_needs())
    data_root = os.environ.get("REPRO_DATA")
    t = time.time()
    task = load_task(specs[0], data_root)  # decoded or generated once per process, outside the timing
    result = {"dataset": profile.dataset, "data_seconds": round(time.time() - t, 1), "runs_planned": len(specs),
              "replicates": profile.replicates, "groups": []}
    if profile.dataset == "synthetic":
        result["note"] = "synthetic images of Tiny ImageNet's count and size: the time holds, accuracies do not"
    store = Store(Path(tempfile.mkdtemp()) / "store")
    per_epoch, total = iterations(profile.recipe, len(task.train))
    t0 = time.time()
    for group in groups(specs, share=profile.share):
        if time.time() > stop_at - 5:
            break
        reached = {"i": 0}

        def tick(i, n, reached=reached):
            reached["i"] = i
            if time.time() > stop_at:
                raise OutOfTime

        t = time.time()
        try:
            train_group(group, str(store.root), profile, data_root, str(device), tick)
            finished = True
        except OutOfTime:
            finished = False
        seconds = time.time() - t
        result["groups"].append({"runs": len(group), "level": "transfer" if group[0].parent else "base",
                                 "iterations": reached["i"], "of": total, "seconds": round(seconds, 1),
                                 "finished": finished,
                                 "network_iterations_per_second": round(len(group) * reached["i"] / seconds, 1)})
        say("plan group", json.dumps(result["groups"][-1]))
        report.save(key, result)
    wall = time.time() - t0
    done = sum(g["runs"] for g in result["groups"] if g["finished"])
    result.update(wall_seconds=round(wall, 1), runs_finished=done, runs_per_minute=round(60 * done / wall, 2))
    plan_groups = groups(specs, share=profile.share)
    result["projected_minutes_replicates_1"] = project_plan_minutes(result["groups"], plan_groups, total)
    if result["projected_minutes_replicates_1"]:
        replicates = get_profile(name).replicates
        result["projected_minutes_full_gpu_plan"] = round(result["projected_minutes_replicates_1"] * replicates, 1)
    return result


def project_plan_minutes(measured: list[dict], plan_groups, total: int) -> float | None:
    """Every group of the plan at the speed (network-iterations/s) measured for its level, base or transfer."""
    speed = {}
    for level in ("base", "transfer"):
        rows = [g for g in measured if g["level"] == level and g["iterations"]]
        if rows:
            speed[level] = sum(g["runs"] * g["iterations"] for g in rows) / sum(g["seconds"] for g in rows)
    if not speed:
        return None
    seconds = 0.0
    for group in plan_groups:
        level = "transfer" if group[0].parent else "base"
        seconds += len(group) * total / speed.get(level, min(speed.values()))
    return round(seconds / 60, 1)


# ---- 8. projections -----------------------------------------------------------------------------------
def project_wall_time(profile, images_per_second_per_gpu: float, gpus: int = 8) -> float:
    """Hours to train a profile's whole plan on `gpus` GPUs, each training `images_per_second_per_gpu` images/s
    through a full network (forward + backward). Each run costs its iterations x batch images, plus a forward
    pass over its half's validation set at every test. A frozen run (BnB, AnB, random) costs less: forward
    through its frozen layers 1..n, forward + backward (3x) through layers n+1..8 only. (A shared sweep
    computes a frozen prefix once per source, so this overestimates frozen runs a little.) Assumes the GPUs
    stay busy: the input pipeline keeps up and the DAG has enough ready runs."""
    from repro.cost import half_sizes
    from repro.study import all_needs

    specs = specs_for(profile, all_needs())
    seconds = 0.0
    for spec in specs:
        classes, train, val = half_sizes(profile, spec)
        per_layer = layer_flops(profile.arch, classes, profile.recipe.crop)
        full = 3 * sum(per_layer)
        n = spec.n if spec.frozen else 0
        share = (sum(per_layer[:n]) + 3 * sum(per_layer[n:])) / full
        _, total = iterations(profile.recipe, train)
        images = total * profile.recipe.batch_size * share + profile.recipe.evals * val * sum(per_layer) / full
        seconds += images / images_per_second_per_gpu
    return seconds / gpus / 3600


def scheduled(report: Report, out: Path) -> dict:
    """This machine's step times as a measurement file (benchmarks/step_times.py), and the plans simulated with
    them (repro.schedule)."""
    from benchmarks.step_times import NOTE, eager, fit_to_plan, replayed
    from repro.schedule import projection
    from repro.study import all_needs

    source = "gpu_check.json"  # the record beside this file, wherever $OUT was: no machine's path in it
    profiles = eager(report.data, source)
    if "gpu-wide" in profiles:
        profiles["gpu-wide"] = fit_to_plan(profiles["gpu-wide"], report.data.get("gpu_wide_plan", {}),
                                           get_profile("gpu-wide", ["replicates=1"]), f"{source} (gpu_wide_plan)")
    gpu = replayed(report.data.get("gpu_plan", {}), get_profile("gpu", ["replicates=1"]), source, "gpu_plan")
    if gpu:
        profiles["gpu"] = gpu
    measured = {"source": source, "device": report.data["device"]["name"], "torch": report.data["device"]["torch"],
                "profiles": profiles, "note": NOTE}
    (out / "gpu_step_times.json").write_text(json.dumps(measured, indent=1) + "\n")
    plans = {}
    for name, gpus in (("paper", 8), ("paper-fast", 8), ("gpu", 1), ("gpu", 8), ("gpu-wide", 1)):
        profile = get_profile(name)
        try:
            plans[f"{name} on {gpus}"] = projection(profile, specs_for(profile, all_needs()), gpus, measured)
        except Exception as error:  # noqa: BLE001
            plans[f"{name} on {gpus}"] = {"error": repr(error)[:300]}
    return {"measurement": measured, "projected": plans}


def projections(report: Report) -> dict:
    from repro.study import all_needs

    rates = {}
    for r in report.data.get("throughput", []):
        if r.get("mode") == "group" and "images_per_second" in r:
            key = r["profile"]
            rates[key] = max(rates.get(key, 0), r["images_per_second"])
    decode = report.data.get("decode", {})
    out = {"original_study_gpu_days": ORIGINAL_GPU_DAYS_PER_NETWORK * ORIGINAL_NETWORKS}
    for name, size in (("paper", 256), ("paper-fast", 144)):
        if name not in rates:
            continue
        profile = get_profile(name)
        per_core = decode.get(f"images_per_second_per_core_{size}px")
        out[name] = {
            "runs": len(specs_for(profile, all_needs())),
            "images_per_second_per_gpu": rates[name],
            "hours_on_8_gpus": round(project_wall_time(profile, rates[name], 8), 1),
            "gpu_days": round(project_wall_time(profile, rates[name], 1) / 24, 1),
            "decode_cores_per_gpu_to_keep_up": round(rates[name] / per_core, 1) if per_core else None,
        }
    return out


# ---- main ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_check_out"))
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole check (420; dry run 150)")
    p.add_argument("--dry-run", action="store_true", help="on the CPU, everything shrunk: checks the script")
    p.add_argument("--only", default="", help="comma-separated step keys to run (default: all), e.g. "
                                              "device,graphs,cpu_plan")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if dry else "cuda")
    if dry:
        torch.set_num_threads(1)
    report = Report(out, args.budget or (150 if dry else 420))
    report.save("mode", "dry-run on the CPU (numbers mean nothing)" if dry else "gpu")

    only = {k for k in args.only.split(",") if k}

    def step(number: str, key: str, cap: float, work):
        """One step with its own cap (never more than what is left but 20 s for the later steps)."""
        if only and key not in only:
            return
        say(number, key)
        stop_at = time.time() + max(5.0, min(cap, report.left() - 20))
        try:
            value = work(stop_at)
        except Exception as error:  # noqa: BLE001 - one failed step must not cost the others
            value = {"error": repr(error)[:800]}
        report.save(key, value)
        say(json.dumps(value)[:2000])

    scale = 0.35 if dry else 1.0
    step("1/8", "device", 30, lambda stop: device_info(device, dry))
    step("2/8", "tests", 110 * scale + 30, lambda stop: run_tests(out, device, dry, timeout=max(20, stop - time.time())))
    step("3/8", "determinism", 45 * scale, lambda stop: determinism(device, dry, stop))
    step("3/8", "graphs", 40, lambda stop: graphs(device, dry, stop))
    step("4/8", "swap", 20, lambda stop: swap(device, dry))
    step("5/8", "throughput", 50 * scale, lambda stop: throughput(device, dry, report, stop,
                                                                 modes=("network", "network-graph")))
    step("5/8", "sub_groups", 100 * scale, lambda stop: sub_groups(device, dry, report, stop))
    step("6/8", "decode", 15, lambda stop: decode_rate(dry))
    step("7/8", "gpu_plan", max(30, report.left() / 2 - 30), lambda stop: run_plan(device, dry, report, stop))
    step("7/8", "gpu_wide_plan", max(30, report.left() - 40),
         lambda stop: run_plan(device, dry, report, stop, "gpu-wide", key="gpu_wide_plan"))
    step("8/8", "scheduled", 30, lambda stop: scheduled(report, out))
    step("8/8", "projections", 10, lambda stop: projections(report))
    say(f"done in {time.time() - report.t0:.0f} s; results in {out}/gpu_check.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
