"""The `repro` command on bad input: every mistake gets one line that names the value or path and says what
to do, exit status 2, and leaves what is already stored exactly as it was (every file's bytes, the index
included).

The commands run in-process through `repro.cli.main` (what the `repro` script calls) against one store that
holds a finished tiny plan; one test runs the real command to check the process's exit status.
"""
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import repro.data.tiny_imagenet
from repro.cli import main
from repro.runs import RunSpec
from tests.data_fixtures import make_image_folder, make_shards, make_tiny_imagenet_tree, write, write_sums

pytestmark = pytest.mark.smoke
REPO = Path(__file__).resolve().parents[1]
SETS = ["replicates=1", "recipe.epochs=1", "layers=1,7", "finetune_layers=3"]
# One worker: training in this process, where the tests' monkeypatches reach it (the default is cores // threads).
TINY = ["--profile", "smoke", "--claims", "coadaptation_dip", "--quiet", "--workers", "1",
        *[a for s in SETS for a in ("--set", s)]]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> Path:
    """A store holding a finished tiny plan (5 networks), trained here on one thread."""
    import torch

    root = tmp_path_factory.mktemp("cli") / "store"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["run", *TINY, "--store", str(root)]) == 0
    finally:
        torch.set_num_threads(threads)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every stored file's checksum (lock files aside: taking a lock creates an empty one)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "locks"}


