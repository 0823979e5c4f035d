"""Blinks, winks and eye closures at the bounds of their definitions (fexa.analysis.measures).

Each bound is tried just inside and just outside, on synthetic eye apertures at a known frame rate
(open eye 0.4, the open level; a frame's closure is 1 - aperture / 0.4), with the exact events
expected. Episode lengths run from the last open frame before to the first after: n closed frames
last (n + 1) / fps s.

Mutants (in fexa/analysis/measures.py; each one makes the test named fail, checked on a copy):
- ``BLINK_DURATION = (0.05, 0.4)`` or ``(0.05, 0.6)``: test_the_longest_blink
- ``BLINK_DURATION = (0.04, 0.5)`` or ``(0.06, 0.5)``: test_the_shortest_blink_and_wink
- ``BLINK_CLOSED = 0.4`` or ``0.6``: test_how_deep_a_closure_must_be
- ``BLINK_REOPENED = 0.24`` or ``0.36``: test_how_far_an_eye_must_reopen
- ``BLINK_BRIDGE = 0.16`` or ``0.24``: test_half_open_stretches_and_gaps_shorter_than_the_bridge
- ``WINK_MAX = 1.2`` or ``1.8``: test_the_longest_wink
- ``WINK_SHUT = 0.6`` or ``0.9``: test_how_shut_a_winking_eye_must_be
- ``MIN_FPS_BLINKS = 8.0`` or ``12.0``: test_the_lowest_frame_rate_for_blinks
- ``MIN_BLINK_TIME = 8.0`` or ``12.0``: test_the_shortest_time_for_a_blink_rate
- closure_signal's open level ``np.nanpercentile(a, 90)`` at 72 or 99: test_the_open_level_is_the_90th_percentile
- detect_eye_events' one-eye blink ``mean[s0:e0].max() > closed`` as ``> reopened``:
  test_how_deep_a_closure_must_be
- detect_eye_events' held wink ``own[~together[s0:e0]].max() >= shut`` as ``>= closed``:
  test_how_shut_a_winking_eye_must_be
- ``_seconds`` without its ``+ 1`` (the length from the first closed frame): test_the_longest_blink
- detect_eye_events' both-eye blink without ``not cut``: test_the_longest_blink
- detect_eye_events' ``(cut and length <= wink_max)`` as ``cut``: test_the_longest_wink
- closure_signal's face-less gap ``(e0 - s0) * dt < bridge`` as ``< 2 * bridge``:
  test_half_open_stretches_and_gaps_shorter_than_the_bridge
- closure_episodes without ``not is_open[gap].any()`` (reopened frames bridged): test_how_far_an_eye_must_reopen

The last two tests caught bugs, since fixed: a length exactly at a bound (0.05 or 0.5 s) read
differently at different frame rates (mutant: ``_seconds`` without its rounding), and a staggered
blink counted once per eye (mutant: the one-eye blink not marking the frames as ``together``).
"""

import numpy as np
import pytest

from fexa.analysis.measures import _blink_flag, detect_blinks, detect_eye_events, rate_limits

OPEN = 0.4  # aperture of an open eye: the open level (90th percentile) of every clip here


def aperture(closure: float) -> float:
    """The aperture of an eye this far closed (1 - aperture / the open level)."""
    return OPEN * (1 - closure)


