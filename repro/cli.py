"""The `repro` command: plan, run, report, compare, status, splits.

    repro plan   --profile cpu [--gpus N] [--json]      (projected_hours on N GPUs: repro.schedule)
    repro run    --profile cpu [--gpus N | --workers N] [--store PATH] [--dataset NAME|folder:PATH]
                 [--data-root PATH] [--set FIELD=VALUE ...]
    repro report --profile cpu [--report-dir DIR]      (--profile original: the original study's numbers)
    repro report --profile cpu --no-train [--study-dir DIR]   judge what the store and study folder hold now
    repro report --results FILE [--report-dir DIR]     judge a results.json or CSV of networks, no training
    repro compare A/results.json B/results.json [--figure FILE]   (FILE: Figure 2 of the original, A and B)
    repro status [--store PATH]
    repro splits --dataset imagenet|tiny-imagenet --split random:0|natman   (no images needed)
    repro --version

Exit status (EXIT): run and report 0 when no claim is refuted and 1 when some claim is not reproduced (as pytest
passes or fails the same study); the other commands 0 when done. Any command: 2 bad input (one `repro: error:`
line, nothing trained or created), 130 interrupted, 141 the reader of the output went away (`repro plan --json
| head -1`: quietly, as a Unix tool stopped by SIGPIPE).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from repro.errors import UserError
from repro.provenance import git_state
from repro.study import StudyOptions, add_study_options


EXIT = {"no claim refuted": 0, "a claim not reproduced": 1, "bad input": 2, "interrupted": 130,
        "output closed": 141}


def version() -> str:
    """The installed version, and the suite's commit where it runs from a git checkout."""
    import importlib.metadata

    commit, dirty = git_state()
    where = f" (commit {commit[:12]}{', with uncommitted changes' if dirty else ''})" if commit else ""
    return f"repro {importlib.metadata.version('repro')}{where}"


class _Version(argparse.Action):
    """--version, worked out only when asked (it runs git)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="repro", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in [("plan", "what would be trained and what is cached"),
                       ("run", "train every missing run of the plan"),
                       ("report", "train what is missing, evaluate the claims, write the HTML report")]:
        s = sub.add_parser(name, help=text)
        add_study_options(s.add_argument)
        s.add_argument("--claims", default=None, help="comma-separated claim ids (default: all five)")
        s.add_argument("--quiet", action="store_true", help="no progress display")
        if name == "plan":
            s.add_argument("--json", action="store_true", help="print a JSON object")
        if name == "report":
            s.add_argument("--results", default=None, metavar="FILE",
                           help="judge the networks of a results.json or CSV (columns: README) instead of training")
            s.add_argument("--no-train", action="store_true",
                           help="judge the runs the store and the study folder (--study-dir) hold now, train "
                                "nothing: the claims that need missing runs wait for them")
    s = sub.add_parser("compare", help="how two sessions' results (or run stores) differ, claim by claim and "
                                       "network by network")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("--figure", default=None, metavar="FILE",
                   help="also draw the paper's Figure 2 (random splits) for the original study and both results "
                        "side by side into FILE (.png, .svg or .pdf)")
    s = sub.add_parser("status", help="what the run store holds")
    s.add_argument("--store", default=None)
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("splits", help="print the class halves of a split as JSON")
    s.add_argument("--dataset", required=True)
    s.add_argument("--split", required=True, help="random:<seed> or natman")
    s.add_argument("--data-root", default=None, help="folder datasets only: imagenet and tiny-imagenet use the "
                                                     "class lists shipped with the package")
    s.add_argument("--num-classes", type=int, default=None, help="synthetic only")
    s.add_argument("--natman", default=None, metavar="FILE", help="the natural classes of a folder dataset")
    return p


def main(argv: list[str] | None = None) -> int:
    """The command's exit status (EXIT)."""
    try:
        args = _parser().parse_args(argv)
        args.command_line = reproduce_command(argv)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("\nrepro: interrupted; finished runs and checkpoints are kept, rerun to resume", file=sys.stderr)
        return EXIT["interrupted"]
    except UserError as e:  # bad input: one line (anything else is a bug, and keeps its traceback)
        print(f"repro: error: {e}", file=sys.stderr)
        return EXIT["bad input"]
    except BrokenPipeError:  # the reader stopped reading: nothing left to say, and nothing to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT["output closed"]


