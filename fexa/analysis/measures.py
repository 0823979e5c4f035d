"""Interpretable kinematic measures of facial movement, computed from a cached track (no training).

All positions are taken in the aligned crop (head translation, roll and scale removed by the
crop transform), relative to the nose tip of the same frame, and divided by the inter-ocular
distance (outer eye corners): 1.0 = one eye-to-eye distance. Speeds are per second.

Per-frame signals (``frame_signals``):
  eye_aperture_{right,left}  mean of three upper-to-lower lid distances / eye width
  mouth_width                corner-to-corner distance / IOD
  mouth_opening              inner-lip gap at the midline / IOD
  brow_height_{right,left}   mean brow-point height above the eye corners / IOD
  lip_protrusion             depth of the mid-lips in front of the mouth corners / IOD (kiss, blow)

Measures (``compute_measures``): per region of the trajectory scheme, range of motion (largest
mean displacement from the rest frame), peak speed and time to peak; mouth-corner, brow and eye
symmetry indices |R - L| / (R + L) (0: symmetric, 1: one side only); blink count, rate and eye
closure depth; mouth width / opening ROM; repetitions of a movement with their amplitude,
variability (coefficient of variation) and fatigue (relative amplitude change per repetition).
Measures from fewer than half usable frames are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from fexa.face.landmarks import get_layout, get_scheme
from fexa.io.trackfile import TrackData

# mediapipe mesh indices
_EYE_R = {"outer": 33, "inner": 133, "pairs": ((160, 144), (159, 145), (158, 153))}
_EYE_L = {"outer": 263, "inner": 362, "pairs": ((387, 373), (386, 374), (385, 380))}
_BROW_R, _BROW_L = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)
_CORNER_R, _CORNER_L, _LIP_UP, _LIP_LOW = 61, 291, 13, 14
_MID_LIPS = (0, 17, 13, 14)


def _require_mesh(track: TrackData) -> None:
    if track.layout != "mediapipe478":
        raise ValueError(f"kinematic measures need fexa's mediapipe tracks, not {track.layout!r} landmarks")


def normalized_points(track: TrackData) -> np.ndarray:
    """[T, N, 2] crop points relative to each frame's nose tip, in inter-ocular distances (NaN where unusable)."""
    p = track.points_crop.astype(np.float64)
    lay = get_layout(track.layout)
    iod = np.linalg.norm(p[:, lay.left_eye_outer] - p[:, lay.right_eye_outer], axis=1)
    return (p - p[:, lay.nose_tip][:, None]) / iod[:, None, None]


def frame_signals(track: TrackData) -> pd.DataFrame:
    """Per-frame expression signals (see the module docstring); NaN where the face is missing."""
    _require_mesh(track)
    p = normalized_points(track)
    z = track.points[..., 2].astype(np.float64)
    lay = get_layout(track.layout)
    iod_px = np.linalg.norm(track.points[:, lay.left_eye_outer, :2] - track.points[:, lay.right_eye_outer, :2], axis=1)

    def aperture(eye: dict) -> np.ndarray:
        width = np.linalg.norm(p[:, eye["outer"]] - p[:, eye["inner"]], axis=1)
        gaps = [np.linalg.norm(p[:, a] - p[:, b], axis=1) for a, b in eye["pairs"]]
        return np.mean(gaps, axis=0) / width

    def brow(points: tuple[int, ...], eye: dict) -> np.ndarray:
        eye_y = (p[:, eye["outer"], 1] + p[:, eye["inner"], 1]) / 2
        return eye_y - p[:, list(points), 1].mean(axis=1)  # y grows downwards: positive = brow above eye

    df = pd.DataFrame({
        "time": track.times,
        "usable": track.usable,
        "eye_aperture_right": aperture(_EYE_R),
        "eye_aperture_left": aperture(_EYE_L),
        "mouth_width": np.linalg.norm(p[:, _CORNER_R] - p[:, _CORNER_L], axis=1),
        "mouth_opening": np.linalg.norm(p[:, _LIP_UP] - p[:, _LIP_LOW], axis=1),
        "brow_height_right": brow(_BROW_R, _EYE_R),
        "brow_height_left": brow(_BROW_L, _EYE_L),
        "lip_protrusion": (z[:, [_CORNER_R, _CORNER_L]].mean(axis=1) - z[:, list(_MID_LIPS)].mean(axis=1)) / iod_px,
    })
    df.loc[~track.usable, df.columns[2:]] = np.nan
    return df


@dataclass(frozen=True)
class Blinks:
    count: int
    rate_per_min: float
    frames: tuple[int, ...]  # frame of deepest closure of each blink
    closure_depth: float  # 1 - (lowest aperture / open aperture), over the clip


def detect_blinks(aperture: np.ndarray, fps: float, depth: float = 0.5, max_duration: float = 0.5,
                  min_gap: float = 0.15) -> Blinks:
    """Blinks in an eye-aperture signal: dips below ``1 - depth`` of the open-eye level (the 90th
    percentile) lasting at most ``max_duration`` seconds, at least ``min_gap`` seconds apart.
    Narrowings shallower than ``depth`` (squints, speech) are not blinks."""
    a = pd.Series(aperture).interpolate(limit_direction="both").to_numpy()
    if not np.isfinite(a).any() or fps <= 0:
        return Blinks(0, 0.0, (), float("nan"))
    open_level = np.nanpercentile(a, 90)
    closure = 1 - a / open_level
    peaks, props = find_peaks(closure, height=depth, distance=max(1, int(round(min_gap * fps))),
                              width=(None, max_duration * fps), rel_height=0.5)
    duration = len(a) / fps
    return Blinks(len(peaks), 60.0 * len(peaks) / duration if duration else 0.0, tuple(int(x) for x in peaks),
                  float(np.nanmax(closure)))


