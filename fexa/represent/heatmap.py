"""QAFE-Net landmark heatmap volumes.

Reference recipe (per frame, on the 256x256 crop): an 11x11 patch of exp(-d^2 / 2 sigma^2) around
each (rounded, crop-clipped) landmark, each patch divided by its own maximum, all summed, blurred
with a 7x7 Gaussian (OpenCV's sigma for that size), divided by the frame's maximum; then resized
to the network size (area average). Every step is linear and separable until the final
normalisation, so the whole chain is computed exactly from one per-axis lookup table
[src_size, out_size] and a batched outer product: no per-point loop and no 256x256 intermediate.
``render_reference`` runs the literal recipe and is kept for tests and checks.

Modes: ``rgb_weighted`` (paper: heatmap x face crop), ``jet`` (released code's colour map),
``gray`` (the heatmap itself), ``per_landmark`` (one channel per point, pyskl style).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

MODES = ("rgb_weighted", "jet", "gray", "per_landmark")


@dataclass(frozen=True)
class HeatmapConfig:
    sigma: float = 1.0
    kernel: int = 11  # patch size around each landmark (odd)
    blur: int = 7  # Gaussian smoothing kernel size; 0 or 1 disables it
    src_size: int = 256  # crop size the landmarks refer to
    out_size: int = 64
    mode: str = "rgb_weighted"
    # the paper's text: all 73 points, Gaussians at their pixel positions; the released code's loop
    # skips point 0 (72 maps). subpixel: patch weights from the exact coordinate (the 11 x 11 patch
    # still covers the pixels around the nearest one), each patch divided by its own maximum.
    skip_first: bool = False
    subpixel: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"heatmap mode must be one of {MODES}, got {self.mode!r}")
        if self.kernel % 2 == 0 or self.kernel < 1:
            raise ValueError(f"heatmap kernel must be a positive odd size, got {self.kernel}")
        if self.sigma <= 0:
            raise ValueError(f"heatmap sigma must be > 0, got {self.sigma}")
        if self.out_size < 1 or self.out_size > self.src_size:
            raise ValueError(f"out_size must be in 1..src_size ({self.src_size}), got {self.out_size}")


def _reflect101(i: np.ndarray, n: int) -> np.ndarray:
    """OpenCV's default border: ...c b | a b c ... (edge sample not repeated)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.mod(i, period)
    return np.where(i >= n, period - i, i)


def blur_matrix(n: int, ksize: int) -> np.ndarray:
    """[n, n] matrix of a 1D Gaussian blur as cv2.GaussianBlur(ksize, sigma=0) applies it per axis."""
    if ksize <= 1:
        return np.eye(n)
    import cv2  # imported where used: loader workers that do not need it stay smaller

    k = cv2.getGaussianKernel(ksize, 0).ravel()
    m = np.zeros((n, n))
    r = ksize // 2
    for j, w in enumerate(k):
        np.add.at(m, (np.arange(n), _reflect101(np.arange(n) + j - r, n)), w)
    return m


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] area-average resampling (each output sample averages the input it covers)."""
    edges = np.linspace(0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def smooth_matrix(src_size: int, out_size: int, blur: int) -> np.ndarray:
    """[src_size, out_size]: a 1D profile's blur then area resize, as one matrix."""
    return blur_matrix(src_size, blur).T @ area_matrix(src_size, out_size).T


