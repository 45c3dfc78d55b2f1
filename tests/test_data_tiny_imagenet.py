"""Tiny ImageNet from an extracted folder, from tar shards and from the official zip, on tiny copies made
here, and its natural/man-made labels. The real data is tested in test_data_real.py (cpu tier)."""
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

import repro.data.cache
import repro.data.tiny_imagenet
from repro.data import DataError, dataset_classes, load_dataset
from repro.data.base import natural_flags
from tests.data_fixtures import WNIDS, jpeg_bytes, make_shards, make_tiny_imagenet_tree, write, write_sums

pytestmark = pytest.mark.smoke


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REPRO_DATA", raising=False)


def load(root, size=32, **kwargs):
    return load_dataset("tiny-imagenet", root=str(root), image_size=size, progress=False, **kwargs)


def forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("an image was decoded")
    monkeypatch.setattr(repro.data.cache, "decode_image", fail)


def test_tiny_imagenet_wnids_are_72_natural_and_128_man_made():
    wnids = (Path(__file__).parent / "tiny_imagenet_wnids.txt").read_text().split()
    natural = natural_flags(wnids)
    assert len(wnids) == 200 and natural is not None
    assert (sum(natural), len(natural) - sum(natural)) == (72, 128)


def test_extracted_tree_is_loaded_in_wnids_order_with_greyscale_as_rgb(tmp_path):
    make_tiny_imagenet_tree(tmp_path / "data")
    for root in (tmp_path / "data", tmp_path / "data" / "tiny-imagenet-200"):  # the parent, or the tree itself
        data = load(root)
        assert data.classes == WNIDS
        assert data.natural == [True, True, False]
        assert data.train.images.shape == (9, 3, 32, 32) and data.train.images.dtype == torch.uint8
        assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert data.val.labels.tolist() == [0, 0, 1, 1, 2, 2]
    grey = data.train.images[6]  # first image of the last class was saved as a greyscale JPEG
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert not torch.equal(data.train.images[0][0], data.train.images[0][1])


