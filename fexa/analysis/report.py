"""report.html: one self-contained, offline page a clinician reads without the docs.

What it shows: what was analysed (for a video, its rest frame: the first frame with the face found,
from which movements are measured) and what to check first, the task recognition's scores said in
words; the overlay video, synchronised with the time plots (a red line follows the video's time; a
click on a plot seeks the video there, and ``report.html#t=12.5`` opens at 12.5 s); the measures in
plain language (unit in words, what a higher value means, which side for asymmetry, "not
measurable: <reason>" instead of a bare NaN, the formula on hover and in a glossary); how distances
are measured (a picture of the inter-ocular distance on the subject's own face, about 90 mm in
adults); the task's repetitions with units; model predictions, or how to get them. Everything is
embedded (images and video as data URLs, no external script or font); an overlay video over
``EMBED_LIMIT`` bytes is linked beside the page instead.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.analysis.glossary import describe
from fexa.analysis.measures import REST_ACTIVATION, SINGLE_TASK_DOMINANCE, clip_duration, frame_rate
from fexa.analysis.tasks import get_task
from fexa.face.pose import PITCH_LIMIT, YAW_LIMIT
from fexa.io.atomic import atomic_path

EMBED_LIMIT = 64 * 2**20  # bytes: larger overlay videos are linked, not embedded

COUNT_UNITS = frozenset({"blinks", "winks", "episodes", "count"})  # units of counts: whole numbers, compared per minute
_VIDEO_SLOT = "\x00video\x00"  # where the embedded video's data URL goes
IOD_MM = 90  # about the outer eye corners' distance of an adult (biocular width; less in children)
NO_MODEL = ("No model was given, so there are no predictions. Predictions (an expression class, a severity score) "
            "come from a trained model: <code>fexa analyze VIDEO --model RUN</code>, where RUN is a run folder of "
            "<code>fexa train CONFIG</code> or a published model made a run by <code>fexa weights import FILE --as "
            "NAME --out RUN</code> (<code>fexa weights list</code> names the published models fexa knows).")
TASK_SCORES = ("How the task was recognised: for each movement (smile, mouth open, kiss, brows raised, frown, eyes "
               "squeezed) fexa measures how far its signal moved away from the first frames, as a share of a typical "
               "full movement (1.0 = one full movement, 0 = none; the level the 20% most moved frames reach). "
               "<i>N times the next</i> compares the strongest movement with the second strongest. A task is named "
               f"only when one movement comes near a full movement and moves at least {SINGLE_TASK_DOMINANCE:g} "
               f"times as much as every other; below {REST_ACTIVATION:g} of a full movement for all, the face sat at "
               "rest.")


@dataclass(frozen=True)
class Plot:
    """A PNG plot; ``time_axis`` (x0, x1, t0, t1): its time axis spans figure fractions x0-x1 for
    times t0-t1 s (every panel shares it), or None for a plot without time."""

    path: Path
    time_axis: tuple[float, float, float, float] | None = None


def time_axis(fig, ax) -> tuple[float, float, float, float]:
    """(x0, x1, t0, t1) of ``ax`` in ``fig`` once its layout is final."""
    box = ax.get_position()
    t0, t1 = ax.get_xlim()
    return float(box.x0), float(box.x1), float(t0), float(t1)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def format_value(value: float, unit: str, flag: str) -> str:
    """A measure's value as shown: counts as integers, others to 3 significant digits, a missing
    one as 'not measurable: <reason>'."""
    if not np.isfinite(value):
        return f"not measurable: {flag}" if flag else "not measurable"
    return f"{value:.0f}" if unit in COUNT_UNITS else f"{value:.3g}"


def _measure_rows(measures: pd.DataFrame) -> str:
    rows = []
    for r in measures.itertuples():
        d = describe(r.measure)
        missing = not np.isfinite(r.value)
        note = "; ".join(x for x in (getattr(r, "detail", ""), "" if missing else r.flag) if x)
        value = html.escape(format_value(r.value, r.unit, r.flag))
        tip = html.escape(f"{r.measure} = {d.formula}")
        cells = (f'<td colspan="2" class="na">{value}</td>' if missing
                 else f'<td class="num">{value}</td><td>{html.escape(d.unit)}</td>')
        rows.append(f'<tr title="{tip}"><td>{html.escape(d.label)}</td>{cells}<td>{html.escape(d.higher)}</td>'
                    f'<td>{html.escape(note)}</td></tr>')
    head = "<tr><th>measure</th><th>value</th><th>unit</th><th>higher means</th><th>note</th></tr>"
    return f"<table class=measures>{head}{''.join(rows)}</table>"


def _glossary(measures: pd.DataFrame) -> str:
    items = []
    for name in measures["measure"]:
        d = describe(name)
        items.append(f"<dt>{html.escape(d.label)} <code>{html.escape(name)}</code></dt>"
                     f"<dd>{html.escape(d.formula)} ({html.escape(d.unit)}; higher: {html.escape(d.higher)})</dd>")
    return f"<dl class=glossary>{''.join(items)}</dl>"


def _repetitions(result) -> str:
    reps, task = result.repetitions, get_task(result.task)
    if task.name == "none":
        return "<p>Not counted: no single task was recognised.</p>"
    if task.signal is None:
        return "<p>None: the task has no movement to repeat.</p>"
    if not len(reps):
        return "<p>None found.</p>"
    unit = "eye opening, lid gap / eye width" if task.signal == "eye_aperture" else "eye distances"
    named = reps.rename(columns={"frame": "peak frame", "time": "peak time (s)", "amplitude": f"amplitude ({unit})",
                                 "start": "start frame", "end": "end frame"})
    return named.to_html(index=False, float_format="%.3f", na_rep="not measurable")


def _synced(name: str, plot: Plot) -> str:
    img = f'<img alt="{name}" src="data:image/png;base64,{_b64(plot.path.read_bytes())}">'
    if plot.time_axis is None:
        return f"<div class=plot>{img}</div>"
    x0, x1, t0, t1 = plot.time_axis
    return (f'<div class="plot synced" data-x0="{x0:.5f}" data-x1="{x1:.5f}" data-t0="{t0:.5f}" data-t1="{t1:.5f}" '
            f'title="click to show this moment in the video">{img}<div class=cursor></div></div>')


_SCRIPT = """
const video = document.getElementById('video');
const times = JSON.parse(document.getElementById('frame-times').textContent);
const fps = parseFloat(document.getElementById('frame-times').dataset.fps);
function frameAt(t) {  // the last frame shown at track time t
  let lo = 0, hi = times.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (times[mid] <= t) lo = mid; else hi = mid - 1; }
  return lo;
}
function seek(t) { video.currentTime = (frameAt(t) + 0.5) / fps; video.pause(); }
const linked = /t=([0-9.]+)/.exec(location.hash);  // report.html#t=12.5 opens at 12.5 s
if (linked) video.addEventListener('loadedmetadata', () => seek(parseFloat(linked[1])), {once: true});
document.querySelectorAll('.synced').forEach(box => {
  const d = box.dataset, x0 = +d.x0, x1 = +d.x1, t0 = +d.t0, t1 = +d.t1, cursor = box.querySelector('.cursor');
  const place = () => {
    const k = Math.min(times.length - 1, Math.floor(video.currentTime * fps + 1e-6));
    cursor.style.left = (100 * (x0 + (times[k] - t0) / (t1 - t0) * (x1 - x0))) + '%';
  };
  box.addEventListener('click', e => {
    const r = box.getBoundingClientRect(), f = (e.clientX - r.left) / r.width;
    seek(t0 + (f - x0) / (x1 - x0) * (t1 - t0));
  });
  for (const ev of ['timeupdate', 'seeked', 'loadedmetadata']) video.addEventListener(ev, place);
  const loop = () => { place(); if (!video.paused) requestAnimationFrame(loop); };
  video.addEventListener('play', loop);
});
"""

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.na{color:#8a5a00;font-style:italic}img{max-width:100%;display:block}.plot{position:relative}
.synced{cursor:crosshair}.cursor{position:absolute;top:0;bottom:0;width:2px;background:#d22;left:-10px;
pointer-events:none}video{max-width:100%;max-height:70vh;background:#000}.check li{margin:.2em 0}
.note{color:#555}.iod{display:flex;gap:1.5em;align-items:flex-start}.iod img{width:256px}
dl.glossary dt{font-weight:600;margin-top:.4em}code{background:#f4f4f4;padding:0 3px}
.facts td:first-child{color:#555}"""


