"""Read videos, images and folders of frames as RGB uint8 frames with timestamps.

Videos are decoded with PyAV (rotation metadata honoured, timestamps kept so variable frame rate
survives; decoding goes on past damaged packets, and what was lost is counted); images with Pillow
(EXIF orientation honoured). Grayscale, palette, alpha and 16-bit inputs are all converted to 8-bit
RGB. A video whose picture size changes mid-stream is scaled to its first frame's size.

A file's kind comes from its extension, or, when that is missing or unknown, from its content
(Pillow recognises an image, PyAV finds a video stream). An image larger than
``IMAGE_PIXEL_LIMIT`` pixels is refused from its header, before its pixels are decoded. A frame of
a frame folder that cannot be read is skipped and named in ``Media.decode_error``; the other
frames keep their times (index / fps). ``Media(path, start=, end=)`` reads only the frames whose
time t (seconds from the input's first frame) has start <= t < end: times stay the input's, and a
video is entered at the keyframe before ``start`` rather than decoded from its beginning.
"""

from __future__ import annotations

import math
import queue
import re
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fexa.errors import FexaError, MediaError
from fexa.io.fingerprint import check_readable

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".wmv", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp", ".pgm", ".ppm"})
DEFAULT_FRAMES_FPS = 30.0
# Pillow's own refusal threshold (2 x its default Image.MAX_IMAGE_PIXELS, 89,478,485): every image
# that decoded before still does (a 100-megapixel camera photo), while a larger one, 0.5 GB of RGB
# and far more detail than a face analysis uses, is refused from its header instead of stopping
# the batch with Pillow's DecompressionBombError.
IMAGE_PIXEL_LIMIT = 178_956_970


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
    duration: float = 0.0  # seconds the frames (in the time range) cover; 0 for an image or when unknown
    start: float = 0.0  # the time range's start (seconds from the input's first frame)


@dataclass(frozen=True)
class Frame:
    index: int  # counted from 0 at the first frame read (the track's frame index)
    time: float  # seconds from the input's first frame (a time range keeps them)
    rgb: np.ndarray  # [H, W, 3] uint8


def natural_key(name: str) -> list:
    """Sort key so that frame_2.jpg comes before frame_10.jpg."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def image_header(path: Path) -> tuple[str, int, int] | None:
    """(format, width, height) from an image file's header, or None when no Pillow format
    recognises it. No pixels are decoded, and, unlike ``Image.open``, an image too large for
    Pillow's decompression-bomb check still gives its size (so the refusal can state it)."""
    Image.init()
    try:
        fp = open(path, "rb")
    except OSError:
        return None
    with fp:
        prefix = fp.read(16)
        for name in Image.ID:
            factory, accept = Image.OPEN[name]
            try:
                claimed = accept(prefix) if accept else True  # a str is a warning: not this format
                if not claimed or isinstance(claimed, str):
                    continue
                fp.seek(0)
                im = factory(fp, str(path))
            except (SyntaxError, IndexError, TypeError, ValueError, EOFError, OSError, struct.error):
                continue  # not this format
            return name, im.size[0], im.size[1]
    return None


def _has_video_stream(path: Path) -> bool:
    """Whether PyAV opens ``path`` as a container with a video stream."""
    try:
        with av.open(str(path)) as c:
            return bool(c.streams.video)
    except (av.FFmpegError, OSError):
        return False


def media_kind(path: Path) -> str:
    """Classify a path as video, image or frames folder, raising MediaError if it is none. A file
    whose extension is missing or unknown is classified by its content."""
    check_readable(path)
    if path.is_dir():
        return "frames"
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if path.stat().st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    if image_header(path):
        return "image"
    if _has_video_stream(path):
        return "video"
    raise MediaError(f"unsupported file type {ext or '(no extension)'!r}: by its content neither an image "
                     f"nor a video: {path}")


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
    (read from the headers of up to ``SEQUENCE_SIZE_CHECKS`` evenly spaced files; an unreadable
    file among them is left to ``Media``, which skips it as a lost frame). Identity is not checked:
    numbered photos of one size from different people need ``--folder-as images``."""
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
    headers = [image_header(files[i]) for i in picks]
    sizes = {h[1:] for h in headers if h}
    if not sizes:
        return "no image among them is readable"
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


class UnreadableImage(MediaError):
    """An image file that cannot be decoded; ``reason`` says why without naming the file."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot read image {path}: {reason}")
        self.reason = reason


