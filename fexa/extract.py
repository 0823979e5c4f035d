"""``fexa extract``: inputs -> cached face tracks, aligned crops and a manifest.

For each input, ``OUT/<id>/`` holds ``track.npz`` (see fexa.io.trackfile), ``crops.mp4`` (aligned
crops, frame i <-> track index i, black where the face is missing) and ``meta.json``;
``OUT/manifest.csv`` lists every entry (``id,path,status,frames,face_frames,fps,error``).
Entries are written atomically; a rerun skips finished entries and redoes the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import fexa
from fexa.errors import FexaError, MediaError
from fexa.face.align import apply_transform, crop_transforms, warp_crop
from fexa.face.detector import FaceTracker, TrackerConfig, native_output_silenced, points_box
from fexa.face.pose import head_pose
from fexa.face.tracks import TrackSet, fill_gaps
from fexa.io.atomic import atomic_dir, remove_stale_temporaries, write_json, write_text
from fexa.io.media import VIDEO_EXTENSIONS, Media, prefetched
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter

MANIFEST_COLUMNS = ["id", "path", "status", "frames", "face_frames", "fps", "error"]
DONE_STATUSES = ("ok", "no_face")
LAYOUT = "mediapipe478"


@dataclass
class ExtractConfig:
    """How inputs are turned into tracks and crops."""

    crop_size: int = 256
    crop_margin: float = 1.0
    rotate: bool = True  # level the eyes in the crops
    smooth: int = 5  # frames over which the crop transform is averaged
    max_gap: int = 5  # fill gaps of at most this many frames by interpolation
    fps: float | None = None  # frame rate of folders of frames (default 30), or override
    min_video_frames: int = 2
    write_crops: bool = True
    frame_cache_mb: int = 1024  # keep decoded frames for the crop pass up to this size, else decode again
    tracker: TrackerConfig = field(default_factory=TrackerConfig)


# -- inputs and ids -------------------------------------------------------------------------------
def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files stay as given; a folder holding videos becomes its videos (recursively, sorted);
    any other folder is one input (a folder of frames, or an error if it has no images)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            videos = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS)
            out.extend(videos if videos else [p])
        else:
            out.append(p)
    return out


def input_ids(paths: list[Path]) -> list[str]:
    """A readable, unique id per input: its file stem, plus a short path hash where stems clash."""
    stems = [re.sub(r"[^A-Za-z0-9._-]+", "_", p.stem if p.suffix else p.name) or "input" for p in paths]
    ids = []
    for p, s in zip(paths, stems):
        if stems.count(s) > 1:
            s = f"{s}-{hashlib.sha1(str(p.resolve()).encode()).hexdigest()[:8]}"
        ids.append(s)
    return ids


def parse_shard(text: str | None) -> tuple[int, int]:
    """'K/N' (0 <= K < N) -> (K, N); None -> (0, 1)."""
    if not text:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise FexaError(f"--shard must be K/N with 0 <= K < N, got {text!r}")
    return int(m[1]), int(m[2])


def _source_stamp(path: Path) -> dict:
    try:
        st = path.stat()
        return {"size": st.st_size, "mtime": st.st_mtime}
    except OSError:
        return {}


# -- one input ------------------------------------------------------------------------------------
def _track(media: Media, cfg: ExtractConfig, progress: bool) -> tuple[TrackSet, np.ndarray, int, list | None]:
    """First pass: detect and track faces in every frame. Also returns the decoded frames while
    they fit in ``cfg.frame_cache_mb`` (None otherwise), so the crop pass need not decode again."""
    static = media.kind == "image"
    observations, times = [], []
    cache: list | None = [] if cfg.write_crops else None
    budget = cfg.frame_cache_mb * 2**20
    with native_output_silenced():
        bar = tqdm(total=media.info.num_frames or None, desc=media.path.name, unit="frame", leave=False,
                   disable=not progress)
        with FaceTracker(cfg.tracker, static=static) as tracker:
            for fr in prefetched(media.frames()):
                observations.append(tracker(fr.rgb))
                times.append(fr.time)
                if cache is not None:
                    cache.append(fr.rgb)
                    budget -= fr.rgb.nbytes
                    cache = cache if budget >= 0 else None
                bar.update()
            calls = tracker.detector_calls
        bar.close()
    return TrackSet.from_observations(observations), np.asarray(times, np.float64), calls, cache


def _subject_arrays(ts: TrackSet, main: int, cfg: ExtractConfig) -> dict:
    valid = ts.valid(main)
    points, filled = fill_gaps(ts.points[main], valid, cfg.max_gap)
    usable = valid | filled
    affine = crop_transforms(points, LAYOUT, usable, cfg.crop_size, cfg.crop_margin, cfg.rotate, cfg.smooth)
    crop = apply_transform(points, affine).astype(np.float32)
    crop[~usable] = np.nan
    score, _ = fill_gaps(ts.score[main], valid, cfg.max_gap)
    return dict(
        points=points.astype(np.float32),
        points_crop=crop,
        affine=affine,
        box=points_box(points).astype(np.float32),
        score=np.where(usable, score, 0).astype(np.float32),
        detected=ts.detected[main],
        pose=head_pose(points),
        valid=valid,
        filled=filled,
    )


def _write_crops(frames: Iterable[np.ndarray], track: TrackData, path: Path, cfg: ExtractConfig) -> int:
    """Second pass: write the aligned crops of ``frames`` (black where the face is missing)."""
    black = np.zeros((cfg.crop_size, cfg.crop_size, 3), np.uint8)
    with VideoWriter(path, track.fps or 25.0) as w:
        for t, rgb in zip(range(track.num_frames), frames):
            w.write(warp_crop(rgb, track.affine[t], cfg.crop_size) if track.usable[t] else black)
        return w.frames_written


def extract_one(path: str | Path, entry: str | Path, cfg: ExtractConfig | None = None, progress: bool = False) -> dict:
    """Process one input into the folder ``entry`` (written atomically); return its meta dict.

    Problems with the input are recorded (status ``error``) rather than raised."""
    cfg = cfg or ExtractConfig()
    path, entry = Path(path), Path(entry)
    t0 = time.perf_counter()
    meta: dict = {"id": entry.name, "path": str(path), "source": _source_stamp(path), "fexa_version": fexa.__version__,
                  "config": asdict(cfg), "status": "error", "frames": 0, "face_frames": 0, "fps": 0.0,
                  "error": "", "warnings": []}
    with atomic_dir(entry) as tmp:
        try:
            media = Media(path, cfg.fps)
            ts, times, det_calls, cache = _track(media, cfg, progress)
            n = ts.num_frames
            info = media.info
            fps = info.fps if info.fps > 0 else (1.0 / np.median(np.diff(times)) if n > 1 else 0.0)
            meta.update(kind=info.kind, width=info.width, height=info.height, rotation=info.rotation, frames=n,
                        fps=round(float(fps), 4), detector_calls=det_calls)
            if media.decode_error:
                meta["warnings"].append(f"damaged video: {media.decode_error}")
            if n == 0:
                raise MediaError(f"no frames decoded from {path}")
            if info.kind == "video" and n < cfg.min_video_frames:
                raise MediaError(f"video has {n} frame(s); at least {cfg.min_video_frames} are needed: {path}")
            main = ts.main_track()
            meta["tracks"] = [{"id": i, "frames": int(ts.valid(i).sum())} for i in ts.ids]
            if main is None:
                meta.update(status="no_face", error=f"no face found in any of {n} frames")
            else:
                arrays = _subject_arrays(ts, main, cfg)
                boxes = np.stack([ts.boxes(i) for i in ts.ids], axis=1).astype(np.float32)
                track = TrackData(
                    times=times, **arrays, num_faces=ts.faces_per_frame(), track_boxes=boxes,
                    track_ids=np.asarray(ts.ids, np.int32), fps=float(fps), crop_size=cfg.crop_size,
                    frame_size=(info.height, info.width), layout=LAYOUT, track_id=int(main),
                )
                with ThreadPoolExecutor(max_workers=1) as pool:
                    saving = pool.submit(track.save, tmp / "track.npz")  # compression overlaps the crop pass
                    if cfg.write_crops:
                        frames = cache if cache is not None else (fr.rgb for fr in prefetched(media.frames()))
                        _write_crops(frames, track, tmp / "crops.mp4", cfg)
                    del cache
                    saving.result()
                face = int(track.valid.sum())
                meta.update(status="ok", face_frames=face, filled_frames=int(track.filled.sum()), subject_track=int(main))
                if len(ts.ids) > 1:
                    meta["warnings"].append(f"{len(ts.ids)} faces tracked; the subject is track {main} "
                                            f"(present in {face} of {n} frames)")
                if face < n:
                    meta["warnings"].append(f"face missing in {n - face} of {n} frames "
                                            f"({int(track.filled.sum())} filled by interpolation)")
        except FexaError as e:
            meta.update(status="error", error=str(e))
        except Exception as e:  # an input must never stop the batch: record what happened
            meta.update(status="error", error=f"internal error: {type(e).__name__}: {e}", traceback=traceback.format_exc())
        meta["seconds"] = round(time.perf_counter() - t0, 3)
        write_json(tmp / "meta.json", meta)
    return meta


# -- many inputs ----------------------------------------------------------------------------------
def entry_is_done(entry: Path, path: Path) -> bool:
    """True when ``entry`` holds a finished result for the unchanged input ``path``."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("status") not in DONE_STATUSES or meta.get("source") != _source_stamp(path):
        return False
    if meta["status"] == "ok":
        try:
            TrackData.load(entry / "track.npz")
        except FexaError:
            return False
        crops_ok = (entry / "crops.mp4").is_file() or not meta.get("config", {}).get("write_crops", True)
        return crops_ok
    return True