@lru_cache(maxsize=16)
def axis_table(src_size: int, out_size: int, sigma: float, kernel: int, blur: int) -> np.ndarray:
    """[src_size, out_size]: the 1D profile, after patch, blur and resize, of a landmark at each pixel."""
    c = np.arange(src_size)[:, None]
    x = np.arange(src_size)[None, :]
    patch = np.exp(-((x - c) ** 2) / (2 * sigma**2)) * (np.abs(x - c) <= kernel // 2)
    return (patch @ smooth_matrix(src_size, out_size, blur)).astype(np.float32)


def _pixel_indices(points: np.ndarray, src_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Round landmarks to pixels and clip them to the crop, as the reference does."""
    p = np.clip(np.rint(np.nan_to_num(points[..., :2], nan=0.0)), 0, src_size - 1).astype(np.int64)
    return p[..., 0], p[..., 1]


@lru_cache(maxsize=32)
def _on(device: torch.device, name: str, *args) -> torch.Tensor:
    """A constant table (``axis_table``, ``area_matrix`` or the jet colours) as a float32 tensor on ``device``."""
    table = {"axis": axis_table, "area": area_matrix, "smooth": smooth_matrix, "jet": _jet_lut}[name](*args)
    return torch.as_tensor(table, dtype=torch.float32, device=device)


def _axis_profiles(coord: torch.Tensor, cfg: HeatmapConfig) -> torch.Tensor:
    """[..., P] coordinates along one axis -> [..., P, out_size]: each landmark's patch profile along
    that axis, blurred and resized (the heatmap is their outer product, summed over landmarks)."""
    n = cfg.src_size
    if not cfg.subpixel:  # pixel centres: a lookup in the precomputed table
        idx = torch.nan_to_num(coord, nan=0.0).round().clamp(0, n - 1).long()
        return _on(coord.device, "axis", n, cfg.out_size, float(cfg.sigma), cfg.kernel, cfg.blur)[idx]
    c = torch.nan_to_num(coord.float(), nan=0.0).clamp(0, n - 1)[..., None]
    x = torch.arange(n, device=coord.device, dtype=torch.float32)
    prof = torch.exp(-((x - c) ** 2) / (2 * cfg.sigma**2)) * ((x - c.round()).abs() <= cfg.kernel // 2)
    prof = prof / prof.amax(dim=-1, keepdim=True)  # the patch's maximum is the product of the axes' maxima
    return prof @ _on(coord.device, "smooth", n, cfg.out_size, cfg.blur)


def landmark_heatmaps_torch(points: torch.Tensor, cfg: HeatmapConfig = HeatmapConfig(),
                            per_landmark: bool = False) -> torch.Tensor:
    """[..., T, P, 2] crop-pixel landmarks -> [..., T, S, S] summed heatmaps in [0, 1] (or
    [..., T, P, S, S] per landmark), float32 on the points' device: batched, so a training step can
    draw a batch's heatmaps on the GPU. Frames with any NaN landmark give all-zero maps."""
    if points.ndim < 3 or points.shape[-1] < 2:
        raise ValueError(f"points must be [..., T, P, 2], got shape {tuple(points.shape)}")
    if cfg.skip_first:
        points = points[..., 1:, :]
    gx, gy = _axis_profiles(points[..., 0], cfg), _axis_profiles(points[..., 1], cfg)  # [..., P, S]
    maps = gy[..., :, None] * gx[..., None, :] if per_landmark else gy.transpose(-1, -2) @ gx
    maps = maps / maps.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-12)
    maps[~torch.isfinite(points[..., :2]).all(dim=-1).all(dim=-1)] = 0.0
    return maps


def landmark_heatmaps(points: np.ndarray, cfg: HeatmapConfig = HeatmapConfig(), per_landmark: bool = False) -> np.ndarray:
    """:func:`landmark_heatmaps_torch` for numpy arrays: [T, P, 2] -> [T, S, S] (or [T, P, S, S])."""
    points = np.asarray(points, np.float64)
    if points.ndim != 3 or points.shape[-1] < 2:
        raise ValueError(f"points must be [T, P, 2], got shape {points.shape}")
    return landmark_heatmaps_torch(torch.from_numpy(points), cfg, per_landmark).numpy()


@lru_cache(maxsize=1)
def _jet_lut() -> np.ndarray:
    """[256, 3] RGB floats of OpenCV's COLORMAP_JET (what the released heatmap files contain)."""
    import cv2

    bgr = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_JET)[:, 0, :]
    return bgr[:, ::-1].astype(np.float32) / 255.0


