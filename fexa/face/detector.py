"""Face detection, landmarking and tracking with mediapipe's face models (offline: converted, they ship
inside fexa), run by fexa's torch rebuild of mediapipe's solutions (``TrackerConfig.backend="torch"``, the
default: fexa.face.mp_face) or by mediapipe 0.10.21 itself (``"mediapipe"``: ``pip install fexa[mediapipe]``).

Per frame, mediapipe's full-range face detector (runs every ``detect_every`` frames, and on every
frame while a face is missing) finds faces; each face becomes a track with its own face-mesh
graph (478 points with iris refinement) that runs on a square region of interest re-centred on
the face every frame. Re-centring keeps the face still inside the ROI, so the mesh graph's own
frame-to-frame tracking works, faces of any size are landmarked (the mesh's built-in detector is
short-range only), and each face keeps its track id.

Orientation: the mesh graph fits an upright face whatever it is given (over an upside-down face it
fits an upright mesh, with a wrong mouth and eyes). So each new track's orientation is chosen by
the detectors' scores on its region turned by 0, 90, 180 and 270 degrees, and the region is turned
upright before the mesh every frame; the mesh's own roll then follows gradual turns. A mesh whose
roll inside the upright region is beyond ``max_roll`` even after re-turning is rejected (the frame
counts as face lost, and ``FaceTracker.orientation_rejects`` counts it). A held face's orientation is
checked again every ``orientation_every`` frames and whenever the detector misses it or is unsure;
when it has turned over since the last check, the frames in between are listed in
``FaceTracker.misfitted`` (their meshes were fitted the wrong way up) for the caller to discard.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402

from fexa.face.pose import eye_line_roll  # noqa: E402

NUM_MESH_POINTS = 478


BACKENDS = ("torch", "mediapipe")  # TrackerConfig.backend: what runs the face models
DEFAULT_BACKEND = "torch"


def _mediapipe():
    """mediapipe 0.10.21 (the ``"mediapipe"`` backend), imported when first used; an ImportError that says
    how to install it when it is not there."""
    try:
        import mediapipe
    except ImportError as err:
        raise ImportError("the face backend 'mediapipe' needs mediapipe 0.10.21: pip install 'fexa[mediapipe]' "
                          f"(or use the default backend, 'torch'): {err}") from err
    return mediapipe


def solution_classes(backend: str, device: str = "cpu") -> tuple[Callable, Callable]:
    """(FaceDetection, FaceMesh) of a backend: fexa's torch rebuild of mediapipe's solutions (``"torch"``,
    fexa.face.mp_face: the same models and steps, run on ``device``) or mediapipe's own (``"mediapipe"``,
    CPU only: ``check_device``)."""
    if backend == "torch":
        from fexa.face import mp_face

        return partial(mp_face.FaceDetection, device=device), partial(mp_face.FaceMesh, device=device)
    if backend == "mediapipe":
        solutions = _mediapipe().solutions
        return solutions.face_detection.FaceDetection, solutions.face_mesh.FaceMesh
    raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}; got {backend!r}")


def _first_mesh(mesh, image: np.ndarray) -> np.ndarray | None:
    """The first face's mesh points [478, 3] (float64) from a FaceMesh of either backend, or None: fexa's
    gives them as an array (``points``), mediapipe's as landmark objects."""
    if hasattr(mesh, "points"):
        points = mesh.points(image)
        return points[0].astype(np.float64) if len(points) else None
    res = mesh.process(image)
    if not res.multi_face_landmarks:
        return None
    return np.array([(q.x, q.y, q.z) for q in res.multi_face_landmarks[0].landmark], dtype=np.float64)


