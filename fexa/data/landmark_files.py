"""Landmarks and point tracks made elsewhere (insightface/SCRFD, OpenFace, TAPIR, CoTracker, BootsTAP),
used for training instead of the mesh's landmarks (``data.landmarks``, docs/landmarks.md).

A landmark folder holds one ``<sample id>.npy`` per sample (an id holding ``/`` names a subfolder):
``[T, P, 2]`` (or ``[T, P, 3]``, the third value ignored) x, y in the pixels of the sample's media
as stored on disk (frame ``t`` = the media's frame ``t``; all ``T`` frames of the media, whatever the
sample's start and end), NaN where a frame has none. ``P`` says the format:

- 106: insightface 2d106 (SCRFD + the 2d106 landmark model, what QAFE-Net and TraMP-Former used);
- 73 / 74: the authors' released 73-point files (2d106 points 33-105; 74: one extra leading point);
- 68: iBUG-68 (OpenFace, Dlib);
- 63: point tracks of TraMP-Former's 63 trajectory points, in ``traj63`` order. They feed trajectories
  only (no heatmaps or image landmarks), and lacking the nose tip (2d106 point 86) their origin is the
  nearest tracked point, 2d106 point 80 (below the nose tip: a constant shift of every position).

The pixels still come from fexa's crops (detected or given faces): each file is mapped into the
entry's crop with the entry's own frame-to-crop transforms, once, into ``<entry>/landmarks-<key>.npz``
whose key hashes the file's bytes and the entry's track: another file or a re-extracted entry gets
its own. A frame whose points (those the schemes use) are not all finite counts as without landmarks.
"""

from __future__ import annotations

import hashlib
import zipfile
from functools import lru_cache
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from fexa.errors import FexaError
from fexa.face.landmarks import get_layout, get_scheme
from fexa.io.atomic import atomic_path
from fexa.io.fingerprint import file_sha256
from fexa.io.trackfile import TrackData
from fexa.represent.trajectory import landmark_colours

if TYPE_CHECKING:  # loader workers import this module for FileLandmarks: no pandas, no OpenCV there
    import pandas as pd

FORMATS = {106: "insightface106", 73: "insightface73", 74: "insightface73", 68: "ibug68", 63: "tracks63"}
FILE_FORMATS = ("insightface106", "insightface73", "tracks63")  # what write_landmark_files writes
TRACKS_ORIGIN = get_scheme("traj63").points_2d106.index(80)  # origin of 63-point tracks (no nose tip)
OVERLAY_VERSION = 1  # bump when the mapping changes: overlays are then rebuilt


def landmark_file(folder: str | Path, sample_id: str) -> Path:
    """Where sample ``sample_id``'s landmarks lie in a landmark folder."""
    return Path(folder) / f"{sample_id}.npy"


def read_landmark_file(path: Path, sample_id: str, frames: int) -> tuple[np.ndarray, str]:
    """([frames, P, 2] float32 points, format name) of one file; one-line errors naming the sample and
    the file for anything else (unreadable, another shape, another frame count)."""
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FexaError(f"sample {sample_id}: cannot read landmark file {path}: {e}") from None
    if a.ndim != 3 or a.shape[1] not in FORMATS or a.shape[2] not in (2, 3):
        raise FexaError(f"sample {sample_id}: landmark file {path} has shape {a.shape}; expected [T, P, 2] with "
                        f"P in {sorted(FORMATS)}")
    if len(a) != frames:
        raise FexaError(f"sample {sample_id}: landmark file {path} has {len(a)} frames; its media has {frames}")
    a = np.asarray(a[..., :2], np.float32)
    return (a[:, 1:] if a.shape[1] == 74 else a), FORMATS[a.shape[1]]


def crop_arrays(points: np.ndarray, fmt: str, affine: np.ndarray) -> dict[str, np.ndarray]:
    """Media-pixel points [T, P, 2] of format ``fmt`` -> the store's landmark arrays in crop pixels
    (heatmap73 [T,73,2], traj63 [T,63,2], nose [T,2]; heatmap73 NaN for tracks), a frame NaN throughout
    unless every point it uses is finite."""
    from fexa.face.align import apply_transform

    crop = apply_transform(points, affine).astype(np.float32)
    if fmt == "tracks63":
        traj = crop
        heat = np.full((len(crop), 73, 2), np.nan, np.float32)
        nose = crop[:, TRACKS_ORIGIN]
    else:
        traj = get_scheme("traj63").select(crop, fmt)
        heat = get_scheme("heatmap73").select(crop, fmt)
        nose = crop[:, get_layout(fmt).nose_tip]
    ok = np.isfinite(traj).all(axis=(1, 2)) & np.isfinite(nose).all(axis=1)
    if fmt != "tracks63":
        ok &= np.isfinite(heat).all(axis=(1, 2))
    for a in (traj, heat, nose):
        a[~ok] = np.nan
    return {"heatmap73": heat, "traj63": traj, "nose": nose.astype(np.float32)}


