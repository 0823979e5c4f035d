"""``Result``: what ``fexa.Analyzer`` gives for one face (of a video, image or folder of frames):
its tables, plots, overlay video and report.

``Result.frames`` columns, by group:
  time       frame, time (s)
  quality    usable, valid, filled, score, num_faces
  box        box_x0, box_y0, box_x1, box_y1 (frame pixels)
  pose       yaw, pitch, roll (degrees, see fexa.face.pose); turned: beyond the face mesh's range
             (|yaw| > 30 or |pitch| > 25 degrees: the signals are NaN there)
  signals    eye_aperture_right/left, mouth_width, mouth_opening, brow_height_right/left, lip_protrusion
             in the head-fixed frame: they do not change when the head turns (see
             fexa.analysis.measures; NaN where their region is hidden)
  signals_2d the same signals in the 2-D aligned crop, suffixed _2d (as fexa measured them before;
             they change with yaw and pitch)
  occlusion  occluded_mouth, occluded_eye_right, occluded_eye_left: a hand hides the region
             (see fexa.face.occlusion; absent when the cache entry has no crops);
             dark_glasses_right, dark_glasses_left: dark glasses hide the eye (fexa.face.eyewear)
  landmarks  x_<k>, y_<k> for the 73 heatmap points (2d106 order, frame pixels)
  per-frame predictions (per-frame models, and clip models' sliding-window curves)
             <model>_prediction and <model>_p_<class> (class probabilities), or <model>_score
``Result.measures``: measure, value, unit, aspect, primary (serves the task), flag (see
fexa.analysis.measures). ``Result.predictions``: one row per model: model, then prediction and
p_<class> (classification) or score and level (regression, level = score rounded into the
training targets' range).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.analysis.measures import (
    REGION_NAMES,
    SIDES,
    detect_eye_events,
    frame_signals,
    frame_signals_2d,
    rate_limits,
    region_displacement,
    task_signal,
)
from fexa.analysis.report import Plot, render, time_axis
from fexa.analysis.tasks import get_task
from fexa.errors import FexaError
from fexa.extract import MIN_FACE_FRAMES, face_files
from fexa.face.landmarks import get_scheme
from fexa.io.atomic import atomic_path, remove_stale_temporaries, write_table
from fexa.io.trackfile import TrackData
from fexa.viz.overlay import iod_picture, write_overlay
from fexa.viz.pyplot import pyplot
from fexa.viz.sheets import plot_trajectories

OVERLAY_SIGNALS = {"eye_aperture_right": "right eye opening", "eye_aperture_left": "left eye opening",
                   "mouth_width": "mouth width", "mouth_opening": "mouth opening", "brow_height_right": "right brow",
                   "brow_height_left": "left brow"}  # column -> its name on the overlay
OVERLAY_UNITS = {"right eye opening": "ratio", "left eye opening": "ratio", "mouth width": "IOD", "mouth opening": "IOD",
                 "right brow": "IOD", "left brow": "IOD"}  # the overlay's names -> units (fexa.analysis.measures)


def frames_table(track: TrackData) -> pd.DataFrame:
    """The per-frame DataFrame of a track (column groups in the module docstring)."""
    pts = get_scheme("heatmap73").select(track.points[..., :2], track.layout)
    df = pd.DataFrame({"frame": np.arange(track.num_frames), "time": track.times, "usable": track.usable,
                       "valid": track.valid, "filled": track.filled, "score": track.score,
                       "num_faces": track.num_faces})
    df[["box_x0", "box_y0", "box_x1", "box_y1"]] = track.box
    df[["yaw", "pitch", "roll"]] = track.pose
    sig = frame_signals(track).drop(columns=["time", "usable"])
    df.insert(df.columns.get_loc("roll") + 1, "turned", sig.pop("turned"))
    coords = {f"{a}_{k}": pts[:, k, i] for k in range(pts.shape[1]) for i, a in enumerate("xy")}
    return pd.concat([df, sig, frame_signals_2d(track), pd.DataFrame(coords)], axis=1)


@dataclass
class Result:
    """What ``Analyzer.analyze`` returns for one input."""

    source: Path
    entry: Path
    track: TrackData
    frames: pd.DataFrame
    measures: pd.DataFrame
    task: str  # the task the measures serve
    task_source: str = "given"  # "given", "detected" (the Analyzer's task was "auto") or "image" (nothing to detect)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per model (fexa train runs)
    warnings: list[str] = field(default_factory=list)

    prediction_columns: list[str] = field(default_factory=list)  # per-frame prediction columns of ``frames``
    # the task movement's repetitions: frame, time, amplitude, start, end, and per model its score on
    # each (<model>_score/_level or _prediction/_p_<class>) when the Analyzer scores repetitions
    repetitions: pd.DataFrame = field(default_factory=pd.DataFrame)
    status: str = "ok"  # the extract status of the input: "ok", or "partial" for a damaged video
    face: int | None = None  # the face's track id when it is not the main subject (Analyzer.analyze_faces)

    def _save(self, fig, path: str | Path, timed=None) -> Plot:
        """Save ``fig`` as a PNG; ``timed``: an axes whose time axis every panel shares."""
        fig.tight_layout()
        axis = time_axis(fig, timed) if timed is not None else None
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
        pyplot().close(fig)
        return Plot(Path(path), axis)

    def _mark_lost(self, ax) -> None:
        lost = ~self.frames["usable"].to_numpy()
        if lost.any():
            ax.fill_between(self.frames["time"], 0, 1, where=lost, transform=ax.get_xaxis_transform(), color="red",
                            alpha=0.12, step="mid", label="face lost")

    def plot_signals(self, path: str | Path) -> Path:
        """Over time: eye aperture right vs left with blinks and eye-closure episodes marked; mouth
        width and opening; brows and mouth corners right vs left; the task's repetitions marked."""
        return self._plot_signals(path).path

    def _plot_signals(self, path: str | Path) -> Plot:
        if self.track.num_frames < 2:
            raise ValueError(f"{self.source} is a single image: nothing changes over time")
        f = self.frames
        t = f["time"]
        fig, axes = pyplot().subplots(4, 1, figsize=(11, 9.5), sharex=True)
        aperture = task_signal(f, "eye_aperture")
        blinks = None if "blinks" in rate_limits(self.track.times) else \
            detect_eye_events(f["eye_aperture_right"], f["eye_aperture_left"], self.track.times)
        corners = region_displacement(self.track)
        panels = (
            ("eye opening\n(lid gap / eye width)", (("eye_aperture_right", "right eye"), ("eye_aperture_left", "left eye"))),
            ("mouth\n(eye distances)", (("mouth_width", "mouth width"), ("mouth_opening", "mouth opening"))),
            ("eyebrow height\n(eye distances)", (("brow_height_right", "right brow"), ("brow_height_left", "left brow"))),
        )
        for ax, (ylabel, lines) in zip(axes, panels):
            for column, label in lines:
                ax.plot(t, f[column], label=label, lw=1.2)
            ax.set_ylabel(ylabel)
        if blinks is not None:
            axes[0].plot(t.iloc[list(blinks.frames)], aperture[list(blinks.frames)], "v", color="red",
                         label=f"blinks ({blinks.count})")
            closed = f"eyes closed ({len(blinks.closures)} episodes, {blinks.closure_time:.1f} s)"
            for k, (s0, e0) in enumerate(blinks.closures):
                axes[0].axvspan(t.iloc[s0], t.iloc[e0 - 1], color="purple", alpha=0.15, label=None if k else closed)
            for side, color in zip(SIDES, ("tab:blue", "tab:orange")):  # the eye panel's line colours
                eye = f[f"eye_aperture_{side}"]
                winks = [s0 + int(np.nanargmin(eye.iloc[s0:e0])) for s0, e0 in blinks.winks[side]]
                if winks:
                    axes[0].plot(t.iloc[winks], eye.iloc[winks], "^", color=color, label=f"{side} winks ({len(winks)})")
                for k, (s0, e0) in enumerate(blinks.one_sided[side]):
                    axes[0].axvspan(t.iloc[s0], t.iloc[e0 - 1], color=color, alpha=0.15,
                                    label=None if k else f"{side} eye alone closed ({len(blinks.one_sided[side])})")
        axes[3].plot(t, corners["mouth_corner_right"], label="right corner", lw=1.2)
        axes[3].plot(t, corners["mouth_corner_left"], label="left corner", lw=1.2)
        axes[3].set_ylabel("mouth-corner movement\n(eye distances)")
        axes[3].set_xlabel("time (s)")
        signal = get_task(self.task).signal
        if signal is not None:
            ax = axes[{"eye_aperture": 0, "brow_height": 2}.get(signal, 1)]
            reps = self.repetitions
            for k, x in enumerate(t.iloc[reps["frame"].to_numpy(int)]):
                ax.axvline(x, color="k", ls=":", lw=1, label=f"{self.task} repetitions ({len(reps)})" if k == 0 else None)
        for ax in axes:
            self._mark_lost(ax)
            self._mark_hidden(ax)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1), borderaxespad=0)  # beside, not over, the data
            ax.grid(alpha=0.3)
        shown = "no single task" if self.task == "none" else f"task {self.task}"
        fig.suptitle(f"{self.source.name}: {shown} ({self.task_source})", fontsize=10)
        return self._save(fig, path, timed=axes[0])

    def _occlusion_columns(self) -> list[str]:
        """The frames table's occluded_<region> columns (none when hands were not looked for)."""
        return [c for c in self.frames if c.startswith("occluded_")]

    def _mark_hidden(self, ax) -> None:
        """Shade the frames a hand hides part of the face in, and those with the head turned too far."""
        hidden = self._occlusion_columns()
        shades = [(self.frames[hidden].any(axis=1).to_numpy() if hidden else None, "orange", "hand over the face"),
                  (self.frames["turned"].to_numpy(bool) if "turned" in self.frames else None, "purple",
                   "head turned too far")]
        for where, color, label in shades:
            if where is not None and where.any():
                ax.fill_between(self.frames["time"], 0, 1, where=where, transform=ax.get_xaxis_transform(), color=color,
                                alpha=0.15, step="mid", label=label)

    def plot_regions(self, path: str | Path) -> Path:
        """Landmark trajectories and region displacement over time."""
        with atomic_path(path) as tmp:
            plot_trajectories(self.track, tmp)
        return Path(path)

    def plot_predictions(self, path: str | Path) -> Path:
        """Model outputs over time: per-frame models' smoothed class probabilities or score, clip
        models' value on each repetition (with their mean dashed); clip models scored once, as
        class probabilities or the score against the level boundaries."""
        return self._plot_predictions(path).path

    def _plot_predictions(self, path: str | Path) -> Plot:
        rows = self.predictions.to_dict("records")
        if not rows:
            raise ValueError("no model predictions to plot (give the Analyzer a trained run)")
        fig, axes = pyplot().subplots(len(rows), 1, figsize=(11, 2.8 * len(rows)), squeeze=False)
        t = self.frames["time"].to_numpy()
        for ax, row in zip(axes[:, 0], rows):
            name = row["model"]
            values = {k: k[2:] if k.startswith("p_") else k for k in row if k.startswith("p_") or k == "score"}
            per_frame = [k for k in values if f"{name}_{k}" in self.frames]
            per_rep = [k for k in values if f"{name}_{k}" in self.repetitions]
            if per_frame:
                for k in per_frame:
                    ax.plot(t, self.frames[f"{name}_{k}"], lw=1.2, label=values[k])
            elif per_rep:
                start, end = self.repetitions["start"].to_numpy(int), self.repetitions["end"].to_numpy(int)
                for i, k in enumerate(per_rep):
                    color = f"C{i}"
                    ax.hlines(self.repetitions[f"{name}_{k}"], t[start], t[end - 1], color=color, lw=3, label=values[k])
                    ax.axhline(row[k], color=color, ls="--", lw=1)
            elif "score" in values:
                ax.barh([0], [row["score"]], color="tab:blue", height=0.5)
                ax.set_yticks([])
                ax.set_xlabel("score (level boundaries dotted)")
                for b in np.arange(0.5, max(row["score"], row["level"]) + 1.5):
                    ax.axvline(b, color="k", ls=":", lw=0.8)
            else:
                ax.bar([values[k] for k in values], [row[k] for k in values], color="tab:blue")
                ax.set_ylim(0, 1)
            if per_frame or per_rep:
                ax.set_xlabel("time (s)")
                ax.set_xlim(t[0], t[-1])
                self._mark_lost(ax)
                ax.legend(fontsize=8, loc="upper right", ncol=4)
            ax.set_ylabel("score" if "score" in values else "probability")
            summary = row.get("prediction", f"score {row.get('score', float('nan')):.2f}, level {row.get('level')}")
            ax.set_title(f"{name}: {summary}" + (" (per repetition; mean dashed)" if per_rep and not per_frame else ""),
                         fontsize=10)
            ax.grid(alpha=0.3)
        timed = [ax for ax in axes[:, 0] if ax.get_xlabel() == "time (s)"]
        return self._save(fig, path, timed=timed[0] if len(timed) == len(rows) else None)

    def face_picture(self) -> bytes:
        """PNG of the subject's aligned face (the first usable frame showing every landmark whose crop
        lies inside the picture) with the landmarks and the inter-ocular distance drawn (the report's
        unit picture)."""
        return iod_picture(self.entry / face_files(self.face)[1], self.track)

    def write_overlay(self, path: str | Path, progress: bool = False) -> Path:
        """The input video (or frame folder) with landmarks by region, boxes, lost frames and, per
        frame, the signals and each per-frame model's class or score written on it (MP4)."""
        if self.track.num_frames < 2:
            raise ValueError(f"{self.source} is a single image: no overlay video")
        labels = [c for c in self.prediction_columns if c.endswith(("_prediction", "_score"))]  # not every probability
        values = self.frames[list(OVERLAY_SIGNALS) + labels].rename(columns=OVERLAY_SIGNALS)
        hidden = self._occlusion_columns()
        if hidden:
            names = [REGION_NAMES[c.removeprefix("occluded_")] for c in hidden]
            values["hidden"] = [", ".join(n for n, h in zip(names, row) if h) or None
                                for row in self.frames[hidden].to_numpy(bool)]
        return write_overlay(self.track, self.source, path, progress=progress, values=values, units=OVERLAY_UNITS)

    def other_people(self) -> tuple[int, float]:
        """(how many other people were in view for at least ``MIN_FACE_FRAMES`` frames, seconds with any
        of them in view): their frames are not this face's (fexa.face.identity)."""
        track = self.track
        seen = np.isfinite(track.track_boxes[..., 0])  # [T, K]
        others = [k for k, i in enumerate(track.track_ids) if i != track.track_id
                  and seen[:, k].sum() >= min(MIN_FACE_FRAMES, track.num_frames)]
        if not others or track.num_frames < 2:
            return len(others), 0.0
        return len(others), float(seen[:, others].any(axis=1).sum() * np.median(np.diff(track.times)))

    def summary(self) -> dict:
        """One row for a summary table: face (track id), subject (the main subject?), frames, usable
        fraction, other_people and other_people_seconds (``other_people``), task, warnings, every
        measure and every model's prediction (``<model>_<column>``)."""
        others, seconds = self.other_people()
        row = {"face": self.track.track_id, "subject": self.face is None, "frames": self.track.num_frames,
               "usable": float(self.track.usable.mean()), "other_people": others, "other_people_seconds": seconds,
               "task": self.task, "warnings": "; ".join(self.warnings)}
        row.update(self.measures.set_index("measure")["value"].to_dict())
        for pred in self.predictions.to_dict("records"):
            row.update({f"{pred['model']}_{k}": v for k, v in pred.items() if k != "model"})
        return row

    def save(self, folder: str | Path, fmt: str = "csv", progress: bool = False) -> Path:
        """Everything into ``folder``: frames / measures / predictions / repetitions tables (csv,
        parquet or json; predictions without a model: its header, ``model``), the plots, report.html
        and, for videos, overlay.mp4; leftovers of an interrupted earlier save are removed."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(folder)  # a killed run's half-written files (never a live run's)
        for name in ("frames", "measures", "predictions", "repetitions"):
            table = getattr(self, name)
            if name == "predictions" and table.empty:  # no model: the header alone, a table pandas reads back
                table = pd.DataFrame(columns=["model"])
            write_table(table, folder / f"{name}.{fmt}")
        video = self.write_overlay(folder / "overlay.mp4", progress=progress) if self.track.num_frames > 1 else None
        self.to_html(folder / "report.html", self.plot_all(folder), video)
        return folder

    def plot_all(self, folder: str | Path) -> dict[str, Plot]:
        """Every plot of this result as PNGs in ``folder``: signals and regions over time (not for
        a still image) and, with models, predictions."""
        folder = Path(folder)
        plots = {}
        if self.track.num_frames > 1:
            plots["signals over time"] = self._plot_signals(folder / "signals.png")
            plots["regions"] = Plot(self.plot_regions(folder / "regions.png"))
        if len(self.predictions):
            plots["model predictions"] = self._plot_predictions(folder / "predictions.png")
        return plots

    def to_html(self, path: str | Path, plots: dict[str, Plot] | None = None, video: Path | None = None) -> Path:
        """One self-contained HTML report (fexa.analysis.report). ``plots``: already drawn
        (``plot_all``), else drawn here; ``video``: the overlay MP4 to show, synchronised with the plots."""
        with tempfile.TemporaryDirectory() as d:
            plots = plots if plots is not None else self.plot_all(d)
            try:
                picture = self.face_picture()
            except (FexaError, ValueError, OSError):  # no crops in the entry: the report does without
                picture = None
            return render(self, Path(path), plots, picture, video)