def open_eyes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Right and left apertures, both eyes open throughout ``n`` frames."""
    return np.full(n, OPEN), np.full(n, OPEN)


def events(right: np.ndarray, left: np.ndarray, fps: float):
    return detect_eye_events(right, left, np.arange(len(right)) / fps)


NONE = {"right": (), "left": ()}


def test_the_longest_blink():
    """Both eyes closed 0.48 s: a blink; 0.52 s: eyes held closed. Cut by the clip's ends, 0.48 s is
    neither (only part of it was seen) and 0.52 s is held closed."""
    fps, n = 50.0, 1000
    right, left = open_eyes(n)
    for start, stop in ((0, 23), (100, 123), (300, 325), (975, 1000)):  # 23 frames: 0.48 s; 25: 0.52 s
        right[start:stop] = left[start:stop] = aperture(0.9)
    ev = events(right, left, fps)
    assert ev.blinks == ((100, 123),) and ev.frames == (100,)
    assert ev.closures == ((300, 325), (975, 1000)) and ev.closure_time == pytest.approx(50 / fps)
    assert ev.winks == NONE and ev.one_sided == NONE
    assert ev.closed_time == pytest.approx({"right": 50 / fps, "left": 50 / fps})
    one = detect_blinks(right, np.arange(n) / fps)  # one signal: the same bound
    assert one.spans == ((100, 123),) and one.closures == ((300, 325), (975, 1000))


@pytest.mark.parametrize("fps, counted", [(38.0, True), (42.0, False)])
def test_the_shortest_blink_and_wink(fps, counted):
    """One closed frame lasts 2 / fps: 52.6 ms at 38 frames/s, a blink (both eyes) or a wink (one
    eye, the other open); 47.6 ms at 42 frames/s, under 50 ms: landmark noise, neither."""
    right, left = open_eyes(400)
    right[100] = left[100] = aperture(0.9)
    right[200] = aperture(0.9)
    ev = events(right, left, fps)
    assert ev.blinks == (((100, 101),) if counted else ())
    assert ev.winks == ({"right": ((200, 201),), "left": ()} if counted else NONE)
    assert ev.closures == () and ev.one_sided == NONE
    assert detect_blinks(left, np.arange(400) / fps).spans == (((100, 101),) if counted else ())


def test_how_deep_a_closure_must_be():
    """An eye is closed above closure 0.5: both eyes at 0.55 blink, at 0.45 they only narrow (a
    squint). One eye closed but not shut (0.72) while the other narrows with it (0.33): a blink
    when the two closures' mean passes 0.5 (0.525), nothing when it does not (0.62: 0.475)."""
    fps = 30.0
    right, left = open_eyes(300)
    right[50:53] = left[50:53] = aperture(0.55)
    right[100:103] = left[100:103] = aperture(0.45)
    right[150:153], left[150:153] = aperture(0.72), aperture(0.33)
    right[200:203], left[200:203] = aperture(0.62), aperture(0.33)
    ev = events(right, left, fps)
    assert ev.blinks == ((50, 53), (150, 153))
    assert ev.winks == NONE and ev.one_sided == NONE and ev.closures == ()
    assert detect_blinks(left, np.arange(300) / fps).spans == ((50, 53),)


def test_how_far_an_eye_must_reopen():
    """An eye has reopened below closure 0.3. Two frames at 0.33 inside a blink do not end it, at
    0.27 they do (two blinks). One eye shut while the other narrows to 0.33: a blink (the other
    read as half open); to 0.27: a wink. A one-second wink needs the other eye's median below 0.3."""
    fps = 50.0
    right, left = open_eyes(1000)
    for start, middle in ((100, 0.33), (200, 0.27)):  # 5 closed, 2 half open, 5 closed frames
        right[start:start + 12] = left[start:start + 12] = aperture(0.9)
        right[start + 5:start + 7] = left[start + 5:start + 7] = aperture(middle)
    right[300:305], left[300:305] = aperture(0.9), aperture(0.33)
    right[400:405], left[400:405] = aperture(0.9), aperture(0.27)
    right[500:550], left[500:550] = aperture(0.9), aperture(0.27)  # 1.02 s
    right[700:750], left[700:750] = aperture(0.9), aperture(0.33)
    ev = events(right, left, fps)
    assert ev.blinks == ((100, 112), (200, 205), (207, 212), (300, 305))
    assert ev.winks == {"right": ((400, 405), (500, 550)), "left": ()}
    assert ev.one_sided == NONE and ev.closures == ()
    assert detect_blinks(right, np.arange(1000) / fps).spans == ((100, 112), (200, 205), (207, 212), (300, 305),
                                                                 (400, 405))


def test_half_open_stretches_and_gaps_shorter_than_the_bridge():
    """Half-open frames (closure 0.4) between two closed stretches: 9 frames (0.18 s) bridge them,
    one 0.6-s closure; 11 frames (0.22 s) do not, two blinks. Frames without a face: a 9-frame gap
    is interpolated (observed), an 11-frame one is not."""
    fps, n = 50.0, 1000
    right, left = open_eyes(n)
    for start, gap in ((100, 9), (300, 11)):
        right[start:start + 20 + gap] = left[start:start + 20 + gap] = aperture(0.9)
        right[start + 10:start + 10 + gap] = left[start + 10:start + 10 + gap] = aperture(0.4)
    ev = events(right, left, fps)
    assert ev.closures == ((100, 129),) and ev.blinks == ((300, 310), (321, 331))
    assert ev.observed == pytest.approx(n / fps)
    one = detect_blinks(right, np.arange(n) / fps)
    assert one.closures == ((100, 129),) and one.spans == ((300, 310), (321, 331))
    right[500:509] = left[500:509] = np.nan
    right[700:711] = left[700:711] = np.nan
    assert events(right, left, fps).observed == pytest.approx((n - 11) / fps)
    assert detect_blinks(right, np.arange(n) / fps).observed == pytest.approx((n - 11) / fps)


