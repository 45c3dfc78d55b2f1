"""The `repro` command: plan, run, report, compare, status, splits.

    repro plan   --profile cpu [--gpus N] [--json]      (projected_hours on N GPUs: repro.schedule)
    repro run    --profile cpu [--gpus N | --workers N] [--store PATH] [--dataset NAME|folder:PATH]
                 [--data-root PATH] [--set FIELD=VALUE ...]
    repro report --profile cpu [--report-dir DIR]      (--profile original: the original study's numbers)
    repro report --results FILE [--report-dir DIR]     judge a results.json or CSV of networks, no training
    repro compare A/results.json B/results.json
    repro status [--store PATH]
    repro splits --dataset imagenet|tiny-imagenet --split random:0|natman   (no images needed)
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from repro.profiles import PROFILES


def add_study_options(add, prefix: str = "") -> None:
    """Options shared with the pytest plugin (`add` is argparse's or pytest's addoption)."""
    add(f"--{prefix}profile", default=None, help=f"profile: {', '.join(PROFILES)} (pytest: from -m by default)")
    add("--gpus", type=int, default=0, help="train on N GPUs, one worker process per GPU")
    add("--workers", type=int, default=None,
        help="train with N CPU worker processes (default: this machine's cores // recipe.cpu_threads)")
    add("--store", default=None, help="run store folder (default: $REPRO_STORE or ~/.cache/repro/store)")
    add("--dataset", default=None, help="override the profile's dataset (e.g. folder:PATH)")
    add("--data-root", default=None, help="where the dataset is (default: $REPRO_DATA)")
    add("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a profile field")
    add("--natman", default=None, metavar="FILE",
        help="the natural/man-made split of a dataset without one: the natural class names, one a line "
             "(or two columns: name, natural|man-made)")
    add("--report-dir", default=None, help="write DIR/index.html and DIR/results.json")
    add("--executor", default="local", choices=["local", "slurm"], help="where to train (slurm: via submitit)")
    add("--slurm-partition", default=None, help="Slurm partition (with --executor slurm)")
    add("--slurm-time", type=int, default=24 * 60, help="Slurm time limit per job in minutes")


def check_counts(gpus: int, workers: int | None) -> None:
    if gpus < 0:
        raise ValueError(f"--gpus must be 0 or a positive number of GPUs, got {gpus}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if gpus and workers is not None and workers > 1:
        raise ValueError("use either --gpus N (one worker per GPU) or --workers N (CPU workers), not both")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="repro", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
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
    s = sub.add_parser("compare", help="how two sessions' results (or run stores) differ, claim by claim and "
                                       "network by network")
    s.add_argument("a")
    s.add_argument("b")
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
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("\nrepro: interrupted; finished runs and checkpoints are kept, rerun to resume", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every known failure becomes one clear line
        from repro.data.base import DataError
        from repro.store import StoreError
        from repro.train import Diverged

        if isinstance(e, (ValueError, DataError, StoreError, Diverged, FileNotFoundError)):
            print(f"repro: error: {e}", file=sys.stderr)
            return 2
        raise


def _study_setup(args):
    from repro.store import Store
    from repro.study import all_needs, resolve_profile

    if not args.profile:
        raise ValueError(f"--profile is required: one of {', '.join(PROFILES)}")
    check_counts(args.gpus, args.workers)
    profile = resolve_profile(args.profile, args.dataset, args.set, args.natman)
    if args.executor == "slurm" and not profile.device:  # Slurm jobs train on a GPU: keys planned for one
        profile = profile.override(["device=cuda"])
    needs = all_needs(args.claims.split(",") if args.claims else None)
    return profile, needs, Store(args.store)


def cmd_plan(args) -> int:
    from repro.schedule import plan_projection
    from repro.study import plan

    profile, needs, store = _study_setup(args)
    p = plan(profile, needs, store, args.data_root)
    projected = plan_projection(profile, p["specs"], gpus=args.gpus, workers=args.workers)
    if args.json:
        out = {k: v for k, v in p.items() if k != "specs"}
        out.update(projected_hours=projected.pop("projected_hours"), precision=projected["precision"],
                   projection=projected)
        out["runs_detail"] = [{"key": s.key, "label": s.label, "cached": store.is_done(s)} for s in p["specs"]]
        print(json.dumps(out, indent=1))
    else:
        print(f"profile {p['profile']} on {p['dataset']}: {p['runs']} runs, {p['cached']} cached, "
              f"{p['to_train']} to train (store {store.root})")
        if projected["projected_hours"] is not None:
            where = f"{projected['workers']} CPU worker(s)" if projected["device"] == "cpu" else \
                f"{projected['gpus']} GPU(s)"
            print(f"projected on {where}: {projected['projected_hours']:.2f} h in {projected['precision']}, "
                  f"simulated with step times: {projected['measurement']}")
        for family, why in p["left_out"].items():
            print(f"  no {'natural/man-made' if family == 'natman' else family} runs: {why}")
        for s in p["specs"]:
            print(f"  {'cached ' if store.is_done(s) else 'train  '} {s.key}  {s.label}")
    return 0


def _train(args, report_needs=None):
    from repro.study import plannable, run_study

    profile, needs, store = _study_setup(args)
    if args.executor == "slurm":
        from repro.slurm import run_slurm

        run_slurm(profile, plannable(profile, needs, args.data_root)[0], store, data_root=args.data_root,
                  partition=args.slurm_partition, minutes=args.slurm_time, gpus=args.gpus)
    else:  # the time, told before the first network trains (repro.schedule.tell_projection)
        from repro.schedule import tell_projection
        from repro.runs import specs_for

        tell_projection(profile, specs_for(profile, plannable(profile, needs, args.data_root)[0]), store,
                        gpus=args.gpus, workers=args.workers, quicker="--profile cpu-quick")
    study = run_study(profile, needs, store, data_root=args.data_root, workers=args.workers, gpus=args.gpus,
                      progress=not args.quiet, report_needs=report_needs)
    o = study.outcome
    print(f"repro: {len(o.trained)} trained, {len(o.cached)} cached, {len(o.diverged)} diverged, "
          f"{len(o.elsewhere)} trained by another session; {o.seconds / 60:.1f} min; store {store.root}")
    for key in o.diverged:
        print(f"repro: warning: run {key} diverged (stored with its curve; see {store.root / 'runs' / key})")
    for family, why in study.left_out.items():
        print(f"repro: no {'natural/man-made' if family == 'natman' else family} runs: {why}")
    return study


def cmd_run(args) -> int:
    _train(args)
    return 0


def reproduce_command(argv: list[str] | None = None) -> str:
    return " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv))


def cmd_report(args) -> int:
    from repro.claims import evaluate_all
    from repro.report import default_report_dir, report_original, session_info, write_report
    from repro.study import all_needs, settle
    from repro.summary import verdict_table

    if args.results:
        return _report_results(args)
    out = args.report_dir or default_report_dir(args.profile or "original")
    if args.profile == "original":
        html, _ = report_original(out)
        print(f"repro: report of the original study's numbers: {html}")
        return 0
    study = _train(args, report_needs=all_needs())  # every claim is reported: --claims chooses what to train
    verdicts = [settle(v, study) for v in evaluate_all(study.table)]
    session = session_info(reproduce_command(), study.profile, study.wall_seconds,
                           cached=len(study.outcome.cached), trained=len(study.outcome.trained), study=study)
    html, _ = write_report(out, profile_name=study.profile.name, table=study.table, verdicts=verdicts,
                           session=session, missing=study.missing)
    print(verdict_table(verdicts, str(html)))
    return 0


def _report_results(args) -> int:
    """`repro report --results FILE`: the claims judged on a per-network table from a file; nothing trained."""
    import time

    from repro.claims import evaluate_all
    from repro.report import default_report_dir, session_info, write_report
    from repro.results import table_from_file
    from repro.summary import verdict_table

    if args.profile:
        raise ValueError("use either --results FILE (judge those networks) or --profile NAME (train), not both")
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
    return 0


def cmd_compare(args) -> int:
    from repro.report.compare import comparison_text, load_results

    print(comparison_text(load_results(args.a), load_results(args.b)))
    return 0


def cmd_status(args) -> int:
    from repro.store import Store

    store = Store(args.store)
    rows = store.index_rows()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    if args.json:
        print(json.dumps({"store": str(store.root), "counts": counts, "runs": rows}, indent=1))
        return 0
    print(f"store {store.root}: {len(rows)} runs " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for r in sorted(rows, key=lambda r: r["label"] or ""):
        top1 = f"{r['top1']:.4f}" if r["top1"] is not None else "  -   "
        print(f"  {r['status']:9s} {top1} {r['key']} {r['label']}")
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
