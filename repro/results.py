"""The results table: one row per finished network, from our run store or from the original study.

Claims read only this table. Every treatment row can be paired with the base of its own target half
(same split, same replicate, same target) through `Table.base_of`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from dataclasses import replace

from repro import budget, models
from repro.budget import Trained, recipe_from_config, train_images_per_class
from repro.errors import MissingFile, UserError
from repro.profiles import MAX_LAYER
from repro.runs import BASES, COMPUTE_MATCHED, HALVES, label, source_half
from repro.split_names import Split


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
    # what the network trained (repro.budget.Trained); None: not recorded
    iterations: int | None = None
    examples_seen: int | None = None
    epochs: float | None = None
    final_lr: float | None = None

    @property
    def pair_key(self) -> tuple:
        return (self.split, self.replicate, self.target)

    @property
    def trained(self) -> Trained:
        return Trained(self.iterations, self.examples_seen, self.epochs, self.final_lr)

    @property
    def label(self) -> str:
        """The network in words, as its run's label."""
        return label(self.treatment, self.n, self.split, self.source, self.target, self.replicate)


@dataclass
class Table:
    rows: list[Row]
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # key or name -> [(iteration, top1)]
    training_record: str = ""  # where the rows' record of what they trained comes from, when not from them
    blocks: int = MAX_LAYER  # how many blocks its networks can copy (repro.models.blocks): the paper's 7 layers

    @property
    def depth(self) -> models.Depth:
        """The positions the claims name (early, middle, top), for this table's networks."""
        return models.Depth(self.blocks)

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
    not finite, or the base scores 0 (a diverged base may). The premises' unit; the claims' is `over_chance`.
    Divergence is not decided here: the claims set diverged networks aside (`without_failures`), the figures
    leave them out."""
    if top1 is None or base_top1 is None or not (math.isfinite(top1) and math.isfinite(base_top1)) or base_top1 <= 0:
        return math.nan
    return 100.0 * (top1 - base_top1) / base_top1


OVER_CHANCE = "% of base over chance"  # the unit of `over_chance`, the claims' unit


def over_chance(top1: float | None, base_top1: float | None, num_classes: int) -> float:
    """A network's top-1 against the base of its own target half, in % of the base's accuracy over chance
    (100 * (top1 - base) / (base - chance), chance = 1 / num_classes): 0 = as good as its base, -100 = at
    chance. The claims' unit, the one home of this number: it carries across class counts, where the
    relative loss of a network at chance is -99.9% on 1,000 classes and -95% on 100 classes with a base
    at 20%. NaN when an accuracy is missing, the number of classes unknown, or the base not above chance."""
    if top1 is None or base_top1 is None or not (math.isfinite(top1) and math.isfinite(base_top1)) \
            or num_classes <= 0 or base_top1 <= 1 / num_classes:
        return math.nan
    return 100.0 * (top1 - base_top1) / (base_top1 - 1 / num_classes)


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
    def over_chance(self) -> float:
        """Difference in top-1 in % of the base's accuracy over chance (`over_chance`)."""
        return over_chance(self.row.top1, self.base.top1, self.base.num_classes)

    @property
    def diverged(self) -> bool:
        return self.row.diverged or self.base.diverged


@dataclass(frozen=True)
class Lost:
    """A network a claim cannot use: diverged, or built from (or compared with) a base that diverged."""

    row: Row
    why: str

    def to_dict(self) -> dict:
        return {"network": self.row.label, "key": self.row.key, "why": self.why}


def without_failures(table: Table) -> tuple[Table, list[Lost]]:
    """The table without its failed networks, and what was removed. A diverged network (it stopped at a loss
    above the profile's threshold, or not finite, and scores chance) removes itself; a diverged base also
    removes every network of its replicate that was built from it (its layers copied: BnB, BnB+ of its half,
    AnB, AnB+ of the other) or compared with it (every network targeting its half, which is measured against
    it). Nothing else: the claims judge what is left, and each lists what it lost
    (repro.claims.evaluate)."""
    failed = {(r.split, r.replicate, r.target): r for r in table.rows if r.diverged and r.treatment == "base"}
    kept, lost = [], []
    for r in table.rows:
        if r.diverged:
            lost.append(Lost(r, "diverged"))
            continue
        source = failed.get((r.split, r.replicate, r.source)) if r.source else None
        target = failed.get(r.pair_key) if r.treatment != "base" else None
        if source is not None:
            lost.append(Lost(r, f"built from the diverged {source.label}"))
        elif target is not None:
            lost.append(Lost(r, f"measured against the diverged {target.label}"))
        else:
            kept.append(r)
    return Table(kept, dict(table.curves), table.training_record, table.blocks), lost


def trained_record(recipe, iterations: int, num_train: int | None) -> dict:
    """The Row fields of what a network trained (repro.budget.trained), as keyword arguments."""
    record = budget.trained(recipe, iterations, num_train)
    return {"iterations": record.iterations, "examples_seen": record.examples_seen, "epochs": record.epochs,
            "final_lr": record.final_lr}


def table_from_store(store, specs, evidence: str, trained: set[str] | None = None) -> Table:
    """Our finished runs as a Table (unfinished specs are left out; the report lists what is missing)."""
    rows, curves = [], {}
    for spec in specs:
        m = store.result(spec)
        if m is None:
            continue
        record = trained_record(recipe_from_config(spec.cfg["recipe"]), m["iterations"], m.get("num_train"))
        rows.append(Row(evidence=evidence, split=spec.split, replicate=spec.replicate, treatment=spec.treatment,
                        n=spec.n, source=spec.source, target=spec.target, top1=m["top1"],
                        final_top1=m["final_top1"], diverged=m["diverged"], num_classes=m["num_classes"],
                        key=spec.key, train_seconds=m["train_seconds"],
                        cached=spec.key not in (trained or set()), **record))
        curves[spec.key] = [tuple(c) for c in m["curve"]]
    return Table(rows, curves, blocks=max((s.blocks for s in specs), default=MAX_LAYER))


