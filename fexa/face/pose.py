"""Head pose (yaw, pitch, roll in degrees) and the head-fixed frame, from the 3D face mesh, without
camera calibration.

The face axes are built from the mesh itself: x runs from the subject's right to left outer eye
corner, y from the top of the forehead to the chin (made orthogonal to x), z = x cross y points into
the head. A frontal, upright face gives (0, 0, 0).

A track's frames are brought into one head-fixed frame (``head_frame``): each frame's rigid points
(``RIGID_POINTS``, which do not move with expressions) are fitted by a rotation, scale and shift to
the subject's own rigid shape (their median over the track), turned to the face axes of the
subject's median face. Distances taken there do not change when the head turns; the fitted rotation
is the head pose.

Sign convention: yaw > 0 when the face turns toward the image's right side, pitch > 0 when the
chin lifts, roll > 0 when the head tilts clockwise in the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# mediapipe mesh indices used for the face axes
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152
_FRAME_POINTS = [_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN]

# Points that stay put when the face moves, in symmetric pairs and on the midline: nose bridge and
# sides, temples, cheekbones, inner eye corners. Chosen from data (docs/measures.md, "Measures that
# do not change when the head turns"): after a rigid fit these move least (at most 0.02 IOD, median
# over 9 shared clips of smiles, open mouths, raised brows, shut eyes, laughs and talk), while brows,
# lids, lips, jaw and chin move up to 0.09. The forehead is left out: its skin rises with the brows.
RIGID_POINTS = (168, 6, 197, 195,  # midline: nose bridge
                122, 351, 114, 343, 188, 412, 236, 456,  # nose sides
                139, 368, 127, 356,  # temples
                116, 345,  # cheekbones
                133, 362, 243, 463)  # inner eye corners
MIN_RIGID = 0.75  # fraction of the rigid points a frame needs seen for its fit
REFERENCE_FRAMES = 1000  # at most this many frames (evenly spread) make the subject's rigid shape
# Beyond these angles the mesh is not trusted (docs/measures.md): its fit to the subject's own
# rigid shape worsens 2-3 fold from frontal to 25 degrees, and at 40 degrees the far eye lies on the
# face's outline, where its lids cannot be seen.
YAW_LIMIT, PITCH_LIMIT = 30.0, 25.0


def face_axes(frame_points: np.ndarray) -> np.ndarray:
    """[..., 4, 3] mesh points (right and left outer eye corner, forehead, chin: ``_FRAME_POINTS``)
    -> [..., 3, 3] rotation matrices whose columns are the face axes."""
    right, left, forehead, chin = (frame_points[..., k, :] for k in range(4))
    x = left - right
    y = chin - forehead
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = y - np.sum(y * x, axis=-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def similarity_fit(src: np.ndarray, ref: np.ndarray, seen: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares rotation ``R`` [T, 3, 3], scale [T] and shift [T, 3] with
    ``scale * R @ src[t, k] + shift ~ ref[k]`` over the points ``seen`` [T, K] (Umeyama's method);
    ``src`` [T, K, 3] may hold NaN where not seen."""
    w = np.isfinite(src).all(-1) if seen is None else seen
    w = w.astype(np.float64)
    n = w.sum(1)[:, None]
    a = np.where(w[..., None] > 0, src, 0.0)
    mu_a = (w[..., None] * a).sum(1) / n
    mu_r = (w @ ref) / n  # [T, 3]: the reference's centroid over the same points
    a = (a - mu_a[:, None]) * w[..., None]
    b = ref[None] - mu_r[:, None]
    u, s, vt = np.linalg.svd(np.einsum("tki,tkj->tij", a, b))
    d = np.ones_like(s)
    d[:, 2] = np.sign(np.linalg.det(u @ vt))  # a rotation, never a mirror image
    rot = np.einsum("tji,tj,tkj->tik", vt, d, u)  # V diag(d) U^T
    scale = (s * d).sum(1) / (a ** 2).sum((1, 2))
    shift = mu_r - scale[:, None] * np.einsum("tij,tj->ti", rot, mu_a)
    return rot, scale, shift


