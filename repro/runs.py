"""Run specifications and the plan: which networks a set of claims needs, as a DAG.

A `RunSpec` names one network. Its key is a hash of its canonical JSON plus the key of the run it copies
from, so equal specs are the same run everywhere and a changed base changes every transfer built on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from repro import models
from repro.errors import UserError
from repro.profiles import Profile
from repro.settings import TrainingSettings
from repro.split_names import Split

TREATMENTS = ("base", "BnB", "BnB+", "AnB", "AnB+", "random", "base-2x")
# `base-2x`: the compute-matched base. A base of the target half trained twice the recipe's iterations: as many
# as a fine-tuned transfer has in total (its source base's and its own), so that claim 4 can ask whether its
# boost is transfer or only longer training (He, Girshick & Dollar 2019, "Rethinking ImageNet Pre-training").
BASES = ("base", "base-2x")  # trained from scratch, n = 0
COMPUTE_MATCHED = "base-2x"
FROZEN = {"BnB": True, "BnB+": False, "AnB": True, "AnB+": False, "random": True}
HALVES = ("A", "B")
SELFFERS = ("BnB", "BnB+")  # layers copied from the base of their own half
TRANSFERRED = SELFFERS + ("AnB", "AnB+")  # networks that start from layers copied from a base


def other_half(half: str) -> str:
    return {"A": "B", "B": "A"}[half]


def source_half(treatment: str, target: str) -> str | None:
    """The half whose base a network's layers are copied from (None for a base and the random control)."""
    if treatment not in TRANSFERRED:
        return None
    return target if treatment in SELFFERS else other_half(target)


def stable_seed(*parts) -> int:
    """A 31-bit seed from any JSON-able parts, the same on every machine and Python."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def training_config(profile: Profile, device: str | None = None) -> dict:
    """The run key's config of a profile's networks on `device`: its TrainingSettings, written whole."""
    return TrainingSettings.from_profile(profile, device).to_config()


@dataclass(frozen=True)
class RunSpec:
    """One network: which task (dataset, split, target half), which treatment, n, replicate, recipe."""

    split: str  # 'random:<seed>' or 'natman'
    target: str  # 'A' or 'B': the half the network is trained and evaluated on
    treatment: str  # one of TREATMENTS
    n: int  # layers 1..n transferred (0 for base)
    replicate: int  # seeds the initialisation (and, for random splits, nothing else: the split has its own)
    config: str  # canonical JSON of its TrainingSettings (repro.settings)

    def __post_init__(self):
        for name, kind in (("split", str), ("target", str), ("treatment", str), ("n", int), ("replicate", int),
                           ("config", str)):
            value = getattr(self, name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise TypeError(f"RunSpec {name} must be a {kind.__name__}, got {value!r}")
        if self.treatment not in TREATMENTS:
            raise UserError(f"unknown treatment {self.treatment!r}; choose one of {', '.join(TREATMENTS)}")
        if self.target not in HALVES:
            raise UserError(f"target half must be 'A' or 'B', got {self.target!r}")
        if self.treatment in BASES and self.n != 0:
            raise UserError(f"a base network transfers no layers: n must be 0, got {self.n}")
        if self.treatment not in BASES and not 1 <= self.n <= self.blocks:
            raise UserError(f"n must be in 1..{self.blocks} for {self.treatment}, got {self.n}")
        if self.replicate < 0:
            raise UserError(f"replicate must be >= 0, got {self.replicate}")
        Split.parse(self.split)

    @property
    def cfg(self) -> dict:
        return json.loads(self.config)

    @property
    def blocks(self) -> int:
        """How many blocks of its network can be copied (repro.models.blocks)."""
        return models.blocks_named(models.name_in(self.cfg["arch"]))

    @property
    def dataset(self) -> str:
        return self.cfg["dataset"]

    @property
    def frozen(self) -> bool:
        return FROZEN.get(self.treatment, False)

    @property
    def source(self) -> str | None:
        """The half whose base the layers come from (None for base and random)."""
        return source_half(self.treatment, self.target)

    @property
    def parent(self) -> "RunSpec | None":
        if self.source is None:
            return None
        return RunSpec(self.split, self.source, "base", 0, self.replicate, self.config)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["config"] = json.loads(self.config)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["config"] = canonical(d["config"])
        return cls(**d)

    @property
    def key(self) -> str:
        own = canonical(self.to_dict())
        parent = self.parent.key if self.parent else ""
        return hashlib.sha256((own + "|" + parent).encode()).hexdigest()[:20]

    @property
    def init_seed(self) -> int:
        """Seeds the fresh layers. The random control's frozen layers come from `random_source_seed`."""
        return stable_seed("init", self.split, self.target, self.treatment, self.n, self.replicate)

    @property
    def random_source_seed(self) -> int:
        """One random network per target and replicate: every n of the random control shares its layers."""
        return stable_seed("random-source", self.split, self.target, self.replicate)

    @property
    def data_seed(self) -> int:
        """Batch order and augmentation: shared by every network of one target and replicate."""
        return stable_seed("data", self.split, self.target, self.replicate)

    @property
    def label(self) -> str:
        return label(self.treatment, self.n, self.split, self.source, self.target, self.replicate)


