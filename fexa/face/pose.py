"""Head pose (yaw, pitch, roll in degrees) from the 3D face mesh, without camera calibration.

The face frame is built from the mesh itself: x runs from the subject's right to left outer eye
corner, y from the top of the forehead to the chin (made orthogonal to x), z = x cross y points into
the head. A frontal, upright face gives (0, 0, 0).

Sign convention: yaw > 0 when the face turns toward the image's right side, pitch > 0 when the
chin lifts, roll > 0 when the head tilts clockwise in the image.
"""

from __future__ import annotations

import numpy as np

# mediapipe mesh indices used for the face frame
_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN = 33, 263, 10, 152


_FRAME_POINTS = [_RIGHT_EYE_OUTER, _LEFT_EYE_OUTER, _FOREHEAD, _CHIN]


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


def head_pose(points: np.ndarray) -> np.ndarray:
    """[T, 478, 3] mesh points (NaN rows allowed) -> [T, 3] yaw, pitch, roll in degrees (NaN where missing)."""
    pts = np.asarray(points[:, _FRAME_POINTS], np.float64)  # only the 4 points the pose needs
    out = np.full((pts.shape[0], 3), np.nan, np.float32)
    ok = np.isfinite(pts).all(axis=(1, 2))
    if ok.any():
        r = face_axes(pts[ok])
        from scipy.spatial.transform import Rotation  # not at start-up

        yaw, pitch, roll = Rotation.from_matrix(r).as_euler("YXZ", degrees=True).T
        out[ok] = np.stack([-yaw, -pitch, roll], axis=1)
    return out


def eye_line_roll(points: np.ndarray) -> float:
    """In-plane rotation of one mesh [478, >=2] in degrees (0 upright, 90 turned clockwise on
    screen, +-180 upside down): the angle of the line from the right to the left outer eye corner.
    A cheap 2D check, used per frame by the tracker; ``head_pose`` gives the full 3D pose."""
    v = points[_LEFT_EYE_OUTER, :2] - points[_RIGHT_EYE_OUTER, :2]
    return float(np.degrees(np.arctan2(v[1], v[0])))
