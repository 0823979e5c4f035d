"""mediapipe 0.10.21's Hands solution (``mediapipe.solutions.hands.Hands``) around the raw palm and
hand-landmark models run as torch modules, so that fexa can find hands without mediapipe.

Each step follows the calculator that ``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu
.pbtxt`` and the graphs it names set up (options as there):

- ``detect_palms``: PalmDetectionCpu: the whole image letterboxed into 192 x 192 in [0, 1] with zero
  padding, SSD decoding on 2016 anchors (strides 8, 16, 16, 16; 7 keypoints), weighted NMS
  (IoU > 0.3) and DetectionLetterboxRemoval;
- ``palm_rois``: PalmDetectionDetectionToRoi: the box turned so that keypoint 0 (wrist) -> 2 (middle
  finger knuckle) points up, shifted by half its height towards the fingers, squared on the long
  side, x 2.6;
- ``associate``: AssociationNormRectCalculator (IoU > 0.5): palm ROIs and the previous frame's
  landmark ROIs merged, a later rect replacing earlier ones it overlaps;
- ``hand_landmarks``: HandLandmarkCpu: each ROI cropped to 224 x 224 in [0, 1] (edge pixels
  repeated, letterboxed to square), 21 landmarks, hand presence and handedness, the landmarks
  un-letterboxed and projected back to the image;
- ``landmark_rois``: HandLandmarkLandmarksToRoi: the next frame's ROI from the landmarks (rotation
  from the wrist and the mean of three finger PIP joints, their rotated bounds, shifted 0.1 up,
  squared, x 2);
- ``Hands``: the tracking loop: palm detection only while fewer than ``max_num_hands`` hands are
  held, a hand dropped when its presence is not above ``min_tracking_confidence``.

Rects are float32 arrays [..., 5] of (x_center, y_center, width, height, rotation), normalised to
the image (mediapipe's NormalizedRect), as in ``fexa.face.mp_pipeline``, whose crop, decoding, NMS and
projection steps are reused here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from fexa.face.mp_pipeline import (DetectorSpec, Detections, Model, box_iou_one, cached_anchors, check_probability,
                                   crop, decode_detections, letterbox_rect, normalize_radians, normalized_to_pixels,
                                   project_landmarks, tensor_to_landmarks, weighted_nms, with_min_score)
from fexa.face.tflite_graph import shared_runner

# palm_detection_cpu.pbtxt: both models share the anchor and decoding options.
PALM_FULL = DetectorSpec("palm_detection_full", 192, (8, 16, 16, 16), 1.0, 2016, 0.5, num_keypoints=7)
PALM_LITE = replace(PALM_FULL, name="palm_detection_lite")
LANDMARK_MODELS = ("hand_landmark_lite", "hand_landmark_full")  # by model_complexity
LANDMARK_INPUT_SIZE = 224
NUM_LANDMARKS = 21
HANDEDNESS = ("Left", "Right")  # handedness.txt: the model's score is that of "Left"
_PALM_TARGET_ANGLE = math.pi / 2  # wrist -> middle-finger knuckle points up
_FLT_MIN = np.float32(np.finfo(np.float32).tiny)  # std::numeric_limits<float>::min(), a bound's start value
_FLT_MAX = np.float32(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------- letterbox

def letterbox_padding(rects: np.ndarray, tensor_size: tuple[int, int]) -> np.ndarray:
    """ImageToTensor's LETTERBOX_PADDING of pixel ``rects`` [..., 5]: [..., 4] (left, top, right,
    bottom) as fractions of the tensor (PadRoi, float32)."""
    r = np.asarray(rects, np.float32)
    tensor_ratio = np.float32(tensor_size[1]) / np.float32(tensor_size[0])
    roi_ratio = r[..., 3] / r[..., 2]
    taller = tensor_ratio > roi_ratio
    half, one = np.float32(0.5), np.float32(1.0)
    vertical = np.where(taller, (one - roi_ratio / tensor_ratio) * half, np.float32(0))
    horizontal = np.where(taller, np.float32(0), (one - tensor_ratio / roi_ratio) * half)
    return np.stack([horizontal, vertical, horizontal, vertical], -1).astype(np.float32)


def remove_letterbox(points: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Detection/LandmarkLetterboxRemoval of points [..., P, >=2] (x, y, and z scaled as x) given
    ``padding`` [..., 4]: positions in the letterboxed tensor -> in the unpadded ROI."""
    p = np.array(points, np.float32, copy=True)
    pad = np.asarray(padding, np.float32)[..., None, :]
    one = np.float32(1.0)
    span_x, span_y = one - (pad[..., 0] + pad[..., 2]), one - (pad[..., 1] + pad[..., 3])
    p[..., 0] = (p[..., 0] - pad[..., 0]) / span_x
    p[..., 1] = (p[..., 1] - pad[..., 1]) / span_y
    if p.shape[-1] > 2:
        p[..., 2] = p[..., 2] / span_x
    return p


