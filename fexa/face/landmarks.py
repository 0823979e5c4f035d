"""Landmark layouts (what a detector or file gives) and schemes (named point sets with regions).

A *layout* is the raw point order of a source: mediapipe's 478-point mesh, insightface's 2d106
(and the authors' released 73-point files, i.e. 2d106 points 33-105), or the iBUG/OpenFace 68.
A *scheme* is the point set a representation needs, split into named regions, e.g. the
73-point heatmap set (QAFE-Net) or the 63-point trajectory set in 7 regions x 9 (TraMP-Former).

Every scheme is defined once, in insightface 2d106 indices, because that is how the papers define
it. Each 2d106 point is mapped to a semantically matching point of the other layouts:
mediapipe via the public 2d106 -> iBUG-68 correspondence and the usual iBUG-68 -> mediapipe one,
hand-picked where 2d106 has points iBUG-68 lacks (see docs/landmarks.md and its figure). For the
68-point layout some scheme points are *derived* as the mean of two or more source points.

Sides are the subject's (anatomical) sides: the subject's right eye appears on the image left.
TraMP-Former's "left eye" (image left) is therefore ``right_eye`` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# --- insightface 2d106 -> mediapipe 478 -------------------------------------------------------
# Mouth and most eye/brow/nose points follow 2d106 -> iBUG68 -> mediapipe. The 2d106 eye centres
# (34, 88, as read from the TraMP-Former code) become mediapipe's iris centres.
_MP_FOR_2D106: dict[int, int] = {
    # subject's right eye (image left), 2d106 33-42
    35: 33, 41: 160, 40: 159, 42: 158, 39: 133, 37: 153, 33: 145, 36: 144, 34: 468, 38: 161,
    # subject's right brow, 2d106 43-51 (upper contour 43,48,49,51,50; lower 44,45,47,46)
    43: 70, 48: 63, 49: 105, 51: 66, 50: 107, 44: 55, 45: 65, 47: 52, 46: 53,
    # mouth, 2d106 52-71 (outer contour then inner contour, iBUG 48-67 order)
    52: 61, 64: 40, 63: 37, 71: 0, 67: 267, 68: 270, 61: 291, 58: 321, 59: 314, 53: 17, 56: 84,
    55: 91, 65: 78, 66: 81, 62: 13, 70: 311, 69: 308, 57: 402, 60: 14, 54: 178,
    # nose, 2d106 72-86 (midline 72,73,74,86; sides 75-79 / 81-85; subnasale 80)
    72: 168, 73: 197, 74: 5, 86: 1, 75: 196, 81: 419, 76: 129, 82: 358, 77: 64, 83: 294,
    78: 98, 84: 327, 79: 97, 85: 326, 80: 2,
    # subject's left eye (image right), 2d106 87-96
    89: 263, 95: 387, 94: 386, 96: 385, 93: 362, 91: 380, 87: 374, 90: 373, 88: 473, 92: 388,
    # subject's left brow, 2d106 97-105
    102: 336, 103: 296, 104: 334, 105: 293, 101: 300, 100: 285, 99: 295, 98: 282, 97: 283,
}

# --- insightface 2d106 -> iBUG 68 (OpenFace) ----------------------------------------------------
# Direct where 2d106 and iBUG share the point; otherwise the mean of the iBUG points around it.
_IBUG_FOR_2D106: dict[int, tuple[int, ...]] = {
    35: (36,), 41: (37,), 42: (38,), 39: (39,), 37: (40,), 36: (41,),
    40: (37, 38), 33: (40, 41), 34: (36, 37, 38, 39, 40, 41), 38: (36, 37),
    43: (17,), 48: (18,), 49: (19,), 51: (20,), 50: (21,),
    44: (20, 21), 45: (19, 20), 47: (18, 19), 46: (17, 18),
    52: (48,), 64: (49,), 63: (50,), 71: (51,), 67: (52,), 68: (53,), 61: (54,), 58: (55,),
    59: (56,), 53: (57,), 56: (58,), 55: (59,), 65: (60,), 66: (61,), 62: (62,), 70: (63,),
    69: (64,), 57: (65,), 60: (66,), 54: (67,),
    72: (27,), 73: (28,), 74: (29,), 86: (30,), 78: (31,), 79: (32,), 80: (33,), 85: (34,),
    84: (35,), 75: (27, 31), 81: (27, 35), 76: (28, 31), 82: (28, 35), 77: (29, 31), 83: (29, 35),
    89: (45,), 95: (44,), 96: (43,), 93: (42,), 91: (47,), 90: (46,),
    94: (43, 44), 87: (46, 47), 88: (42, 43, 44, 45, 46, 47), 92: (44, 45),
    102: (22,), 103: (23,), 104: (24,), 105: (25,), 101: (26,),
    100: (22, 23), 99: (23, 24), 98: (24, 25), 97: (25, 26),
}


@dataclass(frozen=True)
class Layout:
    """The raw point order of one landmark source."""

    name: str
    num_points: int
    nose_tip: int
    right_eye_outer: int  # subject's right eye, outer corner (for inter-ocular distance)
    left_eye_outer: int

    def check(self, points: np.ndarray) -> None:
        """Raise if ``points`` [..., N, D] does not have this layout's point count."""
        if points.ndim < 2 or points.shape[-2] != self.num_points:
            raise ValueError(
                f"expected {self.num_points} points for layout {self.name!r}, got array of shape {points.shape}"
            )