def area_resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """[..., H, W, 3] uint8 -> [..., 3, size, size] float32 in [0, 1], each output pixel the average
    of the input it covers (OpenCV's INTER_AREA, in float). OpenCV on the CPU, where it is several
    times faster than torch; two matrix products elsewhere (equal to 1e-6, tested)."""
    lead, (h, w, c) = frames.shape[:-3], frames.shape[-3:]
    if frames.device.type == "cpu":
        import cv2

        flat = frames.reshape(-1, h, w, c).numpy()
        out = np.stack([cv2.resize(f.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) for f in flat])
        out = torch.from_numpy(out.reshape(*lead, size, size, c)).movedim(-1, -3)
    else:
        out = area_resize_matmul(frames, size)
    return out / 255.0


def area_resize_matmul(frames: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`area_resize` (before the division by 255) as two matrix products, on any device."""
    h, w = frames.shape[-3:-1]
    x = frames.movedim(-1, -3).float()  # [..., 3, H, W]
    return _on(frames.device, "area", h, size) @ x @ _on(frames.device, "area", w, size).T


def heatmap_volume_torch(points: torch.Tensor, cfg: HeatmapConfig = HeatmapConfig(),
                         frames: torch.Tensor | None = None) -> torch.Tensor:
    """[..., T, P, 2] crop landmarks (+ [..., T, H, W, 3] uint8 crops for ``rgb_weighted``) ->
    [..., T, C, S, S] float32 on the points' device. C is 3 for rgb_weighted and jet, 1 for gray,
    P for per_landmark."""
    if cfg.mode == "per_landmark":
        return landmark_heatmaps_torch(points, cfg, per_landmark=True)
    h = landmark_heatmaps_torch(points, cfg)
    if cfg.mode == "gray":
        return h.unsqueeze(-3)
    if cfg.mode == "jet":
        return _on(h.device, "jet")[(h * 255).to(torch.uint8).long()].movedim(-1, -3)
    if frames is None or frames.shape[:-3] != h.shape[:-2]:
        raise ValueError("mode 'rgb_weighted' needs the crops: frames [..., T, H, W, 3] with T matching the points")
    return area_resize(frames, cfg.out_size) * h.unsqueeze(-3)


def heatmap_volume(points: np.ndarray, cfg: HeatmapConfig = HeatmapConfig(), frames: np.ndarray | None = None) -> np.ndarray:
    """:func:`heatmap_volume_torch` for numpy arrays: [T, P, 2] (+ [T, H, W, 3] crops) -> [T, C, S, S]."""
    points = torch.from_numpy(np.asarray(points, np.float64))
    return heatmap_volume_torch(points, cfg, None if frames is None else torch.from_numpy(np.asarray(frames))).numpy()


def render_reference(points: np.ndarray, cfg: HeatmapConfig = HeatmapConfig()) -> np.ndarray:
    """The literal recipe (patches on a src_size map, sum, cv2 blur, normalise, area resize,
    normalise). Slow; for tests and for checking :func:`landmark_heatmaps`."""
    import cv2

    points = np.asarray(points, np.float64)[:, 1:] if cfg.skip_first else np.asarray(points, np.float64)
    n, r = cfg.src_size, cfg.kernel // 2
    xi, yi = _pixel_indices(points, n)
    exact = np.clip(np.nan_to_num(points[..., :2], nan=0.0), 0, n - 1)
    d = np.arange(-r, r + 1)
    out = []
    for t in range(len(points)):
        acc = np.zeros((n, n))
        for x, y, (cx, cy) in zip(xi[t], yi[t], exact[t]):
            ys, xs = np.meshgrid(y + d, x + d, indexing="ij")
            if cfg.subpixel:
                patch = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * cfg.sigma**2))
            else:
                patch = np.exp(-(d[None, :] ** 2 + d[:, None] ** 2) / (2 * cfg.sigma**2))
            inside = (ys >= 0) & (ys < n) & (xs >= 0) & (xs < n)
            p = np.where(inside, patch, 0.0)
            np.add.at(acc, (ys[inside], xs[inside]), (p / p.max())[inside])
        if cfg.blur > 1:
            acc = cv2.GaussianBlur(acc, (cfg.blur, cfg.blur), 0)
        acc = cv2.resize(acc / acc.max(), (cfg.out_size, cfg.out_size), interpolation=cv2.INTER_AREA)
        out.append(acc / acc.max())
    return np.stack(out).astype(np.float32)
