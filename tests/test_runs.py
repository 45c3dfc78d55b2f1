"""RunSpec keys and the plan: equal specs are the same run; any changed field is another run."""
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.numerics import precision_for
from repro.profiles import PROFILES, SMOKE, Arch, Profile, Recipe, get_profile
from repro.runs import (BASES, COMPUTE_MATCHED, TREATMENTS, Need, RunSpec, canonical, compute_matched, groups,
                        specs_for, training_config)
from repro.settings import TrainingSettings

pytestmark = pytest.mark.smoke

CONFIG = canonical(training_config(SMOKE))

specs = st.builds(
    lambda split, target, treatment, n, r: RunSpec(split, target, treatment, 0 if treatment in BASES else n, r,
                                                   CONFIG),
    st.one_of(st.just("natman"), st.integers(0, 50).map(lambda s: f"random:{s}")),
    st.sampled_from("AB"), st.sampled_from(TREATMENTS), st.integers(1, 7), st.integers(0, 20))


@given(specs)
def test_key_is_stable_through_json(spec):
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.key == spec.key


@given(specs, st.data())
def test_key_changes_with_every_field(spec, data):
    field = data.draw(st.sampled_from(["split", "target", "treatment", "n", "replicate", "config"]))
    changed = {
        "split": "natman" if spec.split != "natman" else "random:0",
        "target": "A" if spec.target == "B" else "B",
        "replicate": spec.replicate + 1,
        "config": canonical({**json.loads(spec.config), "image_size": 99}),
    }
    if field == "treatment":
        other = [t for t in TREATMENTS if t != spec.treatment and (t in BASES) == (spec.treatment in BASES)]
        t = other[0]
        changed["treatment"] = t
        new = dataclasses.replace(spec, treatment=t, n=0 if t in BASES else max(1, spec.n))
    elif field == "n":
        if spec.treatment in BASES:
            return
        new = dataclasses.replace(spec, n=spec.n % 7 + 1)
    else:
        new = dataclasses.replace(spec, **{field: changed[field]})
    assert new.key != spec.key


def test_key_depends_on_the_parent_recipe():
    a = RunSpec("random:0", "B", "AnB", 3, 0, CONFIG)
    b = dataclasses.replace(a, config=canonical({**json.loads(CONFIG), "recipe": {"lr": 1}}))
    assert a.parent.key != b.parent.key and a.key != b.key


def test_parents_are_the_bases_of_the_right_half():
    anb = RunSpec("random:2", "B", "AnB+", 4, 2, CONFIG)
    bnb = RunSpec("random:2", "B", "BnB", 4, 2, CONFIG)
    assert anb.parent == RunSpec("random:2", "A", "base", 0, 2, CONFIG)
    assert bnb.parent == RunSpec("random:2", "B", "base", 0, 2, CONFIG)
    assert RunSpec("natman", "A", "random", 2, 0, CONFIG).parent is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(treatment="AnC"), "unknown treatment"),
    (dict(n=8), "n must be in 1..7"),
    (dict(n=0), "n must be in 1..7"),
    (dict(treatment="base", n=3), "n must be 0"),
    (dict(target="C"), "'A' or 'B'"),
    (dict(split="random:x"), "random:<seed>"),
])
def test_bad_specs_say_what_is_wrong(kwargs, message):
    args = dict(split="random:0", target="B", treatment="AnB", n=3, replicate=0, config=CONFIG) | kwargs
    with pytest.raises(ValueError, match=message):
        RunSpec(**args)


def test_plan_puts_bases_before_transfers_and_shares_them():
    needs = [Need("random", t) for t in TREATMENTS] + [Need("natman", "AnB"), Need("natman", "random")]
    plan = specs_for(SMOKE, needs)
    assert len({s.key for s in plan}) == len(plan)
    seen = set()
    for s in plan:
        if s.parent:
            assert s.parent.key in seen
        seen.add(s.key)
    bases = [s for s in plan if s.treatment == "base"]
    assert len(bases) == SMOKE.replicates * 4  # A and B of random:r, natural and man-made of natman


def test_the_compute_matched_base_trains_twice_the_epochs_once_per_target_and_replicate_of_the_fine_tuned():
    plan = specs_for(SMOKE, [Need("random", "AnB+"), Need("random", COMPUTE_MATCHED)], device="cpu")
    matched = [s for s in plan if s.treatment == COMPUTE_MATCHED]
    fine_tuned = {(s.split, s.target, s.replicate) for s in plan if s.treatment == "AnB+"}
    assert sorted((s.split, s.target, s.replicate) for s in matched) == sorted(fine_tuned)  # target B of each
    base = next(s for s in plan if s.treatment == "base" and s.target == "B")
    assert matched[0].cfg["recipe"]["epochs"] == 2 * base.cfg["recipe"]["epochs"] and matched[0].parent is None
    assert matched[0].cfg == {**base.cfg, "recipe": {**base.cfg["recipe"], "epochs": 2 * SMOKE.recipe.epochs}}
    assert matched[0].label == f"{COMPUTE_MATCHED} {base.split}/B r{base.replicate}"
    paper = get_profile("paper")  # fine-tuned on 3 of its 4 random splits: 3 compute-matched bases
    assert len([s for s in specs_for(paper, [Need("random", COMPUTE_MATCHED)]) if s.treatment == COMPUTE_MATCHED]) == 3


