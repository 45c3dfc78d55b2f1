"""Shared fixtures, and the `--gpus N` of the documented `pytest claims/ -m full --gpus 8`. The pytest plugin
itself (options, markers, `study`, `record_verdict`, the report) is repro.pytest_plugin, registered through the
`pytest11` entry point when the suite is installed."""
import pytest
import torch

from repro.data.base import ImageSet
from repro.profiles import SMOKE
from repro.pytest_plugin import add_gpus_option
from repro.train import Task


def pytest_addoption(parser):
    add_gpus_option(parser)  # --gpus N = --repro-gpus N, unless another plugin owns --gpus


def _blobs(n: int, classes: int, size: int, seed: int) -> ImageSet:
    """Images whose class is a coloured square at a class-specific place, on noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = (torch.rand(n, 3, size, size, generator=g) * 128).to(torch.uint8)
    for c in range(classes):
        y, x = divmod(c, 2)
        images[labels == c, c % 3, 4 * y:4 * y + 6, 4 * x:4 * x + 6] = 255
    return ImageSet(labels=labels, image_size=size, images=images)


@pytest.fixture(scope="session")
def make_blobs():
    """The toy image maker, for tests that need a task of another size."""
    return _blobs


@pytest.fixture
def tiny_task() -> Task:
    """A 4-class task that the smoke network learns in a few iterations."""
    return Task(_blobs(256, 4, SMOKE.image_size, 0), _blobs(64, 4, SMOKE.image_size, 1), 4)


@pytest.fixture
def store(tmp_path):
    from repro.store import Store

    return Store(tmp_path / "store")
