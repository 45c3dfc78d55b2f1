"""The power of a planned study, told before it trains (`repro plan --json`): for every part of every claim, the
effect stated before any data, the seed-to-seed spread assumed for it (measured on a study of the same tier),
the replicates the plan gives it and the chance it comes out reproduced when its true effect is the stated
one (repro.stats.power).

The spreads are measured, not guessed: `measure_spreads(table)` judges a finished study and keeps the spread
of every part's replicate values; repro/reference/measured_spreads.json holds them for the committed `cpu`
study and for the original study (regenerate with `python -m repro.planned_power --write`, which
tests/test_planned_power.py checks against the committed results). A profile assumes the spreads of the tier
named in SPREADS_OF (every Tiny ImageNet profile: the `cpu` study, the only one trained; the ILSVRC-2012
profiles: the original's). A part with no spread of its own there (a layer that study did not train) assumes
the largest measured spread of the parts of its claim with its unit, and says so.

A study in progress (`repro plan --study-dir`) knows better than another tier: a part whose spread its own
finished replicates measure on at least OWN_SPREAD_REPLICATES of them assumes that spread instead (only the
spread, never the effect, so deciding how many replicates to train on it does not bias a verdict), and each
claim says how many replicates at least its power bound needs to reach 80% (`replicates_for_power`).

A claim holds only if every part does, so its power is at most that of its weakest part; a part that holds at
the worst of several layers holds with at most the sum of their powers (a union bound, which Holm's correction
only lowers); `claim_power_at_most` is that bound.
"""
from __future__ import annotations

import functools
import json
import math
import re
from importlib import resources

from repro.profiles import Profile

SPREADS = "measured_spreads.json"
SPREADS_OF = {"paper": "original", "paper-fast": "original"}  # every other profile: "cpu"
MEASURED_ON = {"cpu": "reports/cpu-tiny-imagenet-1.5-epochs-fp32/results.json",
               "original": "the original study (repro/reference)"}
OWN_SPREAD_REPLICATES = 3  # a spread from 2 replicates has 1 degree of freedom: no better than another tier's


def generic(name: str) -> str:
    """A part's name with its layer numbers left out: how a layer a study did not train finds a spread."""
    return re.sub(r"n=\d+", "n=k", name)


def measure_spreads(table) -> dict:
    """{claim id: {part name: {"sd", "replicates", "unit", "smallest"}}} of every part with a spread, judged
    on `table` (its stated smallest effect as stated there: a points part states it at the study's bases)."""
    from repro.claims import CLAIMS
    from repro.results import without_failures

    kept, _ = without_failures(table)
    out: dict = {}
    for claim in CLAIMS:
        root, _, _ = claim.measure(kept, {})
        for leaf in root.leaves():
            if math.isfinite(leaf.sd) and leaf.sd > 0:
                out.setdefault(claim.ID, {})[leaf.name] = {"sd": leaf.sd, "replicates": leaf.replicates,
                                                           "unit": leaf.unit, "smallest": leaf.smallest}
    return out


def load_spreads() -> dict:
    return json.loads(resources.files("repro.reference").joinpath(SPREADS).read_text())


def _layout(profile: Profile):
    """A table shaped like the profile's study (its layers, replicates, and which replicates have the
    natural/man-made split and the fine-tuned treatments), every effect 0: what each claim's parts will be."""
    import numpy as np

    from repro.claims import CLAIMS
    from repro.simulated_tables import simulate_table

    layers = {"BnB": profile.layers, "AnB": profile.layers, "BnB+": profile.finetune_layers,
              "AnB+": profile.finetune_layers, "random": profile.random_layers, "base-2x": (0,)}
    truth = {}
    for claim in CLAIMS:
        for need in claim.NEEDS:
            ns = profile.natman_layers if need.family == "natman" and need.treatment in ("AnB", "random") \
                else layers[need.treatment]
            if (need.family == "random" and profile.random_splits) or (need.family == "natman" and profile.natman):
                truth[(need.family, need.treatment)] = {n: 0.0 for n in ns}
    return simulate_table(truth, profile.replicates, np.random.default_rng(0),
                          natman_replicates=profile.natman_replicates or None,
                          finetune_replicates=profile.finetune_replicates or None, blocks=profile.blocks)


def _bound(test, power_of) -> float:
    """An upper bound of a combination's power: its weakest part's (all), the sum of its layers' (any)."""
    if not test.parts:
        return power_of[test.name]
    values = [_bound(t, power_of) for t in test.parts]
    if any(math.isnan(v) for v in values):
        return math.nan
    return min(values) if test.direction == "all" else min(1.0, sum(values))


