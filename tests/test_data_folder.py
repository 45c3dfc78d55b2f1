"""A user's own dataset in torchvision's ImageFolder layout."""
import pytest
import torch

import repro.data.cache
from repro.data import DataError, dataset_classes, load_dataset
from tests.data_fixtures import WNIDS, jpeg_bytes, make_image_folder, write

pytestmark = pytest.mark.smoke


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))


def load(root, **kwargs):
    return load_dataset(f"folder:{root}", image_size=16, progress=False, **kwargs)


def test_classes_are_the_sorted_folder_names(tmp_path):
    make_image_folder(tmp_path / "pets", ["dog", "cat", "axolotl"], per_class=3)
    write(tmp_path / "pets" / "train" / "cat" / "notes.txt", "not an image")
    data = load(tmp_path / "pets")
    assert data.classes == ["axolotl", "cat", "dog"]
    assert data.natural is None  # not ILSVRC WordNet ids: no natural/man-made labels
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert data.val.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.train.images.shape == (9, 3, 16, 16) and data.train.images.dtype == torch.uint8
    assert dataset_classes(f"folder:{tmp_path / 'pets'}") == (["axolotl", "cat", "dog"], None)


def test_wnid_class_folders_inherit_the_natural_man_made_split(tmp_path):
    make_image_folder(tmp_path / "sub", WNIDS, per_class=1)
    data = load(tmp_path / "sub")
    assert data.classes == sorted(WNIDS)
    assert data.natural == [True, True, False]  # n01440764, n01443537 natural; n04552348 man-made


def test_non_square_greyscale_png_is_centre_cropped_to_rgb(tmp_path):
    from PIL import Image

    make_image_folder(tmp_path / "d", ["a", "b"], per_class=1)
    wide = Image.new("L", (40, 20), color=0)
    wide.paste(255, (10, 0, 30, 20))  # a white centre square between black side bands
    wide.save(tmp_path / "d" / "train" / "a" / "wide.png")
    data = load(tmp_path / "d")
    image = data.train.images[1]  # a/img_0.jpg, then a/wide.png
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    # the crop keeps the white centre square (a squashed resize would keep the black bands, mean ~128);
    # only the outermost columns blend a little with the bands through the antialiasing filter
    assert image[:, :, 1:-1].min() >= 250 and image.float().mean() > 245


def test_cache_reuse_and_invalidation(tmp_path, monkeypatch):
    make_image_folder(tmp_path / "d", ["a", "b"], per_class=2)
    first = load(tmp_path / "d")
    write(tmp_path / "d" / "train" / "b" / "img_9.jpg", jpeg_bytes(77))
    second = load(tmp_path / "d")  # a new file: decoded again
    assert len(second.train) == 5 and second.info["cache"] != first.info["cache"]

    def fail(*args, **kwargs):
        raise AssertionError("an image was decoded")
    monkeypatch.setattr(repro.data.cache, "decode_image", fail)
    assert torch.equal(load(tmp_path / "d").train.images, second.train.images)


def test_corrupt_image_is_an_error_naming_the_file(tmp_path):
    make_image_folder(tmp_path / "d", ["a", "b"], per_class=2)
    bad = write(tmp_path / "d" / "val" / "b" / "img_1.jpg", b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=rf"cannot decode image {bad}"):
        load(tmp_path / "d")


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "val" / "b").rename(root / "val" / "c"), r"train/ and val/ have different classes"),
    (lambda root: [p.unlink() for p in (root / "train" / "a").iterdir()], r"no images in class folders \['a'\]"),
    (lambda root: (root / "val").rename(root / "validation"), r"no val/ folder"),
])
def test_wrong_layout_names_the_path_and_the_expected_layout(tmp_path, damage, message):
    root = make_image_folder(tmp_path / "d", ["a", "b"], per_class=2)
    damage(root)
    with pytest.raises(DataError, match=message) as error:
        load(root)
    assert str(root) in str(error.value) and "ImageFolder layout" in str(error.value)


def test_missing_folder_is_explained(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*ImageFolder layout"):
        load(tmp_path / "nowhere")
