"""``fexa reproduce``: the papers' tables, row by row (tables/<paper>.yaml): list, check, run, collect."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path


def _roots(items: list[str]) -> dict[str, str]:
    """``--root DATASET=PATH`` items as {dataset: path}."""
    from fexa.data.adapters import DATASETS
    from fexa.errors import FexaError

    roots = {}
    for item in items:
        dataset, sep, path = item.partition("=")
        if not sep or dataset not in DATASETS or not path:
            raise FexaError(f"--root {item!r}: expected DATASET=PATH with DATASET one of {', '.join(sorted(DATASETS))}")
        roots[dataset] = path
    return roots


def _cells(text: str) -> tuple[int, int]:
    from fexa.errors import FexaError

    k, sep, n = text.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise FexaError(f"--cells {text!r}: expected K/N with 1 <= K <= N (e.g. 3/8 for the third of 8 array jobs)")
    return int(k), int(n)


def run_check(args: argparse.Namespace) -> int:
    """Every row of the chosen papers' tables checked on synthetic data and weights (one line each)."""
    from fexa.train.check import check_tables
    from fexa.train.reproduce import papers

    chosen = [args.paper] if args.paper else papers()
    say = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else (lambda line: print(line, flush=True))
    with tempfile.TemporaryDirectory(prefix="fexa-check-") as tmp:
        report = check_tables(chosen, args.table, args.workdir or tmp, args.device, args.amp, args.batch, args.set,
                              args.row, say)
    if args.json:
        print(json.dumps(report.as_json()))
    else:
        print(f"fexa: {report.ok} of {report.rows} rows ok, {len(report.failed)} failures, "
              f"{len(report.unsupported)} unsupported, in {report.seconds:.0f} s")
    return 1 if report.failed else 0


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from fexa.errors import FexaError
    from fexa.train.reproduce import Plan, docs_markdown, listing, papers, run_share, run_tables

    if args.docs:
        print(docs_markdown(), end="")
        return 0
    if args.check:
        return run_check(args)
    if not args.paper:
        print("papers: " + ", ".join(papers()))
        return 0
    if args.weights:
        os.environ["FEXA_WEIGHTS"] = args.weights
    plan = Plan(Path(args.out) / args.paper, args.protocol, args.set, _roots(args.root))
    if args.list:
        with pd.option_context("display.max_rows", None, "display.max_colwidth", None, "display.width", 400):
            print(listing(args.paper, args.table, plan).fillna("").to_string(index=False))
        return 0
    if args.cells:
        k, n = _cells(args.cells)
        mine = run_share(args.paper, args.table, plan, k, n, progress=not args.quiet)
        print(f"fexa: share {k}/{n} done ({len(mine)} runs); when every share is, `fexa reproduce {args.paper} "
              f"--collect --out {args.out}` writes the tables")
        return 0
    table, missing = run_tables(args.paper, args.table, plan, train=not args.collect, progress=not args.quiet)
    print(f"fexa: results in {plan.out}/table*.{{csv,md}}")
    with pd.option_context("display.max_rows", None, "display.width", 250):
        print(table.to_string(index=False))
    if missing:
        print(f"fexa: {len(missing)} runs not finished (their cells are empty): " + ", ".join(missing), file=sys.stderr)
        if args.collect:
            raise FexaError(f"{len(missing)} runs of the tables are not finished in {plan.out}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="check, run and collect the papers' result and ablation tables",
                       description="List (--list), check (--check), run or collect the rows of a paper's tables "
                       "(tables/PAPER.yaml; docs/reproduce.md). Each cell is a fexa train run named by its config and "
                       "overrides (finished runs are reused, started ones resumed); the results are collected into "
                       "OUT/PAPER/tableN.{csv,md} beside the paper's numbers.")
    p.add_argument("paper", nargs="?", help="qafe-net, tramp-former, stt-dfer, pcda-neaa or cfc-sp (none: list them; "
                   "with --check: all five)")
    p.add_argument("--table", nargs="+", metavar="N", help="only these tables (default: all)")
    p.add_argument("--list", action="store_true", help="print every row's complete command, its run and estimated "
                   "GPU hours, and the paper's numbers")
    p.add_argument("--check", action="store_true", help="check every row in minutes on synthetic data and weights: "
                   "config, data, initialisation, a training step and an evaluation; exit 1 if any fails")
    p.add_argument("--row", action="append", metavar="NAME", help="with --check: only rows of this name (repeatable)")
    p.add_argument("--json", action="store_true", help="with --check: print one JSON object (rows, ok, failed, "
                   "unsupported, seconds, steps); the row lines go to stderr")
    p.add_argument("--device", default="cpu", help="with --check: where its steps run (cpu, cuda; default cpu)")
    p.add_argument("--amp", action="store_true", help="with --check: every step in bf16 autocast")
    p.add_argument("--batch", type=int, default=2, metavar="N",
                   help="with --check: items per batch (default 2; 0: each config's own batch size)")
    p.add_argument("--workdir", metavar="DIR", help="with --check: keep its synthetic data and runs here "
                   "(default: a temporary folder)")
    p.add_argument("--cells", metavar="K/N", help="train only the K-th of N shares of the tables' runs (a job array; "
                   "a fine-tune goes with its parent); then --collect")
    p.add_argument("--collect", action="store_true", help="write the tables from the finished runs, training nothing "
                   "(exit 1 if any is missing)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of every run (e.g. data.root=/data/PFED5, data.cache=...)")
    p.add_argument("--root", action="append", default=[], metavar="DATASET=PATH",
                   help="the folder of one dataset, for tables that span datasets (repeatable, e.g. --root "
                   "rafdb=/data/RAF-DB --root ferplus=/data/FERPlus)")
    p.add_argument("--weights", metavar="DIR", help="the folder of the authors' weight files (default $FEXA_WEIGHTS)")
    p.add_argument("--out", default="runs/reproduce", metavar="DIR", help="where the runs go (default runs/reproduce)")
    p.add_argument("--protocol", default="paper", choices=["paper", "honest", "both"],
                   help="eval.protocol of every run (default paper: the papers' protocol)")
    p.add_argument("--docs", action="store_true", help="print docs/reproduce.md (generated from tables/)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
