from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DEMO, shared_file, write_video
from fexa.errors import FexaError, MediaError
from fexa.io.media import Media, natural_key, read_all, to_rgb8


def test_gray_16bit_video_becomes_rgb8(tmp_path):
    ramp = (np.linspace(0, 65535, 32 * 48).reshape(32, 48)).astype(np.uint16)
    frames = np.stack([ramp] * 4)
    path = write_video(tmp_path / "g16.mkv", frames, fps=10, codec="ffv1", pix_fmt="gray16le", in_format="gray16le")
    info, rgb, times = read_all(path)
    assert info.kind == "video" and (info.width, info.height) == (48, 32) and rgb.shape == (4, 32, 48, 3)
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_allclose(rgb[0, ..., 0].astype(float), ramp / 257.0, atol=1.01)
    np.testing.assert_allclose(times, [0, 0.1, 0.2, 0.3], atol=1e-6)


def test_odd_resolution_and_variable_frame_rate(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, size=(4, 77, 101, 3), dtype=np.uint8)
    times = [0.0, 0.1, 0.15, 0.4]
    path = write_video(tmp_path / "vfr.mkv", frames, fps=10, codec="ffv1", pix_fmt="bgr0", times=times)
    info, rgb, t = read_all(path)
    assert rgb.shape == (4, 77, 101, 3)
    np.testing.assert_array_equal(rgb, frames)  # ffv1 is lossless
    np.testing.assert_allclose(t, times, atol=1e-3)


def test_images_exif_16bit_and_palette(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert read_all(tmp_path / "rot.jpg")[1].shape == (1, 40, 20, 3)
    Image.fromarray(np.full((5, 6), 65535, np.uint16)).save(tmp_path / "deep.png")
    assert read_all(tmp_path / "deep.png")[1].max() == 255
    Image.new("P", (3, 3)).save(tmp_path / "pal.gif")
    assert read_all(tmp_path / "pal.gif")[1].shape == (1, 3, 3, 3)
    np.testing.assert_array_equal(to_rgb8(np.array([[0.0, 1.0]])), [[[0, 0, 0], [255, 255, 255]]])


def test_frame_folder_sorted_naturally(tmp_path):
    for i in (10, 2, 1):
        Image.fromarray(np.full((8, 8), i, np.uint8)).save(tmp_path / f"frame_{i}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    info, rgb, t = read_all(tmp_path, fps=5)
    assert info.kind == "frames" and info.num_frames == 3
    assert list(rgb[:, 0, 0, 0]) == [1, 2, 10]
    np.testing.assert_allclose(t, [0, 0.2, 0.4])
    assert sorted(["a10", "a2", "a1"], key=natural_key) == ["a1", "a2", "a10"]


def _w(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.mp4", "no such file"),
        (lambda p: _w(p / "empty.mp4", b""), "empty file"),
        (lambda p: _w(p / "text.mp4", b"hello, not a video\n" * 50), "not a readable video"),
        (lambda p: (p / "d").mkdir() or p / "d", "no image files"),
        (lambda p: _w(p / "x.xyz", b"?"), "unsupported file type"),
        (lambda p: _w(p / "bad.png", b"\x89PNG garbage"), "cannot read image"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path, make, message):
    with pytest.raises(MediaError, match=message):
        m = Media(make(tmp_path))
        list(m.frames())


def _index_first(tmp_path) -> Path:
    """The demo clip's video stream remuxed, not re-encoded, with its index (moov) before its frames
    (ffmpeg's ``-movflags faststart``): 89,941 bytes, frame 0 its only keyframe, B-frames."""
    import av

    path = tmp_path / "index_first.mp4"
    with av.open(str(DEMO)) as src, av.open(str(path), "w", options={"movflags": "faststart"}) as dst:
        video = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:  # not the demuxer's end marker
                packet.stream = video
                dst.mux(packet)
    return path


# Hand label (from the intact file's packet offsets): a cut at byte 59,941, where the packet of frame
# 37 starts, leaves whole the packets of frames 0-36, 38 and 40; those of B-frames 37 and 39 lie after it
CUT_AT, KEPT = 59_941, [*range(37), 38, 40]


def test_a_truncated_video_keeps_the_frames_before_the_cut_and_is_partial(tmp_path):
    """A copy cut short (the index intact at the front, 2/3 of the file): the 39 frames whose
    packets lie wholly before the cut are kept, each equal to the intact file's frame at its own
    time, and the entry is partial with the number of frames missing (72 promised)."""
    import av

    from fexa.extract import extract_one

    full = _index_first(tmp_path)
    data = full.read_bytes()
    with av.open(str(full)) as c:
        s = c.streams.video[0]
        whole = sorted(round(float(p.pts * s.time_base) * 30) for p in c.demux(s) if p.size and p.pos + p.size <= CUT_AT)
    assert len(data) == 89_941 and whole == KEPT
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:CUT_AT])
    _, frames, times = read_all(full)
    m = Media(cut)
    got = list(m.frames())
    assert m.info.num_frames == 72 and [fr.index for fr in got] == list(range(39))
    assert [fr.time for fr in got] == times[KEPT].tolist()
    np.testing.assert_array_equal(np.stack([fr.rgb for fr in got]), frames[KEPT])
    meta = extract_one(cut, tmp_path / "out" / "cut")
    assert (meta["status"], meta["frames"], meta["frames_expected"]) == ("partial", 39, 72), meta
    assert meta["error"] == "damaged video, 39 frames decoded of 72 expected: 33 of 72 frames missing"


def test_a_video_cut_inside_a_packet_keeps_the_same_frames_and_counts_the_cut_packet(tmp_path):
    """Cut 19 bytes into the packet of frame 37 (59,960 bytes, 2/3 of the file): the same 39
    frames as a cut where that packet starts, and the cut packet counted as damaged."""
    full = _index_first(tmp_path)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[:CUT_AT + 19])
    m = Media(cut)
    assert [round(fr.time * 30) for fr in m.frames()] == KEPT
    assert m.damaged_packets == 1 and m.decode_error.startswith("1 damaged packet(s) skipped")


