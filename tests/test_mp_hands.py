"""fexa.face.mp_hands: mediapipe's Hands solution around the torch palm and hand-landmark models.
The steps are checked by hand (anchors, letterbox, ROIs, association), the whole against
mediapipe 0.10.21 (skipped without it) and against hand labels on a real clip."""

import numpy as np
import pytest

from conftest import extracted
from fexa.face.mp_hands import (PALM_FULL, PALM_LITE, Detections, Hands, associate, landmark_rois, letterbox_padding,
                                palm_rois, remove_letterbox)
from fexa.face.mp_pipeline import ssd_anchors

# Hand labels, made on the aligned crops (256 x 256) of WolfgangLanger_Pexels (472 frames; frames
# 0-56, 232-471 looked at every 8th and 55-57, 226-236 one by one): a hand comes into the crop
# from below in frame 57, lies over the mouth and nose until 226, and leaves at 231 (a sliver at
# the bottom-left corner); no hand in any other frame.
WL = "pyfeat_test_media/WolfgangLanger_Pexels.mp4"
HAND_IN_VIEW = (57, 232)


def _frames(shared_cache, backend: str | None = None) -> list[np.ndarray]:
    """The RGB aligned crops of WolfgangLanger_Pexels (extracted by the face ``backend``; default: the default's).
    The comparisons with mediapipe's Hands use the mediapipe face backend's crops, on which they were
    measured: on other crops, 0.5 px apart, mediapipe's Hands catch the hand at other frames (the palm
    detector scores it near its threshold: fexa.face.occlusion)."""
    from fexa.face.occlusion import crop_frames

    entry = extracted(shared_cache, WL, backend=backend)["WolfgangLanger_Pexels"]
    return [get() for get in crop_frames(entry / "crops.mp4")]


# ----------------------------------------------------------------------------- steps by hand

def test_palm_anchors_by_hand():
    """SsdAnchors of palm_detection_cpu.pbtxt: strides 8, 16, 16, 16 on 192 px give a 24 x 24 map
    with 2 anchors a cell (1 aspect ratio + 1 interpolated) and a 12 x 12 map with 3 x 2, 1152 +
    864 = 2016, all of size 1 (fixed_anchor_size), cells row by row."""
    a = ssd_anchors(PALM_FULL)
    assert a.shape == (2016, 4) and np.array_equal(ssd_anchors(PALM_LITE), a)
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24, 1, 1]) and np.allclose(a[1], a[0])
    assert np.allclose(a[2], [1.5 / 24, 0.5 / 24, 1, 1]) and np.allclose(a[48], [0.5 / 24, 1.5 / 24, 1, 1])
    assert np.allclose(a[1151], [23.5 / 24, 23.5 / 24, 1, 1])
    assert np.allclose(a[1152:1158], [0.5 / 12, 0.5 / 12, 1, 1]) and np.allclose(a[1158], [1.5 / 12, 0.5 / 12, 1, 1])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12, 1, 1]) and (a[:, 2:] == 1).all()


def test_letterbox_padding_and_its_removal_by_hand():
    """A 200 x 100 px ROI in a square tensor: a quarter of the tensor's height padded above and
    below; a 100 x 200 one: a quarter of its width left and right; removal maps the padded band's
    edges to 0 and 1 and scales z as x."""
    pad = letterbox_padding(np.array([[100, 50, 200, 100, 0], [50, 100, 100, 200, 0.3]], np.float32), (224, 224))
    assert np.allclose(pad, [[0, 0.25, 0, 0.25], [0.25, 0, 0.25, 0]])
    pts = np.array([[[0.5, 0.25, 0.1], [0.2, 0.75, -0.2]]], np.float32)
    assert np.allclose(remove_letterbox(pts, pad[:1]), [[[0.5, 0.0, 0.1], [0.2, 1.0, -0.2]]])
    assert np.allclose(remove_letterbox(pts, pad[1:]), [[[0.5, 0.25, 0.2], [-0.1, 0.75, -0.4]]])


def _palm(box, kp0, kp2) -> Detections:
    kp = np.zeros((1, 7, 2), np.float32)
    kp[0, 0], kp[0, 2] = kp0, kp2
    return Detections(np.array([0.9], np.float32), np.array([box], np.float32), kp)


