"""The measures in plain language, for reports a clinician reads without the docs: per measure a
name, what a higher value means, and its unit in words (``describe``). The formulas stay in
``fexa.analysis.measures.MEASURES``."""

from __future__ import annotations

from dataclasses import dataclass

from fexa.analysis.measures import MEASURES, STATIC_MEASURES

PARTS = {"right_brow": "right eyebrow", "left_brow": "left eyebrow", "right_eye": "right eye", "left_eye": "left eye",
         "nose": "nose", "upper_lip": "upper lip", "lower_lip": "lower lip", "mouth_corner_right": "right mouth corner",
         "mouth_corner_left": "left mouth corner"}

UNITS = {"IOD": "eye distances (IOD)", "IOD/s": "eye distances per second", "s": "seconds",
         "index": "0 = both sides equal, 1 = one side only", "blinks": "blinks", "1/min": "per minute",
         "episodes": "episodes", "winks": "winks", "fraction": "0 = open, 1 = fully shut", "count": "repetitions",
         "signal units": "of the task's signal (eye distances; eye opening for eye tasks)",
         "CV": "standard deviation / mean", "fraction/repetition": "share of the mean per repetition",
         "ratio": "lid gap / eye width", "degrees": "degrees"}

_FIXED = {
    "symmetry_mouth_corners": ("Left-right difference in mouth-corner movement", "more one-sided"),
    "symmetry_brows": ("Left-right difference in eyebrow movement", "more one-sided"),
    "symmetry_eye_aperture": ("Left-right difference in eye opening", "more one-sided"),
    "blink_count": ("Blinks (both eyes)", "more blinks"),
    "blink_rate": ("Blink rate", "blinks more often (adults at rest: about 10-20 per minute)"),
    "wink_count_right": ("Winks of the right eye (the left stays open)", "more winks"),
    "wink_count_left": ("Winks of the left eye (the right stays open)", "more winks"),
    "one_sided_closures_right": ("Right eye held shut alone (over 1.5 s)", "more often"),
    "one_sided_closures_left": ("Left eye held shut alone (over 1.5 s)", "more often"),
    "eye_closures": ("Both eyes held closed (over half a second)", "more often"),
    "eye_closure_time": ("Time with both eyes held closed", "longer"),
    "eye_closure_time_right": ("Time the right eye was closed, blinks aside", "longer"),
    "eye_closure_time_left": ("Time the left eye was closed, blinks aside", "longer"),
    "eye_closure_depth": ("How fully the eyes close", "closes more fully"),
    "mouth_width_rom": ("Range of mouth width", "widens or narrows more"),
    "mouth_opening_rom": ("Range of mouth opening", "opens more"),
    "lip_protrusion_rom": ("Range of pushing the lips forward", "pushes further"),
    "repetitions": ("Repetitions of the task movement", "more repetitions"),
    "repetition_amplitude": ("Average size of one repetition", "larger movements"),
    "repetition_variability": ("Variation between repetitions", "less regular"),
    "amplitude_trend": ("Change of size over the repetitions", "growing; below 0 the movements shrink (fatigue)"),
    # a still image
    "eye_aperture_right": ("Eye opening: right eye", "more open"),
    "eye_aperture_left": ("Eye opening: left eye", "more open"),
    "brow_height_right": ("Eyebrow height: right", "higher brow"),
    "brow_height_left": ("Eyebrow height: left", "higher brow"),
    "mouth_width": ("Mouth width", "wider"),
    "mouth_opening": ("Mouth opening", "more open"),
    "asymmetry_eye_aperture": ("Left-right difference in eye opening", "more one-sided"),
    "asymmetry_brow_height": ("Left-right difference in eyebrow height", "more one-sided"),
    "mouth_corner_tilt": ("Mouth-corner tilt", "right corner higher than the left (below 0: left higher)"),
    "mouth_corner_elevation_right": ("Right mouth corner above the lip centre", "raised, as in a smile (below 0: "
                                     "lowered)"),
    "mouth_corner_elevation_left": ("Left mouth corner above the lip centre", "raised, as in a smile (below 0: "
                                    "lowered)"),
}


@dataclass(frozen=True)
class Plain:
    label: str  # what it is, in words
    higher: str  # what a higher value means
    unit: str  # the unit in words
    formula: str  # the one-line formula (from the registry)


def describe(name: str) -> Plain:
    """The plain-language description of measure ``name`` (a registered one)."""
    m = MEASURES.get(name) or STATIC_MEASURES[name]
    kind, _, part = name.partition("_")
    if name in _FIXED:
        label, higher = _FIXED[name]
    elif kind == "rom":
        label, higher = f"Range of motion: {PARTS[part]}", "moves further from rest"
    elif name.startswith("peak_speed_"):
        label, higher = f"Peak speed: {PARTS[name.removeprefix('peak_speed_')]}", "faster"
    elif name.startswith("time_to_peak_"):
        label, higher = f"Time to the largest movement: {PARTS[name.removeprefix('time_to_peak_')]}", "later"
    else:
        raise KeyError(f"no plain-language description for measure {name!r}")
    return Plain(label, higher, UNITS.get(m.unit, m.unit), m.formula)
