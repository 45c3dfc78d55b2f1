"""The numerics policy (repro.numerics): fp32 on the CPU unless bf16 is asked for and native; every setting that
changes a network's numbers is in its run key; the CPU projection; `repro compare` network by network."""
import json
import warnings

import pytest
import torch

from repro import numerics
from repro.profiles import PROFILES, get_profile
from repro.runs import RunSpec, canonical, training_config

pytestmark = pytest.mark.smoke


@pytest.fixture
def bf16_hardware(monkeypatch):
    """Pretend this CPU has AVX512-BF16 and ATen uses AVX512 kernels (oneDNN unrestricted)."""
    monkeypatch.setattr(numerics, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(numerics, "cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)


def key(profile, device="cpu") -> str:
    return RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(profile, device))).key


# ---- precision ---------------------------------------------------------------------------------------------
def test_every_profile_trains_in_fp32_on_the_cpu_by_default(bf16_hardware):
    for profile in PROFILES.values():
        assert not profile.recipe.cpu_bf16, profile.name
        assert numerics.precision_for(profile, "cpu") == "fp32", profile.name
    assert numerics.precision_for(get_profile("gpu"), "cuda") == "bf16"  # on a GPU the profile's bf16 decides
    assert numerics.precision_for(get_profile("gpu", ["bf16=false"]), "cuda") == "fp32"