def test_a_truncated_video_whose_index_was_at_its_end_is_an_error(tmp_path):
    """The demo clip as shipped keeps its index (moov) after its frames: cut to 2/3, the index is
    gone and no frame can be found, so the input is an error naming the file, not an entry."""
    from fexa.extract import extract_one

    data = DEMO.read_bytes()
    assert data.rfind(b"moov") > len(data) * 2 // 3
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(MediaError, match=r"^not a readable video: .*cut\.mp4 \("):
        Media(cut)
    meta = extract_one(cut, tmp_path / "out" / "cut")
    assert meta["status"] == "error" and meta["error"].startswith(f"not a readable video: {cut} (")


def test_rotation_metadata_is_honoured(tmp_path):
    import av

    path = tmp_path / "rotated.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(90)  # display turned 90 degrees counter-clockwise
        for _ in range(3):
            f = np.zeros((32, 64, 3), np.uint8)
            f[:, :32] = 255  # left half white
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    info, rgb, _ = read_all(path)
    assert info.rotation == 90 and (info.width, info.height) == (32, 64) and rgb.shape == (3, 64, 32, 3)
    assert rgb[0, -8:].mean() > 240 and rgb[0, :8].mean() < 15  # the left half is now at the bottom


def _images(folder, names, sizes=None):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        h, w = sizes[k] if sizes else (8, 8)
        Image.fromarray(np.full((h, w), 10 * k, np.uint8)).save(folder / name)
    return folder


def test_a_folder_is_one_video_only_when_its_images_look_like_frames(tmp_path):
    from fexa.extract import expand_inputs
    from fexa.io.media import frame_sequence, list_frame_files

    frames = _images(tmp_path / "clip", [f"frame_{i:04d}.png" for i in (1, 2, 3, 5, 6)])  # one frame left out
    every_5th = _images(tmp_path / "sampled", [f"{i:05d}.jpg" for i in (0, 5, 10, 15)])
    photos = _images(tmp_path / "jaffe_like", ["KA.AN1.39.png", "KA.DI1.42.png", "KM.HA2.5.png"])
    ids = _images(tmp_path / "fer_like", ["PrivateTest_10131363.png", "PrivateTest_1054527.png", "PrivateTest_88305.png"])
    sizes = _images(tmp_path / "sizes", ["a1.png", "a2.png", "a3.png"], [(8, 8), (8, 8), (16, 8)])
    why = {d.name: frame_sequence(list_frame_files(d)) for d in (frames, every_5th, photos, ids, sizes)}
    assert why == {"clip": "", "sampled": "", "jaffe_like": "the names differ beyond a frame number",
                   "fer_like": "the numbers do not run in regular steps (ids, not frame numbers)",
                   "sizes": "the images differ in size (2 sizes)"}
    assert expand_inputs([frames]) == [frames] and len(expand_inputs([photos])) == 3
    assert expand_inputs([photos], "video") == [photos] and len(expand_inputs([frames], "images")) == 5
    # a mixed folder: its video, its loose photos one by one, and its frame subfolder as one video
    mixed = _images(tmp_path / "mixed", ["portrait.png", "group.png"])
    (mixed / "talk.mp4").write_bytes((DEMO).read_bytes())
    _images(mixed / "frames", [f"{i}.png" for i in range(1, 4)])
    assert [p.relative_to(mixed).as_posix() for p in expand_inputs([mixed])] == ["talk.mp4", "group.png", "portrait.png",
                                                                                 "frames"]
    with pytest.raises(Exception, match="folder_as must be one of auto, video, images"):
        expand_inputs([mixed], "frames")


