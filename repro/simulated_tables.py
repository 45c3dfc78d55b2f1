"""Simulated results tables shaped like ours, to calibrate the claims' tests; the confounds a skeptical reader
would build; and the label shuffles and swaps of the negative controls.

A simulated table has what a profile with every layer trains: R replicates; per replicate a random split
'random:r' (bases A and B, every transfer targeting B) and the natural/man-made split (bases A and B, AnB and
the random control targeting both halves). A 'truth' gives the mean effect of each treatment at each n, in %
of the base of its target half's accuracy over chance (the claims' unit, repro.results.over_chance). A
`Shape` gives the bases' accuracies and the halves' class counts: `ORIGINAL_BASES` the original's bases on
Tiny ImageNet's class counts, `FEW_CLASSES` 20-class halves whose chance (5%) is a seventh of their bases'
35%. Each replicate draws its bases around the shape's accuracies with BASE_NOISE; each network (bases
included) then gets NOISE on top, the spread of the original's base networks (sd 0.5 points). A treatment is
drawn from its replicate's true base, so its measured effect shares the noise of the measured base, as in a
real study. Every network records what it trained (ITERATIONS; the compute-matched base twice as many).

Calibration (tests/test_calibration.py): under truths at which a claim is false (`null_truths`), the fraction
of simulated studies in which it comes out `reproduced` must stay at or below the test's alpha; under the
original study's own effects (`paper_truth`) and half of them (`scaled`), `not_reproduced` must stay at or
below alpha at 3, 5 and 8 replicates; with every transferred network shifted up by x% of its base
(`shifted`: what undertrained bases do), the claims that rest on converged bases must come out
premise_not_met; and the confounds (`trained_short`, `weaker_bases_equal_points`, `control_at_chance`,
`diverge_base`) must make no claim reproduced.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from repro.results import Row, Table, family
from repro.runs import COMPUTE_MATCHED, SELFFERS, TRANSFERRED, source_half
from repro.stats import MARGIN

NOISE = 0.5  # points of top-1, per network
BASE_NOISE = 0.5  # points of top-1, per replicate and half (which classes, which initialisation)
TARGETS = {"random": ("B",), "natman": ("A", "B")}
REPLICATES = (3, 5, 8)
ITERATIONS = 1000  # what every simulated network trained (the compute-matched base: twice as many)
BATCH = 128


@dataclass(frozen=True)
class Shape:
    """The bases' accuracies and the halves' class counts of a simulated study, per split family and half."""

    base_top1: dict
    num_classes: dict


ORIGINAL_BASES = Shape(base_top1={"random": {"A": 0.625, "B": 0.625}, "natman": {"A": 0.6534, "B": 0.5372}},
                       num_classes={"random": {"A": 100, "B": 100}, "natman": {"A": 72, "B": 128}})
FEW_CLASSES = Shape(base_top1={"random": {"A": 0.35, "B": 0.35}, "natman": {"A": 0.37, "B": 0.33}},
                    num_classes={"random": {"A": 20, "B": 20}, "natman": {"A": 16, "B": 24}})

Truth = dict[tuple[str, str], dict[int, float]]  # (split family, treatment) -> {n: mean effect, % over chance}


@functools.lru_cache(maxsize=1)
def _paper_truth() -> tuple:
    from repro.paper import original_table

    table = original_table()
    truth: dict = {}
    for treatment, families, as_family in (("BnB", "random", "random"), ("AnB", "random", "random"),
                                           ("BnB+", "random", "random"), ("AnB+", "random", "random"),
                                           ("AnB", "natman", "natman"), ("random", "all", "natman")):
        pairs, _ = table.paired(treatment, families)
        truth[(as_family, treatment)] = {n: float(np.mean([p.over_chance for p in pairs if p.row.n == n]))
                                         for n in sorted({p.row.n for p in pairs})}
    # The per-n means pair AnB+ and BnB+ of different splits (AnB+ mostly on split 0, BnB+ on 0 and 1), so
    # their mean difference (+0.01%) is not the original's paired estimate of AnB+ over BnB+ (+0.10%); BnB+ is
    # shifted so that the truth holds the effect claim 4's second part measured on the original.
    from repro.claims import finetune_boost

    over = finetune_boost.measure(table, {})[0].part(finetune_boost.OVER).effect
    plus, selfer = truth[("random", "AnB+")], truth[("random", "BnB+")]
    gap = float(np.mean([plus[n] - selfer[n] for n in plus if n in selfer])) - over
    truth[("random", "BnB+")] = {n: v + gap for n, v in selfer.items()}
    # the original trained no compute-matched base; converged bases gain nothing from twice the training
    truth[("random", COMPUTE_MATCHED)] = {0: 0.0}
    return tuple((k, tuple(v.items())) for k, v in truth.items())


def paper_truth() -> Truth:
    """The original study's mean effect per treatment and n (% of own base over chance), BnB+ shifted by
    0.09% so that AnB+ over BnB+ is the original's paired estimate; a compute-matched base as good as the
    base. The random control, trained on 1000 classes in the original, stands in for ours on the
    natural/man-made halves."""
    return {k: dict(v) for k, v in _paper_truth()}


TABLE_1 = {"AnB+": 1.6, "BnB+": 1.6 - 1.4}  # the paper's Table 1, n = 1..7: points over the mean base (.6251)


def table1_truth() -> Truth:
    """The original's effects with claim 4's networks as the paper's Table 1 states them (AnB+ +1.6 points
    over base, 1.4 over BnB+, at every n, in % of the mean base's accuracy over chance on 500 classes): the
    claim as the paper makes it, where the original's paired networks show no lingering transfer."""
    over_chance = 100 * (0.6251 - 1 / 500)
    truth = paper_truth()
    for treatment, points in TABLE_1.items():
        truth[("random", treatment)] = {n: 100 * points / over_chance for n in truth[("random", treatment)]}
    return truth