def verdicts_status(verdicts) -> int:
    """0 when no claim is refuted (reproduced, inconclusive, premise not met: what pytest passes, skips and
    xfails), 1 when some claim is not reproduced (what pytest fails)."""
    refuted = any(v.verdict == "not_reproduced" for v in verdicts)
    return EXIT["a claim not reproduced" if refuted else "no claim refuted"]


def _claims(args) -> list:
    from repro.study import all_needs

    return all_needs(args.claims.split(",") if args.claims else None)


def cmd_plan(args) -> int:
    from repro.planned_power import OWN_SPREAD_REPLICATES, planned_power, replicates_for_power, shown_power
    from repro.runs import COMPUTE_MATCHED
    from repro.schedule import plan_projection
    from repro.store import Store
    from repro.study import check_options, plan

    profile = check_options(StudyOptions.read(lambda dest: getattr(args, dest)), trains=False, writes=False)
    store = Store(args.store, create=False)  # a plan writes nothing: no store is made to hold none
    p = plan(profile, _claims(args), store, args.data_root, study_dir=args.study_dir)
    projected = plan_projection(profile, p["specs"], gpus=args.gpus, workers=args.workers, todo=p["todo"],
                                split_groups=bool(args.study_dir))
    todo = {s.key for s in p["todo"]}
    matched = [s for s in p["specs"] if s.treatment == COMPUTE_MATCHED]
    cost = None
    if matched and projected["projected_hours"] is not None:
        whole = plan_projection(profile, p["specs"], gpus=args.gpus, workers=args.workers)["projected_hours"]
        others = [s for s in p["specs"] if s.treatment != COMPUTE_MATCHED]
        without = plan_projection(profile, others, gpus=args.gpus, workers=args.workers)["projected_hours"]
        cost = {"runs": len(matched), "projected_hours": whole - without,
                "what": "one base per target half and replicate trained twice the recipe's epochs: as many "
                        "iterations as a fine-tuned transfer in total (claim 4's compute-matched control)"}
    own, own_name = {}, ""
    if args.study_dir and (p["replicates"]["done"] or p["replicates"]["stale"]):
        from repro.planned_power import measure_spreads
        from repro.study import read_study

        own = measure_spreads(read_study(profile, _claims(args), store, data_root=args.data_root,
                                         study_dir=args.study_dir).table)
        own_name = f"this study's replicates ({args.study_dir})"
    power = planned_power(profile, own=own, own_name=own_name)
    power["replicates_for_80"] = replicates_for_power(profile, own, own_name)
    if args.json:
        out = {k: v for k, v in p.items() if k not in ("specs", "todo")}
        out.update(projected_hours=projected.pop("projected_hours"), precision=projected["precision"],
                   projection=projected, compute_matched_bases=cost, power=power)
        out["runs_detail"] = [{"key": s.key, "label": s.label, "cached": s.key not in todo} for s in p["specs"]]
        print(json.dumps(out, indent=1, default=lambda x: None))
    else:
        print(f"profile {p['profile']} on {p['dataset']}: {p['runs']} runs, {p['cached']} cached, "
              f"{p['to_train']} to train (store {store.root})")
        if "replicates" in p:
            _print_replicates(p["replicates"], args.study_dir)
        if not p["todo"]:
            print("projected: nothing to train")
        elif projected["projected_hours"] is not None:
            where = f"{projected['workers']} CPU worker(s)" if projected["device"] == "cpu" else \
                f"{projected['gpus']} GPU(s)"
            print(f"projected on {where}: {projected['projected_hours']:.2f} h in {projected['precision']}, "
                  f"simulated with step times: {projected['measurement']}")
        if cost:
            print(f"of which {cost['runs']} compute-matched base(s) (claim 4's control): "
                  f"{cost['projected_hours']:.2f} h")
        own_note = f"; where {own_name} measure a part's spread on {OWN_SPREAD_REPLICATES} or more, theirs" \
            if own else ""
        print(f"power at {power['replicates']} replicates (each part at its stated effect; spreads measured on "
              f"{power['measured_on']}{own_note}):")
        for claim in power["claims"]:
            parts = ", ".join(f"{part['part']} {shown_power(part['power'])}" for part in claim["parts"])
            needed = power["replicates_for_80"][claim["id"]]
            print(f"  {claim['id']}: at most {shown_power(claim['claim_power_at_most'])} ({parts}); 80% needs "
                  + (f"at least {needed} replicates" if needed else "more than 100 replicates"))
        for family, why in p["left_out"].items():
            print(f"  no {'natural/man-made' if family == 'natman' else family} runs: {why}")
        for s in p["specs"]:
            print(f"  {'train  ' if s.key in todo else 'cached '} {s.key}  {s.label}")
    return 0


