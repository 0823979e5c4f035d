"""``fexa extract``: inputs -> cached face tracks, aligned crops and a manifest.

For each input, ``OUT/<id>/`` holds ``track.npz`` (see fexa.io.trackfile), ``crops.mp4`` (aligned
crops, frame i <-> track index i, black where the face is missing) and ``meta.json``; every other
face seen in at least ``MIN_FACE_FRAMES`` frames gets ``face_<track id>.npz`` and
``crops_<track id>.mp4`` (listed in meta.json's ``faces``);
``OUT/manifest.csv`` lists every entry (``MANIFEST_COLUMNS``).

An entry belongs to one input: its id is the input's stem plus a hash of its full resolved path,
and its meta.json records the input's content fingerprint (fexa.io.fingerprint), the extraction
settings and the checksums of its files. An entry is finished ("done") only while all three
still match, so an edited input, changed settings or a damaged file make a rerun redo it. Entries
are written atomically; concurrent shards only ever remove their own (or dead processes')
temporaries.

Statuses: ``ok``; ``partial`` (a damaged video: some frames could not be decoded; the reason and
``frames_expected`` vs ``frames_decoded`` say how many); ``no_face``; ``error`` (nothing usable,
``error`` says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
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
from fexa.progress import tqdm

import fexa
from fexa.errors import ConfigError, FexaError, MediaError, os_error_reason
from fexa.face.align import CROP_SIZE, apply_transform, crop_transforms, warp_crop
from fexa.face.detector import (BACKENDS, NUM_MESH_POINTS, FaceTracker, TrackerConfig, check_device,
                                native_output_silenced, points_box)
from fexa.face.identity import IdentityRecorder, ShotCuts
from fexa.face.pose import head_pose
from fexa.face.tracks import TrackSet, fill_gaps
from fexa.io.atomic import atomic_dir, remove_stale_temporaries, write_json, write_text
from fexa.io.fingerprint import content_fingerprint, entry_name, file_sha256
from fexa.io.media import VIDEO_EXTENSIONS, Media, check_range, frame_sequence, list_frame_files, prefetched
from fexa.io.trackfile import TrackData
from fexa.io.video_writer import VideoWriter

MANIFEST_COLUMNS = ["id", "path", "status", "frames", "frames_expected", "frames_decoded", "face_frames", "fps", "error"]
STATUSES = ("ok", "partial", "no_face", "error")
USABLE_STATUSES = ("ok", "partial")  # the entry holds a track
DONE_STATUSES = ("ok", "partial", "no_face")  # a rerun keeps these (while input and settings are unchanged)
LAYOUT = "mediapipe478"
CACHE_VERSION = 5  # bump when extraction changes its results: older entries are then redone
ENTRY_FILES = ("track.npz", "crops.mp4")
MIN_FACE_FRAMES = 10  # a face other than the subject is kept (face_<id>.npz) when seen in this many frames (or all)
MISSING_FRAMES_TOLERANCE = 2  # containers' frame counts can be this far off on intact videos
FACES = ("detect", "given")  # ExtractConfig.faces


def face_files(face: int | None = None) -> tuple[str, str]:
    """The track and crops file names of a face in an entry: the subject's (``None``), or another
    face's by its track id."""
    return ENTRY_FILES if face is None else (f"face_{face}.npz", f"crops_{face}.mp4")


