"""``fexa.Analyzer``: one face video (or image, or folder of frames) -> per-frame data, kinematic
measures and a report a person can look at (``fexa.analysis.result.Result``, whose docstring lists
the tables' columns). Hands over the face and dark glasses are looked for once per cache entry
(``entry_regions``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from fexa.progress import tqdm

from fexa.analysis.measures import (
    MIN_DURATION,
    REGION_NAMES,
    TURNED,
    clip_duration,
    compute_measures,
    detect_task,
    rate_limits,
    static_measures,
    task_repetitions,
)
from fexa.analysis.result import Result, frames_table
from fexa.analysis.tasks import get_task
from fexa.errors import FexaError, os_error_reason
from fexa.extract import USABLE_STATUSES, ExtractConfig, ensure_entry, face_files, input_ids, unique_inputs
from fexa.face.detector import DEFAULT_BACKEND
from fexa.face.eyewear import EYES, DarkGlassesScan, EyeVisibility
from fexa.face.occlusion import REGIONS, Occlusion, crop_frames, detect_occlusion, mask_occluded
from fexa.io.atomic import locked, remove_stale_temporaries, write_npz, write_table
from fexa.io.trackfile import TrackData


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
    frames table (0: no windows; not with ``per_repetition``); ``start``, ``end`` (s of the input):
    analyse only that part of each input (a visit's recording holding several tasks); times in
    the results stay the input's."""

    def __init__(self, cache: str | Path | None = None, extract: ExtractConfig | None = None,
                 models: list[str | Path] = (), task: str = "auto", smooth_window: int = 256,
                 per_repetition: bool = False, progress: bool = False, faces: str = "main",
                 window: float = 2.0, stride: float = 0.5, start: float | None = None, end: float | None = None):
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
        if start is not None or end is not None:
            self.extract = replace(self.extract, start=start, end=end)
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
        entry = self.cache / input_ids([path], self.extract.range_tag())[0]
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
        track = TrackData.load(entry / face_files(face)[0])
        warnings = ([f"partial input: {meta['error']}"] if meta["status"] == "partial" else []) + meta.get("warnings", [])
        if face is not None:
            warnings.insert(0, f"face {face}, not the main subject (face {meta.get('subject_track')}): models, if "
                            "given, score the main subject only")
        regions = entry_regions(entry, track, meta, self.progress, face, self.extract.tracker.backend)
        hidden, unseen = {}, {}

        def where(n: int) -> str:
            return "" if track.num_frames == 1 else f" in {n} of {track.num_frames} frames"

        if regions is None:
            warnings.append("hands over the face and dark glasses not checked: the cache entry has no aligned crops")
        else:
            occlusion, eyes = regions
            track = mask_occluded(mask_occluded(track, occlusion), eyes.occlusion())
            usable = max(int(track.usable.sum()), 1)
            unseen = eyes.fractions(track.usable)

            for region in REGIONS:
                n = occlusion.frames_of(region)
                hidden[region] = n / usable
                if n:
                    warnings.append(f"{REGION_NAMES[region]} hidden by a hand{where(n)}: not measured there")
            for region, (_, why) in unseen.items():
                n = int(eyes.unseen[:, EYES.index(region)].sum())
                warnings.append(f"{REGION_NAMES[region]} not visible ({why}){where(n)}: not measured there")
        if track.usable.mean() < 0.5:
            warnings.append(f"the face is usable in only {100 * track.usable.mean():.0f}% of frames: measures are flagged")
        duration = clip_duration(track.times)
        if duration < MIN_DURATION and track.num_frames > 1:
            warnings.append(f"a very short clip ({track.num_frames} frames, {duration:.2f} s): speeds, blinks and "
                            "repetitions are flagged")
        if track.num_frames > 1:
            warnings += [f"{aspect}: {why}" for aspect, why in rate_limits(track.times).items()]
        frames = frames_table(track)
        turned = int(frames["turned"].sum())
        if turned:
            warnings.append(f"{TURNED}{where(turned)}: not measured there" if track.num_frames > 1 else
                            f"{TURNED}: yaw {frames['yaw'].iloc[0]:.0f}, pitch {frames['pitch'].iloc[0]:.0f}: nothing measured")
        if regions is not None:
            frames = pd.concat([frames, occlusion.table(), eyes.table()], axis=1)
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
            measures = static_measures(track, hidden=hidden, unseen=unseen)
            repetitions = task_repetitions(frames, "sit_at_rest")
        else:
            measures, repetitions = compute_measures(track, task, hidden=hidden, unseen=unseen), task_repetitions(frames, task)
        segments = None
        if self.per_repetition and len(repetitions):
            segments = list(zip(repetitions["start"].astype(int), repetitions["end"].astype(int)))
        elif self.per_repetition:
            warnings.append(f"no repetitions of the {task} movement found: models scored the whole clip")
        models = self.models if face is None else []
        preds = [model.predict(entry, task, progress=self.progress, segments=segments) for model in models]
        if models:
            from fexa.analysis.predict import cfc_sp_cascade

            combined = cfc_sp_cascade(models, [p.frames for p in preds], track.usable)
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
        if out is not None and Path(out).exists() and not Path(out).is_dir():
            raise FexaError(f"--out {out} is a file: it must name a folder (new or existing)")
        if out is not None and Path(out).is_dir():
            remove_stale_temporaries(out)  # a killed run's half-written summary
        try:
            todo = unique_inputs(inputs, folder_as, self.extract.range_tag())
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
                    reason = (str(e) if isinstance(e, FexaError) else
                              os_error_reason(e, str(Path(out) / ident) if out is not None else None)
                              if isinstance(e, OSError) else f"internal error: {type(e).__name__}: {e}")
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
OCCLUSION_VERSION = "4"  # bump when fexa.face.occlusion or fexa.face.eyewear change their results