def test_a_huge_image_is_refused_from_its_header(tmp_path):
    """A 14,000 x 14,000 PNG (a 23 kB file) once stopped the batch with Pillow's
    DecompressionBombError; it is refused, with its size and the limit, before any pixel is decoded."""
    from fexa.extract import extract_one

    Image.new("1", (14000, 14000)).save(tmp_path / "huge.png")
    message = r"cannot read image .*huge.png: image too large: 14000 x 14000 pixels, the limit is 178,956,970 pixels"
    with pytest.raises(MediaError, match=message):
        Media(tmp_path / "huge.png")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in (1, 2):
        (frames / f"frame_{i}.png").write_bytes((tmp_path / "huge.png").read_bytes())
    with pytest.raises(MediaError, match="none of the 2 image files is readable .*image too large: 14000 x 14000"):
        Media(frames)
    meta = extract_one(tmp_path / "huge.png", tmp_path / "out" / "huge")
    assert meta["status"] == "error" and meta["error"].startswith("cannot read image") and "too large" in meta["error"]


def test_a_frame_folder_with_an_unreadable_frame_stays_one_partial_video(tmp_path):
    """20 numbered frames of the demo clip, frame_0005.png garbage: still one input (it used to
    fall apart into 20 images), status partial naming the frame, the other frames at index / fps."""
    from corpus import demo_frames
    from fexa.extract import expand_inputs, extract_one
    from fexa.io.media import frame_sequence, list_frame_files
    from fexa.io.trackfile import TrackData

    folder = tmp_path / "clip"
    folder.mkdir()
    for i, rgb in enumerate(demo_frames(20)):
        Image.fromarray(rgb).save(folder / f"frame_{i:04d}.png")
    (folder / "frame_0005.png").write_bytes(b"not a png, " * 20)
    assert frame_sequence(list_frame_files(folder)) == "" and expand_inputs([folder]) == [folder]
    m = Media(folder)
    got = list(m.frames())
    assert m.info.num_frames == 20 and [fr.index for fr in got] == list(range(19))
    assert [fr.time for fr in got] == [i / 30 for i in range(20) if i != 5]
    assert m.decode_error == "frame_0005.png could not be read (not an image Pillow can identify)"
    meta = extract_one(folder, tmp_path / "out" / "clip")
    assert meta["status"] == "partial" and "frame_0005.png could not be read" in meta["error"], meta
    assert (meta["frames"], meta["frames_expected"]) == (19, 20)
    times = TrackData.load(tmp_path / "out" / "clip" / "track.npz").times
    np.testing.assert_array_equal(times, [i / 30 for i in range(20) if i != 5])


def test_the_kind_of_a_file_without_a_known_extension_comes_from_its_content(tmp_path):
    (tmp_path / "clip").write_bytes(DEMO.read_bytes())
    (tmp_path / "clip.data").write_bytes(DEMO.read_bytes())
    Image.new("RGB", (20, 10), (200, 30, 40)).save(tmp_path / "still", format="PNG")
    (tmp_path / "notes").write_text("a text file, not an image\n" * 10)
    for name in ("clip", "clip.data"):
        m = Media(tmp_path / name)
        assert (m.kind, m.info.num_frames, sum(1 for _ in m.frames())) == ("video", 72, 72)
    info, rgb, _ = read_all(tmp_path / "still")
    assert info.kind == "image" and rgb.shape == (1, 10, 20, 3) and tuple(rgb[0, 0, 0]) == (200, 30, 40)
    with pytest.raises(MediaError, match=r"unsupported file type '\(no extension\)': by its content neither an "
                                         r"image nor a video: .*notes$"):
        Media(tmp_path / "notes")