def label(treatment: str, n: int, split: str, source: str | None, target: str, replicate: int) -> str:
    """A network in words: 'AnB n=3 random:0/A->B r0', 'base natman/A r0' (runs and results rows alike)."""
    if treatment in BASES:
        return f"{treatment} {split}/{target} r{replicate}"
    copied = f"{source}->" if source else ""
    return f"{treatment} n={n} {split}/{copied}{target} r{replicate}"


def identity(spec: RunSpec) -> str:
    """The run's key without its numerics (device, precision, ...): the same network of the same study trained
    in another precision or on another device has another key but the same identity (repro.replicates)."""
    own = spec.to_dict()
    own["config"].pop("numerics", None)
    parent = identity(spec.parent) if spec.parent else ""
    return hashlib.sha256((canonical(own) + "|" + parent).encode()).hexdigest()[:20]


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Need:
    """What a claim needs: a treatment on the random splits ('random') or the natural/man-made split."""

    family: str  # 'random' or 'natman'
    treatment: str

    def __post_init__(self):
        if self.family not in ("random", "natman"):
            raise ValueError(f"split family must be 'random' or 'natman', got {self.family!r}")
        if self.treatment not in TREATMENTS:
            raise ValueError(f"unknown treatment {self.treatment!r}")


def specs_for(profile: Profile, needs, device: str | None = None) -> list[RunSpec]:
    """Every RunSpec the needs call for at this profile, bases included, in dependency order.

    Random splits: transfers target half B (as the paper's Figure 2), bases of both halves (and, with
    `selffer_on_both_halves`, BnB n = 1 on half A too, for the converged-bases premise).
    Natural/man-made: transfers and the random control target both halves (natural->man-made and back).
    """
    def configs(profile: Profile) -> tuple[str, str]:
        """(the run key's config on random splits, on the natural/man-made split): a --natman file changes the
        natural/man-made halves, so the key of those runs (only), and is given only where a dataset has no
        labels of its own: every other study keeps its keys."""
        settings = TrainingSettings.from_profile(profile, device)
        config = canonical(settings.to_config())
        if not profile.natural_classes:
            return config, config
        return config, canonical(dataclasses.replace(settings, natural_classes=profile.natural_classes).to_config())

    config, natman_config = configs(profile)
    twice = configs(compute_matched(profile))  # the compute-matched base's recipe: twice the iterations
    specs: dict[str, RunSpec] = {}

    def add(spec: RunSpec):
        if spec.parent:
            add(spec.parent)
        specs.setdefault(spec.key, spec)

    for i in range(profile.replicates):
        r = profile.first_replicate + i
        for need in needs:
            if need.family == "random":
                if not profile.random_splits:
                    continue
                split, targets, config_of, twice_of = f"random:{r}", ("B",), config, twice[0]
                layers = {"BnB": profile.layers, "AnB": profile.layers, "BnB+": profile.finetune_layers,
                          "AnB+": profile.finetune_layers, "random": profile.random_layers}
            else:
                if not profile.natman or 0 < profile.natman_replicates <= i:
                    continue
                split, targets, config_of, twice_of = "natman", ("A", "B"), natman_config, twice[1]
                layers = {t: profile.natman_layers for t in TREATMENTS}
                layers.update({"BnB+": profile.finetune_layers, "AnB+": profile.finetune_layers})
            for half in HALVES:
                add(RunSpec(split, half, "base", 0, r, config_of))
            fine_tuned = need.treatment in ("BnB+", "AnB+", COMPUTE_MATCHED)
            if need.treatment == "base" or (fine_tuned and 0 < profile.finetune_replicates <= i):
                continue
            for target in targets:  # one compute-matched base per target of the fine-tuned transfers
                if need.treatment == COMPUTE_MATCHED:
                    add(RunSpec(split, target, COMPUTE_MATCHED, 0, r, twice_of))
                    continue
                for n in layers[need.treatment]:
                    add(RunSpec(split, target, need.treatment, n, r, config_of))
            if need.family == "random" and need.treatment == "BnB" and profile.selffer_on_both_halves \
                    and 1 in layers["BnB"]:
                add(RunSpec(split, "A", "BnB", 1, r, config_of))
    return order(specs.values())


