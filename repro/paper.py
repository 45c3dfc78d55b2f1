"""The original study's per-network results as a results Table (evidence 'original').

The numbers are the reference data of Yosinski et al. 2014 (repro/reference, README.md there): one row per
network with the paper's metric (the mean of the 10 highest of 450 validation tests), and the validation curves.
The original run names are turned into the fields every claim reads, so that each treatment pairs with the
base network of its own target half (`Table.base_of`):

    base '0A'                      -> split 'random:0', replicate 0, target 'A'
    BnB/AnB/BnB+/AnB+ '0A0B_1_3'   -> split 'random:0', replicate 0, source 'A', target 'B', n 3
    natman_base 'A' / 'B'          -> split 'natman', replicate 0 (A = natural, 449 classes; B = man-made, 551)
    natman_AnB 'AB_1_3'            -> treatment 'AnB', split 'natman', source 'A', target 'B', n 3
    random_base_1000cls 'netbase'  -> split 'all', target 'all', treatment 'base' (1000 classes)
    random_frozen 'nolearn_1_3'    -> split 'all', target 'all', treatment 'random', n 3

The split seed of a random split is its replicate: the four random splits are the original's independent
replicates. The 'reduced' group (networks trained on fewer images per class) belongs to no claim and is left out.
`Row.key` is the original result folder ('half0A', 'transfer0A0B_1_3', 'transfer-ft0A0B_1_3', 'halfnatmanA',
'transfernatmanAB_1_3', 'netbase', 'nolearn_1_3'), which also keys `Table.curves`.
"""
from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import replace
from importlib import resources

from repro.results import Row, Table, family
from repro.runs import TRANSFERRED

PER_NETWORK = "yosinski2014_per_network_top1.csv"
CURVES = "yosinski2014_val_curves.csv"
HALF_CLASSES = {"A": 500, "B": 500}
NATMAN_CLASSES = {"A": 449, "B": 551}  # natural, man-made
SKIPPED_GROUPS = ("reduced",)
BATCH = 256  # the original's batch and final learning rate: 0.01, times 0.1 after each 100k of 450k iterations
FINAL_LR = 0.01 * 0.1 ** 4

_TRANSFER = re.compile(r"^(\d)([AB])(\d)([AB])_1_([1-7])$")
_NATMAN_TRANSFER = re.compile(r"^([AB])([AB])_1_([1-7])$")
_FROZEN = re.compile(r"^nolearn_1_([1-7])$")


def _read(name: str) -> list[dict]:
    text = resources.files("repro.reference").joinpath(name).read_text()
    return list(csv.DictReader(io.StringIO(text)))


def _row(group: str, net: str, top1: float, final: float) -> Row:
    """One original network as a Row; raises ValueError naming the network if its name is not understood."""
    common = dict(evidence="original", top1=top1, final_top1=final)
    if group == "base":
        m = re.fullmatch(r"(\d)([AB])", net)
        if m:
            seed, half = int(m[1]), m[2]
            return Row(split=f"random:{seed}", replicate=seed, treatment="base", n=0, source=None, target=half,
                       num_classes=HALF_CLASSES[half], key=f"half{net}", **common)
    elif group in TRANSFERRED:
        m = _TRANSFER.fullmatch(net)
        if m and m[1] == m[3] and (m[2] == m[4]) == group.startswith("B"):
            folder = ("transfer-ft" if group.endswith("+") else "transfer") + net
            return Row(split=f"random:{m[1]}", replicate=int(m[1]), treatment=group, n=int(m[5]), source=m[2],
                       target=m[4], num_classes=HALF_CLASSES[m[4]], key=folder, **common)
    elif group == "natman_base" and net in ("A", "B"):
        return Row(split="natman", replicate=0, treatment="base", n=0, source=None, target=net,
                   num_classes=NATMAN_CLASSES[net], key=f"halfnatman{net}", **common)
    elif group == "natman_AnB":
        m = _NATMAN_TRANSFER.fullmatch(net)
        if m and m[1] != m[2]:
            return Row(split="natman", replicate=0, treatment="AnB", n=int(m[3]), source=m[1], target=m[2],
                       num_classes=NATMAN_CLASSES[m[2]], key=f"transfernatman{net}", **common)
    elif group == "random_base_1000cls" and net == "netbase":
        return Row(split="all", replicate=0, treatment="base", n=0, source=None, target="all", num_classes=1000,
                   key="netbase", **common)
    elif group == "random_frozen":
        m = _FROZEN.fullmatch(net)
        if m:
            return Row(split="all", replicate=0, treatment="random", n=int(m[1]), source=None, target="all",
                       num_classes=1000, key=net, **common)
    raise ValueError(f"{PER_NETWORK}: network {net!r} of group {group!r} does not follow the original naming")


@functools.lru_cache(maxsize=1)
def _original_table() -> Table:
    rows = [_row(r["group"], r["net"], float(r["top10mean_val_top1"]), float(r["last"]))
            for r in _read(PER_NETWORK) if r["group"] not in SKIPPED_GROUPS]
    keys = {r.key for r in rows}
    curves: dict[str, list[tuple[int, float]]] = {}
    for r in _read(CURVES):
        if r["run"] in keys:
            curves.setdefault(r["run"], []).append((int(r["iteration"]), float(r["val_top1"])))
    # what each network trained: its curve's last test is its last iteration; batch and schedule as published
    last = {key: max(i for i, _ in curve) for key, curve in curves.items()}
    rows = [replace(r, iterations=last[r.key], examples_seen=last[r.key] * BATCH, final_lr=FINAL_LR)
            if r.key in last else r for r in rows]
    return Table(rows, curves)


def original_table(layers: frozenset | None = None) -> Table:
    """The original study's 136 networks (148 less the 12 'reduced' ones) as a Table, with their curves.

    `layers` (a `Table.layer_set()` of another table) keeps only the networks at the (treatment, split
    family, n) that table holds, and every base: the original's effects measured on the same layers as ours.
    The random-feature control matches on n alone (the original's ran on all 1000 classes, split 'all').
    The returned Table has its own row list and curve dict: changing them changes nothing for others.
    """
    table = _original_table()
    rows = table.rows
    if layers is not None:
        random_n = {n for treatment, _, n in layers if treatment == "random"}
        rows = [r for r in rows if r.treatment == "base" or (r.treatment, family(r.split), r.n) in layers
                or (r.treatment == "random" and r.n in random_n)]
    return Table(list(rows), dict(table.curves))