def read_image(path: Path) -> np.ndarray:
    """One image file -> HxWx3 uint8 RGB, EXIF orientation applied. An image of more than
    ``IMAGE_PIXEL_LIMIT`` pixels is refused from its header, before its pixels are decoded."""
    header = image_header(path)
    if header and header[1] * header[2] > IMAGE_PIXEL_LIMIT:
        raise UnreadableImage(path, f"image too large: {header[1]} x {header[2]} pixels, the limit is "
                                    f"{IMAGE_PIXEL_LIMIT:,} pixels (Pillow's decompression-bomb limit)")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return to_rgb8(np.array(im).astype(np.uint16 if im.mode.startswith("I;16") else np.int64))
            if im.mode != "RGB":
                im = im.convert("RGBA" if im.mode in ("P", "LA", "PA") else "RGB").convert("RGB")
            return np.ascontiguousarray(np.array(im))
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not an image Pillow can identify") from None
    except (OSError, ValueError) as e:
        raise UnreadableImage(path, str(e)) from None


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


def check_range(start: float | None, end: float | None) -> tuple[float, float]:
    """A time range in seconds as (start, end): 0 and infinity where not given; start >= 0 and
    end > start, or a FexaError naming the argument and its value."""
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (isinstance(value, (int, float, np.number)) and math.isfinite(value)):
            raise FexaError(f"{name} must be a finite number of seconds, got {value!r}")
    lo = 0.0 if start is None else float(start)
    hi = math.inf if end is None else float(end)
    if lo < 0:
        raise FexaError(f"start must be >= 0 seconds, got {start!r}")
    if hi <= lo:
        raise FexaError(f"end must be after start ({lo:g} s), got {end!r}")
    return lo, hi