@dataclass
class ExtractConfig:
    """How inputs are turned into tracks and crops."""

    crop_size: int = CROP_SIZE
    crop_margin: float = 1.0
    rotate: bool = True  # level the eyes in the crops
    smooth: int = 5  # frames over which the crop transform is averaged
    max_gap: int = 5  # fill gaps of at most this many frames by interpolation
    fps: float | None = None  # frame rate of folders of frames (default 30), or override
    min_video_frames: int = 2
    write_crops: bool = True
    frame_cache_mb: int = 64  # keep decoded frames for the crop pass up to this size, else decode again (bounds memory)
    # "detect": crops cut around the detected, tracked face; "given": the input is the face (a dataset's own
    # face crops): each crop is the whole frame resized to crop_size, every frame kept, the mesh only landmarks it
    faces: str = "detect"
    # the part of each input to read, in seconds of the input (None: its beginning / end); outputs keep
    # the input's timestamps (fexa.io.media.Media)
    start: float | None = None
    end: float | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

    def __post_init__(self) -> None:
        t = self.tracker
        checks = [("crop_size", self.crop_size, self.crop_size >= 32, "an integer >= 32"),
                  ("crop_margin", self.crop_margin, self.crop_margin > 0, "> 0"),
                  ("smooth", self.smooth, self.smooth >= 1, ">= 1"),
                  ("max_gap", self.max_gap, self.max_gap >= 0, ">= 0"),
                  ("fps", self.fps, self.fps is None or (math.isfinite(self.fps) and self.fps > 0),
                   "a positive, finite frame rate"),
                  ("max_faces", t.max_faces, t.max_faces >= 1, ">= 1"),
                  ("detect_every", t.detect_every, t.detect_every >= 1, ">= 1"),
                  ("faces", self.faces, self.faces in FACES, " or ".join(FACES)),
                  ("backend", t.backend, t.backend in BACKENDS, " or ".join(BACKENDS))]
        for name, value, ok, allowed in checks:
            if not ok:
                raise FexaError(f"extract setting {name}={value!r} is not allowed: must be {allowed}")
        check_range(self.start, self.end)

    def range_tag(self) -> str:
        """What an id gets for a part of an input (``-t12.5-40s``; ``""`` for the whole input), so that
        two parts of one file never share a cache entry or an output folder."""
        if self.start is None and self.end is None:
            return ""
        return f"-t{self.start or 0:g}-" + ("end" if self.end is None else f"{self.end:g}s")

    def settings(self) -> dict:
        """What the results depend on (not e.g. the frame-cache budget), with the cache version."""
        d = asdict(self)
        d.pop("frame_cache_mb")
        d["tracker"].pop("device")  # where the models ran: the results agree within rounding
        if not d["tracker"]["whole_image_fallback"]:  # added later: left out when off, so older caches stay valid
            d["tracker"].pop("whole_image_fallback")
        if d["tracker"]["backend"] == "mediapipe":  # added later: left out for mediapipe, so older caches stay valid
            d["tracker"].pop("backend")
        if d["faces"] == "detect":  # added later: left out for detection, so older caches stay valid
            d.pop("faces")
        for name in ("start", "end"):  # added later: left out for whole inputs
            if d[name] is None:
                d.pop(name)
        return {"cache_version": CACHE_VERSION, **d}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.settings(), sort_keys=True).encode()).hexdigest()[:16]


# -- inputs and ids -------------------------------------------------------------------------------
FOLDER_AS = ("auto", "video", "images")


def expand_inputs(paths: list[str | Path], folder_as: str = "auto") -> list[Path]:
    """Files stay as given. A folder becomes its videos (recursively, sorted) and its images:
    each folder's images are one video (a frame folder) when ``folder_as`` is ``video``, or, with
    ``auto``, when they look like one (``fexa.io.media.frame_sequence``: numbered names, one size);
    otherwise every image is an input of its own. A folder with neither stays one input (an error
    later: it has no images)."""
    if folder_as not in FOLDER_AS:
        raise FexaError(f"folder_as must be one of {', '.join(FOLDER_AS)}, got {folder_as!r}")
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            out.append(p)
            continue
        inside = sorted(p.rglob("*"))  # one walk of the tree
        # anything named like a video that is not a folder: a FIFO or a link loop becomes that input's error row
        found = [q for q in inside if q.suffix.lower() in VIDEO_EXTENSIONS and not q.is_dir()]
        for folder in [p, *(q for q in inside if q.is_dir())]:
            images = list_frame_files(folder)
            if not images:
                continue
            one_video = folder_as == "video" or (folder_as == "auto" and not frame_sequence(images))
            found.extend([folder] if one_video else images)
        out.extend(found if found else [p])
    return out


