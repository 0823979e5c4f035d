"""``fexa compare``: the same person's recordings against a baseline, each measure's change with
its uncertainty and against its test-retest noise (fexa.analysis.compare)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from fexa.analysis.analyzer import Analyzer
    from fexa.analysis.compare import (
        IDENTITY_WARNING,
        NO_INTERVAL,
        VERDICTS,
        compare_results,
        identity_check,
        write_comparison,
    )
    from fexa.errors import FexaError

    inputs = [args.baseline, *args.visits]
    labels = args.labels or [Path(p).name for p in inputs]
    if len(labels) != len(inputs):
        raise FexaError(f"--labels gives {len(labels)} names for {len(inputs)} recordings")
    cache = Path(args.out) / "cache"
    part = {"start": args.start, "end": args.end}  # the same part of every recording
    first = Analyzer(cache=cache, task=args.task, progress=not args.quiet, **part).analyze(args.baseline)
    if args.task == "auto":  # the follow-ups are measured for the baseline's task
        print(f"task of the baseline: {first.task} ({first.task_source}); the other visits are measured for it")
    later = Analyzer(cache=cache, task=first.task, progress=not args.quiet, **part)
    results = [first, *(later.analyze(p) for p in args.visits)]
    df = compare_results(results, labels, seed=args.seed)
    identity = identity_check(results, labels)
    written = write_comparison(df, labels, args.out, args.format, identity)
    for line in identity:
        print(line)
    print(f"WARNING: {IDENTITY_WARNING}.")
    shown = df[df["primary"]]
    width = max(len(m) for m in shown["measure"])
    for r in shown.itertuples():
        change = f"{r.change:+.3g} {r.unit}" if r.change == r.change else "not measurable"
        print(f"  {r.visit:>14s}  {r.measure:<{width}s}  change {change:<22s} {r.verdict}")
    print("verdicts:")
    for verdict in (v for v in VERDICTS if v in set(shown["verdict"])):
        print(f"  {verdict}: {VERDICTS[verdict]}")
        if verdict == NO_INTERVAL:
            for reason in dict.fromkeys(shown.loc[shown["verdict"] == verdict, "reason"]):
                print(f"    {reason}")
    print(f"-> {', '.join(str(p) for p in written)}")
    return 0


def add_parser(sub) -> None:
    from fexa.cli import add_task, add_time_range

    p = sub.add_parser("compare", help="change across visits of the same person, with uncertainty",
                       description="Analyse a baseline recording and later ones of the same person (visits, before/"
                       "after treatment) and report each measure's change with a 95% bootstrap interval over the "
                       "task's repetitions (or 5-s windows), flagging changes within the measure's test-retest "
                       "noise (estimated by splitting each recording's repetitions in halves). Counts are compared "
                       "per minute of recording. The later recordings' faces are compared with the baseline's "
                       "(face descriptors): a different face is warned about.")
    p.add_argument("baseline", metavar="BASELINE", help="the first recording (video, image folder)")
    p.add_argument("visits", nargs="+", metavar="VISIT", help="later recordings of the same person and task")
    add_task(p, "the baseline's, detected from its movement, for every recording")
    add_time_range(p)
    p.add_argument("--labels", nargs="+", metavar="NAME", help="a name per recording, baseline first (default: file names)")
    p.add_argument("--out", default="comparison", metavar="DIR",
                   help="folder for compare.html, compare.<format>, compare.png and the cache (default: comparison)")
    p.add_argument("--format", choices=["csv", "parquet", "json"], default="csv", help="format of the table")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the half splits")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
