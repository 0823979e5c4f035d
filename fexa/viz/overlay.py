"""Overlay video: the input with every tracked face box, the subject's landmarks coloured by region,
and beside it a panel with its head pose, per-frame values and whether the face was lost or filled."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from fexa.progress import tqdm

from fexa.face.landmarks import REGION_COLORS, get_layout, get_scheme
from fexa.io.media import Media
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter

LOST_COLOR = (230, 30, 30)
FILLED_COLOR = (255, 160, 0)
SUBJECT_COLOR = (40, 220, 40)
OTHER_COLOR = (170, 170, 170)


PANEL_BG = (24, 24, 24)


def _font(h: int) -> tuple[float, int]:
    """OpenCV font scale and thickness for text on a frame ``h`` pixels high."""
    return 0.45 * h / 360, max(1, round(h / 360))


def panel_width(h: int, longest: str) -> int:
    """Width of the side panel for frames ``h`` high whose longest line is ``longest``."""
    font, unit = _font(h)
    return max(int(0.55 * h), cv2.getTextSize(longest, cv2.FONT_HERSHEY_SIMPLEX, font, unit)[0][0] + 12)


def draw_landmarks(img: np.ndarray, points: np.ndarray, layout: str, radius: int) -> None:
    """Draw the 73 heatmap points of ``points`` [N, >=2] (``layout``, ``img``'s pixels) on ``img``,
    coloured by region; hidden points (NaN: a hand over them) are left out."""
    scheme = get_scheme("heatmap73")
    for (x, y), r in zip(scheme.select(points[None, :, :2], layout)[0], scheme.region_of_point):
        if np.isfinite(x) and np.isfinite(y):
            cv2.circle(img, (int(round(x)), int(round(y))), radius, REGION_COLORS[scheme.region_names[r]], -1,
                       cv2.LINE_AA)


def draw_frame(rgb: np.ndarray, track: TrackData, t: int, points: np.ndarray, boxes: np.ndarray | None,
               lines: tuple[str, ...] = (), width: int | None = None) -> np.ndarray:
    """Frame ``t`` with its annotations: on the picture, every track's box and the subject's
    landmarks (``points`` [N, >=2] and ``boxes`` [K, 4] in ``rgb``'s pixels); beside it, a panel
    with the frame, time, head pose, face status and ``lines`` (per-frame values), so no text
    covers the face. Text is sized by the frame height (readable from 240 to 2160 pixels); the
    panel is ``width`` pixels wide (default: as wide as this frame's text needs)."""
    img = rgb.copy()
    h, w = img.shape[:2]
    font, unit = _font(h)
    if boxes is not None:
        for k, box in enumerate(boxes):
            if not np.isfinite(box).all():
                continue
            tid = int(track.track_ids[k])
            color = SUBJECT_COLOR if tid == track.track_id else OTHER_COLOR
            p0, p1 = tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:])
            cv2.rectangle(img, p0, p1, color, unit + (tid == track.track_id))
            cv2.putText(img, f"face {tid}" + (" (analysed)" if tid == track.track_id else ""),
                        (p0[0], max(p0[1] - 4 * unit, int(12 * unit))), cv2.FONT_HERSHEY_SIMPLEX, font, color, unit,
                        cv2.LINE_AA)
    if track.usable[t]:
        draw_landmarks(img, points, track.layout, unit + 1)
    status = "FACE LOST" if not track.usable[t] else ("FILLED" if track.filled[t] else "")
    yaw, pitch, roll = track.pose[t]
    text = [f"frame {t}", f"time {track.times[t]:.2f} s"]
    if np.isfinite(yaw):
        text.append(f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}")
    text += ["", *lines]
    line_h = int(round(22 * h / 360 * 0.75))
    width = width or panel_width(h, max(text, key=len))
    panel = np.full((h, width, 3), PANEL_BG, np.uint8)
    for i, line in enumerate(text):
        cv2.putText(panel, line, (6, (i + 1) * line_h), cv2.FONT_HERSHEY_SIMPLEX, font, (235, 235, 235), unit,
                    cv2.LINE_AA)
    if status:
        color = LOST_COLOR if status == "FACE LOST" else FILLED_COLOR
        cv2.rectangle(panel, (0, h - int(1.6 * line_h)), (width, h), color, -1)
        cv2.putText(panel, status, (6, h - int(0.45 * line_h)), cv2.FONT_HERSHEY_SIMPLEX, 1.2 * font, (255, 255, 255),
                    unit + 1, cv2.LINE_AA)
        cv2.rectangle(img, (0, 0), (w - 1, h - 1), color, 2 * unit)
    return np.concatenate([img, panel], axis=1)


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
    longest = max(["yaw +100 pitch +100 roll +100", *(f"{c} -0.000" for c in (values.columns if values is not None
                                                                              else ()))], key=len)
    if values is not None:  # text columns: their longest value
        longest = max([longest, *(f"{c} {v}" for c in values.select_dtypes(exclude="number")
                                  for v in values[c].dropna().unique())], key=len)
    width = panel_width(track.crop_size if use_crops else track.frame_size[0], longest)
    with VideoWriter(out, track.fps or 25.0) as w:
        for fr in tqdm(media.frames(), total=track.num_frames, desc="overlay", unit="frame", leave=False,
                       disable=not progress):
            t = fr.index
            if t >= track.num_frames:
                break
            boxes = None if use_crops else track.track_boxes[t]
            w.write(draw_frame(fr.rgb, track, t, points[t], boxes, _value_lines(values, t), width))
    return out


IOD_COLOR = (255, 220, 0)


def iod_picture(crops: str | Path, track: TrackData, scale: int = 2) -> bytes:
    """PNG of the subject's aligned face (from the entry's ``crops`` video) in its first usable
    frame, ``scale`` times enlarged, with its landmarks and the inter-ocular distance (outer eye
    corners) drawn and labelled."""
    usable = np.flatnonzero(track.usable)
    if len(usable) == 0:
        raise ValueError("no usable frame to picture")
    t = int(usable[0])
    rgb = next(fr.rgb for fr in Media(crops).frames() if fr.index == t)
    img = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    pts = track.points_crop[t] * scale
    draw_landmarks(img, pts, track.layout, 2)
    lay = get_layout(track.layout)
    a, b = (tuple(int(round(v)) for v in pts[k]) for k in (lay.right_eye_outer, lay.left_eye_outer))
    cv2.line(img, a, b, IOD_COLOR, 2, cv2.LINE_AA)
    for p in (a, b):
        cv2.circle(img, p, 5, IOD_COLOR, 2, cv2.LINE_AA)
    label = "1 IOD"
    (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.7, 2)
    org = ((a[0] + b[0] - w) // 2, min(a[1], b[1]) - 12)
    cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(img, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.7, IOD_COLOR, 2, cv2.LINE_AA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return png.tobytes()