def test_bf16_on_the_cpu_only_where_it_is_native(bf16_hardware, monkeypatch):
    asked = get_profile("cpu", ["recipe.cpu_bf16=true"])
    assert numerics.native_bf16()[0] and numerics.precision_for(asked, "cpu") == "bf16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # the kernels decide, not only the CPU's flags
    native, why = numerics.native_bf16()
    assert not native and "ONEDNN_MAX_CPU_ISA" in why
    numerics._warn_once.cache_clear()
    with pytest.warns(UserWarning, match="train in fp32"):
        assert numerics.precision_for(asked, "cpu") == "fp32"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(numerics, "cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert not numerics.native_bf16()[0]
    monkeypatch.setattr(numerics, "cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(numerics, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))  # a CPU without it
    assert not numerics.native_bf16()[0]


def test_a_run_asked_in_bf16_where_it_is_emulated_is_the_fp32_run(monkeypatch):
    monkeypatch.setattr(numerics, "cpu_capability", lambda: "AVX2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert key(get_profile("smoke", ["recipe.cpu_bf16=true"])) == key(get_profile("smoke"))


# ---- the run key holds the numerics --------------------------------------------------------------------------
@pytest.mark.parametrize("setting, device", [
    ("recipe.cpu_bf16=true", "cpu"),  # precision on the CPU (native bf16 here)
    ("bf16=false", "cuda"),  # precision on a GPU
    ("channels_last=false", "cpu"),
    ("compile=true", "cuda"),
    ("deterministic=false", "cuda"),
    ("cuda_graphs=true", "cuda"),
    ("divergence_loss=100", "cpu"),
    ("recipe.cpu_threads=2", "cpu"),
])
def test_each_numerics_setting_changes_the_run_key(bf16_hardware, setting, device):
    smoke = get_profile("smoke")
    assert key(smoke.override([setting]), device) != key(smoke, device)


def test_a_cpu_and_a_gpu_run_of_one_spec_have_different_keys_and_the_device_is_the_planned_one():
    smoke = get_profile("smoke")
    assert key(smoke, "cpu") != key(smoke, "cuda")
    assert training_config(smoke.override(["device=cuda"])) == training_config(smoke, "cuda")
    assert training_config(smoke)["numerics"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        get_profile("smoke", ["device=tpu"])


def test_a_run_planned_for_one_device_is_not_trained_on_another():
    from repro.worker import planned_device

    spec = RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(get_profile("smoke"), "cuda")))
    assert planned_device(spec) == "cuda"
    with pytest.raises(ValueError, match="planned for cuda"):
        planned_device(spec, "cpu")


def test_train_group_trains_in_the_planned_precision(tmp_path, monkeypatch):
    """The group's precision is the key's, not the recipe's request."""
    from repro.worker import train_group
    from repro.store import Store
    from repro.train import Group

    profile = get_profile("smoke", ["recipe.epochs=0.2", "recipe.cpu_bf16=true"])
    monkeypatch.setattr(numerics, "cpu_capability", lambda: "AVX2")  # not native: planned in fp32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(profile, "cpu")))
    seen = []
    build = Group.build
    monkeypatch.setattr(Group, "build", classmethod(lambda cls, specs, task, parents, settings, **kw:
                                                    seen.append(settings.numerics.precision) or
                                                    build.__func__(cls, specs, task, parents, settings, **kw)))
    train_group([spec], str(tmp_path / "store"), profile, device="cpu")
    assert seen == ["fp32"]
    metrics = Store(tmp_path / "store").result(spec)
    assert metrics["precision"] == "fp32" and metrics["autocast"] == "none"
    assert metrics["cpu"]["cpu_capability"] and metrics["finished"] >= metrics["started"]


# ---- the projection on the CPU -------------------------------------------------------------------------------
def test_plan_projects_a_cpu_profile_from_a_measurement_of_this_machine_and_caches_it(capsys, monkeypatch, tmp_path):
    from repro import cpu_steps
    from repro.cli import main

    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    monkeypatch.setattr(numerics, "default_device", lambda: "cpu")
    assert main(["plan", "--profile", "smoke", "--json", "--store", str(tmp_path / "store")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["precision"] == "fp32" and out["projected_hours"] > 0
    projection = out["projection"]
    assert projection["device"] == "cpu" and projection["step_ms"]["network"] > 0
    assert projection["step_ms"]["transfer_group"]["members"] > 1 and projection["transfer_scale"] > 0
    monkeypatch.setattr(cpu_steps, "measure", lambda *a: pytest.fail("measured again instead of the cache"))
    assert main(["plan", "--profile", "smoke", "--json", "--store", str(tmp_path / "store")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["projected_hours"] == out["projected_hours"] and "cached in" in again["projection"]["measurement"]


def test_a_cached_step_time_is_another_cpus_or_another_networks_measurement_only_when_both_agree(monkeypatch):
    """A VM names a Zen 1 and a Zen 3 'AMD EPYC' alike, and a network whose layers change steps otherwise: a
    step time cached for one is not read for the other."""
    import dataclasses

    from repro import cpu_steps
    from repro.runs import specs_for
    from repro.study import all_needs

    profile = get_profile("smoke")
    group = specs_for(profile, all_needs(), "cpu")[:1]
    here = cpu_steps._identity(profile, group, "fp32")
    summary = numerics.cpu_summary()
    monkeypatch.setattr(cpu_steps, "cpu_summary", lambda: {**summary, "cpu_family": "family 23 model 1"}
                        if summary["cpu_family"] != "family 23 model 1" else {**summary, "cpu_family": "family 25"})
    other_cpu = cpu_steps._identity(profile, group, "fp32")
    monkeypatch.setattr(cpu_steps, "cpu_summary", lambda: summary)
    lrn = dataclasses.replace(profile, arch=dataclasses.replace(profile.arch, lrn=True))
    other_network = cpu_steps._identity(lrn, group, "fp32")
    assert here["cpu_model"] == other_cpu["cpu_model"] and here != other_cpu
    assert here["network"] != other_network["network"]
    assert cpu_steps._identity(profile, group, "fp32") == here


def test_the_projection_is_told_before_training_and_suggests_the_quicker_profile_when_long(store, monkeypatch):
    import io

    from repro import schedule
    from repro.runs import specs_for
    from repro.study import all_needs

    profile = get_profile("cpu")
    specs = specs_for(profile, all_needs(), "cpu")
    long = {"device": "cpu", "workers": 2, "precision": "fp32", "projected_hours": 1.5, "measurement": "m"}
    monkeypatch.setattr(schedule, "plan_projection", lambda *a, **kw: long)
    stream = io.StringIO()
    schedule.tell_projection(profile, specs, store, quicker="--repro-profile cpu-quick", stream=stream)
    assert "99 networks to train: projected 1 h 30 min on 2 CPU workers, fp32" in stream.getvalue()
    assert "--repro-profile cpu-quick" in stream.getvalue()
    long["projected_hours"] = 0.5
    stream = io.StringIO()
    schedule.tell_projection(profile, specs, store, stream=stream)
    assert "projected 30.0 min" in stream.getvalue() and "quicker" not in stream.getvalue()


def test_the_cost_model_scales_transfer_groups_by_the_measured_factor():
    from repro.runs import groups, specs_for
    from repro.cost import step_ms
    from repro.study import all_needs

    profile = get_profile("cpu")
    grouped = groups(specs_for(profile, all_needs(), "cpu"))
    base = next(g for g in grouped if g[0].treatment == "base")
    transfer = max(grouped, key=len)
    timing = {"network_ms": 100.0, "group_ms": 110.0, "batch": 128, "gflop_per_image_fwd": 0.0304}
    scaled = {**timing, "transfer_scale": 0.5}
    assert step_ms(base, profile, scaled) == step_ms(base, profile, timing)
    assert step_ms(transfer, profile, scaled)[0] - 10 == pytest.approx((step_ms(transfer, profile, timing)[0] - 10) / 2)


# ---- provenance and compare ---------------------------------------------------------------------------------
def _doc(top1s: dict, capability: str) -> dict:
    runs = [{"evidence": "cpu", "split": "random:0", "replicate": 0, "treatment": "base", "n": 0, "source": None,
             "target": t, "top1": v, "final_top1": v, "diverged": False, "num_classes": 100, "key": k,
             "train_seconds": 1.0, "cached": False} for k, (t, v) in top1s.items()]
    session = {"cpu": {"cpu_model": "X", "cpu_capability": capability, "native_bf16": capability == "AVX512"},
               "training": {"precision": ["fp32"], "cpus": [f"X ({capability})"], "devices": ["cpu"],
                            "torch": ["2.0"]}, "versions": {"torch": "2.0"}, "hardware": "X"}
    return {"claims": [], "runs": runs, "session": session}


def test_compare_counts_the_runs_that_share_a_key_but_not_their_numbers_and_names_the_provenance():
    from repro.report.compare import compare_runs, format_run_comparison

    a = _doc({"k1": ("A", 0.40), "k2": ("B", 0.30), "k3": ("B", 0.2)}, "AVX512")
    b = _doc({"k1": ("A", 0.40), "k2": ("B", 0.33), "k4": ("B", 0.1)}, "AVX2")
    runs = compare_runs(a, b)
    assert (runs["shared"], runs["same"], runs["differ"], runs["only_a"], runs["only_b"]) == (2, 1, 1, 1, 1)
    assert runs["largest"]["top1_difference"] == pytest.approx(0.03) and runs["largest"]["run"] == "base random:0/B r0"
    assert runs["provenance"]["CPU capability"] == ("AVX512", "AVX2")
    assert "precision" not in runs["provenance"]
    text = format_run_comparison(runs)
    assert "1 do not" in text and "3.00 points" in text and "other rounding" in text
    same = compare_runs(a, a)
    assert same["differ"] == 0 and not same["provenance"] and "bit for bit" in format_run_comparison(same)


def test_the_training_wall_time_comes_from_the_runs_own_records(store):
    from repro.provenance import training_provenance

    smoke = get_profile("smoke")
    specs = [RunSpec("random:0", h, "base", 0, 0, canonical(training_config(smoke, "cpu"))) for h in "AB"]
    for spec, (start, end) in zip(specs, [(1000.0, 1100.0), (1050.0, 1600.0)]):
        store.save_result(spec, {"w": torch.zeros(1)}, {"top1": 0.5, "diverged": False, "started": start,
                                                        "finished": end, "device": "cpu", "precision": "fp32",
                                                        "torch": torch.__version__,
                                                        "cpu": numerics.cpu_summary()})
    out = training_provenance(store, specs)
    assert out["training_wall_seconds"] == 600.0 and out["precision"] == ["fp32"] and len(out["cpus"]) == 1
