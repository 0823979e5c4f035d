"""mediapipe's FaceDetection and FaceMesh solutions (0.10.21, ``mediapipe.solutions``) rebuilt on fexa's torch
versions of their models, so fexa can track faces without mediapipe installed.

The classes take the same arguments and return the same kind of results as mediapipe's:

- ``FaceDetection(model_selection, min_detection_confidence).process(rgb).detections``: per face a
  ``score`` list and ``location_data`` with ``relative_bounding_box`` (xmin, ymin, width, height) and six
  ``relative_keypoints`` (x, y), normalised to the image (face_detection_{short,full}_range_cpu.pbtxt);
- ``FaceMesh(...).process(rgb).multi_face_landmarks``: per face 478 ``landmark`` (x, y, z), x and y
  normalised to the image, z in the same units as x (the model's depth / 192 times the ROI's normalised
  width), smaller = nearer the camera (face_landmark_front_cpu.pbtxt with attention).

Both return ``None`` instead of an empty list, as mediapipe does. FaceMesh follows the solution graph
between the models: in video mode (``static_image_mode=False``) each face's ROI comes from its previous
frame's mesh, and the short-range detector runs only while fewer than ``max_num_faces`` faces are held
(its first ``max_num_faces`` detections become ROIs, merged with the held ones by
AssociationNormRectCalculator: a later ROI replaces earlier ones it overlaps by IoU > 0.5); a face whose
presence score is not above ``min_tracking_confidence`` is dropped (and, with it, its ROI for the next
frame). In static mode the detector runs on every image. There is no landmark smoothing in that graph.
The pre- and post-processing steps are in ``fexa.face.mp_pipeline``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from fexa.face import mp_pipeline as mp
from fexa.face.batching import batching_active, model_call
from fexa.face.tflite_graph import shared_runner

MESH_MODEL = "face_landmark_with_attention"
DETECTORS = {0: mp.SHORT_RANGE, 1: mp.FULL_RANGE}  # model_selection -> detector
ASSOCIATION_IOU = 0.5  # face_landmark_front_cpu.pbtxt: AssociationNormRectCalculator's min_similarity_threshold
# torch threads while a solution runs: one image at a time gains little from more, and on a busy machine torch's
# spinning threads lose much (measured on 2 cores beside another busy process: the mesh 12 ms with 1 thread,
# 1.3 s with 2); parallel extraction uses processes (fexa extract --workers)
THREADS = 1


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` inside the block (restored after it); left alone while
    calls are batched across threads (``fexa.face.batching``: whoever batches sets it for them all)."""
    if batching_active():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _runner(name: str, device: str):
    """The model ``name`` as a function of a batch, without autograd, batched with other threads' calls
    while a ``fexa.face.batching`` group is active."""
    return partial(model_call, shared_runner(name, device))


def _image_batch(image: np.ndarray, device: str) -> torch.Tensor:
    """An RGB uint8 image [H, W, 3] as a [1, H, W, 3] tensor on ``device`` (no copy where possible)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        what = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image: expected an RGB uint8 array [H, W, 3]; got {what}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image: empty image of shape {image.shape}")
    if image.flags.c_contiguous and image.flags.writeable:
        t = torch.from_numpy(image)
    else:
        t = torch.tensor(image)
    return t[None].to(device)


# ----------------------------------------------------------------------------- results (mediapipe's fields)

@dataclass
class RelativeBoundingBox:
    """A detection's box, normalised to the image."""

    xmin: float
    ymin: float
    width: float
    height: float


@dataclass
class RelativeKeypoint:
    """A detection keypoint (eyes, nose tip, mouth, ear tragions), normalised to the image."""

    x: float
    y: float


@dataclass
class LocationData:
    """Where a detection is."""

    relative_bounding_box: RelativeBoundingBox
    relative_keypoints: list[RelativeKeypoint]


@dataclass
class Detection:
    """One detected face: ``score[0]`` and its ``location_data``."""

    score: list[float]
    location_data: LocationData


@dataclass
class NormalizedLandmark:
    """One mesh point: x, y normalised to the image, z in x's units (smaller = nearer)."""

    x: float
    y: float
    z: float


@dataclass
class NormalizedLandmarkList:
    """One face's mesh (``landmark``: 478 points)."""

    landmark: list[NormalizedLandmark]


class FaceDetectionResult(NamedTuple):
    """What ``FaceDetection.process`` returns: the detections, or None when there are none."""

    detections: list[Detection] | None


class FaceMeshResult(NamedTuple):
    """What ``FaceMesh.process`` returns: one landmark list per face, or None when there are none."""

    multi_face_landmarks: list[NormalizedLandmarkList] | None


def _detections(det: mp.Detections) -> list[Detection] | None:
    """``mp.Detections`` as mediapipe's Detection objects (None when empty)."""
    out = [Detection([float(s)], LocationData(RelativeBoundingBox(*map(float, b)),
                                              [RelativeKeypoint(float(x), float(y)) for x, y in k]))
           for s, b, k in zip(det.scores, det.boxes, det.keypoints)]
    return out or None


def _landmark_lists(points: np.ndarray) -> list[NormalizedLandmarkList] | None:
    """Meshes [K, 478, 3] as mediapipe's landmark lists (None when K = 0)."""
    out = [NormalizedLandmarkList([NormalizedLandmark(x, y, z) for x, y, z in face.tolist()]) for face in points]
    return out or None


