"""Overlay video: the input with every tracked face box, the subject's landmarks coloured by region,
its head pose, and frames where the face was lost or filled marked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fexa.face.landmarks import REGION_COLORS, get_scheme
from fexa.io.media import Media
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter

LOST_COLOR = (230, 30, 30)
FILLED_COLOR = (255, 160, 0)
SUBJECT_COLOR = (40, 220, 40)
OTHER_COLOR = (170, 170, 170)


def draw_frame(rgb: np.ndarray, track: TrackData, t: int, points: np.ndarray, boxes: np.ndarray | None,
               lines: tuple[str, ...] = ()) -> np.ndarray:
    """Draw frame ``t``'s annotations on a copy of ``rgb``; ``points`` [N, >=2] are the subject's
    landmarks and ``boxes`` [K, 4] every track's box, both in ``rgb``'s pixels; ``lines`` are
    per-frame values written in a panel at the lower left."""
    img = rgb.copy()
    h, w = img.shape[:2]
    unit = max(1, round(min(h, w) / 300))
    font = 0.4 * unit
    if boxes is not None:
        for k, box in enumerate(boxes):
            if not np.isfinite(box).all():
                continue
            tid = int(track.track_ids[k])
            color = SUBJECT_COLOR if tid == track.track_id else OTHER_COLOR
            p0, p1 = tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:])
            cv2.rectangle(img, p0, p1, color, unit + (tid == track.track_id))
            cv2.putText(img, f"id {tid}", (p0[0], max(p0[1] - 4 * unit, 10)), cv2.FONT_HERSHEY_SIMPLEX, font, color,
                        unit, cv2.LINE_AA)
    if track.usable[t]:
        scheme = get_scheme("heatmap73")
        sel = scheme.select(points[None, :, :2], track.layout)[0]
        for (x, y), r in zip(sel, scheme.region_of_point):
            if not (np.isfinite(x) and np.isfinite(y)):  # hidden (a hand over it): no landmark to show
                continue
            color = REGION_COLORS[scheme.region_names[r]]
            cv2.circle(img, (int(round(x)), int(round(y))), unit + 1, color, -1, cv2.LINE_AA)
    status = "FACE LOST" if not track.usable[t] else ("FILLED" if track.filled[t] else "")
    yaw, pitch, roll = track.pose[t]
    text = f"frame {t}  {track.times[t]:.2f}s"
    if np.isfinite(yaw):
        text += f"  yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}"
    cv2.rectangle(img, (0, 0), (w, int(18 * unit)), (0, 0, 0), -1)
    cv2.putText(img, text, (4, int(13 * unit)), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255), unit, cv2.LINE_AA)
    if lines:
        line_h = int(14 * unit)
        top = h - int(26 * unit) - line_h * len(lines)
        width = int(max(len(x) for x in lines) * 7.5 * unit) + 8
        panel = img[top:h - int(24 * unit), :width]
        panel[:] = (0.45 * panel).astype(img.dtype)  # darkened, still see-through
        for i, line in enumerate(lines):
            cv2.putText(img, line, (4, top + (i + 1) * line_h - 3 * unit), cv2.FONT_HERSHEY_SIMPLEX, font,
                        (255, 255, 255), unit, cv2.LINE_AA)
    if status:
        color = LOST_COLOR if status == "FACE LOST" else FILLED_COLOR
        cv2.rectangle(img, (0, h - int(22 * unit)), (w, h), color, -1)
        cv2.putText(img, status, (4, h - int(6 * unit)), cv2.FONT_HERSHEY_SIMPLEX, 1.5 * font, (255, 255, 255),
                    unit + 1, cv2.LINE_AA)
    return img


def _value_lines(values: pd.DataFrame | None, t: int) -> tuple[str, ...]:
    if values is None:
        return ()
    row = values.iloc[t]
    return tuple(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if pd.notna(v))


def write_overlay(track: TrackData, source: str | Path, out: str | Path, use_crops: bool = False,
                  progress: bool = True, values: pd.DataFrame | None = None) -> Path:
    """Render the overlay of ``source`` (the input video, or the entry's crops.mp4 when
    ``use_crops``) to ``out`` (MP4); ``values`` (one row per frame, numeric or text columns) are
    written on each frame."""
    out = Path(out)
    media = Media(source)
    points = track.points_crop if use_crops else track.points
    with VideoWriter(out, track.fps or 25.0) as w:
        for fr in tqdm(media.frames(), total=track.num_frames, desc="overlay", unit="frame", leave=False,
                       disable=not progress):
            t = fr.index
            if t >= track.num_frames:
                break
            boxes = None if use_crops else track.track_boxes[t]
            w.write(draw_frame(fr.rgb, track, t, points[t], boxes, _value_lines(values, t)))
    return out