def input_ids(paths: list[str | Path], tag: str = "") -> list[str]:
    """A readable id per input, different for every resolved path: ``<stem>-<path hash>``, then
    ``tag`` (``ExtractConfig.range_tag``: the part of the input read)."""
    return [entry_name(p) + tag for p in paths]


def unique_inputs(inputs: list[str | Path], folder_as: str = "auto", tag: str = "") -> dict[str, Path]:
    """{id: path} of the expanded inputs (``expand_inputs``), each input once (in the order given);
    ``tag`` as in ``input_ids``."""
    found = expand_inputs(inputs, folder_as)
    return dict(zip(input_ids(found, tag), found))


def parse_shard(text: str | None) -> tuple[int, int]:
    """'K/N' (0 <= K < N) -> (K, N); None -> (0, 1)."""
    if not text:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise FexaError(f"--shard must be K/N with 0 <= K < N, got {text!r}")
    return int(m[1]), int(m[2])


def file_checksums(folder: Path, names: Iterable[str] | None = None) -> dict:
    """{name: {size, sha256}} of the entry files present in ``folder`` (recorded in meta.json):
    ``names``, by default the subject's files and every other face's."""
    if names is None:
        names = (*ENTRY_FILES, *sorted(p.name for p in folder.glob("face_*.npz")),
                 *sorted(p.name for p in folder.glob("crops_*.mp4")))
    return {n: {"size": (folder / n).stat().st_size, "sha256": file_sha256(folder / n)}
            for n in names if (folder / n).is_file()}


def verify_entry(entry: Path, meta: dict | None = None) -> str:
    """Why the files of ``entry`` cannot be trusted ("" when they match the checksums in its
    meta.json): missing, truncated or changed files, or no checksums at all."""
    try:
        meta = meta if meta is not None else json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as e:
        return f"unreadable meta.json in {entry}: {e}"
    files = meta.get("files")
    if files is None:
        return f"{entry} has no file checksums (made by an older fexa)"
    if meta.get("status") in USABLE_STATUSES and "track.npz" not in files:
        return f"{entry} lacks track.npz"
    for name, want in files.items():
        p = entry / name
        if not p.is_file():
            return f"{p} is missing"
        if p.stat().st_size != want["size"]:
            return f"{p} is damaged ({p.stat().st_size} bytes, {want['size']} written)"
        if file_sha256(p) != want["sha256"]:
            return f"{p} is damaged (checksum differs from the one written)"
    return ""


