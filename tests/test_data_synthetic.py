"""The synthetic dataset: deterministic, fast, learnable, with two families of classes."""
import time

import numpy as np
import pytest
import torch

from repro.data import load_dataset
from repro.data.splits import split_classes
from repro.data.synthetic import make_synthetic

pytestmark = pytest.mark.smoke


def test_shapes_dtypes_and_counts():
    data = make_synthetic(num_classes=5, images_per_class=12, image_size=16, seed=0)
    assert data.train.images.shape == (60, 3, 16, 16) and data.train.images.dtype == torch.uint8
    assert data.val.images.shape == (20, 3, 16, 16)  # max(4, 12 // 5) = 4 per class
    assert data.train.labels.bincount().tolist() == [12] * 5
    assert data.val.labels.bincount().tolist() == [4] * 5
    assert len(data.classes) == 5
    assert make_synthetic(3, 50, 8).val.labels.bincount().tolist() == [10] * 3


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = make_synthetic(6, 10, 16, seed=3)
    b = make_synthetic(6, 10, 16, seed=3)
    c = make_synthetic(6, 10, 16, seed=4)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.train.images, c.train.images)


def test_does_not_touch_global_random_state():
    torch.manual_seed(0)
    np.random.seed(0)
    expected = (torch.rand(1).item(), np.random.random())
    torch.manual_seed(0)
    np.random.seed(0)
    make_synthetic(4, 4, 8, seed=1)
    assert (torch.rand(1).item(), np.random.random()) == expected


def test_first_half_of_classes_is_the_natural_family_so_natman_is_defined():
    data = make_synthetic(8, 4, 16)
    assert data.natural == [True] * 4 + [False] * 4
    assert split_classes("natman", 8, data.natural) == {"A": [0, 1, 2, 3], "B": [4, 5, 6, 7]}


def test_smoke_size_is_made_well_under_a_second():
    start = time.perf_counter()
    load_dataset("synthetic", image_size=16, num_classes=8, images_per_class=48, seed=0)
    assert time.perf_counter() - start < 1.0


def _ridge_accuracy(data) -> float:
    """Validation accuracy of a ridge-regression classifier on raw pixels."""
    x = data.train.images.flatten(1).double() / 255
    x_val = data.val.images.flatten(1).double() / 255
    mean = x.mean(0)
    x, x_val = x - mean, x_val - mean
    targets = torch.nn.functional.one_hot(data.train.labels).double()
    weights = torch.linalg.solve(x.T @ x + 10 * torch.eye(x.shape[1], dtype=torch.double), x.T @ targets)
    return ((x_val @ weights).argmax(1) == data.val.labels).double().mean().item()


def test_classes_are_learnable_well_above_chance():
    data = make_synthetic(num_classes=8, images_per_class=48, image_size=16, seed=0)
    assert _ridge_accuracy(data) > 3 / 8  # chance is 1/8


def test_the_two_families_are_told_apart_from_the_images():
    # relabel every image by its family: a linear read-out separates curved/radial from straight/grid
    data = make_synthetic(num_classes=8, images_per_class=48, image_size=16, seed=1)
    for part in (data.train, data.val):
        part.labels = (part.labels >= 4).long()
    assert _ridge_accuracy(data) > 0.75


def test_train_and_val_per_class_trim_synthetic_too():
    data = load_dataset("synthetic", image_size=8, num_classes=3, images_per_class=10, train_per_class=4,
                        val_per_class=1)
    assert data.train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert data.val.labels.tolist() == [0, 1, 2]


def test_bad_sizes_are_explained():
    with pytest.raises(ValueError, match="images_per_class"):
        load_dataset("synthetic", image_size=16, num_classes=8, images_per_class=0)