def overlay_path(entry: Path, file: Path) -> Path:
    """The file's arrays for ``entry``: named by the file's content, the entry's track and the version."""
    track = file_sha256(entry / "track.npz")
    key = hashlib.sha256(f"{OVERLAY_VERSION}:{file_sha256(file)}:{track}".encode()).hexdigest()[:16]
    return entry / f"landmarks-{key}.npz"


def build_overlay(entry: str | Path, file: Path, sample_id: str) -> tuple[Path, str]:
    """(overlay path, format) of ``file`` for ``entry``, built unless already there: the file's points in
    the entry's crop pixels, plus ``colours63``, the crop's pixel under each trajectory point."""
    from fexa.data.store import StoredEntry

    entry = Path(entry)
    track = TrackData.load(entry / "track.npz")
    points, fmt = read_landmark_file(file, sample_id, track.num_frames)
    out = overlay_path(entry, file)
    if out.is_file():
        return out, fmt
    arrays = crop_arrays(points, fmt, track.affine)
    stored = StoredEntry(entry)
    colours = np.zeros((track.num_frames, 63, 3), np.uint8)
    used = np.flatnonzero(np.isfinite(arrays["nose"][:, 0]) & stored.usable.astype(bool))
    for chunk in np.array_split(used, max(1, len(used) // 64)):  # bounded memory for long videos
        if len(chunk):
            colours[chunk] = landmark_colours(stored.frames(chunk), arrays["traj63"][chunk])
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(f, colours63=colours, **arrays)
    return out, fmt


@lru_cache(maxsize=64)
def _overlay(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise FexaError(f"damaged landmark arrays {path}: {e}; delete the file and rerun (it is rebuilt)") from None


class FileLandmarks:
    """An opened entry whose landmark arrays (heatmap73, traj63, nose, colours63) come from a
    landmark file's overlay; frames and everything else from the entry."""

    def __init__(self, entry, overlay: str):
        self.entry, self.arrays = entry, _overlay(overlay)

    def __getattr__(self, name: str):
        arrays = self.__dict__["arrays"]
        return arrays[name] if name in arrays else getattr(self.__dict__["entry"], name)


def link_landmarks(table: pd.DataFrame, folder: str | Path, inputs: tuple[str, ...],
                   allow_missing: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with a ``landmarks`` column naming their overlay, rows dropped with the reason) of a table
    linked to the cache. A missing or malformed file is a one-line error naming the sample and the file,
    or with ``allow_missing`` the sample is dropped with that reason. Tracks (63 points) for a model that
    needs heatmaps or image landmarks are always an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FexaError(f"data.landmarks: no landmark folder at {folder}")
    overlays, reasons = [], []
    for sample_id, entry in zip(table["id"].astype(str), table["entry"]):
        file = landmark_file(folder, sample_id)
        try:
            if not file.is_file():
                raise FexaError(f"sample {sample_id}: no landmark file {file}")
            path, fmt = build_overlay(entry, file, sample_id)
        except FexaError as e:
            if not allow_missing:
                raise FexaError(f"{e} (data.allow_missing=true drops such samples)") from None
            overlays.append("")
            reasons.append(str(e))
            continue
        needs = sorted({"heatmaps", "image"} & set(inputs))
        if fmt == "tracks63" and needs:
            raise FexaError(f"sample {sample_id}: {file} holds 63-point tracks, which give trajectories only; "
                            f"this model's {' and '.join(needs)} need 106, 73 or 68 landmarks")
        overlays.append(str(path))
        reasons.append("")
    ok = np.array([bool(p) for p in overlays], bool)
    linked = table[ok].assign(landmarks=[p for p in overlays if p])
    dropped = table[~ok].drop(columns=["entry"]).assign(status="error", reason=[r for r in reasons if r])
    return linked.reset_index(drop=True), dropped.reset_index(drop=True)


def write_landmark_files(table: pd.DataFrame, folder: str | Path, fmt: str) -> list[Path]:
    """Write a landmark folder for a table linked to the cache, from each entry's own mesh (frame
    pixels): ``insightface106`` (the 33 contour points, which fexa's mesh does not map, at the nose
    tip), ``insightface73`` or ``tracks63``. For tests and ``fexa reproduce --check``: the files a
    researcher makes with SCRFD or a point tracker have the same layout."""
    if fmt not in FILE_FORMATS:
        raise FexaError(f"landmark file format must be one of {', '.join(FILE_FORMATS)}, got {fmt!r}")
    written = []
    for sample_id, entry in zip(table["id"].astype(str), table["entry"]):
        track = TrackData.load(Path(entry) / "track.npz")
        pts = track.points[..., :2]
        if fmt == "tracks63":
            out = get_scheme("traj63").select(pts, track.layout)
        else:
            out = get_scheme("heatmap73").select(pts, track.layout)  # 2d106 points 33-105, in order
            if fmt == "insightface106":
                nose = pts[:, None, get_layout(track.layout).nose_tip]
                out = np.concatenate([np.repeat(nose, 33, axis=1), out], axis=1)
        path = landmark_file(folder, sample_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, out.astype(np.float32))
        written.append(path)
    return written