def scaled(truth: Truth, factor: float) -> Truth:
    """Every effect times `factor` (0.5: a real effect in the claimed direction at half the original's size)."""
    return {k: {n: factor * v for n, v in by_n.items()} for k, by_n in truth.items()}


def null_truth() -> Truth:
    """No effect anywhere: every treatment at every n as good as its base."""
    return scaled(paper_truth(), 0.0)


def _with(truth: Truth, key: tuple[str, str], values: dict[int, float]) -> Truth:
    out = {k: dict(v) for k, v in truth.items()}
    out[key] = {**out[key], **values}
    return out


def shifted(truth: Truth, percent: float) -> Truth:
    """Every transferred network `percent` % of its base higher (undertrained bases: the extra training a
    transfer gets shows up as a gain); the random-feature control and the bases unchanged."""
    return {k: {n: v + percent if k[1] in TRANSFERRED else v for n, v in by_n.items()} for k, by_n in truth.items()}


def no_repair(truth: Truth) -> Truth:
    """BnB+ exactly as BnB at every n: fine-tuning repairs nothing."""
    return _with(truth, ("random", "BnB+"), truth[("random", "BnB")])


def no_lingering_transfer(truth: Truth) -> Truth:
    """AnB+ exactly as BnB+ at every n: whatever AnB+ gains, the selffer with the same training gains too."""
    return _with(truth, ("random", "AnB+"), truth[("random", "BnB+")])


def null_truths() -> dict[str, dict[str, Truth]]:
    """Per claim, truths at which the claim is false, each at the boundary of one part with the other parts
    as in the original (the least favourable case for a test of all parts); and no effect at all."""
    paper, none = paper_truth(), null_truth()
    bnb = paper[("random", "BnB")]
    dip = float(np.mean([bnb[n] for n in (3, 4, 5)]))
    anb = paper[("random", "AnB")]
    natman_anb = paper[("natman", "AnB")]
    return {
        "early_layer_generality": {
            "no effect anywhere": none,
            f"AnB n=1 at -{MARGIN:g}% of BnB (the margin)": _with(paper, ("random", "AnB"), {1: bnb[1] - MARGIN}),
            "AnB at n=7 as good as BnB": _with(paper, ("random", "AnB"), {7: bnb[7]}),
        },
        "coadaptation_dip": {
            "no effect anywhere": none,
            "no recovery: BnB at n=6, 7 as at n=3..5": _with(paper, ("random", "BnB"), {6: dip, 7: dip}),
            "no repair: BnB+ as BnB": no_repair(paper),
        },
        "distance_penalty": {
            "no effect anywhere": none,
            "natural/man-made drops as on random splits": _with(paper, ("natman", "AnB"), paper[("random", "AnB")]),
        },
        "finetune_boost": {
            "no effect anywhere": none,
            "no lingering transfer: AnB+ as BnB+": no_lingering_transfer(paper),
        },
        "random_features": {
            "no effect anywhere": none,
            "random frozen as good as AnB at every n": _with(paper, ("natman", "random"), natman_anb),
            "random frozen as good as AnB at n=1": _with(paper, ("natman", "random"), {1: natman_anb[1]}),
            "random frozen as good as its base at n=3": _with(paper, ("natman", "random"), {3: 0.0}),
        },
    }


