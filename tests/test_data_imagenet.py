"""ILSVRC-2012 in class folders: classes in synset order, images decoded on demand."""
import pytest
import torch
from PIL import Image

from repro.data import DataError, dataset_classes, load_dataset
from repro.data.base import ilsvrc_synsets
from tests.data_fixtures import jpeg_bytes, write

pytestmark = pytest.mark.smoke

# ILSVRC class indices 0, 1 and 895, written in an order that is not the synset order
WNIDS = ["n04552348", "n01443537", "n01440764"]


def make_imagenet(root, per_class=3):
    for c, wnid in enumerate(WNIDS):
        for i in range(per_class):
            write(root / "train" / wnid / f"{wnid}_{i}.JPEG", jpeg_bytes(10 * c + i))
        write(root / "val" / wnid / f"ILSVRC2012_val_{c:08d}.JPEG", jpeg_bytes(500 + c))
    return root


def test_classes_follow_the_synset_order_and_images_stay_on_disk(tmp_path):
    make_imagenet(tmp_path / "imagenet")
    data = load_dataset("imagenet", root=str(tmp_path), image_size=24, progress=False)
    synsets = ilsvrc_synsets()
    assert data.classes == sorted(WNIDS, key=synsets.index) == ["n01440764", "n01443537", "n04552348"]
    assert data.natural == [True, True, False]
    assert data.train.images is None and len(data.train.files) == 9
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.train.files[0].endswith("n01440764/n01440764_0.JPEG")
    batch = data.train.get(torch.tensor([0, 8]))
    assert batch.shape == (2, 3, 24, 24) and batch.dtype == torch.uint8
    assert dataset_classes("imagenet", str(tmp_path)) == (data.classes, [True, True, False])


def test_decode_resizes_the_shorter_side_and_crops_the_centre(tmp_path):
    make_imagenet(tmp_path)
    tall = Image.new("RGB", (30, 90), color=(0, 0, 255))
    tall.paste((255, 0, 0), (0, 30, 30, 60))  # the middle third is red
    tall.save(tmp_path / "train" / WNIDS[0] / "zz_tall.JPEG", quality=98)
    data = load_dataset("imagenet", root=str(tmp_path), image_size=12, train_per_class=0, progress=False)
    image = data.train.get(torch.tensor([len(data.train) - 1]))[0].int()
    assert image.shape == (3, 12, 12)
    assert (image[0] > 200).all() and (image[2] < 60).all()  # only the red centre is left


def test_subsets_and_per_class_limits_keep_files(tmp_path):
    make_imagenet(tmp_path)
    data = load_dataset("imagenet", root=str(tmp_path), image_size=8, train_per_class=2, progress=False)
    assert data.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    half = data.train.subset([2])
    assert half.labels.tolist() == [0, 0] and all("n04552348" in f for f in half.files)
    assert half.get(torch.tensor([1])).shape == (1, 3, 8, 8)


def test_a_class_missing_from_val_is_an_error(tmp_path):
    make_imagenet(tmp_path)
    for path in (tmp_path / "val" / WNIDS[1]).iterdir():
        path.unlink()
    (tmp_path / "val" / WNIDS[1]).rmdir()
    with pytest.raises(DataError, match=r"classes missing from train/ or val/ .*n01443537"):
        load_dataset("imagenet", root=str(tmp_path), image_size=8, progress=False)


def test_flat_validation_folder_is_explained(tmp_path):
    make_imagenet(tmp_path)
    write(tmp_path / "val" / "ILSVRC2012_val_00000001.JPEG", jpeg_bytes(1))
    with pytest.raises(DataError, match=r"holds images directly .*class folders.*valprep"):
        load_dataset("imagenet", root=str(tmp_path), image_size=8, progress=False)


def test_folders_that_are_not_wnids_are_an_error(tmp_path):
    make_imagenet(tmp_path)
    write(tmp_path / "train" / "cats" / "a.JPEG", jpeg_bytes(1))
    with pytest.raises(DataError, match=r"\['cats'\] are not ILSVRC-2012 WordNet ids"):
        load_dataset("imagenet", root=str(tmp_path), image_size=8, progress=False)


def test_missing_dataset_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_DATA", raising=False)
    with pytest.raises(DataError, match=r"not found in .*train/<wnid>.*image-net\.org"):
        load_dataset("imagenet", root=str(tmp_path), image_size=8, progress=False)
    with pytest.raises(DataError, match=r"REPRO_DATA"):
        load_dataset("imagenet", image_size=8, progress=False)