def _print_replicates(replicates: dict, study_dir: str) -> None:
    from repro.format import duration

    for row in replicates["done"]:
        wall = row["training_wall_seconds"]
        print(f"  replicate r{row['replicate']} done ({row['file']} in {study_dir}): {row['networks']} networks, "
              f"{'/'.join(row['precision'] or [])} on {'; '.join(row['cpus'] or row['devices'] or [])}, "
              f"{duration(wall) if wall else 'wall time unknown'}")
    for r in replicates["missing"]:
        print(f"  replicate r{r} missing" + (f": {replicates['stale'][r]}" if r in replicates["stale"] else ""))


def _train(args, report_needs=None):
    """The study API's train_study with the command's options; says what it trained."""
    from repro.study import train_study

    options = StudyOptions.read(lambda dest: getattr(args, dest), command=args.command_line)
    study = train_study(options, _claims(args),
                        progress=not args.quiet, report_needs=report_needs)
    o, store = study.outcome, study.store
    print(f"repro: {len(o.trained)} trained, {len(o.cached)} cached, {len(o.diverged)} diverged, "
          f"{len(o.elsewhere)} trained by another session; {o.seconds / 60:.1f} min; store {store.root}")
    for key in o.diverged:
        print(f"repro: warning: run {key} diverged (stored with its curve; see {store.root / 'runs' / key})")
    if o.stopped:
        print(f"repro: stopped (at --stop-after, or by SIGTERM) with {len(o.stopped)} runs unfinished (those started "
              f"are in checkpoints of the store): the same command continues")
    for family, why in study.left_out.items():
        print(f"repro: no {'natural/man-made' if family == 'natman' else family} runs: {why}")
    return study


def cmd_run(args) -> int:
    from repro.study import judge
    from repro.summary import counts_line

    verdicts = judge(_train(args))
    print(f"repro: claims on these runs: {counts_line(verdicts)} (repro report writes the report)")
    return verdicts_status(verdicts)


def reproduce_command(argv: list[str] | None = None) -> str:
    """The command line as a user would type it again (`argv`: its arguments, by default this process's):
    `repro ...` or `python -m repro.cli ...`, not the interpreter's path to the script, nor this machine's store
    and data paths (repro.study.without_machine_paths)."""
    from repro.study import without_machine_paths

    program = "python -m repro.cli" if Path(sys.argv[0]).name == "cli.py" else "repro"
    args = without_machine_paths(sys.argv[1:] if argv is None else argv)
    return " ".join([program, *(shlex.quote(a) for a in args)])


def cmd_report(args) -> int:
    from repro.report import default_report_dir
    from repro.study import all_needs, check_folder, judge, write_study_report
    from repro.summary import verdict_table

    check_folder("report folder", "--report-dir", args.report_dir)
    if args.results:
        return _report_results(args)
    out = args.report_dir or args.study_dir or default_report_dir(args.profile or "original")
    if args.profile == "original":  # the original study's own numbers: nothing trained
        from repro.claims import evaluate_all
        from repro.paper import original_table

        verdicts = evaluate_all(original_table())
        html, _ = write_study_report(out, verdicts, args.command_line)
    elif args.no_train:
        study = _read(args)
        verdicts = judge(study)
        html, _ = write_study_report(out, verdicts, args.command_line, study)
    else:
        study = _train(args, report_needs=all_needs())  # every claim is reported: --claims chooses what to train
        verdicts = judge(study)
        html, _ = write_study_report(out, verdicts, args.command_line, study)
    print(verdict_table(verdicts, str(html)))
    return verdicts_status(verdicts)