def simulate_table(truth: Truth, replicates: int, rng: np.random.Generator, *, noise: float = NOISE,
                   base_noise: float = BASE_NOISE, treatments: set[str] | None = None,
                   natman_replicates: int | None = None, finetune_replicates: int | None = None,
                   noise_scale: dict | None = None, shape: Shape = ORIGINAL_BASES, blocks: int = 7) -> Table:
    """A Table like one of our studies' (evidence 'simulated') from a truth; `treatments` keeps only those.

    `natman_replicates`: the natural/man-made split (and its random control) in only the first that many
    replicates (the original: 1), so that its cells borrow a spread; `finetune_replicates`: the fine-tuned
    treatments and the compute-matched base in only the first that many. `noise_scale`: (split family,
    treatment) -> a factor on the per-network noise of those networks (heterogeneous noise: a cell that
    borrows may be noisier than the cells it borrows from). `shape`: the bases and class counts. `blocks`: of the
    networks (repro.models.Depth: where the claims look)."""
    rows = []
    scale = noise_scale or {}
    for r in range(replicates):
        for fam in ("random", "natman"):
            if fam == "natman" and natman_replicates is not None and r >= natman_replicates:
                continue
            split = f"random:{r}" if fam == "random" else "natman"
            classes = shape.num_classes[fam]
            true_base = {h: shape.base_top1[fam][h] + rng.normal(0, base_noise / 100) for h in "AB"}
            for h in "AB":
                rows.append(_row(split, r, "base", 0, None, h, true_base[h] + rng.normal(0, noise / 100),
                                 classes[h]))
            for (truth_family, treatment), by_n in truth.items():
                if truth_family != fam or (treatments is not None and treatment not in treatments):
                    continue
                if treatment in ("BnB+", "AnB+", COMPUTE_MATCHED) and finetune_replicates is not None \
                        and r >= finetune_replicates:
                    continue
                for target in TARGETS[fam]:
                    source = source_half(treatment, target)
                    chance = 1 / classes[target]
                    for n, effect in by_n.items():
                        spread = noise * scale.get((fam, treatment), 1.0)
                        top1 = chance + (true_base[target] - chance) * (1 + effect / 100) + rng.normal(0, spread / 100)
                        rows.append(_row(split, r, treatment, n, source, target, top1, classes[target]))
    return Table(rows, blocks=blocks)


def _row(split, replicate, treatment, n, source, target, top1, num_classes) -> Row:
    top1 = min(max(float(top1), 1e-4), 1.0)  # a top-1 accuracy, never exactly 0
    iterations = ITERATIONS * (2 if treatment == COMPUTE_MATCHED else 1)
    return Row(evidence="simulated", split=split, replicate=replicate, treatment=treatment, n=n, source=source,
               target=target, top1=top1, final_top1=top1, num_classes=num_classes,
               key=f"{split}/{target}/{treatment}/{n}/r{replicate}", iterations=iterations,
               examples_seen=iterations * BATCH, final_lr=0.0)


def _needs(claim) -> set[str]:
    return {need.treatment for need in claim.NEEDS}


def diverge_one(table: Table, rng: np.random.Generator, treatments: tuple[str, ...]) -> Table:
    """One network of these treatments, drawn at random, marked diverged and scored at chance (as a diverged
    run reports): the claims must judge without it."""
    candidates = [i for i, r in enumerate(table.rows) if r.treatment in treatments]
    if not candidates:
        return table
    i = candidates[int(rng.integers(len(candidates)))]
    rows = list(table.rows)
    chance = 1 / rows[i].num_classes
    rows[i] = replace(rows[i], diverged=True, top1=chance, final_top1=chance)
    return Table(rows, dict(table.curves))


# ---------------------------------------------------------------------------------------------------------
# Confounds: tables in which a claim's effect is made by something else. No claim may come out reproduced.


def trained_short(table: Table, treatment: str, ns: tuple[int, ...], factor: float = 0.5) -> Table:
    """The networks of `treatment` at these n recorded as trained `factor` as long as their bases (a crash, a
    wrong schedule): whatever they lose, their shorter training may have made."""
    rows = [replace(r, iterations=int(r.iterations * factor), examples_seen=int(r.examples_seen * factor))
            if r.treatment == treatment and r.n in ns and r.iterations is not None else r for r in table.rows]
    return Table(rows, dict(table.curves), table.training_record)