def test_every_committed_networks_key_is_still_planned():
    # the committed 1.5-epoch cpu study trained replicates 0-2 (before the profile moved to 3-5): the same
    # profile on those replicates plans every one of its 96 keys, and the compute-matched bases besides
    from repro.study import all_needs

    doc = json.loads((Path(__file__).parent.parent / "reports" / "cpu-tiny-imagenet-1.5-epochs-fp32" /
                      "results.json").read_text())
    planned = specs_for(get_profile("cpu", ["first_replicate=0"]), all_needs(), device="cpu")
    assert {r["key"] for r in doc["runs"]} == {s.key for s in planned if s.treatment != COMPUTE_MATCHED}


# the committed studies: each has a README that says how it was made (a report a test or a user writes into
# reports/ has none)
REPORTS = sorted(path for path in (Path(__file__).parent.parent / "reports").glob("*/results.json")
                 if (path.parent / "README.md").exists())
# Trained before the run key held the numerics (commit d28f686): their key's config is the profile's fields as
# they were then, the recipe whole (cpu_bf16 included) and no "numerics".
BEFORE_NUMERICS_IN_THE_KEY = {"cpu-tiny-imagenet", "cpu-tiny-imagenet-6-epochs"}


def stored_profile(fields: dict) -> Profile:
    """The Profile of a results.json's session['profile'] (JSON lists back to tuples)."""
    def tuples(d):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

    return Profile(**{**tuples(fields), "arch": Arch(**tuples(fields["arch"])),
                      "recipe": Recipe(**tuples(fields["recipe"]))})


def trained_precision(doc: dict, replicate: int) -> str:
    """The precision a committed network trained in: its replicate's where the study was run in pieces (its
    replicates may differ: bf16 on one machine, fp32 on another), else the study's one."""
    by_replicate = {r["replicate"]: r["precision"] for r in doc["session"].get("replicate_records") or []}
    (precision,) = by_replicate.get(replicate) or doc["session"]["training"]["precision"]
    return precision


def key_config(doc: dict, report: str, treatment: str = "base", replicate: int | None = None) -> str:
    """The config of the run keys of a committed study, from what its results.json stored (a compute-matched
    base's: its profile's recipe at twice the epochs, runs.compute_matched), for a network of `replicate`."""
    fields = doc["session"]["profile"]
    if report in BEFORE_NUMERICS_IN_THE_KEY:
        return canonical({name: fields[name] for name in ("dataset", "image_size", "arch", "recipe", "num_classes",
                                                           "images_per_class", "train_per_class", "val_per_class")})
    (device,), precision = doc["session"]["training"]["devices"], trained_precision(doc, replicate)
    profile = stored_profile(fields)
    config = training_config(compute_matched(profile) if treatment == COMPUTE_MATCHED else profile, device)
    # the precision the study trained in (bf16 on a CPU that has it natively), whatever this machine has
    config["numerics"]["precision"] = precision
    return canonical(config)


def test_every_committed_report_is_checked_for_its_keys():
    assert len(REPORTS) >= 4 and BEFORE_NUMERICS_IN_THE_KEY <= {path.parent.name for path in REPORTS}


@pytest.mark.parametrize("results", REPORTS, ids=lambda path: path.parent.name)
def test_every_committed_networks_key_is_its_stored_spec_hashed_again(results):
    """Each network of each committed results.json: its key recomputed from its spec (the stored profile, as
    the key's config, and the row's split, target, treatment, n and replicate; a transfer's key holds its
    base's) is the key it was stored under. A change to RunSpec.key or training_config that moves a
    committed key fails here."""
    doc = json.loads(results.read_text())
    for run in doc["runs"]:
        config = key_config(doc, results.parent.name, run["treatment"], run["replicate"])
        spec = RunSpec(run["split"], run["target"], run["treatment"], run["n"], run["replicate"], config)
        assert (spec.key, spec.source) == (run["key"], run["source"]), spec.label


def test_groups_share_one_target_and_level():
    plan = specs_for(SMOKE, [Need("random", t) for t in TREATMENTS])
    for g in groups(plan):
        assert len({(s.split, s.target, s.replicate, s.parent is None) for s in g}) == 1
    assert sum(len(g) for g in groups(plan)) == len(plan)
    assert all(len(g) == 1 for g in groups(plan, share=False))


