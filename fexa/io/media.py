"""Read videos, images and folders of frames as RGB uint8 frames with timestamps.

Videos are decoded with PyAV (rotation metadata honoured, timestamps kept so variable frame rate
survives; decoding goes on past damaged packets, and what was lost is counted); images with Pillow
(EXIF orientation honoured). Grayscale, palette, alpha and 16-bit inputs are all converted to 8-bit
RGB. A video whose picture size changes mid-stream is scaled to its first frame's size.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fexa.errors import MediaError

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".wmv", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm"})
DEFAULT_FRAMES_FPS = 30.0


@dataclass(frozen=True)
class MediaInfo:
    """What a media source is, before decoding all of it."""

    path: Path
    kind: str  # "video" | "image" | "frames"
    width: int
    height: int
    fps: float
    num_frames: int  # exact for images/frames; what the container promises for videos (0 if unknown)
    rotation: int = 0  # degrees the stored picture is turned to display upright


@dataclass(frozen=True)
class Frame:
    index: int
    time: float  # seconds from the start
    rgb: np.ndarray  # [H, W, 3] uint8


def natural_key(name: str) -> list:
    """Sort key so that frame_2.jpg comes before frame_10.jpg."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def media_kind(path: Path) -> str:
    """Classify a path as video, image or frames folder, raising MediaError if it is none."""
    if not path.exists():
        if path.is_symlink():
            raise MediaError(f"broken symbolic link (its target {os.readlink(path)} does not exist): {path}")
        raise MediaError(f"no such file or directory: {path}")
    if path.is_dir():
        return "frames"
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    raise MediaError(f"unsupported file type {ext or '(none)'!r}: {path}")


def list_frame_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, naturally sorted."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: natural_key(p.name))


_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")
SEQUENCE_SIZE_CHECKS = 50  # images whose size is read (evenly spaced) to decide a folder is one video


def frame_sequence(files: list[Path]) -> str:
    """Why the images ``files`` (of one folder) are not the frames of one video, or "" if they
    are: at least two, every name the same text around one number (``frame_0001.png``,
    ``00042.jpg``), the numbers running in regular steps (more than half the steps between
    consecutive numbers equal: every frame, or every k-th, with some left out), and one pixel size
    (read from the headers of up to ``SEQUENCE_SIZE_CHECKS`` evenly spaced files). Identity is not
    checked: numbered photos of one size from different people need ``--folder-as images``."""
    if len(files) < 2:
        return "a single image"
    parts = [_NUMBERED.match(p.stem) for p in files]
    if not all(parts):
        return f"{next(p.name for p, m in zip(files, parts) if not m)} has no frame number"
    if len({(m[1], m[3], p.suffix.lower()) for p, m in zip(files, parts)}) > 1:
        return "the names differ beyond a frame number"
    numbers = np.sort([int(m[2]) for m in parts])
    steps = np.diff(numbers)
    if (steps == 0).any():
        return "frame numbers repeat"
    if len(steps) > 1 and np.mean(steps == np.bincount(steps).argmax()) <= 0.5:
        return "the numbers do not run in regular steps (ids, not frame numbers)"
    picks = sorted({round(i) for i in np.linspace(0, len(files) - 1, min(len(files), SEQUENCE_SIZE_CHECKS))})
    sizes = set()
    for i in picks:
        try:
            with Image.open(files[i]) as im:
                sizes.add(im.size)
        except OSError:
            return f"{files[i].name} is not a readable image"
    return "" if len(sizes) == 1 else f"the images differ in size ({len(sizes)} sizes)"


def to_rgb8(array: np.ndarray) -> np.ndarray:
    """Any HxW, HxWx1, HxWx3 or HxWx4 array of uint8/uint16/float -> contiguous HxWx3 uint8."""
    a = np.asarray(array)
    if a.dtype == np.uint16 or (a.dtype.kind in "iu" and a.max(initial=0) > 255):
        a = (a.astype(np.float32) / 257.0).round()
    elif a.dtype.kind == "f":
        a = a * 255.0 if a.max(initial=0) <= 1.0 else a
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def read_image(path: Path) -> np.ndarray:
    """One image file -> HxWx3 uint8 RGB, EXIF orientation applied."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return to_rgb8(np.array(im).astype(np.uint16 if im.mode.startswith("I;16") else np.int64))
            if im.mode != "RGB":
                im = im.convert("RGBA" if im.mode in ("P", "LA", "PA") else "RGB").convert("RGB")
            return np.ascontiguousarray(np.array(im))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MediaError(f"cannot read image {path}: {e}") from None


def check_rotation(value: float, path: Path) -> int:
    """The display rotation of a video as a multiple of 90 degrees; anything else (a corrupt
    display matrix reads -2147483648) is an error naming the value."""
    if value in (0, 90, 180, 270, -90, -180, -270):
        return int(value)
    raise MediaError(f"impossible rotation metadata ({value} degrees; expected a multiple of 90): {path}")


def _rotate(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a frame by ``rotation`` degrees counter-clockwise (PyAV's display-matrix convention)."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def _frame_rgb8(frame: av.VideoFrame) -> np.ndarray:
    """Decoded frame -> HxWx3 uint8; deep (10-16 bit) formats are converted at 16 bits and rounded
    here, since swscale's direct 8-bit path truncates them."""
    if max(c.bits for c in frame.format.components) > 8:
        return to_rgb8(frame.to_ndarray(format="rgb48le"))
    return frame.to_ndarray(format="rgb24")


def _expected_frames(s: av.video.stream.VideoStream) -> int:
    """Frames the container promises: its frame count, or its duration x frame rate where that is
    smaller (edit lists can make the count include frames never shown); 0 when unknown."""
    counts = [int(s.frames or 0)]
    if s.duration and s.time_base and s.average_rate:
        counts.append(int(round(float(s.duration * s.time_base * s.average_rate))))
    counts = [c for c in counts if c > 0]
    return min(counts) if counts else 0