def segment_repetitions(signal: np.ndarray, fps: float, min_period: float = 0.5,
                        prominence: float = 0.3) -> pd.DataFrame:
    """Repetitions of one movement in a signal (e.g. mouth width in repeated smiles): peaks at least
    ``min_period`` s apart whose prominence is at least ``prominence`` x the signal's range.
    Returns one row per repetition: peak frame, time, amplitude (peak minus the preceding trough)."""
    s = pd.Series(signal).interpolate(limit_direction="both").to_numpy()
    if not np.isfinite(s).any():
        return pd.DataFrame(columns=["frame", "time", "amplitude"])
    span = np.nanmax(s) - np.nanmin(s)
    peaks, _ = find_peaks(s, prominence=prominence * span if span > 0 else np.inf,
                          distance=max(1, int(round(min_period * fps))))
    rows, start = [], 0
    for k in peaks:
        trough = np.nanmin(s[start:k + 1])
        rows.append({"frame": int(k), "time": k / fps, "amplitude": float(s[k] - trough)})
        start = k
    return pd.DataFrame(rows, columns=["frame", "time", "amplitude"])


def _symmetry(right: float, left: float) -> float:
    total = abs(right) + abs(left)
    return abs(abs(right) - abs(left)) / total if total > 0 else 0.0


def region_motion(track: TrackData, rest: int | None = None) -> pd.DataFrame:
    """Per traj63 region: range of motion from the rest frame (IOD), peak speed (IOD/s), time to peak (s)."""
    _require_mesh(track)
    p = normalized_points(track)
    use = np.flatnonzero(track.usable)
    rest = int(use[0]) if rest is None else rest
    scheme = get_scheme("traj63")
    pts = scheme.select(p, track.layout)
    disp = np.linalg.norm(pts - pts[rest], axis=-1)  # [T, 63]
    fps = track.fps or 25.0
    rows = []
    regions = {name: disp[:, scheme.region_slice(name)].mean(axis=1) for name in scheme.region_names}
    regions["mouth_corner_right"] = np.linalg.norm(p[:, _CORNER_R] - p[rest, _CORNER_R], axis=1)
    regions["mouth_corner_left"] = np.linalg.norm(p[:, _CORNER_L] - p[rest, _CORNER_L], axis=1)
    for name, d in regions.items():
        d = np.where(track.usable, d, np.nan)
        speed = np.abs(np.diff(d)) * fps
        k = int(np.nanargmax(d))
        rows.append({"region": name, "rom": float(np.nanmax(d)),
                     "peak_speed": float(np.nanmax(speed)) if np.isfinite(speed).any() else float("nan"),
                     "time_to_peak": float(track.times[k] - track.times[rest])})
    return pd.DataFrame(rows)


def compute_measures(track: TrackData, rest: int | None = None) -> pd.DataFrame:
    """All measures of one track as rows: measure, value, unit, flag."""
    sig = frame_signals(track)
    motion = region_motion(track, rest).set_index("region")
    fps = track.fps or 25.0
    aperture = sig[["eye_aperture_right", "eye_aperture_left"]].mean(axis=1).to_numpy()
    blinks = detect_blinks(aperture, fps)
    rows = []

    def add(name: str, value: float, unit: str) -> None:
        rows.append({"measure": name, "value": float(value), "unit": unit})

    for region, r in motion.iterrows():
        add(f"rom_{region}", r["rom"], "IOD")
        add(f"peak_speed_{region}", r["peak_speed"], "IOD/s")
        add(f"time_to_peak_{region}", r["time_to_peak"], "s")
    rom = motion["rom"]
    add("symmetry_mouth_corners", _symmetry(rom["mouth_corner_right"], rom["mouth_corner_left"]), "index")
    add("symmetry_brows", _symmetry(rom["right_brow"], rom["left_brow"]), "index")
    eyes = np.nanmean(sig["eye_aperture_right"]), np.nanmean(sig["eye_aperture_left"])
    add("symmetry_eye_aperture", _symmetry(*eyes), "index")
    add("blink_count", blinks.count, "blinks")
    add("blink_rate", blinks.rate_per_min, "1/min")
    add("eye_closure_depth", blinks.closure_depth, "fraction")
    for name in ("mouth_width", "mouth_opening", "lip_protrusion"):
        s = sig[name].to_numpy()
        add(f"{name}_rom", np.nanmax(s) - np.nanmin(s) if np.isfinite(s).any() else np.nan, "IOD")
    reps = segment_repetitions(sig["mouth_width"].to_numpy(), fps)
    add("repetitions", len(reps), "count")
    amp = reps["amplitude"].to_numpy(float)
    add("repetition_variability", amp.std() / amp.mean() if len(amp) > 1 and amp.mean() > 0 else np.nan, "CV")
    slope = np.polyfit(np.arange(len(amp)), amp, 1)[0] / amp.mean() if len(amp) > 2 and amp.mean() > 0 else np.nan
    add("fatigue", slope, "fraction/repetition")
    df = pd.DataFrame(rows)
    df["flag"] = "fewer than half the frames usable" if track.usable.mean() < 0.5 else ""
    return df