def test_palm_roi_by_hand():
    """PalmDetectionDetectionToRoi: a palm box 0.2 wide at the centre of a 100 x 100 image, wrist
    (keypoint 0) below the middle knuckle (keypoint 2): no rotation, centre moved up by half the
    box (0.1), side 0.2 x 2.6; the hand pointing right: rotation pi/2 and the centre moved right;
    in a 200 x 100 image a box 20 x 20 px (0.1 x 0.2) stays square in pixels."""
    up = palm_rois(_palm([0.4, 0.4, 0.2, 0.2], [0.5, 0.6], [0.5, 0.4]), (100, 100))
    assert np.allclose(up, [[0.5, 0.4, 0.52, 0.52, 0.0]], atol=1e-6)
    right = palm_rois(_palm([0.4, 0.4, 0.2, 0.2], [0.4, 0.5], [0.6, 0.5]), (100, 100))
    assert np.allclose(right, [[0.6, 0.5, 0.52, 0.52, np.pi / 2]], atol=1e-6)
    wide = palm_rois(_palm([0.45, 0.4, 0.1, 0.2], [0.45, 0.5], [0.55, 0.5]), (200, 100))
    assert np.allclose(wide, [[0.55, 0.5, 0.26, 0.52, np.pi / 2]], atol=1e-6)  # 10 px right: half of 20 px
    down = palm_rois(_palm([0.4, 0.4, 0.2, 0.2], [0.5, 0.4], [0.5, 0.6]), (100, 100))
    assert np.allclose(down[0, :4], [0.5, 0.6, 0.52, 0.52], atol=1e-6) and np.isclose(abs(down[0, 4]), np.pi)


def _upright_hand() -> np.ndarray:
    """21 landmarks [21, 3] of a hand pointing up: wrist at (0.5, 0.8); each finger's four
    landmarks (knuckle, PIP, DIP, tip) on y = 0.55, 0.45, 0.4, 0.35, the fingers at x = 0.35
    (thumb), 0.45, 0.5, 0.55, 0.6."""
    lm = np.zeros((21, 3), np.float32)
    lm[0] = (0.5, 0.8, 0)
    for finger, x in enumerate((0.35, 0.45, 0.5, 0.55, 0.6)):  # thumb, index, middle, ring, pinky
        for joint, y in enumerate((0.55, 0.45, 0.4, 0.35)):
            lm[1 + 4 * finger + joint] = (x, y, 0)
    return lm


def test_landmark_roi_by_hand():
    """HandLandmarkLandmarksToRoi: the upright hand's ROI comes from the bounds of the wrist,
    knuckles and PIP joints (and the thumb's IP joint) only: x 0.35-0.6, y 0.4-0.8 (the fingertips
    at y = 0.35 are left out), no rotation, centre moved up by 0.1 x its height,
    square on its long side (0.4) x 2; turned a quarter about the image centre, the same rect
    turned (rotation -pi/2 for a hand pointing left)."""
    lm = _upright_hand()
    roi = landmark_rois(lm[None], (100, 100))
    assert np.allclose(roi, [[0.475, 0.6 - 0.04, 0.8, 0.8, 0.0]], atol=1e-6)
    left = lm.copy()
    left[:, 0], left[:, 1] = lm[:, 1], 1.0 - lm[:, 0]  # (x, y) -> (y, 1 - x): pointing left
    turned = landmark_rois(left[None], (100, 100))
    assert np.allclose(turned, [[0.6 - 0.04, 1 - 0.475, 0.8, 0.8, -np.pi / 2]], atol=1e-6)


def test_association_by_hand():
    """AssociationNormRect: rects appended in order (palm ROIs, then tracked ones), each removing
    the kept rects it overlaps by IoU > 0.5; rects overlapping less are both kept."""
    a = [0.3, 0.3, 0.2, 0.2, 0.0]
    b = [0.7, 0.7, 0.2, 0.2, 0.0]
    a_shifted = [0.32, 0.3, 0.2, 0.2, 1.0]  # IoU with a: 0.18 / 0.22 = 0.82
    a_far = [0.42, 0.3, 0.2, 0.2, 0.0]  # IoU with a: 0.08 / 0.32 = 0.25
    assert np.allclose(associate(np.array([a, b]), np.array([a_shifted])), [b, a_shifted])
    assert np.allclose(associate(np.array([a, b]), np.array([a_far])), [a, b, a_far])
    assert np.allclose(associate(np.zeros((0, 5)), np.array([a, a_shifted])), [a_shifted])
    assert associate(np.zeros((0, 5)), np.zeros((0, 5))).shape == (0, 5)