def test_full_size_images_keep_their_pixels(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path)
    data = load(tmp_path, size=64)
    from PIL import Image
    import numpy as np

    with Image.open(tree / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG") as image:
        expected = torch.from_numpy(np.asarray(image.convert("RGB")).transpose(2, 0, 1).copy())
    assert torch.equal(data.train.images[0], expected)


def test_shards_give_the_same_images_as_the_extracted_tree(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path / "tree")
    make_shards(tree, tmp_path / "shards")
    from_tree, from_shards = load(tmp_path / "tree"), load(tmp_path / "shards")
    assert from_shards.info["format"] == "shards"
    assert from_shards.classes == from_tree.classes
    assert torch.equal(from_shards.train.images, from_tree.train.images)
    assert torch.equal(from_shards.val.images, from_tree.val.images)
    assert torch.equal(from_shards.val.labels, from_tree.val.labels)


def test_data_is_found_through_repro_data(tmp_path, monkeypatch):
    tree = make_tiny_imagenet_tree(tmp_path / "data")
    make_shards(tree, tmp_path / "shared" / "tiny-imagenet-200")
    monkeypatch.setenv("REPRO_DATA", str(tmp_path / "shared"))
    data = load_dataset("tiny-imagenet", image_size=16, progress=False)
    assert data.info["source"] == str(tmp_path / "shared" / "tiny-imagenet-200")
    assert len(data.train) == 9


def test_first_k_images_per_class_in_sorted_file_name_order(tmp_path):
    make_tiny_imagenet_tree(tmp_path, train_per_class=3, val_per_class=2)
    full = load(tmp_path)
    trimmed = load(tmp_path, train_per_class=2, val_per_class=1)
    assert trimmed.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(trimmed.train.images, full.train.images[[0, 1, 3, 4, 6, 7]])
    assert torch.equal(trimmed.val.images, full.val.images[[0, 2, 4]])


def test_checksum_mismatch_names_the_archive(tmp_path):
    shards = make_shards(make_tiny_imagenet_tree(tmp_path / "tree"), tmp_path / "shards")
    with open(shards / "train-1.tar.gz", "ab") as f:
        f.write(b"damage")
    with pytest.raises(DataError, match=r"checksum mismatch for .*train-1\.tar\.gz.*download it again"):
        load(shards)


def test_a_corrupt_jpeg_is_an_error_naming_the_file(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path)
    bad = tree / "train" / WNIDS[1] / "images" / f"{WNIDS[1]}_2.JPEG"
    bad.write_bytes(jpeg_bytes(0)[:200])  # truncated
    with pytest.raises(DataError, match=rf"cannot decode image .*{bad.name}.*corrupt.*extract.*again"):
        load(tmp_path)


def test_a_corrupt_jpeg_inside_a_shard_names_archive_and_member(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path / "tree")
    (tree / "val" / "images" / "val_3.JPEG").write_bytes(b"not a jpeg at all")
    shards = make_shards(tree, tmp_path / "shards")
    with pytest.raises(DataError, match=r"val-and-meta\.tar\.gz:tiny-imagenet-200/val/images/val_3\.JPEG"):
        load(shards)


@pytest.mark.parametrize("damage, message", [
    (lambda tree: (tree / "wnids.txt").unlink(), r"no wnids\.txt"),
    (lambda tree: (tree / "val" / "val_annotations.txt").unlink(), r"no val/val_annotations\.txt"),
    (lambda tree: (tree / "train" / WNIDS[2]).rename(tree / "train" / "n99999999"),
     r"class folders of train/ do not match wnids\.txt"),
    (lambda tree: write(tree / "val" / "val_annotations.txt", "val_0.JPEG\tn01443537\t0\t0\t1\t1\n"),
     r"validation images have no known class"),
])
def test_a_wrong_layout_names_the_path_and_the_expected_layout(tmp_path, damage, message):
    tree = make_tiny_imagenet_tree(tmp_path)
    damage(tree)
    with pytest.raises(DataError, match=message) as error:
        load(tmp_path)
    assert str(tree) in str(error.value) and "official Tiny ImageNet layout" in str(error.value)


def _add_member(archive: Path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    import io

    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink"])
def test_unsafe_archive_members_are_refused(tmp_path, kind):
    shards = make_shards(make_tiny_imagenet_tree(tmp_path / "tree"), tmp_path / "shards", train_shards=1)
    # the absolute member points into tmp_path, so the check below would see it had it been extracted
    member = tarfile.TarInfo({"traversal": "tiny-imagenet-200/../../evil", "absolute": str(tmp_path / "evil"),
                              "symlink": "tiny-imagenet-200/train/link"}[kind])
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    else:
        member.size = 4
    _add_member(shards / "train-9.tar.gz", member, b"evil" if kind != "symlink" else b"")
    write_sums(shards)
    with pytest.raises(DataError, match="refusing unsafe archive member"):
        load(shards)
    assert not (tmp_path / "evil").exists()


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    make_tiny_imagenet_tree(tmp_path)
    first = load(tmp_path)
    forbid_decoding(monkeypatch)
    second = load(tmp_path)
    assert second.info["cache"] == first.info["cache"]
    assert torch.equal(second.train.images, first.train.images)


def test_a_changed_source_is_decoded_again(tmp_path, monkeypatch):
    tree = make_tiny_imagenet_tree(tmp_path)
    first = load(tmp_path)
    image = tree / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG"
    image.write_bytes(jpeg_bytes(999))
    os.utime(image, ns=(1, 1))
    second = load(tmp_path)
    assert second.info["cache"] != first.info["cache"]
    assert not torch.equal(second.train.images[1], first.train.images[1])
    assert torch.equal(second.train.images[0], first.train.images[0])
    assert load(tmp_path, size=16).info["cache"] != second.info["cache"]  # the size is part of the key too


def test_shards_are_keyed_by_their_checksums_not_their_file_times(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path / "tree")
    shards = make_shards(tree, tmp_path / "shards")
    first = load(shards)
    for archive in shards.iterdir():  # the same files copied or mounted again: new modification times
        os.utime(archive, ns=(1, 1))
    assert load(shards).info["cache"] == first.info["cache"]
    (tree / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_1.JPEG").write_bytes(jpeg_bytes(999))
    make_shards(tree, shards)  # a shard with new content and its new checksum
    assert load(shards).info["cache"] != first.info["cache"]


def _sigterm_handler(_):
    import signal

    return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_decoding_workers_end_on_sigterm_whatever_handler_the_study_set():
    """A study asks its training to stop on SIGTERM (a handler, not an exit); forked decoders inherited it, and
    Pool.terminate() then waited for ever on one of them."""
    import signal

    from repro.data.cache import _pool

    previous = signal.signal(signal.SIGTERM, lambda *args: None)
    try:
        with _pool(2) as pool:
            assert pool.map(_sigterm_handler, [0, 1]) == [True, True]
    finally:
        signal.signal(signal.SIGTERM, previous)



SIGTERM_BEFORE_INIT = """
import signal, time
import repro.data.cache as cache

signal.signal(signal.SIGTERM, lambda *args: None)  # a study's handler: it only asks training to stop
init = cache._decoder_init
cache._decoder_init = lambda: (time.sleep(1.0), init())  # SIGTERM comes while the worker starts up
pool = cache._pool(2)
pool.terminate()
print("ended")
"""


def test_a_decoding_worker_sigtermed_before_it_started_still_ends():
    """Pool.terminate() right after the pool starts (an error or a stop at a study's start) reached workers
    that had not reset the inherited handler yet; the signal was lost and terminate() waited for ever."""
    done = subprocess.run([sys.executable, "-c", SIGTERM_BEFORE_INIT], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "ended", done.stderr

def test_parallel_decoding_gives_the_same_bytes(tmp_path, monkeypatch):
    make_tiny_imagenet_tree(tmp_path, train_per_class=6)
    serial = load(tmp_path)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache2"))
    monkeypatch.setattr(repro.data.cache, "PARALLEL_ABOVE", 0)
    monkeypatch.setattr(repro.data.cache, "CHUNK", 4)
    monkeypatch.setattr(repro.data.cache, "usable_cores", lambda: 2)
    parallel = load(tmp_path)
    assert torch.equal(parallel.train.images, serial.train.images)


def test_the_official_zip_is_extracted_and_loaded(tmp_path):
    tree = make_tiny_imagenet_tree(tmp_path / "made")
    (tmp_path / "data").mkdir()
    with zipfile.ZipFile(tmp_path / "data" / "tiny-imagenet-200.zip", "w") as archive:
        for path in sorted(tree.rglob("*")):
            archive.write(path, path.relative_to(tmp_path / "made"))
    data = load(tmp_path / "data")
    assert (tmp_path / "data" / "tiny-imagenet-200" / "wnids.txt").exists()
    assert data.classes == WNIDS and len(data.val) == 6


def no_network(folder):
    raise OSError("network unreachable")


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "empty"])
def test_a_data_root_without_the_data_is_refused_and_nothing_is_downloaded_into_it(tmp_path, monkeypatch, exists):
    def download(folder):
        raise AssertionError(f"a download into {folder}")
    monkeypatch.setattr(repro.data.tiny_imagenet, "download_zip", download)
    root = tmp_path / "mine"
    if exists:
        root.mkdir()
    with pytest.raises(DataError) as error:
        load(root)
    message = str(error.value)
    assert str(root) in message and "REPRO_DATA" in message
    assert ("does not exist" in message) != exists and ("wnids.txt" in message) == exists
    assert list(tmp_path.iterdir()) == ([root] if exists else [])  # nothing made, nothing extracted


def test_without_a_data_root_it_is_downloaded_into_the_cache_or_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(repro.data.tiny_imagenet, "download_zip", no_network)
    with pytest.raises(DataError) as error:
        load_dataset("tiny-imagenet", image_size=32, progress=False)
    message = str(error.value)
    assert str(tmp_path / "cache" / "data") in message and "network unreachable" in message
    assert "wnids.txt" in message and "tiny-imagenet-200.zip" in message and "REPRO_DATA" in message


def test_classes_come_from_wnids_without_decoding(tmp_path, monkeypatch):
    tree = make_tiny_imagenet_tree(tmp_path / "tree")
    make_shards(tree, tmp_path / "shards")
    forbid_decoding(monkeypatch)
    for root in (tmp_path / "tree", tmp_path / "shards"):
        assert dataset_classes("tiny-imagenet", str(root)) == (WNIDS, [True, True, False])



def test_a_damaged_cache_file_is_rebuilt_with_a_warning(tmp_path):
    make_tiny_imagenet_tree(tmp_path)
    first = load(tmp_path)
    expected = first.train.images.clone()
    cache_file = Path(first.info["cache"])
    damaged = cache_file.read_bytes()[:100]
    cache_file.unlink()  # a new file: the first load still maps the old one
    cache_file.write_bytes(damaged)
    with pytest.warns(UserWarning, match="unreadable"):
        second = load(tmp_path)
    assert torch.equal(second.train.images, expected)
    assert not list(cache_file.parent.glob("*.tmp*"))  # written through a temporary file, then renamed
