"""``track.npz``: the cached result of face tracking for one input (the subject's track).

Arrays (T = frames of the input, N = points of ``layout``, K = all tracks seen):

============== ============= =====================================================================
key            shape, dtype  meaning
============== ============= =====================================================================
times          [T] float64   seconds from the first frame (kept as decoded: variable frame rate
                             survives)
points         [T,N,3] f32   subject's landmarks in frame pixels (x, y, z; z in pixels, smaller is
                             nearer); NaN where the face is missing and not filled
points_crop    [T,N,2] f32   the same landmarks in aligned-crop pixels
affine         [T,2,3] f32   frame pixels -> crop pixels, per frame
box            [T,4] f32     x0, y0, x1, y1 of the subject's landmarks (frame pixels)
score          [T] f32       score of the latest face detection matched to the subject
detected       [T] bool      a detection was matched to the subject in this frame
pose           [T,3] f32     yaw, pitch, roll in degrees (see fexa.face.pose)
valid          [T] bool      landmarks measured in this frame
filled         [T] bool      landmarks interpolated over a short gap (valid is False there)
num_faces      [T] int16     faces landmarked in the frame (all tracks)
track_boxes    [T,K,4] f32   boxes of every track, NaN where absent
track_ids      [K] int32     ids of those tracks; ``track_id`` is the subject's
fps, crop_size, frame_size (H, W), layout, track_id: scalars
============== ============= =====================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from fexa.errors import FexaError
from fexa.io.atomic import write_npz


@dataclass
class TrackData:
    times: np.ndarray
    points: np.ndarray
    points_crop: np.ndarray
    affine: np.ndarray
    box: np.ndarray
    score: np.ndarray
    detected: np.ndarray
    pose: np.ndarray
    valid: np.ndarray
    filled: np.ndarray
    num_faces: np.ndarray
    track_boxes: np.ndarray
    track_ids: np.ndarray
    fps: float
    crop_size: int
    frame_size: tuple[int, int]
    layout: str
    track_id: int

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def usable(self) -> np.ndarray:
        """Frames with landmarks, measured or filled."""
        return self.valid | self.filled

    @classmethod
    def from_landmarks(cls, points: np.ndarray, layout: str, fps: float, crop_size: int,
                       frame_size: tuple[int, int], affine: np.ndarray | None = None,
                       pose: np.ndarray | None = None) -> "TrackData":
        """A single-face track from landmarks alone (imports, tests): NaN rows are missing frames;
        without ``affine`` the landmarks are taken to be in crop pixels already."""
        points = np.asarray(points, np.float32)
        if points.shape[-1] == 2:
            points = np.concatenate([points, np.zeros_like(points[..., :1])], axis=-1)
        t = len(points)
        valid = np.isfinite(points[..., :2]).all(axis=(1, 2))
        if affine is None:
            affine = np.tile(np.eye(2, 3, dtype=np.float32), (t, 1, 1))
        crop = np.einsum("tij,tnj->tni", affine[:, :, :2], points[..., :2]) + affine[:, None, :, 2]
        box = np.full((t, 4), np.nan, np.float32)
        box[valid] = np.concatenate([points[valid, :, :2].min(axis=1), points[valid, :, :2].max(axis=1)], axis=1)
        return cls(
            times=np.arange(t) / (fps or 30.0), points=points, points_crop=crop.astype(np.float32),
            affine=np.asarray(affine, np.float32), box=box, score=valid.astype(np.float32), detected=valid,
            pose=np.full((t, 3), np.nan, np.float32) if pose is None else np.asarray(pose, np.float32),
            valid=valid, filled=np.zeros(t, bool), num_faces=valid.astype(np.int16), track_boxes=box[:, None],
            track_ids=np.zeros(1, np.int32), fps=float(fps), crop_size=int(crop_size),
            frame_size=tuple(int(v) for v in frame_size), layout=layout, track_id=0,
        )

    def subclip(self, start: int = 0, end: int = -1) -> "TrackData":
        """The frames [start, end) (end -1: to the last frame) as a track of their own."""
        stop = self.num_frames if end < 0 else min(end, self.num_frames)
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == self.num_frames and f.name != "track_ids":
                v = v[start:stop]
            kw[f.name] = v
        kw["times"] = kw["times"] - kw["times"][0] if len(kw["times"]) else kw["times"]
        return TrackData(**kw)

    def scaled_motion(self, scale: float, reference: int | None = None) -> "TrackData":
        """A copy whose landmarks move ``scale`` times as far from their position in frame
        ``reference`` (default: the first usable frame): a simulated reduction of facial motion."""
        ref = int(np.flatnonzero(self.usable)[0]) if reference is None else reference
        scaled = {name: getattr(self, name)[ref] + scale * (getattr(self, name) - getattr(self, name)[ref])
                  for name in ("points", "points_crop")}
        return replace(self, **scaled)

    def save(self, path: str | Path) -> None:
        write_npz(path, **{k: np.asarray(v) for k, v in asdict(self).items()})

    @classmethod
    def load(cls, path: str | Path) -> "TrackData":
        path = Path(path)
        if not path.is_file():
            raise FexaError(f"no track file at {path}: give a cache entry's track.npz, <out>/cache/<id>/track.npz "
                            "after `fexa analyze --out <out>`, <out>/<id>/track.npz after `fexa extract --out <out>` "
                            "(<id>: the input's name and a hash of its path, e.g. single_face-dbc38027)")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as e:  # BadZipFile, EOFError, zlib.error, OSError, ValueError: all mean damaged
            raise FexaError(f"damaged track file {path}: {type(e).__name__}: {e}; rerun `fexa extract`") from None
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise FexaError(f"track file {path} lacks {missing}; rerun `fexa extract`")
        scalars = {"fps": float, "crop_size": int, "layout": str, "track_id": int}
        kw = {f.name: data[f.name] for f in fields(cls)}
        for k, conv in scalars.items():
            kw[k] = conv(kw[k])
        kw["frame_size"] = tuple(int(v) for v in kw["frame_size"])
        return cls(**kw)
