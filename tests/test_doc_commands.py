"""Every command the documents give still runs: README.md, docs/**/*.md and reports/*/README.md, read as a user
reads them, so that the next change that breaks one fails here.

A command is a code line (fenced or indented, `\\` continuations joined, `$ ` prompts and `# comments` dropped)
or an inline code span, of the suite's programs: `repro`, `pytest`, `python -m ...`, `python FILE`, `bash FILE`.
Nothing is trained, downloaded or written; each is dry-run as far as its front door goes:
- `repro` (and `python -m repro.cli`): parsed by the command's own parser, then, for plan, run and report, the
  options checked as the command checks them (repro.study.check_options, without the machine-only checks a
  plan skips too: the GPUs here, the data, the store) and the plan made; a results file must exist and read;
  `repro splits` runs (it needs no images).
- `pytest`: parsed by this session's own pytest parser (with every plugin's options), its paths found, its
  marker expression compiled, and the study's options checked as the plugin checks them at start-up.
- `python -m MODULE ARGS` / `python FILE ARGS`: parsed by the module's own argparse parser (stopped there);
  without arguments, the module must exist.
A synopsis (a line with placeholders: FILE, N, <yours>, [--opt], a|b, ...) and a mention of a command in prose
(MENTIONS) are checked by name: the program, the subcommand and every option must exist. Commands this test
cannot run cheaply are listed in NOT_RUN with why; they are still checked by name where the program is ours.
A bad command shown on purpose (REFUSED) must be refused with its message.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import re
import runpy
import shlex
import sys
import types
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "reports").glob("*/README.md"))]
PROGRAMS = ("repro", "pytest", "python", "python3", "bash")
ENVIRONMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
PLACEHOLDER = re.compile(r"[<>\[\]{}|]|\.\.\.|^(?:[A-Z][A-Z_]*(?:=[A-Z_]+)?|[A-Z]/.*)$")

# Commands that are not dry-run here (by prefix, as the document writes them), and why.
NOT_RUN = {
    "python3 -m venv .venv": "installs the suite, as .ci/run does before these tests",
    "python -m venv --system-site-packages VENV": "installs other projects' plugins into a new environment",
    "bash benchmarks/gpu_check.sh": "the GPU check: needs a GPU machine (docs/gpu.md)",
    "bash benchmarks/gpu_study.sh": "moves the data to a lent GPU machine and trains the gpu study there; its "
                                    "--dry-run trains on the CPU for 2 minutes",
    "python benchmarks/sweep_order.py": "trains the cpu-quick plan three times (no options to parse)",
    "python tests/test_browser.py": "writes docs/screenshots/ (a minute of headless Chromium; its pages are "
                                    "checked by tests/test_browser.py)",
    "repro splits --dataset folder:data/cifar-style": "an example on the reader's own folder of images and "
                                                      "natural.txt, which the repository does not hold",
    "repro report --profile smoke --dataset folder:data/cifar-style": "the same example's report",
}
# Bad commands the documents show on purpose, and the start of the one line each must be refused with.
REFUSED = {"python -m repro.cli run --profile tiny": "unknown profile 'tiny'",
           "repro plan --profile cpu --dataset nosuch": "unknown dataset 'nosuch'"}
# Commands named in prose (what runs, not how to run it): checked by name only.
MENTIONS = {"repro", "repro run", "repro report", "repro compare", "repro status", "repro splits",
            "repro splits --split", "repro run --workers 1"}


def tokens_of(command: str) -> list[str]:
    """The command's words, without the environment assignments before it nor what a pipe feeds it to (a
    table cell writes the pipe `\\|`)."""
    words = shlex.split(command.replace("\\|", "|"), comments=True)
    while words and ENVIRONMENT.match(words[0]):
        words.pop(0)
    return words[:words.index("|")] if "|" in words else words


def is_command(text: str) -> bool:
    try:
        words = tokens_of(text)
    except ValueError:  # unbalanced quotes: a command all the same if it starts like one (and fails below)
        words = text.split()
    return bool(words) and words[0] in PROGRAMS


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, command) of the fenced and indented code lines, continuations joined."""
    out, fenced, pending = [], False, None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ") or pending):
            continue
        words = line.strip().removeprefix("$ ")
        if pending:
            start, words = pending[0], f"{pending[1]} {words}"
        else:
            start = number
        pending = (start, words[:-1].strip()) if words.endswith("\\") else None
        if pending is None and is_command(words):
            out.append((start, " ".join(words.split())))
    return out


