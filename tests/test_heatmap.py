import math

import numpy as np
import pytest
import torch

from fexa.represent.heatmap import (HeatmapConfig, area_resize, area_resize_matmul, heatmap_volume, landmark_heatmaps,
                                    landmark_heatmaps_torch, render_reference)

RAW = dict(src_size=21, out_size=21, blur=0)  # no smoothing, no resizing: the bare Gaussians


def test_single_point_is_the_truncated_gaussian():
    h = landmark_heatmaps(np.array([[[10.0, 10.0]]]), HeatmapConfig(**RAW))[0]
    assert h[10, 10] == pytest.approx(1.0)
    assert h[10, 11] == pytest.approx(math.exp(-0.5), rel=1e-6)  # d = 1
    assert h[11, 11] == pytest.approx(math.exp(-1.0), rel=1e-6)  # d^2 = 2
    assert h[10, 15] == pytest.approx(math.exp(-12.5), rel=1e-5)  # d = 5: edge of the 11x11 patch
    assert h[10, 16] == 0.0 and h[16, 10] == 0.0  # outside the patch
    h2 = landmark_heatmaps(np.array([[[10.0, 10.0]]]), HeatmapConfig(sigma=2.0, **RAW))[0]
    assert h2[12, 10] == pytest.approx(math.exp(-4 / 8), rel=1e-6)


def test_two_overlapping_points_sum_then_normalise():
    h = landmark_heatmaps(np.array([[[10.0, 10.0], [12.0, 10.0]]]), HeatmapConfig(**RAW))[0]
    mid = 2 * math.exp(-0.5)  # (11, 10): one pixel from both points, the maximum
    assert h[10, 11] == pytest.approx(1.0)
    assert h[10, 10] == pytest.approx((1 + math.exp(-2)) / mid, rel=1e-6)
    assert h[11, 11] == pytest.approx(2 * math.exp(-1) / mid, rel=1e-6)


def test_landmarks_are_rounded_and_clipped_to_the_crop():
    h = landmark_heatmaps(np.array([[[-7.0, 10.4]]]), HeatmapConfig(**RAW))[0]
    assert h[10, 0] == pytest.approx(1.0)  # x clipped to 0, y rounded to 10


@pytest.mark.parametrize("cfg", [HeatmapConfig(), HeatmapConfig(out_size=56), HeatmapConfig(sigma=3.0, out_size=64),
                                 HeatmapConfig(blur=0, out_size=32), HeatmapConfig(src_size=200, out_size=64)])
def test_separable_tables_equal_the_literal_recipe(cfg):
    pts = np.random.default_rng(0).uniform(-10, cfg.src_size + 10, size=(3, 73, 2))
    np.testing.assert_allclose(landmark_heatmaps(pts, cfg), render_reference(pts, cfg), atol=1e-5)


def test_modes():
    pts = np.array([[[100.0, 120.0], [150.0, 90.0]]] * 2)
    gray = heatmap_volume(pts, HeatmapConfig(mode="gray"))
    assert gray.shape == (2, 1, 64, 64) and gray.max() == pytest.approx(1.0)
    jet = heatmap_volume(pts, HeatmapConfig(mode="jet"))
    np.testing.assert_allclose(jet[0, :, 0, 0], [0, 0, 128 / 255], atol=1 / 255)  # JET(0) is dark blue
    peak = np.unravel_index(gray[0, 0].argmax(), (64, 64))
    assert jet[0, 0, peak[0], peak[1]] == pytest.approx(128 / 255, abs=1 / 255)  # JET(1) is dark red
    white = np.full((2, 256, 256, 3), 255, np.uint8)
    rgbw = heatmap_volume(pts, HeatmapConfig(mode="rgb_weighted"), white)
    np.testing.assert_allclose(rgbw, np.repeat(gray, 3, axis=1), atol=1e-6)
    per = heatmap_volume(pts, HeatmapConfig(mode="per_landmark"))
    assert per.shape == (2, 2, 64, 64)
    assert np.unravel_index(per[0, 0].argmax(), (64, 64)) == (30, 25)  # (120/4, 100/4)
    assert np.unravel_index(per[0, 1].argmax(), (64, 64)) == (22, 37)
    with pytest.raises(ValueError, match="needs the crops"):
        heatmap_volume(pts, HeatmapConfig(mode="rgb_weighted"))


