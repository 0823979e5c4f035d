"""Per-region occlusion: a hand over the mouth or an eye.

MediaPipe's face mesh always fits a whole face: over a hand held to the mouth it draws lips on the
fingers, and every mouth measure then describes the hand. So hands are looked for in the aligned
crops with mediapipe's Hands (its palm and hand models, converted and shipped in fexa, run by torch:
fexa.face.mp_hands; or by mediapipe itself: ``hands_api``), tracked from frame to frame. A hand's
area is its palm polygon plus its finger bones drawn ``FINGER_WIDTH`` x its palm length wide
(landmarks lie on the fingers' mid-lines). A face region (the mouth's outer lip outline, each eye's
lid outline) is occluded in a frame when more than ``COVER`` of its area lies
under a hand; occluded runs shorter than ``MIN_RUN`` s are dropped (the hand model sometimes sees
a hand in a face for a frame or two; a real hand stays longer).

Checked on the shared clips (``tests/test_occlusion.py``): WolfgangLanger_Pexels, a hand over the
mouth in frames 59-226 (hand-labelled), 164-166 of those 168 frames caught and 1-2 frames flagged
outside them (58 as the hand comes up, 227 fingertips at the lip corner), on crops of either face
backend with either hands backend; 15 unoccluded clips (10,982 frames), none flagged.

The hand model costs about 13 ms per frame on a CPU core, so it does not run on every frame. A
probe looks at one frame every ``PROBE_EVERY`` s: mediapipe's lite hand models, each frame on its
own, palm detection above ``PROBE_CONFIDENCE``. Only where it sees a hand does the tracker (the
full models in tracking mode, detection above ``TRACK_CONFIDENCE``, a held hand kept while its
presence is above ``TRACK_PRESENCE``) run, frame by frame, from ``LOOK_BACK`` probe intervals before
that probe until no hand has been tracked for ``PROBE_EVERY`` s. The tracker catches a hand in a
frame where its own detection fires and then holds it (the full models looking at frames on their
own see WolfgangLanger's hand only from frame 139), so it must look at that frame with the empty
state it has when run on every frame. The palm detector scores a hand held against a face near its
threshold and the held hand's presence dips: with mediapipe's defaults (detection 0.7, presence
0.5) WolfgangLanger's hand was caught only on crops where frame 60 happened to score 0.72 (crops
of the mediapipe face backend); on the torch backend's crops, 0.5 px apart, it scored 0.46 and the
hand was missed in every frame. Detection above 0.6 and presence above 0.3 catch it from 58-60 on
both backends' crops, and flag nothing more on the unoccluded clips. A hand comes into the crop from
outside, and the lite probe sees it on its way (WolfgangLanger: in 8 of the 11 frames 58-68), so with
the look-back the tracker starts before that frame: on WolfgangLanger, whichever of the 5 frames the
probes start at, 166 of 168 frames caught and the same 1 outside, as when the tracker runs on every
frame (measured with the earlier thresholds on the mediapipe backend's crops); the models look at 52-56 %
of its frames, at 20 % of cap12's (no hand) and 32 % of franck's (the probe sees hands in his face
now and then; the tracker does not). Crops given as a file are decoded frame by frame and converted
to RGB only where a model looks at them. The analysis keeps the result beside the crops, so it runs
once per input.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pandas as pd
from fexa.progress import tqdm

from fexa.face.detector import BACKENDS, DEFAULT_BACKEND, _mediapipe, native_output_silenced
from fexa.face.tracks import true_runs
from fexa.io.trackfile import TrackData

# mediapipe mesh indices: each region's outline (in order, for its polygon) and the points that
# are no measurement while it is hidden. The eye corners stay: they give the inter-ocular distance
# and the eye line every other measure is normalised by.
_LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
_LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
_EYE_RIGHT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_EYE_LEFT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
_CORNERS = {33, 133, 263, 362}

REGIONS = ("mouth", "eye_right", "eye_left")
OUTLINES = {"mouth": _LIPS_OUTER, "eye_right": _EYE_RIGHT, "eye_left": _EYE_LEFT}
HIDDEN_POINTS = {
    "mouth": _LIPS_OUTER + _LIPS_INNER,
    "eye_right": tuple(i for i in _EYE_RIGHT if i not in _CORNERS) + tuple(range(468, 473)),
    "eye_left": tuple(i for i in _EYE_LEFT if i not in _CORNERS) + tuple(range(473, 478)),
}

COVER = 0.2  # fraction of a region's area under a hand above which it is occluded
MIN_RUN = 0.1  # s: shorter occluded runs are dropped
FINGER_WIDTH = 0.35  # finger width / palm length (wrist to middle-finger knuckle)
PROBE_EVERY = 0.2  # s between probes while no hand is tracked
PROBE_CONFIDENCE = 0.5  # the probe's palm-detection threshold: it only wakes the tracker
TRACK_CONFIDENCE = 0.6  # the tracker's palm-detection threshold (mediapipe's default 0.7 misses hands: docstring)
TRACK_PRESENCE = 0.3  # the tracker's hand-presence threshold: a held hand scoring below it is let go
PROBE_COMPLEXITY = 0  # the probe's mediapipe models: lite (the tracker's: full)
LOOK_BACK = 3  # probe intervals the tracker goes back from a probe that sees a hand
_PALM = (0, 1, 5, 9, 13, 17)
_FINGERS = ((0, 1, 2, 3, 4), (0, 5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (0, 17, 18, 19, 20), (5, 9, 13, 17))


@dataclass(frozen=True)
class Occlusion:
    """Which face regions a hand hides, per frame."""

    occluded: np.ndarray  # [T, len(REGIONS)] bool
    cover: np.ndarray  # [T, len(REGIONS)] fraction of each region's area under a hand (0 where no hand)

    def table(self) -> pd.DataFrame:
        """Per-frame columns ``occluded_<region>``."""
        return pd.DataFrame({f"occluded_{r}": self.occluded[:, k] for k, r in enumerate(REGIONS)})

    def frames_of(self, region: str) -> int:
        return int(self.occluded[:, REGIONS.index(region)].sum())


Crops = str | Path | Iterable[np.ndarray] | Iterable[Callable[[], np.ndarray]]


def crop_frames(path: str | Path) -> Iterator[Callable[[], np.ndarray]]:
    """Each frame of a crops file (fexa's own H.264) as a function giving its RGB pixels: decoded
    in order, converted to RGB only when called (the conversion costs more than the decoding,
    and most crops are never looked at)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield partial(frame.to_ndarray, format="rgb24")


def _crop_getters(crops: Crops) -> Iterator[Callable[[], np.ndarray]]:
    """``crops`` (a crops file, its RGB frames or functions giving them) as functions."""
    if isinstance(crops, (str, Path)):
        yield from crop_frames(crops)
        return
    for rgb in crops:
        yield rgb if callable(rgb) else partial(np.asarray, rgb)


def _landmarks(model, rgb: np.ndarray) -> list[np.ndarray]:
    """The [21, 2] landmarks (pixels) of each hand ``model`` finds in ``rgb``."""
    result = model.process(np.ascontiguousarray(rgb))
    size = np.array([rgb.shape[1], rgb.shape[0]], np.float32)
    return [np.array([[p.x, p.y] for p in h.landmark], np.float32) * size for h in result.multi_hand_landmarks or ()]


class _Once:
    """A crop's RGB pixels, converted on the first call (from either thread) and kept."""

    def __init__(self, get: Callable[[], np.ndarray]):
        self._get, self._rgb, self._lock = get, None, threading.Lock()

    def __call__(self) -> np.ndarray:
        with self._lock:
            if self._rgb is None:
                self._rgb = self._get()
            return self._rgb


def probe_frames(usable: np.ndarray, step: int) -> np.ndarray:
    """[T] bool: the frames the probe looks at: the first usable frame of every ``step`` frames."""
    usable = np.asarray(usable, bool)
    out = np.zeros(len(usable), bool)
    for start in range(0, len(usable), step):
        seen = np.flatnonzero(usable[start:start + step])
        if len(seen):
            out[start + seen[0]] = True
    return out


def hands_api(backend: str = DEFAULT_BACKEND) -> ModuleType:
    """The module whose ``Hands`` finds hands for ``backend``: ``"mediapipe"``, mediapipe 0.10.21's
    solution; ``"torch"``, its port that runs the same models in torch (``fexa.face.mp_hands``,
    no mediapipe needed). Both take the same arguments and give the same result fields."""
    if backend == "mediapipe":
        return _mediapipe().solutions.hands
    if backend == "torch":
        from fexa.face import mp_hands

        return mp_hands
    raise ValueError(f"backend: expected one of {BACKENDS}; got {backend!r}")


def find_hands(crops: Crops, usable: np.ndarray, times: np.ndarray, progress: bool = False,
               backend: str = DEFAULT_BACKEND) -> list[list[np.ndarray]]:
    """Per frame, the [21, 2] landmarks (pixels) of each hand (at most two) in ``crops`` (a crops
    file, its RGB frames, or functions giving them: ``crop_frames``), tracked only around the
    frames where a probe sees a hand (module docstring); ``usable``: the frames that show the face
    (only they are probed, ``probe_frames``); ``times`` (s). The probe runs in a second thread
    ahead of the tracker (both backends release the GIL: the two models share the CPU's cores);
    ``backend``: whose Hands runs the models (``hands_api``)."""
    step = max(1, round(PROBE_EVERY / float(np.median(np.diff(times))))) if len(times) > 1 else 1
    reach = LOOK_BACK * step  # a probe that sees a hand wakes the tracker this many frames before it
    ahead = reach + 8 * step  # frames the probe may run ahead of the tracker
    probed = probe_frames(usable, step)
    api = hands_api(backend)
    found: list[list[np.ndarray]] = []
    pending: deque[tuple[int, _Once]] = deque()  # frames read, not yet settled
    probes: dict[int, Future] = {}  # frame -> will the probe see a hand there
    checked = -1  # the probes up to this frame are known
    track_until = wake_until = 0  # the tracker runs on frames before either: holding a hand, or woken by a probe

    with native_output_silenced(), ThreadPoolExecutor(max_workers=1) as pool, \
            api.Hands(static_image_mode=True, max_num_hands=1, model_complexity=PROBE_COMPLEXITY,
                      min_detection_confidence=PROBE_CONFIDENCE) as probe, \
            api.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1,
                      min_detection_confidence=TRACK_CONFIDENCE, min_tracking_confidence=TRACK_PRESENCE) as tracker:

        def settle() -> None:
            """The oldest pending frame, once the probes up to ``reach`` after it are known."""
            nonlocal checked, track_until, wake_until
            j, crop = pending.popleft()
            while checked < j + reach:
                checked += 1
                seen = probes.pop(checked, None)
                if seen is not None and seen.result():
                    wake_until = max(wake_until, checked + 1)  # from here (within reach) to that probe
            hands = _landmarks(tracker, crop()) if j < max(track_until, wake_until) else []
            if hands:
                track_until = j + 1 + step
            found.append(hands)

        for t, get in enumerate(tqdm(_crop_getters(crops), total=len(usable), desc="hands over the face",
                                     unit="frame", leave=False, disable=not progress)):
            crop = _Once(get)
            if t < len(probed) and probed[t]:
                probes[t] = pool.submit(lambda c=crop: bool(_landmarks(probe, c())))
            pending.append((t, crop))
            while pending[0][0] <= t - ahead:
                settle()
        while pending:
            settle()
    return found


