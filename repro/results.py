"""The results table: one row per finished network, from our run store or from the original study.

Claims read only this table. Every treatment row can be paired with the base of its own target half
(same split, same replicate, same target) through `Table.base_of`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    evidence: str  # 'original' or the profile name of our runs ('smoke', 'cpu', ...)
    split: str  # 'random:<seed>', 'natman', or 'all' (the original 1000-class random-feature control)
    replicate: int  # our replicate, or the original split seed (0..3; 0 for natman and 'all')
    treatment: str  # base, BnB, BnB+, AnB, AnB+, random
    n: int  # 0 for base
    source: str | None  # half the copied layers come from (None for base and random)
    target: str  # half trained and evaluated on: 'A', 'B' (or 'all')
    top1: float  # the paper's metric: mean of the k highest validation tests
    final_top1: float
    diverged: bool = False
    num_classes: int = 0
    key: str = ""  # run-store key ('' for the original study)
    train_seconds: float = 0.0
    cached: bool = False

    @property
    def pair_key(self) -> tuple:
        return (self.split, self.replicate, self.target)


@dataclass
class Table:
    rows: list[Row]
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # key or name -> [(iteration, top1)]

    def __len__(self):
        return len(self.rows)

    def select(self, **where) -> list[Row]:
        return [r for r in self.rows if all(getattr(r, k) == v for k, v in where.items())]

    def base_of(self, row: Row) -> Row | None:
        for r in self.rows:
            if r.treatment == "base" and r.pair_key == row.pair_key:
                return r
        return None

    def paired(self, treatment: str, families: tuple[str, ...] | str) -> tuple[list[Paired], list[Row]]:
        """Every network of a treatment on splits of these families beside the base of its own target half.

        Returns (pairs, unpaired): rows whose base is missing from the table (unfinished) cannot be compared.
        """
        families = (families,) if isinstance(families, str) else tuple(families)
        bases = {r.pair_key: r for r in self.rows if r.treatment == "base"}
        pairs, unpaired = [], []
        for r in self.rows:
            if r.treatment == treatment and family(r.split) in families:
                if r.pair_key in bases:
                    pairs.append(Paired(r, bases[r.pair_key]))
                else:
                    unpaired.append(r)
        return pairs, unpaired

    def layers(self, treatment: str, families: tuple[str, ...] | str) -> list[int]:
        """The n at which this table holds networks of a treatment on these split families."""
        families = (families,) if isinstance(families, str) else tuple(families)
        return sorted({r.n for r in self.rows if r.treatment == treatment and family(r.split) in families})

    def layer_set(self) -> frozenset:
        """(treatment, split family, n) of every non-base network: which layers this table can test."""
        return frozenset((r.treatment, family(r.split), r.n) for r in self.rows if r.treatment != "base")

    @property
    def evidence(self) -> str:
        """The evidence sources of the rows ('original', a profile name), comma-separated."""
        return ", ".join(sorted({r.evidence for r in self.rows}))


def family(split: str) -> str:
    """'random' for the random A/B splits ('random:<seed>'); otherwise the split itself ('natman', 'all')."""
    return "random" if split.startswith("random:") else split


@dataclass(frozen=True)
class Paired:
    """A treatment network beside the base network of its own target half (same split, replicate, target)."""

    row: Row
    base: Row

    @property
    def points(self) -> float:
        """Difference in top-1, in percentage points."""
        return 100.0 * (self.row.top1 - self.base.top1)

    @property
    def relative(self) -> float:
        """Difference in top-1 as a percentage of the base's top-1."""
        if not self.base.top1:  # a diverged base may score 0
            return math.nan
        return 100.0 * (self.row.top1 - self.base.top1) / self.base.top1

    @property
    def diverged(self) -> bool:
        return self.row.diverged or self.base.diverged


def table_from_store(store, specs, evidence: str, trained: set[str] | None = None) -> Table:
    """Our finished runs as a Table (unfinished specs are left out; the report lists what is missing)."""
    rows, curves = [], {}
    for spec in specs:
        m = store.result(spec)
        if m is None:
            continue
        rows.append(Row(evidence=evidence, split=spec.split, replicate=spec.replicate, treatment=spec.treatment,
                        n=spec.n, source=spec.source, target=spec.target, top1=m["top1"],
                        final_top1=m["final_top1"], diverged=m["diverged"], num_classes=m["num_classes"],
                        key=spec.key, train_seconds=m["train_seconds"],
                        cached=spec.key not in (trained or set())))
        curves[spec.key] = [tuple(c) for c in m["curve"]]
    return Table(rows, curves)