# ---------------------------------------------------------------------------------------------------------
# A per-network table from a file: a results.json written by the suite, or a CSV with the same columns

REQUIRED = ("split", "replicate", "treatment", "n", "target", "top1", "num_classes")
TRAINING = ("iterations", "examples_seen", "epochs", "final_lr")  # what a network trained (repro.budget)
OPTIONAL = ("source", "final_top1", "diverged", "evidence", "key", "train_seconds", "cached", "arch") + TRAINING
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _parse_row(raw: dict, where: str, evidence: str, blocks: int = MAX_LAYER) -> Row:
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
    if (n == 0) != (treatment in BASES) or n > blocks:
        raise bad("n", f"must be 0 for a base ({', '.join(BASES)}) and 1..{blocks} for any other treatment")
    target = str(raw["target"]).strip()
    source = raw.get("source")
    source = None if source is None or str(source).strip() in ("", "None", "null") else str(source).strip()
    if source is None and target in HALVES:
        source = source_half(treatment, target)
    top1 = number("top1")
    final = number("final_top1") if str(raw.get("final_top1") or "").strip() not in ("", "None") else top1
    seconds = raw.get("train_seconds")

    def given(column) -> bool:
        return str(raw.get(column) if raw.get(column) is not None else "").strip() not in ("", "None", "null")

    def positive(column, kind):
        if not given(column):
            return None
        try:
            value = kind(float(str(raw[column]).strip()))
        except ValueError:
            raise bad(column, "is not a number") from None
        if value < 0:
            raise bad(column, "is below 0")
        return value

    return Row(evidence=str(raw.get("evidence") or evidence), split=split, replicate=integer("replicate"),
               treatment=treatment, n=n, source=source, target=target, top1=top1, final_top1=final,
               diverged=flag("diverged"), num_classes=integer("num_classes", low=1),
               key=str(raw.get("key") or f"{split}/{target}/{treatment}/{n}/r{raw['replicate']}"),
               train_seconds=float(seconds) if str(seconds or "").strip() not in ("", "None") else 0.0,
               cached=flag("cached"), iterations=positive("iterations", int),
               examples_seen=positive("examples_seen", int), epochs=positive("epochs", float),
               final_lr=positive("final_lr", float))


def derived_training(rows: list[Row], profile: dict | None) -> tuple[list[Row], str]:
    """Rows that do not record what they trained, given the record their study's profile implies (a
    results.json written before networks recorded it: its session['profile'] has the recipe and the dataset),
    and a note saying so ('' when nothing was derived). Every network of such a study trained by its profile's
    recipe; the record of a network that stopped early is not recoverable this way."""
    recipe, per_class = (profile or {}).get("recipe"), train_images_per_class(profile or {})
    if not recipe or per_class is None or all(r.iterations is not None for r in rows):
        return rows, ""
    base, twice = recipe_from_config(recipe), recipe_from_config({**recipe, "epochs": 2 * recipe["epochs"]})
    out = []
    for r in rows:
        if r.iterations is None and r.num_classes:
            chosen = twice if r.treatment == COMPUTE_MATCHED else base
            num_train = int(r.num_classes * per_class)
            r = replace(r, **trained_record(chosen, budget.iterations(chosen, num_train)[1], num_train))
        out.append(r)
    return out, "derived from the study's recipe (its networks did not record what they trained)"


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
        header = {k: doc.get(k) for k in ("profile", "dataset", "session")}
        session = header["session"] if isinstance(header["session"], dict) else {}
        blocks = copyable_blocks(models.name_in((session.get("profile") or {}).get("arch")), path)
        rows = [_parse_row(r if isinstance(r, dict) else {}, f"{path}: runs[{i}]", evidence, blocks)
                for i, r in enumerate(doc["runs"])]
        rows, derived = derived_training(rows, session.get("profile"))
        derived = derived or str(doc.get("training_record") or "")  # derived when it was first judged
        curves = {str(k): [(int(i), float(v)) for i, v in points] for k, points in (doc.get("curves") or {}).items()}
    else:
        reader = csv.DictReader(text.splitlines())
        absent = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if absent:
            raise UserError(f"{path}: no column {absent[0]!r} in the header (required: {', '.join(REQUIRED)})")
        raw = list(reader)
        blocks = csv_blocks(raw, path)
        rows = [_parse_row(r, f"{path}: row {i} (line {i + 1})", path.stem, blocks) for i, r in enumerate(raw, 1)]
        header, curves, derived = {}, {}, ""
    if not rows:
        raise UserError(f"{path} holds no networks")
    return Table(rows, curves, derived, blocks), header


def csv_blocks(raw: list[dict], path) -> int:
    """How many blocks a CSV's networks can copy: its `arch` column's architecture (one for every row), or the
    paper's network where the column is absent or empty."""
    names = {(r.get("arch") or "").strip() for r in raw} - {""}
    if len(names) > 1:
        raise UserError(f"{path}: column 'arch' names {len(names)} architectures ({', '.join(sorted(names))}): "
                        f"judge each architecture's networks from a file of their own")
    return copyable_blocks(names.pop() if names else models.DEFAULT, path)


def copyable_blocks(name: str, where) -> int:
    """How many blocks the networks of architecture `name` can copy, named by the file `where` (a results.json's
    profile without an arch, as every study before architectures had names, is the paper's network)."""
    try:
        return models.blocks_named(name)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
