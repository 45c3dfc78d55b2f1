"""One point of the CPU profile's convergence frontier: how far the selffer BnB at n = 1 is from its base.

Trains, on random:R half B (or A, `--target A`) with 1 intra-op thread, the base and BnB n = 1 of a variant of the `cpu` profile
(`--set FIELD=VALUE` as for `repro run`), and optionally a base trained twice as long (`--twice`), then
appends one JSON line to benchmarks/results/convergence_frontier.jsonl (`--table` prints them as the README's
table):

    .venv/bin/python -m benchmarks.convergence_frontier --name "batch 32, linear" \
        --set recipe.batch_size=32 --set recipe.epochs=4 [--twice] [--replicate 1]

"BnB n=1 vs base" is 100 * (BnB - base) / base, the paper's +0.25% premise; "twice vs base" the same for the
base trained twice the epochs. CPU seconds (user + sys of this process) are recorded beside wall seconds,
because wall time on a shared machine is noisy. Both count this call only; a network resumed from a checkpoint
in the store (a pilot stopped part way) also has its training time over every piece, `base_train_s` and
`bnb1_train_s` (the store's `train_seconds`).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from repro.worker import train_group
from repro.profiles import get_profile
from repro.runs import RunSpec, canonical, training_config
from repro.store import Store

OUT = Path(__file__).parent / "results" / "convergence_frontier.jsonl"
# Wall seconds of the whole cpu plan (102 networks, 2 workers x 1 thread on 2 cores) per CPU second of one
# base on random:0/B: the previous study's 2-epoch plan took 1,961-2,125 s where such a base takes ~76 CPU s.
PLAN_SECONDS_PER_BASE_CPU_SECOND = 27


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train(specs, store_root, profile, data_root):
    t0, c0 = time.time(), cpu_seconds()
    train_group(specs, store_root, profile, data_root)
    store = Store(store_root)
    return [store.result(s) for s in specs], time.time() - t0, cpu_seconds() - c0


def table(path: Path = OUT) -> str:
    """docs/frontier.md's table of the `cpu` profile's variants, one row per line of the JSONL file (the other
    profiles' pilots are `premise_table`'s)."""
    lines = ["| variant | replicate | base top-1 | BnB n=1 vs base | base trained twice as long vs base | "
             "base, CPU s | plan wall time (estimate) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in map(json.loads, path.read_text().splitlines()):
        if r.get("profile", "cpu") != "cpu":
            continue
        twice = f"{r['twice_vs_base']:+.1f}%" if "twice_vs_base" in r else ""
        plan = PLAN_SECONDS_PER_BASE_CPU_SECOND * r["base_cpu_s"] / 60
        lines.append(f"| {r['name']} | {r['replicate']} | {100 * r['base_top1']:.1f}% | {r['bnb1_vs_base']:+.1f}% | "
                     f"{twice} | {r['base_cpu_s']:.0f} | ~{plan:.0f} min |")
    return "\n".join(lines)


def premise_table(name: str, path: Path = OUT) -> str:
    """The pilot of a recipe's converged-bases premise: its rows (base and BnB n = 1, per replicate and half),
    each replicate's mean over its halves, and the premise's rule on them (repro.premises.bias_bound: the
    one-sided 95% upper bound of |mean| within CONVERGED % of base)."""
    from repro.premises import CONVERGED, bias_bound

    rows = [r for r in map(json.loads, path.read_text().splitlines()) if r["name"] == name]
    lines = ["| replicate | half | base top-1 | BnB n = 1 top-1 | BnB n = 1 vs base | precision, CPU |",
             "| --- | --- | --- | --- | --- | --- |"]
    by_replicate: dict[int, list[float]] = {}
    for r in sorted(rows, key=lambda r: (r["replicate"], r["target"])):
        by_replicate.setdefault(r["replicate"], []).append(r["bnb1_vs_base"])
        cpu = r.get("cpu")  # rows before it was recorded: bf16 on an EPYC with AVX512-BF16 (docs/frontier.md)
        where = ", ".join(filter(None, [r["precision"], cpu["cpu_model"], cpu.get("cpu_family"),
                                        cpu["cpu_capability"]])) if cpu else "bf16, an EPYC with AVX512-BF16"
        lines.append(f"| {r['replicate']} | {r['target']} | {100 * r['base_top1']:.1f}% | {100 * r['bnb1_top1']:.1f}% "
                     f"| {r['bnb1_vs_base']:+.2f}% | {where} |")
    means = {k: sum(v) / len(v) for k, v in by_replicate.items() if len(v) == 2}
    mean, bound = bias_bound(list(means.values()))
    lines.append("")
    lines.append(f"per replicate (both halves averaged): " + ", ".join(f"r{k} {v:+.2f}%" for k, v in means.items()))
    lines.append(f"premise on {len(means)} replicates: mean {mean:+.2f}% of base, one-sided 95% bound on |mean| "
                 f"{bound:.2f}%: {'met' if bound <= CONVERGED else 'not met'} (tolerance {CONVERGED:g}%)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--table", action="store_true", help="print the frontier table of the results so far")
    p.add_argument("--premise", metavar="NAME", help="print the premise pilot of the variant NAME: its rows, "
                                                     "per-replicate means and the premise's bound")
    p.add_argument("--name")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--replicate", type=int, default=0)
    p.add_argument("--twice", action="store_true", help="also a base trained for twice the epochs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--target", choices=("A", "B"), default="B", help="the half the base and BnB n = 1 train on")
    p.add_argument("--store", default=None, help="keep the networks in this run store (default: a temporary one)")
    p.add_argument("--data-root", default=os.environ.get("REPRO_DATA"))
    args = p.parse_args(argv)
    if args.table:
        print(table())
        return 0
    if args.premise:
        print(premise_table(args.premise))
        return 0
    if not args.name:
        p.error("--name is required to train a variant")
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile, args.overrides)
    config = canonical(training_config(profile))
    split = f"random:{args.replicate}"
    base = RunSpec(split, args.target, "base", 0, args.replicate, config)
    bnb = RunSpec(split, args.target, "BnB", 1, args.replicate, config)
    row = {"name": args.name, "profile": args.profile, "overrides": args.overrides, "replicate": args.replicate,
           "target": args.target,
           "threads": args.threads, "host_cores": os.cpu_count(), "torch": torch.__version__,
           "when": time.strftime("%F %T"),
           "profile_fields": {"image_size": profile.image_size, "recipe": dataclasses.asdict(profile.recipe),
                              "arch": dataclasses.asdict(profile.arch)}}
    with (contextlib.nullcontext(args.store) if args.store else tempfile.TemporaryDirectory(prefix="frontier-")) as root:
        (mb,), wall_b, cpu_b = train([base], root, profile, args.data_root)
        (mt,), wall_t, cpu_t = train([bnb], root, profile, args.data_root)
        row.update(base_top1=mb["top1"], bnb1_top1=mt["top1"], base_curve=mb["curve"], bnb1_curve=mt["curve"],
                   iterations=mb["iterations"], base_wall_s=wall_b, base_cpu_s=cpu_b, bnb1_wall_s=wall_t,
                   bnb1_cpu_s=cpu_t, base_train_s=mb["train_seconds"], bnb1_train_s=mt["train_seconds"],
                   bnb1_vs_base=100 * (mt["top1"] - mb["top1"]) / mb["top1"],
                   precision=mb.get("precision"), cpu=mb.get("cpu"))
        if args.twice:
            epochs = profile.recipe.epochs * 2
            longer = get_profile(args.profile, args.overrides + [f"recipe.epochs={epochs}"])
            base2 = RunSpec(split, args.target, "base", 0, args.replicate, canonical(training_config(longer)))
            (m2,), wall_2, cpu_2 = train([base2], root, longer, args.data_root)
            row.update(twice_top1=m2["top1"], twice_curve=m2["curve"], twice_wall_s=wall_2, twice_cpu_s=cpu_2,
                       twice_vs_base=100 * (m2["top1"] - mb["top1"]) / mb["top1"])
    if args.profile == "cpu":  # PLAN_SECONDS_PER_BASE_CPU_SECOND was measured on that profile's plan
        row["plan_estimate_s"] = PLAN_SECONDS_PER_BASE_CPU_SECOND * cpu_b
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{args.name}: base {100 * row['base_top1']:.1f}%, BnB n=1 {row['bnb1_vs_base']:+.1f}% "
          + (f"twice {row['twice_vs_base']:+.1f}% " if args.twice else "")
          + f"| base {wall_b:.0f}s wall {cpu_b:.0f}s cpu, BnB1 {wall_t:.0f}s wall {cpu_t:.0f}s cpu"
          + (f", plan ~{row['plan_estimate_s'] / 60:.0f} min" if "plan_estimate_s" in row else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
