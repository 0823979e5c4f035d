"""Aligned face crops: a per-frame similarity transform (frame pixels -> crop pixels).

The crop is centred between the eyes and the mouth, scaled by the eye and eye-to-mouth distances
(whichever is larger, so a turned head is not over-zoomed), and rotated so the eyes are level
(``rotate=False`` keeps it upright, like the reference code's box crops). Centre, size and angle
are smoothed over time so the crops do not jitter; landmarks go through the same matrices.
"""

from __future__ import annotations

import cv2
import numpy as np

from fexa.face.landmarks import get_scheme

CROP_SIZE = 256  # side of the aligned face crops (pixels), the size the papers' 224/112 inputs are cut from


def _interp_missing(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Fill rows of ``x`` [T, D] where ``ok`` is False from the nearest usable rows (linear inside)."""
    t = np.arange(len(x))
    return np.stack([np.interp(t, t[ok], x[ok, d]) for d in range(x.shape[1])], axis=1)


def crop_transforms(
    points: np.ndarray,
    layout: str,
    usable: np.ndarray,
    size: int = CROP_SIZE,
    margin: float = 1.0,
    rotate: bool = True,
    smooth: int = 5,
) -> np.ndarray:
    """[T, N, >=2] landmarks -> [T, 2, 3] affine matrices mapping frame pixels to a size x size crop.

    Frames that are not ``usable`` get the transform of their neighbours."""
    usable = np.asarray(usable, bool)
    if not usable.any():
        raise ValueError("no usable frame to align")
    s = get_scheme("heatmap73")
    p = s.select(np.asarray(points, np.float64)[..., :2], layout)
    eye_r = p[:, s.region_slice("right_eye")].mean(axis=1)
    eye_l = p[:, s.region_slice("left_eye")].mean(axis=1)
    mouth = p[:, s.region_slice("mouth")].mean(axis=1)
    eye_avg = (eye_r + eye_l) / 2
    eye_to_eye = eye_l - eye_r
    eye_to_mouth = mouth - eye_avg
    center = eye_avg + 0.5 * eye_to_mouth
    half = margin * np.maximum(1.55 * np.linalg.norm(eye_to_eye, axis=1), 1.36 * np.linalg.norm(eye_to_mouth, axis=1))
    angle = np.arctan2(eye_to_eye[:, 1], eye_to_eye[:, 0]) if rotate else np.zeros(len(p))
    params = np.column_stack([center, half, np.unwrap(np.where(usable, angle, 0.0))])
    params = _interp_missing(params, usable)
    if smooth > 1:
        from scipy.ndimage import uniform_filter1d  # 0.1 s to import: only when smoothing

        params = uniform_filter1d(params, size=smooth, axis=0, mode="nearest")
    c, h, a = params[:, :2], params[:, 2], params[:, 3]
    k = size / (2 * h)
    cos, sin = np.cos(a) * k, np.sin(a) * k
    m = np.empty((len(p), 2, 3))
    m[:, 0, 0], m[:, 0, 1] = cos, sin
    m[:, 1, 0], m[:, 1, 1] = -sin, cos
    m[:, :, 2] = size / 2 - np.einsum("tij,tj->ti", m[:, :, :2], c)
    return m.astype(np.float32)


def apply_transform(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Transform [T, N, >=2] points by [T, 2, 3] matrices -> [T, N, 2]."""
    return np.einsum("tij,tnj->tni", m[:, :, :2], points[..., :2]) + m[:, None, :, 2]


def warp_crop(rgb: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Cut one aligned crop out of a frame."""
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