def hand_mask(hand: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """[H, W] bool: the area a hand's 21 landmarks cover (palm polygon and finger bones)."""
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(hand[list(_PALM)]).astype(np.int32)], 1)
    width = max(1, int(round(FINGER_WIDTH * float(np.linalg.norm(hand[9] - hand[0])))))
    cv2.polylines(mask, [np.round(hand[list(f)]).astype(np.int32) for f in _FINGERS], False, 1, width)
    return mask.astype(bool)


def _region_mask(outline: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    return mask.astype(bool)


def _drop_short_runs(mask: np.ndarray, times: np.ndarray, min_run: float) -> np.ndarray:
    """``mask`` without runs of True lasting under ``min_run`` s (a run lasts from its first frame
    to the frame after its last)."""
    out = mask.copy()
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    for s0, e0 in true_runs(mask):
        end = times[e0] if e0 < len(times) else times[-1] + step
        if end - times[s0] < min_run:
            out[s0:e0] = False
    return out


def detect_occlusion(crops: Crops, track: TrackData, hands: list[list[np.ndarray]] | None = None,
                     progress: bool = False, backend: str = DEFAULT_BACKEND) -> Occlusion:
    """The occlusion of each region (``REGIONS``) in every frame of ``track`` from its aligned
    ``crops`` (as ``find_hands`` takes them; ``hands``: already found, else found in them by
    ``backend``'s Hands, ``hands_api``)."""
    if hands is None:
        hands = find_hands(crops, track.usable, track.times, progress, backend)
    t_count = track.num_frames
    if len(hands) != t_count:
        raise ValueError(f"hands were looked for in {len(hands)} crops, the track has {t_count} frames")
    shape = (track.crop_size, track.crop_size)
    cover = np.zeros((t_count, len(REGIONS)), np.float32)
    for t, found in enumerate(hands):
        if not found or not track.usable[t]:
            continue
        under = np.logical_or.reduce([hand_mask(h, shape) for h in found])
        for k, region in enumerate(REGIONS):
            area = _region_mask(track.points_crop[t, list(OUTLINES[region])], shape)
            cover[t, k] = (area & under).sum() / max(int(area.sum()), 1)
    occluded = np.stack([_drop_short_runs(cover[:, k] > COVER, track.times, MIN_RUN) for k in range(len(REGIONS))],
                        axis=1)
    return Occlusion(occluded, cover)


def mask_occluded(track: TrackData, occlusion: Occlusion) -> TrackData:
    """A copy of ``track`` whose hidden regions' points are NaN in the frames they are occluded
    (what a hand hides is no measurement); every signal and measure built on them follows. The
    track itself when nothing is hidden."""
    if not occlusion.occluded.any():
        return track
    points, crop = track.points.copy(), track.points_crop.copy()
    for k, region in enumerate(REGIONS):
        rows = np.flatnonzero(occlusion.occluded[:, k])
        cols = list(HIDDEN_POINTS[region])
        points[np.ix_(rows, cols)] = np.nan
        crop[np.ix_(rows, cols)] = np.nan
    return replace(track, points=points, points_crop=crop)
