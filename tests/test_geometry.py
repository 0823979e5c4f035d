"""Tracking helpers, head pose and alignment, checked on hand-made geometry."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fexa.face.align import apply_transform, crop_transforms
from fexa.face.detector import FaceObservation, box_iou
from fexa.face.landmarks import get_scheme
from fexa.face.pose import head_pose
from fexa.face.tracks import TrackSet, fill_gaps, gap_runs
from fexa.io.trackfile import TrackData


def test_box_iou_by_hand():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 1.0, 0.0]])


def test_gaps_are_filled_only_inside_and_when_short():
    valid = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0], bool)
    assert gap_runs(valid) == [(3, 5), (6, 12)]
    x = np.where(valid, np.arange(14.0), np.nan)[:, None]
    out, filled = fill_gaps(x, valid, max_gap=5)
    np.testing.assert_allclose(out[3:5, 0], [3, 4])  # between 2 (frame 2) and 5 (frame 5)
    assert filled.tolist() == [False] * 3 + [True, True] + [False] * 9
    assert np.isnan(out[6:12]).all() and np.isnan(out[0]) and np.isnan(out[13])


def _obs(tid: int, x0: float, size: float) -> FaceObservation:
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0] = np.linspace(x0, x0 + size, 478)
    pts[:, 1] = np.linspace(0, size, 478)
    return FaceObservation(tid, np.array([x0, 0, x0 + size, size]), pts, 0.9, True)


def test_subject_is_the_longest_track_then_the_largest():
    frames = [[_obs(0, 0, 10), _obs(1, 50, 40)] for _ in range(3)] + [[_obs(0, 0, 10)] for _ in range(2)]
    ts = TrackSet.from_observations(frames)
    assert ts.main_track() == 0  # 5 frames beat 3
    assert ts.faces_per_frame().tolist() == [2, 2, 2, 1, 1]
    tie = TrackSet.from_observations([[_obs(0, 0, 10), _obs(1, 50, 40)] for _ in range(3)])
    assert tie.main_track() == 1  # same length: the larger face
    assert TrackSet.from_observations([[], []]).main_track() is None


def _face(rot: Rotation) -> np.ndarray:
    """Mesh-sized array whose pose points (eye corners 33/263, forehead 10, chin 152) are a
    frontal face rotated by ``rot`` (image axes: x right, y down, z away from the camera); the
    other points, the rigid ones among them, a fixed 3-D cloud turned with it."""
    p = np.random.default_rng(0).normal(size=(478, 3))
    p[33], p[263], p[10], p[152] = (-1, 0, 0), (1, 0, 0), (0, -1.5, 0), (0, 1.5, 0)
    return rot.apply(p)[None]


def test_head_pose_signs_and_values():
    assert np.allclose(head_pose(_face(Rotation.identity())), 0, atol=1e-9)
    # face turns toward the image right: its camera-facing direction (0,0,-1) gains +x
    yaw = Rotation.from_euler("y", -25, degrees=True)
    assert yaw.apply([0, 0, -1])[0] > 0
    np.testing.assert_allclose(head_pose(_face(yaw))[0], [25, 0, 0], atol=1e-4)
    # chin lifts: the camera-facing direction gains -y (up in the image)
    pitch = Rotation.from_euler("x", -15, degrees=True)
    assert pitch.apply([0, 0, -1])[1] < 0
    np.testing.assert_allclose(head_pose(_face(pitch))[0], [0, 15, 0], atol=1e-4)
    roll = Rotation.from_euler("z", 10, degrees=True)  # clockwise on screen (y down)
    np.testing.assert_allclose(head_pose(_face(roll))[0], [0, 0, 10], atol=1e-4)
    missing = np.full((1, 478, 3), np.nan)
    assert np.isnan(head_pose(missing)).all()


def test_alignment_levels_and_centres_a_tilted_face(demo_entry):
    tr = TrackData.load(demo_entry / "track.npz")
    pts = tr.points[tr.valid][:5, :, :2].astype(np.float64)
    c = pts.reshape(-1, 2).mean(0)
    ang = np.deg2rad(30)
    r = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    tilted = (pts - c) @ r.T * 0.5 + c + [40, -20]
    for p in (pts, tilted):
        m = crop_transforms(p, "mediapipe478", np.ones(len(p), bool), size=256, smooth=1)
        crop = apply_transform(p, m)
        s = get_scheme("heatmap73")
        h = s.select(crop, "mediapipe478")
        er, el = h[:, s.region_slice("right_eye")].mean(1), h[:, s.region_slice("left_eye")].mean(1)
        np.testing.assert_allclose(er[:, 1], el[:, 1], atol=3)  # eyes level
        np.testing.assert_allclose((er[:, 0] + el[:, 0]) / 2, 128, atol=8)  # centred
        assert ((crop > -5) & (crop < 261)).mean() > 0.97
    m0 = crop_transforms(pts, "mediapipe478", np.ones(5, bool), smooth=1)
    m1 = crop_transforms(tilted, "mediapipe478", np.ones(5, bool), smooth=1)
    np.testing.assert_allclose(apply_transform(pts, m0), apply_transform(tilted, m1), atol=1e-2)
    with pytest.raises(ValueError, match="no usable frame"):
        crop_transforms(pts, "mediapipe478", np.zeros(5, bool))