# ----------------------------------------------------------------------------- palm detection

def _unletterbox_detections(det: Detections, padding: np.ndarray) -> Detections:
    """DetectionLetterboxRemovalCalculator: box corner and keypoints moved, box size scaled."""
    corner = remove_letterbox(det.boxes[:, None, :2], padding)[:, 0]
    pad = np.asarray(padding, np.float32)
    one = np.float32(1.0)
    size = det.boxes[:, 2:] / np.array([one - (pad[0] + pad[2]), one - (pad[1] + pad[3])], np.float32)
    return Detections(det.scores.copy(), np.concatenate([corner, size], -1).astype(np.float32),
                      remove_letterbox(det.keypoints, padding))


def detect_palms(model: Model, images: Tensor, spec: DetectorSpec = PALM_FULL, min_score: float | None = None
                 ) -> list[Detections]:
    """PalmDetectionCpu on a batch of uint8 RGB ``images`` [B, H, W, 3] (one size): detections
    normalised to each image, best first. ``min_score`` replaces the graph's min_score_thresh
    (Hands' min_detection_confidence)."""
    spec = with_min_score(spec, min_score)
    n, height, width = images.shape[:3]
    whole = np.array([0.5 * width, 0.5 * height, width, height, 0.0], np.float32)
    padding = letterbox_padding(whole, (spec.size, spec.size))
    rect = letterbox_rect((width, height), (spec.size, spec.size), whole)
    x = crop(images, np.repeat(rect[None], n, 0), (spec.size, spec.size), border="zero", value_range=(0.0, 1.0))
    out = model(x)
    raw_boxes = next(t for t in out.values() if t.shape[-1] == 4 + 2 * spec.num_keypoints)
    raw_scores = next(t for t in out.values() if t.shape[-1] == 1)
    return [_unletterbox_detections(weighted_nms(d, spec.min_suppression_threshold), padding)
            for d in decode_detections(raw_boxes, raw_scores, cached_anchors(spec), spec)]


# ----------------------------------------------------------------------------- regions of interest

def transform_rects(rects: np.ndarray, image_size: tuple[int, int], scale: float, shift_y: float) -> np.ndarray:
    """RectTransformationCalculator on normalised ``rects`` [K, 5] (float32, as its C++): the centre
    moved by ``shift_y`` x the height along the rect's own up axis, then the rect squared on its long
    side in pixels and scaled by ``scale``."""
    r = np.array(rects, np.float32, copy=True).reshape(-1, 5)
    w_img, h_img = np.float32(image_size[0]), np.float32(image_size[1])
    w, h, rot = r[:, 2].copy(), r[:, 3].copy(), r[:, 4]
    shift = np.float32(shift_y)
    turned = rot != 0
    x_shift = np.where(turned, -(h_img * h * shift * np.sin(rot)) / w_img, np.float32(0))
    y_shift = np.where(turned, (h_img * h * shift * np.cos(rot)) / h_img, h * shift)
    r[:, 0] += x_shift.astype(np.float32)
    r[:, 1] += y_shift.astype(np.float32)
    long_side = np.maximum(w * w_img, h * h_img)
    s = np.float32(scale)
    r[:, 2] = long_side / w_img * s
    r[:, 3] = long_side / h_img * s
    return r


