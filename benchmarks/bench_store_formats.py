"""Candidate storage formats for the training store, measured on one extract entry's crops.

For each candidate: bytes per 256x256 frame, error against the decoded crops (what training used
before), and CPU time to read one random frame (one thread, median of several passes):

- JPEG frames at qualities 85/90/95, decoded by simplejpeg (libjpeg-turbo), OpenCV, Pillow and
  torchvision.io.decode_jpeg (one at a time, and a list of 16);
- raw uint8 frames in a memory-mapped file;
- the entry's crops.mp4 re-encoded with a 16-frame GOP and today's GOP, read by torchcodec
  with frame-accurate seeking.

    python benchmarks/bench_store_formats.py CACHE_ENTRY [--frames 300] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image

from fexa.io.media import read_all


def _median_ms(fn, items, passes: int = 3) -> float:
    runs = []
    for _ in range(passes):
        t0 = time.perf_counter()
        for x in items:
            fn(x)
        runs.append((time.perf_counter() - t0) * 1e3 / len(items))
    return statistics.median(runs)


def _encode_mp4(frames: np.ndarray, path: Path, gop: int) -> None:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"crf": "18", "g": str(gop), "preset": "medium"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(s.encode())


def _pyav_frames(container, indices) -> list[np.ndarray]:
    """Frames ``indices`` (consecutive, ascending) by seeking to the keyframe before the first."""
    s = container.streams.video[0]
    step = 1 / (float(s.average_rate) * float(s.time_base))
    first, last = min(indices), max(indices)
    container.seek(int(first * step), stream=s, backward=True)
    out = []
    for f in container.decode(s):
        i = int(round(f.pts / step))
        if i >= first:
            out.append(f.to_ndarray(format="rgb24"))
        if i >= last:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("entry", type=Path)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import simplejpeg
    import torchvision.io as tio

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    crops = read_all(a.entry / "crops.mp4")[1][: a.frames]
    crops = crops[crops.reshape(len(crops), -1).max(axis=1) > 0]  # frames with a face
    rng = np.random.default_rng(0)
    order = rng.permutation(len(crops))
    rows = []
    for q, sub in ((85, "420"), (90, "420"), (95, "420"), (90, "444"), (95, "444")):
        blobs = [simplejpeg.encode_jpeg(f, quality=q, colorspace="RGB", colorsubsampling=sub) for f in crops]
        dec = np.stack([simplejpeg.decode_jpeg(b) for b in blobs])
        err = np.abs(dec.astype(np.int16) - crops.astype(np.int16))
        mse = float((err.astype(np.float64) ** 2).mean())
        pick = [blobs[i] for i in order]
        tensors = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in pick]
        row = {"format": f"jpeg q{q} {sub}", "kb_per_frame": float(np.mean([len(b) for b in blobs]) / 1024),
               "mean_abs_err": float(err.mean()), "p99_abs_err": float(np.percentile(err, 99)),
               "psnr_db": 10 * np.log10(255**2 / mse),
               "encode_ms": _median_ms(lambda f, q=q, sub=sub: simplejpeg.encode_jpeg(f, q, "RGB", sub), crops[:100]),
               "simplejpeg_ms": _median_ms(simplejpeg.decode_jpeg, pick),
               "opencv_ms": _median_ms(lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), pick),
               "pillow_ms": _median_ms(lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")), pick),
               "torchvision_ms": _median_ms(tio.decode_jpeg, tensors),
               "torchvision_list16_ms": _median_ms(tio.decode_jpeg, [tensors[i:i + 16]
                                                                        for i in range(0, len(tensors) - 15, 16)]) / 16}
        rows.append(row)
    with tempfile.TemporaryDirectory() as tmp:
        raw = np.lib.format.open_memmap(Path(tmp) / "raw.npy", "w+", np.uint8, crops.shape)
        raw[:] = crops
        raw.flush()
        mm = np.load(Path(tmp) / "raw.npy", mmap_mode="r")
        rows.append({"format": "raw uint8 memmap", "kb_per_frame": crops[0].nbytes / 1024, "mean_abs_err": 0.0,
                     "read_ms": _median_ms(lambda i: np.array(mm[i]), order)})
        for gop in (16, 250):
            path = Path(tmp) / f"gop{gop}.mp4"
            _encode_mp4(crops, path, gop)
            kb = path.stat().st_size / len(crops) / 1024
            with av.open(str(path)) as c:
                c.streams.video[0].thread_type, c.streams.video[0].thread_count = "SLICE", 1
                rows.append({"format": f"h264 crf18 gop{gop} (PyAV seek)", "kb_per_frame": kb,
                             "read_ms": _median_ms(lambda i: _pyav_frames(c, [int(i)]), order[:60]),
                             "clip16_ms": _median_ms(lambda i: _pyav_frames(c, range(int(i), int(i) + 16)), order[:20])})
            try:
                from torchcodec.decoders import VideoDecoder

                d = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1)
            except (ImportError, RuntimeError, OSError) as e:  # needs the system's FFmpeg libraries
                rows.append({"format": f"h264 gop{gop} (torchcodec)", "unavailable": str(e).splitlines()[0][:120]})
                continue
            last = len(crops) - 1
            rows.append({"format": f"h264 crf18 gop{gop} (torchcodec seek)", "kb_per_frame": kb,
                         "read_ms": _median_ms(lambda i, d=d: d.get_frame_at(int(i)), order[:60]),
                         "clip16_ms": _median_ms(lambda i, d=d, n=last: d.get_frames_at([min(int(i) + k, n)
                                                                                         for k in range(16)]), order[:20])})
    if a.json:
        print(json.dumps({"entry": str(a.entry), "frames": len(crops), "rows": rows}, indent=1))
        return
    print(f"{len(crops)} face frames of {a.entry}")
    for r in rows:
        print(r["format"].ljust(36), "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                               for k, v in r.items() if k != "format"))


if __name__ == "__main__":
    main()