def check_device(cfg: "TrackerConfig") -> None:
    """Refuse a ``cfg.device`` its backend cannot run on here, naming it (ConfigError)."""
    import torch

    from fexa.errors import ConfigError

    try:
        device = torch.device(cfg.device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device: {cfg.device!r} is not a torch device ({err})") from None
    if cfg.backend == "mediapipe" and device.type != "cpu":
        raise ConfigError(f"device: the face backend 'mediapipe' runs on the CPU only; got {cfg.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {cfg.device!r} asked for, but torch sees no CUDA device here")


_LIBC = ctypes.CDLL(None)


@contextlib.contextmanager
def native_output_silenced() -> Iterator[None]:
    """Hide what mediapipe's C++ side prints (TFLite delegate and absl start-up chatter, written
    straight to file descriptors 1 and 2, sometimes from graph threads) while keeping Python's own
    output: inside the block fds 1 and 2 go to /dev/null and sys.stdout/sys.stderr write to copies
    of the original descriptors."""
    try:
        fds = [sys.stdout.fileno(), sys.stderr.fileno()]
    except (AttributeError, OSError, ValueError):  # streams replaced (e.g. captured): nothing to hide
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    py_streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (os.fdopen(os.dup(fd), "w", buffering=1, closefd=True) for fd in saved)
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in fds:
        os.dup2(devnull, fd)
    try:
        yield
    finally:
        _LIBC.fflush(None)  # C stdio buffers may still hold chatter: let it go to /dev/null
        for stream in (sys.stdout, sys.stderr):
            stream.close()
        sys.stdout, sys.stderr = py_streams
        for fd, old in zip(fds, saved):
            os.dup2(old, fd)
            os.close(old)
        os.close(devnull)


@dataclass
class TrackerConfig:
    """Settings of :class:`FaceTracker`; the defaults suit frontal clinical recordings."""

    max_faces: int = 5
    detect_every: int = 10  # run the detector every N frames while all tracks are held
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    roi_scale: float = 1.6  # ROI side / landmark-box side
    roi_scale_detection: float = 1.8  # ROI side / detection-box side (detection boxes are tighter)
    roi_size: int = 256  # pixels of the ROI image given to the mesh graph
    match_iou: float = 0.3  # a detection continues a track when their boxes overlap this much
    duplicate_iou: float = 0.6  # two tracks this overlapping follow the same face: drop the younger
    max_lost: int = 30  # frames a lost track may still be re-found under its id
    small_image: int = 160  # still images smaller than this (e.g. 48 px dataset crops) are enlarged and padded
    max_roll: float = 60.0  # degrees: a mesh rolled further inside its upright region is not trusted
    orientation_margin: float = 0.05  # a turned region must beat the upright one's detection score by this
    orientation_min_score: float = 0.75  # ... and reach this score (weak false detections are not turned)
    orientation_every: int = 30  # frames between orientation checks of a held face (also when a detection is unsure)
    # still images that are face crops already (RAF-DB aligned, FERPlus, AffectNet): where no face is
    # detected, the landmarks are fitted with the whole image as the face (counted as whole_image_faces)
    whole_image_fallback: bool = False
    # what runs the face models: fexa's torch rebuild of mediapipe's solutions (fexa.face.mp_face), or mediapipe
    backend: str = DEFAULT_BACKEND
    # where the torch backend's models run ("cpu", "cuda", "cuda:1"): an execution setting, not part of what
    # an extraction is identified by (the results agree within floating-point rounding)
    device: str = "cpu"


@dataclass
class FaceObservation:
    """One face in one frame (coordinates in frame pixels)."""

    track_id: int
    box: np.ndarray  # [4] x0, y0, x1, y1 of the landmarks
    points: np.ndarray  # [478, 3] x, y, z (z in pixels, smaller = nearer the camera)
    score: float  # score of the latest detection matched to this track
    detected: bool  # True when a detection was matched in this very frame


@dataclass
class _Track:
    id: int
    mesh: object
    box: np.ndarray
    seed: np.ndarray | None = None  # detection box to search around after a loss
    score: float = 0.0
    lost: int = 0
    frames: int = 0
    detected: bool = False
    turns: int = 0  # quarter turns (np.rot90) that make the face upright in its region
    checked: int = 0  # the frame whose orientation check last confirmed ``turns``


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N,4] with every box in b [M,4] -> [N, M]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _roll_in_region(points: np.ndarray, turns: int) -> float:
    """A mesh's roll (degrees, -180..180) inside its region turned by ``turns`` quarter turns."""
    return (eye_line_roll(points) - 90.0 * turns + 180.0) % 360.0 - 180.0


