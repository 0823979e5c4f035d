"""Write RGB frames to an H.264 MP4 with PyAV, encoding in a background thread. The file appears
only when complete (written to a temporary beside it and renamed on success)."""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from fexa.io.atomic import atomic_path

_DONE = object()


class VideoWriter:
    """``with VideoWriter(path, fps) as w: w.write(rgb)``; frame size is taken from the first frame.

    Encoding runs in a background thread (PyAV releases the GIL), so the caller's own work
    overlaps it. Odd sizes are padded by one pixel (yuv420p needs even dimensions). ``crf``: x264's
    quality (0-51, lower is better and larger); ``max_kbps``: a cap on the bitrate (kbit/s, over
    about two seconds), so the file's size has a bound whatever the picture; None: no cap."""

    def __init__(self, path: str | Path, fps: float, crf: int = 18, preset: str = "superfast", queue_size: int = 32,
                 max_kbps: int | None = None):
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0-51, got {crf}")
        if max_kbps is not None and max_kbps <= 0:
            raise ValueError(f"max_kbps must be > 0 or None, got {max_kbps}")
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.options = {"crf": str(crf), "preset": preset}
        if max_kbps is not None:
            self.options.update(maxrate=f"{max_kbps}k", bufsize=f"{2 * max_kbps}k")
        self.frames_written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()

    def __enter__(self) -> "VideoWriter":
        return self

    def write(self, rgb: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(target=self._encode, args=(rgb.shape[0], rgb.shape[1]), daemon=True)
            self._thread.start()
        self._queue.put(np.ascontiguousarray(rgb))
        self.frames_written += 1

    def _encode(self, h: int, w: int) -> None:
        finished = False
        try:
            with av.open(str(self._tmp), mode="w", format="mp4") as container:
                s = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
                s.width, s.height = w + (w % 2), h + (h % 2)
                s.pix_fmt = "yuv420p"
                s.options = self.options
                s.thread_type = "AUTO"
                while (rgb := self._queue.get()) is not _DONE:
                    if rgb.shape[0] != s.height or rgb.shape[1] != s.width:
                        rgb = np.pad(rgb, ((0, s.height - rgb.shape[0]), (0, s.width - rgb.shape[1]), (0, 0)), mode="edge")
                    container.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
                finished = True
                container.mux(s.encode())
        except BaseException as e:  # reported to the caller by write()/close()
            self._error = e
            while not finished and self._queue.get() is not _DONE:  # drain so the producer never blocks
                pass

    def close(self, failed: BaseException | None = None) -> None:
        """Finish encoding and publish the file; with ``failed`` (the caller's error) or an
        encoding error, remove the temporary instead."""
        if self._thread is not None:
            self._queue.put(_DONE)
            self._thread.join()
            self._thread = None
        if self._atomic is not None:
            error = failed or self._error or (None if self.frames_written else ValueError("no frames written"))
            atomic, self._atomic = self._atomic, None
            if error is None:
                atomic.__exit__(None, None, None)
            else:
                atomic.__exit__(type(error), error, error.__traceback__)
        if self._error is not None:
            raise self._error

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)