def weaker_bases_equal_points(table: Table, points: float) -> Table:
    """The natural/man-made bases and their AnB transfers `points` percentage points lower: the bases are less
    accurate, and the transfers lose exactly the points they lost before against them, so a loss that was
    equal in points to the random splits' becomes a larger share of the weaker bases (the random control,
    near chance beyond n = 2, is left as it was)."""
    rows = [replace(r, top1=r.top1 - points / 100, final_top1=r.final_top1 - points / 100)
            if r.split == "natman" and r.treatment in ("base", "AnB") else r for r in table.rows]
    return Table(rows, dict(table.curves), table.training_record)


def control_at_chance(table: Table, rng: np.random.Generator) -> Table:
    """The random control at chance at every n, n = 1 included (0.1 points of noise above it): a control that
    never trained, beaten by anything."""
    rows = [replace(r, top1=1 / r.num_classes + abs(rng.normal(0, 0.001)), final_top1=1 / r.num_classes)
            if r.treatment == "random" else r for r in table.rows]
    return Table(rows, dict(table.curves), table.training_record)


def diverge_base(table: Table, split: str, target: str) -> Table:
    """The base of `target` on `split` (one replicate) diverged: scored at chance, as a diverged run reports."""
    rows = [replace(r, diverged=True, top1=1 / r.num_classes, final_top1=1 / r.num_classes)
            if r.treatment == "base" and r.split == split and r.target == target else r for r in table.rows]
    return Table(rows, dict(table.curves), table.training_record)


def verdict_rates(claim, truth: Truth, replicates: int, sims: int, seed: int = 0, *,
                  natman_replicates: int | None = None, noise_scale: dict | None = None,
                  diverged: bool = False, shape: Shape = ORIGINAL_BASES, confound=None) -> dict:
    """Fractions of `sims` simulated studies with each verdict: {'claim': {verdict: rate}, 'controls':
    [{verdict: rate}, ...]} (premises, tests and the original's effects as in repro.claims.evaluate).
    `natman_replicates`, `noise_scale`, `shape`: as in `simulate_table`; `diverged`: one network the claim
    reads diverges in every study (`diverge_one`); `confound(table, rng) -> table`: applied to every study."""
    from repro.claims import outcome
    from repro.stats import VERDICTS
    from repro.stats.tests import without_power_analysis

    rng = np.random.default_rng(seed)
    counts = {v: 0 for v in VERDICTS}
    controls: list[dict] = []
    for _ in range(sims):
        table = simulate_table(truth, replicates, rng, treatments=_needs(claim), natman_replicates=natman_replicates,
                               noise_scale=noise_scale, shape=shape)
        if diverged:
            table = diverge_one(table, rng, tuple(_needs(claim)))
        if confound is not None:
            table = confound(table, rng)
        with without_power_analysis():
            verdict, control_verdicts = outcome(claim, table)
        counts[verdict] += 1
        for i, v in enumerate(control_verdicts):
            if i == len(controls):
                controls.append({k: 0 for k in VERDICTS})
            controls[i][v] += 1
    return {"claim": {v: c / sims for v, c in counts.items()},
            "controls": [{v: c / sims for v, c in control.items()} for control in controls]}


def reproduced_rate(claim, truth: Truth, replicates: int, sims: int, seed: int = 0, **options) -> float:
    """Fraction of `sims` simulated studies in which the claim comes out `reproduced` (options: as in
    `verdict_rates`)."""
    return verdict_rates(claim, truth, replicates, sims, seed, **options)["claim"]["reproduced"]


def paper_truth_rates(replicates: tuple[int, ...] = REPLICATES, sims: int = 200, seed: int = 0) -> dict:
    """Claim id -> {replicates: verdict_rates(...)} when the truth is the original study's own effects,
    computed once per (replicates, sims, seed) however the arguments are passed.

    The same seed for every number of replicates (common random numbers), so the rows compare fairly."""
    return _paper_truth_rates(tuple(replicates), sims, seed)


@functools.lru_cache(maxsize=4)
def _paper_truth_rates(replicates: tuple[int, ...], sims: int, seed: int) -> dict:
    from repro.claims import CLAIMS

    truth = paper_truth()
    return {claim.ID: {r: verdict_rates(claim, truth, r, sims, seed) for r in replicates} for claim in CLAIMS}