class Media:
    """An opened media source: ``info`` plus ``frames()`` to iterate over decoded frames."""

    def __init__(self, path: str | Path, fps: float | None = None):
        self.path = Path(path)
        self.kind = media_kind(self.path)
        self._fps_override = fps
        self.decode_error: str | None = None  # set when a damaged video lost frames or ended early
        self.damaged_packets = 0  # packets the decoder rejected (skipped)
        self.frames_decoded = 0  # set by frames()
        self.notes: list[str] = []  # what was adapted while decoding (e.g. picture size changes)
        if self.kind == "frames":
            self._files = list_frame_files(self.path)
            if not self._files:
                raise MediaError(f"directory has no image files: {self.path}")
        self.info = self._probe()

    def _probe(self) -> MediaInfo:
        if self.kind == "image":
            rgb = read_image(self.path)
            return MediaInfo(self.path, "image", rgb.shape[1], rgb.shape[0], self._fps_override or 0.0, 1)
        if self.kind == "frames":
            rgb = read_image(self._files[0])
            fps = self._fps_override or DEFAULT_FRAMES_FPS
            return MediaInfo(self.path, "frames", rgb.shape[1], rgb.shape[0], fps, len(self._files))
        if self.path.stat().st_size == 0:
            raise MediaError(f"empty file (0 bytes): {self.path}")
        try:
            with av.open(str(self.path)) as c:
                if not c.streams.video:
                    raise MediaError(f"no video stream in {self.path}")
                s = c.streams.video[0]
                rate = s.average_rate or s.guessed_rate or s.base_rate
                fps = float(rate) if rate else 0.0
                first = next(c.decode(s), None)
                if first is None:
                    raise MediaError(f"video has no decodable frames: {self.path}")
                rotation = check_rotation(first.rotation or 0, self.path)
                w, h = (first.height, first.width) if rotation % 180 else (first.width, first.height)
                return MediaInfo(self.path, "video", w, h, self._fps_override or fps, _expected_frames(s), rotation)
        except av.FFmpegError as e:
            raise MediaError(f"not a readable video: {self.path} ({e.strerror or e})") from None

    def frames(self) -> Iterator[Frame]:
        """Decode every frame in display order."""
        self.frames_decoded, self.damaged_packets, self.decode_error, self.notes = 0, 0, None, []
        if self.kind == "image":
            with Image.open(self.path) as im:
                if getattr(im, "n_frames", 1) > 1:
                    self.notes.append(f"an image with {im.n_frames} frames (animated): only its first is used")
            self.frames_decoded = 1
            yield Frame(0, 0.0, read_image(self.path))
        elif self.kind == "frames":
            first_shape = None
            for i, f in enumerate(self._files):
                rgb = read_image(f)
                self.frames_decoded += 1
                if first_shape is None:
                    first_shape = rgb.shape
                elif rgb.shape != first_shape:
                    raise MediaError(f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                     f"others are {first_shape[1]}x{first_shape[0]}: {self.path}")
                yield Frame(i, i / self.info.fps, rgb)
        else:
            yield from self._video_frames()

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Decoded frames, packet by packet: a packet the decoder rejects is skipped and counted
        (players do the same), so damage mid-file costs only the frames it touches."""
        last_error = ""
        try:
            with av.open(str(self.path)) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                for packet in c.demux(s):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as e:
                        self.damaged_packets += 1
                        last_error = e.strerror or str(e)
                        continue
                    yield from frames
        except av.FFmpegError as e:  # the container itself is unreadable from here on
            if self.frames_decoded == 0:
                raise MediaError(f"not a readable video: {self.path} ({e.strerror or e})") from None
            self.decode_error = f"decoding stopped after {self.frames_decoded} frames: {e.strerror or e}"
        if self.damaged_packets and not self.decode_error:
            self.decode_error = f"{self.damaged_packets} damaged packet(s) skipped ({last_error})"

    def _video_frames(self) -> Iterator[Frame]:
        t0 = None
        size = (self.info.height, self.info.width)
        for f in self._decoded():
            n = self.frames_decoded
            t = f.time if f.time is not None else n / max(self.info.fps, 1e-6)
            t0 = t if t0 is None else t0
            rgb = _rotate(_frame_rgb8(f), check_rotation(f.rotation or 0, self.path))
            if rgb.shape[:2] != size:
                if not self.notes:
                    self.notes.append(f"picture size changes at frame {n} ({rgb.shape[1]}x{rgb.shape[0]} instead of "
                                      f"{size[1]}x{size[0]}): such frames are scaled to {size[1]}x{size[0]}")
                rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            self.frames_decoded += 1
            yield Frame(n, float(t - t0), rgb)
        if self.frames_decoded == 0:
            raise MediaError(f"video has no decodable frames: {self.path}")


def read_all(path: str | Path, fps: float | None = None) -> tuple[MediaInfo, np.ndarray, np.ndarray]:
    """Convenience: (info, frames [T,H,W,3] uint8, times [T] seconds)."""
    m = Media(path, fps)
    frames, times = [], []
    for fr in m.frames():
        frames.append(fr.rgb)
        times.append(fr.time)
    return m.info, np.stack(frames), np.asarray(times)


def prefetched(frames: Iterator[Frame], depth: int = 16) -> Iterator[Frame]:
    """Decode ahead in a background thread (PyAV releases the GIL), so decoding overlaps the
    consumer's work. Exceptions from the decoder are re-raised in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for fr in frames:
                if stop.is_set():
                    return
                q.put(fr)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
