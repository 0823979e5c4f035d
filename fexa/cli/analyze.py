"""``fexa analyze``: per-frame data, kinematic measures, model predictions and a report for each input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fexa.cli import add_face_backend, add_folder_as, add_task, add_time_range


def run(args: argparse.Namespace) -> int:
    from fexa.analysis.analyzer import Analyzer
    from fexa.extract import ExtractConfig
    from fexa.face.detector import TrackerConfig

    extract = ExtractConfig(tracker=TrackerConfig(backend=args.face_backend))
    analyzer = Analyzer(cache=Path(args.out) / "cache", extract=extract, models=args.model, task=args.task,
                        smooth_window=args.smooth, per_repetition=args.per_repetition, progress=not args.quiet,
                        faces=args.faces, window=0.0 if args.per_repetition else args.window, stride=args.stride,
                        start=args.start, end=args.end)
    summary = analyzer.analyze_many(args.inputs, args.out, args.format,
                                    on_error=lambda ident, why: print(f"  error  {ident}: {why}", file=sys.stderr),
                                    folder_as=args.folder_as)
    failed = summary.loc[summary["status"] != "ok", "path"].nunique()
    inputs = summary["path"].nunique()
    faces = f", {len(summary) - failed} faces" if args.faces == "all" else ""
    print(f"{inputs - failed} of {inputs} inputs analysed{faces} -> {args.out} (summary.{args.format}, "
          "<id>/report.html)")
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="per-frame data, kinematic measures, predictions and an HTML report per input",
                       description="Track the face, compute per-frame signals and kinematic measures (range of "
                       "motion, speed, symmetry, blinks, repetitions), run trained models if given, and write "
                       "tables, plots, an overlay video and a self-contained HTML report for each input, plus "
                       "OUT/summary.<format> with one row per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, images, frame folders or folders of videos")
    add_task(p)
    p.add_argument("--model", action="append", default=[], metavar="RUN_OR_CHECKPOINT",
                   help="a fexa train run folder (or a checkpoint in one) whose model scores each input (repeatable)")
    p.add_argument("--out", default="analysis", metavar="DIR",
                   help="folder for the results: OUT/<id>/ per input (tables, plots, overlay, report.html), "
                   "OUT/summary.<format> with one row per input, OUT/cache/ (default: analysis)")
    add_folder_as(p)
    add_time_range(p)
    add_face_backend(p)
    p.add_argument("--faces", choices=["main", "all"], default="main",
                   help="main: the main subject of each input (the face seen longest; default); all: every face "
                   "seen in at least 10 frames, each with its own row and OUT/<id>/face_<k>/ folder")
    p.add_argument("--format", choices=["csv", "parquet", "json"], default="csv", help="format of the tables")
    p.add_argument("--smooth", type=int, default=256, metavar="FRAMES",
                   help="smooth-predicting window of per-frame models, in frames (CFC-SP; 0: none)")
    p.add_argument("--per-repetition", action="store_true",
                   help="clip models also score each repetition of the task's movement (models trained on "
                   "Toronto NeuroFace's per-repetition subclips); the input's score is their mean")
    p.add_argument("--window", type=float, default=2.0, metavar="SECONDS",
                   help="clip models also score sliding windows this long: a curve over time (default 2; 0: none)")
    p.add_argument("--stride", type=float, default=0.5, metavar="SECONDS",
                   help="step between the sliding windows (default 0.5)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