def compute_matched(profile: Profile) -> Profile:
    """The profile whose recipe trains the compute-matched base (`base-2x`): twice the epochs, so as many
    iterations as a fine-tuned transfer has in total, its source base's and its own (every network of a
    profile trains by the same recipe)."""
    return dataclasses.replace(profile, recipe=dataclasses.replace(profile.recipe, epochs=2 * profile.recipe.epochs))


def order(specs) -> list[RunSpec]:
    """Dependencies first: bases, then transfers; stable within each level."""
    specs = list(specs)
    return sorted(specs, key=lambda s: (s.parent is not None, s.split, s.replicate, s.target,
                                        TREATMENTS.index(s.treatment), s.n))


def group_key(spec: RunSpec) -> tuple:
    """Runs with the same group key see the same batches and can be trained together."""
    return (spec.config, spec.split, spec.target, spec.replicate, spec.parent is not None)


def groups(specs, share: bool = True, slots: int = 1, replicate_first: bool = False) -> list[list[RunSpec]]:
    """Split specs into training groups: one per target and DAG level when sharing, else one per run.

    For more than one GPU (`slots`) the groups are split further, so that the plan keeps them all
    busy: one sub-group per frozen prefix (BnB 1-7, AnB 1-7, the random control: each shares its source's
    forward pass), and every other run (a base, a fine-tuned transfer) alone. A network learns the same
    numbers in any group (tests/test_train_golden.py), so splitting changes the time, never a result.

    Ordered for a pool of workers: longest critical path first (a group's own work plus the most work that
    waits on it), so the bases that unlock the big transfer groups go first and small groups fill in at the
    end instead of one big group finishing alone on an otherwise idle machine. `replicate_first`: the groups
    of a lower replicate before any of a higher one's (a study that banks each replicate as it finishes,
    repro.study.train_replicates: the next replicate's groups fill the workers its predecessor leaves idle).
    """
    if not share:
        grouped = [[s] for s in order(specs)]
    else:
        out: dict[tuple, list[RunSpec]] = {}
        for s in order(specs):
            out.setdefault(group_key(s) + ((sub_group(s),) if slots > 1 else ()), []).append(s)
        grouped = list(out.values())
    rank = critical_path(grouped)
    first = (lambda g: min(s.replicate for s in g)) if replicate_first else (lambda g: 0)
    return sorted(grouped, key=lambda g: (first(g), -rank[id(g)]))  # stable: dependency order among equals


def sub_group(spec: RunSpec) -> str:
    """Frozen runs with one source share a sub-group (the forward pass through their frozen layers is computed
    once for them all, as in repro.transfer.prefix_source_id); every other run is a sub-group of its own."""
    if spec.treatment == "random":
        return f"random:{spec.random_source_seed}"
    if spec.frozen:
        return f"prefix:{spec.parent.key}"
    return spec.key


def work(spec: RunSpec) -> float:
    """Rough training cost of a run per iteration, relative to a base: the share of its layers it trains
    (frozen layers are computed once per group and source, see repro.train)."""
    frozen = spec.n if spec.frozen else 0
    return (spec.blocks + 1 - frozen) / (spec.blocks + 1)


def critical_path(grouped: list[list[RunSpec]]) -> dict[int, float]:
    """For each group (by id): its work plus the largest critical path among the groups that need it."""
    owner = {s.key: id(g) for g in grouped for s in g}
    children: dict[int, set[int]] = {id(g): set() for g in grouped}
    for g in grouped:
        for s in g:
            if s.parent and s.parent.key in owner:
                children[owner[s.parent.key]].add(id(g))
    cost = {id(g): sum(work(s) for s in g) for g in grouped}
    rank: dict[int, float] = {}

    def path(i: int) -> float:
        if i not in rank:
            rank[i] = cost[i] + max((path(c) for c in children[i]), default=0.0)
        return rank[i]

    for g in grouped:
        path(id(g))
    return rank
