"""``fexa extract``'s speed with each face backend, side by side in one run: mediapipe 0.10.21 (one process, and
``--workers 2``), fexa's torch models one input at a time, and torch with batched streams (``--streams S``:
S inputs at once, their face models' calls batched; on ``--device``).

    python benchmarks/bench_extract_speed.py [CLIP ...] [--copies 2] [--streams 2 4 8] [--repeats 3]
        [--device cpu|cuda] [--no-crops] [--json OUT.json]

Every configuration extracts the same inputs (each clip copied ``--copies`` times under other names, so each
copy is its own entry) into a fresh folder; the time is the wall-clock of ``extract_many`` (decoding, face
tracking, identity checks and, unless ``--no-crops``, the crops written), the median of ``--repeats`` runs,
the configurations alternating. Prints frames per second and writes the JSON. mediapipe's rows need the
``fexa[mediapipe]`` extra (left out without it, and on a GPU). Default clips: bench_face_backends.py's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av

from bench_face_backends import DEFAULT_CLIPS, DEMO, SHARED
from fexa.extract import ExtractConfig, extract_many
from fexa.face.detector import TrackerConfig


def frame_count(path: Path) -> int:
    """Frames of a video, counted by decoding it."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def configurations(streams: list[int], device: str, mediapipe: bool) -> dict[str, dict]:
    """name -> extract_many's keyword arguments, for each configuration measured."""
    out = {}
    if mediapipe and device == "cpu":
        out["mediapipe"] = {"backend": "mediapipe", "workers": 1, "streams": 1}
        out["mediapipe --workers 2"] = {"backend": "mediapipe", "workers": 2, "streams": 1}
    out["torch"] = {"backend": "torch", "workers": 1, "streams": 1}
    for s in streams:
        out[f"torch --streams {s}"] = {"backend": "torch", "workers": 1, "streams": s}
    return out


def run(inputs: list[Path], out: Path, setting: dict, device: str, crops: bool) -> float:
    """Seconds one extraction of ``inputs`` into the fresh folder ``out`` took."""
    tracker = TrackerConfig(backend=setting["backend"], device=device if setting["backend"] == "torch" else "cpu")
    t0 = time.perf_counter()
    df = extract_many(inputs, out, ExtractConfig(write_crops=crops, tracker=tracker), workers=setting["workers"],
                      streams=setting["streams"], progress=False)
    seconds = time.perf_counter() - t0
    bad = df[~df["status"].isin(("ok", "partial"))]
    if len(bad):
        raise RuntimeError(f"{len(bad)} inputs not extracted: {bad[['path', 'status', 'error']].to_dict('records')}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="*", type=Path, help="videos (default: the demo clip and bench_face_backends' clips)")
    p.add_argument("--copies", type=int, default=2, help="copies of each clip (default 2)")
    p.add_argument("--streams", type=int, nargs="*", default=[2, 4, 8], help="stream counts to measure (default 2 4 8)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each configuration (default 3)")
    p.add_argument("--device", default="cpu", help="where the torch models run (default cpu)")
    p.add_argument("--no-crops", action="store_true", help="do not write crops (the tracking's time only)")
    p.add_argument("--json", type=Path, default=Path("bench_extract_speed.json"), help="where to write the results")
    args = p.parse_args(argv)
    clips = args.clips or [DEMO, *(SHARED / c for c in DEFAULT_CLIPS if (SHARED / c).is_file())]
    have_mediapipe = importlib.util.find_spec("mediapipe") is not None
    settings = configurations(args.streams, args.device, have_mediapipe)
    times: dict[str, list[float]] = {name: [] for name in settings}
    with tempfile.TemporaryDirectory(prefix="fexa-extract-speed-") as tmp:
        inputs = []
        for clip in clips:
            for k in range(args.copies):
                inputs.append(Path(tmp) / "in" / f"{clip.stem}_{k}{clip.suffix}")
                inputs[-1].parent.mkdir(exist_ok=True)
                shutil.copyfile(clip, inputs[-1])
        frames = sum(frame_count(c) for c in clips) * args.copies
        print(f"{len(inputs)} inputs, {frames} frames; device {args.device}; crops {'no' if args.no_crops else 'yes'}")
        for r in range(args.repeats):
            for name, setting in settings.items():
                out = Path(tmp) / f"out{r}_{len(times[name])}_{name.replace(' ', '')}"
                times[name].append(run(inputs, out, setting, args.device, not args.no_crops))
                shutil.rmtree(out)
                print(f"  run {r + 1}: {name:24s} {times[name][-1]:7.2f} s", flush=True)
    results = {"inputs": len(inputs), "frames": frames, "device": args.device, "crops": not args.no_crops,
               "clips": [str(c) for c in clips], "configurations": {}}
    print(f"{'configuration':24s} {'median s':>9s} {'frames/s':>9s}")
    for name, ts in times.items():
        median = statistics.median(ts)
        results["configurations"][name] = {"seconds": ts, "median_s": median, "frames_per_s": frames / median}
        print(f"{name:24s} {median:9.2f} {frames / median:9.1f}")
    args.json.write_text(json.dumps(results, indent=1))
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