def render(result, path: Path, plots: dict[str, Plot], picture: bytes | None, video: Path | None) -> Path:
    """Write ``result``'s report to ``path``: ``plots`` (name -> Plot), ``picture`` (a PNG of the
    face with the inter-ocular distance drawn), ``video`` (the overlay MP4 beside ``path``)."""
    track = result.track
    still = track.num_frames == 1
    title = html.escape(result.source.name)
    task = get_task(result.task)
    how = {"given": "given by the user",
           "detected": "recognised automatically from the movement (give the task to set it)",
           "image": "a single image: no movement"}[result.task_source]
    facts = [("input", html.escape(str(result.source)))]
    if still:
        facts.append(("what", f"a still image, {track.frame_size[1]} x {track.frame_size[0]} pixels"))
    else:
        rest = int(np.flatnonzero(track.usable)[0])  # fexa.analysis.measures: the clip's first usable frame
        facts += [("length", f"{clip_duration(track.times):.1f} s, {track.num_frames} frames at "
                             f"{frame_rate(track.times):.1f} frames per second"),
                  ("face seen", f"{100 * track.usable.mean():.0f}% of frames ({track.usable.sum()} of "
                                f"{track.num_frames})"),
                  ("rest frame", f"frame {rest}, at {track.times[rest]:.2f} s: the first frame with the face found. "
                                 "Ranges of motion, times to the largest movement and the region plot measure "
                                 "movement from the face there, so the recording should start with the face at "
                                 "rest"),
                  ("task", f"<b>{html.escape(task.name.replace('_', ' '))}</b>: {html.escape(task.description)} "
                           f"({html.escape(how)})")]
    fact_rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in facts)
    check = "".join(f"<li>{html.escape(w)}</li>" for w in result.warnings) or "<li>nothing: no problem found</li>"
    if result.task_source == "detected":
        check += f"<li class=note>{TASK_SCORES}</li>"

    m = result.measures
    primary, other = m[m["primary"]], m[~m["primary"]]
    if still:
        measures = "<h2>Face geometry</h2>" + _measure_rows(m)
    else:
        for_what = ("task-free measures (no single task)" if task.name == "none" else
                    f"measures for the task: {task.name.replace('_', ' ')}")
        measures = (f"<h2>Measures</h2><h3>{html.escape(for_what)}</h3>{_measure_rows(primary)}"
                    f"<details><summary>Other measures ({len(other)})</summary>{_measure_rows(other)}</details>")

    picture_html = ""
    if picture is not None:
        where = ("Positions are measured on the face turned to look straight at the camera (head turn and tilt "
                 "removed)" if still else
                 "This is the subject's face in the first frame showing it whole. Positions are measured on the face "
                 "turned to look straight at the camera: head movement, turns and nods removed, so turning the head "
                 "does not change the numbers. Frames with the head turned more than "
                 f"{YAW_LIMIT:g} degrees sideways or {PITCH_LIMIT:g} up or down are not measured (the face model is "
                 "unreliable there)")
        picture_html = (f'<h2>How distances are measured</h2><div class=iod><img alt="inter-ocular distance" '
                        f'src="data:image/png;base64,{_b64(picture)}"><p>Distances are given in <b>eye distances '
                        "(IOD, inter-ocular distance)</b>: the distance between the outer corners of the two eyes, "
                        "drawn in yellow on this face. 1.0 IOD is that distance, whatever the camera's distance or "
                        f"zoom. In adults it is about {IOD_MM} mm, so 0.1 IOD is about {IOD_MM / 10:.0f} mm (less in "
                        f"children). {where}. <i>Right</i> and <i>left</i> are "
                        "the subject's own sides (right = left in the picture).</p></div>")

    video_html, script = "", ""
    if video is not None and not still:
        size = video.stat().st_size
        src = _VIDEO_SLOT if size <= EMBED_LIMIT else html.escape(video.name)
        linked = "" if size <= EMBED_LIMIT else f" (linked: {size / 2**20:.0f} MB is too large to embed)"
        times = json.dumps([round(float(t), 4) for t in track.times])
        video_html = (f'<h2>Video</h2><video id="video" controls muted preload="auto" src="{src}"></video>'
                      f'<p class=note>The face landmarks drawn by region{linked}. The red line on the plots below follows '
                      "the video; click a plot to show that moment.</p>"
                      f'<script type="application/json" id="frame-times" data-fps="{track.fps or 25.0:g}">{times}'
                      "</script>")
        script = f"<script>{_SCRIPT}</script>"
    plots_html = "".join(f"<h2>{html.escape(k.capitalize())}</h2>{_synced(k, p)}" for k, p in plots.items())
    preds = (result.predictions.to_html(index=False, float_format="%.3f", na_rep="not measurable")
             if len(result.predictions) else f"<p>{NO_MODEL}</p>")
    reps = "" if still else f"<h2>Repetitions of the task movement</h2>{_repetitions(result)}"
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fexa report: {title}</title>
<style>{STYLE}</style></head><body>
<h1>Facial movement report: {title}</h1>
<table class=facts>{fact_rows}</table>
<h2>Check first</h2><ul class=check>{check}</ul>
{video_html}
{measures}
{picture_html}
{plots_html}
{reps}
<h2>Model predictions</h2>{preds}
<h2>Glossary</h2><p class=note>Hover over a measure's row for its formula. Full definitions: docs/measures.md.</p>
{_glossary(m)}
<p class=note>These measures describe facial movement; they are not a diagnosis.</p>
{script}
</body></html>"""
    head, slot, tail = page.partition(_VIDEO_SLOT)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(head)
        if slot:  # the video, base64-encoded chunk by chunk: never whole in memory
            f.write("data:video/mp4;base64,")
            with open(video, "rb") as v:
                while chunk := v.read(3 * 2**20):  # a multiple of 3 bytes: no padding inside
                    f.write(_b64(chunk))
        f.write(tail)
    return path