def test_missing_frames_give_empty_maps_and_bad_config_is_refused():
    pts = np.array([[[10.0, 10.0]], [[np.nan, np.nan]]])
    h = landmark_heatmaps(pts, HeatmapConfig(**RAW))
    assert h[0].max() == pytest.approx(1.0) and not h[1].any()
    with pytest.raises(ValueError, match="mode"):
        HeatmapConfig(mode="fancy")
    with pytest.raises(ValueError, match="odd"):
        HeatmapConfig(kernel=10)


@pytest.mark.parametrize("size, out", [(256, 64), (200, 64), (64, 56)])
def test_area_resize_on_other_devices_equals_opencv(size, out):
    """The matrix-product resize (used off the CPU) against OpenCV's INTER_AREA, also for ratios
    that are not whole numbers; and a flat white crop stays white."""
    frames = torch.from_numpy(np.random.default_rng(size).integers(0, 256, (2, 3, size, size, 3), dtype=np.uint8))
    cpu = area_resize(frames, out)
    assert cpu.shape == (2, 3, 3, out, out)
    torch.testing.assert_close(area_resize_matmul(frames, out) / 255, cpu, rtol=0, atol=1e-6)
    white = area_resize(torch.full((1, size, size, 3), 255, dtype=torch.uint8), out)
    torch.testing.assert_close(white, torch.ones_like(white), rtol=0, atol=1e-6)


def test_torch_heatmaps_take_batches():
    pts = np.random.default_rng(1).uniform(0, 256, size=(2, 4, 73, 2))
    pts[1, 2, 5] = np.nan
    batched = landmark_heatmaps_torch(torch.from_numpy(pts))
    for b in range(2):
        np.testing.assert_allclose(batched[b].numpy(), landmark_heatmaps(pts[b]), atol=1e-7)
    assert not batched[1, 2].any() and batched[1, 1].max() == pytest.approx(1.0)


@pytest.mark.parametrize("cfg", [HeatmapConfig(skip_first=True), HeatmapConfig(subpixel=True),
                                 HeatmapConfig(skip_first=True, subpixel=True, sigma=2.0, out_size=56)])
def test_the_released_codes_options_equal_the_literal_recipe(cfg):
    pts = np.random.default_rng(2).uniform(-10, cfg.src_size + 10, size=(3, 73, 2))
    np.testing.assert_allclose(landmark_heatmaps(pts, cfg), render_reference(pts, cfg), atol=1e-5)


def test_skip_first_drops_point_0_and_subpixel_moves_the_peak():
    raw = dict(src_size=21, out_size=21, blur=0)
    pts = np.array([[[3.0, 3.0], [15.0, 10.0]]])
    assert landmark_heatmaps(pts, HeatmapConfig(**raw))[0, 3, 3] == pytest.approx(1.0)
    skipped = landmark_heatmaps(pts, HeatmapConfig(skip_first=True, **raw))[0]
    assert skipped[3, 3] == 0.0 and skipped[10, 15] == pytest.approx(1.0)
    half = landmark_heatmaps(np.array([[[10.4, 10.0]]]), HeatmapConfig(subpixel=True, **raw))[0]
    # centre 10.4: pixel 10 is 0.4 away, pixel 11 is 0.6 away; normalised by the patch maximum (pixel 10)
    assert half[10, 10] == pytest.approx(1.0)
    assert half[10, 11] == pytest.approx(math.exp(-(0.6**2 - 0.4**2) / 2), rel=1e-6)
    assert half[10, 9] == pytest.approx(math.exp(-(1.4**2 - 0.4**2) / 2), rel=1e-6)
    pixel = landmark_heatmaps(np.array([[[10.4, 10.0]]]), HeatmapConfig(**raw))[0]
    assert pixel[10, 11] == pytest.approx(pixel[10, 9])  # rounded: symmetric about pixel 10
