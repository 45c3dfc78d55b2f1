"""The class splits: the original study's random halves and the natural/man-made halves."""
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from repro.data.base import Dataset, ImageSet, natural_flags
from repro.data.splits import split_classes, task_data
from tests.data_fixtures import WNIDS

pytestmark = pytest.mark.smoke

sizes = st.integers(min_value=2, max_value=300)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=60, deadline=None)
@given(num_classes=sizes, seed=seeds)
def test_random_halves_are_disjoint_covering_and_sized(num_classes, seed):
    halves = split_classes(f"random:{seed}", num_classes)
    assert len(halves["A"]) == num_classes // 2
    assert len(halves["B"]) == num_classes - num_classes // 2
    assert not set(halves["A"]) & set(halves["B"])
    assert sorted(halves["A"] + halves["B"]) == list(range(num_classes))
    assert halves["A"] == sorted(halves["A"]) and halves["B"] == sorted(halves["B"])


@settings(max_examples=30, deadline=None)
@given(num_classes=sizes, seed=seeds)
def test_random_halves_are_deterministic_and_leave_numpy_global_state_alone(num_classes, seed):
    np.random.seed(1234)
    before = np.random.random()
    np.random.seed(1234)
    first = split_classes(f"random:{seed}", num_classes)
    assert np.random.random() == before
    assert split_classes(f"random:{seed}", num_classes) == first


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_halves_equal_the_original_global_generator_draws(seed):
    # the original code: numpy.random.seed([s]); sorted(numpy.random.choice(numpy.arange(1000), 500, replace=False))
    state = np.random.get_state()
    try:
        np.random.seed([seed])
        original = sorted(int(c) for c in np.random.choice(np.arange(1000), 500, replace=False))
    finally:
        np.random.set_state(state)
    assert split_classes(f"random:{seed}", 1000)["A"] == original


def test_split_zero_of_ilsvrc_is_pinned():
    # regression values, computed once with numpy's legacy generator: must never change
    halves = split_classes("random:0", 1000)
    assert halves["A"][:12] == [0, 1, 2, 5, 9, 10, 15, 16, 17, 19, 20, 22]
    assert halves["A"][-3:] == [996, 997, 998]
    assert halves["B"][:6] == [3, 4, 6, 7, 8, 11]


def test_natman_halves_follow_the_natural_flags():
    natural = natural_flags(WNIDS)
    assert natural == [True, True, False]
    assert split_classes("natman", 3, natural) == {"A": [0, 1], "B": [2]}


def test_original_natural_and_man_made_index_files_split_ilsvrc_449_551():
    from repro.data.base import ilsvrc_synsets

    halves = split_classes("natman", 1000, natural_flags(ilsvrc_synsets()))
    assert (len(halves["A"]), len(halves["B"])) == (449, 551)


def test_natman_without_natural_labels_says_what_to_do():
    with pytest.raises(ValueError, match="natman split needs natural/man-made labels"):
        split_classes("natman", 10, None)


@pytest.mark.parametrize("bad", ["random", "random:", "random:-1", "random:x", "natural", ""])
def test_bad_split_names_the_valid_forms(bad):
    with pytest.raises(ValueError, match="random:<seed>"):
        split_classes(bad, 10)


def _toy_dataset(num_classes: int, per_class: int = 2) -> Dataset:
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    # every image holds its original class index, so renumbering can be checked against the pixels
    images = labels.to(torch.uint8)[:, None, None, None].expand(-1, 3, 2, 2).clone()
    part = ImageSet(labels=labels, image_size=2, images=images)
    return Dataset(name="toy", classes=[str(c) for c in range(num_classes)], train=part, val=part,
                   natural=[c % 3 == 0 for c in range(num_classes)])  # class 0 natural, class 1 not


@settings(max_examples=40, deadline=None)
@given(num_classes=st.integers(min_value=2, max_value=60), seed=seeds, half=st.sampled_from(["A", "B"]),
       natman=st.booleans())
def test_task_data_renumbers_a_half_in_increasing_original_index(num_classes, seed, half, natman):
    dataset = _toy_dataset(num_classes)
    split = "natman" if natman else f"random:{seed}"
    original = split_classes(split, num_classes, dataset.natural)[half]
    train, val, count = task_data(dataset, split, half)
    assert count == len(original)
    for part in (train, val):
        assert sorted(set(part.labels.tolist())) == list(range(count))
        # the image of new label j came from original class original[j]
        assert part.images[:, 0, 0, 0].tolist() == [original[j] for j in part.labels.tolist()]


def test_task_data_rejects_a_bad_half():
    with pytest.raises(ValueError, match="'A' or 'B'"):
        task_data(_toy_dataset(4), "random:0", "C")


# ---- the halves without the images (repro splits) ---------------------------------------------------------

@pytest.mark.parametrize("dataset, split, sizes", [("imagenet", "random:0", (500, 500)),
                                                   ("imagenet", "natman", (449, 551)),
                                                   ("tiny-imagenet", "random:3", (100, 100)),
                                                   ("tiny-imagenet", "natman", (72, 128))])
def test_repro_splits_prints_the_halves_from_the_shipped_class_lists_without_data(dataset, split, sizes, tmp_path,
                                                                                  monkeypatch, capsys):
    import json

    from repro.cli import main
    from repro.data.base import ilsvrc_synsets

    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "no-data-here"))
    assert main(["splits", "--dataset", dataset, "--split", split]) == 0
    halves = json.loads(capsys.readouterr().out)
    assert (len(halves["A"]), len(halves["B"])) == sizes
    tiny = (Path(__file__).parent / "tiny_imagenet_wnids.txt").read_text().split()  # wnids.txt of the real data
    classes = ilsvrc_synsets() if dataset == "imagenet" else tiny
    for half in "AB":
        assert halves[f"{half}_classes"] == [classes[i] for i in halves[half]]  # WordNet ids of the indices
    if (dataset, split) == ("imagenet", "random:0"):  # the paper's split 0: numpy's legacy draw of 500 of 1000
        assert halves["A"] == split_classes("random:0", 1000)["A"]


# ---- the split type: one parser for specs, halves and tables ---------------------------------------------
@pytest.mark.parametrize("text", ["random:0", "random:4294967295", "natman"])
def test_a_split_round_trips_through_its_name(text):
    from repro.split_names import Split

    assert str(Split.parse(text)) == text
    assert Split.parse(text).is_random == text.startswith("random:")


@pytest.mark.parametrize("text", ["random:x", "random:-1", "random:", "random:4294967296", "random:٣", "all", "",
                                  "natural"])
def test_every_reader_of_a_split_refuses_the_same_names(text):
    """A run spec, the halves of a dataset and a table of results accept one set of names ('all' in tables only:
    the original study's networks of all classes)."""
    from repro.profiles import SMOKE
    from repro.results import family
    from repro.runs import RunSpec, canonical, training_config

    with pytest.raises(ValueError, match="random:<seed>"):
        RunSpec(text, "B", "base", 0, 0, canonical(training_config(SMOKE)))
    with pytest.raises(ValueError, match="random:<seed>"):
        split_classes(text, 10, [True] * 4 + [False] * 6)
    if text == "all":
        assert family(text) == "all"
    else:
        with pytest.raises(ValueError, match="random:<seed>"):
            family(text)
