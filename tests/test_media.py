import numpy as np
import pytest
from PIL import Image

from conftest import DEMO, write_video
from fexa.errors import MediaError
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


def test_truncated_video_is_an_error_or_keeps_decoded_frames(tmp_path):
    data = DEMO.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    try:
        m = Media(cut)
    except MediaError as e:
        assert "not a readable video" in str(e)
        return
    n = sum(1 for _ in m.frames())
    assert 0 < n < 72 and m.decode_error


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