# -- one input ------------------------------------------------------------------------------------
def _track(media: Media, cfg: ExtractConfig, progress: bool) -> tuple[TrackSet, np.ndarray, dict, list | None]:
    """First pass: detect and track faces in every frame. Returns the tracks, the frame times, the
    tracker's counts (detector calls, orientation rejects, turned tracks) and the decoded frames
    while they fit in ``cfg.frame_cache_mb`` (None otherwise), so the crop pass need not decode again."""
    static = media.kind == "image"
    observations, times = [], []
    cache: list | None = [] if cfg.write_crops else None
    budget = cfg.frame_cache_mb * 2**20
    people = None if static or cfg.faces == "given" else IdentityRecorder(media.info.fps)
    cuts = ShotCuts()
    # mediapipe's C++ side prints at start-up; the torch backend prints nothing (and may run in several threads,
    # which must not swap the process's file descriptors under each other)
    with native_output_silenced() if cfg.tracker.backend == "mediapipe" else contextlib.nullcontext():
        bar = tqdm(total=media.info.num_frames or None, desc=media.path.name, unit="frame", leave=False,
                   disable=not progress or static)  # an image is one step of its batch's bar, not a bar of its own
        with FaceTracker(cfg.tracker, static=static) as tracker:
            for fr in prefetched(media.frames()):
                cut = people is not None and cuts(fr.rgb)
                if cut:
                    tracker.end_tracks()  # a new shot: nobody is followed across it
                observations.append(tracker(fr.rgb))
                if people is not None:
                    people.observe(len(times), fr.rgb, observations[-1], cut)
                times.append(fr.time)
                if cache is not None:
                    cache.append(fr.rgb)
                    budget -= fr.rgb.nbytes
                    cache = cache if budget >= 0 else None
                bar.update()
            counts = {"detector_calls": tracker.detector_calls, "orientation_rejects": tracker.orientation_rejects,
                      "turned_tracks": tracker.turned_tracks, "misfitted_frames": 0,
                      "whole_image_faces": tracker.whole_image_faces}
            for track_id, first, end in tracker.misfitted:  # meshed the wrong way up: the face counts as lost there
                if people is not None:
                    people.forget(track_id, first, end)
                for t in range(first, end):
                    kept = [o for o in observations[t] if o.track_id != track_id]
                    counts["misfitted_frames"] += len(kept) < len(observations[t])
                    observations[t] = kept
        bar.close()
    if people is None:
        return TrackSet.from_observations(observations), np.asarray(times, np.float64), counts, cache
    who = people.people()
    counts["people_dropped_frames"] = len(who.dropped)
    for t, obs in enumerate(observations):  # tracks become people: a track id is now a person's
        observations[t] = [o for o in obs if (o.track_id, t) in who.owner and (o.track_id, t) not in who.dropped]
        for o in observations[t]:
            o.track_id = who.owner[(o.track_id, t)]
    ts = TrackSet.from_observations(observations, people.cuts)
    ts.faces = {i: who.faces.get(i) for i in ts.ids}
    return ts, np.asarray(times, np.float64), counts, cache


def _subject_arrays(ts: TrackSet, main: int, cfg: ExtractConfig) -> dict:
    valid = ts.valid(main)
    points, filled = fill_gaps(ts.points[main], valid, cfg.max_gap, ts.cuts)
    usable = valid | filled
    affine = crop_transforms(points, LAYOUT, usable, cfg.crop_size, cfg.crop_margin, cfg.rotate, cfg.smooth)
    crop = apply_transform(points, affine).astype(np.float32)
    crop[~usable] = np.nan
    score, _ = fill_gaps(ts.score[main], valid, cfg.max_gap, ts.cuts)
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


def _rounded(descriptor: np.ndarray | None) -> list[float] | None:
    """A face descriptor for meta.json (fexa.face.identity.same_person compares two)."""
    return None if descriptor is None else [round(float(v), 5) for v in descriptor]


def people_warnings(ts: TrackSet, main: int, others: list[int], times: np.ndarray) -> list[str]:
    """What a reader must know about the people in view: shot cuts, and every other person kept
    (``others``: seen in at least ``MIN_FACE_FRAMES`` frames), for how long and when (their frames
    are not the subject's)."""
    n, out = ts.num_frames, []
    if ts.cuts:
        at = ", ".join(f"{times[c]:.2f}" for c in ts.cuts[:10]) + (", ..." if len(ts.cuts) > 10 else "")
        out.append(f"{len(ts.cuts)} shot cut(s) at {at} s: the subject is followed across a cut only where the face "
                   "matches (fexa.face.identity)")
    if others:
        dt = float(np.median(np.diff(times))) if n > 1 else 0.0
        seen = {i: ts.valid(i) for i in others}
        people = [f"face {i}: {v.sum() * dt:.1f} s, {v.sum()} frames, {times[v.argmax()]:.2f}-"
                  f"{times[n - 1 - v[::-1].argmax()]:.2f} s" for i, v in seen.items()]
        out.append(f"{len(others)} other person(s) in view ({'; '.join(people)}): their frames are not the subject's "
                   f"(face {main}, the person seen longest, in {int(ts.valid(main).sum())} of {n} frames); "
                   "--faces all analyses each person")
    if len(ts.ids) - 1 > len(others):
        out.append(f"{len(ts.ids) - 1 - len(others)} face(s) seen in fewer than {MIN_FACE_FRAMES} frames each were "
                   "left out")
    return out