class Media:
    """An opened media source: ``info`` plus ``frames()`` to iterate over decoded frames.

    ``start``/``end`` (seconds from the input's first frame) keep only the frames with
    start <= time < end; ``info`` then describes that range. A still image takes no range."""

    def __init__(self, path: str | Path, fps: float | None = None, start: float | None = None,
                 end: float | None = None):
        self.path = Path(path)
        self.kind = media_kind(self.path)
        self.start, self.end = check_range(start, end)
        self._ranged = start is not None or end is not None
        if self._ranged and self.kind == "image":
            raise MediaError(f"a time range {self._range_text()} needs a video or a frame folder, "
                             f"not a still image: {self.path}")
        self._fps_override = fps
        self.decode_error: str | None = None  # set when a damaged video lost frames or ended early
        self.damaged_packets = 0  # packets the decoder rejected (skipped)
        self.frames_decoded = 0  # set by frames()
        self.notes: list[str] = []  # what was adapted while decoding (e.g. picture size changes)
        self._t0: float | None = None  # a video's first frame's time in its file (None: no timestamps)
        if self.kind == "frames":
            self._files = list_frame_files(self.path)
            if not self._files:
                raise MediaError(f"directory has no image files: {self.path}")
        self.info = self._probe()

    def _range_text(self) -> str:
        """The time range as messages name it: ``[0.5 s, 1.5 s)``, ``[12 s, end)``."""
        return f"[{self.start:g} s, " + (f"{self.end:g} s)" if math.isfinite(self.end) else "end)")

    def _in_range(self, times: np.ndarray, duration: float) -> tuple[np.ndarray, float]:
        """Which of the (expected) frame times ``times`` lie in the time range, and the seconds
        of it that an input lasting ``duration`` seconds (0: unknown) covers; a range that holds
        none of them, or starts at or after the input's end, is refused."""
        inside = (times >= self.start) & (times < self.end)
        if self._ranged and ((len(times) and not inside.any()) or (duration and self.start >= duration)):
            raise MediaError(f"the time range {self._range_text()} holds no frame of {self.path} "
                             f"(it lasts {duration:.3f} s)")
        return inside, (min(self.end, duration) - self.start if duration else 0.0)

    def _first_image(self) -> np.ndarray:
        """The first readable image of a frame folder (unreadable ones are lost frames)."""
        first_error = None
        for f in self._files:
            try:
                return read_image(f)
            except UnreadableImage as e:
                first_error = first_error or e
        raise MediaError(f"none of the {len(self._files)} image files is readable (the first: {first_error}): "
                         f"{self.path}")

    def _probe(self) -> MediaInfo:
        if self.kind == "image":
            rgb = read_image(self.path)
            return MediaInfo(self.path, "image", rgb.shape[1], rgb.shape[0], self._fps_override or 0.0, 1)
        if self.kind == "frames":
            rgb = self._first_image()
            fps = self._fps_override or DEFAULT_FRAMES_FPS
            n = len(self._files)
            inside, seconds = self._in_range(np.arange(n) / fps, n / fps)
            self._picked = np.flatnonzero(inside).tolist()  # indices of the files in the range
            return MediaInfo(self.path, "frames", rgb.shape[1], rgb.shape[0], fps, len(self._picked),
                             duration=seconds, start=self.start)
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
                self._t0 = first.time
                rotation = check_rotation(first.rotation or 0, self.path)
                w, h = (first.height, first.width) if rotation % 180 else (first.width, first.height)
                n = _expected_frames(s)
                duration = (float(s.duration * s.time_base) if s.duration and s.time_base
                            else (c.duration or 0) / av.time_base)
                inside, seconds = self._in_range(np.arange(n if fps else 0) / (fps or 1.0), duration)
                if self._ranged:
                    n = self._frames_in_range(int(inside.sum()))
                return MediaInfo(self.path, "video", w, h, self._fps_override or fps, n, rotation, seconds, self.start)
        except av.FFmpegError as e:
            raise MediaError(f"not a readable video: {self.path} ({e.strerror or e})") from None

    def _frames_in_range(self, estimate: int) -> int:
        """The frames a video holds in the time range: its packets there, demuxed (not decoded)
        from the keyframe before the start; ``estimate`` (at the average frame rate) where the
        packets lack timestamps, the seek finds no keyframe at or before the start, or the
        container fails."""
        if self._t0 is None:
            return estimate
        count, started, keys_past_end = 0, self.start == 0, 0
        try:
            with av.open(str(self.path)) as c:
                s = c.streams.video[0]
                if not started:
                    c.seek(int((self._t0 + self.start) / s.time_base), stream=s)
                for p in c.demux(s):
                    if not p.size:
                        continue  # the demuxer's end-of-stream marker
                    if p.pts is None:
                        return estimate
                    t = float(p.pts * s.time_base) - self._t0
                    if not started:  # decoding after a seek starts at a keyframe
                        if not p.is_keyframe:
                            continue
                        if t > self.start:
                            return estimate
                        started = True
                    keys_past_end += p.is_keyframe and t >= self.end
                    if keys_past_end == 2 or (p.dts is not None and float(p.dts * s.time_base) - self._t0 >= self.end):
                        break  # every later packet is shown at or after the end
                    count += self.start <= t < self.end
        except av.FFmpegError:
            return estimate
        return count if started else estimate

    def frames(self) -> Iterator[Frame]:
        """Decode every frame (of the time range) in display order."""
        self.frames_decoded, self.damaged_packets, self.decode_error, self.notes = 0, 0, None, []
        if self.kind == "image":
            with Image.open(self.path) as im:
                if getattr(im, "n_frames", 1) > 1:
                    self.notes.append(f"an image with {im.n_frames} frames (animated): only its first is used")
            self.frames_decoded = 1
            yield Frame(0, 0.0, read_image(self.path))
        elif self.kind == "frames":
            yield from self._folder_frames()
        else:
            yield from self._video_frames()

    def _folder_frames(self) -> Iterator[Frame]:
        """A frame folder's images (in the range) at times index / fps. An unreadable image is a
        lost frame: skipped, the others keep their times, and ``decode_error`` names it."""
        size = (self.info.height, self.info.width)
        lost: list[tuple[str, str]] = []
        for i in self._picked:
            f = self._files[i]
            try:
                rgb = read_image(f)
            except UnreadableImage as e:
                lost.append((f.name, e.reason))
                continue
            if rgb.shape[:2] != size:
                raise MediaError(f"frame {f.name} is {rgb.shape[1]}x{rgb.shape[0]}, "
                                 f"others are {size[1]}x{size[0]}: {self.path}")
            self.frames_decoded += 1
            yield Frame(self.frames_decoded - 1, i / self.info.fps, rgb)
        if len(lost) == 1:
            self.decode_error = f"{lost[0][0]} could not be read ({lost[0][1]})"
        elif lost:
            named = ", ".join(f"{name} ({why})" for name, why in lost[:5])
            self.decode_error = f"{len(lost)} frames could not be read: {named}" + (", ..." if len(lost) > 5 else "")
        if self.frames_decoded == 0:
            raise MediaError(f"no frame in {self._range_text()} could be read ({self.decode_error}): {self.path}")

    def _decoded(self, seek_to: float | None = None) -> Iterator[av.VideoFrame]:
        """Decoded frames, packet by packet: a packet the decoder rejects is skipped and counted
        (players do the same), so damage mid-file costs only the frames it touches. ``seek_to``
        (seconds in the file's timeline): start at the keyframe the container seeks to for it."""
        last_error = ""
        try:
            with av.open(str(self.path)) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                started = seek_to is None
                if not started:
                    c.seek(int(seek_to / s.time_base), stream=s)
                for packet in c.demux(s):
                    started = started or packet.is_keyframe
                    if not started:
                        continue  # a seek can land between keyframes: decoding starts at the next one
                    if packet.is_corrupt:  # cut short (a truncated file): frame threads would drop the frames in flight
                        self.damaged_packets += 1
                        last_error = "a packet cut short or flagged corrupt by the demuxer"
                        continue
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

    def _timed(self) -> Iterator[tuple[float, av.VideoFrame]]:
        """(seconds from the first frame, frame) for the frames in the time range. With a start,
        decoding begins at the keyframe before it (frames from there to the start are decoded and
        dropped); where the container's seek lands after the start (or nowhere), it begins again at
        the file's start, so no frame of the range is missed."""
        t0 = self._t0 or 0.0
        seek = self.start > 0 and self._t0 is not None
        while True:
            self.damaged_packets, count = 0, 0
            for f in self._decoded(t0 + self.start if seek else None):
                t = f.time - t0 if f.time is not None else count / max(self.info.fps, 1e-6)
                if seek and count == 0 and (f.time is None or t > self.start):
                    break
                count += 1
                if t >= self.end:
                    return
                if t >= self.start:
                    yield t, f
            else:
                if count or not seek:
                    return
            seek = False

    def _video_frames(self) -> Iterator[Frame]:
        size = (self.info.height, self.info.width)
        for t, f in self._timed():
            n = self.frames_decoded
            rgb = _rotate(_frame_rgb8(f), check_rotation(f.rotation or 0, self.path))
            if rgb.shape[:2] != size:
                if not self.notes:
                    self.notes.append(f"picture size changes at frame {n} ({rgb.shape[1]}x{rgb.shape[0]} instead of "
                                      f"{size[1]}x{size[0]}): such frames are scaled to {size[1]}x{size[0]}")
                rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            self.frames_decoded += 1
            yield Frame(n, float(t), rgb)
        if self.frames_decoded == 0:
            if self._ranged:
                raise MediaError(f"the time range {self._range_text()} holds no decodable frame of {self.path}")
            raise MediaError(f"video has no decodable frames: {self.path}")


def read_all(path: str | Path, fps: float | None = None, start: float | None = None,
             end: float | None = None) -> tuple[MediaInfo, np.ndarray, np.ndarray]:
    """Convenience: (info, frames [T,H,W,3] uint8, times [T] seconds) of ``Media(path, fps, start, end)``."""
    m = Media(path, fps, start, end)
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