def write_manifest(out: Path) -> pd.DataFrame:
    """Rebuild ``out/manifest.csv`` from every entry's meta.json (atomic; safe with shards)."""
    rows = []
    for m in sorted(out.glob("*/meta.json")):
        try:
            meta = json.loads(m.read_text())
        except (OSError, ValueError):
            continue
        rows.append({c: meta.get(c, "") for c in MANIFEST_COLUMNS})
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    write_text(out / "manifest.csv", df.to_csv(index=False))
    return df


def _work(args: tuple) -> dict:
    path, entry, cfg = args
    return extract_one(path, entry, cfg, progress=False)


def extract_many(
    inputs: list[str | Path],
    out: str | Path,
    cfg: ExtractConfig | None = None,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
) -> pd.DataFrame:
    """Extract every input (this shard's share) into ``out`` and return the manifest."""
    cfg = cfg or ExtractConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    paths = expand_inputs(inputs)
    ids = input_ids(paths)
    k, n = shard
    todo = [(p, out / i, cfg) for j, (p, i) in enumerate(zip(paths, ids)) if j % n == k]
    skipped = [t for t in todo if entry_is_done(t[1], t[0])]
    todo = [t for t in todo if t not in skipped]
    bar = tqdm(total=len(todo) + len(skipped), initial=len(skipped), desc="extract", unit="input", disable=not progress)
    if workers <= 1:
        for p, entry, c in todo:
            bar.set_postfix_str(p.name)
            extract_one(p, entry, c, progress=progress)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            for fut in as_completed([ex.submit(_work, t) for t in todo]):
                fut.result()
                bar.update()
    bar.close()
    return write_manifest(out)
