"""Overlay video: the input with every tracked face box, the subject's landmarks coloured by region,
and beside it a panel with its head pose, per-frame values and whether the face was lost or filled."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from fexa.progress import tqdm

from fexa.face.landmarks import REGION_COLORS, get_layout, get_scheme
from fexa.io.media import Media, prefetched
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter

LOST_COLOR = (230, 30, 30)
FILLED_COLOR = (255, 160, 0)
SUBJECT_COLOR = (40, 220, 40)
OTHER_COLOR = (170, 170, 170)


PANEL_BG = (24, 24, 24)
# The overlay's x264 quality (18 is near lossless; each +6 about halves the size) and bitrate cap:
# the report embeds it, and at 500 kbit/s 200 s take at most about 12.5 MB (16.7 MB in base64).
OVERLAY_CRF = 23
OVERLAY_MAX_KBPS = 500
# x264's fastest preset: a third less encoding time than superfast (franck: about 2 s of 9), the cap
# keeping the size (measured 512 kbit/s on franck's overlay; the face and panel text stay readable)
OVERLAY_PRESET = "ultrafast"


def _font(h: int) -> tuple[float, int]:
    """OpenCV font scale and thickness for text on a frame ``h`` pixels high."""
    return 0.45 * h / 360, max(1, round(h / 360))


@lru_cache(maxsize=4)
def _blank_panel(h: int, width: int) -> np.ndarray:
    """An empty panel, to copy for each frame (filling an array with a colour costs 100 times more)."""
    panel = np.empty((h, width, 3), np.uint8)
    panel[:] = PANEL_BG
    return panel


def panel_width(h: int, longest: str) -> int:
    """Width of the side panel for frames ``h`` high whose longest line is ``longest``."""
    font, unit = _font(h)
    return max(int(0.55 * h), cv2.getTextSize(longest, cv2.FONT_HERSHEY_SIMPLEX, font, unit)[0][0] + 12)


@lru_cache(maxsize=8)
def _disk(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the pixels of a filled disk of ``radius``."""
    dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    inside = dy**2 + dx**2 <= (radius + 0.5) ** 2
    return dy[inside], dx[inside]


@lru_cache(maxsize=1)
def _point_colors() -> np.ndarray:
    """[73, 3] uint8: each heatmap point's region colour."""
    scheme = get_scheme("heatmap73")
    return np.array([REGION_COLORS[scheme.region_names[r]] for r in scheme.region_of_point], np.uint8)


def draw_landmarks(img: np.ndarray, points: np.ndarray, layout: str, radius: int) -> None:
    """Draw the 73 heatmap points of ``points`` [N, >=2] (``layout``, ``img``'s pixels) on ``img`` as
    filled disks coloured by region (all in one indexed write: a frame's 73 drawing calls cost more
    than its decoding); hidden points (NaN: a hand over them) are left out."""
    xy = get_scheme("heatmap73").select(points[None, :, :2], layout)[0]
    shown = np.isfinite(xy).all(axis=1)
    dy, dx = _disk(radius)
    centre = np.round(xy[shown]).astype(int)
    ys, xs = (centre[:, 1:2] + dy).ravel(), (centre[:, 0:1] + dx).ravel()
    colors = np.repeat(_point_colors()[shown], len(dy), axis=0)
    keep = (ys >= 0) & (ys < img.shape[0]) & (xs >= 0) & (xs < img.shape[1])
    img[ys[keep], xs[keep]] = colors[keep]


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
        text.append(f"yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f} deg")
    text += ["", *lines]
    line_h = int(round(22 * h / 360 * 0.75))
    width = width or panel_width(h, max(text, key=len))
    panel = _blank_panel(h, width).copy()
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


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, trailing zeros kept (0.500, 12.0, 123)."""
    return f"{value:#.{digits}g}".rstrip(".")


def _value_text(name: str, value, unit: str) -> str | None:
    """'<name> <value> <unit>' (numbers to 3 significant digits); None for a missing value."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    return f"{name} {significant(float(value)) if number else value}" + (f" {unit}" if unit else "")


def value_lines(values: pd.DataFrame, units: dict[str, str] | None = None) -> list[tuple[str, ...]]:
    """Per row of ``values``, a line per present value: its column, the value (numbers to 3
    significant digits) and its unit (``units``: column -> unit; none where not given)."""
    units = units or {}
    columns = [[_value_text(c, v, units.get(c, "")) for v in values[c].tolist()] for c in values.columns]
    return [tuple(line for line in row if line is not None) for row in zip(*columns)] if columns else [()] * len(values)


