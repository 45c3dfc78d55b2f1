"""A dataset of one's own whose classes are not WordNet ids (fixtures/tiny-folder: 8 classes named
synthetic-000..007): the random-split claims run and are judged; the natural/man-made ones are inconclusive and
say how to supply the split (`--natman FILE`), and with the file they are planned and trained."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from repro.cli import main
from repro.data.splits import NO_NATMAN, natural_from_names, read_natman_file
from tests.test_reliability import environment

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "fixtures" / "tiny-folder"
NATMAN_CLAIMS = ("distance_penalty", "random_features")
RANDOM_CLAIMS = ("early_layer_generality", "coadaptation_dip", "finetune_boost")
SMALL = ["replicates=1", "layers=1", "finetune_layers=1", "natman_layers=1", "random_layers=1"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))


def options(tmp_path, *extra) -> list[str]:
    return ["--profile", "smoke", "--dataset", f"folder:{FOLDER}", "--store", str(tmp_path / "store"), "--quiet",
            *[a for s in SMALL for a in ("--set", s)], *extra]


def natman_file(tmp_path, text="synthetic-000\nsynthetic-001\nsynthetic-002\nsynthetic-003\n") -> str:
    path = tmp_path / "natural.txt"
    path.write_text(text)
    return str(path)


def test_a_natman_file_names_the_natural_classes_in_one_or_two_columns(tmp_path):
    assert read_natman_file(natman_file(tmp_path, "# natural ones\ncat\ndog  # pets\n\n")) == ("cat", "dog")
    assert read_natman_file(natman_file(tmp_path, "cat natural\ncar man-made\ndog,natural\n")) == ("cat", "dog")
    assert natural_from_names(["car", "cat", "dog"], ("cat", "dog")) == [False, True, True]
    with pytest.raises(ValueError, match="line 2: 'car vehicle' is not a class name"):
        read_natman_file(natman_file(tmp_path, "cat natural\ncar vehicle\n"))
    with pytest.raises(ValueError, match="does not have \\(bird\\)"):
        natural_from_names(["car", "cat"], ("cat", "bird"))
    with pytest.raises(ValueError, match="cannot read the --natman file"):
        read_natman_file(tmp_path / "nowhere.txt")


def test_without_natural_man_made_labels_the_random_split_claims_are_judged_and_the_others_say_why_not(
        tmp_path, capsys):
    report = tmp_path / "report"
    assert main(["report", *options(tmp_path), "--report-dir", str(report)]) == 0
    doc = json.loads((report / "results.json").read_text())
    claims = {c["id"]: c for c in doc["claims"]}
    for cid in NATMAN_CLAIMS:
        assert claims[cid]["verdict"] == "inconclusive"
        assert NO_NATMAN in claims[cid]["explanation"]
    for cid in RANDOM_CLAIMS:  # judged on their runs (1 replicate: no test, but an effect)
        assert NO_NATMAN not in claims[cid]["explanation"] and "waits for" not in claims[cid]["explanation"]
    assert claims["finetune_boost"]["effect"] is not None
    assert {r["split"] for r in doc["runs"]} == {"random:0"}  # nothing natural/man-made was attempted
    assert NO_NATMAN in capsys.readouterr().out


def test_a_natman_file_supplies_the_split_and_its_runs_are_trained(tmp_path, capsys):
    natural = natman_file(tmp_path)
    assert main(["splits", "--dataset", f"folder:{FOLDER}", "--split", "natman", "--natman", natural]) == 0
    halves = json.loads(capsys.readouterr().out)
    assert halves["A"] == [0, 1, 2, 3] and halves["B_classes"] == [f"synthetic-00{i}" for i in range(4, 8)]
    assert main(["run", *options(tmp_path, "--natman", natural, "--claims", "random_features")]) == 0
    assert capsys.readouterr().out.startswith("repro: 6 trained,")  # 2 bases, AnB and random at n = 1, both ways
    assert main(["plan", *options(tmp_path, "--natman", natural, "--claims", "random_features"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["to_train"] == 0


def test_a_natman_file_naming_a_class_the_dataset_lacks_is_refused_before_training(tmp_path, capsys):
    natural = natman_file(tmp_path, "synthetic-000\nairplane\n")
    assert main(["run", *options(tmp_path, "--natman", natural)]) == 2
    assert "airplane" in capsys.readouterr().err
    assert not list((tmp_path / "store" / "runs").glob("*"))


def test_the_pytest_plugin_takes_natman_too(tmp_path):
    (tmp_path / "test_natman_option.py").write_text(
        "from repro.pytest_plugin import study_session\n\n\n"
        "def test_natman(request):\n"
        "    print('NATURAL', ','.join(study_session(request.config).profile.natural_classes))\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "test_natman_option.py",
                             "--repro-natman", natman_file(tmp_path, "cat\ndog\n")], cwd=tmp_path,
                            env=environment(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NATURAL cat,dog" in result.stdout