def _given_track(ts: TrackSet, main: int | None, times: np.ndarray, fps: float, frame_size: tuple[int, int],
                 cfg: ExtractConfig) -> TrackData:
    """The subject's track when the input is the face (``faces="given"``): every frame usable, the crop
    the whole frame scaled to crop_size (no rotation, no re-alignment), landmarks where the mesh found
    the face and NaN elsewhere (``valid`` says which)."""
    n, (h, w), s = len(times), frame_size, cfg.crop_size
    points = ts.points[main] if main is not None else np.full((n, NUM_MESH_POINTS, 3), np.nan, np.float32)
    valid = np.isfinite(points[:, :, :2]).all(axis=(1, 2))
    affine = np.tile(np.array([[s / w, 0, 0], [0, s / h, 0]], np.float32), (n, 1, 1))
    boxes = np.stack([ts.boxes(i) for i in ts.ids], axis=1) if ts.ids else np.full((n, 0, 4), np.nan)
    return TrackData(times=times, points=points.astype(np.float32), affine=affine,
                     points_crop=apply_transform(points, affine).astype(np.float32),
                     box=points_box(points).astype(np.float32),
                     score=ts.score[main].astype(np.float32) if main is not None else np.zeros(n, np.float32),
                     detected=ts.detected[main] if main is not None else np.zeros(n, bool), pose=head_pose(points),
                     valid=valid, filled=np.zeros(n, bool), num_faces=ts.faces_per_frame(),
                     track_boxes=boxes.astype(np.float32), track_ids=np.asarray(ts.ids, np.int32), fps=fps,
                     crop_size=s, frame_size=frame_size, layout=LAYOUT, track_id=-1 if main is None else int(main))


def _write_given_crops(frames: Iterable[np.ndarray], path: Path, track: TrackData, cfg: ExtractConfig) -> None:
    """The crops of given faces: each whole frame resized to crop_size as the papers' loaders resize
    (PIL bilinear, antialiased when shrinking: torchvision's Resize on PIL images)."""
    from PIL import Image

    s = cfg.crop_size
    with VideoWriter(path, track.fps or 25.0) as w:
        for _, rgb in zip(range(track.num_frames), frames):
            w.write(np.asarray(Image.fromarray(rgb).resize((s, s), Image.BILINEAR)))


def _write_crops(frames: Iterable[np.ndarray], tracks: list[TrackData], paths: list[Path], cfg: ExtractConfig) -> None:
    """Second pass: write each face's aligned crops of ``frames`` to its path (black where the face
    is missing), all in one pass over the frames."""
    black = np.zeros((cfg.crop_size, cfg.crop_size, 3), np.uint8)
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(VideoWriter(p, tracks[0].fps or 25.0)) for p in paths]
        for t, rgb in zip(range(tracks[0].num_frames), frames):
            for track, w in zip(tracks, writers):
                w.write(warp_crop(rgb, track.affine[t], cfg.crop_size) if track.usable[t] else black)