def palm_rois(det: Detections, image_size: tuple[int, int]) -> np.ndarray:
    """PalmDetectionDetectionToRoi: each palm's hand ROI [K, 5]: DetectionsToRects (box centre and
    size, rotation that turns keypoint 0 -> 2 to point up, angles in pixels) then RectTransformation
    (shift_y -0.5, square long, scale 2.6)."""
    w_img, h_img = np.float32(image_size[0]), np.float32(image_size[1])
    b, kp = np.asarray(det.boxes, np.float32), np.asarray(det.keypoints, np.float32)
    x0, y0 = kp[:, 0, 0] * w_img, kp[:, 0, 1] * h_img
    x1, y1 = kp[:, 2, 0] * w_img, kp[:, 2, 1] * h_img
    rotation = normalize_radians(np.float32(_PALM_TARGET_ANGLE) - np.arctan2(-(y1 - y0), x1 - x0))
    half = np.float32(2)
    raw = np.stack([b[:, 0] + b[:, 2] / half, b[:, 1] + b[:, 3] / half, b[:, 2], b[:, 3], rotation], -1)
    return transform_rects(raw.astype(np.float32), image_size, 2.6, -0.5)


# HandLandmarksToRectCalculator looks only at these landmarks (wrist, knuckles and PIP joints).
_ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)