def refused(args: list[str], store: Path, capsys) -> str:
    """Run a command that must fail; return its error line, after checking that the store is untouched."""
    before = snapshot(store)
    capsys.readouterr()
    assert main([*args, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert snapshot(store) == before
    [line] = [line for line in err.splitlines() if line.startswith("repro: error: ")]
    return line


def without(args: list[str], option: str) -> list[str]:
    i = args.index(option)
    return args[:i] + args[i + 2:]


@pytest.mark.parametrize("args, message", [
    (["--profile", "tiny"], "unknown profile 'tiny'; choose one of: smoke, cpu"),
    (without(TINY, "--claims") + ["--claims", "coadaption"], "unknown claim 'coadaption'; choose from"),
    (TINY + ["--set", "layers=0,9"], "layers must be in 1..7 (the blocks of alexnet8 that can be copied), got [0, 9]"),
    (TINY + ["--set", "layers=1,9"], "layers must be in 1..7 (the blocks of alexnet8 that can be copied), got [9]"),
    (TINY + ["--set", "recipe.learning_rate=0.1"], "unknown profile field 'recipe.learning_rate'; fields here:"),
    (TINY + ["--set", "recipe.lr=fast"], "--set recipe.lr=fast: expected a value of type float"),
    (TINY + ["--set", "recipe=fast"], "profile field 'recipe' is a group of fields: set one of them"),
    (TINY + ["--set", "lr"], "--set expects FIELD=VALUE, got 'lr'"),
    (TINY + ["--set", "recipe.batch_size=0"], "recipe.batch_size must be at least 1, got 0"),
    (TINY + ["--set", "recipe.crop=99"], "recipe.crop must be from 1 to image_size (16), got 99"),
    (TINY + ["--set", "recipe.evals=0"], "recipe.evals (validation tests per run) must be at least 1, got 0"),
    (TINY + ["--set", "arch.widths=8,16"], "arch.widths must be 6 positive widths"),
    (TINY + ["--set", "recipe.decay=cosine"], "recipe.decay must be 'step' or 'linear', got 'cosine'"),
    (TINY + ["--set", "recipe.cpu_threads=0"], "recipe.cpu_threads must be at least 1, got 0"),
    (TINY + ["--gpus", "-1"], "--gpus must be 0 or a positive number of GPUs, got -1"),
    (TINY + ["--gpus", "1", "--workers", "2"], "use either --gpus N (one worker per GPU) or --workers N"),
    (TINY + ["--workers", "0"], "--workers must be at least 1, got 0"),
    (TINY + ["--dataset", "imagenette"], "unknown dataset 'imagenette'"),
    (TINY + ["--dataset", "folder:"], "folder datasets are named folder:PATH"),
], ids=["profile", "claim", "n=0", "n=9", "field", "value", "group", "assignment", "batch", "crop", "evals",
        "widths", "decay", "threads", "gpus<0", "gpus+workers", "workers=0", "dataset", "folder"])
def test_a_bad_option_is_refused_with_a_clear_message(stored, capsys, args, message):
    assert message in refused(["run", *args], stored, capsys)


def test_more_gpus_than_this_machine_has_is_refused(stored, capsys):
    import torch

    asked = torch.cuda.device_count() + 1
    line = refused(["run", *TINY, "--gpus", str(asked)], stored, capsys)
    assert f"--gpus {asked} asks for more GPUs than are visible here" in line and "--workers N" in line


def test_an_option_argparse_cannot_read_exits_2(stored, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", *TINY, "--gpus", "two", "--store", str(stored)])
    assert exit_.value.code == 2 and "--gpus: invalid int value: 'two'" in capsys.readouterr().err


def test_an_unknown_treatment_is_refused_by_the_run_spec():
    with pytest.raises(ValueError, match="unknown treatment 'BnA'; choose one of base, BnB, BnB\\+, AnB"):
        RunSpec("random:0", "B", "BnA", 3, 0, "{}")


# ---- data that is missing or broken: found when the first network needs it ------------------------------
def test_a_missing_imagenet_folder_says_where_and_how_to_get_it(stored, tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    line = refused(["run", *TINY, "--dataset", "imagenet", "--data-root", str(missing)], stored, capsys)
    assert f"ILSVRC-2012 not found in {missing}" in line and "train/<wnid>" in line


def test_a_data_root_that_does_not_exist_is_refused_before_anything_is_downloaded(stored, tmp_path, capsys,
                                                                                monkeypatch):
    def download(folder):
        raise AssertionError(f"a download into {folder}")

    monkeypatch.setattr(repro.data.tiny_imagenet, "download_zip", download)
    missing = tmp_path / "nonexistent"
    line = refused(["run", *TINY, "--dataset", "tiny-imagenet", "--data-root", str(missing)], stored, capsys)
    assert f"the data root {missing} does not exist" in line and "REPRO_DATA" in line
    assert not missing.exists() and not (tmp_path / "cache").exists()


def test_a_folder_dataset_without_train_is_a_wrong_layout(stored, tmp_path, capsys):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=2)
    (root / "train").rename(root / "training")
    line = refused(["run", *TINY, "--dataset", f"folder:{root}"], stored, capsys)
    assert f"{root}: no train/ folder" in line and "ImageFolder layout" in line


@pytest.mark.parametrize("damage", [b"\xff\xd8\xff garbage", "truncated"], ids=["corrupt", "truncated"])
def test_a_corrupt_or_truncated_jpeg_is_named(stored, tmp_path, capsys, damage):
    root = make_image_folder(tmp_path / "pets", ["cat", "dog"], per_class=2)
    bad = root / "train" / "dog" / "img_1.jpg"
    write(bad, bad.read_bytes()[:200] if damage == "truncated" else damage)
    line = refused(["run", *TINY, "--dataset", f"folder:{root}"], stored, capsys)
    assert f"cannot decode image {bad}" in line


def test_an_archive_member_escaping_its_folder_is_refused(stored, tmp_path, capsys):
    shards = make_shards(make_tiny_imagenet_tree(tmp_path / "tree"), tmp_path / "shards", train_shards=1)
    member = tarfile.TarInfo("tiny-imagenet-200/../../evil")
    member.size = 4
    with tarfile.open(shards / "train-9.tar.gz", "w:gz") as tar:
        tar.addfile(member, io.BytesIO(b"evil"))
    write_sums(shards)
    line = refused(["run", *TINY, "--dataset", "tiny-imagenet", "--data-root", str(shards)], stored, capsys)
    assert "refusing unsafe archive member 'tiny-imagenet-200/../../evil'" in line
    assert not (tmp_path / "evil").exists()


# ---- repro splits ------------------------------------------------------------------------------------
@pytest.mark.parametrize("split", ["random:x", "random:-1", "random:", "random:4294967296", "natural", ""])
def test_a_bad_split_is_refused_with_the_forms_it_accepts(split, capsys):
    assert main(["splits", "--dataset", "synthetic", "--split", split]) == 2
    err = capsys.readouterr().err
    assert f"split {split!r}" in err and "'random:<seed>'" in err and "'natman'" in err


def test_the_real_command_exits_2_with_one_line_and_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "repro.cli", "run", "--profile", "tiny", "--store",
                           str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("repro: error: unknown profile 'tiny'; choose one of: "
                                   "smoke, cpu, cpu-quick, cpu-resnet, gpu, gpu-wide, paper, paper-fast")
    assert not (tmp_path / "store").exists()  # nothing created for a command that cannot run


# ---- what is a user error, and what is a bug -----------------------------------------------------------------
def test_a_missing_results_file_is_a_user_error(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "results.json"
    assert main(["compare", str(missing), str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"repro: error: no results file at {missing}: pass a report folder or "
                                               "its results.json")


def test_a_bug_keeps_its_traceback_instead_of_passing_for_bad_input(monkeypatch):
    import repro.cli

    def broken(args):
        raise ValueError("an internal invariant failed")  # a ValueError that no user input caused

    monkeypatch.setitem(repro.cli.COMMANDS, "status", broken)
    with pytest.raises(ValueError, match="an internal invariant failed"):
        main(["status"])


# ---- what only looks creates nothing; every command refuses what it cannot use ---------------------------------
@pytest.mark.parametrize("command", ["plan", "run", "report"])
def test_an_unknown_dataset_is_refused_by_every_command_that_plans(command, tmp_path, capsys):
    store = tmp_path / "store"
    assert main([command, "--profile", "cpu", "--dataset", "nosuch", "--store", str(store)]) == 2
    assert capsys.readouterr().err.strip() == ("repro: error: unknown dataset 'nosuch'; use 'synthetic', "
                                               "'tiny-imagenet', 'imagenet' or 'folder:PATH'")
    assert not store.exists()


def test_status_of_a_store_that_does_not_exist_is_refused_and_not_made(tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    assert main(["status", "--store", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"repro: error: no run store at {missing}: check the path (repro run "
                                               "--store PATH makes one there)")
    assert not missing.exists()


def test_status_and_plan_on_the_default_store_before_anything_is_trained_make_nothing(tmp_path, capsys,
                                                                                    monkeypatch):
    default = tmp_path / "store"
    monkeypatch.setenv("REPRO_STORE", str(default))
    assert main(["status"]) == 0
    assert capsys.readouterr().out.startswith(f"store {default}: 0 runs (nothing trained into it yet)")
    assert main(["plan", *TINY, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["to_train"] == 5
    assert not default.exists()


def test_status_says_how_far_a_started_run_is(tmp_path, capsys):
    import torch

    from repro.profiles import SMOKE
    from repro.runs import canonical, training_config
    from repro.store import Store

    spec = RunSpec("random:0", "B", "base", 0, 0, canonical(training_config(SMOKE)))
    store = Store(tmp_path / "store")
    store.save_checkpoint(spec, {"w": torch.zeros(2)}, {"iteration": 300, "total": 1000})
    store.write_progress(spec, 420, 1000)  # the note its training writes between checkpoints
    assert main(["status", "--store", str(store.root)]) == 0
    assert f"running   420/1000 {spec.key} {spec.label}" in capsys.readouterr().out
    assert main(["status", "--store", str(store.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"][0]["progress"] == [420, 1000]
    fresh = RunSpec("random:0", "A", "base", 0, 0, spec.config)
    store.write_progress(fresh, 1, 1000)  # its first iteration, minutes before its first checkpoint
    assert main(["status", "--store", str(store.root)]) == 0
    assert f"running   1/1000 {fresh.key} {fresh.label}" in capsys.readouterr().out


def test_status_calls_a_started_run_no_process_trains_stopped(tmp_path, capsys):
    """A run whose training was killed (or stopped by --stop-after) keeps its checkpoint and its 'running' row;
    once it has noted nothing for STOPPED_AFTER_SECONDS, status says it is stopped, not running."""
    import time

    import torch

    from repro.profiles import SMOKE
    from repro.runs import canonical, training_config
    from repro.store import STOPPED_AFTER_SECONDS, Store

    config = canonical(training_config(SMOKE))
    stopped, training = (RunSpec("random:0", half, "base", 0, 0, config) for half in "AB")
    store = Store(tmp_path / "store")
    for spec in (stopped, training):
        store.save_checkpoint(spec, {"w": torch.zeros(2)}, {"iteration": 300, "total": 1000})
        store.write_progress(spec, 420, 1000)
    long_ago = time.time() - STOPPED_AFTER_SECONDS - 1
    for name in ("progress.json", "checkpoint.json"):
        os.utime(store.run_dir(stopped) / name, (long_ago, long_ago))
    assert main(["status", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert f"stopped   420/1000 {stopped.key} {stopped.label}" in out
    assert f"running   420/1000 {training.key} {training.label}" in out
    assert "1 running, 1 stopped" in out and "resumes them from their checkpoints" in out
    assert main(["status", "--store", str(store.root), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"] == {"running": 1, "stopped": 1}
    assert {r["key"]: r["status"] for r in status["runs"]} == {stopped.key: "stopped", training.key: "running"}


def test_a_store_path_under_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["run", *TINY, "--store", str(tmp_path / "file" / "store")]) == 2
    assert capsys.readouterr().err.strip() == (f"repro: error: the run store {tmp_path / 'file' / 'store'} cannot be "
                                               f"made: {tmp_path / 'file'} is a file, not a folder. Choose another "
                                               "place with --store PATH or REPRO_STORE.")


@pytest.mark.parametrize("command, option", [("run", "--study-dir"), ("report", "--study-dir"),
                                             ("report", "--report-dir"), ("plan", "--study-dir")])
def test_a_study_or_report_folder_under_a_file_is_refused_before_training(tmp_path, capsys, command, option):
    (tmp_path / "file").write_text("not a folder")
    folder = tmp_path / "file" / "study"
    assert main([command, *TINY, "--store", str(tmp_path / "store"), option, str(folder)]) == 2
    what = "study" if option == "--study-dir" else "report"
    assert capsys.readouterr().err.strip() == (f"repro: error: the {what} folder {folder} cannot be made: "
                                               f"{tmp_path / 'file'} is a file, not a folder. Choose another "
                                               f"folder with {option}.")
    assert not (tmp_path / "store").exists()  # refused before anything was made


def test_a_folder_this_user_cannot_write_is_refused_where_written_and_read_where_only_read(tmp_path, capsys,
                                                                                          monkeypatch):
    import repro.files

    monkeypatch.setattr(repro.files.os, "access", lambda path, mode: False)
    study = tmp_path / "study"
    assert main(["run", *TINY, "--store", str(tmp_path / "store"), "--study-dir", str(study)]) == 2
    assert f"the study folder {study} cannot be written: {tmp_path} is not writable" in capsys.readouterr().err
    assert main(["plan", *TINY, "--store", str(tmp_path / "store"), "--study-dir", str(study)]) == 0  # reads



@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, a folder no one can make folders in")
def test_a_folder_whose_permission_bits_say_writable_is_still_refused_when_nothing_can_be_made_in_it(tmp_path,
                                                                                                   capsys):
    study = "/proc/repro-study"  # root passes os.access here, yet mkdir fails
    assert main(["run", *TINY, "--store", str(tmp_path / "store"), "--study-dir", study]) == 2
    assert f"the study folder {study} cannot be written: /proc is not writable" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()  # refused before anything was made


def test_checking_a_folder_leaves_nothing_in_it_and_a_command_that_only_reads_does_not_try(tmp_path, monkeypatch):
    import repro.files

    made = []
    mkdtemp = repro.files.tempfile.mkdtemp
    monkeypatch.setattr(repro.files.tempfile, "mkdtemp", lambda **kw: made.append(kw) or mkdtemp(**kw))
    study = tmp_path / "study"
    study.mkdir()
    assert main(["plan", *TINY, "--store", str(tmp_path / "store"), "--study-dir", str(study)]) == 0
    assert made == []
    assert repro.files.folder_problem(study) is None
    assert made and list(study.iterdir()) == []

def test_the_version_names_the_package_and_its_commit(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert re.fullmatch(r"repro \d+\.\d+\.\d+\S*( \(commit [0-9a-f]{12}(, with uncommitted changes)?\))?\n",
                        capsys.readouterr().out)


def test_a_reader_that_stops_reading_ends_the_command_quietly(tmp_path):
    """`repro status --json | head -0`: the pipe is closed before the command writes; no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        command = [sys.executable, "-m", "repro.cli", "status", "--json", "--store", str(empty_store(tmp_path))]
        done = subprocess.run(command, cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141 and done.stderr == ""


def empty_store(tmp_path: Path) -> Path:
    """An empty run store (status needs one that exists)."""
    from repro.store import Store

    return Store(tmp_path / "store").root


# ---- the exit status says whether a claim was refuted --------------------------------------------------------
def test_report_and_run_exit_0_when_no_claim_is_refuted(stored, tmp_path, capsys):
    assert main(["run", *TINY, "--store", str(stored)]) == 0
    assert "repro: claims on these runs: 0 reproduced, 0 not reproduced" in capsys.readouterr().out


def test_the_original_study_exits_1_for_its_table_1_claim_that_its_own_networks_do_not_show(tmp_path, capsys):
    # claim 4's second part (AnB+ over BnB+, each against its own base) is +0.1 point on the original's networks
    assert main(["report", "--profile", "original", "--report-dir", str(tmp_path / "original")]) == 1
    assert "4 reproduced, 1 not reproduced, 0 inconclusive, 0 premise not met" in capsys.readouterr().out


def test_report_and_run_exit_1_when_a_claim_is_not_reproduced(stored, tmp_path, capsys, monkeypatch):
    import dataclasses

    import repro.claims

    evaluate_all = repro.claims.evaluate_all

    def one_refuted(table):  # the claim the stored runs were trained for
        return [dataclasses.replace(v, verdict="not_reproduced") if v.claim == "coadaptation_dip" else v
                for v in evaluate_all(table)]

    monkeypatch.setattr(repro.claims, "evaluate_all", one_refuted)
    assert main(["report", "--profile", "original", "--report-dir", str(tmp_path / "original")]) == 1
    assert main(["report", "--results", str(tmp_path / "original" / "results.json"),
                 "--report-dir", str(tmp_path / "rejudged")]) == 1
    assert main(["run", *TINY, "--store", str(stored)]) == 1
    assert "1 not reproduced" in capsys.readouterr().out


def test_a_recorded_command_leaves_out_this_machines_store_and_data_paths():
    from repro.study import without_machine_paths

    assert without_machine_paths(["run", "--profile", "cpu", "--store", "my-store", "--data-root=my-data",
                                  "--study-dir", "reports/x"]) == ["run", "--profile", "cpu", "--study-dir",
                                                                   "reports/x"]
    assert without_machine_paths(["claims/", "--repro-store", "my-store", "--repro-data-root=my-data", "-m", "cpu"],
                                 "repro-") == ["claims/", "-m", "cpu"]


# ---- repro compare --figure ----------------------------------------------------------------------------------
CONFIRMATION = Path(__file__).resolve().parents[1] / "reports" / "cpu-tiny-imagenet-confirmation"
EXPLORATORY = Path(__file__).resolve().parents[1] / "reports" / "cpu-tiny-imagenet-1.5-epochs-fp32" / "results.json"


def test_compare_draws_figure_2_for_the_original_and_both_sides_named_by_their_folders(tmp_path, capsys,
                                                                                        monkeypatch):
    import repro.report.figures

    drawn = []
    real = repro.report.figures.figure2
    monkeypatch.setattr(repro.report.figures, "figure2", lambda panels: drawn.append(panels) or real(panels))
    out = tmp_path / "figure2.png"
    assert main(["compare", str(CONFIRMATION), str(EXPLORATORY), "--figure", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(f"figure: {out}")
    (panels,) = drawn
    assert [name for name, _ in panels] == ["Original study (ILSVRC-2012)", "cpu-tiny-imagenet-confirmation",
                                            "cpu-tiny-imagenet-1.5-epochs-fp32"]
    assert {r.replicate for r in panels[1][1].rows} == {3, 4, 5} and {r.replicate for r in panels[2][1].rows} == {0, 1, 2}
    header = out.read_bytes()[:24]
    width, height = int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and width > 2 * height  # three columns side by side


@pytest.mark.parametrize("figure, says", [
    ("figure.jpg", "name a .png, .svg, .pdf file"),
    ("no-such-folder/figure.png", "no folder"),
])
def test_compare_refuses_a_figure_it_cannot_write_before_comparing(tmp_path, capsys, figure, says):
    missing = tmp_path / "nowhere" / "results.json"  # the figure is refused first, in one line
    assert main(["compare", str(missing), str(missing), "--figure", str(tmp_path / figure)]) == 2
    err = capsys.readouterr()
    assert err.out == "" and len(err.err.strip().splitlines()) == 1 and says in err.err
    assert not list(tmp_path.rglob("figure.*"))


def test_compare_refuses_to_draw_a_run_store_which_has_no_results_table(tmp_path, capsys):
    store = tmp_path / "store"
    (store / "runs").mkdir(parents=True)
    assert main(["compare", str(store), str(EXPLORATORY), "--figure", str(tmp_path / "f.png")]) == 2
    assert "is a run store: write its results with `repro report` first" in capsys.readouterr().err
