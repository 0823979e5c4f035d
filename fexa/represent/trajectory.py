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
from scipy.interpolate import CubicSpline

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


def sample_rgb(frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 crops and [T, P, 2] crop landmarks -> [T, P, 3] float32 in [0, 1]
    (the pixel under each landmark, clipped to the crop)."""
    t, h, w = frames.shape[:3]
    xy = np.rint(np.nan_to_num(points[..., :2])).astype(np.int64)
    x = np.clip(xy[..., 0], 0, w - 1)
    y = np.clip(xy[..., 1], 0, h - 1)
    return frames[np.arange(t)[:, None], y, x].astype(np.float32) / 255.0


def trajectory(
    points: np.ndarray,
    nose: np.ndarray,
    rgb: np.ndarray | None = None,
    cfg: TrajectoryConfig = TrajectoryConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks [T, P, 2], nose tip [T, 2] and landmark colours [T, P, 3] -> ([T_p, P, C], time index [T_p])."""
    points = np.asarray(points, np.float64)[..., :2]
    nose = np.asarray(nose, np.float64)[..., :2]
    if points.ndim != 3 or nose.shape != (points.shape[0], 2):
        raise ValueError(f"points must be [T, P, 2] and nose [T, 2]; got {points.shape} and {nose.shape}")
    if not np.isfinite(points).all() or not np.isfinite(nose).all():
        raise ValueError("trajectory input has missing (NaN) landmarks: keep usable frames only")
    if cfg.origin == "point_mean":  # each point about its own mean position: motion only, no face layout
        rel = (points - points.mean(axis=0, keepdims=True)) / cfg.scale
    else:
        origin = nose[:1] if cfg.origin == "first" else nose
        rel = (points - origin[:, None, :]) / cfg.scale
    parts = []
    if cfg.channels in (5, 2):
        parts.append(rel)
    if cfg.channels in (5, 3):
        if rgb is None:
            raise ValueError(f"{cfg.channels}-channel trajectories need the landmark colours (rgb)")
        parts.append(np.asarray(rgb, np.float64))
    feats = np.concatenate(parts, axis=-1)
    t = len(feats)
    if cfg.padding == "interp" and t < cfg.length:
        pos = np.linspace(0, t - 1, cfg.length)
        out = CubicSpline(np.arange(t), feats, axis=0)(pos) if t >= 2 else np.repeat(feats, cfg.length, axis=0)
        index = time_index(pos, cfg.length)
    else:
        idx = fit_indices(t, cfg.length, cfg.padding)
        out = feats[np.maximum(idx, 0)]
        out[idx < 0] = 0.0
        index = time_index(np.where(idx < 0, np.arange(cfg.length), idx), cfg.length)
    if cfg.reverse:
        out = out[::-1]
    return np.ascontiguousarray(out, dtype=np.float32), index
