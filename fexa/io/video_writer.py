"""Write RGB frames to an H.264 MP4 with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class VideoWriter:
    """``with VideoWriter(path, fps) as w: w.write(rgb)``; frame size is taken from the first frame.

    Odd sizes are padded by one pixel (yuv420p needs even dimensions)."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18, preset: str = "veryfast"):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.crf, self.preset = crf, preset
        self._container = None
        self._stream = None
        self.frames_written = 0

    def __enter__(self) -> "VideoWriter":
        return self

    def _open(self, h: int, w: int) -> None:
        self._container = av.open(str(self.path), mode="w", format="mp4")
        rate = Fraction(self.fps).limit_denominator(1001)
        s = self._container.add_stream("libx264", rate=rate)
        s.width, s.height = w + (w % 2), h + (h % 2)
        s.pix_fmt = "yuv420p"
        s.options = {"crf": str(self.crf), "preset": self.preset}
        s.thread_type = "AUTO"
        self._stream = s

    def write(self, rgb: np.ndarray) -> None:
        if self._container is None:
            self._open(rgb.shape[0], rgb.shape[1])
        s = self._stream
        if rgb.shape[0] != s.height or rgb.shape[1] != s.width:
            rgb = np.pad(rgb, ((0, s.height - rgb.shape[0]), (0, s.width - rgb.shape[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in s.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None

    def __exit__(self, *exc) -> None:
        self.close()