def extract_one(path: str | Path, entry: str | Path, cfg: ExtractConfig | None = None, progress: bool = False,
                fingerprint: str | None = None) -> dict:
    """Process one input into the folder ``entry`` (written atomically); return its meta dict.

    Problems with the input are recorded (status ``error``, or ``partial`` for a damaged video
    that still gave frames) rather than raised. ``fingerprint``: the input's, if already known."""
    cfg = cfg or ExtractConfig()
    path, entry = Path(path), Path(entry)
    t0 = time.perf_counter()
    meta: dict = {"id": entry.name, "path": str(path.absolute()), "fingerprint": fingerprint or "",
                  "fexa_version": fexa.__version__, "settings_digest": cfg.digest(), "config": asdict(cfg),
                  "status": "error", "frames": 0, "frames_expected": 0, "frames_decoded": 0, "face_frames": 0,
                  "fps": 0.0, "error": "", "warnings": []}
    with atomic_dir(entry) as tmp:
        try:
            media = Media(path, cfg.fps, cfg.start, cfg.end)
            meta["fingerprint"] = fingerprint or content_fingerprint(path)
            from fexa.face.batching import batch_client  # torch: imported only when something is tracked

            with batch_client():  # only the tracking pass calls the face models: only it is waited for
                ts, times, counts, cache = _track(media, cfg, progress)
            n = ts.num_frames
            info = media.info
            fps = info.fps if info.fps > 0 else (1.0 / np.median(np.diff(times)) if n > 1 else 0.0)
            meta.update(kind=info.kind, width=info.width, height=info.height, rotation=info.rotation, frames=n,
                        frames_expected=info.num_frames, frames_decoded=n, fps=round(float(fps), 4), **counts)
            if cfg.start is not None or cfg.end is not None:  # the part of the input these results come from
                meta["range"] = [media.start, media.end if math.isfinite(media.end) else None]
            meta["warnings"] += media.notes
            if counts["orientation_rejects"]:
                meta["warnings"].append(f"{counts['orientation_rejects']} face fit(s) rejected: the face was rolled more "
                                        f"than {cfg.tracker.max_roll:g} degrees from upright in its region")
            if counts["turned_tracks"]:
                meta["warnings"].append("a face was found turned by 90 degrees or more (e.g. upside down): its "
                                        "region is turned upright before the landmarks are fitted")
            if counts["whole_image_faces"]:
                meta["warnings"].append("no face was detected: the landmarks were fitted with the whole image as the face "
                                        "(whole_image_fallback, for datasets of face crops)")
            if counts["misfitted_frames"]:
                meta["warnings"].append(f"{counts['misfitted_frames']} frame(s) fitted before the face was found turned "
                                        "over are marked face lost")
            lost = info.kind == "video" and info.num_frames - n > MISSING_FRAMES_TOLERANCE
            damage = "; ".join(filter(None, [f"{info.num_frames - n} of {info.num_frames} frames missing" if lost else "",
                                             media.decode_error]))
            if n == 0:
                raise MediaError(f"no frames decoded from {path}")
            if info.kind == "video" and n < cfg.min_video_frames:
                raise MediaError(f"video has {n} frame(s); at least {cfg.min_video_frames} are needed: {path}")
            main = ts.main_track()
            meta["tracks"] = [{"id": i, "frames": int(ts.valid(i).sum()), "face": _rounded(ts.faces.get(i))}
                              for i in ts.ids]
            if cfg.faces == "given":
                track = _given_track(ts, main, times, float(fps), (info.height, info.width), cfg)
                track.save(tmp / ENTRY_FILES[0])
                if cfg.write_crops:
                    frames = cache if cache is not None else (fr.rgb for fr in prefetched(media.frames()))
                    _write_given_crops(frames, tmp / ENTRY_FILES[1], track, cfg)
                face = int(track.valid.sum())
                meta.update(status="ok", face_frames=face, filled_frames=0, subject_track=track.track_id)
                if face < n:
                    meta["warnings"].append(f"no landmarks in {n - face} of {n} frames: their given face images "
                                            "are kept, with landmarks marked missing")
            elif main is None:
                meta.update(status="no_face", error=f"no face found in any of {n} frames")
            else:
                boxes = np.stack([ts.boxes(i) for i in ts.ids], axis=1).astype(np.float32)
                others = [i for i in ts.ids if i != main and ts.valid(i).sum() >= min(MIN_FACE_FRAMES, n)]
                faces = [None, *others]  # None: the subject
                tracks = [TrackData(
                    times=times, **_subject_arrays(ts, main if f is None else f, cfg), num_faces=ts.faces_per_frame(),
                    track_boxes=boxes, track_ids=np.asarray(ts.ids, np.int32), fps=float(fps), crop_size=cfg.crop_size,
                    frame_size=(info.height, info.width), layout=LAYOUT, track_id=int(main if f is None else f),
                ) for f in faces]
                track = tracks[0]
                with ThreadPoolExecutor(max_workers=1) as pool:  # compression overlaps the crop pass
                    saving = [pool.submit(tr.save, tmp / face_files(f)[0]) for f, tr in zip(faces, tracks)]
                    if cfg.write_crops:
                        frames = cache if cache is not None else (fr.rgb for fr in prefetched(media.frames()))
                        _write_crops(frames, tracks, [tmp / face_files(f)[1] for f in faces], cfg)
                    del cache
                    for job in saving:
                        job.result()
                meta["faces"] = [{"id": int(f), "frames": int(ts.valid(f).sum()), "track": face_files(f)[0]}
                                 for f in others]
                face = int(track.valid.sum())
                meta.update(status="ok", face_frames=face, filled_frames=int(track.filled.sum()), subject_track=int(main))
                meta["cuts"] = [float(times[c]) for c in ts.cuts]
                meta["warnings"] += people_warnings(ts, main, others, times)
                if face < n:
                    meta["warnings"].append(f"face missing in {n - face} of {n} frames "
                                            f"({int(track.filled.sum())} filled by interpolation)")
            what = "frame folder with unreadable frames" if info.kind == "frames" else "damaged video"
            if damage and meta["status"] == "ok":
                meta.update(status="partial", error=f"{what}, {n} frames decoded"
                            + (f" of {info.num_frames} expected" if info.num_frames else "") + f": {damage}")
            elif damage:
                meta["warnings"].append(f"{what}: {damage}")
        except FexaError as e:
            meta.update(status="error", error=str(e))
        except OSError as e:  # a full disk or an unwritable cache: the user's to fix, said in one line
            meta.update(status="error", error=os_error_reason(e, str(entry)))
        except Exception as e:  # an input must never stop the batch: record what happened
            meta.update(status="error", error=f"internal error: {type(e).__name__}: {e}", traceback=traceback.format_exc())
        meta["files"] = file_checksums(tmp)
        meta["seconds"] = round(time.perf_counter() - t0, 3)
        write_json(tmp / "meta.json", meta)
    return meta


