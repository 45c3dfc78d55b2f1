"""Deterministic numbers by default on the GPU too; opting out is part of the run key."""
import os

import pytest
import torch

from repro.profiles import SMOKE
from repro.runs import RunSpec, canonical, training_config
from repro.settings import TrainingSettings
from repro.train import Group

pytestmark = pytest.mark.smoke


def key(profile) -> str:
    return RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(profile))).key


@pytest.fixture
def restore_flags():
    before = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
              torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[:2]
    torch.use_deterministic_algorithms(before[2], warn_only=before[3])


def build(tiny_task, profile):
    spec = RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(profile)))
    return Group.build([spec], tiny_task, {}, TrainingSettings.from_profile(profile, "cpu"))


def test_a_group_is_built_deterministic_by_default(tiny_task, restore_flags):
    assert SMOKE.deterministic
    build(tiny_task, SMOKE)
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] in (":4096:8", ":16:8")


def test_opting_out_turns_autotuning_on(tiny_task, restore_flags):
    build(tiny_task, SMOKE.override(["deterministic=false"]))
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()


def test_opting_out_is_recorded_in_the_run_key_and_the_default_keys_are_unchanged():
    fast = SMOKE.override(["deterministic=false"])
    assert key(fast) != key(SMOKE)
    assert "nondeterministic" not in training_config(SMOKE)  # keys of earlier stores still match
    assert training_config(fast)["nondeterministic"] is True
