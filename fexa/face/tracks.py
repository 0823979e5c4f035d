"""Per-track arrays over a clip: assembling observations, choosing the subject, filling short gaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fexa.face.detector import NUM_MESH_POINTS, FaceObservation, points_box


@dataclass
class TrackSet:
    """Per-track arrays over a whole clip, built from per-frame observations."""

    num_frames: int
    ids: list[int] = field(default_factory=list)
    points: dict[int, np.ndarray] = field(default_factory=dict)  # id -> [T, 478, 3], NaN when absent
    score: dict[int, np.ndarray] = field(default_factory=dict)  # id -> [T]
    detected: dict[int, np.ndarray] = field(default_factory=dict)  # id -> [T] bool
    cuts: list[int] = field(default_factory=list)  # frames that start a new shot (fexa.face.identity)
    faces: dict[int, np.ndarray | None] = field(default_factory=dict)  # id -> mean face descriptor (identity)

    @classmethod
    def from_observations(cls, frames: list[list[FaceObservation]], cuts: list[int] = ()) -> "TrackSet":
        ts = cls(len(frames), cuts=list(cuts))
        for t, obs in enumerate(frames):
            for o in obs:
                if o.track_id not in ts.points:
                    ts.ids.append(o.track_id)
                    ts.points[o.track_id] = np.full((len(frames), NUM_MESH_POINTS, 3), np.nan, np.float32)
                    ts.score[o.track_id] = np.zeros(len(frames), np.float32)
                    ts.detected[o.track_id] = np.zeros(len(frames), bool)
                ts.points[o.track_id][t] = o.points
                ts.score[o.track_id][t] = o.score
                ts.detected[o.track_id][t] = o.detected
        return ts

    def valid(self, track_id: int) -> np.ndarray:
        return ~np.isnan(self.points[track_id][:, 0, 0])

    def boxes(self, track_id: int) -> np.ndarray:
        return points_box(self.points[track_id])

    def main_track(self) -> int | None:
        """The subject: the track present in most frames; ties go to the larger mean face."""
        if not self.ids:
            return None

        def key(i: int) -> tuple[int, float]:
            b = self.boxes(i)[self.valid(i)]
            return int(self.valid(i).sum()), float(np.mean((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))

        return max(self.ids, key=key)

    def faces_per_frame(self) -> np.ndarray:
        if not self.ids:
            return np.zeros(self.num_frames, np.int16)
        return np.sum([self.valid(i) for i in self.ids], axis=0).astype(np.int16)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D boolean array."""
    edges = np.flatnonzero(np.diff(np.r_[0, np.asarray(mask, bool).astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def gap_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """Interior runs of False in ``valid`` (bounded by True on both sides) as (start, stop)."""
    v = np.asarray(valid, bool)
    return [(a, b) for a, b in true_runs(~v) if a > 0 and b < len(v)]


def fill_gaps(values: np.ndarray, valid: np.ndarray, max_gap: int = 5,
              cuts: list[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate interior gaps of at most ``max_gap`` frames along axis 0.

    Returns (filled values, filled mask). Gaps at the start or end, longer gaps, and gaps next to
    a shot cut (``cuts``: frames that start a new shot) stay as they are: interpolating them would
    invent motion."""
    out = np.array(values, copy=True)
    filled = np.zeros(len(out), bool)
    for start, stop in gap_runs(valid):
        if stop - start > max_gap or any(start <= c <= stop for c in cuts):
            continue
        a, b = out[start - 1], out[stop]
        w = (np.arange(1, stop - start + 1) / (stop - start + 1)).reshape((-1,) + (1,) * (out.ndim - 1))
        out[start:stop] = (1 - w) * a + w * b
        filled[start:stop] = True
    return out, filled
