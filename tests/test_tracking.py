"""Tracking behaviour on clips made from the bundled demo clip: two faces, and a face that is lost."""

import cv2
import numpy as np

from conftest import DEMO, entry_of, write_video
from fexa.extract import extract_many
from fexa.io.media import read_all
from fexa.io.trackfile import TrackData


def _run(tmp_path, frames, name):
    path = write_video(tmp_path / f"{name}.mp4", frames, fps=30, codec="libx264", pix_fmt="yuv444p")
    df = extract_many([path], tmp_path / "out", progress=False)
    assert df.loc[0, "status"] == "ok", df.loc[0, "error"]
    return TrackData.load(entry_of(tmp_path / "out", path) / "track.npz")


def test_two_faces_keep_their_ids_and_the_larger_is_the_subject(tmp_path):
    _, src, _ = read_all(DEMO)
    frames = []
    for f in src:
        canvas = np.zeros((360, 800, 3), np.uint8)
        small = cv2.resize(f, (320, 180))
        big = cv2.resize(f, (448, 252))
        canvas[90:270, 0:320] = small
        canvas[54:306, 352:800] = big
        frames.append(canvas)
    tr = _run(tmp_path, np.stack(frames), "two")
    assert len(tr.track_ids) == 2 and (tr.num_faces >= 2).mean() > 0.9
    centres = (tr.track_boxes[..., 0] + tr.track_boxes[..., 2]) / 2  # [T, K]
    left = int(np.nanargmin(np.nanmean(centres, axis=0)))
    assert np.nanmax(centres[:, left]) < 340 and np.nanmin(centres[:, 1 - left]) > 340  # ids never swap
    assert tr.track_id == tr.track_ids[1 - left]  # same length: the larger face is the subject
    assert (tr.box[tr.valid, 0] > 340).all()


def test_short_losses_are_filled_long_ones_are_not(tmp_path):
    _, src, _ = read_all(DEMO)
    frames = src.copy()
    frames[30:33] = 0  # 3 frames: filled
    frames[45:57] = 0  # 12 frames: left missing, same track afterwards
    tr = _run(tmp_path, frames, "lost")
    assert not tr.valid[30:33].any() and tr.filled[30:33].all()
    assert not tr.valid[45:57].any() and not tr.filled[45:57].any()
    assert tr.valid[:30].all() and tr.valid[60:].all()
    assert len(tr.track_ids) == 1  # the face came back under its id
    gap = tr.points[29:34, 1, :2]
    np.testing.assert_allclose(gap[1:4], gap[0] + (gap[4] - gap[0]) * np.arange(1, 4)[:, None] / 4, atol=1e-3)
    assert np.isnan(tr.points[50]).all() and np.isnan(tr.points_crop[50]).all()
