"""How precisely a study's converged-bases premise is known: BnB n = 1 against its base, per replicate and target.

Reads the rows of benchmarks/results/convergence_frontier.jsonl with one `--name`, and with `--store` (the store
the frontier kept its networks in) evaluates each base and its BnB n = 1 again on the validation set, image by
image, to split the premise's uncertainty into its two sources:

- the validation set: the two networks are scored on the same images, so the noise of their difference comes
  from the images on which exactly one of them is right (paired, McNemar-style: var = (b + c)/N^2 - (b - c)^2/N^3);
- the seed: how much the difference moves from one replicate or target to the next beyond that.

    .venv/bin/python -m benchmarks.premise_precision --name "gpu recipe (16 ep)" --store STORE

Prints a table per replicate and target and a summary, and writes them as JSON (`--out`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from benchmarks.convergence_frontier import OUT as FRONTIER
from repro.premises import CONVERGED, bias_bound



def stored_spec(store: Path, split: str, target: str, treatment: str, n: int, replicate: int, epochs: float):
    """The run folder whose spec is this network (matched by its fields, so a later run-key scheme still finds it)."""
    for spec_file in sorted(store.glob("runs/*/spec.json")):
        s = json.loads(spec_file.read_text())
        if (s["split"], s["target"], s["treatment"], s["n"], s["replicate"]) == (split, target, treatment, n, replicate) \
                and float(s["config"]["recipe"]["epochs"]) == float(epochs) and (spec_file.parent / "result.json").exists():
            return spec_file.parent, s
    return None, None


@torch.no_grad()
def correct_per_image(run_dir: Path, spec: dict, data_root: str | None) -> tuple[np.ndarray, float]:
    """Which validation images the stored network gets right (as training scored it), and its stored top-1."""
    from safetensors.torch import load_file

    from repro.worker import load_task
    from repro.models import get_model
    from repro.profiles import Arch
    from repro.runs import RunSpec
    from repro.train import MEAN, STD, crop_and_normalise

    cfg = spec["config"]
    task = load_task(RunSpec.from_dict(spec), data_root)
    arch = Arch(**{**cfg["arch"], "widths": tuple(cfg["arch"]["widths"])})
    crop = cfg["recipe"]["crop"]
    net = get_model(arch, task.num_classes, crop)
    net.load_state_dict(load_file(str(run_dir / "weights.safetensors")))
    net = net.to(memory_format=torch.channels_last).eval()
    metrics = json.loads((run_dir / "result.json").read_text())["metrics"]
    autocast = metrics.get("autocast") == "bf16"
    right = []
    images, labels = task.val.images, task.val.labels
    for lo in range(0, len(labels), 500):
        x = crop_and_normalise(images[lo:lo + 500], crop, None, MEAN, STD).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            right.append((net(x).argmax(1) == labels[lo:lo + 500]).numpy())
    return np.concatenate(right), metrics["final_top1"]


def paired(base: np.ndarray, bnb: np.ndarray) -> dict:
    """BnB minus base in % of base, with the validation set's paired standard error."""
    n = len(base)
    b = int((bnb & ~base).sum())  # BnB right, base wrong
    c = int((base & ~bnb).sum())
    p = base.mean()
    var = (b + c) / n ** 2 - (b - c) ** 2 / n ** 3
    return {"images": n, "bnb_only": b, "base_only": c, "diff_pct": 100 * (bnb.mean() - p) / p,
            "val_se_pct": 100 * math.sqrt(var) / p,
            "unpaired_se_pct": 100 * math.sqrt(p * (1 - p) / n + bnb.mean() * (1 - bnb.mean()) / n) / p}


