"""The three custom TFLite ops of mediapipe's attention face mesh, as batched torch functions.

``face_landmark_with_attention.tflite`` cuts 16 x 16 patches around the lips and the eyes out of an
intermediate feature map (``Landmarks2TransformMatrix`` then ``TransformTensorBilinear``), refines
landmarks inside each patch and maps them back (``TransformLandmarks``). Each function here
computes what version 2 of mediapipe's CPU kernel computes (the version the model's operator codes
declare), for a whole batch at once, on whatever device its inputs are on. Tensors are laid out as
in the graph (NHWC, batch first); ``CUSTOM_OPS`` maps the graph's op names to them, each called as
``fn(inputs, options) -> outputs`` with ``options`` the operator's decoded custom options.

The 4 x 4 matrices are row-major, as the kernels write them: ``m[:, 0]`` and ``m[:, 1]`` give
``x' = m00 x + m01 y + m03`` and ``y' = m10 x + m11 y + m13`` (columns 2 and rows 2-3 are identity).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def _option(options: dict | None, key: str, op: str) -> object:
    """The custom option ``key`` of ``op``, or a ValueError naming what is missing."""
    if not options or key not in options:
        raise ValueError(f"{op}: custom options {options!r} lack {key!r} (only version 2 of the op is implemented)")
    return options[key]


def _check_matrix(m: Tensor, batch: int, op: str) -> Tensor:
    """``m`` [B, 4, 4] (any shape holding B x 16 values) as [B, 16], or a ValueError."""
    if m.numel() != batch * 16 or m.shape[0] != batch:
        raise ValueError(f"{op}: the matrix input has shape {tuple(m.shape)}; expected [{batch}, 4, 4]")
    return m.reshape(batch, 16)


def landmarks_to_transform_matrix(inputs: list[Tensor], options: dict) -> list[Tensor]:
    """Landmarks [B, N, 3] -> [B, 4, 4]: the matrix mapping an output patch's pixels to landmark space.

    As mediapipe/util/tflite/operations/landmarks_to_transform_matrix.cc (v2) defines it: the angle
    ``r = target_rotation_radians - atan2(y_right - y_left, x_right - x_left)`` of the landmarks
    ``left_rotation_idx`` -> ``right_rotation_idx``; the landmarks listed in ``subset_idxs`` (read in
    pairs, an odd last one paired with itself, so every listed index counts once) rotated by ``r``;
    their bounding box there (width w, height h, centre c rotated back by ``-r``). The matrix is
    ``shift(c) . rotate(-r) . scale(scale_x w / output_width, scale_y h / output_height) .
    shift(-output_width / 2, -output_height / 2)``: a pixel (x, y) of the output_width x
    output_height patch lands at landmark coordinates, the patch centre on c, its x axis along
    left -> right. The z coordinates play no part."""
    (lm,) = inputs
    op = "Landmarks2TransformMatrix"
    if lm.ndim != 3 or lm.shape[-1] != 3:
        raise ValueError(f"{op}: landmarks have shape {tuple(lm.shape)}; expected [B, N, 3]")
    subset = torch.as_tensor(_option(options, "subset_idxs", op), dtype=torch.long, device=lm.device)
    left, right = int(_option(options, "left_rotation_idx", op)), int(_option(options, "right_rotation_idx", op))
    out_w, out_h = float(_option(options, "output_width", op)), float(_option(options, "output_height", op))
    scale_x, scale_y = float(_option(options, "scale_x", op)), float(_option(options, "scale_y", op))
    target = float(_option(options, "target_rotation_radians", op))
    n = lm.shape[1]
    bad = [i for i in [left, right, *subset.tolist()] if not 0 <= i < n]
    if bad:
        raise ValueError(f"{op}: landmark indices {bad[:5]} are outside the {n} landmarks given")

    xy = lm[..., :2]
    d = xy[:, right] - xy[:, left]
    r = target - torch.atan2(d[:, 1], d[:, 0])
    c, s = torch.cos(r)[:, None], torch.sin(r)[:, None]
    px, py = xy[:, subset, 0], xy[:, subset, 1]
    rx, ry = c * px - s * py, s * px + c * py  # the subset rotated by r
    x_lo, x_hi = rx.min(dim=1).values, rx.max(dim=1).values
    y_lo, y_hi = ry.min(dim=1).values, ry.max(dim=1).values
    mid_x, mid_y = (x_lo + x_hi) / 2, (y_lo + y_hi) / 2
    c, s = c[:, 0], s[:, 0]
    centre_x, centre_y = c * mid_x + s * mid_y, c * mid_y - s * mid_x  # the box centre rotated back by -r
    sx, sy = scale_x * (x_hi - x_lo) / out_w, scale_y * (y_hi - y_lo) / out_h
    # rotate(-r) . scale = [[c sx, s sy], [-s sx, c sy]]; the shifts make the last column.
    a00, a01, a10, a11 = c * sx, s * sy, -s * sx, c * sy
    t0 = centre_x - (a00 * out_w / 2 + a01 * out_h / 2)
    t1 = centre_y - (a10 * out_w / 2 + a11 * out_h / 2)
    m = torch.zeros(lm.shape[0], 4, 4, dtype=lm.dtype, device=lm.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 3] = a00, a01, t0
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 3] = a10, a11, t1
    m[:, 2, 2] = m[:, 3, 3] = 1.0
    return [m]


def transform_tensor_bilinear(inputs: list[Tensor], options: dict) -> list[Tensor]:
    """Features [B, H, W, C] and matrices [B, 4, 4] -> [B, output_height, output_width, C] patches.

    As mediapipe/util/tflite/operations/transform_tensor_bilinear.cc (v2) defines it: output pixel
    (x, y) samples the input at ``T (x + 0.5, y + 0.5) - 0.5`` (pixel centres: the matrix maps
    continuous coordinates whose pixel i spans [i, i + 1)), bilinearly between the four pixels
    around that point. A point outside [0, W - 1] x [0, H - 1] gives 0 in every channel (no
    blending with the border); on the last row or column the missing neighbour counts as 0 with
    weight 0. A NaN matrix gives NaN, not 0."""
    x, m = inputs
    op = "TransformTensorBilinear"
    if x.ndim != 4:
        raise ValueError(f"{op}: the data input has shape {tuple(x.shape)}; expected [B, H, W, C]")
    b, h, w, ch = x.shape
    m = _check_matrix(m, b, op).to(x.dtype)
    out_h, out_w = int(_option(options, "output_height", op)), int(_option(options, "output_width", op))

    oy, ox = torch.meshgrid(torch.arange(out_h, dtype=x.dtype, device=x.device),
                            torch.arange(out_w, dtype=x.dtype, device=x.device), indexing="ij")
    ox, oy = ox.reshape(1, -1), oy.reshape(1, -1)  # [1, P], P = out_h * out_w

    def row(k: int) -> Tensor:
        """Source coordinate k (0: x, 1: y) of every output pixel [B, P], with the half-pixel shift."""
        a, bb, t = m[:, 4 * k, None], m[:, 4 * k + 1, None], m[:, 4 * k + 3, None]
        return a * ox + bb * oy + (t + (a * 0.5 + bb * 0.5 - 0.5))

    tx, ty = row(0), row(1)
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    x0, y0 = torch.floor(tx), torch.floor(ty)
    right, lower = tx - x0, ty - y0
    x0 = x0.nan_to_num(0).clamp(-1, w).long()
    y0 = y0.nan_to_num(0).clamp(-1, h).long()
    flat = x.reshape(b, h * w, ch)

    def read(yi: Tensor, xi: Tensor) -> Tensor:
        """Input values at integer pixels [B, P] -> [B, P, C], 0 outside the input."""
        inside = ((yi >= 0) & (yi < h) & (xi >= 0) & (xi < w))[..., None]
        idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1))[..., None].expand(-1, -1, ch)
        return torch.where(inside, torch.gather(flat, 1, idx), torch.zeros((), dtype=x.dtype, device=x.device))

    right, lower = right[..., None], lower[..., None]
    upper_row = (1 - right) * read(y0, x0) + right * read(y0, x0 + 1)
    lower_row = (1 - right) * read(y0 + 1, x0) + right * read(y0 + 1, x0 + 1)
    out = lower * lower_row + (1 - lower) * upper_row
    out = torch.where(outside[..., None], torch.zeros((), dtype=x.dtype, device=x.device), out)
    return [out.reshape(b, out_h, out_w, ch)]


def transform_landmarks(inputs: list[Tensor], options: dict | None) -> list[Tensor]:
    """Landmarks [B, N, D] (D = 2 or 3) and matrices [B, 4, 4] -> landmarks [B, N, D] mapped by the matrix.

    As mediapipe/util/tflite/operations/transform_landmarks.cc (v2) defines it: ``x' = m00 x +
    m01 y + m03``, ``y' = m10 x + m11 y + m13`` (the kernel feeds z = 0 to the matrix, so column 2
    never counts; v2 has no options and no scale); a third coordinate is copied unchanged."""
    lm, m = inputs
    op = "TransformLandmarks"
    if lm.ndim != 3 or lm.shape[-1] not in (2, 3):
        raise ValueError(f"{op}: landmarks have shape {tuple(lm.shape)}; expected [B, N, 2] or [B, N, 3]")
    m = _check_matrix(m, lm.shape[0], op).to(lm.dtype)[:, None, :]  # [B, 1, 16]
    x, y = lm[..., 0], lm[..., 1]
    out = [m[..., 0] * x + m[..., 1] * y + m[..., 3], m[..., 4] * x + m[..., 5] * y + m[..., 7]]
    if lm.shape[-1] == 3:
        out.append(lm[..., 2])
    return [torch.stack(out, dim=-1)]


CUSTOM_OPS: dict[str, Callable[[list[Tensor], dict], list[Tensor]]] = {
    "Landmarks2TransformMatrix": landmarks_to_transform_matrix,
    "TransformTensorBilinear": transform_tensor_bilinear,
    "TransformLandmarks": transform_landmarks,
}