@pytest.mark.parametrize("kwargs, message", [
    ({"model_complexity": 2}, "model_complexity"), ({"max_num_hands": 0}, "max_num_hands"),
    ({"min_detection_confidence": 1.5}, "min_detection_confidence"),
    ({"min_tracking_confidence": -0.1}, "min_tracking_confidence")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Hands(**kwargs)


def test_bad_image_is_named():
    with pytest.raises(ValueError, match="image: expected an RGB uint8"):
        Hands().process(np.zeros((8, 8, 3), np.float32))


def test_tracker_holds_the_hand_where_the_labels_say(shared_cache):
    """No mediapipe needed: occlusion's tracker (full models, tracking, up to two hands, its detection and
    presence thresholds) on frames 0-299 of the default backend's crops holds a hand in frames 58-230
    (measured; with a second, weak one over the first in 152-223) and none outside the labelled frames
    57-231."""
    from fexa.face.occlusion import TRACK_CONFIDENCE, TRACK_PRESENCE

    frames = _frames(shared_cache)[:300]
    tracker = Hands(max_num_hands=2, model_complexity=1, min_detection_confidence=TRACK_CONFIDENCE,
                    min_tracking_confidence=TRACK_PRESENCE)
    counts = np.array([len(tracker.process(f).multi_hand_landmarks or ()) for f in frames])
    inside = np.zeros(len(frames), bool)
    inside[slice(*HAND_IN_VIEW)] = True
    assert not counts[~inside].any(), np.flatnonzero(counts[~inside])
    assert (counts[60:227] >= 1).mean() >= 0.95, np.flatnonzero(counts[60:227] == 0) + 60


# ----------------------------------------------------------------------------- against mediapipe

def _landmarks(result, size: tuple[int, int]) -> list[np.ndarray]:
    """[21, 2] pixels of each hand of a Hands result (mediapipe's or ours)."""
    return [np.array([[p.x, p.y] for p in h.landmark], np.float64) * size for h in result.multi_hand_landmarks or ()]


def _handedness(result) -> list[tuple[str, float]]:
    return [(h.classification[0].label, h.classification[0].score) for h in result.multi_handedness or ()]


def _rects(rects) -> np.ndarray:
    return np.array([[r.x_center, r.y_center, r.width, r.height, r.rotation] for r in rects or ()],
                    np.float32).reshape(-1, 5)


_RUNS: dict[tuple, list] = {}  # mediapipe's runs, shared by the tests (all on the same clip)


def _reference(frames: list[np.ndarray], span: tuple[int, ...], static: bool, complexity: int,
               max_num_hands: int = 2) -> list:
    """mediapipe's Hands graph on ``frames[t]`` for t in ``span`` (in order): per frame its result
    and the ROIs it got from the landmarks (the graph's HAND_ROIS_FROM_LANDMARKS output)."""
    key = (span, static, complexity, max_num_hands)
    if key not in _RUNS:
        solution_base = pytest.importorskip("mediapipe.python.solution_base")
        graph = solution_base.SolutionBase(
            binary_graph_path="mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb",
            side_inputs={"model_complexity": complexity, "num_hands": max_num_hands, "use_prev_landmarks": not static},
            calculator_params={"palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": 0.5,
                               "handlandmarkcpu__ThresholdingCalculator.threshold": 0.5},
            outputs=["multi_hand_landmarks", "multi_handedness", "hand_rects_from_landmarks"])
        with graph:
            _RUNS[key] = [graph.process({"image": frames[t]}) for t in span]
    return _RUNS[key]


def _compare(ours, theirs, size) -> tuple[int, float, float]:
    """(count difference, mean landmark distance (px), largest handedness score difference, inf
    where a label differs) of one frame, the hands taken in order."""
    a, b = _landmarks(ours, size), _landmarks(theirs, size)
    if len(a) != len(b):
        return 1, np.nan, np.nan
    dist = max((float(np.linalg.norm(x - y, axis=1).mean()) for x, y in zip(a, b)), default=0.0)
    hand = [abs(x[1] - y[1]) if x[0] == y[0] else np.inf for x, y in zip(_handedness(ours), _handedness(theirs))]
    return 0, dist, max(hand, default=0.0)


# handedness scores: TFLite's and torch's float sums differ; measured at most 9.6e-4 on the OpenCV 4.11
# crops (frames 0-471), 1.55e-3 on the OpenCV 5.1 crops (one of STATIC_FRAMES), 1.84e-3 on the 4.11 crops
# on an AMD EPYC CPU (frames 0-471)
HANDEDNESS_TOL = 2e-3
# landmarks in static mode (the palm detector's box, not the previous frame's hand, places the crop):
# measured at most 0.040 px on frames 0-471, 0.069 px on an AMD EPYC CPU (frame 143, the full models)
STATIC_TOL = 0.1

# every 5th frame of 40-315 (before, during and after the hand) and frames where mediapipe's models
# were seen to find a hand on their own
STATIC_FRAMES = tuple(sorted({*range(40, 320, 5), 58, 139, 200, 232, 300}))


@pytest.mark.parametrize("complexity", [0, 1])
def test_static_mode_equals_mediapipe(shared_cache, complexity):
    """static_image_mode on frames with and without a hand: the same hands as mediapipe, landmarks
    within STATIC_TOL, handedness score within HANDEDNESS_TOL.
    On their own, mediapipe's models find the hand near their score threshold, so on which frames
    depends on the crops' last bit (OpenCV's version): on the OpenCV 4.11 crops its full models
    saw it in 60, 139, 160 and 200 of (40, 58, 60, 100, 139, 160, 200, 232, 300), its lite ones
    in 58, 100, 200 and (not a hand: the face) 232; on the OpenCV 5.1 crops, in 4 and 1 of those
    frames, and in 17 and 5 of these (full: 60, 139, 145-220 every 5th; lite: 65, 100, 110, 115, 190)."""
    pytest.importorskip("mediapipe")
    frames = _frames(shared_cache, "mediapipe")
    size = frames[0].shape[1::-1]
    ref = _reference(frames, STATIC_FRAMES, True, complexity)
    ours = Hands(static_image_mode=True, model_complexity=complexity)
    rows = [_compare(ours.process(frames[t]), r, size) for t, r in zip(STATIC_FRAMES, ref)]
    counts, dist, hand = np.array(rows).T
    assert counts.sum() == 0 and dist.max() < STATIC_TOL and hand.max() < HANDEDNESS_TOL, rows
    assert sum(len(r.multi_hand_landmarks or ()) for r in ref) >= 3  # hands were compared


def _teacher_forced(frames, span, complexity, max_num_hands):
    """Per frame of ``span``: our Hands, started from the ROIs mediapipe's own landmarks gave the
    frame before, against mediapipe's result: (count difference, landmark distance, handedness
    difference, largest difference of the next ROIs)."""
    ref = _reference(frames, span, False, complexity, max_num_hands)
    ours = Hands(max_num_hands=max_num_hands, model_complexity=complexity)
    size = frames[0].shape[1::-1]
    rows, prev = [], np.zeros((0, 5), np.float32)
    for t, r in zip(span, ref):
        ours.tracked = prev
        counts, dist, hand = _compare(ours.process(frames[t]), r, size)
        prev = _rects(r.hand_rects_from_landmarks)
        roi = float(np.abs(ours.tracked - prev).max(initial=0.0)) if ours.tracked.shape == prev.shape else np.inf
        rows.append((counts, dist, hand, roi))
    return np.array(rows), ref


@pytest.mark.parametrize("complexity, max_num_hands", [(1, 1), (0, 2)])
def test_tracking_steps_equal_mediapipe(shared_cache, complexity, max_num_hands):
    """Tracking mode one frame at a time: started from the ROIs mediapipe's landmarks gave the
    previous frame, each frame gives mediapipe's hands (landmarks within 0.05 px, handedness
    within HANDEDNESS_TOL) and the next frame's ROIs within 5e-4 (0.13 px; measured: 4e-5, and 2.1e-4
    on an AMD EPYC CPU; the whole clip's worst 3.7e-4, test_whole_clip_equals_mediapipe), as the hand
    comes in (55-70, palm detection then tracking; with one hand allowed, detection skipped while
    it is held) and leaves (222-237, the presence threshold drops it). mediapipe itself holds the
    hand in 60-229 (full) and in 58, 63-227, 231, 234 (lite; 234: the face)."""
    pytest.importorskip("mediapipe")
    frames = _frames(shared_cache, "mediapipe")
    span = (*range(55, 71), *range(222, 238))
    rows, ref = _teacher_forced(frames, span, complexity, max_num_hands)
    counts, dist, hand, roi = rows.T
    assert counts.sum() == 0, [t for t, c in zip(span, counts) if c]
    assert np.nanmax(dist) < 0.05 and np.nanmax(hand) < HANDEDNESS_TOL and roi.max() < 5e-4, rows
    held = [bool(r.multi_hand_landmarks) for r in ref]
    assert held[span.index(66)] and not held[-1] and sum(held) >= 10, held  # a hand came, was held and lost


@pytest.mark.slow
@pytest.mark.parametrize("complexity", [0, 1])
def test_whole_clip_equals_mediapipe(shared_cache, complexity):
    """As the two tests above, on every frame 0-471: static mode and tracking one frame at a time.
    Measured (lite / full): static mode 24 / 80 hands, landmarks within 0.013 / 0.040 px,
    handedness within 2.8e-4 / 9.6e-4; one step at a time 178 / 176 hands, landmarks within
    0.013 / 0.003 px, handedness within 1.9e-4 / 5.0e-4, next ROIs within 3.7e-4 / 1.1e-4 (the
    lite model's worst on frame 297, a "hand" it sees in the face); no count difference. On an AMD EPYC
    CPU (OpenCV 4.11 crops, full models): static mode 77 hands, landmarks within 0.069 px (frame 143),
    handedness within 1.84e-3; one step at a time within 0.006 px, ROIs within 1.8e-4."""
    pytest.importorskip("mediapipe")
    frames = _frames(shared_cache, "mediapipe")
    everything = tuple(range(len(frames)))
    size = frames[0].shape[1::-1]
    ours = Hands(static_image_mode=True, model_complexity=complexity)
    rows = np.array([_compare(ours.process(frames[t]), r, size)
                     for t, r in zip(everything, _reference(frames, everything, True, complexity))])
    assert rows[:, 0].sum() == 0 and np.nanmax(rows[:, 1]) < STATIC_TOL and np.nanmax(rows[:, 2]) < HANDEDNESS_TOL
    rows, _ = _teacher_forced(frames, everything, complexity, 2)
    assert rows[:, 0].sum() == 0 and np.nanmax(rows[:, 1]) < 0.05 and np.nanmax(rows[:, 2]) < HANDEDNESS_TOL
    assert rows[:, 3].max() < 1e-3


@pytest.mark.slow
def test_tracking_on_its_own_follows_mediapipe_and_the_hand_labels(shared_cache):
    """Tracking left to itself (the full models, as occlusion's tracker runs them): every step
    equals mediapipe's (above), but the loop feeds each frame's landmarks into the next frame's
    crop, so the models' float differences (1e-4 px) grow to the models' own jitter over a few
    frames; both still see the hand where it is (hand labels) and agree on most frames. Measured
    (frames 0-471): count differences in 5 frames (161-165, ours holds a second, spurious hand),
    landmark distance median 1.2 px, 95th percentile 2.8 px, largest 4.1 px, above 0.3 px from
    frame 63 on (the hand is found in 60). The lite models drift further (measured: median 1.4 px,
    largest 45 px, 6 count differences)."""
    pytest.importorskip("mediapipe")
    frames = _frames(shared_cache, "mediapipe")
    size = frames[0].shape[1::-1]
    everything = tuple(range(len(frames)))
    ref = _reference(frames, everything, False, 1)
    tracker = Hands(model_complexity=1)
    ours = [tracker.process(f) for f in frames]
    rows = np.array([_compare(o, r, size) for o, r in zip(ours, ref)])
    assert rows[:, 0].sum() <= 10 and np.nanmedian(rows[:, 1]) < 2.0, rows[:, 0].nonzero()
    held = np.flatnonzero([bool(o.multi_hand_landmarks) for o in ours])
    assert held.min() >= HAND_IN_VIEW[0] and held.max() < HAND_IN_VIEW[1] and len(held) >= 160, held