def inline_spans(text: str) -> list[tuple[int, str]]:
    """(line number, command) of the inline code spans that are commands (a span may wrap onto the next line)."""
    out = []
    for m in re.finditer(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)", text):
        span = " ".join(m.group(1).split())
        if is_command(span):
            out.append((text.count("\n", 0, m.start()) + 1, span))
    return out


def documented() -> list[tuple[str, str]]:
    """(where, command) of every command in the documents."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for number, command in sorted(code_lines(text) + inline_spans(text)):
            found.append((f"{path.relative_to(ROOT)}:{number}", command))
    return found


COMMANDS = documented()


def not_run(command: str) -> str | None:
    bare = " ".join(tokens_of(command))
    return next((why for prefix, why in NOT_RUN.items() if bare.startswith(prefix)), None)


# ---- reading a program's options --------------------------------------------------------------------------
class Parsed(Exception):
    """Raised instead of running a module once its argparse parser has read the arguments."""


def stopped_at_parsing(run, args: list[str], name: str, read: bool = True) -> tuple[argparse.ArgumentParser, object]:
    """Run `run()` (a module or file as __main__) with argv = [name, *args] until it calls its argparse
    parser: (the parser, what it parsed from `args`, or None when not `read`). Nothing after that runs; a
    program that would run without parsing must be in NOT_RUN."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):
        raise Parsed(self, parse_args(self, args, namespace) if read else None)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse)
        patch.setattr(sys, "argv", [name, *args])
        try:
            run()
        except Parsed as parsed:
            return parsed.args
    raise AssertionError(f"{name} ran without parsing its arguments: list it in NOT_RUN with why")


def repro_help(*args: str) -> str:
    """What `repro [ARGS] --help` prints."""
    from repro.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*args, "--help"])
    return out.getvalue()


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return options_in(parser.format_help())


def options_in(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def python_target(words: list[str]):
    """(name, run) of `python -m MODULE ...` or `python FILE ...`, and the arguments after it."""
    if words[1] == "-m":
        name = words[2]
        return name, (lambda: runpy.run_module(name, run_name="__main__", alter_sys=True)), words[3:]
    path = ROOT / words[1]
    assert path.is_file(), f"{words[1]} does not exist"
    return words[1], (lambda: runpy.run_path(str(path), run_name="__main__")), words[2:]


# ---- the checks ---------------------------------------------------------------------------------------------
def ours(words: list[str]) -> bool:
    """A Python module or file of this repository (not `python -m venv`, `pip`)."""
    return words[1] != "-m" or words[2].split(".")[0] in ("repro", "benchmarks", "tests")


def check_names(words: list[str]) -> None:
    """The program, its subcommand and every option it names exist (pytest's: in dry_run_pytest, which
    parses every pytest command in full)."""
    def named(args):  # the options, out of a synopsis's brackets and alternatives too ([--gpus N | --workers N])
        options = (o.split("=")[0] for w in args for o in w.strip("[]()").split("|") if o.startswith("-"))
        return {o for o in options if not PLACEHOLDER.search(o)}

    if words[0] == "repro" or words[1:3] == ["-m", "repro.cli"]:
        from repro.cli import COMMANDS

        rest = words[1:] if words[0] == "repro" else words[3:]
        subcommand = next((w for w in rest if not w.startswith("-")), None)
        if subcommand is None:
            assert named(rest) <= options_in(repro_help()), f"unknown option in {words}"
            return
        assert subcommand in COMMANDS, f"repro has no command {subcommand!r}"
        known = options_in(repro_help(subcommand))
        assert named(rest) <= known, f"repro {subcommand} has no option {sorted(named(rest) - known)}"
    elif words[0] in ("python", "python3") and ours(words) and not not_run(" ".join(words)):
        name, run, args = python_target(words)
        if args:  # the parser, stopped before it reads anything (an empty command line may be refused)
            parser, _ = stopped_at_parsing(run, [], name, read=False)
            known = options_of(parser)
            assert named(args) <= known, f"{name} has no option {sorted(named(args) - known)}"
        elif words[1] == "-m":
            assert importlib.util.find_spec(name) is not None, f"no module {name}"


def dry_run_repro(args: list[str]) -> None:
    """Parse a `repro` command and check it as the command would before it trains (the machine-only checks
    aside: GPUs here, the data, the store)."""
    from repro.cli import _parser, main
    from repro.study import StudyOptions, all_needs, check_options, plan

    if args == ["--version"]:
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit, match="0"):
            main(args)
        return
    parsed = _parser().parse_args(args)
    if parsed.command == "splits":
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(args) == 0
    elif parsed.command == "compare":
        from repro.report.compare import load_results

        load_results(ROOT / parsed.a), load_results(ROOT / parsed.b)
    elif parsed.command in ("plan", "run", "report"):
        if getattr(parsed, "results", None):
            from repro.results import table_from_file

            assert parsed.profile is None, "--results and --profile together are refused"
            table_from_file(ROOT / parsed.results)
            return
        if parsed.profile == "original":
            return
        profile = check_options(StudyOptions.read(lambda dest: getattr(parsed, dest)), trains=False)
        claims = parsed.claims.split(",") if parsed.claims else None
        from repro.store import Store

        assert plan(profile, all_needs(claims), Store(ROOT / "no-store-here", create=False))["runs"] > 0


