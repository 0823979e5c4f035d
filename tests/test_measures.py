"""Kinematic measures: synthetic signals with known answers, and real clips with hand counts."""

import numpy as np
import pytest

from conftest import shared_file
from fexa.analysis.measures import _symmetry, compute_measures, detect_blinks, frame_signals, segment_repetitions
from fexa.extract import extract_many
from fexa.io.trackfile import TrackData


def test_blinks_in_a_synthetic_aperture_signal():
    fps = 25.0
    a = np.full(250, 0.4)
    for f in (30, 90, 91, 160):  # three blinks (90-91 is one), each a dip to 10% of the open level
        a[f] = 0.04
    a[200:204] = 0.28  # a squint (30% narrower): not a blink
    a[220:240] = 0.05  # eyes closed for 0.8 s: a closure, not a blink
    b = detect_blinks(a, fps)
    assert b.count == 3 and b.frames[0] == 30 and b.frames[2] == 160
    assert b.rate_per_min == pytest.approx(3 / 10 * 60)
    assert b.closure_depth == pytest.approx(0.9, abs=0.03)


def test_repetitions_amplitude_and_fatigue():
    fps = 30.0
    t = np.arange(0, 10, 1 / fps)
    amp = np.repeat([1.0, 0.9, 0.8, 0.7, 0.6], len(t) // 5)
    s = 0.5 + amp * (1 - np.cos(2 * np.pi * t[: len(amp)] / 2.0)) / 2  # five 2 s repetitions, decaying
    reps = segment_repetitions(s, fps)
    assert len(reps) == 5
    np.testing.assert_allclose(reps["time"], [1, 3, 5, 7, 9], atol=0.05)
    np.testing.assert_allclose(reps["amplitude"].iloc[1:], [0.9, 0.8, 0.7, 0.6], atol=0.02)
    assert _symmetry(1.0, 1.0) == 0.0 and _symmetry(1.0, 0.0) == 1.0 and _symmetry(3.0, 1.0) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    talk = shared_file("sadtalker_ref_videos/WDA_AlexandriaOcasioCortez_000.mp4")
    smile = shared_file("liveportrait_driving_videos/d0.mp4")
    out = tmp_path_factory.mktemp("measures")
    extract_many([talk, smile], out, progress=False)
    return {name: TrackData.load(out / name / "track.npz") for name in (talk.stem, smile.stem)}


def test_blinks_on_the_sadtalker_clip_match_a_hand_count(clips):
    # Counted by hand, frame by frame, on the aligned eye crops: closures around frames
    # 11, 25, 35, 57, 81, 97, 111, 130, 151 and 177 -> 10 blinks in 8 s (25 and 97 are brief).
    track = clips["WDA_AlexandriaOcasioCortez_000"]
    sig = frame_signals(track)
    b = detect_blinks(sig[["eye_aperture_right", "eye_aperture_left"]].mean(axis=1).to_numpy(), track.fps)
    assert abs(b.count - 10) <= 1
    hand = np.array([11, 25, 35, 57, 81, 97, 111, 130, 151, 177])
    assert sum(np.min(np.abs(hand - f)) <= 2 for f in b.frames) >= 9


def test_smile_widens_the_mouth_more_than_talking(clips):
    smile = compute_measures(clips["d0"]).set_index("measure")["value"]
    talk = compute_measures(clips["WDA_AlexandriaOcasioCortez_000"]).set_index("measure")["value"]
    assert smile["mouth_width_rom"] > 1.25 * talk["mouth_width_rom"]
    assert smile["rom_mouth_corner_right"] > 0.05 and smile["symmetry_mouth_corners"] < 0.5
    m = compute_measures(clips["d0"])
    assert set(m["unit"]) >= {"IOD", "IOD/s", "s", "index"} and (m["flag"] == "").all()


def test_subclips_and_scaled_motion_features(demo_entry):
    import pandas as pd

    from fexa.analysis.baseline import sample_features

    track = TrackData.load(demo_entry / "track.npz")
    sub = track.subclip(10, 40)
    assert sub.num_frames == 30 and sub.times[0] == 0.0 and np.array_equal(sub.points, track.points[10:40])
    row = {"entry": str(demo_entry), "start": 10, "end": 60}
    full = sample_features(pd.Series({**row, "motion_scale": 1.0}))
    half = sample_features(pd.Series({**row, "motion_scale": 0.5}))
    still = sample_features(pd.Series({**row, "motion_scale": 0.0}))
    roms = [c for c in full.index if c.startswith("rom_")]
    assert (still[roms] == 0).all() and still["mouth_width_rom"] == pytest.approx(0, abs=1e-9)
    np.testing.assert_allclose(half[roms] / full[roms], 0.5, atol=0.05)  # motion halved, ROM halved