def _hand_rects(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """HandLandmarksToRectCalculator: rects [K, 5] around landmarks [K, 21, >=2] (normalised):
    rotation from the wrist to the mean of the index, middle and ring PIP joints (pointing up), the
    bounds of the ``_ROI_LANDMARKS`` in that rotated frame (float32, as its C++)."""
    lm = np.asarray(landmarks, np.float32)[:, list(_ROI_LANDMARKS), :2]
    w_img, h_img = np.float32(image_size[0]), np.float32(image_size[1])
    two = np.float32(2)
    x0, y0 = lm[:, 0, 0] * w_img, lm[:, 0, 1] * h_img
    x1 = ((lm[:, 4, 0] + lm[:, 8, 0]) / two + lm[:, 6, 0]) / two * w_img
    y1 = ((lm[:, 4, 1] + lm[:, 8, 1]) / two + lm[:, 6, 1]) / two * h_img
    rotation = normalize_radians(np.float32(np.float32(math.pi) * np.float32(0.5)) - np.arctan2(-(y1 - y0), x1 - x0))
    reverse = normalize_radians(-rotation)
    hi = np.max(lm, axis=1, initial=_FLT_MIN)
    lo = np.min(lm, axis=1, initial=_FLT_MAX)
    centre = (hi + lo) / two  # [K, 2] axis-aligned
    ox = (lm[..., 0] - centre[:, None, 0]) * w_img
    oy = (lm[..., 1] - centre[:, None, 1]) * h_img
    c, s = np.cos(reverse)[:, None], np.sin(reverse)[:, None]
    px, py = ox * c - oy * s, ox * s + oy * c
    px_hi, px_lo = np.max(px, 1, initial=_FLT_MIN), np.min(px, 1, initial=_FLT_MAX)
    py_hi, py_lo = np.max(py, 1, initial=_FLT_MIN), np.min(py, 1, initial=_FLT_MAX)
    pcx, pcy = (px_hi + px_lo) / two, (py_hi + py_lo) / two
    cr, sr = np.cos(rotation), np.sin(rotation)
    cx = pcx * cr - pcy * sr + w_img * centre[:, 0]
    cy = pcx * sr + pcy * cr + h_img * centre[:, 1]
    return np.stack([cx / w_img, cy / h_img, (px_hi - px_lo) / w_img, (py_hi - py_lo) / h_img, rotation],
                    -1).astype(np.float32)


def landmark_rois(landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """HandLandmarkLandmarksToRoi: the next frame's ROI [K, 5] of each hand's landmarks [K, 21, >=2]
    (normalised): ``_hand_rects`` then RectTransformation (shift_y -0.1, square long, scale 2)."""
    return transform_rects(_hand_rects(landmarks, image_size), image_size, 2.0, -0.1)


def associate(palm_rects: np.ndarray, prev_rects: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """AssociationNormRectCalculator: the palm ROIs, then the previous frame's landmark ROIs, each
    appended in turn after removing the rects already kept that it overlaps by IoU > ``threshold``
    (axis-aligned boxes of the rects, rotation ignored); the first rect of the first non-empty
    input is kept as it is."""
    kept: list[np.ndarray] = []
    for rect in (*np.asarray(palm_rects, np.float32).reshape(-1, 5), *np.asarray(prev_rects, np.float32).reshape(-1, 5)):
        if kept:
            boxes = np.stack([np.concatenate([k[:2] - k[2:4] / np.float32(2), k[2:4]]) for k in kept])
            box = np.concatenate([rect[:2] - rect[2:4] / np.float32(2), rect[2:4]])
            kept = [k for k, iou in zip(kept, box_iou_one(box, boxes)) if not iou > threshold]
        kept.append(rect)
    return np.asarray(kept, np.float32).reshape(-1, 5)


# ----------------------------------------------------------------------------- landmarks

@dataclass
class HandLandmarks:
    """The landmark model's reading of R ROIs: ``landmarks`` [R, 21, 3] normalised to the image (z
    as mediapipe's, scaled by the ROI width), ``presence`` [R] (hand flag), ``handedness`` [R]
    (score of "Left"), float32."""

    landmarks: np.ndarray
    presence: np.ndarray
    handedness: np.ndarray


def hand_landmarks(model: Model, images: Tensor, rects: np.ndarray, image_index: np.ndarray | None = None
                   ) -> HandLandmarks:
    """HandLandmarkCpu for normalised ``rects`` [R, 5] on uint8 RGB ``images`` [B, H, W, 3]
    (``image_index`` [R]: which image each rect is on; default rect i on image i): each ROI
    letterboxed to square, cropped to 224 x 224 in [0, 1] (edge pixels repeated), the model run on
    the batch, its landmarks un-letterboxed and projected back (see ``HandLandmarks``)."""
    height, width = images.shape[1:3]
    rects = np.asarray(rects, np.float32).reshape(-1, 5)
    size = (LANDMARK_INPUT_SIZE, LANDMARK_INPUT_SIZE)
    pixels = normalized_to_pixels(rects, (width, height))
    padding = letterbox_padding(pixels, size)
    x = crop(images, letterbox_rect((width, height), size, pixels), size, border="replicate",
             value_range=(0.0, 1.0), image_index=image_index)
    out = model(x)
    flat = [out[k].reshape(len(rects), -1) for k in ("Identity", "Identity_1", "Identity_2")]
    raw = tensor_to_landmarks(flat[0], NUM_LANDMARKS, LANDMARK_INPUT_SIZE, normalize_z=0.4).cpu().numpy()
    local = torch.from_numpy(remove_letterbox(raw, padding))
    points = project_landmarks(local, rects).numpy().astype(np.float32)
    return HandLandmarks(points, flat[1][:, 0].float().cpu().numpy(), flat[2][:, 0].float().cpu().numpy())


# ----------------------------------------------------------------------------- the solution

@dataclass
class Landmark:
    """One normalised landmark (mediapipe's NormalizedLandmark)."""

    x: float
    y: float
    z: float


@dataclass
class LandmarkList:
    """One hand's landmarks (mediapipe's NormalizedLandmarkList)."""

    landmark: list[Landmark]


@dataclass
class Classification:
    """One class and its score (mediapipe's Classification)."""

    index: int
    score: float
    label: str


@dataclass
class ClassificationList:
    """One hand's handedness (mediapipe's ClassificationList, one entry)."""

    classification: list[Classification]


@dataclass
class HandsResult:
    """What ``Hands.process`` gives, with mediapipe's field names (None where no hand is found):
    ``multi_hand_landmarks``, ``multi_handedness``; world landmarks are not computed (always None).
    Also ``rects`` [K, 5], the ROIs the landmark model looked at, and ``presence`` [K] of each."""

    multi_hand_landmarks: list[LandmarkList] | None
    multi_handedness: list[ClassificationList] | None
    multi_hand_world_landmarks: None = None
    rects: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    presence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _handedness(score: float) -> ClassificationList:
    """TensorsToClassification (binary, top 1): "Left" with the model's score or "Right" with one
    minus it, whichever is higher (Left on a tie)."""
    right = float(np.float32(1.0 - float(score)))
    best = 0 if score >= right else 1
    return ClassificationList([Classification(best, float(score) if best == 0 else right, HANDEDNESS[best])])


class Hands:
    """``mediapipe.solutions.hands.Hands`` (0.10.21) in torch: the same arguments, ``process`` the
    same result fields (``HandsResult``); usable as a context manager. ``device``: where the models
    run."""

    def __init__(self, static_image_mode: bool = False, max_num_hands: int = 2, model_complexity: int = 1,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 device: str | torch.device = "cpu"):
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity: expected 0 or 1; got {model_complexity!r}")
        if not isinstance(max_num_hands, (int, np.integer)) or max_num_hands < 1:
            raise ValueError(f"max_num_hands: expected an integer >= 1; got {max_num_hands!r}")
        self.static_image_mode = bool(static_image_mode)
        self.max_num_hands = int(max_num_hands)
        self.min_detection_confidence = check_probability("min_detection_confidence", min_detection_confidence)
        self.min_tracking_confidence = check_probability("min_tracking_confidence", min_tracking_confidence)
        self.device = str(torch.device(device))
        self._spec = (PALM_LITE, PALM_FULL)[model_complexity]
        self._palm = shared_runner(self._spec.name, self.device)
        self._landmarks = shared_runner(LANDMARK_MODELS[model_complexity], self.device)
        #: [K, 5] the ROIs the last frame's hands give the next frame (tracking; empty in static mode)
        self.tracked = np.zeros((0, 5), np.float32)

    def __enter__(self) -> "Hands":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Forget the tracked hands (mediapipe's close ends its graph; the models stay cached)."""
        self.reset()

    def reset(self) -> None:
        """Start over: the next frame is looked at without the previous one's hands."""
        self.tracked = np.zeros((0, 5), np.float32)

    @torch.inference_mode()
    def process(self, image: np.ndarray) -> HandsResult:
        """The hands in one RGB ``image`` [H, W, 3] uint8 (frames of a video in order unless
        static_image_mode): palms detected while fewer than max_num_hands hands are tracked, their
        ROIs merged with the tracked ones, landmarks in each; a hand whose presence is not above
        min_tracking_confidence is dropped (and no longer tracked)."""
        rgb = np.asarray(image)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"image: expected an RGB uint8 array [H, W, 3]; got {rgb.dtype} {rgb.shape}")
        size = (rgb.shape[1], rgb.shape[0])
        images = torch.from_numpy(np.ascontiguousarray(rgb))[None].to(self.device)
        prev = np.zeros((0, 5), np.float32) if self.static_image_mode else self.tracked
        palms = np.zeros((0, 5), np.float32)
        if len(prev) < self.max_num_hands:
            det = detect_palms(self._palm, images, self._spec, self.min_detection_confidence)[0]
            keep = slice(0, self.max_num_hands)  # ClipDetectionVectorSize: the best ones
            palms = palm_rois(Detections(det.scores[keep], det.boxes[keep], det.keypoints[keep]), size)
        rects = associate(palms, prev)
        if not len(rects):
            self.tracked = rects
            return HandsResult(None, None)
        found = hand_landmarks(self._landmarks, images, rects, np.zeros(len(rects), np.int64))
        present = found.presence.astype(np.float64) > self.min_tracking_confidence
        points = found.landmarks[present]
        self.tracked = landmark_rois(points, size) if len(points) and not self.static_image_mode else \
            np.zeros((0, 5), np.float32)
        if not present.any():
            return HandsResult(None, None, rects=rects, presence=found.presence)
        hands = [LandmarkList([Landmark(float(x), float(y), float(z)) for x, y, z in p]) for p in points]
        return HandsResult(hands, [_handedness(s) for s in found.handedness[present]],
                           rects=rects, presence=found.presence)
