"""TraMP-Former landmark trajectories: [T_p, P, C] with C = (x, y, R, G, B), (x, y) or (R, G, B).

Positions are in crop pixels relative to the nose tip: of the first frame (``origin="first"``,
what the reference code computes, so head motion is kept) or of each frame (``"frame"``, head
translation removed); ``"point_mean"`` (a fexa option) takes each point about its own mean
position over the clip, leaving only the motion. Clips are brought to T_p frames by looping short clips and keeping the
last T_p frames of long ones (the paper's choice: expressions may start late); the ablation's
zero, duplicate-last and cubic-interpolation paddings are options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PADDINGS = ("loop", "zero", "duplicate", "interp")
ORIGINS = ("first", "frame", "point_mean")
CHANNELS = {5: ("x", "y", "r", "g", "b"), 2: ("x", "y"), 3: ("r", "g", "b")}


@dataclass(frozen=True)
class TrajectoryConfig:
    length: int = 128  # T_p: 64 (sit at rest), 128 or 256
    channels: int = 5
    origin: str = "first"
    padding: str = "loop"
    reverse: bool = False  # time reversal (training augmentation)
    scale: float = 1.0  # positions are divided by this (1: crop pixels, as the reference)

    def __post_init__(self) -> None:
        if self.channels not in CHANNELS:
            raise ValueError(f"trajectory channels must be one of {sorted(CHANNELS)}, got {self.channels}")
        if self.padding not in PADDINGS:
            raise ValueError(f"trajectory padding must be one of {PADDINGS}, got {self.padding!r}")
        if self.origin not in ORIGINS:
            raise ValueError(f"trajectory origin must be one of {ORIGINS}, got {self.origin!r}")
        if self.length < 1:
            raise ValueError(f"trajectory length must be >= 1, got {self.length}")


def fit_indices(num_frames: int, length: int, padding: str = "loop") -> np.ndarray:
    """Source frame of each of ``length`` output steps; -1 marks a zero-padded step.

    Long clips keep their last ``length`` frames whatever the padding."""
    if num_frames < 1:
        raise ValueError("a trajectory needs at least one frame")
    i = np.arange(length)
    if num_frames >= length:
        return num_frames - length + i
    if padding == "loop":
        return i % num_frames
    if padding == "duplicate":
        return np.minimum(i, num_frames - 1)
    if padding == "zero":
        return np.where(i < num_frames, i, -1)
    raise ValueError(f"fit_indices has no index form for padding {padding!r}")


def time_index(indices: np.ndarray, length: int) -> np.ndarray:
    """The reference code's normalised time 2*idx/T_p - 1 fed to the skate-embedding.

    It exceeds 1 for frames of truncated long clips, as in the reference."""
    return (2.0 * np.asarray(indices, np.float64) / length - 1.0).astype(np.float32)


def landmark_colours(frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 crops and [T, P, 2] crop landmarks -> [T, P, 3] uint8: the pixel under
    each landmark (rounded, clipped to the crop)."""
    t, h, w = frames.shape[:3]
    xy = np.rint(np.nan_to_num(points[..., :2])).astype(np.int64)
    x = np.clip(xy[..., 0], 0, w - 1)
    y = np.clip(xy[..., 1], 0, h - 1)
    return frames[np.arange(t)[:, None], y, x]


def sample_rgb(frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """:func:`landmark_colours` as float32 in [0, 1] (the trajectories' colour channels)."""
    return landmark_colours(frames, points).astype(np.float32) / 255.0


def trajectory(
    points: np.ndarray,
    nose: np.ndarray,
    rgb: np.ndarray | None = None,
    cfg: TrajectoryConfig = TrajectoryConfig(),
    frames: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks [T, P, 2], nose tip [T, 2] and landmark colours [T, P, 3] (float in [0, 1], or
    uint8 as :func:`landmark_colours` gives) -> ([T_p, P, C], time index [T_p]).

    ``frames``: the rows of the arrays that make the clip (default: all). Only the rows the output
    uses are read, so memory-mapped arrays of a long video cost what the clip uses."""
    rows = np.arange(len(points)) if frames is None else np.asarray(frames)
    if len(rows) == 0:
        raise ValueError("a trajectory needs at least one frame")
    t = len(rows)
    interp = cfg.padding == "interp" and t < cfg.length
    if interp:
        idx, used = None, rows
    else:
        idx = fit_indices(t, cfg.length, cfg.padding)
        used = rows[np.maximum(idx, 0)]
    pts = np.asarray(points[used], np.float64)[..., :2]
    if pts.ndim != 3 or np.shape(nose)[1:] != (2,) or len(nose) != len(points):
        raise ValueError(f"points must be [T, P, 2] and nose [T, 2]; got {np.shape(points)} and {np.shape(nose)}")
    if cfg.origin == "point_mean":  # each point about its own mean position: motion only, no face layout
        every = pts if interp else np.asarray(points[rows], np.float64)[..., :2]
        origin = every.mean(axis=0, keepdims=True)[0]
    else:
        origin = np.asarray(nose[rows[:1] if cfg.origin == "first" else used], np.float64)[:, None, :2]
    if not np.isfinite(pts).all() or not np.isfinite(origin).all():
        raise ValueError("trajectory input has missing (NaN) landmarks: keep usable frames only")
    parts = []
    if cfg.channels in (5, 2):
        parts.append((pts - origin) / cfg.scale)
    if cfg.channels in (5, 3):
        if rgb is None:
            raise ValueError(f"{cfg.channels}-channel trajectories need the landmark colours (rgb)")
        colours = np.asarray(rgb[used])
        parts.append(colours.astype(np.float32) / 255.0 if colours.dtype == np.uint8 else colours)
    feats = np.concatenate(parts, axis=-1, dtype=np.float64)
    if interp:
        from scipy.interpolate import CubicSpline  # the ablation's padding only

        pos = np.linspace(0, t - 1, cfg.length)
        out = CubicSpline(np.arange(t), feats, axis=0)(pos) if t >= 2 else np.repeat(feats, cfg.length, axis=0)
        index = time_index(pos, cfg.length)
    else:
        out = feats
        out[idx < 0] = 0.0
        index = time_index(np.where(idx < 0, np.arange(cfg.length), idx), cfg.length)
    if cfg.reverse:
        out = out[::-1]
    return np.ascontiguousarray(out, dtype=np.float32), index
