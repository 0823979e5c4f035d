import numpy as np
import pytest

from fexa.represent.trajectory import TrajectoryConfig, fit_indices, sample_rgb, time_index, trajectory


def test_fit_indices_pad_and_truncate():
    np.testing.assert_array_equal(fit_indices(3, 8, "loop"), [0, 1, 2, 0, 1, 2, 0, 1])
    np.testing.assert_array_equal(fit_indices(3, 8, "duplicate"), [0, 1, 2, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(fit_indices(3, 8, "zero"), [0, 1, 2, -1, -1, -1, -1, -1])
    for pad in ("loop", "duplicate", "zero"):
        np.testing.assert_array_equal(fit_indices(10, 4, pad), [6, 7, 8, 9])  # keep the last T_p
    np.testing.assert_array_equal(fit_indices(4, 4), [0, 1, 2, 3])
    np.testing.assert_allclose(time_index([6, 7, 8, 9], 4), [2.0, 2.5, 3.0, 3.5])  # reference: > 1 when truncated


def _moving(t: int = 5, p: int = 3):
    """Point k at (k + t_index, 2k); nose at (t_index, -t_index)."""
    ti = np.arange(t, dtype=float)
    pts = np.stack([np.stack([k + ti, np.full(t, 2.0 * k)], axis=1) for k in range(p)], axis=1)
    nose = np.stack([ti, -ti], axis=1)
    return pts, nose


def test_positions_relative_to_nose_tip():
    pts, nose = _moving()
    x, idx = trajectory(pts, nose, cfg=TrajectoryConfig(length=5, channels=2, origin="first"))
    assert x.shape == (5, 3, 2)
    np.testing.assert_allclose(x[3, 1], [1 + 3, 2])  # p_t - nose_0, nose_0 = (0, 0)
    x, _ = trajectory(pts, nose, cfg=TrajectoryConfig(length=5, channels=2, origin="frame"))
    np.testing.assert_allclose(x[3, 1], [1 + 3 - 3, 2 + 3])  # p_t - nose_t
    np.testing.assert_allclose(idx, 2 * np.arange(5) / 5 - 1)


def test_channels_and_paddings():
    pts, nose = _moving(t=3)
    rgb = np.random.default_rng(0).uniform(size=(3, 3, 3))
    x5, _ = trajectory(pts, nose, rgb, TrajectoryConfig(length=8, channels=5))
    np.testing.assert_allclose(x5[4, :, 2:], rgb[1])  # loop: step 4 is frame 1
    x3, _ = trajectory(pts, nose, rgb, TrajectoryConfig(length=8, channels=3))
    np.testing.assert_allclose(x3, x5[..., 2:])
    xz, iz = trajectory(pts, nose, rgb, TrajectoryConfig(length=8, padding="zero"))
    assert not xz[3:].any() and xz[:3].any()
    xd, _ = trajectory(pts, nose, rgb, TrajectoryConfig(length=8, padding="duplicate"))
    np.testing.assert_allclose(xd[7], x5[2])
    with pytest.raises(ValueError, match="colours"):
        trajectory(pts, nose, None, TrajectoryConfig(channels=5))


def test_cubic_interpolation_stretches_linear_motion_exactly():
    pts, nose = _moving(t=4)
    x, idx = trajectory(pts, nose, cfg=TrajectoryConfig(length=7, channels=2, padding="interp"))
    # positions at times 0, 0.5, ..., 3 of a linear motion: point 0's x equals the time
    np.testing.assert_allclose(x[:, 0, 0], np.linspace(0, 3, 7), atol=1e-6)


def test_reverse_and_missing_landmarks():
    pts, nose = _moving(t=6)
    fwd, i1 = trajectory(pts, nose, cfg=TrajectoryConfig(length=6, channels=2))
    rev, i2 = trajectory(pts, nose, cfg=TrajectoryConfig(length=6, channels=2, reverse=True))
    np.testing.assert_array_equal(rev, fwd[::-1])
    np.testing.assert_array_equal(i1, i2)  # the time index is not reversed (as the reference)
    pts[2, 0] = np.nan
    with pytest.raises(ValueError, match="missing"):
        trajectory(pts, nose, cfg=TrajectoryConfig(channels=2))


def test_sample_rgb_takes_the_pixel_under_each_landmark():
    frames = np.zeros((2, 4, 5, 3), np.uint8)
    frames[0, 1, 3] = [255, 0, 51]
    frames[1, 3, 4] = [0, 255, 0]
    pts = np.array([[[3.2, 0.8]], [[9.0, 7.0]]])  # rounds to (3, 1); clipped to (4, 3)
    np.testing.assert_allclose(sample_rgb(frames, pts)[:, 0], [[1, 0, 0.2], [0, 1, 0]])


def test_point_mean_origin_keeps_only_the_motion():
    pts, nose = _moving(t=5)
    x, _ = trajectory(pts, nose, cfg=TrajectoryConfig(length=5, channels=2, origin="point_mean"))
    np.testing.assert_allclose(x[:, 1, 0], np.arange(5) - 2.0)  # x = k + t about its mean k + 2
    np.testing.assert_allclose(x[:, :, 1], 0.0)  # y does not move
