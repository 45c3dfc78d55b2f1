"""Replicate values: one number per independent replicate, from the paired networks of a results table.

Unit of replication. A replicate is one independent split ('random:<seed>') or initialisation. The networks
of one replicate (several n, both directions of one split) share their split and base networks, so they are
not independent: they are averaged into one value per replicate (`by_replicate`, `slope_by_replicate`) and
the tests run across replicates. On the original study this gives 4 replicates for the random splits and 1
for the natural/man-made split and for the random-feature control.

Effects are relative to the base network of the treatment's own target half, in percentage points
(100 * (top1 - base)) or in relative % (100 * (top1 - base) / base).

A cell with a single replicate has no spread of its own. The one rule for it (`Spread`, `table_spread`): it
borrows the seed-to-seed spread pooled over every cell of the same table that has two or more replicates
(a cell: one treatment, one split family, one n; its values: the replicates' relative effects), with the
pooled degrees of freedom. Used by every claim that meets such a cell (distance_penalty, random_features).

Divergence, after MLPerf (`resolve_divergence`): within one comparison, one diverged network counts as the
worst outcome, i.e. its replicate's value is replaced by the value among the other replicates that is least
favourable to the claim (the highest for a claimed drop, the lowest for a claimed gain, the farthest from zero
for an equivalence), so that a diverged run can never help a claim; two or more diverged networks make that
comparison inconclusive.

Everything here is a pure function: samples in, new samples or arrays out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from repro.format import signed


@dataclass(frozen=True)
class Sample:
    """One value per replicate, and the diverged networks behind each replicate's value."""

    values: dict[int, float]
    diverged: dict[int, frozenset] = field(default_factory=dict)  # replicate -> identities of diverged networks

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
    source: str  # in words, for the explanation

    def scaled(self, factor: float) -> "Spread":
        """The spread of a combination of cells (a difference of two: sqrt(2) times), from the same source."""
        return replace(self, sd=self.sd * factor)


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _identity(row) -> tuple:
    return (row.split, row.replicate, row.target, row.treatment, row.n)


def _diverged_by_replicate(pairs) -> dict[int, frozenset]:
    out: dict[int, set] = {}
    for p in pairs:
        for row in (p.row, p.base):
            if row.diverged:
                out.setdefault(p.row.replicate, set()).add(_identity(row))
    return {r: frozenset(s) for r, s in out.items()}


def by_replicate(pairs, value: str = "relative") -> Sample:
    """The mean effect ('relative' % or 'points') of each replicate, over its targets and layers."""
    pairs = list(pairs)
    groups: dict[int, list[float]] = {}
    for p in pairs:
        groups.setdefault(p.row.replicate, []).append(getattr(p, value))
    return Sample({r: mean(v) for r, v in sorted(groups.items())}, _diverged_by_replicate(pairs))


def slope_by_replicate(pairs, value: str = "relative", minus=None) -> Sample:
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
        pairs = pairs + minus
    slopes = {}
    for r, by_n in sorted(ours.items()):
        if len(by_n) >= 2:
            ns = np.array(sorted(by_n), dtype=float)
            ys = np.array([by_n[n] for n in sorted(by_n)])
            slopes[r] = float(np.polyfit(ns, ys, 1)[0]) if np.all(np.isfinite(ys)) else math.nan
    return Sample(slopes, {r: s for r, s in _diverged_by_replicate(pairs).items() if r in slopes})


def difference(a: Sample, b: Sample) -> Sample:
    """a - b for the replicates both hold (paired by replicate)."""
    common = sorted(set(a.values) & set(b.values))
    diverged = {r: a.diverged.get(r, frozenset()) | b.diverged.get(r, frozenset()) for r in common}
    return Sample({r: a.values[r] - b.values[r] for r in common}, {r: s for r, s in diverged.items() if s})


def pooled_spread(cells: dict[str, Sample]) -> Spread | None:
    """The within-cell standard deviation pooled over the cells with 2 or more finite values (None if none)."""
    squares, df, used = 0.0, 0, []
    for name, sample in cells.items():
        x = np.array([v for v in sample.values.values() if math.isfinite(v)])
        if len(x) >= 2:
            squares += float(np.sum((x - x.mean()) ** 2))
            df += len(x) - 1
            used.append(name)
    if df == 0:
        return None
    return Spread(math.sqrt(squares / df), df, f"pooled over {len(used)} replicated cells of this table "
                                                f"({', '.join(used[:3])}{', ...' if len(used) > 3 else ''}; "
                                                f"{df} degrees of freedom)")


def table_spread(table) -> Spread | None:
    """The seed-to-seed spread of a replicate's relative effect, pooled over every (treatment, split family,
    n) cell of the table that holds 2 or more replicates: what a single-replicate cell borrows."""
    from repro.results import Paired, family

    bases = {r.pair_key: r for r in table.rows if r.treatment == "base"}
    cells: dict[str, list] = {}
    for r in table.rows:
        if r.treatment != "base" and r.pair_key in bases and not r.diverged and not bases[r.pair_key].diverged:
            cells.setdefault(f"{r.treatment} {family(r.split)} n={r.n}", []).append(Paired(r, bases[r.pair_key]))
    return pooled_spread({name: by_replicate(pairs) for name, pairs in sorted(cells.items())})


def _worst(values: list[float], direction: str) -> float:
    """The value least favourable to a claim of this direction."""
    if direction == "less":
        return max(values)
    if direction == "greater":
        return min(values)
    return max(values, key=abs)


def resolve_divergence(sample: Sample, direction: str) -> tuple[np.ndarray, str, str]:
    """The replicate values after the divergence rule: (values, note for the explanation, problem or '')."""
    diverged = set().union(*sample.diverged.values()) if sample.diverged else set()
    values = dict(sample.values)
    if not diverged:
        return np.array(list(values.values()), dtype=float), "", ""
    if len(diverged) >= 2:
        return np.array([]), "", (f"{len(diverged)} diverged networks in this comparison, and more than one "
                                  f"invalidates it (MLPerf rule)")
    (replicate,) = [r for r, s in sample.diverged.items() if s]
    others = [v for r, v in values.items() if r != replicate and math.isfinite(v)]
    if not others:
        return np.array([]), "", "its only replicate holds a diverged network"
    values[replicate] = _worst(others, direction)
    note = (f"one diverged network (replicate {replicate}) counted as the worst of the other replicates "
            f"({signed(values[replicate])})")
    return np.array(list(values.values()), dtype=float), note, ""


def difference_by_n(a_pairs, b_pairs, ns, value: str = "relative") -> Sample:
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
    diverged = _diverged_by_replicate(a_pairs + b_pairs)
    return Sample({r: mean(v) for r, v in sorted(per.items())}, {r: s for r, s in diverged.items() if r in per})
