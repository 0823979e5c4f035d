"""Throughput of the face pipeline on a 640x480 clip, stage by stage (frames per second).

    python benchmarks/bench_pipeline.py [--video PATH] [--frames N]

By default a LivePortrait driving clip from ../shared/data (or, without it, the bundled demo clip)
is letterboxed to 640x480 and written to a temporary H.264 file first (not timed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fexa.analysis.analyzer import Analyzer
from fexa.extract import ExtractConfig, extract_one
from fexa.face.align import apply_transform, crop_transforms, warp_crop
from fexa.face.detector import FaceTracker, native_output_silenced
from fexa.face.tracks import TrackSet
from fexa.io.media import Media, read_all
from fexa.io.video_writer import VideoWriter
from fexa.represent import HeatmapConfig, TrajectoryConfig
from fexa.represent.heatmap import heatmap_volume
from fexa.face.landmarks import get_layout, get_scheme
from fexa.represent.trajectory import sample_rgb, trajectory

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared/data/liveportrait_driving_videos/d6.mp4"


def letterbox(frame: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    import cv2

    s = min(w / frame.shape[1], h / frame.shape[0])
    small = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y:y + small.shape[0], x:x + small.shape[1]] = small
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:9.1f} frames/s  ({n} frames in {seconds:.2f} s)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT if DEFAULT.exists() else REPO / "fexa/data/demo/single_face.mp4")
    ap.add_argument("--frames", type=int, default=600)
    args = ap.parse_args()

    _, src, _ = read_all(args.video)
    frames = np.stack([letterbox(f) for f in src[: args.frames]])
    tmp = Path(tempfile.mkdtemp())
    clip = tmp / "clip640x480.mp4"
    with VideoWriter(clip, 30.0) as w:
        for f in frames:
            w.write(f)
    n = len(frames)
    print(f"clip: {args.video.name} letterboxed to 640x480, {n} frames")

    t = time.perf_counter()
    decoded = [fr.rgb for fr in Media(clip).frames()]
    print("decode (PyAV)           ", rate(n, time.perf_counter() - t))

    with native_output_silenced():
        tracker = FaceTracker()
        t = time.perf_counter()
        obs = [tracker(f) for f in decoded]
        dt = time.perf_counter() - t
        calls = tracker.detector_calls
        tracker.close()
    print("detect + landmarks      ", rate(n, dt), f" detector ran on {calls} frames")

    ts = TrackSet.from_observations(obs)
    pts = ts.points[ts.main_track()]
    usable = ts.valid(ts.main_track())
    t = time.perf_counter()
    m = crop_transforms(pts, "mediapipe478", usable)
    crop_pts = apply_transform(pts, m)
    with VideoWriter(tmp / "crops.mp4", 30.0) as w:
        crops = []
        for f, mi in zip(decoded, m):
            c = warp_crop(f, mi, 256)
            crops.append(c)
            w.write(c)
    print("align + crop + write    ", rate(n, time.perf_counter() - t))
    crops = np.stack(crops)

    h73 = get_scheme("heatmap73").select(crop_pts, "mediapipe478")
    for mode, size in (("gray", 64), ("jet", 64), ("rgb_weighted", 64), ("gray", 56)):
        t = time.perf_counter()
        heatmap_volume(h73, HeatmapConfig(mode=mode, out_size=size), crops if mode == "rgb_weighted" else None)
        print(f"heatmaps {mode:12s} {size}x{size}", rate(n, time.perf_counter() - t))

    traj_pts = get_scheme("traj63").select(crop_pts, "mediapipe478")
    nose = crop_pts[:, get_layout("mediapipe478").nose_tip]
    t = time.perf_counter()
    rgb = sample_rgb(crops, traj_pts)
    x, _ = trajectory(traj_pts, nose, rgb, TrajectoryConfig(length=n))
    print("trajectories (C=5)      ", rate(n, time.perf_counter() - t))

    t = time.perf_counter()
    meta = extract_one(clip, tmp / "entry", ExtractConfig())
    print("end-to-end fexa extract ", rate(meta["frames"], time.perf_counter() - t), f" status {meta['status']}")

    # fexa analyze on the cached entry: measures, then each output it writes
    res = Analyzer(cache=tmp / "analyze").analyze(clip)  # extracts once (not timed below)
    t = time.perf_counter()
    res = Analyzer(cache=tmp / "analyze").analyze(clip)
    print("analyze: signals+measures", rate(n, time.perf_counter() - t))
    for name, write in (("plots (PNG)", lambda: res.plot_all(tmp)), ("report (HTML)", lambda: res.to_html(tmp / "r.html")),
                        ("overlay (MP4)", lambda: res.write_overlay(tmp / "overlay.mp4"))):
        t = time.perf_counter()
        write()
        print(f"analyze: {name:16s}", f"{time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
