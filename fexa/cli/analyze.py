"""``fexa analyze``: per-frame data, kinematic measures and a report for each input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm.auto import tqdm

    from fexa.analysis.analyzer import Analyzer
    from fexa.errors import FexaError
    from fexa.extract import expand_inputs, input_ids
    from fexa.io.atomic import write_text
    from fexa.viz.overlay import write_overlay

    out = Path(args.out)
    analyzer = Analyzer(cache=out / "cache", models=args.model, task=args.task)
    paths = expand_inputs(args.inputs)
    summary = []
    for path, ident in tqdm(list(zip(paths, input_ids(paths))), desc="analyze", unit="input", disable=args.quiet):
        row = {"id": ident, "path": str(path), "status": "ok", "error": ""}
        try:
            res = analyzer.analyze(path)
            d = out / ident
            d.mkdir(parents=True, exist_ok=True)
            for name, table in (("frames", res.frames), ("measures", res.measures), ("predictions", res.predictions)):
                text = table.to_csv(index=False) if args.format == "csv" else table.to_json(orient="records", indent=1)
                write_text(d / f"{name}.{args.format}", text)
            plots = res.plot_signals(d / "signals.png"), res.plot_regions(d / "regions.png")
            res.to_html(d / "report.html", plots)
            if path.is_file() and res.track.num_frames > 1:
                write_overlay(res.track, path, d / "overlay.mp4", progress=False)
            row.update(frames=res.track.num_frames, usable=float(res.track.usable.mean()), warnings="; ".join(res.warnings))
            row.update(res.measures.set_index("measure")["value"].to_dict())
            for pred in res.predictions.to_dict("records"):
                row.update({f"{pred['model']}_{k}": v for k, v in pred.items() if k != "model"})
        except FexaError as e:
            row.update(status="error", error=str(e))
            print(f"  error  {ident}: {e}", file=sys.stderr)
        summary.append(row)
    write_text(out / "summary.csv", pd.DataFrame(summary).to_csv(index=False))
    failed = sum(r["status"] != "ok" for r in summary)
    print(f"{len(summary) - failed} of {len(summary)} inputs analysed -> {out} (summary.csv, <id>/report.html)")
    return 1 if failed else 0


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="per-frame data, kinematic measures and an HTML report per input",
                       description="Track the face, compute per-frame signals and kinematic measures (range of "
                       "motion, speed, symmetry, blinks, repetitions) and write tables, plots, an overlay video "
                       "and a self-contained HTML report for each input, plus OUT/summary.csv.")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", default="analysis", metavar="DIR")
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--model", action="append", default=[], metavar="RUN",
                   help="a fexa train run folder whose model scores each input (repeatable)")
    p.add_argument("--task", default="", help="the task performed (e.g. smile), passed to the models")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)