def test_a_time_range_of_the_demo_clip_equals_the_full_decode_there():
    """The demo clip (30 fps, pts step 512 of 1/15360 s): [0.5, 1.5) holds its frames 15-44."""
    _, frames, times = read_all(DEMO)
    m = Media(DEMO, start=0.5, end=1.5)
    got = list(m.frames())
    inside = (times >= 0.5) & (times < 1.5)
    assert np.flatnonzero(inside).tolist() == list(range(15, 45))
    assert [fr.index for fr in got] == list(range(30)) and m.info.num_frames == 30
    assert (m.info.start, m.info.duration) == (0.5, 1.0)
    assert [fr.time for fr in got] == times[inside].tolist()  # the file's times, exactly
    np.testing.assert_array_equal(np.stack([fr.rgb for fr in got]), frames[inside])
    assert len(read_all(DEMO, end=0.1)[2]) == 3  # frames 0-2


@pytest.mark.parametrize("args, error, message", [
    (dict(start=2.5), MediaError, r"the time range \[2.5 s, end\) holds no frame of .*single_face.mp4 \(it lasts 2.400 s\)"),
    (dict(start=-1.0), FexaError, "start must be >= 0 seconds, got -1.0"),
    (dict(start=1.0, end=1.0), FexaError, r"end must be after start \(1 s\), got 1.0"),
    (dict(end=float("nan")), FexaError, "end must be a finite number of seconds, got nan"),
])
def test_a_time_range_outside_the_input_is_refused(args, error, message):
    with pytest.raises(error, match=message):
        Media(DEMO, **args)


def test_a_time_range_seeks_instead_of_decoding_from_the_start(tmp_path, monkeypatch):
    """mpeg4 at 30 fps has a keyframe every 12 frames (0.4 s): [5, 6) is decoded from the keyframe
    at 4.8 s (frame 144), not from the file's start, and gives the full decode's frames."""
    import av

    clip = np.concatenate([read_all(DEMO)[1]] * 3)
    path = write_video(tmp_path / "gop12.mp4", clip, fps=30, codec="mpeg4")
    _, frames, times = read_all(path)
    m = Media(path, start=5.0, end=6.0)
    demuxed: list[int] = []
    real_open = av.open

    class Counted:
        """A container recording the pts of the packets demuxed from it."""

        def __init__(self, *args, **kwargs):
            self.container = real_open(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.container, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.container.close()

        def demux(self, *args):
            for p in self.container.demux(*args):
                demuxed.append(p.pts)
                yield p

    monkeypatch.setattr(av, "open", Counted)
    got = list(m.frames())
    inside = (times >= 5.0) & (times < 6.0)
    assert m.info.num_frames == len(got) == inside.sum() == 30
    assert [fr.time for fr in got] == times[inside].tolist()
    np.testing.assert_array_equal(np.stack([fr.rgb for fr in got]), frames[inside])
    first = min(p for p in demuxed if p is not None)
    assert first == 144 * 512 and len(demuxed) < 60, (first, len(demuxed))  # 4.8 s in 1/15360 s; 216 in all


def test_a_time_range_of_a_frame_folder_and_not_of_an_image(tmp_path):
    for i in range(10):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(tmp_path / f"f{i:02d}.png")
    info, rgb, t = read_all(tmp_path, fps=5, start=0.4, end=1.2)
    assert (info.num_frames, info.duration) == (4, pytest.approx(0.8)) and list(rgb[:, 0, 0, 0]) == [40, 60, 80, 100]
    assert t.tolist() == [2 / 5, 3 / 5, 4 / 5, 5 / 5]
    with pytest.raises(MediaError, match=r"time range \[0.5 s, end\) needs a video or a frame folder, not a still image"):
        Media(tmp_path / "f00.png", start=0.5)


def test_shared_clips_time_ranges_equal_their_full_decodes():
    """Clips with several keyframes and B-frames (h264 with a keyframe every 3 s, hevc .mov at a varying
    rate): a range inside equals the full decode there, and its frame count is the one decoded."""
    for rel, start, end in [("pyfeat_test_media/WolfgangLanger_Pexels.mp4", 6.5, 7.5),
                            ("pyfeat_test_media/face_noface.mov", 3.5, 4.5)]:
        path = shared_file(rel)
        _, frames, times = read_all(path)
        info, rgb, t = read_all(path, start=start, end=end)
        inside = (times >= start) & (times < end)
        assert t.tolist() == times[inside].tolist() and info.num_frames == inside.sum() == 24, rel
        np.testing.assert_array_equal(rgb, frames[inside])