class Options:
    """What repro.pytest_plugin.study_options reads of a pytest config, from a parsed command's namespace."""

    def __init__(self, namespace, args=()):
        self.namespace = namespace
        self.invocation_params = types.SimpleNamespace(args=tuple(args))  # the command the records keep

    def getoption(self, name):
        return getattr(self.namespace, "markexpr" if name == "-m" else name)


def dry_run_pytest(args: list[str], config) -> None:
    """Parse a `pytest` command with this session's parser (every plugin's options), find its paths, compile
    its marker expression and check the study's options as the plugin does at start-up (without the checks
    that need this machine to be the one it was written for: GPUs, data, store)."""
    from _pytest.mark.expression import Expression

    from repro.pytest_plugin import study_options
    from repro.study import check_options

    # pytest keeps its parser as a private attribute; its parse methods are public
    namespace, unknown = config._parser.parse_known_and_unknown_args(args)
    assert not [u for u in unknown if u.startswith("-")], f"options pytest does not know: {unknown}"
    for path in getattr(namespace, "file_or_dir", None) or []:
        assert (ROOT / str(path).split("::")[0]).exists(), f"no test path {path}"
    if namespace.markexpr:
        Expression.compile(namespace.markexpr)

    check_options(study_options(Options(namespace, args)), trains=False)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_the_documented_command_runs(where, command, monkeypatch, request):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("REPRO_DATA", raising=False)
    words = tokens_of(command)
    if words[0] == "bash":
        assert not_run(command), f"{where}: {command}: a script this test cannot run: list it in NOT_RUN with why"
        assert (ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"
        return
    check_names(words)
    if not_run(command) or command in MENTIONS or any(PLACEHOLDER.search(w) for w in words):
        assert words[0] != "pytest" or command in MENTIONS or not_run(command), \
            f"{where}: write the pytest command out in full (it is parsed as it stands)"
        return
    if command in REFUSED:
        from repro.errors import UserError

        with pytest.raises(UserError, match=re.escape(REFUSED[command])):
            dry_run_repro(words[3:] if words[0] != "repro" else words[1:])
    elif words[0] == "repro":
        dry_run_repro(words[1:])
    elif words[1:3] == ["-m", "repro.cli"]:
        dry_run_repro(words[3:])
    elif words[0] == "pytest":
        dry_run_pytest(words[1:], request.config)
    else:
        assert ours(words), f"{where}: {command}: not the suite's: list it in NOT_RUN with why"
        name, run, args = python_target(words)
        if args:
            stopped_at_parsing(run, args, name)


def test_every_command_left_out_is_still_in_the_documents():
    commands = [c for _, c in COMMANDS]
    stale = [p for p in NOT_RUN if not any(c.startswith(p) for c in commands)]
    stale += [m for m in [*MENTIONS, *REFUSED] if m not in commands]
    assert not stale, f"no longer in the documents, drop them from NOT_RUN / MENTIONS: {stale}"


def test_the_reader_finds_commands_in_code_blocks_and_spans():
    text = ("Run `repro plan --profile cpu --json` or\n\n```bash\n$ pytest -m smoke   # the tests\n```\n\n"
            "    repro report --profile cpu \\\n        --report-dir DIR\n\nnot `repro/` nor `--set x=1`.\n")
    assert code_lines(text) == [(4, "pytest -m smoke # the tests"), (7, "repro report --profile cpu --report-dir DIR")]
    assert inline_spans(text) == [(1, "repro plan --profile cpu --json")]


def test_a_reports_command_for_today_trains_exactly_its_networks(request):
    """A committed report's README gives the command that trains its networks again at today's code (with
    `first_replicate=0`): it plans exactly the run keys of its results.json, and the compute-matched bases planned
    since. (The bf16 studies' networks get
    new keys today, which hold the precision, so only the fp32 ones are compared; on the CPU they trained on.)"""
    from repro.pytest_plugin import study_options
    from repro.runs import COMPUTE_MATCHED, specs_for
    from repro.study import all_needs, check_options

    compared = 0
    for where, command in COMMANDS:
        words = tokens_of(command)
        if not (where.startswith("reports/") and words[0] == "pytest" and "first_replicate=0" in command
                and "cpu_bf16=true" not in command):
            continue
        namespace, _ = request.config._parser.parse_known_and_unknown_args([*words[1:], "--repro-set", "device=cpu"])
        profile = check_options(study_options(Options(namespace, words[1:])), trains=False)
        results = ROOT / Path(where.split(":")[0]).parent / "results.json"
        committed = {r["key"] for r in json.loads(results.read_text())["runs"]}
        planned = specs_for(profile, all_needs())
        # every network it committed, and the compute-matched bases planned since (issue 27), nothing else
        assert {s.key for s in planned if s.treatment != COMPUTE_MATCHED} == committed, where
        assert not {s.key for s in planned if s.treatment == COMPUTE_MATCHED} & committed
        compared += 1
    assert compared >= 2  # the 1-epoch and 1.5-epoch studies


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_holds_a_figure_still_to_be_filled_in(document):
    """A figure a document promises is measured and written in, never left as a marker for later."""
    unfilled = re.findall(r"\bXXX\w*|\bTODO\b|\bTBD\b", document.read_text(encoding="utf-8"))
    assert not unfilled, f"{document.relative_to(ROOT)} still holds {sorted(set(unfilled))}"


STUDY_FOLDER = re.compile(r"--study-dir[= ](reports/[A-Za-z0-9._-]+)")


def test_every_study_folder_a_document_continues_is_in_the_repository():
    """A study run in pieces is its folder's replicate records: a folder that a document's `--study-dir` names
    is committed, not ignored by git, or a later sitting on another machine finds none of it and starts again."""
    import subprocess

    folders = sorted({m for d in DOCUMENTS for m in STUDY_FOLDER.findall(d.read_text(encoding="utf-8"))})
    assert folders, "no --study-dir reports/... found in the documents: is STUDY_FOLDER still right?"
    for folder in folders:
        assert (ROOT / folder).is_dir(), f"{folder} is named as a study folder but is not in the repository"
        ignored = subprocess.run(["git", "check-ignore", "-q", folder], cwd=ROOT).returncode == 0
        assert not ignored, f"git ignores {folder}: add !{folder}/ to .gitignore and commit its records"
