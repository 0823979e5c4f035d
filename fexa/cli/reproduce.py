"""``fexa reproduce``: the papers' tables, row by row (tables/<paper>.yaml)."""

from __future__ import annotations

import argparse
import os


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from fexa.train.reproduce import docs_markdown, listing, papers, run_tables

    if args.docs:
        print(docs_markdown(), end="")
        return 0
    if not args.paper:
        print("papers: " + ", ".join(papers()))
        return 0
    if args.list:
        with pd.option_context("display.max_rows", None, "display.max_colwidth", None, "display.width", 250):
            print(listing(args.paper, args.table).fillna("").to_string(index=False))
        return 0
    if args.weights:
        os.environ["FEXA_WEIGHTS"] = args.weights
    table = run_tables(args.paper, args.table, args.set, args.out, args.protocol, progress=not args.quiet)
    print(f"fexa: results in {args.out}/{args.paper}/table*.{{csv,md}}")
    with pd.option_context("display.max_rows", None, "display.width", 250):
        print(table.to_string(index=False))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="run the papers' result and ablation tables, beside the papers' numbers",
                       description="List (--list) or run the rows of a paper's tables (tables/PAPER.yaml; "
                       "docs/reproduce.md). Each cell is a fexa train run named by its config and overrides "
                       "(finished runs are reused, started ones resumed); the results are collected into "
                       "OUT/PAPER/tableN.{csv,md} beside the paper's numbers.")
    p.add_argument("paper", nargs="?", help="qafe-net, tramp-former, stt-dfer, pcda-neaa or cfc-sp (none: list them)")
    p.add_argument("--table", nargs="+", metavar="N", help="only these tables (default: all)")
    p.add_argument("--list", action="store_true", help="print every row's command and the paper's numbers")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value of every run (e.g. data.root=/data/PFED5, data.cache=...)")
    p.add_argument("--weights", metavar="DIR", help="the folder of the authors' weight files (default $FEXA_WEIGHTS)")
    p.add_argument("--out", default="runs/reproduce", metavar="DIR", help="where the runs go (default runs/reproduce)")
    p.add_argument("--protocol", default="paper", choices=["paper", "honest", "both"],
                   help="eval.protocol of every run (default paper: the papers' protocol)")
    p.add_argument("--docs", action="store_true", help="print docs/reproduce.md (generated from tables/)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
