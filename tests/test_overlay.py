"""The overlay video's panel (values readable: 3 significant digits with units, never cut at the
panel's edge), its encoding (a bounded size for the report) and the report's unit picture (no
black band where the aligned crop reaches past the picture)."""

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import extracted, write_video
from fexa.face.align import warp_crop
from fexa.io.media import Media
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter
from fexa.viz.overlay import PANEL_BG, crops_inside, inside_box, iod_picture, significant, value_lines, write_overlay


def test_values_have_three_significant_digits_and_their_units():
    # a float32 column in a row with text columns came out as 'right eye opening 0.2873455882072449'
    values = pd.DataFrame({"right eye opening": np.array([0.2873456, np.nan], np.float32),
                           "mouth width": [0.81234567, 1.5], "mouth opening": np.array([0.00175, 12], np.float32),
                           "hidden": [None, "mouth"], "m_prediction": ["Happiness", None], "m_score": [2.5, 123.4]})
    units = {"right eye opening": "ratio", "mouth width": "IOD", "mouth opening": "IOD"}
    assert value_lines(values, units) == [
        ("right eye opening 0.287 ratio", "mouth width 0.812 IOD", "mouth opening 0.00175 IOD",
         "m_prediction Happiness", "m_score 2.50"),
        ("mouth width 1.50 IOD", "mouth opening 12.0 IOD", "hidden mouth", "m_score 123")]
    assert [significant(v) for v in (-0.5, 0.0, 1234.0)] == ["-0.500", "0.00", "1.23e+03"]
    assert value_lines(pd.DataFrame(index=range(2))) == [(), ()]


def test_the_panel_holds_every_value_and_the_pose_in_degrees(tmp_path):
    """Lines as long as a value gets (negative, 3 significant digits, a unit, a text column) fit
    inside the panel on every frame of the video written."""
    h, w, n = 240, 320, 6
    rng = np.random.default_rng(0)
    source = write_video(tmp_path / "in.mp4", rng.integers(0, 255, (n, h, w, 3), np.uint8))
    track = TrackData.from_landmarks(np.full((n, 478, 2), np.nan), "mediapipe478", 25, 256, (h, w),
                                     pose=np.tile([[12.4, -3.0, 170.0]], (n, 1)))
    values = pd.DataFrame({"right eye opening": -rng.random(n).astype(np.float32) * 1e-3,
                           "mouth width": rng.random(n) * 100,
                           "hidden": ["mouth, right eye, left eye"] * n})
    out = write_overlay(track, source, tmp_path / "overlay.mp4", progress=False, values=values,
                        units={"right eye opening": "ratio", "mouth width": "IOD"})
    frames = [f.rgb for f in Media(out).frames()]
    assert len(frames) == n and frames[0].shape[1] > w
    for rgb in frames:
        panel = rgb[: int(0.75 * h), w:].astype(int)  # above the FACE LOST bar
        text = (panel > 150).any(axis=2)
        assert text[:, : panel.shape[1] // 2].any()  # the lines are there
        assert not text[:, -4:].any()  # and none reaches the panel's right edge
        assert np.abs(panel[:, -4:] - PANEL_BG).max() < 40


def test_the_overlay_bitrate_is_capped(tmp_path):
    """Noise (the worst case for the encoder) at 2 Mbit/s uncapped stays near the cap when capped."""
    frames = np.random.default_rng(1).integers(0, 255, (100, 240, 320, 3), np.uint8)  # 4 s
    kbps = {}
    for cap in (None, 300):
        with VideoWriter(tmp_path / f"{cap}.mp4", 25, crf=23, max_kbps=cap) as w:
            for f in frames:
                w.write(f)
        kbps[cap] = (tmp_path / f"{cap}.mp4").stat().st_size * 8 / 4 / 1000
    assert kbps[None] > 2000 and kbps[300] < 1.5 * 300, kbps  # measured: 6,300 and about 420
    with pytest.raises(ValueError, match="max_kbps must be > 0"):
        VideoWriter(tmp_path / "x.mp4", 25, max_kbps=0)


def test_a_crop_reaching_past_the_picture_is_cut_to_the_part_inside():
    frame_size, size = (200, 300), 128
    h, w = frame_size
    below = np.array([[1, 0, -100], [0, 1, -150]], np.float32)  # crop rows 50-127 lie below the picture
    assert inside_box(below, frame_size, size) == (0, 50, 0, size)
    turned = cv2.getRotationMatrix2D((w - 40.0, h - 40.0), 20, 1.0)  # turned 20 degrees about a point
    turned[:, 2] -= (w - 40 - size / 2, h - 40 - size / 2)  # 40 pixels from the corner, at the crop's centre
    top, bottom, left, right = inside_box(turned, frame_size, size)
    crop = warp_crop(np.full((h, w, 3), 200, np.uint8), turned, size)
    assert (crop == 0).any() and (crop[top:bottom, left:right] == 200).all()
    assert bottom - top > size // 3 and right - left > size // 3


def test_the_unit_picture_has_no_black_band(shared_cache):
    """WolfgangLanger's face sits low in the picture: its crops reach past the bottom edge (black
    there) until frame 154, and the picture showed that band. Now the picture is of a frame whose
    crop lies inside the picture (``crops_inside``, checked against the crops' pixels and the
    part of each crop ``inside_box`` keeps)."""
    entry = extracted(shared_cache, "pyfeat_test_media/WolfgangLanger_Pexels.mp4")["WolfgangLanger_Pexels"]
    track = TrackData.load(entry / "track.npz")
    inside = crops_inside(track)
    # measured: from frame 154 on (153 with the torch backend beside OpenCV 4.11), 140 of 472 frames inside
    first = int(np.argmax(inside))
    assert 150 <= first <= 156 and not inside[:first].any()
    size = track.crop_size
    full = [inside_box(track.affine[t], track.frame_size, size) == (0, size, 0, size) for t in range(0, 472, 4)]
    assert full == inside[::4].tolist()
    crops = {f.index: f.rgb for f in Media(entry / "crops.mp4").frames() if f.index in (0, 100, 154)}
    bottom = {t: np.median(rgb[-3:].max(axis=2)) for t, rgb in crops.items()}  # black: <= 16 after H.264
    assert bottom[0] <= 16 and bottom[100] <= 16 and bottom[154] > 40, bottom
    png = cv2.imdecode(np.frombuffer(iod_picture(entry / "crops.mp4", track), np.uint8), cv2.IMREAD_COLOR)
    assert png.shape == (2 * track.crop_size, 2 * track.crop_size, 3)
    assert np.median(png[-6:].max(axis=2)) > 40  # the band was here; measured: 94
