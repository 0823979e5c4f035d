"""Model inputs built from a cached track: heatmap volumes, trajectories, clips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from fexa.face.landmarks import get_layout, get_scheme
from fexa.io.trackfile import TrackData
from fexa.represent.heatmap import HeatmapConfig, heatmap_volume
from fexa.represent.sampling import clip_indices, segment_indices
from fexa.represent.trajectory import TrajectoryConfig, sample_rgb, trajectory

__all__ = [
    "HeatmapConfig", "TrajectoryConfig", "clip_indices", "segment_indices", "load_crops",
    "track_heatmaps", "track_trajectory",
]


def load_crops(entry: str | Path) -> np.ndarray:
    """[T, S, S, 3] uint8 aligned crops of an extract entry (from its crops.mp4)."""
    from fexa.io.media import read_all  # the decoders: not imported by loader workers

    return read_all(Path(entry) / "crops.mp4")[1]


def track_heatmaps(track: TrackData, cfg: HeatmapConfig = HeatmapConfig(), crops: np.ndarray | None = None,
                   frames: np.ndarray | None = None) -> np.ndarray:
    """[T', C, S, S] heatmap volume of the track's frames ``frames`` (default all), heatmap73 points."""
    idx = np.arange(track.num_frames) if frames is None else np.asarray(frames)
    pts = get_scheme("heatmap73").select(track.points_crop[idx], track.layout)
    cfg = replace(cfg, src_size=track.crop_size)
    return heatmap_volume(pts, cfg, None if crops is None else crops[idx])


def track_trajectory(track: TrackData, cfg: TrajectoryConfig = TrajectoryConfig(), crops: np.ndarray | None = None,
                     frames: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """TraMP-Former input [T_p, 63, C] and time index [T_p] from the track's frames ``frames``
    (default: its usable frames; frames without a face are left out, as the reference's landmark
    files have none)."""
    keep = np.flatnonzero(track.usable) if frames is None else np.asarray(frames)
    if len(keep) == 0:
        raise ValueError("the track has no usable frame")
    scheme = get_scheme("traj63")
    pts = scheme.select(track.points_crop[keep], track.layout)
    nose = track.points_crop[keep][:, get_layout(track.layout).nose_tip]
    rgb = None
    if cfg.channels != 2:
        if crops is None:
            raise ValueError(f"{cfg.channels}-channel trajectories need the crops (fexa.represent.load_crops)")
        rgb = sample_rgb(crops[keep], pts)
    return trajectory(pts, nose, rgb, cfg)