def summarise(units: list[dict]) -> dict:
    d = np.array([u["diff_pct"] for u in units])
    k = len(d)
    sd = float(d.std(ddof=1)) if k > 1 else float("nan")
    se = sd / math.sqrt(k) if k > 1 else float("nan")
    out = {"units": k, "mean_pct": float(d.mean()), "sd_pct": sd, "se_pct": se, "min_pct": float(d.min()),
           "max_pct": float(d.max())}
    if k > 1:
        t = stats.t.ppf(0.95, k - 1)
        out.update(upper95_pct=float(d.mean() + t * se), lower95_pct=float(d.mean() - t * se))
    # the premise's own rule (repro.premises.converged): on each replicate's mean over its halves
    by_replicate: dict[int, list[float]] = {}
    for u in units:
        by_replicate.setdefault(u["replicate"], []).append(u["diff_pct"])
    mean, bound = bias_bound([sum(v) / len(v) for v in by_replicate.values()])
    out.update(premise_replicates=len(by_replicate), premise_bound_pct=bound,
               premise_met=bool(math.isfinite(bound) and bound <= CONVERGED))
    val = [u["val_se_pct"] for u in units if "val_se_pct" in u]
    if val:
        meas_var = float(np.mean(np.square(val)))
        out.update(val_se_pct_per_unit=float(np.sqrt(meas_var)), val_se_pct_of_mean=float(np.sqrt(meas_var / k)))
        if k > 1:
            out["seed_sd_pct"] = float(math.sqrt(max(0.0, sd ** 2 - meas_var)))
            out["val_share_of_variance"] = float(min(1.0, meas_var / sd ** 2)) if sd > 0 else None
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="the frontier rows to read (their `name`)")
    p.add_argument("--store", help="the frontier's store: evaluate the networks image by image")
    p.add_argument("--data-root", default=os.environ.get("REPRO_DATA"))
    p.add_argument("--out", help="write the table and summary as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for r in map(json.loads, FRONTIER.read_text().splitlines()) if r["name"] == args.name]
    if not rows:
        p.error(f"no rows named {args.name!r} in {FRONTIER}")
    units, twice = [], []
    for r in rows:
        target = r.get("target", "B")
        u = {"replicate": r["replicate"], "target": target, "base_top1": r["base_top1"], "bnb1_top1": r["bnb1_top1"],
             "diff_pct": r["bnb1_vs_base"]}
        epochs = r["profile_fields"]["recipe"]["epochs"]
        if args.store:
            split = f"random:{r['replicate']}"
            found = [stored_spec(Path(args.store), split, target, t, n, r["replicate"], epochs)
                     for t, n in (("base", 0), ("BnB", 1))]
            if all(d for d, _ in found):
                (base, base_top1), (bnb, bnb_top1) = [correct_per_image(d, s, args.data_root) for d, s in found]
                if (abs(base.mean() - base_top1) > 1e-9) or (abs(bnb.mean() - bnb_top1) > 1e-9):
                    print(f"warning: r{r['replicate']}/{target}: re-evaluation gives {base.mean():.4f}/{bnb.mean():.4f}, "
                          f"training scored {base_top1:.4f}/{bnb_top1:.4f}", file=sys.stderr)
                u.update(paired(base, bnb))
        units.append(u)
        if "twice_vs_base" in r:
            twice.append({"replicate": r["replicate"], "target": target, "twice_vs_base_pct": r["twice_vs_base"],
                          "twice_top1": r["twice_top1"]})
    summary = summarise(units)
    print("| replicate | target | base top-1 | BnB n=1 top-1 | BnB n=1 vs base | validation SE (paired) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for u in sorted(units, key=lambda u: (u["replicate"], u["target"])):
        se = f"±{u['val_se_pct']:.2f}%" if "val_se_pct" in u else ""
        print(f"| {u['replicate']} | {u['target']} | {100 * u['base_top1']:.1f}% | {100 * u['bnb1_top1']:.1f}% | "
              f"{u['diff_pct']:+.2f}% | {se} |")
    print(json.dumps({"summary": summary, "twice": twice}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"name": args.name, "units": units, "summary": summary,
                                              "twice": twice}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
