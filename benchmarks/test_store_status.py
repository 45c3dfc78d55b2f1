"""How long `repro plan` takes on a store of many finished runs with large weights (issue 22: the status of a
run must not read its weights).

    python benchmarks/test_store_status.py --profile paper --weights-mb 20 --repeats 3   # prints JSON
    pytest benchmarks/test_store_status.py                                               # pytest-benchmark

Fills a temporary store, through the store's own `save_result`, with every run the profile's plan needs, each
with W MB of weights, then times `python -m repro.cli plan --profile P --store STORE` in a fresh process (the
way a user runs it, so nothing is remembered from filling the store), and the same plan on an empty store
(what it costs without any status to check). The files were just written, so they
are in the page cache: reading them costs less here than on a cluster's shared file system.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def fill_store(root: Path, profile_name: str, weights_mb: float) -> int:
    """Every run of the profile's plan, finished, with `weights_mb` MB of weights each; returns the count."""
    from repro.store import Store
    from repro.study import all_needs, plan, resolve_profile

    profile = resolve_profile(profile_name, None, [], None)
    store = Store(root)
    specs = plan(profile, all_needs(), store)["specs"]
    weights = {"layers.0.weights.weight": torch.zeros(int(weights_mb * 2**20 / 4))}
    for k, spec in enumerate(specs):
        weights["layers.0.weights.weight"][0] = k  # a different file per run
        store.save_result(spec, weights, {"top1": 0.5, "final_top1": 0.5, "diverged": False, "curve": [[1, 0.5]],
                                          "losses": [[1, 1.0]]})
    return len(specs)


# `repro plan` as `python -m repro.cli` runs it, then the bytes the process read (Linux: /proc/self/io's rchar)
PLAN = """
import runpy, sys
sys.argv = ["repro"] + sys.argv[1:]
try:
    runpy.run_module("repro.cli", run_name="__main__")
finally:
    io = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines() if line)
    sys.stderr.write(f"read_bytes {io['rchar']}\\n")
"""


def plan_seconds(root: Path, profile_name: str) -> tuple[float, str, float]:
    """Wall seconds of `repro plan` in a fresh process, its first line, and the MB it read."""
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PLAN, "plan", "--profile", profile_name, "--store", str(root)],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    read = int(done.stderr.rsplit("read_bytes ", 1)[1])
    return seconds, done.stdout.splitlines()[0], read / 2**20


def test_repro_plan_on_a_store_of_finished_runs(benchmark, tmp_path):
    runs = fill_store(tmp_path / "store", "smoke", 8)
    seconds, first_line, read_mb = benchmark.pedantic(plan_seconds, args=(tmp_path / "store", "smoke"), rounds=3)
    assert f"{runs} runs, {runs} cached, 0 to train" in first_line
    assert read_mb < runs * 8 / 2  # the weights are not read (the imports alone read about 50 MB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--weights-mb", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="store-status-") as tmp:
        empty = [plan_seconds(Path(tmp) / "empty", args.profile) for _ in range(args.repeats)]
        t0 = time.perf_counter()
        runs = fill_store(Path(tmp) / "store", args.profile, args.weights_mb)
        fill = time.perf_counter() - t0
        times = [plan_seconds(Path(tmp) / "store", args.profile) for _ in range(args.repeats)]
    import repro.store

    print(json.dumps({"profile": args.profile, "runs": runs, "weights_mb": args.weights_mb,
                      "store_gb": round(runs * args.weights_mb / 1024, 2), "fill_seconds": round(fill, 1),
                      "plan_seconds": [round(s, 2) for s, _, _ in times], "plan_read_mb": round(times[0][2], 1),
                      "empty_store_plan_seconds": [round(s, 2) for s, _, _ in empty],
                      "empty_store_plan_read_mb": round(empty[0][2], 1),
                      "plan_says": times[0][1],
                      "repro": str(Path(repro.store.__file__).parent)}, indent=1))


if __name__ == "__main__":
    main()
