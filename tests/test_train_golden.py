"""Today's numbers stay today's numbers: curves and losses of a small study on the CPU, bit for bit.

tests/train_golden.json was written by the training loop as it was at commit bd79fdd (before the sync-free
step, device-side augmentation and split sub-groups), with `python tests/test_train_golden.py OUT.json`:
bases alone, then every transfer kind in one group, in fp32, in bf16 autocast on the CPU (the `cpu` profile's
recipe), with warm-up and label smoothing, and a run that diverges. Any change to the loop must reproduce them
exactly, so a store filled by the earlier code stays valid.
"""
import dataclasses
import json
import sys
from pathlib import Path

import pytest
import torch

from repro.profiles import SMOKE
from repro.runs import RunSpec, canonical, training_config
from repro.train import Group, Task

GOLDEN = Path(__file__).with_name("train_golden.json")


def summary(results) -> list[dict]:
    return [{"label": r["label"], "curve": r["curve"], "losses": r["losses"], "top1": r["top1"],
             "diverged": r["diverged"]} for r in results]


def study(_blobs, split_transfers: bool = False) -> dict:
    """Every case of the golden file (`_blobs`: conftest's toy image maker); `split_transfers` trains each
    transfer in a group of its own."""
    arch = dataclasses.replace(SMOKE.arch, dropout=0.5)
    task = Task(_blobs(256, 4, 16, 0), _blobs(64, 4, 16, 1), 4)
    out = {}
    for name, recipe in [("fp32", SMOKE.recipe), ("cpu_bf16", dataclasses.replace(SMOKE.recipe, cpu_bf16=True)),
                         ("warmup_smooth", dataclasses.replace(SMOKE.recipe, warmup=0.1, label_smoothing=0.1))]:
        config = canonical(training_config(dataclasses.replace(SMOKE, arch=arch, recipe=recipe)))
        results, parents = [], {}
        for half in "AB":
            base = RunSpec("random:0", half, "base", 0, 0, config)
            group = Group.build([base], task, {}, arch=arch, recipe=recipe)
            results += group.run()
            parents[base.key] = group.members[0].net.state_dict()
        specs = [RunSpec("random:0", "B", t, n, 0, config)
                 for t, n in [("BnB", 3), ("AnB", 1), ("BnB+", 2), ("AnB+", 5), ("random", 4)]]
        batches = [[s] for s in specs] if split_transfers else [specs]
        for batch in batches:
            results += Group.build(batch, task, parents, arch=arch, recipe=recipe).run()
        out[name] = summary(results)
    recipe = dataclasses.replace(SMOKE.recipe, lr=1e6)
    config = canonical(training_config(dataclasses.replace(SMOKE, recipe=recipe)))
    diverging = RunSpec("random:0", "B", "base", 0, 0, config)
    out["diverging"] = summary(Group.build([diverging], task, {}, arch=SMOKE.arch, recipe=recipe).run())
    return out


@pytest.mark.smoke
def test_training_gives_the_numbers_the_earlier_code_gave(make_blobs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the golden values were written with one thread
    try:
        assert study(make_blobs) == json.loads(GOLDEN.read_text())
    finally:
        torch.set_num_threads(threads)


@pytest.mark.smoke
def test_each_transfer_in_a_group_of_its_own_gives_the_same_numbers(make_blobs):
    """Splitting a group into sub-groups (repro.runs.groups with several GPUs) changes no number."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert study(make_blobs, split_transfers=True) == json.loads(GOLDEN.read_text())
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    import importlib.util

    root_conftest = importlib.util.spec_from_file_location("root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(root_conftest)
    root_conftest.loader.exec_module(module)
    torch.set_num_threads(1)
    Path(sys.argv[1]).write_text(json.dumps(study(module._blobs), indent=0))