# -- many inputs ----------------------------------------------------------------------------------
def entry_state(entry: Path, path: Path, cfg: ExtractConfig, fingerprint: str | None = None) -> str:
    """"" when ``entry`` holds a finished, intact result for the unchanged input ``path`` made with
    settings ``cfg``; otherwise why it must be (re)done."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except FileNotFoundError:
        return "not extracted yet"
    except (OSError, ValueError) as e:
        return f"unreadable meta.json: {e}"
    if meta.get("status") not in DONE_STATUSES:
        return f"status {meta.get('status')}"
    if meta.get("settings_digest") != cfg.digest():
        return "extracted with other settings or an older fexa"
    try:
        fingerprint = fingerprint or content_fingerprint(path)
    except FexaError as e:
        return str(e)
    if meta.get("fingerprint") != fingerprint:
        return "the input changed since it was extracted"
    return verify_entry(entry, meta)


def ensure_entry(path: Path, entry: Path, cfg: ExtractConfig, progress: bool = False) -> dict:
    """The meta dict of ``entry`` for ``path``, extracting it first unless it is done (``entry_state``)."""
    fingerprint = _fingerprint_or_none(path)
    if entry_state(entry, path, cfg, fingerprint):
        return extract_one(path, entry, cfg, progress=progress, fingerprint=fingerprint)
    return json.loads((entry / "meta.json").read_text())


def record_failure(entry: Path, path: Path, cfg: ExtractConfig, reason: str, fingerprint: str | None = None) -> None:
    """An ``error`` entry for an input whose processing died outside ``extract_one``."""
    with atomic_dir(entry) as tmp:
        write_json(tmp / "meta.json", {"id": entry.name, "path": str(path.absolute()), "fingerprint": fingerprint or "",
                                       "settings_digest": cfg.digest(), "status": "error", "error": reason,
                                       "files": {}, "warnings": []})


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
    path, entry, cfg, fingerprint = args
    return extract_one(path, entry, cfg, progress=False, fingerprint=fingerprint)


def _fingerprint_or_none(path: Path) -> str | None:
    try:
        return content_fingerprint(path)
    except FexaError:
        return None  # extract_one records the reason


def extract_many(
    inputs: list[str | Path],
    out: str | Path,
    cfg: ExtractConfig | None = None,
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    folder_as: str = "auto",
    streams: int = 1,
) -> pd.DataFrame:
    """Extract every input (this shard's share; folders expanded by ``expand_inputs`` with
    ``folder_as``) into ``out`` and return the manifest. ``workers``: processes, each extracting one input
    at a time; ``streams`` (torch face backend): inputs extracted at once by threads of this process, their
    face models' calls run in shared batches (fexa.face.batching; on ``cfg.tracker.device``)."""
    cfg = cfg or ExtractConfig()
    if not isinstance(streams, int) or streams < 1:
        raise ConfigError(f"streams: expected an integer >= 1; got {streams!r}")
    if streams > 1 and (workers > 1 or cfg.tracker.backend != "torch"):
        raise ConfigError(f"streams={streams}: batched streams need the torch face backend in one process "
                          f"(got backend {cfg.tracker.backend!r}, workers={workers})")
    check_device(cfg.tracker)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    k, n = shard
    mine = [(p, out / i, cfg, _fingerprint_or_none(p)) for j, (i, p) in enumerate(unique_inputs(inputs, folder_as, cfg.range_tag()).items())
            if j % n == k]
    todo = [t for t in mine if entry_state(t[1], t[0], cfg, t[3])]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="extract", unit="input", disable=not progress)
    if streams > 1:
        _extract_streams(todo, streams, bar)
    elif workers <= 1:
        for p, entry, c, fingerprint in todo:
            bar.set_postfix_str(p.name)
            extract_one(p, entry, c, progress=progress, fingerprint=fingerprint)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
            futures = {ex.submit(_work, t): t for t in todo}
            for fut in as_completed(futures):
                try:
                    fut.result()
                except Exception as e:  # the worker died (e.g. killed, out of memory): record it, go on
                    p, entry, c, fingerprint = futures[fut]
                    record_failure(entry, p, c, f"worker process failed: {type(e).__name__}: {e}", fingerprint)
                bar.update()
    bar.close()
    return write_manifest(out)


def _extract_streams(todo: list[tuple], streams: int, bar) -> None:
    """Extract ``todo`` (``extract_many``'s tasks) with ``streams`` threads whose face model calls are batched
    together (fexa.face.batching: each thread is a client of the group while its tracking pass runs)."""
    from fexa.face.batching import BatchGroup, batching

    group = BatchGroup()
    with batching(group), ThreadPoolExecutor(max_workers=streams) as pool:
        futures = {pool.submit(extract_one, p, entry, c, progress=False, fingerprint=fingerprint): (p, entry, c, fingerprint)
                   for p, entry, c, fingerprint in todo}
        for fut in as_completed(futures):
            try:
                fut.result()
            except Exception as e:  # noqa: BLE001 - as a worker process's failure: recorded, the others go on
                p, entry, c, fingerprint = futures[fut]
                record_failure(entry, p, c, f"stream failed: {type(e).__name__}: {e}", fingerprint)
            bar.set_postfix_str(f"{group.items / max(group.batches, 1):.1f} faces a batch")
            bar.update()