def associate_rois(detected: np.ndarray, held: np.ndarray, min_iou: float = ASSOCIATION_IOU) -> np.ndarray:
    """AssociationNormRectCalculator on two lists of normalised rects [K, 5] (detection ROIs, then the
    ROIs held from the previous frame): each rect in turn removes the ones already kept that it
    overlaps by IoU > ``min_iou`` (axis-aligned, rotation ignored, as mediapipe does) and is kept
    after them."""
    kept: list[np.ndarray] = []
    for r in [*detected, *held]:
        kept = [k for k in kept if _rect_iou(r, k) <= min_iou]
        kept.append(r)
    return np.asarray(kept, np.float32).reshape(-1, 5)


def _rect_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two normalised rects (centre, size; rotation ignored); 0 when they do not overlap."""
    ax0, ay0, bx0, by0 = a[0] - a[2] / 2, a[1] - a[3] / 2, b[0] - b[2] / 2, b[1] - b[3] / 2
    w = min(ax0 + a[2], bx0 + b[2]) - max(ax0, bx0)
    h = min(ay0 + a[3], by0 + b[3]) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))


class _Solution:
    """Shared lifetime of the two solutions: ``close()`` and the context manager, as mediapipe's."""

    _closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{type(self).__name__} is closed")

    def close(self) -> None:
        """Release the solution (further ``process`` calls raise)."""
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FaceDetection(_Solution):
    """mediapipe.solutions.face_detection.FaceDetection on torch: ``model_selection`` 0 for the
    short-range model (faces within ~2 m), 1 for the full-range one. Detections scoring below the
    graph's own threshold (0.5 short range, 0.6 full range) or below ``min_detection_confidence`` are
    dropped. mediapipe 0.10.21's FaceDetection keeps only its graphs' thresholds: it ignores
    min_detection_confidence (asked for 0.99 it still returns faces scoring 0.887; asked for 0.2 it
    returns none of the full-range model's 0.52-0.57 on pyfeat's no_face clip), so at or below those
    thresholds the two agree."""

    def __init__(self, min_detection_confidence: float = 0.5, model_selection: int = 0, device: str = "cpu"):
        if model_selection not in DETECTORS:
            raise ValueError(f"model_selection: expected 0 (short range) or 1 (full range); got {model_selection!r}")
        spec = DETECTORS[model_selection]
        threshold = max(spec.min_score_thresh, mp.check_probability("min_detection_confidence", min_detection_confidence))
        self._spec = replace(spec, min_score_thresh=threshold)
        self._device = str(device)
        self._model = _runner(self._spec.name, self._device)

    def process(self, image: np.ndarray) -> FaceDetectionResult:
        """Faces in an RGB uint8 image [H, W, 3]."""
        self._check_open()
        with _torch_threads(THREADS):
            det = mp.detect_faces(self._model, _image_batch(image, self._device), self._spec)[0]
        return FaceDetectionResult(_detections(det))


class FaceMesh(_Solution):
    """mediapipe.solutions.face_mesh.FaceMesh on torch, with ``refine_landmarks=True`` (the attention
    mesh: 478 points with irises; the plain 468-point mesh is not rebuilt). See the module docstring
    for what video mode keeps between calls."""

    def __init__(self, static_image_mode: bool = False, max_num_faces: int = 1, refine_landmarks: bool = True,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5, device: str = "cpu"):
        if not refine_landmarks:
            raise ValueError("refine_landmarks: only True is supported (the attention mesh, 478 points)")
        if not isinstance(max_num_faces, (int, np.integer)) or max_num_faces < 1:
            raise ValueError(f"max_num_faces: expected an integer >= 1; got {max_num_faces!r}")
        self.static_image_mode = bool(static_image_mode)
        self.max_num_faces = int(max_num_faces)
        self._min_detection = mp.check_probability("min_detection_confidence", min_detection_confidence)
        self._min_tracking = mp.check_probability("min_tracking_confidence", min_tracking_confidence)
        self._device = str(device)
        self._detector = _runner(mp.SHORT_RANGE.name, self._device)
        self._mesh = _runner(MESH_MODEL, self._device)
        self._held = np.zeros((0, 5), np.float32)  # ROIs for the next frame, from this frame's meshes

    def process(self, image: np.ndarray) -> FaceMeshResult:
        """Face meshes of an RGB uint8 image [H, W, 3] (in video mode, the next frame of the stream)."""
        return FaceMeshResult(_landmark_lists(self.points(image)))

    def points(self, image: np.ndarray) -> np.ndarray:
        """``process`` as an array: the meshes [K, 478, 3] float32 (x, y normalised to the image, z in x's
        units), without building mediapipe's 478 landmark objects a face (a fifth of a frame's time)."""
        self._check_open()
        with _torch_threads(THREADS):
            return self._meshes(image)

    def _meshes(self, image: np.ndarray) -> np.ndarray:
        """The meshes [K, 478, 3] of this call's faces; keeps their ROIs for the next call."""
        batch = _image_batch(image, self._device)
        size = (image.shape[1], image.shape[0])
        held = np.zeros((0, 5), np.float32) if self.static_image_mode else self._held
        rois = held
        if len(held) < self.max_num_faces:
            det = mp.detect_faces(self._detector, batch, mp.SHORT_RANGE, min_score=self._min_detection)[0]
            rois = associate_rois(mp.detection_rois(det, size)[:self.max_num_faces], held)
        points = np.zeros((0, mp.NUM_MESH_POINTS, 3), np.float32)
        if len(rois):
            lm, present = mp.landmarks_in_rois(self._mesh, batch, rois, np.zeros(len(rois), np.int64),
                                               presence_threshold=self._min_tracking)
            points = lm[present].cpu().numpy()
        self._held = mp.landmark_rois(points, size)
        return points
