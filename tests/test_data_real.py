"""The real Tiny ImageNet, found through REPRO_DATA (cpu tier: it decodes 110k images once, then uses the cache)."""
import os

import pytest
import torch

from repro.data import load_dataset

pytestmark = pytest.mark.cpu


def test_real_tiny_imagenet_has_200_classes_100k_train_10k_val_and_72_natural():
    assert os.environ.get("REPRO_DATA"), (
        "set REPRO_DATA to the folder holding tiny-imagenet-200/ (extracted, or its shards train-*.tar.gz, "
        "val-and-meta.tar.gz and SHA256SUMS), e.g. REPRO_DATA=../shared/data from the repository root")
    torch.set_num_threads(1)
    data = load_dataset("tiny-imagenet", image_size=32, progress=False)
    assert len(data.classes) == 200
    assert (len(data.train), len(data.val)) == (100_000, 10_000)
    assert data.train.labels.bincount().tolist() == [500] * 200
    assert data.val.labels.bincount().tolist() == [50] * 200
    assert sum(data.natural) == 72
    assert data.train.images.shape[1:] == (3, 32, 32) and data.train.images.dtype == torch.uint8