@dataclass(frozen=True)
class HeadFrame:
    """A track's mesh in the head-fixed frame (``head_frame``)."""

    points: np.ndarray  # [T, N, 3] float32, in the subject's inter-ocular distances (IOD), origin at
    # the subject's nose tip; x to the subject's left, y down to the chin, z into the head; NaN
    # where the frame has no fit
    pose: np.ndarray  # [T, 3] float32 yaw, pitch, roll (degrees), NaN where the frame has no fit

    @property
    def turned(self) -> np.ndarray:
        """[T] bool: the head turned beyond ``YAW_LIMIT`` or ``PITCH_LIMIT`` (the mesh not trusted)."""
        with np.errstate(invalid="ignore"):
            return (np.abs(self.pose[:, 0]) > YAW_LIMIT) | (np.abs(self.pose[:, 1]) > PITCH_LIMIT)


def _rotate(points: np.ndarray, rot: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``scale * rot @ p + shift`` for every point p of each frame."""
    return scale[:, None, None] * (points @ np.transpose(rot, (0, 2, 1))) + shift[:, None]


def head_frame(points: np.ndarray) -> HeadFrame:
    """[T, 478 (or 468), 3] mesh points in frame pixels (x, y, z; NaN rows allowed) -> the
    head-fixed frame. The subject's rigid shape is the median of the frames' rigid points after
    fitting them to one another; it is turned to the face axes of the median face (its outer eye
    corners, forehead and chin) and scaled to an IOD of 1. A frame with fewer than ``MIN_RIGID`` of
    the rigid points seen has no fit."""
    pts = np.asarray(points)  # float32 from tracks: converted a part at a time (long videos)
    rigid = list(RIGID_POINTS)
    rigid_pts = pts[:, rigid].astype(np.float64)
    seen = np.isfinite(rigid_pts).all(-1)
    spread = np.where(seen[..., None], rigid_pts, 0.0).std(axis=1).sum(-1)  # all in one place: no fit
    ok = (seen.mean(1) >= MIN_RIGID) & (spread > 1e-6)
    out = np.full(pts.shape, np.nan, np.float32)
    pose = np.full((len(pts), 3), np.nan, np.float32)
    if not ok.any():
        return HeadFrame(out, pose)
    idx = np.flatnonzero(ok)
    sample = idx[np.linspace(0, len(idx) - 1, min(len(idx), REFERENCE_FRAMES)).round().astype(int)]
    keep = rigid + _FRAME_POINTS + [1]
    src = pts[sample][:, keep].astype(np.float64)
    k = len(rigid)
    ref = src[len(sample) // 2, :k]
    ref = np.where(np.isfinite(ref), ref, np.nanmedian(src[:, :k], 0))
    for _ in range(3):  # fit the frames to the shape, the shape to the fitted frames
        fitted = _rotate(src, *similarity_fit(src[:, :k], ref, seen[sample]))
        ref = np.nanmedian(fitted[:, :k], 0)
    median = np.nanmedian(fitted, 0)
    axes = face_axes(median[k:k + 4])
    iod = np.linalg.norm(median[k + 1] - median[k])
    ref = (ref - median[-1]) @ axes / iod  # head-fixed: nose tip at 0, face axes, IOD 1
    rot, scale, shift = similarity_fit(rigid_pts[idx], ref, seen[idx])
    for lo in range(0, len(idx), 4096):  # bounded memory on long videos
        part = slice(lo, lo + 4096)
        out[idx[part]] = _rotate(pts[idx[part]].astype(np.float64), rot[part], scale[part], shift[part])
    # rot maps frame directions to head-fixed ones; its transpose holds the face axes in the frame
    from scipy.spatial.transform import Rotation  # not at start-up

    yaw, pitch, roll = Rotation.from_matrix(np.transpose(rot, (0, 2, 1))).as_euler("YXZ", degrees=True).T
    pose[idx] = np.stack([-yaw, -pitch, roll], axis=1)
    return HeadFrame(out, pose)


def head_pose(points: np.ndarray) -> np.ndarray:
    """[T, 478, 3] mesh points (NaN rows allowed) -> [T, 3] yaw, pitch, roll in degrees (NaN where
    missing), the rotation of each frame's rigid points onto the subject's head-fixed frame."""
    return head_frame(points).pose


def eye_line_roll(points: np.ndarray) -> float:
    """In-plane rotation of one mesh [478, >=2] in degrees (0 upright, 90 turned clockwise on
    screen, +-180 upside down): the angle of the line from the right to the left outer eye corner.
    A cheap 2D check, used per frame by the tracker; ``head_pose`` gives the full 3D pose."""
    v = points[_LEFT_EYE_OUTER, :2] - points[_RIGHT_EYE_OUTER, :2]
    return float(np.degrees(np.arctan2(v[1], v[0])))