def test_the_longest_wink():
    """One eye shut, the other open: 1.48 s is a wink, 1.52 s a one-sided closure. Cut by the
    clip's ends, 1.48 s is neither and 1.52 s is a one-sided closure."""
    fps, n = 50.0, 2000
    right, left = open_eyes(n)
    right[100:173] = aperture(0.9)  # 73 frames: 1.48 s
    right[400:475] = aperture(0.9)  # 75 frames: 1.52 s
    left[:73] = aperture(0.9)
    left[-75:] = aperture(0.9)
    ev = events(right, left, fps)
    assert ev.winks == {"right": ((100, 173),), "left": ()}
    assert ev.one_sided == {"right": ((400, 475),), "left": ((1925, 2000),)}
    assert ev.blinks == () and ev.closures == ()
    assert ev.closed_time == pytest.approx({"right": 148 / fps, "left": 75 / fps})


def test_how_shut_a_winking_eye_must_be():
    """A wink's eye is shut (closure at least 0.75), the other open: at 0.78 a quick (0.12 s) or a
    held (1.02 s) wink and a one-sided closure (2.02 s); at 0.72 the eye only narrows: none."""
    fps = 50.0
    right, left = open_eyes(2000)
    for start, depth in ((100, 0.78), (300, 0.72)):
        right[start:start + 5] = aperture(depth)
        left[start + 100:start + 150] = aperture(depth)
    for start, depth in ((800, 0.78), (1200, 0.72)):
        right[start:start + 100] = aperture(depth)
    ev = events(right, left, fps)
    assert ev.winks == {"right": ((100, 105),), "left": ((200, 250),)}
    assert ev.one_sided == {"right": ((800, 900),), "left": ()}
    assert ev.blinks == () and ev.closures == ()


def test_the_open_level_is_the_90th_percentile():
    """Each eye's open level is its 90th percentile: with 80 % of frames at 0.40, 18 % at 0.44 and
    2 % at 0.60, it is 0.44. A dip to 0.21 (closure 0.52) is a blink, one to 0.23 (0.48) is not."""
    a = np.full(500, 0.40)
    a[2::5] = 0.44
    a[3::50] = 0.60
    a[100:103] = 0.21
    a[300:303] = 0.23
    times = np.arange(500) / 30.0
    assert events(a, a.copy(), 30.0).blinks == ((100, 103),)
    assert detect_blinks(a, times).spans == ((100, 103),)


def test_the_lowest_frame_rate_for_blinks():
    """Blinks need 10 frames/s: at 10.5 they are measured, at 9.5 they are not."""
    assert "blinks" not in rate_limits(np.arange(100) / 10.5)
    assert rate_limits(np.arange(100) / 9.5)["blinks"] == "not measurable at 9.5 frames/s (blinks need >= 10)"


@pytest.mark.parametrize("seconds, flag", [(9.5, "rate from 9.5 s of usable frames (< 10 s)"), (10.5, "")])
def test_the_shortest_time_for_a_blink_rate(seconds, flag):
    """A blink rate from less than 10 s of measured eyes is flagged: two blinks in 9.5 s are, in
    10.5 s they are not."""
    n = int(round(seconds * 30))
    right, left = open_eyes(n)
    right[[50, 150]] = left[[50, 150]] = aperture(0.9)
    ev = events(right, left, 30.0)
    assert ev.count == 2 and ev.observed == pytest.approx(seconds)
    assert _blink_flag(ev) == flag


# -- bugs these tests found (fixed) ----------------------------------------------------------------
def test_a_length_exactly_at_a_bound_is_read_alike_at_every_frame_rate():
    """Both eyes closed exactly 0.05 s (1 frame at 40 frames/s, 2 at 60, 4 at 100, 5 at 120) or
    exactly 0.5 s (14 frames at 30, 24 at 50, 29 at 60, 49 at 100): whichever way the bound is
    meant (inclusive, as the code's <= says), each length must be read the same at every rate.
    Before (no rounding of lengths), 2 frames at 60 and 5 at 120 were no blink while 1 at 40 and 4 at
    100 were, and 24 frames at 50 were eyes held closed while 14 at 30, 29 at 60 and 49 at 100 were
    blinks."""
    for cases in (((40.0, 1), (60.0, 2), (100.0, 4), (120.0, 5)), ((30.0, 14), (50.0, 24), (60.0, 29), (100.0, 49))):
        read = set()
        for fps, frames in cases:
            right, left = open_eyes(600)
            right[100:100 + frames] = left[100:100 + frames] = aperture(0.9)
            ev = events(right, left, fps)
            read.add((len(ev.blinks), len(ev.closures)))
        assert len(read) == 1, cases


def test_a_staggered_blink_is_one_blink():
    """At 60 frames/s the right eye closed in frames 100-104 and the left in 104-108 (each 0.1 s,
    both closed in one frame only: 0.033 s, too short for a blink of both eyes): one blink, with the
    other eye read as closing in part. Before, each eye's episode was a blink: two."""
    right, left = open_eyes(600)
    right[100:105] = aperture(0.9)
    left[104:109] = aperture(0.9)
    ev = events(right, left, 60.0)
    assert ev.count == 1 and ev.winks == NONE
