"""One prepared check of a GPU machine, in about 8 minutes: what the suite gets out of the device.

    bash benchmarks/gpu_check.sh                    # on the GPU machine; results in $OUT
    python benchmarks/gpu_check.py --dry-run        # on any CPU: every step, shrunk to a minute

Steps, each saved to $OUT/gpu_check.json as soon as it ends (a run cut short keeps what it measured):
 1. device: its name, memory, torch and CUDA versions, the datasheet's dense bf16 peak, a measured bf16 matmul.
 2. tests: `pytest -m smoke tests/test_gpu_paths.py tests/test_train.py tests/test_transfer.py` with
    REPRO_TEST_DEVICE=cuda (a Group on the GPU in bf16 + channels_last learns, frozen layers stay
    bit-identical, torch.compile is applied), log in $OUT/pytest.log.
 3. throughput: images/s and TFLOP/s (3 x forward FLOPs per image, for forward + backward) against the bf16
    peak, for the networks of the `gpu` (56 px crops), `paper` (CaffeNet, 227 px) and `paper-fast` (CaffeNet,
    128 px) profiles, batch 256, bf16, channels_last, uint8 images already on the GPU (no data loading):
      - "group": `Group.step` as training runs it (crops and mirrors on the GPU, dropout masks from a
        per-network CPU generator, the loss read back every step), eager and with `compile=True`;
      - "network": forward + backward + fused SGD on a ready batch, dropout off, no read-back: the ceiling
        of the network itself, eager and with the whole network compiled.
 4. decode: JPEG decoding per CPU core for ILSVRC-sized images (500x375) at 256 and 144 px: the input
    pipeline's budget (cores per GPU needed to keep up with step 3).
 5. plan: the `gpu` profile's plan with replicates=1, trained by `train_group` as `repro run` does, for the
    time left; wall time, runs/min, network-iterations/s, and the projected time of the whole plan. Tiny
    ImageNet is used where REPRO_DATA points at it; else synthetic images of the same count and size
    (200 classes x 500 at 64 px: the same iterations and so the same time; accuracies mean nothing).
 6. projections: the `paper` and `paper-fast` plans on 8 GPUs from the measured speeds (`project_wall_time`).
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
from repro.models import Net, flops_per_image  # noqa: E402
from repro.profiles import get_profile  # noqa: E402
from repro.runs import RunSpec, canonical, groups, specs_for, training_config  # noqa: E402
from repro.train import Group, Task, augment, iterations  # noqa: E402

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
    files = ["tests/test_gpu_paths.py"] + ([] if dry else ["tests/test_train.py", "tests/test_transfer.py"])
    cmd = [sys.executable, "-m", "pytest", "-m", "smoke", *files, "-q", "-p", "no:cacheprovider"]
    if dry:
        cmd += ["-k", "autocast or compile or bit_identical"]
    env = {**os.environ, "REPRO_TEST_DEVICE": device.type, "PYTHONPATH": str(ROOT)}
    t = time.time()
    try:
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        log, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        log, rc = f"{e.stdout or ''}{e.stderr or ''}\nTIMED OUT after {timeout:.0f} s", "timeout"
    (out / "pytest.log").write_text(log if isinstance(log, str) else log.decode())
    summary = [line for line in str(log).splitlines() if " passed" in line or " failed" in line or "error" in line]
    return {"command": " ".join(cmd[1:]), "returncode": rc, "summary": summary[-1:] if summary else [],
            "seconds": round(time.time() - t, 1)}


# ---- 3. throughput ------------------------------------------------------------------------------------
def network(profile_name: str, num_classes: int):
    profile = get_profile(profile_name)
    return profile, Net(profile.arch, num_classes, profile.recipe.crop)


def fake_task(profile, num_classes: int, batch: int, device: torch.device) -> Task:
    """Random uint8 images already on the device: data loading is not measured here."""
    n = 4 * batch
    images = torch.randint(0, 256, (n, 3, profile.image_size, profile.image_size), dtype=torch.uint8, device=device)
    train = ImageSet(labels=torch.arange(n) % num_classes, image_size=profile.image_size, images=images)
    return Task(train, train, num_classes)


def measure(profile_name: str, num_classes: int, mode: str, compile: bool, device: torch.device, batch: int,
            steps: int, warmup: int) -> dict:
    """Training images/s of one network: `mode` 'group' (Group.step) or 'network' (the bare network)."""
    profile, net = network(profile_name, num_classes)
    recipe = dataclasses.replace(profile.recipe, batch_size=batch)
    flops = flops_per_image(net, recipe.crop)
    spec = RunSpec("random:0", "A", "base", 0, 0, canonical(training_config(profile)))
    group = Group.build([spec], fake_task(profile, num_classes, batch, device), {}, arch=profile.arch,
                        recipe=recipe, device=device, bf16=True, channels_last=True,
                        compile=compile and mode == "group")
    member = group.members[0]
    if mode == "group":
        def step(i):
            group.step(i, group.members)
    else:
        net = member.net
        for layer in net.layers:
            layer.dropout = 0.0  # no masks from the CPU: the network's own ceiling
        if compile and device.type == "cuda":
            net.compile()
        x, y = group.batch(0)
        autocast = device.type == "cuda"

        def step(i):
            with torch.autocast(device.type, torch.bfloat16, enabled=autocast):
                loss = F.cross_entropy(net(x).float(), y)
            member.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            member.optimizer.step()

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


def throughput(device: torch.device, dry: bool, report: Report, stop_at: float) -> list[dict]:
    peak = report.data["device"]["bf16_peak_tflops"]
    batch, steps, warmup = (8, 2, 1) if dry else (256, 30, 5)
    nets = [("gpu", 100), ("paper", 500), ("paper-fast", 500)]
    plan = [(p, c, mode, False) for p, c in nets for mode in ("group", "network")]
    plan += [(p, c, mode, True) for p, c in nets for mode in ("network", "group")]
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


# ---- 4. decode ----------------------------------------------------------------------------------------
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


# ---- 5. the gpu plan ----------------------------------------------------------------------------------
class OutOfTime(Exception):
    pass


def gpu_plan_profile(dry: bool):
    sets = ["replicates=1"]
    if not os.environ.get("REPRO_DATA"):
        # no Tiny ImageNet here: synthetic images of its count and size (same iterations, same time)
        sets += ["dataset=synthetic", "num_classes=200", "images_per_class=500", "val_per_class=50"]
    if dry:
        sets += ["num_classes=8", "images_per_class=40", "val_per_class=10", "recipe.batch_size=16",
                 "recipe.epochs=1", "recipe.evals=2"]
    return get_profile("gpu", sets)


def run_plan(device: torch.device, dry: bool, report: Report, stop_at: float) -> dict:
    from repro.execute import load_task, train_group
    from repro.store import Store
    from repro.study import all_needs

    profile = gpu_plan_profile(dry)
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
        report.save("gpu_plan", result)
    wall = time.time() - t0
    done = sum(g["runs"] for g in result["groups"] if g["finished"])
    result.update(wall_seconds=round(wall, 1), runs_finished=done, runs_per_minute=round(60 * done / wall, 2))
    plan_groups = groups(specs, share=profile.share)
    result["projected_minutes_replicates_1"] = project_plan_minutes(result["groups"], plan_groups, total)
    if result["projected_minutes_replicates_1"]:
        replicates = get_profile("gpu").replicates
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


# ---- 6. projections -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def layer_flops(arch, num_classes: int, crop: int) -> tuple[int, ...]:
    """Forward FLOPs per image of layers 1..8."""
    net = Net(arch, num_classes, crop)
    counts = [0] * len(net.layers)
    hooks = []
    for k, layer in enumerate(net.layers):
        def count(module, inputs, output, k=k):
            if isinstance(module, torch.nn.Conv2d):
                counts[k] += 2 * output.numel() * module.weight[0].numel()
            elif isinstance(module, torch.nn.Linear):
                counts[k] += 2 * module.in_features * module.out_features * output.shape[0]
        hooks.append(layer.weights.register_forward_hook(count))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, crop, crop))
    for h in hooks:
        h.remove()
    return tuple(counts)


def half_sizes(profile, spec) -> tuple[int, int, int]:
    """(classes, train images, val images) of the half a run trains on."""
    if profile.dataset in DATASET_SIZES:
        train_total, val_per_class, num_classes, natural = DATASET_SIZES[profile.dataset]
        train_per_class = train_total / num_classes
    else:
        num_classes, train_per_class = profile.num_classes, profile.images_per_class
        val_per_class, natural = max(4, profile.images_per_class // 5), profile.num_classes // 2
    if profile.train_per_class:
        train_per_class = min(train_per_class, profile.train_per_class)
    if profile.val_per_class:
        val_per_class = min(val_per_class, profile.val_per_class)
    if spec.split == "natman":
        classes = natural if spec.target == "A" else num_classes - natural
    else:
        classes = num_classes // 2 if spec.target == "A" else num_classes - num_classes // 2
    return classes, int(classes * train_per_class), int(classes * val_per_class)


def project_wall_time(profile, images_per_second_per_gpu: float, gpus: int = 8) -> float:
    """Hours to train a profile's whole plan on `gpus` GPUs, each training `images_per_second_per_gpu` images/s
    through a full network (forward + backward). Each run costs its iterations x batch images, plus a forward
    pass over its half's validation set at every test. A frozen run (BnB, AnB, random) costs less: forward
    through its frozen layers 1..n, forward + backward (3x) through layers n+1..8 only. (A shared sweep
    computes a frozen prefix once per source, so this overestimates frozen runs a little.) Assumes the GPUs
    stay busy: the input pipeline keeps up and the DAG has enough ready runs."""
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
    p.add_argument("--budget", type=float, default=None, help="seconds for the whole check (480; dry run 150)")
    p.add_argument("--dry-run", action="store_true", help="on the CPU, everything shrunk: checks the script")
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
    report = Report(out, args.budget or (150 if dry else 480))
    report.save("mode", "dry-run on the CPU (numbers mean nothing)" if dry else "gpu")

    say("1/6 device")
    report.save("device", device_info(device, dry))
    say(json.dumps(report.data["device"]))

    say("2/6 tests")
    report.save("tests", run_tests(out, device, dry, timeout=min(120, max(30, report.left() * 0.25))))
    say(json.dumps(report.data["tests"]))

    say("3/6 throughput")
    throughput(device, dry, report, stop_at=time.time() + max(30, report.left() * 0.45))

    say("4/6 decode")
    report.save("decode", decode_rate(dry))
    say(json.dumps(report.data["decode"]))

    say("5/6 gpu plan")
    report.save("gpu_plan", run_plan(device, dry, report, stop_at=time.time() + report.left() - 15))
    plan = report.data["gpu_plan"]
    say(json.dumps({k: v for k, v in plan.items() if k != "groups"}))

    say("6/6 projections")
    report.save("projections", projections(report))
    say(json.dumps(report.data["projections"], indent=1))
    say(f"done in {time.time() - report.t0:.0f} s; results in {out}/gpu_check.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
