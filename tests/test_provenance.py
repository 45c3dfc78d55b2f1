"""A record's `git_dirty` says whether the code that trained differs from its commit: the study folder's own
records, written into a tracked folder by the study itself, are not a change to that code."""
import subprocess

import pytest

from repro.provenance import has_changes

pytestmark = pytest.mark.smoke


def _git(top, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=top, check=True,
                   capture_output=True)


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "repro").mkdir()
    (tmp_path / "repro" / "train.py").write_text("lr = 0.02\n")
    (tmp_path / "study" / "replicates").mkdir(parents=True)
    (tmp_path / "study" / "replicates" / "r5.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def test_a_clean_checkout_has_no_changes(checkout):
    assert not has_changes(checkout)


def test_a_record_the_study_wrote_is_not_a_change_to_the_code(checkout):
    (checkout / "study" / "replicates" / "r5.json").write_text('{"runs": []}\n')
    assert has_changes(checkout)
    assert not has_changes(checkout, outputs=[checkout / "study"])


def test_a_change_to_the_code_still_counts_beside_the_study_folder(checkout):
    (checkout / "study" / "replicates" / "r5.json").write_text('{"runs": []}\n')
    (checkout / "repro" / "train.py").write_text("lr = 0.05\n")
    assert has_changes(checkout, outputs=[checkout / "study"])


def test_an_output_folder_outside_the_checkout_is_ignored(checkout, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert not has_changes(checkout, outputs=[elsewhere])


def test_the_checkout_itself_is_never_an_output_folder(checkout):
    (checkout / "repro" / "train.py").write_text("lr = 0.05\n")
    assert has_changes(checkout, outputs=[checkout])
