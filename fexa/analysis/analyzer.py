"""``fexa.Analyzer``: one face video (or image, or folder of frames) -> per-frame data, kinematic
measures and a report a person can look at.

``Result.frames`` columns, by group:
  time       frame, time (s)
  quality    usable, valid, filled, score, num_faces
  box        box_x0, box_y0, box_x1, box_y1 (frame pixels)
  pose       yaw, pitch, roll (degrees, see fexa.face.pose)
  signals    eye_aperture_right/left, mouth_width, mouth_opening, brow_height_right/left, lip_protrusion
             (see fexa.analysis.measures; NaN where their region is hidden)
  occlusion  occluded_mouth, occluded_eye_right, occluded_eye_left: a hand hides the region
             (see fexa.face.occlusion; absent when the cache entry has no crops)
  landmarks  x_<k>, y_<k> for the 73 heatmap points (2d106 order, frame pixels)
  per-frame predictions (per-frame models only)
             <model>_prediction and <model>_p_<class> (smoothed class probabilities), or <model>_score
``Result.measures``: measure, value, unit, aspect, primary (serves the task), flag (see
fexa.analysis.measures). ``Result.predictions``: one row per model: model, then prediction and
p_<class> (classification) or score and level (regression, level = score rounded into the
training targets' range).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fexa.analysis.measures import (
    MIN_DURATION,
    REGION_NAMES,
    clip_duration,
    compute_measures,
    static_measures,
    rate_limits,
    detect_blinks,
    detect_task,
    frame_signals,
    region_displacement,
    task_repetitions,
    task_signal,
)
from fexa.analysis.report import Plot, render, time_axis
from fexa.analysis.tasks import get_task
from fexa.errors import FexaError
from fexa.extract import USABLE_STATUSES, ExtractConfig, ensure_entry, face_files, input_ids, unique_inputs
from fexa.face.landmarks import get_scheme
from fexa.face.occlusion import REGIONS, Occlusion, detect_occlusion, mask_occluded
from fexa.io.atomic import atomic_path, remove_stale_temporaries, write_npz, write_table
from fexa.io.media import Media
from fexa.io.trackfile import TrackData
from fexa.viz.pyplot import pyplot
from fexa.viz.overlay import iod_picture, write_overlay
from fexa.viz.sheets import plot_trajectories

OVERLAY_SIGNALS = {"eye_aperture_right": "right eye opening", "eye_aperture_left": "left eye opening",
                   "mouth_width": "mouth width", "mouth_opening": "mouth opening", "brow_height_right": "right brow",
                   "brow_height_left": "left brow"}  # column -> its name on the overlay


def frames_table(track: TrackData) -> pd.DataFrame:
    """The per-frame DataFrame of a track (column groups in the module docstring)."""
    pts = get_scheme("heatmap73").select(track.points[..., :2], track.layout)
    df = pd.DataFrame({"frame": np.arange(track.num_frames), "time": track.times, "usable": track.usable,
                       "valid": track.valid, "filled": track.filled, "score": track.score,
                       "num_faces": track.num_faces})
    df[["box_x0", "box_y0", "box_x1", "box_y1"]] = track.box
    df[["yaw", "pitch", "roll"]] = track.pose
    sig = frame_signals(track).drop(columns=["time", "usable"])
    coords = {f"{a}_{k}": pts[:, k, i] for k in range(pts.shape[1]) for i, a in enumerate("xy")}
    return pd.concat([df, sig, pd.DataFrame(coords)], axis=1)


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
        blinks = None if "blinks" in rate_limits(self.track.times) else detect_blinks(aperture, self.track.times)
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

    def _mark_hidden(self, ax) -> None:
        hidden = [c for c in self.frames if c.startswith("occluded_")]
        if hidden and self.frames[hidden].to_numpy().any():
            ax.fill_between(self.frames["time"], 0, 1, where=self.frames[hidden].any(axis=1).to_numpy(),
                            transform=ax.get_xaxis_transform(), color="orange", alpha=0.15, step="mid",
                            label="hand over the face")

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
        """PNG of the subject's aligned face in its rest frame with the landmarks and the
        inter-ocular distance drawn (the report's unit picture)."""
        return iod_picture(self.entry / face_files(self.face)[1], self.track)

    def write_overlay(self, path: str | Path, progress: bool = False) -> Path:
        """The input video (or frame folder) with landmarks by region, boxes, lost frames and, per
        frame, the signals and each per-frame model's class or score written on it (MP4)."""
        if self.track.num_frames < 2:
            raise ValueError(f"{self.source} is a single image: no overlay video")
        labels = [c for c in self.prediction_columns if c.endswith(("_prediction", "_score"))]  # not every probability
        values = self.frames[list(OVERLAY_SIGNALS) + labels].rename(columns=OVERLAY_SIGNALS)
        hidden = [c for c in self.frames if c.startswith("occluded_")]
        if hidden:
            names = [REGION_NAMES[c.removeprefix("occluded_")] for c in hidden]
            values["hidden"] = [", ".join(n for n, h in zip(names, row) if h) or None
                                for row in self.frames[hidden].to_numpy(bool)]
        return write_overlay(self.track, self.source, path, progress=progress, values=values)

    def summary(self) -> dict:
        """One row for a summary table: face (track id), subject (the main subject?), frames, usable
        fraction, task, warnings, every measure and every model's prediction (``<model>_<column>``)."""
        row = {"face": self.track.track_id, "subject": self.face is None, "frames": self.track.num_frames,
               "usable": float(self.track.usable.mean()), "task": self.task, "warnings": "; ".join(self.warnings)}
        row.update(self.measures.set_index("measure")["value"].to_dict())
        for pred in self.predictions.to_dict("records"):
            row.update({f"{pred['model']}_{k}": v for k, v in pred.items() if k != "model"})
        return row

    def save(self, folder: str | Path, fmt: str = "csv", progress: bool = False) -> Path:
        """Everything into ``folder``: frames / measures / predictions / repetitions tables (csv,
        parquet or json), the plots, report.html and, for videos, overlay.mp4."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("frames", "measures", "predictions", "repetitions"):
            write_table(getattr(self, name), folder / f"{name}.{fmt}")
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


class Analyzer:
    """``Analyzer(cache="runs/cache").analyze("patient.mp4") -> Result``.

    ``task``: the clinical task shown (``fexa.analysis.tasks.TASKS``) or ``auto`` to detect it;
    ``models``: ``fexa train`` run folders (or checkpoints inside them) to score each input with;
    ``smooth_window``: frames of smooth predicting for per-frame models (0: none);
    ``per_repetition``: clip models also score each repetition of the task's movement (as models
    trained on Toronto NeuroFace's per-repetition subclips expect); ``progress``: progress bars;
    ``faces``: ``main`` analyses the main subject of each input, ``all`` every face
    (``analyze_faces``; in ``analyze_many`` each face gets its row and ``<id>/face_<k>/`` folder);
    ``window``, ``stride`` (s): clip models also score sliding windows, a curve over time in the
    frames table (0: no windows; not with ``per_repetition``)."""

    def __init__(self, cache: str | Path | None = None, extract: ExtractConfig | None = None,
                 models: list[str | Path] = (), task: str = "auto", smooth_window: int = 256,
                 per_repetition: bool = False, progress: bool = False, faces: str = "main",
                 window: float = 2.0, stride: float = 0.5):
        if faces not in ("main", "all"):
            raise FexaError(f"faces must be 'main' or 'all', not {faces!r}")
        if window < 0 or stride <= 0:
            raise FexaError(f"window must be >= 0 s and stride > 0 s, got {window} and {stride}")
        self.faces, self.window, self.stride = faces, window, stride
        if task != "auto":
            try:
                get_task(task)
            except ValueError as e:
                raise FexaError(str(e)) from None
        self.cache = Path(cache) if cache else Path(tempfile.mkdtemp(prefix="fexa-analyze-"))
        if self.cache.is_dir():
            remove_stale_temporaries(self.cache)  # leftovers of killed runs (never another live run's)
        self.extract = extract or ExtractConfig()
        if models:  # torch is loaded only for models
            from fexa.analysis.predict import TrainedModel

            self.models = [TrainedModel(m, smooth_window) for m in models]
        else:
            self.models = []
        self.task = task
        self.per_repetition = per_repetition
        self.progress = progress

    def _entry(self, path: Path) -> tuple[Path, dict]:
        """The input's cache entry (extracted if new, changed or damaged) and its meta."""
        entry = self.cache / input_ids([path])[0]
        meta = ensure_entry(path, entry, self.extract, self.progress)
        if meta["status"] == "no_face":
            raise FexaError(f"no face found in {path.name}")
        if meta["status"] not in USABLE_STATUSES:
            raise FexaError(meta["error"] or f"status {meta['status']}")
        return entry, meta

    def analyze(self, path: str | Path) -> Result:
        """The input's main subject (the face seen longest)."""
        path = Path(path)
        return self._analyze(path, *self._entry(path))

    def analyze_faces(self, path: str | Path) -> list[Result]:
        """Every face of the input seen in at least ``fexa.extract.MIN_FACE_FRAMES`` frames (or in
        all of them), the main subject first. Models score the main subject only."""
        path = Path(path)
        entry, meta = self._entry(path)
        return [self._analyze(path, entry, meta, face) for face in (None, *(f["id"] for f in meta.get("faces", [])))]

    def _analyze(self, path: Path, entry: Path, meta: dict, face: int | None = None) -> Result:
        track_file, crops_file = face_files(face)
        track = TrackData.load(entry / track_file)
        warnings = ([f"partial input: {meta['error']}"] if meta["status"] == "partial" else []) + meta.get("warnings", [])
        if face is not None:
            warnings.insert(0, f"face {face}, not the main subject (face {meta.get('subject_track')}): models, if "
                            "given, score the main subject only")
        occlusion = entry_occlusion(entry, track, meta, self.progress, face)
        hidden = {}
        if occlusion is None:
            warnings.append("hands over the face not checked: the cache entry has no aligned crops")
        else:
            track = mask_occluded(track, occlusion)
            usable = max(int(track.usable.sum()), 1)
            for region in REGIONS:
                n = occlusion.frames_of(region)
                hidden[region] = n / usable
                if n:
                    warnings.append(f"{REGION_NAMES[region]} hidden by a hand in {n} of {track.num_frames} frames: "
                                    "not measured there")
        if track.usable.mean() < 0.5:
            warnings.append(f"the face is usable in only {100 * track.usable.mean():.0f}% of frames: measures are flagged")
        duration = clip_duration(track.times)
        if duration < MIN_DURATION and track.num_frames > 1:
            warnings.append(f"a very short clip ({track.num_frames} frames, {duration:.2f} s): speeds, blinks and "
                            "repetitions are flagged")
        if track.num_frames > 1:
            warnings += [f"{aspect}: {why}" for aspect, why in rate_limits(track.times).items()]
        frames = frames_table(track)
        if occlusion is not None:
            frames = pd.concat([frames, occlusion.table()], axis=1)
        task, source = self.task, "given"
        if track.num_frames == 1:  # a still image: its geometry, no movement
            task, source = "none", "image"
        elif task == "auto":
            source = "detected"
            guess = detect_task(frames)
            task = guess.task
            if task == "none":
                warnings.append(f"no single task recognised ({guess.reason}): only task-free measures (blinks, eye "
                                "closures, mouth ranges) are reported; give the task (--task) to measure it")
            else:
                warnings.append(f"task detected automatically: {task} ({guess.reason}); give the task to set it")
        if source == "image":
            measures, repetitions = static_measures(track, hidden=hidden), task_repetitions(frames, "sit_at_rest")
        else:
            measures, repetitions = compute_measures(track, task, hidden=hidden), task_repetitions(frames, task)
        segments = None
        if self.per_repetition and len(repetitions):
            segments = list(zip(repetitions["start"].astype(int), repetitions["end"].astype(int)))
        elif self.per_repetition:
            warnings.append(f"no repetitions of the {task} movement found: models scored the whole clip")
        models = self.models if face is None else []
        preds = [model.predict(entry, task, progress=self.progress, segments=segments) for model in models]
        if models:
            from fexa.analysis.predict import cfc_sp_cascade

            combined = cfc_sp_cascade(self.models, [p.frames for p in preds], track.usable)
            if combined is not None:
                preds.append(combined)
        for model, pred in zip(models, preds):
            if pred.segments is not None:
                scored = pred.segments.drop(columns=["start", "end"]).add_prefix(f"{model.name}_")
                repetitions = pd.concat([repetitions, scored], axis=1)
        per_frame = [p.frames for p in preds if p.frames is not None]
        clip_models = [m for m in models if not m.per_frame]
        if clip_models and self.window and not segments:  # a curve over time, not one number
            from fexa.analysis.predict import sliding_windows, window_curve

            spans = sliding_windows(track.times, self.window, self.stride)
            for model in clip_models if spans else ():
                scored = model.predict(entry, task, progress=self.progress, segments=spans).segments
                per_frame.append(window_curve(model, scored, track.times, track.usable))
        columns = [c for p in per_frame for c in p.columns]
        frames = pd.concat([frames, *per_frame], axis=1)
        rows = [p.row for p in preds]
        return Result(path, entry, track, frames, measures, task, source, pd.DataFrame(rows), warnings, columns,
                      repetitions, meta["status"], face)

    def analyze_many(self, inputs: list[str | Path], out: str | Path | None = None, fmt: str = "csv",
                     on_error: Callable[[str, str], None] | None = None, folder_as: str = "auto") -> pd.DataFrame:
        """Every input (videos, images, frame folders, folders of videos and images, expanded with
        ``folder_as`` as ``fexa.extract.expand_inputs`` says) analysed; with ``out``,
        each result saved under ``out/<id>/`` and the summary as ``out/summary.<fmt>``, merged by
        id with the summary already there (a rerun updates its inputs' rows and keeps the others).
        Returns this batch's rows (id, path, status, error, then ``Result.summary``; with
        ``faces="all"`` one row per face, other faces' ids ``<id>/face_<k>``). Any failure of
        one input, fexa's or not, becomes its ``error`` row with a one-line reason (also passed to
        ``on_error(id, reason)``); the others continue and the summary is always written."""
        rows = []
        try:
            todo = unique_inputs(inputs, folder_as)
            for ident, path in tqdm(todo.items(), desc="analyze", unit="input", disable=not self.progress):
                row = {"id": ident, "path": str(Path(path).absolute()), "status": "ok", "error": ""}
                try:
                    results = self.analyze_faces(path) if self.faces == "all" else [self.analyze(path)]
                    for res in results:
                        name = ident if res.face is None else f"{ident}/face_{res.face}"
                        if out is not None:
                            res.save(Path(out) / name, fmt, self.progress)
                        rows.append({**row, "id": name, **res.summary(), "status": res.status})
                except Exception as e:  # noqa: BLE001 - one input must never stop the batch
                    reason = str(e) if isinstance(e, FexaError) else f"internal error: {type(e).__name__}: {e}"
                    row.update(status="error", error=reason.splitlines()[0] if reason else type(e).__name__)
                    if on_error is not None:
                        on_error(ident, row["error"])
                    rows.append(row)
        finally:  # also when interrupted: what was analysed is in the summary
            summary = pd.DataFrame(rows)
            if out is not None and len(summary):
                merge_summary(Path(out) / f"summary.{fmt}", summary)
        return summary


OCCLUSION_FILE = "occlusion.npz"
OCCLUSION_VERSION = "1"  # bump when fexa.face.occlusion changes its results


def entry_occlusion(entry: Path, track: TrackData, meta: dict, progress: bool = False,
                    face: int | None = None) -> Occlusion | None:
    """Which face regions a hand hides in each frame of the entry's track (fexa.face.occlusion;
    ``face``: another face's, see fexa.extract.face_files), found once in its aligned crops and
    kept beside them (``occlusion.npz`` / ``occlusion_<face>.npz``, valid while the crops file's
    checksum and ``OCCLUSION_VERSION`` match); None when the entry has no crops."""
    crops_file = face_files(face)[1]
    crops = meta.get("files", {}).get(crops_file)
    if crops is None:
        return None
    key = f"{crops['sha256']}:{OCCLUSION_VERSION}"
    path = entry / (OCCLUSION_FILE if face is None else f"occlusion_{face}.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return Occlusion(z["occluded"], z["cover"])
    except Exception:  # noqa: BLE001 - missing, stale or damaged: find the hands again
        pass
    occlusion = detect_occlusion((f.rgb for f in Media(entry / crops_file).frames()), track, progress=progress)
    write_npz(path, key=np.array(key), occluded=occlusion.occluded, cover=occlusion.cover)
    return occlusion


def read_table(path: Path) -> pd.DataFrame:
    """A table written by ``write_table`` (csv, json or parquet by suffix)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".json":
        return pd.read_json(path, orient="records", dtype=False)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def merge_summary(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Write ``rows`` into the summary at ``path``: rows of the same id are replaced, others kept
    in their order. An unreadable old summary is kept beside it (``.unreadable``), not lost."""
    if path.is_file():
        try:
            old = read_table(path)
            rows = pd.concat([old[~old["id"].astype(str).isin(set(rows["id"]))], rows], ignore_index=True)
        except Exception:  # noqa: BLE001 - keep the damaged file for the user, write the new one
            path.replace(path.with_name(path.name + ".unreadable"))
    write_table(rows, path)
    return rows
