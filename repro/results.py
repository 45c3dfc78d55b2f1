"""The results table: one row per finished network, from our run store or from the original study.

Claims read only this table. Every treatment row can be paired with the base of its own target half
(same split, same replicate, same target) through `Table.base_of`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from repro.split import Split
from repro.errors import MissingFile, UserError


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
    return Split.parse(split, allow_all=True).family


def relative_to_base(top1: float | None, base_top1: float | None) -> float:
    """A network's top-1 relative to the base of its own target half, in % of the base's top-1 (0 = as good as
    its base): the one home of this number (claims, premises, figures). NaN when either accuracy is missing or
    not finite, or the base scores 0 (a diverged base may). Divergence itself is not decided here: the
    statistics apply the MLPerf rule to diverged networks (repro.stats.samples), the figures leave them out."""
    if top1 is None or base_top1 is None or not (math.isfinite(top1) and math.isfinite(base_top1)) or base_top1 <= 0:
        return math.nan
    return 100.0 * (top1 - base_top1) / base_top1


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
        """Difference in top-1 as a percentage of the base's top-1 (`relative_to_base`)."""
        return relative_to_base(self.row.top1, self.base.top1)

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


# ---------------------------------------------------------------------------------------------------------
# A per-network table from a file: a results.json written by the suite, or a CSV with the same columns

REQUIRED = ("split", "replicate", "treatment", "n", "target", "top1", "num_classes")
OPTIONAL = ("source", "final_top1", "diverged", "evidence", "key", "train_seconds", "cached")
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _parse_row(raw: dict, where: str, evidence: str) -> Row:
    """One network from a dict of column -> value (strings from a CSV, JSON values from results.json)."""
    from repro.runs import TREATMENTS

    def bad(column, what):
        return UserError(f"{where}, column {column!r}: {raw.get(column)!r} {what}")

    missing = [c for c in REQUIRED if raw.get(c) is None or str(raw.get(c)).strip() == ""]
    if missing:
        raise UserError(f"{where}: column {missing[0]!r} is missing or empty (required: {', '.join(REQUIRED)})")

    def integer(column, low=0):
        try:
            value = int(str(raw[column]).strip())
        except ValueError:
            raise bad(column, "is not a whole number") from None
        if value < low:
            raise bad(column, f"is below {low}")
        return value

    def number(column, low=0.0, high=1.0):
        try:
            value = float(str(raw[column]).strip())
        except ValueError:
            raise bad(column, "is not a number") from None
        if not (low <= value <= high):
            raise bad(column, f"is not between {low:g} and {high:g} (top-1 as a fraction, e.g. 0.62)")
        return value

    def flag(column):
        text = str(raw.get(column, "")).strip().lower()
        if text not in _TRUE + _FALSE:
            raise bad(column, "is not true or false")
        return text in _TRUE

    split = str(raw["split"]).strip()
    try:
        Split.parse(split, allow_all=True)
    except ValueError:
        raise bad("split", "is not 'random:<seed>', 'natman' or 'all'") from None
    treatment = str(raw["treatment"]).strip()
    if treatment not in TREATMENTS:
        raise bad("treatment", f"is not one of {', '.join(TREATMENTS)}")
    n = integer("n")
    if (n == 0) != (treatment == "base") or n > 7:
        raise bad("n", "must be 0 for a base and 1..7 for any other treatment")
    target = str(raw["target"]).strip()
    source = raw.get("source")
    source = None if source is None or str(source).strip() in ("", "None", "null") else str(source).strip()
    if source is None and treatment in ("BnB", "BnB+", "AnB", "AnB+") and target in ("A", "B"):
        source = target if treatment.startswith("B") else {"A": "B", "B": "A"}[target]
    top1 = number("top1")
    final = number("final_top1") if str(raw.get("final_top1") or "").strip() not in ("", "None") else top1
    seconds = raw.get("train_seconds")
    return Row(evidence=str(raw.get("evidence") or evidence), split=split, replicate=integer("replicate"),
               treatment=treatment, n=n, source=source, target=target, top1=top1, final_top1=final,
               diverged=flag("diverged"), num_classes=integer("num_classes", low=1),
               key=str(raw.get("key") or f"{split}/{target}/{treatment}/{n}/r{raw['replicate']}"),
               train_seconds=float(seconds) if str(seconds or "").strip() not in ("", "None") else 0.0,
               cached=flag("cached"))


def table_from_file(path) -> tuple[Table, dict]:
    """A results Table from a results.json written by the suite (its 'runs') or a CSV with the same columns
    (REQUIRED, and any of OPTIONAL); and the document's header (profile, dataset, session; {} for a CSV).

    A bad row raises one ValueError naming the file, the row and the column."""
    import csv
    import json
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise MissingFile(f"no results file at {path}: pass a results.json or a CSV of networks")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON ({e})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
            raise UserError(f"{path} has no 'runs' list: is it a results.json written by repro's report?")
        evidence = str(doc.get("profile") or path.stem)
        rows = [_parse_row(r if isinstance(r, dict) else {}, f"{path}: runs[{i}]", evidence)
                for i, r in enumerate(doc["runs"])]
        header = {k: doc.get(k) for k in ("profile", "dataset", "session")}
        curves = {str(k): [(int(i), float(v)) for i, v in points] for k, points in (doc.get("curves") or {}).items()}
    else:
        reader = csv.DictReader(text.splitlines())
        absent = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if absent:
            raise UserError(f"{path}: no column {absent[0]!r} in the header (required: {', '.join(REQUIRED)})")
        rows = [_parse_row(r, f"{path}: row {i} (line {i + 1})", path.stem) for i, r in enumerate(reader, 1)]
        header, curves = {}, {}
    if not rows:
        raise UserError(f"{path} holds no networks")
    return Table(rows, curves), header
