"""The cpu-quick plan trained several times in one process, one network at a time (`false`) or as shared
sweeps (`true`), in the order given (default: false true; test_sweep.py runs true then false), with each
group's wall time from the stores: shows where sharing saves time and how much of a plan-level difference
is the order of the runs in one process.

    REPRO_DATA=../shared/data/tiny-imagenet-200 python benchmarks/sweep_order.py [true false true ...]
"""
import json
import sys
import tempfile
import time

from repro.execute import execute
from repro.profiles import get_profile
from repro.runs import groups, specs_for
from repro.store import Store
from repro.study import all_needs
from repro.worker import load_task


def main(order):
    if set(order) != {"true", "false"}:
        sys.exit("usage: sweep_order.py [true|false ...], naming both at least once")
    root = tempfile.mkdtemp(prefix="sweep-order-")
    wall, seconds, runs = {}, {}, []
    for i, share in enumerate(order):
        profile = get_profile("cpu-quick", [f"share={share}"])
        specs = specs_for(profile, all_needs())
        load_task(specs[0], None)  # decode/cache the data outside the timing
        store = Store(f"{root}/{i}-{share}")
        t0 = time.perf_counter()
        execute(specs, profile, store, progress=False)
        wall[share] = time.perf_counter() - t0  # the last run of each way is the one compared
        seconds[share] = {s.key: store.result(s)["train_seconds"] for s in specs}
        runs.append({"share": share == "true", "wall_s": wall[share]})
        print(f"run {i + 1}, share={share}: {wall[share]:.0f}s", flush=True)
    alone, shared = seconds["false"], seconds["true"]
    for g in groups(specs_for(get_profile("cpu-quick"), all_needs())):
        print(f"{len(g):3d} {g[0].split}/{g[0].target}: alone {sum(alone[s.key] for s in g):6.1f}s, "
              f"shared {shared[g[0].key]:6.1f}s")
    print(f"one at a time {wall['false']:.0f}s, shared {wall['true']:.0f}s, ratio {wall['false'] / wall['true']:.2f}x")
    print(json.dumps({"runs": runs, "one_at_a_time_s": wall["false"], "shared_s": wall["true"]}))


if __name__ == "__main__":
    main(sys.argv[1:] or ["false", "true"])