def _read(args):
    """The study as the store and the study folder hold it now, every claim's runs; nothing trained."""
    from repro.store import Store
    from repro.study import all_needs, check_options, read_study

    profile = check_options(StudyOptions.read(lambda dest: getattr(args, dest)), trains=False)
    return read_study(profile, all_needs(), Store(args.store, create=False), data_root=args.data_root,
                      study_dir=args.study_dir)


def _report_results(args) -> int:
    """`repro report --results FILE`: the claims judged on a per-network table from a file; nothing trained."""
    import time

    from repro.claims import evaluate_all
    from repro.report import default_report_dir, session_info, write_report
    from repro.results import table_from_file
    from repro.summary import verdict_table

    if args.profile:
        raise UserError("use either --results FILE (judge those networks) or --profile NAME (train), not both")
    start = time.perf_counter()
    table, header = table_from_file(args.results)
    verdicts = evaluate_all(table)
    profile_name = header.get("profile") or "results"
    command = f"repro report --results {shlex.quote(str(args.results))}" + (
        f" --report-dir {shlex.quote(str(args.report_dir))}" if args.report_dir else "")
    now = session_info(command, wall_seconds=time.perf_counter() - start)
    session = header.get("session")
    if isinstance(session, dict):  # the study's own provenance, and this judging beside it
        session = {**session, "rejudged": {k: now[k] for k in ("command", "created", "git_commit", "versions")}}
    else:
        session = {**now, "dataset": header.get("dataset"), "results_file": str(args.results),
                   "notes": f"networks read from {args.results}; nothing trained by this session"}
    out = args.report_dir or default_report_dir(f"{profile_name}-rejudged")
    html, _ = write_report(out, profile_name=profile_name, table=table, verdicts=verdicts, session=session)
    print(verdict_table(verdicts, str(html)))
    return verdicts_status(verdicts)


def cmd_compare(args) -> int:
    from repro.report.compare import check_figure, comparison_text, draw_figure2, load_results

    if args.figure:
        check_figure(args.figure, (args.a, args.b))
    print(comparison_text(load_results(args.a), load_results(args.b)))
    if args.figure:
        print(f"figure: {draw_figure2((args.a, args.b), args.figure)}")
    return 0


def cmd_status(args) -> int:
    from repro.store import STOPPED_AFTER_SECONDS, Store

    store = Store(args.store, create=False)  # looking creates nothing
    if args.store and not store.exists:
        raise UserError(f"no run store at {store.root}: check the path (repro run --store PATH makes one there)")
    rows = store.index_rows()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if args.json:
        print(json.dumps({"store": str(store.root), "counts": counts, "runs": rows}, indent=1))
        return 0
    print(f"store {store.root}: {len(rows)} runs " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
          + ("" if store.exists else "(nothing trained into it yet)"))
    for r in sorted(rows, key=lambda r: r["label"] or ""):
        top1 = f"{r['top1']:.4f}" if r["top1"] is not None else "  -   "
        if r.get("progress"):
            top1 = f"{r['progress'][0]}/{r['progress'][1]}"
        print(f"  {r['status']:9s} {top1} {r['key']} {r['label']}")
    if counts.get("stopped"):
        print(f"  stopped: started, no process has trained them for {STOPPED_AFTER_SECONDS // 60} min; the command "
              "that started them resumes them from their checkpoints")
    return 0


def cmd_splits(args) -> int:
    """The halves as {"A": [...], "B": [...]} (original class indices) and {"A_classes": [...], ...} (their
    names: WordNet ids), from the class lists shipped with the package for imagenet and tiny-imagenet."""
    from repro.data import shipped_classes
    from repro.data.splits import natural_from_names, read_natman_file, split_classes

    classes, natural = shipped_classes(args.dataset, args.data_root or os.environ.get("REPRO_DATA"),
                                       num_classes=args.num_classes or 8)
    if args.natman:
        natural = natural_from_names(classes, read_natman_file(args.natman))
    halves = split_classes(args.split, len(classes), natural)
    print(json.dumps({**halves, **{f"{h}_classes": [classes[i] for i in idx] for h, idx in halves.items()}}))
    return 0


COMMANDS = {"plan": cmd_plan, "run": cmd_run, "report": cmd_report, "compare": cmd_compare,
            "status": cmd_status, "splits": cmd_splits}

if __name__ == "__main__":
    sys.exit(main())