def planned_power(profile: Profile, replicates: int | None = None, own: dict | None = None,
                  own_name: str = "") -> dict:
    """Per claim and part: the stated effect, the spread assumed (and where it was measured), the replicates
    and the power; `replicates` overrides the profile's (the README's table at 3, 5 and 8). `own`: spreads
    measured on the study itself (measure_spreads), named `own_name`; a part uses its own where that was
    measured on at least OWN_SPREAD_REPLICATES replicates."""
    import dataclasses

    from repro.claims import CLAIMS
    from repro.stats import power
    from repro.stats.power import replicates_needed

    if replicates is not None:
        profile = dataclasses.replace(profile, replicates=replicates)
    tier = SPREADS_OF.get(profile.name, "cpu")
    measured = load_spreads()[tier]
    table = _layout(profile)
    claims = []
    for claim in CLAIMS:
        root, _, _ = claim.measure(table, {})
        spreads = measured.get(claim.ID, {})
        parts, power_of = [], {}
        for leaf in root.leaves():
            found = spreads.get(leaf.name) or spreads.get(generic(leaf.name))
            source = f"measured on {MEASURED_ON[tier]}"
            mine = (own or {}).get(claim.ID, {}).get(leaf.name)
            if mine and mine["replicates"] >= OWN_SPREAD_REPLICATES:
                found, source = mine, f"measured on {own_name} ({mine['replicates']} replicates)"
            elif found is None:
                same_unit = [v for v in spreads.values() if v["unit"] == leaf.unit]
                found = max(same_unit, key=lambda v: v["sd"]) if same_unit else None
                source = f"not measured there: the largest spread of this claim's parts in {leaf.unit}"
            groups = (len(leaf.values),) if leaf.other is None else (len(leaf.values), len(leaf.other))
            sd = found["sd"] if found else math.nan
            smallest = leaf.smallest
            if leaf.unit == "points" and found:  # stated as a share of the bases: at the measured study's
                smallest = found["smallest"]
            # a single replicate borrows the spread of the replicated cells: the profile's replicates - 1 df
            p = power(leaf.direction, leaf.null, smallest, leaf.margin, sd, groups,
                      borrowed_df=profile.replicates - 1) if found else math.nan
            power_of[leaf.name] = p
            parts.append({"part": leaf.name, "unit": leaf.unit, "direction": leaf.direction, "null": leaf.null,
                          "stated_effect": smallest, "margin": leaf.margin, "sd": _number(sd), "sd_from": source,
                          "replicates": list(groups), "power": _number(p),
                          "replicates_needed": replicates_needed(leaf.direction, leaf.null, smallest, leaf.margin,
                                                                 sd, two_sample=len(groups) == 2)})
        claims.append({"id": claim.ID, "claim_power_at_most": _number(_bound(root, power_of)), "parts": parts})
    return {"profile": profile.name, "replicates": profile.replicates, "spreads_of": tier,
            "measured_on": MEASURED_ON[tier], "claims": claims}


def replicates_for_power(profile: Profile, own: dict | None = None, own_name: str = "") -> dict[str, int | None]:
    """Per claim: the fewest replicates at which its power bound (claim_power_at_most) reaches 80%, i.e. the
    replicates it needs at least; None beyond MAX_REPLICATES or where the bound is not computable. The bound
    grows with the replicates (tests/test_planned_power.py), so a bisection finds it."""
    from repro.stats.power import MAX_REPLICATES, POWER

    @functools.lru_cache(maxsize=None)
    def reaches(k: int) -> dict[str, bool]:
        return {c["id"]: (c["claim_power_at_most"] or 0.0) >= POWER
                for c in planned_power(profile, k, own, own_name)["claims"]}

    at_most = reaches(MAX_REPLICATES)
    needed: dict[str, int | None] = {}
    for claim, reached in at_most.items():
        if not reached:
            needed[claim] = None
            continue
        low, high = 1, MAX_REPLICATES  # the bound misses at `low` replicates (or it is 1) and reaches at `high`
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if reaches(middle)[claim] else (middle, high)
        needed[claim] = high
    return needed


def _number(x: float) -> float | None:
    """A number for JSON: None where it is not computable."""
    return x if math.isfinite(x) else None


def shown_power(x: float | None, prefix: str = "") -> str:
    """A power for people: a dash where it is not computable (a group too small to have a spread of its own)."""
    return "—" if x is None else f"{prefix}{x:.2f}"


def format_power(plans: dict[int, dict]) -> str:
    """The README's table: per claim part, its stated effect, spread and power at each number of replicates."""
    counts = sorted(plans)
    first = plans[counts[0]]
    lines = [f"spreads measured on {first['measured_on']}",
             "| claim | part | stated effect | sd | " + " | ".join(f"power at {r}" for r in counts) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in counts) + " |"]
    for i, claim in enumerate(first["claims"]):
        for j, part in enumerate(claim["parts"]):
            stated = f"±{part['margin']:g}" if part["direction"] == "equivalent" else f"{part['stated_effect']:+.2f}"
            powers = " | ".join(shown_power(plans[r]["claims"][i]["parts"][j]["power"]) for r in counts)
            lines.append(f"| {claim['id'] if j == 0 else ''} | {part['part']} | {stated} {part['unit']} | "
                         f"{shown_power(part['sd'])} | {powers} |")
        bounds = " | ".join(shown_power(plans[r]["claims"][i]["claim_power_at_most"], "≤ ") for r in counts)
        lines.append(f"| | the claim (every part) | | | {bounds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m repro.planned_power [--write] [--profile NAME]`: regenerate the measured spreads from the
    committed studies (--write), and print the power table of a profile at 3, 5 and 8 replicates."""
    import argparse
    from pathlib import Path

    from repro.paper import original_table
    from repro.profiles import get_profile
    from repro.results import table_from_file

    parser = argparse.ArgumentParser(prog="python -m repro.planned_power")
    parser.add_argument("--write", action="store_true", help=f"write repro/reference/{SPREADS} from the studies")
    parser.add_argument("--profile", default="cpu")
    args = parser.parse_args(argv)
    if args.write:
        root = Path(__file__).resolve().parent.parent
        spreads = {"cpu": measure_spreads(table_from_file(root / MEASURED_ON["cpu"])[0]),
                   "original": measure_spreads(original_table())}
        path = Path(__file__).parent / "reference" / SPREADS
        path.write_text(json.dumps(spreads, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path}")
    print(format_power({r: planned_power(get_profile(args.profile), r) for r in (3, 5, 8)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