def points_box(points: np.ndarray) -> np.ndarray:
    """[..., N, >=2] -> [..., 4] tight box of the points."""
    return np.concatenate([points[..., :2].min(axis=-2), points[..., :2].max(axis=-2)], axis=-1)


class FaceTracker:
    """Detect, landmark and track faces frame by frame: ``observations = tracker(rgb)``.

    ``static=True`` treats every call as an unrelated image (no temporal tracking)."""

    def __init__(self, config: TrackerConfig | None = None, static: bool = False):
        self.cfg = config or TrackerConfig()
        check_device(self.cfg)
        self.static = static
        # full range (faces up to ~5 m) first; the short-range model (< 2 m) finds close-ups it
        # misses, e.g. a face filling the frame at 45 degrees of yaw
        face_detection, self._face_mesh = solution_classes(self.cfg.backend, self.cfg.device)
        self._detectors = [face_detection(model_selection=m, min_detection_confidence=self.cfg.min_detection_confidence)
                           for m in (1, 0)]
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = 0
        self.detector_calls = 0
        self.orientation_rejects = 0  # meshes rejected for a roll beyond max_roll (see module docstring)
        self.turned_tracks = 0  # faces found turned by 90 degrees or more (at start, or turning over later)
        self.misfitted: list[tuple[int, int, int]] = []  # (track id, first, end frame): meshed before a turn was found
        self.whole_image_faces = 0  # images fitted with the whole image as the face (whole_image_fallback)

    # -- public -----------------------------------------------------------------------------
    def __call__(self, rgb: np.ndarray) -> list[FaceObservation]:
        if self.static and min(rgb.shape[:2]) < self.cfg.small_image:
            obs = self._small_image(rgb)
        else:
            obs = self._process(rgb)
        if not obs and self.static and self.cfg.whole_image_fallback:
            obs = self._whole_image(rgb)
        return obs

    def _process(self, rgb: np.ndarray) -> list[FaceObservation]:
        h, w = rgb.shape[:2]
        if self.static:
            self._drop(list(self._tracks))
        for t in self._tracks:
            t.detected = False
        if self._needs_detection():
            self._associate(self.detect(rgb), rgb)
        out = []
        for t in list(self._tracks):
            pts = self._landmark(t, rgb)
            if pts is None:
                t.lost += 1
                continue
            t.box, t.lost, t.seed = points_box(pts), 0, None
            t.frames += 1
            out.append(FaceObservation(t.id, t.box.copy(), pts, t.score, t.detected))
        self._drop([t for t in self._tracks if t.lost > self.cfg.max_lost])
        out = self._remove_duplicates(out)
        self._frame += 1
        return out

    def detect(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face detection -> [(box x0,y0,x1,y1 in pixels, score)]: the full-range model, or the
        short-range one when the full-range model finds nothing."""
        h, w = rgb.shape[:2]
        self.detector_calls += 1
        for detector in self._detectors:
            found = detector.process(rgb).detections or []
            if found:
                break
        dets = []
        for d in found:
            r = d.location_data.relative_bounding_box
            box = np.array([r.xmin * w, r.ymin * h, (r.xmin + r.width) * w, (r.ymin + r.height) * h])
            dets.append((box, float(d.score[0])))
        return dets

    def end_tracks(self) -> None:
        """Forget every track (at a shot cut): faces found from the next frame on get new ids."""
        self._drop(list(self._tracks))

    def close(self) -> None:
        self._drop(list(self._tracks))
        for detector in self._detectors:
            detector.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _small_image(self, rgb: np.ndarray) -> list[FaceObservation]:
        """Pre-cropped tiny faces fill the frame, which the detectors miss: enlarge the image to
        192 px and pad it by a quarter on each side, then map the results back."""
        s = 192.0 / min(rgb.shape[:2])
        pad = 48
        big = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        obs = self._process(big)
        for o in obs:
            o.points[:, :2] = (o.points[:, :2] - pad) / s
            o.points[:, 2] /= s
            o.box = points_box(o.points)
        return obs

    def _whole_image(self, rgb: np.ndarray) -> list[FaceObservation]:
        """A pre-cropped face the detectors missed: fit the landmarks in the region around the whole
        image, as around a detection box (score 0, not detected); [] if the fit fails too."""
        h, w = rgb.shape[:2]
        box = np.array([0.0, 0.0, w, h])
        mesh = self._new_mesh()
        t = _Track(self._next_id, mesh, box, seed=box)
        self._next_id += 1
        try:
            pts = self._landmark(t, rgb)
        finally:
            mesh.close()
        box = None if pts is None else points_box(pts)
        if box is None or min(box[2] - box[0], box[3] - box[1]) < 0.4 * min(h, w):
            return []  # the face of a face crop fills most of it: a much smaller fit is something else
        self.whole_image_faces += 1
        return [FaceObservation(t.id, box, pts, 0.0, False)]

    def _needs_detection(self) -> bool:
        return (
            self.static
            or not self._tracks
            or self._frame % max(self.cfg.detect_every, 1) == 0
            or any(t.lost > 0 for t in self._tracks)
        )

    def _associate(self, dets: list[tuple[np.ndarray, float]], rgb: np.ndarray) -> None:
        """Match detections to tracks (IoU), start tracks for the others; a track whose face the
        detector missed or was unsure of, and every track each ``orientation_every`` frames, gets its
        orientation checked again (the face or the camera may have turned over)."""
        if dets:
            self._match(dets, rgb)
        periodic = self._frame % max(self.cfg.orientation_every, 1) == 0
        for t in self._tracks:
            if t.frames and not t.lost and (periodic or not t.detected or t.score < self.cfg.orientation_min_score):
                turns = self._orientation(rgb, t.box, t.score if t.detected else 0.0, t.turns)
                if turns != t.turns:  # turned over since the last check: those frames' meshes are not trusted
                    self.misfitted.append((t.id, t.checked + 1, self._frame))
                    self.turned_tracks += 1
                t.turns, t.checked = turns, self._frame

    def _match(self, dets: list[tuple[np.ndarray, float]], rgb: np.ndarray) -> None:
        boxes = np.stack([b for b, _ in dets])
        matched = set()
        if self._tracks:
            iou = box_iou(np.stack([t.seed if t.seed is not None else t.box for t in self._tracks]), boxes)
            from scipy.optimize import linear_sum_assignment  # 0.2 s to import: only when faces are matched

            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.cfg.match_iou:
                    t = self._tracks[r]
                    t.score, t.detected = dets[c][1], True
                    if t.lost > 0:
                        t.seed = boxes[c]
                    matched.add(c)
        for c in np.argsort([-s for _, s in dets]):
            if c in matched or len(self._tracks) >= self.cfg.max_faces:
                continue
            mesh = self._new_mesh()
            turns = self._orientation(rgb, boxes[c], dets[c][1], 0)
            self.turned_tracks += turns != 0
            self._tracks.append(_Track(self._next_id, mesh, boxes[c], seed=boxes[c], score=dets[c][1], detected=True,
                                       turns=turns, checked=self._frame))
            self._next_id += 1

    def _new_mesh(self):
        """A one-face mesh graph of this tracker's mode (a graph per track: it keeps tracking state)."""
        return self._face_mesh(
            static_image_mode=self.static,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=self.cfg.min_detection_confidence,
            min_tracking_confidence=self.cfg.min_tracking_confidence,
        )

    def _region(self, rgb: np.ndarray, box: np.ndarray, scale: float) -> tuple[np.ndarray, float, float, float]:
        """The square region (``roi_size`` pixels) around ``box`` scaled by ``scale``: (image, x0, y0, side)."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1], 8.0) * scale
        x0, y0 = cx - side / 2, cy - side / 2
        s = self.cfg.roi_size / side
        m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
        roi = cv2.warpAffine(rgb, m, (self.cfg.roi_size, self.cfg.roi_size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
        return roi, x0, y0, side

    def _orientation(self, rgb: np.ndarray, box: np.ndarray, score: float, current: int) -> int:
        """Quarter turns that make the face in ``box`` upright: the turn of its region on which the
        detectors are most confident. The ``current`` turn (whose detection scored ``score`` when 0)
        stays unless another beats it clearly and confidently."""
        roi = self._region(rgb, box, self.cfg.roi_scale_detection)[0]
        short_range = self._detectors[1]  # the face fills the region: the close-up model, 2 ms a call
        scores = [max([float(d.score[0]) for d in short_range.process(np.ascontiguousarray(np.rot90(roi, k))).detections
                       or []], default=0.0) for k in range(4)]
        if current == 0:
            scores[0] = max(scores[0], score)
        best = max((k for k in range(4) if k != current), key=lambda k: scores[k])
        clearly = scores[best] >= max(scores[current] + self.cfg.orientation_margin, self.cfg.orientation_min_score)
        return best if clearly else current

    def _mesh(self, t: _Track, roi: np.ndarray) -> np.ndarray | None:
        """Mesh of the region turned by ``t.turns``, in the unturned region's unit coordinates."""
        p = _first_mesh(t.mesh, np.ascontiguousarray(np.rot90(roi, t.turns)) if t.turns else roi)
        if p is None:
            return None
        for _ in range(t.turns):  # undo one counter-clockwise quarter turn: (u, v) <- (1 - v, u)
            p[:, 0], p[:, 1] = 1.0 - p[:, 1], p[:, 0].copy()
        return p

    def _landmark(self, t: _Track, rgb: np.ndarray) -> np.ndarray | None:
        box, scale = (t.seed, self.cfg.roi_scale_detection) if t.seed is not None else (t.box, self.cfg.roi_scale)
        roi, x0, y0, side = self._region(rgb, box, scale)
        p = self._mesh(t, roi)
        if p is None:
            return None
        roll = _roll_in_region(p, t.turns)
        if abs(roll) > self.cfg.max_roll:  # the face turned: re-turn the region once and fit again
            t.turns = (t.turns + int(round(roll / 90.0))) % 4
            p = self._mesh(t, roi)
            if p is None or abs(_roll_in_region(p, t.turns)) > self.cfg.max_roll:
                self.orientation_rejects += 1
                return None
        p *= side
        p[:, 0] += x0
        p[:, 1] += y0
        return p.astype(np.float32)

    def _remove_duplicates(self, obs: list[FaceObservation]) -> list[FaceObservation]:
        if len(obs) < 2:
            return obs
        iou = box_iou(np.stack([o.box for o in obs]), np.stack([o.box for o in obs]))
        drop = set()
        for i in range(len(obs)):
            for j in range(i + 1, len(obs)):
                if iou[i, j] > self.cfg.duplicate_iou and i not in drop:
                    drop.add(j)  # tracks are kept in creation order: j is the younger
        self._drop([t for t in self._tracks if t.id in {obs[j].track_id for j in drop}])
        return [o for k, o in enumerate(obs) if k not in drop]

    def _drop(self, tracks: list[_Track]) -> None:
        for t in tracks:
            t.mesh.close()
            self._tracks.remove(t)
