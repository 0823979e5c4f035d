"""mediapipe's face pipeline around the raw models, batched: what mediapipe 0.10.21's graphs do
before and after each TFLite model, so that running the models as torch modules gives mediapipe's
own detections and landmarks.

Each step follows the calculator the graphs name (the options are the ones in
``mediapipe/modules/face_detection/*.pbtxt`` and ``mediapipe/modules/face_landmark/*.pbtxt``):

- ``ssd_anchors``: SsdAnchorsCalculator (896 anchors for the short-range detector, 2304 for the
  full-range one);
- ``crop``: ImageToTensorCalculator on CPU: a rotated rectangle of the image warped to the model's
  input size as OpenCV's ``warpPerspective`` (INTER_LINEAR) does it on 8-bit images, i.e. with
  source positions rounded to 1/32 pixel and 15-bit fixed-point bilinear weights (bit for bit),
  then scaled to the model's value range; ``letterbox_rect`` is its keep-aspect-ratio padding;
- ``decode_detections`` + ``weighted_nms`` + ``project_detections``: TensorsToDetectionsCalculator,
  NonMaxSuppressionCalculator (WEIGHTED, IoU > 0.3) and DetectionProjectionCalculator;
- ``detection_rois`` / ``landmark_rois``: DetectionsToRects + RectTransformation (rotation from two
  keypoints, scale 1.5, square on the long side) for a detection, and for the previous frame's mesh;
- ``mesh_landmarks``: TensorsToLandmarks for the six attention-mesh outputs, the
  LandmarksRefinement that merges them into 478 points, and LandmarkProjection back to the image.

Rectangles (``rects``) are float32 arrays [..., 5] of (x_center, y_center, width, height, rotation),
normalised by the image's width and height, rotation in radians (mediapipe's NormalizedRect).
Detections are normalised to the image as well: boxes (xmin, ymin, width, height), keypoints (x, y).
A model is any callable taking a float32 NHWC batch and returning its outputs by tensor name
(``fexa.face.tflite_graph.TfliteGraph``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

Model = Callable[[Tensor], Mapping[str, Tensor]]

#: Output tensor names of face_landmark_with_attention.tflite, in the order its graph splits them.
MESH_OUTPUTS = ("output_mesh_identity", "output_lips", "output_left_eye", "output_right_eye",
                "output_left_iris", "output_right_iris")
MESH_FLAG_OUTPUT = "conv_faceflag"
MESH_INPUT_SIZE = 192
NUM_MESH_POINTS = 478


@dataclass(frozen=True)
class DetectorSpec:
    """One face detector's options as its graph sets them (face_detection_*_range.pbtxt, plus the
    SsdAnchors and TensorsToDetections options common to both in face_detection.pbtxt)."""

    name: str  # converted model name (fexa/face/mediapipe/<name>.json)
    size: int  # input tensor width = height
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_boxes: int
    min_score_thresh: float
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: float = 0.5
    aspect_ratios: tuple[float, ...] = (1.0,)
    fixed_anchor_size: bool = True
    num_keypoints: int = 6
    score_clipping_thresh: float = 100.0
    min_suppression_threshold: float = 0.3


SHORT_RANGE = DetectorSpec("face_detection_short_range", 128, (8, 16, 16, 16), 1.0, 896, 0.5)
FULL_RANGE = DetectorSpec("face_detection_full_range_sparse", 192, (4,), 0.0, 2304, 0.6)


def _anchor_scale(spec: DetectorSpec, index: int) -> float:
    """SsdAnchorsCalculator's scale of stride ``index`` (linear from min_scale to max_scale)."""
    n = len(spec.strides)
    if n == 1:
        return (spec.min_scale + spec.max_scale) * 0.5
    return spec.min_scale + (spec.max_scale - spec.min_scale) * index / (n - 1.0)


@lru_cache(maxsize=8)
def cached_anchors(spec: DetectorSpec) -> np.ndarray:
    """``ssd_anchors``, computed once per spec (read-only)."""
    out = ssd_anchors(spec)
    out.flags.writeable = False
    return out