LAYOUTS: dict[str, Layout] = {
    "mediapipe478": Layout("mediapipe478", 478, nose_tip=1, right_eye_outer=33, left_eye_outer=263),
    "insightface106": Layout("insightface106", 106, nose_tip=86, right_eye_outer=35, left_eye_outer=89),
    "insightface73": Layout("insightface73", 73, nose_tip=86 - 33, right_eye_outer=35 - 33, left_eye_outer=89 - 33),
    "ibug68": Layout("ibug68", 68, nose_tip=30, right_eye_outer=36, left_eye_outer=45),
}


def _sources_for(layout: str, idx106: int) -> tuple[int, ...]:
    """Source indices (averaged) that realise 2d106 point ``idx106`` in ``layout``."""
    if layout == "insightface106":
        return (idx106,)
    if layout == "insightface73":
        if idx106 < 33:
            raise ValueError(f"2d106 point {idx106} is a contour point, absent from the 73-point layout")
        return (idx106 - 33,)
    if layout == "mediapipe478":
        return (_MP_FOR_2D106[idx106],)
    if layout == "ibug68":
        return _IBUG_FOR_2D106[idx106]
    raise KeyError(f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")


@dataclass(frozen=True)
class Scheme:
    """A named point set split into ordered regions, defined in insightface 2d106 indices."""

    name: str
    regions: tuple[tuple[str, tuple[int, ...]], ...]
    description: str = ""

    @property
    def region_names(self) -> list[str]:
        return [r for r, _ in self.regions]

    @cached_property
    def points_2d106(self) -> tuple[int, ...]:
        return tuple(i for _, pts in self.regions for i in pts)

    @property
    def num_points(self) -> int:
        return len(self.points_2d106)

    @cached_property
    def region_of_point(self) -> np.ndarray:
        """[P] region number of each point, in region order."""
        return np.concatenate([np.full(len(p), k) for k, (_, p) in enumerate(self.regions)])

    def region_slice(self, region: str) -> slice:
        start = 0
        for name, pts in self.regions:
            if name == region:
                return slice(start, start + len(pts))
            start += len(pts)
        raise KeyError(f"scheme {self.name!r} has no region {region!r}; regions: {self.region_names}")

    def source_indices(self, layout: str) -> list[tuple[int, ...]]:
        """Per scheme point, the indices of ``layout`` points whose mean gives it."""
        return [_sources_for(layout, i) for i in self.points_2d106]

    def weights(self, layout: str) -> np.ndarray:
        """[P, N_layout] averaging matrix: ``scheme_points = weights @ layout_points``."""
        lay = LAYOUTS[layout]
        w = np.zeros((self.num_points, lay.num_points), dtype=np.float32)
        for p, src in enumerate(self.source_indices(layout)):
            w[p, list(src)] = 1.0 / len(src)
        return w

    def is_direct(self, layout: str) -> bool:
        """True when every scheme point is an actual point of ``layout`` (no averaging)."""
        return all(len(s) == 1 for s in self.source_indices(layout))

    def select(self, points: np.ndarray, layout: str) -> np.ndarray:
        """Take this scheme's points from ``points`` [..., N_layout, D] -> [..., P, D].

        NaN (missing) source points give NaN scheme points."""
        LAYOUTS[layout].check(points)
        src = self.source_indices(layout)
        if self.is_direct(layout):
            return points[..., [s[0] for s in src], :]
        return np.einsum("pn,...nd->...pd", self.weights(layout), points)


def _scheme_regions_73() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """QAFE-Net's 73 points: 2d106 33-105 in 2d106 order, grouped by facial part."""
    return (
        ("right_eye", tuple(range(33, 43))),
        ("right_brow", tuple(range(43, 52))),
        ("mouth", tuple(range(52, 72))),
        ("nose", tuple(range(72, 87))),
        ("left_eye", tuple(range(87, 97))),
        ("left_brow", tuple(range(97, 106))),
    )


# TraMP-Former's 63 points, 7 regions x 9, in the reference code's group order.
_TRAJ63_REGIONS = (
    ("right_eye", (33, 35, 36, 37, 38, 39, 40, 41, 42)),
    ("right_brow", (43, 44, 45, 46, 47, 48, 49, 50, 51)),
    ("left_eye", (87, 89, 90, 91, 92, 93, 94, 95, 96)),
    ("left_brow", (97, 98, 99, 100, 101, 102, 103, 104, 105)),
    ("nose", (72, 74, 75, 76, 78, 80, 84, 82, 81)),
    ("lower_lip", (52, 54, 60, 57, 61, 58, 59, 56, 55)),
    ("upper_lip", (52, 63, 67, 61, 69, 70, 62, 66, 65)),
)

SCHEMES: dict[str, Scheme] = {
    "heatmap73": Scheme(
        "heatmap73",
        _scheme_regions_73(),
        "QAFE-Net heatmap points: insightface 2d106 points 33-105 (eyes, brows, nose, mouth; no contour).",
    ),
    "traj63": Scheme(
        "traj63",
        _TRAJ63_REGIONS,
        "TraMP-Former trajectory points: 7 regions x 9 (eyes, brows, nose, lower and upper lip; "
        "mouth corners 2d106 52 and 61 belong to both lip groups).",
    ),
}

# Region colours (RGB) shared by every plot and overlay.
REGION_COLORS: dict[str, tuple[int, int, int]] = {
    "right_eye": (0, 170, 255),
    "left_eye": (0, 90, 255),
    "right_brow": (255, 170, 0),
    "left_brow": (255, 100, 0),
    "nose": (0, 200, 90),
    "mouth": (255, 40, 120),
    "lower_lip": (255, 40, 120),
    "upper_lip": (200, 0, 255),
}


def get_scheme(name: str) -> Scheme:
    try:
        return SCHEMES[name]
    except KeyError:
        raise KeyError(f"unknown landmark scheme {name!r}; known: {sorted(SCHEMES)}") from None


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown landmark layout {name!r}; known: {sorted(LAYOUTS)}") from None


def nose_tip(points: np.ndarray, layout: str) -> np.ndarray:
    """[..., N, D] -> [..., D] the nose tip of each frame."""
    lay = get_layout(layout)
    lay.check(points)
    return points[..., lay.nose_tip, :]


def interocular(points: np.ndarray, layout: str) -> np.ndarray:
    """[..., N, D] -> [...] distance between the outer eye corners (2D), the usual face scale."""
    lay = get_layout(layout)
    lay.check(points)
    d = points[..., lay.left_eye_outer, :2] - points[..., lay.right_eye_outer, :2]
    return np.linalg.norm(d, axis=-1)