def test_groups_come_after_the_groups_they_copy_from_and_the_longest_chain_first():
    from repro.study import all_needs

    order = groups(specs_for(get_profile("cpu"), all_needs()))  # the whole cpu study
    position = {s.key: k for k, g in enumerate(order) for s in g}
    for k, g in enumerate(order):
        assert all(position[s.parent.key] < k for s in g if s.parent)
    # the random-split bases unlock the three 16-network groups (BnB and AnB 1-7, BnB+ and AnB+ at n = 4): they go
    # before the natural/man-made groups, which fill in the rest of the time (otherwise the big groups start last
    # and one finishes alone)
    first_natman = next(k for k, g in enumerate(order) if g[0].split == "natman")
    random_bases = [k for k, g in enumerate(order) if g[0].split != "natman" and g[0].treatment == "base"]
    assert max(random_bases) < first_natman
    assert [len(g) for g in order[:9]] == [1] * 6 + [16] * 3


def test_profiles_override_and_reject_unknown_fields():
    p = get_profile("smoke", ["recipe.lr=0.5", "replicates=3", "layers=1,2", "share=false"])
    assert (p.recipe.lr, p.replicates, p.layers, p.share) == (0.5, 3, (1, 2), False)
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("smoke", ["recipe.lrr=1"])
    with pytest.raises(ValueError, match="expected a value of type int"):
        get_profile("smoke", ["replicates=many"])
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        get_profile("tiny")


@given(st.sampled_from(sorted(PROFILES)), st.integers(1, 9), st.floats(1e-4, 1.0))
@settings(max_examples=30)
def test_set_round_trips_values(name, replicates, lr):
    p = get_profile(name, [f"replicates={replicates}", f"recipe.lr={lr!r}"])
    assert p.replicates == replicates and p.recipe.lr == lr


def test_first_replicate_moves_the_seeds_and_keeps_the_counts_of_natman_and_finetune_replicates():
    needs = [Need("random", "BnB+"), Need("natman", "AnB")]
    shifted = SMOKE.override({"first_replicate": 7, "replicates": 3, "natman_replicates": 1,
                              "finetune_replicates": 2})
    specs = specs_for(shifted, needs, device="cpu")
    assert {s.replicate for s in specs} == {7, 8, 9}
    assert {s.replicate for s in specs if s.split == "natman"} == {7}
    assert {s.replicate for s in specs if s.treatment == "BnB+"} == {7, 8}
    assert {s.split for s in specs if s.split != "natman"} == {"random:7", "random:8", "random:9"}
    # the same replicate number is the same network whatever the first replicate of its study
    unshifted = {s.key for s in specs_for(SMOKE.override({"replicates": 10}), needs, device="cpu")}
    assert {s.key for s in specs if s.split != "natman"} <= unshifted
    with pytest.raises(Exception, match="first_replicate"):
        SMOKE.override({"first_replicate": -1})


# ---- the settings a key holds (repro.settings) ----------------------------------------------------------------
TRAINING_CONFIGS = json.loads((Path(__file__).parent / "training_configs.json").read_text())


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_settings_of_every_shipped_profile_are_written_as_the_keys_config_of_before(name, device):
    """TrainingSettings writes the bytes training_config wrote before it existed (tests/training_configs.json),
    so every store keeps its keys, and reads them back to the same settings."""
    settings = TrainingSettings.from_profile(PROFILES[name], device)
    assert canonical(settings.to_config()) == TRAINING_CONFIGS[f"{name}/{device}"]
    assert TrainingSettings.from_config(json.loads(TRAINING_CONFIGS[f"{name}/{device}"])) == settings


@pytest.mark.filterwarnings("ignore:recipe.cpu_bf16=true asks for bf16")  # a study of before asked for it
@pytest.mark.parametrize("results", REPORTS, ids=lambda path: path.parent.name)
def test_the_settings_of_every_committed_key_are_read_back(results):
    """A committed key's config gives its settings again; one planned before the key held the numerics gets them
    from its profile, as a new key would."""
    doc = json.loads(results.read_text())
    config = json.loads(key_config(doc, results.parent.name, replicate=doc["runs"][0]["replicate"]))
    profile = stored_profile(doc["session"]["profile"])
    settings = TrainingSettings.from_config(config, profile, "cpu")
    assert settings.arch == profile.arch and settings.recipe.epochs == profile.recipe.epochs
    if "numerics" in config:
        assert canonical(settings.to_config()) == canonical(config)
    else:
        assert settings.numerics.precision == precision_for(profile, "cpu")
        with pytest.raises(ValueError, match="its profile decides them"):
            TrainingSettings.from_config(config)