def write_overlay(track: TrackData, source: str | Path, out: str | Path, use_crops: bool = False,
                  progress: bool = True, values: pd.DataFrame | None = None,
                  units: dict[str, str] | None = None) -> Path:
    """Render the overlay of ``source`` (the input video, or the entry's crops.mp4 when
    ``use_crops``) to ``out`` (MP4: ``OVERLAY_CRF``, ``OVERLAY_PRESET``, ``OVERLAY_MAX_KBPS``);
    ``values`` (one row per frame, numeric or text columns; ``units``: column -> unit) are written
    on each frame."""
    out = Path(out)
    # a part of the input (fexa analyze --start): its frames, whose times are the input's
    media = Media(source, start=float(track.times[0]) if not use_crops and track.times[0] > 0 else None)
    points = track.points_crop if use_crops else track.points
    lines = value_lines(values, units) if values is not None else [()] * track.num_frames
    widest = sorted({line for row in lines for line in row} | {"yaw +100 pitch +100 roll +100 deg"}, key=len)[-20:]
    width = max(panel_width(track.crop_size if use_crops else track.frame_size[0], line) for line in widest)
    with VideoWriter(out, track.fps or 25.0, crf=OVERLAY_CRF, preset=OVERLAY_PRESET, max_kbps=OVERLAY_MAX_KBPS) as w:
        for fr in tqdm(prefetched(media.frames()), total=track.num_frames, desc="overlay", unit="frame", leave=False,
                       disable=not progress):
            t = fr.index
            if t >= track.num_frames:
                break
            boxes = None if use_crops else track.track_boxes[t]
            w.write(draw_frame(fr.rgb, track, t, points[t], boxes, lines[t], width))
    return out


IOD_COLOR = (255, 220, 0)


def crops_inside(track: TrackData) -> np.ndarray:
    """[T] bool: the frames whose aligned crop lies wholly inside the picture (elsewhere the crop
    is black where it reaches past the picture's edge)."""
    s, (h, w) = track.crop_size, track.frame_size
    m = track.affine.astype(np.float64)
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    corners = np.array([[0, 0], [s - 1, 0], [0, s - 1], [s - 1, s - 1]], np.float64)
    d = corners[None] - m[:, None, :, 2]  # [T, 4, 2]: crop corners less the translation
    with np.errstate(divide="ignore", invalid="ignore"):  # a singular (lost-frame) transform is not inside
        x = (m[:, None, 1, 1] * d[..., 0] - m[:, None, 0, 1] * d[..., 1]) / det[:, None]
        y = (m[:, None, 0, 0] * d[..., 1] - m[:, None, 1, 0] * d[..., 0]) / det[:, None]
        return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).all(axis=1)


def inside_box(affine: np.ndarray, frame_size: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the crop cut with ``affine`` from a picture of ``frame_size``
    without the rows and columns at its edges that reach past the picture (black there), the side
    with the most such pixels cut first."""
    inside = cv2.warpAffine(np.full(frame_size, 255, np.uint8), affine, (size, size)) == 255
    top, bottom, left, right = 0, size, 0, size
    while top < bottom and left < right:
        box = inside[top:bottom, left:right]
        outside = {"top": (~box[0]).sum(), "bottom": (~box[-1]).sum(), "left": (~box[:, 0]).sum(),
                   "right": (~box[:, -1]).sum()}
        side = max(outside, key=outside.get)
        if not outside[side]:
            break
        top, bottom = top + (side == "top"), bottom - (side == "bottom")
        left, right = left + (side == "left"), right - (side == "right")
    return top, bottom, left, right


def iod_picture(crops: str | Path, track: TrackData, scale: int = 2) -> bytes:
    """PNG of the subject's aligned face (from the entry's ``crops`` video), ``scale`` times
    enlarged, with its landmarks and the inter-ocular distance (outer eye corners) drawn and
    labelled. The frame: the first usable one with every landmark shown (none hidden by a hand)
    whose crop lies inside the picture; else the first such frame, cut to the part inside the
    picture (no black band either way); else the first usable frame."""
    usable = np.flatnonzero(track.usable)
    if len(usable) == 0:
        raise ValueError("no usable frame to picture")
    complete = usable[np.isfinite(track.points_crop[usable]).all(axis=(1, 2))]
    inside = complete[crops_inside(track)[complete]]
    t = int(next(iter(inside), next(iter(complete), usable[0])))
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
    top, bottom, left, right = (scale * v for v in inside_box(track.affine[t], track.frame_size, track.crop_size))
    ok, png = cv2.imencode(".png", cv2.cvtColor(img[top:bottom, left:right], cv2.COLOR_RGB2BGR))
    return png.tobytes()
