"""``fexa analyze``: per-frame data, kinematic measures, model predictions and a report for each input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

def write_table(table, path: Path) -> Path:
    """``table`` as CSV, JSON (records) or Parquet, chosen by ``path``'s suffix, written atomically."""
    from fexa.io.atomic import atomic_path, write_text

    if path.suffix == ".parquet":
        with atomic_path(path) as tmp:
            table.to_parquet(tmp, index=False)
    elif path.suffix == ".json":
        write_text(path, table.to_json(orient="records", indent=1))
    else:
        write_text(path, table.to_csv(index=False))
    return path


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm.auto import tqdm

    from fexa.analysis.analyzer import Analyzer
    from fexa.errors import FexaError
    from fexa.extract import expand_inputs, input_ids

    out = Path(args.out)
    analyzer = Analyzer(cache=out / "cache", models=args.model, task=args.task, smooth_window=args.smooth,
                        per_repetition=args.per_repetition, progress=not args.quiet)
    paths = expand_inputs(args.inputs)
    summary = []
    for path, ident in tqdm(list(zip(paths, input_ids(paths))), desc="analyze", unit="input", disable=args.quiet):
        row = {"id": ident, "path": str(path), "status": "ok", "error": ""}
        try:
            res = analyzer.analyze(path)
            d = out / ident
            d.mkdir(parents=True, exist_ok=True)
            for name, table in (("frames", res.frames), ("measures", res.measures), ("predictions", res.predictions),
                                ("repetitions", res.repetitions)):
                write_table(table, d / f"{name}.{args.format}")
            res.to_html(d / "report.html", res.plot_all(d))
            if res.track.num_frames > 1:
                res.write_overlay(d / "overlay.mp4", progress=not args.quiet)
            row.update(frames=res.track.num_frames, usable=float(res.track.usable.mean()), task=res.task,
                       warnings="; ".join(res.warnings))
            row.update(res.measures.set_index("measure")["value"].to_dict())
            for pred in res.predictions.to_dict("records"):
                row.update({f"{pred['model']}_{k}": v for k, v in pred.items() if k != "model"})
        except FexaError as e:
            row.update(status="error", error=str(e))
            print(f"  error  {ident}: {e}", file=sys.stderr)
        summary.append(row)
    write_table(pd.DataFrame(summary), out / f"summary.{args.format}")
    failed = sum(r["status"] != "ok" for r in summary)
    print(f"{len(summary) - failed} of {len(summary)} inputs analysed -> {out} (summary.{args.format}, "
          "<id>/report.html)")
    return 1 if failed else 0


def add_parser(sub) -> None:
    from fexa.analysis.measures import TASKS

    p = sub.add_parser("analyze", help="per-frame data, kinematic measures, predictions and an HTML report per input",
                       description="Track the face, compute per-frame signals and kinematic measures (range of "
                       "motion, speed, symmetry, blinks, repetitions), run trained models if given, and write "
                       "tables, plots, an overlay video and a self-contained HTML report for each input, plus "
                       "OUT/summary.<format> with one row per input.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="videos, images, frame folders or folders of videos")
    p.add_argument("--task", default="auto", choices=[*TASKS, "auto"], metavar="TASK",
                   help=f"the task performed: {', '.join(TASKS)}, or auto (detected from the movement; default)")
    p.add_argument("--model", action="append", default=[], metavar="RUN_OR_CHECKPOINT",
                   help="a fexa train run folder (or a checkpoint in one) whose model scores each input (repeatable)")
    p.add_argument("--out", default="analysis", metavar="DIR")
    p.add_argument("--format", choices=["csv", "parquet", "json"], default="csv", help="format of the tables")
    p.add_argument("--smooth", type=int, default=256, metavar="FRAMES",
                   help="smooth-predicting window of per-frame models, in frames (CFC-SP; 0: none)")
    p.add_argument("--per-repetition", action="store_true",
                   help="clip models also score each repetition of the task's movement (models trained on "
                   "Toronto NeuroFace's per-repetition subclips); the input's score is their mean")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