def ssd_anchors(spec: DetectorSpec) -> np.ndarray:
    """Anchors [num_boxes, 4] float32 of (x_center, y_center, w, h), normalised to the input: per
    run of equal strides one feature map, per cell the runs' aspect ratios (and one interpolated
    anchor each when interpolated_scale_aspect_ratio > 0), cells row by row."""
    anchors = []
    layer = 0
    while layer < len(spec.strides):
        sizes = []  # (w, h) of each anchor of a cell
        last = layer
        while last < len(spec.strides) and spec.strides[last] == spec.strides[layer]:
            scale = _anchor_scale(spec, last)
            for ratio in spec.aspect_ratios:
                sizes.append((scale * math.sqrt(ratio), scale / math.sqrt(ratio)))
            if spec.interpolated_scale_aspect_ratio > 0.0:
                nxt = 1.0 if last == len(spec.strides) - 1 else _anchor_scale(spec, last + 1)
                s, r = math.sqrt(scale * nxt), spec.interpolated_scale_aspect_ratio
                sizes.append((s * math.sqrt(r), s / math.sqrt(r)))
            last += 1
        side = math.ceil(spec.size / spec.strides[layer])
        for y in range(side):
            for x in range(side):
                for w, h in sizes:
                    anchors.append(((x + spec.anchor_offset) / side, (y + spec.anchor_offset) / side,
                                    1.0 if spec.fixed_anchor_size else w, 1.0 if spec.fixed_anchor_size else h))
        layer = last
    out = np.asarray(anchors, dtype=np.float32)
    if len(out) != spec.num_boxes:
        raise ValueError(f"spec {spec.name!r}: its options give {len(out)} anchors, not num_boxes={spec.num_boxes}")
    return out


# ----------------------------------------------------------------------------- image -> tensor

def letterbox_rect(image_size: tuple[int, int], tensor_size: tuple[int, int], rect: np.ndarray | None = None
                   ) -> np.ndarray:
    """ImageToTensor's keep_aspect_ratio: ``rect`` [..., 5] in pixels (default: the whole image,
    ``image_size`` = (width, height)) grown on one side to the tensor's aspect ratio (``tensor_size``
    = (width, height)); the model then sees the added band as padding."""
    w_img, h_img = image_size
    if rect is None:
        rect = np.array([0.5 * w_img, 0.5 * h_img, w_img, h_img, 0.0], np.float32)
    rect = np.array(rect, np.float32, copy=True)
    if np.any(rect[..., 2] <= 0) or np.any(rect[..., 3] <= 0):
        raise ValueError(f"rect: width and height must be > 0; got {rect[..., 2:4].tolist()}")
    tensor_ratio = np.float32(tensor_size[1]) / np.float32(tensor_size[0])
    roi_ratio = rect[..., 3] / rect[..., 2]
    taller = tensor_ratio > roi_ratio
    rect[..., 2], rect[..., 3] = (np.where(taller, rect[..., 2], rect[..., 3] / tensor_ratio),
                                  np.where(taller, rect[..., 2] * tensor_ratio, rect[..., 3]))
    return rect