def entry_regions(entry: Path, track: TrackData, meta: dict, progress: bool = False,
                  face: int | None = None, backend: str = DEFAULT_BACKEND) -> tuple[Occlusion, EyeVisibility] | None:
    """Which face regions a hand hides (fexa.face.occlusion, hands found by ``backend``'s models)
    and which eyes dark glasses hide (fexa.face.eyewear) in each frame of the entry's track
    (``face``: another face's, see fexa.extract.face_files), found in one pass over its aligned
    crops and kept beside them (``occlusion.npz`` / ``occlusion_<face>.npz``, valid while the crops
    file's checksum, ``OCCLUSION_VERSION`` and the backend match); None when the entry has no crops."""
    crops_file = face_files(face)[1]
    crops = meta.get("files", {}).get(crops_file)
    if crops is None:
        return None
    key = f"{crops['sha256']}:{OCCLUSION_VERSION}" + ("" if backend == "mediapipe" else f":{backend}")
    path = entry / (OCCLUSION_FILE if face is None else f"occlusion_{face}.npz")
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return Occlusion(z["occluded"], z["cover"]), EyeVisibility(z["dark_glasses"], z["looked"])
    except Exception:  # noqa: BLE001 - missing, stale or damaged: look again
        pass
    scan = DarkGlassesScan(track)
    frames = scan.watch(crop_frames(entry / crops_file))  # each crop converted to RGB only where looked at
    occlusion = detect_occlusion(frames, track, progress=progress, backend=backend)
    for _ in frames:  # the crops the hand search did not need still pass the glasses scan
        pass
    eyes = scan.result()
    write_npz(path, key=np.array(key), occluded=occlusion.occluded, cover=occlusion.cover, dark_glasses=eyes.unseen,
              looked=eyes.looked)
    return occlusion, eyes


def read_table(path: Path) -> pd.DataFrame:
    """A table written by ``write_table`` (csv, json or parquet by suffix)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".json":
        return pd.read_json(path, orient="records", dtype=False)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def merge_summary(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Write ``rows`` into the summary at ``path``: rows of the same id are replaced, others kept
    in their order. An unreadable old summary is kept beside it (``.unreadable``), not lost.
    Concurrent runs into one folder merge in turn (a lock beside the summary), losing no row."""
    with locked(path.with_name(f".{path.name}.lock")):
        if path.is_file():
            try:
                old = read_table(path)
                rows = pd.concat([old[~old["id"].astype(str).isin(set(rows["id"]))], rows], ignore_index=True)
            except Exception:  # noqa: BLE001 - keep the damaged file for the user, write the new one
                path.replace(path.with_name(path.name + ".unreadable"))
        write_table(rows, path)
    return rows
