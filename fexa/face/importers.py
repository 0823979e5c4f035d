"""Import landmarks computed elsewhere into fexa tracks, so the authors' files can be used as is.

- insightface 2d106 arrays: ``[T, 106, 2]``, or the released 73-point files ``[T, 73, 2]``
  (points 33-105; a 74-point variant has one extra leading point, dropped). They are in the
  256x256 crop the authors saved, so they are taken as crop coordinates.
- OpenFace 2 CSV (FeatureExtraction output): 68 points ``x_0..x_67, y_0..y_67`` in frame pixels;
  rows with ``success == 0`` become missing frames; fexa's aligned-crop transform is computed.
  OpenFace's own head pose uses another convention and is not imported (pose is NaN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fexa.errors import FexaError
from fexa.face.align import crop_transforms
from fexa.io.trackfile import TrackData


def from_insightface(array: np.ndarray, fps: float = 30.0, crop_size: int = 256) -> TrackData:
    """[T, 106|73|74, >=2] insightface landmarks (crop pixels) -> TrackData."""
    a = np.asarray(array, np.float32)
    if a.ndim != 3 or a.shape[-1] < 2 or a.shape[1] not in (106, 73, 74):
        raise FexaError(f"insightface landmarks must be [T, 106|73|74, 2]; got shape {a.shape}")
    a = a[..., :2]
    if a.shape[1] == 74:
        a = a[:, 1:]
    layout = "insightface106" if a.shape[1] == 106 else "insightface73"
    return TrackData.from_landmarks(a, layout, fps, crop_size, (crop_size, crop_size))


def load_insightface(path: str | Path, fps: float = 30.0, crop_size: int = 256) -> TrackData:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FexaError(f"cannot read landmark array {path}: {e}") from None
    return from_insightface(arr, fps, crop_size)


def load_openface_csv(path: str | Path, crop_size: int = 256) -> TrackData:
    """OpenFace 2 FeatureExtraction CSV -> TrackData (layout ibug68)."""
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise FexaError(f"cannot read OpenFace CSV {path}: {e}") from None
    df.columns = [c.strip() for c in df.columns]
    cols = [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise FexaError(f"{path} is not an OpenFace landmark CSV: missing columns {missing[:4]}"
                        f"{' ...' if len(missing) > 4 else ''}")
    if df.empty:
        raise FexaError(f"OpenFace CSV has no rows: {path}")
    xy = df[cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
    pts = np.stack([xy[:, :68], xy[:, 68:]], axis=-1)
    if "success" in df.columns:
        pts[df["success"].to_numpy() == 0] = np.nan
    ok = np.isfinite(pts).all(axis=(1, 2))
    if not ok.any():
        raise FexaError(f"OpenFace CSV has no frame with landmarks: {path}")
    pts[~ok] = np.nan
    if "timestamp" in df.columns and len(df) > 1:
        fps = float(1.0 / np.median(np.diff(df["timestamp"].to_numpy(np.float64))))
    else:
        fps = 30.0
    affine = crop_transforms(pts, "ibug68", ok, crop_size)
    hw = np.nanmax(pts, axis=(0, 1))
    track = TrackData.from_landmarks(pts, "ibug68", fps, crop_size, (int(hw[1]) + 1, int(hw[0]) + 1), affine)
    if "timestamp" in df.columns:
        track.times = df["timestamp"].to_numpy(np.float64) - float(df["timestamp"].iloc[0])
    return track