def normalized_to_pixels(rects: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Normalised rects [..., 5] -> pixel rects (rotation unchanged), as ImageToTensor's GetRoi."""
    w, h = image_size
    out = np.array(rects, np.float32, copy=True)
    out[..., 0] *= w
    out[..., 1] *= h
    out[..., 2] *= w
    out[..., 3] *= h
    return out


def rect_to_image_matrix(rects: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """[..., 3, 3] float32 affine maps from a crop's normalised coordinates ([0, 1] across the
    tensor) to the image's normalised coordinates, for pixel ``rects`` [..., 5]: ImageToTensor's
    MATRIX output (GetRotatedSubRectToRectTransformMatrix without flip), used to project
    detections and landmarks back."""
    r = np.asarray(rects, np.float32)
    a, b, e, f = r[..., 2], r[..., 3], r[..., 0], r[..., 1]
    c, d = np.cos(r[..., 4]), np.sin(r[..., 4])
    g, h = np.float32(1.0) / np.float32(image_size[0]), np.float32(1.0) / np.float32(image_size[1])
    half = np.float32(0.5)
    m = np.zeros(r.shape[:-1] + (3, 3), np.float32)
    m[..., 0, 0] = a * c * g
    m[..., 0, 1] = -b * d * g
    m[..., 0, 2] = (-half * a * c + half * b * d + e) * g
    m[..., 1, 0] = a * d * h
    m[..., 1, 1] = b * c * h
    m[..., 1, 2] = (-half * b * c - half * a * d + f) * h
    m[..., 2, 2] = 1.0
    return m


def _box_points(rects: np.ndarray) -> np.ndarray:
    """cv::boxPoints of pixel ``rects`` [R, 5] in float32: corners [R, 4, 2] ordered bottom-left,
    top-left, top-right, bottom-right (of the unrotated rect), the angle passed through degrees."""
    r = np.asarray(rects, np.float32)
    deg = r[:, 4] * np.float32(180.0) / np.float32(math.pi)
    rad = deg.astype(np.float64) * math.pi / 180.0
    b = np.cos(rad).astype(np.float32) * np.float32(0.5)
    a = np.sin(rad).astype(np.float32) * np.float32(0.5)
    cx, cy, w, h = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    p0 = np.stack([cx - a * h - b * w, cy + b * h - a * w], -1)
    p1 = np.stack([cx + a * h - b * w, cy - b * h - a * w], -1)
    p2 = np.float32(2) * np.stack([cx, cy], -1) - p0
    p3 = np.float32(2) * np.stack([cx, cy], -1) - p1
    return np.stack([p0, p1, p2, p3], 1).astype(np.float32)


def _tensor_to_image_homography(rects: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """[R, 3, 3] float64 maps from output pixels to source pixels: the inverse of
    getPerspectiveTransform(box corners -> (0, h), (0, 0), (w, 0), (w, h)), solved in float64 as
    OpenCV solves it (warpPerspective then inverts it)."""
    src = _box_points(rects).astype(np.float64)
    dst = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], np.float32).astype(np.float64)
    n = len(src)
    a = np.zeros((n, 8, 8))
    rhs = np.zeros((n, 8))
    for i in range(4):
        sx, sy = src[:, i, 0], src[:, i, 1]
        a[:, i, 0] = a[:, i + 4, 3] = sx
        a[:, i, 1] = a[:, i + 4, 4] = sy
        a[:, i, 2] = a[:, i + 4, 5] = 1.0
        a[:, i, 6] = -sx * dst[i, 0]
        a[:, i, 7] = -sy * dst[i, 0]
        a[:, i + 4, 6] = -sx * dst[i, 1]
        a[:, i + 4, 7] = -sy * dst[i, 1]
        rhs[:, i], rhs[:, i + 4] = dst[i, 0], dst[i, 1]
    sol = np.linalg.solve(a, rhs[..., None])[..., 0]
    forward = np.concatenate([sol, np.ones((n, 1))], 1).reshape(n, 3, 3)
    return np.linalg.inv(forward)


_BLOCK = 32  # warpPerspective's BLOCK_SZ: it evaluates the map in tiles, which sets the float sums


def _source_positions(inverse: Tensor, out_w: int, out_h: int) -> tuple[Tensor, Tensor]:
    """Source positions of every output pixel in 1/32 pixel units (int32 [R, h, w] each), computed
    in float64 as warpPerspective does: per tile of bw x bh pixels from its left edge, rounded half
    to even."""
    bh = min(_BLOCK // 2, out_h)
    bw = min(_BLOCK * _BLOCK // bh, out_w)
    dev = inverse.device
    xs = torch.arange(out_w, device=dev, dtype=torch.float64)
    x0 = torch.div(xs, bw, rounding_mode="floor") * bw  # each tile's first column
    ys = torch.arange(out_h, device=dev, dtype=torch.float64)[:, None]
    m = inverse[:, :, :, None, None]  # [R, 3, 3, 1, 1]

    def line(k: int) -> Tensor:
        return (m[:, k, 0] * x0 + m[:, k, 1] * ys + m[:, k, 2]) + m[:, k, 0] * (xs - x0)

    w = line(2)
    scale = torch.where(w != 0, 32.0 / w, torch.zeros_like(w))
    lim = float(2 ** 31 - 1)
    px = torch.round((line(0) * scale).clamp_(-lim - 1, lim)).int()
    py = torch.round((line(1) * scale).clamp_(-lim - 1, lim)).int()
    return px, py


def crop(images: Tensor, rects: np.ndarray, out_size: tuple[int, int], border: str = "zero",
         value_range: tuple[float, float] = (-1.0, 1.0), image_index: np.ndarray | Tensor | None = None) -> Tensor:
    """ImageToTensorCalculator (CPU): crop pixel ``rects`` [R, 5] out of uint8 ``images``
    [B, H, W, C] (``image_index`` [R] says which image each rect is on; default rect i on image i)
    into float32 [R, out_h, out_w, C] in ``value_range``.

    As OpenCV 4.10's warpPerspective with INTER_LINEAR on 8-bit images: output pixel (x, y) (integer
    coordinates, pixel centres) samples the source at the rect's corner + (x / out_w, y / out_h)
    along its sides, that position rounded to 1/32 pixel, the four neighbours weighted in 15-bit fixed
    point and the sum rounded to uint8; taps outside the image are 0 (``border="zero"``) or the
    nearest edge pixel (``"replicate"``). The uint8 result is then scaled linearly from [0, 255]."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"images: expected a uint8 tensor [B, H, W, C]; got {images.dtype} {tuple(images.shape)}")
    if border not in ("zero", "replicate"):
        raise ValueError(f"border: expected 'zero' or 'replicate'; got {border!r}")
    lo, hi = value_range
    if not lo < hi:
        raise ValueError(f"value_range: min must be < max; got {value_range}")
    rects = np.asarray(rects, np.float32).reshape(-1, 5)
    n_img, height, width, ch = images.shape
    idx = torch.arange(len(rects)) if image_index is None else torch.as_tensor(image_index, dtype=torch.long)
    if idx.shape != (len(rects),) or (len(idx) and (idx.min() < 0 or idx.max() >= n_img)):
        raise ValueError(f"image_index: expected {len(rects)} indices into {n_img} images; got {idx.tolist()}")
    out_w, out_h = out_size
    dev = images.device
    inverse = torch.as_tensor(_tensor_to_image_homography(rects, out_w, out_h), device=dev)
    px, py = _source_positions(inverse, out_w, out_h)
    # zero border: a one-pixel ring of zeros around each image, onto which every outside tap is clamped
    pad = int(border == "zero")
    source = torch.nn.functional.pad(images, (0, 0, pad, pad, pad, pad)) if pad else images
    h_src, w_src = height + 2 * pad, width + 2 * pad
    sx, sy = (px >> 5) + pad, (py >> 5) + pad
    col0, col1 = sx.clamp(0, w_src - 1), (sx + 1).clamp_(0, w_src - 1)
    flat_dtype = torch.int32 if n_img * h_src * w_src < 2 ** 31 else torch.int64  # int32 gathers are faster
    base = idx.to(device=dev, dtype=flat_dtype)[:, None, None] * (h_src * w_src)
    row0 = sy.clamp(0, h_src - 1).to(flat_dtype).mul_(w_src).add_(base)
    row1 = (sy + 1).clamp_(0, h_src - 1).to(flat_dtype).mul_(w_src).add_(base)
    index = torch.stack([row0 + col0, row0 + col1, row1 + col0, row1 + col1]).reshape(-1)
    taps = source.reshape(-1, ch).index_select(0, index).reshape(4, *px.shape, ch).float()
    # the 15-bit weights are 32 (32 - fx or fx) (32 - fy or fy) and the result (sum + 2^14) >> 15: with the
    # weights divided by 2^15, every product and sum is a multiple of 2^-10 under 2^8, exact in float32
    fx, fy = (px & 31).float()[..., None], (py & 31).float()[..., None]
    gx, gy = 32.0 - fx, (32.0 - fy).mul_(1.0 / 1024.0)
    fy.mul_(1.0 / 1024.0)
    weights = (gx * gy, fx * gy, gx.mul_(fy), fx.mul_(fy))
    u8 = taps[0].mul_(weights[0])
    for k in range(1, 4):
        u8.addcmul_(taps[k], weights[k])
    u8.add_(0.5).floor_()
    scale = np.float32(hi - lo) / np.float32(255.0)
    return u8.mul_(float(scale)).add_(float(np.float32(lo)))


# ----------------------------------------------------------------------------- detections

@dataclass
class Detections:
    """Face detections of one image (mediapipe's Detection list): ``scores`` [K], ``boxes`` [K, 4]
    (xmin, ymin, width, height) and ``keypoints`` [K, 6, 2] (x, y), float32, normalised."""

    scores: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        """Number of detections."""
        return len(self.scores)


def decode_detections(raw_boxes: Tensor, raw_scores: Tensor, anchors: np.ndarray, spec: DetectorSpec
                      ) -> list[Detections]:
    """TensorsToDetectionsCalculator for a batch: ``raw_boxes`` [B, N, 4 + 2 K] (x, y, w, h then
    keypoints, reverse_output_order) and ``raw_scores`` [B, N, 1] -> per image the anchors whose
    sigmoid score (logits clipped to +-score_clipping_thresh) is >= min_score_thresh and whose box
    has a width and height >= 0, in anchor order, in the input tensor's normalised coordinates."""
    n, coords = spec.num_boxes, 4 + 2 * spec.num_keypoints
    boxes = raw_boxes.reshape(raw_boxes.shape[0], -1, raw_boxes.shape[-1]).float()
    scores = raw_scores.reshape(raw_scores.shape[0], -1).float()
    if boxes.shape[1:] != (n, coords) or scores.shape != boxes.shape[:2]:
        raise ValueError(f"raw_boxes/raw_scores: expected [B, {n}, {coords}] and [B, {n}, 1] for {spec.name}; "
                         f"got {tuple(raw_boxes.shape)} and {tuple(raw_scores.shape)}")
    anc = torch.tensor(anchors, device=boxes.device)
    ax, ay, aw, ah = anc[:, 0], anc[:, 1], anc[:, 2], anc[:, 3]
    s = float(spec.size)
    xc = boxes[..., 0] / s * aw + ax
    yc = boxes[..., 1] / s * ah + ay
    w = boxes[..., 2] / s * aw
    h = boxes[..., 3] / s * ah
    xmin, ymin, xmax, ymax = xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2
    kp = boxes[..., 4:].reshape(*boxes.shape[:2], spec.num_keypoints, 2)
    kp = torch.stack([kp[..., 0] / s * aw[:, None] + ax[:, None], kp[..., 1] / s * ah[:, None] + ay[:, None]], -1)
    clip = spec.score_clipping_thresh
    prob = torch.sigmoid(scores.clamp(-clip, clip))
    width, height = xmax - xmin, ymax - ymin
    keep = (prob >= spec.min_score_thresh) & (width >= 0) & (height >= 0)  # NaN fails both
    out = []
    for b in range(boxes.shape[0]):
        k = keep[b]
        out.append(Detections(prob[b][k].cpu().numpy(),
                              torch.stack([xmin[b][k], ymin[b][k], width[b][k], height[b][k]], -1).cpu().numpy(),
                              kp[b][k].cpu().numpy()))
    return out


def box_iou_one(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """NonMaxSuppression's INTERSECTION_OVER_UNION of one (xmin, ymin, w, h) box with each of
    ``boxes``; 0 where they do not touch or the union is empty."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    inter = np.where((x1 >= x0) & (y1 >= y0), (x1 - x0) * (y1 - y0), np.float32(0))
    union = box[2] * box[3] + boxes[:, 2] * boxes[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, np.float32(0)).astype(np.float32)


def weighted_nms(det: Detections, threshold: float) -> Detections:
    """NonMaxSuppressionCalculator, algorithm WEIGHTED: repeatedly take the best-scoring remaining
    detection and every remaining one overlapping it by IoU > ``threshold`` (itself included);
    output the best's score with the score-weighted mean of their box corners and keypoints
    (float32 sums in score order); stop if a round removes nothing."""
    order = np.argsort(-det.scores, kind="stable")
    scores, boxes, kps = [], [], []
    while len(order):
        top = order[0]
        overlap = box_iou_one(det.boxes[top], det.boxes[order]) > threshold
        cand, rest = order[overlap], order[~overlap]
        box, kp = det.boxes[top].copy(), det.keypoints[top].copy()
        if len(cand):
            total = np.float32(0)
            corners = np.zeros(4, np.float32)
            kp_sum = np.zeros_like(kp)
            for i in cand:
                s = det.scores[i]
                total += s
                b = det.boxes[i]
                corners += np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]], np.float32) * s
                kp_sum += det.keypoints[i] * s
            corners /= total
            box = np.array([corners[0], corners[1], corners[2] - corners[0], corners[3] - corners[1]], np.float32)
            kp = kp_sum / total
        scores.append(det.scores[top])
        boxes.append(box)
        kps.append(kp)
        if len(rest) == len(order):
            break
        order = rest
    k = det.keypoints.shape[1:]
    return Detections(np.asarray(scores, np.float32).reshape(-1), np.asarray(boxes, np.float32).reshape(-1, 4),
                      np.asarray(kps, np.float32).reshape((-1, *k)))


def project_detections(det: Detections, matrix: np.ndarray) -> Detections:
    """DetectionProjectionCalculator: keypoints through the 3 x 3 affine ``matrix``; the box as the
    bounds of its four projected corners."""
    m = np.asarray(matrix, np.float32)

    def apply(p: np.ndarray) -> np.ndarray:
        return np.stack([p[..., 0] * m[0, 0] + p[..., 1] * m[0, 1] + m[0, 2],
                         p[..., 0] * m[1, 0] + p[..., 1] * m[1, 1] + m[1, 2]], -1)

    x0, y0, w, h = (det.boxes[:, i] for i in range(4))
    corners = apply(np.stack([np.stack([x0, y0], -1), np.stack([x0 + w, y0], -1),
                              np.stack([x0 + w, y0 + h], -1), np.stack([x0, y0 + h], -1)], 1))
    lo, hi = corners.min(1), corners.max(1)
    boxes = np.concatenate([lo, hi - lo], -1).astype(np.float32)
    return Detections(det.scores.copy(), boxes, apply(det.keypoints).astype(np.float32))


def check_probability(name: str, value: float) -> float:
    """``value`` as a float, refused (ValueError naming ``name``) outside [0, 1]: the solutions' confidences."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a value in [0, 1]; got {value!r}")
    return float(value)


def with_min_score(spec: DetectorSpec, min_score: float | None) -> DetectorSpec:
    """``spec`` with ``min_score`` as its min_score_thresh (unchanged for None)."""
    return spec if min_score is None else replace(spec, min_score_thresh=check_probability("min_score", min_score))


def detect_faces(model: Model, images: Tensor, spec: DetectorSpec = FULL_RANGE,
                 min_score: float | None = None) -> list[Detections]:
    """mediapipe's FaceDetection graph on a batch of uint8 RGB ``images`` [B, H, W, 3] (one size):
    the whole image letterboxed into the model's square input in [-1, 1] with zero padding,
    decoded, weighted-NMS'd and projected back to the image. ``min_score`` replaces the graph's
    min_score_thresh (the solutions' min_detection_confidence)."""
    spec = with_min_score(spec, min_score)
    n, height, width = images.shape[:3]
    rect = letterbox_rect((width, height), (spec.size, spec.size))
    rects = np.repeat(rect[None], n, 0)
    x = crop(images, rects, (spec.size, spec.size), border="zero", value_range=(-1.0, 1.0))
    out = model(x)
    raw_boxes = next(t for t in out.values() if t.shape[-1] == 4 + 2 * spec.num_keypoints)
    raw_scores = next(t for t in out.values() if t.shape[-1] == 1)
    matrix = rect_to_image_matrix(rect, (width, height))
    return [project_detections(weighted_nms(d, spec.min_suppression_threshold), matrix)
            for d in decode_detections(raw_boxes, raw_scores, cached_anchors(spec), spec)]


# ----------------------------------------------------------------------------- regions of interest

def normalize_radians(angle: np.ndarray) -> np.ndarray:
    """Angle wrapped to [-pi, pi) as mediapipe's NormalizeRadians (float64 arithmetic, float32 out)."""
    a = np.asarray(angle, np.float64)
    return (a - 2 * math.pi * np.floor((a + math.pi) / (2 * math.pi))).astype(np.float32)


def _rois(boxes: np.ndarray, points: np.ndarray, start: int, end: int, image_size: tuple[int, int],
          scale: float = 1.5, target_angle: float = 0.0) -> np.ndarray:
    """DetectionsToRects (box centre and size, rotation ``target_angle - atan2(-(y_end - y_start),
    x_end - x_start)`` in pixels) then RectTransformation (square on the long side in pixels, times
    ``scale``): rects [K, 5] from boxes [K, 4] (xmin, ymin, width, height) and points [K, P, 2]."""
    w_img, h_img = np.float32(image_size[0]), np.float32(image_size[1])
    b = np.asarray(boxes, np.float32)
    p = np.asarray(points, np.float32)
    x0, y0 = p[:, start, 0] * w_img, p[:, start, 1] * h_img
    x1, y1 = p[:, end, 0] * w_img, p[:, end, 1] * h_img
    rotation = normalize_radians(np.float32(target_angle) - np.arctan2(-(y1 - y0), x1 - x0))
    long_side = np.maximum(b[:, 2] * w_img, b[:, 3] * h_img)
    s = np.float32(scale)
    return np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2,
                     long_side / w_img * s, long_side / h_img * s, rotation], -1).astype(np.float32)


def detection_rois(det: Detections, image_size: tuple[int, int]) -> np.ndarray:
    """face_detection_front_detection_to_roi: each detection's landmark ROI [K, 5] (its box,
    turned by the line from keypoint 0 to keypoint 1 (the eyes) to horizontal, squared, x 1.5)."""
    return _rois(det.boxes, det.keypoints, 0, 1, image_size)


def landmark_rois(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """face_landmark_landmarks_to_roi: the next frame's ROI [K, 5] from meshes [K, 478, >=2]
    (normalised): the points' bounding box, turned by the line from point 33 to point 263 (outer
    eye corners), squared, x 1.5."""
    lm = np.asarray(landmarks, np.float32)[..., :2]
    lo, hi = lm.min(1), lm.max(1)
    return _rois(np.concatenate([lo, hi - lo], -1), lm, 33, 263, image_size)


# ----------------------------------------------------------------------------- landmarks

def tensor_to_landmarks(raw: Tensor, num_landmarks: int, input_size: int = MESH_INPUT_SIZE,
                        normalize_z: float = 1.0) -> Tensor:
    """TensorsToLandmarksCalculator (NORM_LANDMARKS): [B, ...] with num_landmarks x D values each
    -> [B, num_landmarks, min(D, 3)], x and y divided by the input size, z by it and
    ``normalize_z``."""
    flat = raw.reshape(raw.shape[0], -1).float()
    if flat.shape[1] % num_landmarks:
        raise ValueError(f"raw: {flat.shape[1]} values per item do not divide into {num_landmarks} landmarks")
    pts = flat.reshape(raw.shape[0], num_landmarks, -1)[..., :3]
    div = torch.tensor([input_size, input_size, input_size * normalize_z][:pts.shape[-1]],
                       dtype=torch.float32, device=pts.device)
    return pts / div


# LandmarksRefinement of tensors_to_face_landmarks_with_attention.pbtxt: where each sub-model's
# points go among the 478 (the mesh keeps its own 468 points, x, y and z).
LIPS_INDEX = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407)
LEFT_EYE_INDEX = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193)
RIGHT_EYE_INDEX = (
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417)
LEFT_IRIS_INDEX = (468, 469, 470, 471, 472)
RIGHT_IRIS_INDEX = (473, 474, 475, 476, 477)
# the irises take as depth the mean mesh depth of these eye-contour points
LEFT_IRIS_DEPTH_FROM = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
RIGHT_IRIS_DEPTH_FROM = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)


def refine_mesh(mesh: Tensor, lips: Tensor, left_eye: Tensor, right_eye: Tensor, left_iris: Tensor,
                right_iris: Tensor) -> Tensor:
    """LandmarksRefinementCalculator of the attention mesh: [B, 478, 3] from the mesh [B, 468, 3]
    and the lips (80), eyes (71 each) and irises (5 each) [B, n, 2]: x and y of the sub-models
    overwrite the mesh's at their indices (in that order), the mesh keeps its z, each iris takes the
    mean z of its eye's 16 contour points."""
    out = torch.zeros(mesh.shape[0], NUM_MESH_POINTS, 3, dtype=mesh.dtype, device=mesh.device)
    out[:, :468] = mesh
    for pts, index in ((lips, LIPS_INDEX), (left_eye, LEFT_EYE_INDEX), (right_eye, RIGHT_EYE_INDEX),
                       (left_iris, LEFT_IRIS_INDEX), (right_iris, RIGHT_IRIS_INDEX)):
        if pts.shape[1:] != (len(index), 2):
            raise ValueError(f"refine_mesh: expected [B, {len(index)}, 2] points; got {tuple(pts.shape)}")
        out[:, list(index), :2] = pts
    for iris, source in ((LEFT_IRIS_INDEX, LEFT_IRIS_DEPTH_FROM), (RIGHT_IRIS_INDEX, RIGHT_IRIS_DEPTH_FROM)):
        z = out[:, list(source), 2].double().mean(1).float()
        out[:, list(iris), 2] = z[:, None]
    return out


def project_landmarks(landmarks: Tensor, rects: np.ndarray) -> Tensor:
    """LandmarkProjectionCalculator with a NORM_RECT (no image size, mediapipe's square-ROI form):
    ROI-normalised landmarks [R, N, 3] -> image-normalised, rotated about the ROI centre by its
    rotation, scaled by its normalised width / height; z scaled by its width."""
    r = torch.as_tensor(np.asarray(rects, np.float32).reshape(-1, 5), device=landmarks.device)
    cx, cy, w, h, angle = (r[:, i, None] for i in range(5))
    x, y = landmarks[..., 0] - 0.5, landmarks[..., 1] - 0.5
    c, s = torch.cos(angle), torch.sin(angle)
    nx = (c * x - s * y) * w + cx
    ny = (s * x + c * y) * h + cy
    return torch.stack([nx, ny, landmarks[..., 2] * w], -1)


def mesh_landmarks(outputs: Mapping[str, Tensor], rects: np.ndarray, presence_threshold: float = 0.5
                   ) -> tuple[Tensor, Tensor]:
    """The attention mesh's outputs -> (landmarks [R, 478, 3] normalised to the image, face present
    [R] bool): TensorsToLandmarks per part, LandmarksRefinement, LandmarkProjection through
    ``rects`` [R, 5] (the normalised ROIs cropped); present where sigmoid(face flag) >
    ``presence_threshold`` (mediapipe drops the landmarks otherwise)."""
    missing = [k for k in (*MESH_OUTPUTS, MESH_FLAG_OUTPUT) if k not in outputs]
    if missing:
        raise ValueError(f"outputs: the attention mesh's outputs {missing} are missing; got {sorted(outputs)}")
    counts = (468, 80, 71, 71, 5, 5)
    parts = [tensor_to_landmarks(outputs[k], n) for k, n in zip(MESH_OUTPUTS, counts)]
    refined = refine_mesh(*parts)
    flag = torch.sigmoid(outputs[MESH_FLAG_OUTPUT].reshape(-1).float())
    return project_landmarks(refined, rects), flag > presence_threshold


def landmarks_in_rois(model: Model, images: Tensor, rects: np.ndarray, image_index: np.ndarray | None = None,
                      presence_threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """FaceLandmarkCpu with attention for normalised ``rects`` [R, 5] on uint8 RGB ``images``
    [B, H, W, 3]: each ROI cropped to 192 x 192 in [0, 1] (edge pixels repeated, no letterbox), the
    mesh model run on the batch, its outputs turned into image-normalised landmarks (see
    ``mesh_landmarks``)."""
    height, width = images.shape[1:3]
    rects = np.asarray(rects, np.float32).reshape(-1, 5)
    x = crop(images, normalized_to_pixels(rects, (width, height)), (MESH_INPUT_SIZE, MESH_INPUT_SIZE),
             border="replicate", value_range=(0.0, 1.0), image_index=image_index)
    return mesh_landmarks(model(x), rects, presence_threshold)