def power_table(replicates: tuple[int, ...] = REPLICATES, sims: int = 200, seed: int = 0) -> dict[str, dict]:
    """Claim id -> {replicates: fraction reproduced} when the truth is the original study's own effects."""
    rates = paper_truth_rates(replicates, sims, seed)
    return {claim: {r: by_r[r]["claim"]["reproduced"] for r in replicates} for claim, by_r in rates.items()}


def format_power_table(table: dict[str, dict]) -> str:
    replicates = sorted(next(iter(table.values())))
    width = max(len(c) for c in table)
    lines = [f"{'claim':<{width}}  " + "  ".join(f"R={r:<3}" for r in replicates)]
    for claim, row in table.items():
        lines.append(f"{claim:<{width}}  " + "  ".join(f"{row[r]:<5.2f}" for r in replicates))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Negative controls: labels that no longer mean what the claim says


def shuffled(table: Table, treatments: tuple[str, ...], seed: int) -> Table:
    """Within each target of each replicate, the (treatment, n, source) labels of the networks of these
    treatments (bases included if named) permuted at random: every effect is then noise."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(table.rows):
        if r.treatment in treatments:
            groups.setdefault(r.pair_key, []).append(i)
    rows = list(table.rows)
    for indices in groups.values():
        labels = [(rows[i].treatment, rows[i].n, rows[i].source, rows[i].key) for i in indices]
        for i, j in zip(indices, rng.permutation(len(labels))):
            treatment, n, source, key = labels[j]
            rows[i] = replace(rows[i], treatment=treatment, n=n, source=source, key=key)
    return Table(rows, dict(table.curves))


def transfer_adds_nothing(table: Table) -> Table:
    """Every AnB and AnB+ given the selffer's gain over its own base: the relative effect of BnB (for AnB) or
    BnB+ (for AnB+) of the same replicate and n (the mean over that replicate's selffers where it has none at
    that n), applied to the transfer's own base. Transfer then adds nothing beyond the training every copied
    network gets, and no claim about transfer may come out reproduced."""
    bases = {r.pair_key: r.top1 for r in table.rows if r.treatment == "base"}
    gains: dict[str, dict[int, dict[int, list[float]]]] = {}
    for r in table.rows:
        if r.treatment in SELFFERS and r.pair_key in bases:
            gains.setdefault(r.treatment, {}).setdefault(r.replicate, {}).setdefault(r.n, []).append(
                r.top1 / bases[r.pair_key] - 1)
    rows = []
    for r in table.rows:
        selffer = {"AnB": "BnB", "AnB+": "BnB+"}.get(r.treatment)
        by_n = gains.get(selffer, {}).get(r.replicate) if selffer and family(r.split) == "random" else None
        if not by_n or r.pair_key not in bases:
            rows.append(r)
            continue
        gain = np.mean(by_n[r.n]) if r.n in by_n else np.mean([g for values in by_n.values() for g in values])
        top1 = float(bases[r.pair_key] * (1 + gain))
        rows.append(replace(r, top1=top1, final_top1=top1))
    return Table(rows, dict(table.curves))


def swapped(table: Table, a: str, b: str) -> Table:
    """The accuracies of treatments a and b exchanged wherever both were trained at the same split,
    replicate, target and n (a claim that a beats b must then fail)."""
    by_key = {(r.split, r.replicate, r.target, r.treatment, r.n): r for r in table.rows}
    rows = []
    for r in table.rows:
        twin = by_key.get((r.split, r.replicate, r.target, {a: b, b: a}.get(r.treatment), r.n))
        rows.append(replace(r, top1=twin.top1, final_top1=twin.final_top1) if twin and r.treatment in (a, b)
                    else r)
    return Table(rows, dict(table.curves))


def swapped_families(table: Table) -> Table:
    """The natural/man-made split relabelled as random splits and the random splits as natural/man-made
    (replicate numbers kept distinct), so that a claim about the difference between them must fail."""
    rows = []
    for r in table.rows:
        if family(r.split) == "random":
            rows.append(replace(r, split="natman", replicate=r.replicate))
        elif r.split == "natman":
            rows.append(replace(r, split=f"random:{1000 + r.replicate}", replicate=1000 + r.replicate))
        else:
            rows.append(r)
    return Table(rows, dict(table.curves))

