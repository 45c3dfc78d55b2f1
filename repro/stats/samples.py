"""Replicate values: one number per independent replicate, from the paired networks of a results table.

Unit of replication. A replicate is one independent split ('random:<seed>') or initialisation. The networks
of one replicate (several n, both directions of one split) share their split and base networks, so they are
not independent: they are averaged into one value per replicate (`by_replicate`, `slope_by_replicate`) and
the tests run across replicates. On the original study this gives 4 replicates for the random splits and 1
for the natural/man-made split and for the random-feature control.

Effects are relative to the base network of the treatment's own target half (repro.results, the one home of
each unit): in % of the base's accuracy over chance ('over_chance', the claims' unit: 100 * (top1 - base) /
(base - chance), which carries across class counts), in percentage points ('points'), or in % of the base
('relative', the premises' unit).

A cell with a single replicate has no spread of its own. The one rule for it (`Spread`, `table_spread`): it
borrows the LARGEST seed-to-seed spread among the table's cells of the same kind of treatment (frozen
transfer AnB/BnB, fine-tuned AnB+/BnB+, random frozen) that hold two or more replicates (a cell: one
treatment, one split family, one n; its values: the replicates' effects), with the degrees of freedom of
that one cell (its replicates - 1). Not a pooled spread: cells differ up to tenfold in spread
(heterogeneity), and a cell that borrows may be among the noisy ones; and not the pooled degrees of freedom:
the cells of one replicate share their bases, so they are not independent evidence about the spread. When
no cell of the same kind has replicates, the largest spread of any replicated cell is borrowed, and the
explanation says so. Used by every claim that meets such a cell (distance_penalty, random_features).

Diverged networks never reach these functions: the claims judge a table without them and without what was
built from them (repro.results.without_failures).

Everything here is a pure function: samples in, new samples or arrays out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np



@dataclass(frozen=True)
class Sample:
    """One value per replicate."""

    values: dict[int, float]

    def __len__(self):
        return len(self.values)

    def mean(self) -> float:
        """Mean over replicates (nan when empty): the number a figure or a detail reports."""
        return mean(list(self.values.values())) if self.values else math.nan


@dataclass(frozen=True)
class Spread:
    """A seed-to-seed standard deviation borrowed by single-replicate cells, with where it came from."""

    sd: float
    df: int
    sources: tuple[str, ...]  # in words, for the explanation: one per cell kind it came from

    @property
    def source(self) -> str:
        return " and ".join(self.sources)

    def scaled(self, factor: float) -> "Spread":
        """The spread of a combination of cells (a difference of two: sqrt(2) times), from the same source."""
        return replace(self, sd=self.sd * factor)

    def plus(self, other: "Spread") -> "Spread":
        """The spread of a difference of two single-replicate cells with these spreads: the root of the sum of
        squares, with the fewer degrees of freedom of the two (conservative)."""
        return Spread(math.sqrt(self.sd ** 2 + other.sd ** 2), min(self.df, other.df),
                      tuple(dict.fromkeys(self.sources + other.sources)))


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


UNIT = "over_chance"  # the claims' unit: % of the base's accuracy over chance (repro.results.over_chance)


def by_replicate(pairs, value: str = UNIT) -> Sample:
    """The mean effect ('over_chance', 'points' or 'relative') of each replicate, over its targets and layers."""
    groups: dict[int, list[float]] = {}
    for p in pairs:
        groups.setdefault(p.row.replicate, []).append(getattr(p, value))
    return Sample({r: mean(v) for r, v in sorted(groups.items())})


def slope_by_replicate(pairs, value: str = UNIT, minus=None) -> Sample:
    """Per replicate, the least-squares slope of the effect on n (mean over targets at each n first).

    `minus` (other pairs) subtracts, per replicate and n, their mean effect first: the slope of a difference.
    """
    def by_rn(ps):
        groups: dict[int, dict[int, list[float]]] = {}
        for p in ps:
            groups.setdefault(p.row.replicate, {}).setdefault(p.row.n, []).append(getattr(p, value))
        return {r: {n: mean(v) for n, v in by_n.items()} for r, by_n in groups.items()}

    pairs = list(pairs)
    ours = by_rn(pairs)
    if minus is not None:
        minus = list(minus)
        theirs = by_rn(minus)
        ours = {r: {n: v - theirs[r][n] for n, v in by_n.items() if n in theirs.get(r, {})}
                for r, by_n in ours.items()}
    slopes = {}
    for r, by_n in sorted(ours.items()):
        if len(by_n) >= 2:
            ns = np.array(sorted(by_n), dtype=float)
            ys = np.array([by_n[n] for n in sorted(by_n)])
            slopes[r] = float(np.polyfit(ns, ys, 1)[0]) if np.all(np.isfinite(ys)) else math.nan
    return Sample(slopes)


def difference(a: Sample, b: Sample) -> Sample:
    """a - b for the replicates both hold (paired by replicate)."""
    common = sorted(set(a.values) & set(b.values))
    return Sample({r: a.values[r] - b.values[r] for r in common})


KINDS = {"AnB": "frozen transfer", "BnB": "frozen transfer", "AnB+": "fine-tuned transfer",
         "BnB+": "fine-tuned transfer", "random": "random frozen"}  # treatments whose spreads are alike


def cell_spreads(cells: dict[str, Sample]) -> dict[str, tuple[float, int]]:
    """name -> (seed-to-seed standard deviation, replicates) of every cell with 2 or more finite values."""
    out = {}
    for name, sample in cells.items():
        x = np.array([v for v in sample.values.values() if math.isfinite(v)])
        if len(x) >= 2:
            out[name] = (float(np.std(x, ddof=1)), len(x))
    return out


def largest_spread(cells: dict[str, Sample], what: str = "cells") -> Spread | None:
    """The largest spread among the replicated cells, with that cell's degrees of freedom (None if none, or
    if every replicated cell has a spread of 0: nothing to borrow)."""
    spreads = {k: v for k, v in cell_spreads(cells).items() if v[0] > 1e-9}
    if not spreads:
        return None
    name, (sd, k) = max(spreads.items(), key=lambda kv: kv[1][0])
    low = min(v[0] for v in spreads.values())
    return Spread(sd, k - 1, (f"the largest of {len(spreads)} replicated {what} ({name}: sd {sd:.2f}, {k - 1} "
                              f"degree{'s' if k != 2 else ''} of freedom; the smallest {low:.2f})",))


def table_spread(table, treatment: str, value: str = UNIT) -> Spread | None:
    """The seed-to-seed spread of `value` a single-replicate cell of `treatment` borrows (module docstring): the
    largest among the table's replicated cells of the same kind of treatment, else of any kind."""
    cells: dict[str, dict[str, Sample]] = {}
    for other in KINDS:
        pairs = table.paired(other, ("random", "natman", "all"))[0]
        by_cell: dict[str, list] = {}
        for p in pairs:
            by_cell.setdefault(f"{other} n={p.row.n} ({_family(p.row.split)})", []).append(p)
        cells[other] = {name: by_replicate(ps, value) for name, ps in sorted(by_cell.items())}
    kind = KINDS.get(treatment, treatment)
    same = {name: s for other, found in cells.items() if KINDS[other] == kind for name, s in found.items()}
    spread = largest_spread(same, f"{kind} cells")
    if spread is None:
        spread = largest_spread({name: s for found in cells.values() for name, s in found.items()},
                                f"cells of any treatment (none of {kind} has replicates)")
    return spread


def _family(split: str) -> str:
    from repro.results import family

    return family(split)


def difference_by_n(a_pairs, b_pairs, ns, value: str = UNIT) -> Sample:
    """Per replicate, the mean over the n in `ns` that both hold in that replicate of (a at n - b at n), each
    the mean over its targets: a paired comparison of two treatments layer by layer."""
    def by_rn(ps):
        groups: dict[tuple[int, int], list[float]] = {}
        for p in ps:
            if p.row.n in ns:
                groups.setdefault((p.row.replicate, p.row.n), []).append(getattr(p, value))
        return {k: mean(v) for k, v in groups.items()}

    a_pairs, b_pairs = [p for p in a_pairs if p.row.n in ns], [p for p in b_pairs if p.row.n in ns]
    a, b = by_rn(a_pairs), by_rn(b_pairs)
    per: dict[int, list[float]] = {}
    for (r, n), v in sorted(a.items()):
        if (r, n) in b:
            per.setdefault(r, []).append(v - b[(r, n)])
    return Sample({r: mean(v) for r, v in sorted(per.items())})
