"""What identifying an input by content costs, against extracting it.

    python benchmarks/bench_fingerprint.py [--seconds 200] [--runs 5] [--json out.json]

Writes a 640x480, 30 fps H.264 video of ``--seconds`` (the demo clip looped, letterboxed; not timed),
then times (medians of ``--runs``): the content fingerprint of the file, the "is this entry done?"
check of a finished entry (fingerprint + settings + file checksums), and ``fexa extract`` on the
first 20 s (scaled to the whole video). The looped demo compresses far better than real footage,
so the fingerprint of a file of ``--phone-mb`` MB (a 200-s 1080p phone video at 16 Mbit/s is about
400 MB) is timed too. Prints a JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from fexa.extract import ExtractConfig, entry_state, extract_one
from fexa.io.fingerprint import content_fingerprint
from fexa.io.media import read_all

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "fexa/data/demo/single_face.mp4"


def write_long_video(path: Path, seconds: float, fps: int = 30) -> Path:
    frames = read_all(DEMO)[1]
    canvas = np.zeros((len(frames), 480, 640, 3), np.uint8)
    canvas[:, 60:420] = frames
    loop = np.concatenate([canvas, canvas[::-1]])  # back and forth: no jump at the seam
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 640, 480, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23"}
        for i in range(int(seconds * fps)):
            for p in s.encode(av.VideoFrame.from_ndarray(loop[i % len(loop)], format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=200.0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--phone-mb", type=int, default=400)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        long = write_long_video(d / "long.mp4", args.seconds)
        short = write_long_video(d / "short.mp4", min(20.0, args.seconds))
        cfg = ExtractConfig()
        fingerprint_s = median_time(lambda: content_fingerprint(long), args.runs)
        phone = d / "phone.mp4"
        phone.write_bytes(np.random.default_rng(0).integers(0, 256, args.phone_mb * 2**20, dtype=np.uint8).tobytes())
        phone_s = median_time(lambda: content_fingerprint(phone), args.runs)
        extract_one(long, d / "entry", cfg)  # a finished entry of the long video, for the done-check
        done_s = median_time(lambda: entry_state(d / "entry", long, cfg), args.runs)
        assert entry_state(d / "entry", long, cfg) == ""
        short_s = median_time(lambda: extract_one(short, d / "short_entry", cfg), 1)
        extract_s = short_s * args.seconds / min(20.0, args.seconds)
        result = {
            "video": f"{args.seconds:g} s, 640x480, 30 fps, H.264", "video_mb": round(long.stat().st_size / 2**20, 1),
            "fingerprint_s": round(fingerprint_s, 4), "done_check_s": round(done_s, 4),
            "extract_s_estimated": round(extract_s, 1),
            "fingerprint_fraction_of_extract": round(fingerprint_s / extract_s, 5),
            f"fingerprint_s_{args.phone_mb}mb_file": round(phone_s, 3),
            "fingerprint_gb_per_s": round(args.phone_mb / 1024 / phone_s, 2),
            "runs": args.runs,
        }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
