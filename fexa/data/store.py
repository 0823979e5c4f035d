"""The training store: what training reads of an extract entry, readable frame by frame.

``fexa extract`` leaves each input's aligned crops as one H.264 video, which can only be read
from its start: an item drawn from a long video would cost the whole video. The store keeps,
beside the entry's files, one file ``store.bin`` holding

- every usable frame as an independently decodable JPEG (quality ``StoreConfig.quality``, at the
  crop size, 256 x 256 by default) with an index (frame -> byte range, CRC-32);
- the per-frame arrays the model inputs are built from, memory-mapped: ``usable`` [T] bool,
  ``times`` [T] f64, ``heatmap73`` [T,73,2] and ``traj63`` [T,63,2] f32 (crop pixels; NaN where no
  face), ``nose`` [T,2] f32, and ``colours63`` [T,63,3] uint8 (the crop's pixel under each
  trajectory point, sampled from the decoded crops when the store is built, so trajectories
  decode nothing).

Layout: 8-byte magic, uint64 header length, a JSON header (version, settings, the entry files'
checksums it was built from, each array's dtype/shape/offset, the array region's length and CRC-32,
the JPEG bytes' length), the CRC-32 of all before it (uint32), the arrays (from the next 64-byte
boundary), then the JPEG bytes. A frame is one seek and one JPEG decode; the header says whether
the store still matches its entry (a re-extracted entry or other settings rebuild it). Damage is
found, never used: the header's CRC on every open; the size and the array region when stores are
ensured (a damaged store is rebuilt) and when a process first opens one; each frame's CRC before it
is decoded (a damaged frame removes the store, so that the next run rebuilds it).
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import simplejpeg
from fexa.progress import tqdm

from fexa.errors import FexaError
from fexa.face.landmarks import get_layout, get_scheme
from fexa.io.atomic import atomic_path, remove_stale_temporaries
from fexa.io.trackfile import TrackData
from fexa.represent.trajectory import landmark_colours

STORE_FILE = "store.bin"
STORE_VERSION = 3  # 3: the header's CRC-32 (older stores are rebuilt)
MAGIC = b"FEXASTR1"
_ALIGN = 64


@dataclass(frozen=True)
class StoreConfig:
    """How frames are stored (a store made with other settings is rebuilt)."""

    quality: int = 90  # JPEG quality: ~11 KB and ~1.4 grey levels mean error per 256x256 crop (docs/training.md)
    subsampling: str = "420"  # chroma as in the H.264 crops it is made from: smallest and fastest to decode

    def __post_init__(self) -> None:
        if not 50 <= self.quality <= 100:
            raise FexaError(f"store quality must be in 50..100, got {self.quality!r}")
        if self.subsampling not in ("444", "422", "420"):
            raise FexaError(f"store subsampling must be 444, 422 or 420, got {self.subsampling!r}")


def entry_arrays(track: TrackData, given: bool = False) -> dict[str, np.ndarray]:
    """The per-frame landmark arrays of the store, from a track (NaN where no usable face). With
    ``given`` faces (the input is the face) every frame is usable; landmarks are NaN where the mesh failed."""
    points = track.points_crop.copy()
    points[~track.usable] = np.nan
    usable = np.ones(track.num_frames, bool) if given else track.usable.astype(bool)
    return {"usable": usable, "times": np.asarray(track.times, np.float64),
            "heatmap73": get_scheme("heatmap73").select(points, track.layout).astype(np.float32),
            "traj63": get_scheme("traj63").select(points, track.layout).astype(np.float32),
            "nose": points[:, get_layout(track.layout).nose_tip].astype(np.float32)}


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# -- building -------------------------------------------------------------------------------------
def store_state(entry: Path, cfg: StoreConfig = StoreConfig()) -> str:
    """"" when ``entry`` has a store built from its current files with ``cfg``; else why not."""
    path = entry / STORE_FILE
    if not path.is_file():
        return "no store yet"
    try:
        head = read_header(path)
    except FexaError as e:
        return str(e)
    try:
        meta = json.loads((entry / "meta.json").read_text())
    except (OSError, ValueError) as e:
        return f"unreadable meta.json: {e}"
    if head.get("source") != _source(meta):
        return "the entry was extracted again"
    if head.get("settings") != asdict(cfg) or head.get("version") != STORE_VERSION:
        return "built with other settings or an older fexa"
    try:
        _check_arrays(path, head)  # truncated, padded or damaged arrays: rebuilt
    except FexaError as e:
        return str(e)
    return ""


def given_faces(meta: dict) -> bool:
    """Whether an entry's meta.json says it was extracted from given faces (``fexa.extract``'s ``faces``)."""
    return meta.get("config", {}).get("faces") == "given"


def _source(meta: dict) -> dict:
    """What a store is built from: the entry's track and crops checksums."""
    return {k: v.get("sha256") for k, v in meta.get("files", {}).items() if k in ("track.npz", "crops.mp4")}


def build_store(entry: str | Path, cfg: StoreConfig = StoreConfig()) -> dict:
    """Write ``entry/store.bin`` from the entry's track and crops (atomically); return its header.

    The crops are decoded once, in order; memory stays at one frame whatever the video's length."""
    from fexa.extract import verify_entry  # imports the face models: not at a loader worker's start
    from fexa.io.media import Media

    entry = Path(entry)
    meta = json.loads((entry / "meta.json").read_text())
    why = verify_entry(entry, meta)
    if why:
        raise FexaError(f"cannot build the training store of {entry}: {why}; rerun `fexa extract`")
    remove_stale_temporaries(entry)  # what a killed build left behind
    track = TrackData.load(entry / "track.npz")
    arrays = entry_arrays(track, given_faces(meta))
    n = track.num_frames
    offsets, crcs = np.zeros(n + 1, np.int64), np.zeros(n, np.uint32)
    colours = np.zeros((n, arrays["traj63"].shape[1], 3), np.uint8)
    blobs = []
    decoded = 0
    for t, frame in enumerate(Media(entry / "crops.mp4").frames()):
        decoded += 1
        if t >= n:
            break
        if arrays["usable"][t]:
            colours[t] = landmark_colours(frame.rgb[None], arrays["traj63"][t][None])[0]
            blob = simplejpeg.encode_jpeg(frame.rgb, quality=cfg.quality, colorspace="RGB",
                                           colorsubsampling=cfg.subsampling)
            crcs[t] = zlib.crc32(blob)
            blobs.append(blob)
            offsets[t + 1] = offsets[t] + len(blob)
        else:
            offsets[t + 1] = offsets[t]
    if decoded != n:
        raise FexaError(f"damaged entry {entry}: crops.mp4 has {decoded} frames, its track {n}; rerun `fexa extract`")
    arrays.update(offsets=offsets, crc=crcs, colours63=colours)
    return _write(entry / STORE_FILE, arrays, blobs, {"version": STORE_VERSION, "settings": asdict(cfg),
                                                       "source": _source(meta), "entry": entry.name,
                                                       "frames": n, "crop_size": track.crop_size})


def _write(path: Path, arrays: dict[str, np.ndarray], blobs: list[bytes], head: dict) -> dict:
    layout, pos = {}, 0
    for name, a in arrays.items():
        layout[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": pos}
        pos = _aligned(pos + a.nbytes)
    region = bytearray(pos)
    for name, a in arrays.items():
        o = layout[name]["offset"]
        region[o:o + a.nbytes] = np.ascontiguousarray(a).tobytes()
    head = {**head, "arrays": layout, "arrays_bytes": len(region), "arrays_crc": zlib.crc32(region),
            "jpeg_bytes": int(arrays["offsets"][-1])}
    text = json.dumps(head).encode()
    start = MAGIC + struct.pack("<Q", len(text)) + text
    start += struct.pack("<I", zlib.crc32(start))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(start + b"\0" * (_aligned(len(start)) - len(start)))
        f.write(region)
        for b in blobs:
            f.write(b)
    return _with_offsets(head, len(text))


def _with_offsets(head: dict, length: int) -> dict:
    """The header plus where its parts lie (``arrays_at``, ``jpeg_at``) and the file's ``size``,
    all following from the header's length and the recorded region lengths."""
    arrays_at = _aligned(16 + length + 4)
    jpeg_at = arrays_at + int(head.get("arrays_bytes", 0))
    return {**head, "arrays_at": arrays_at, "jpeg_at": jpeg_at, "size": jpeg_at + int(head.get("jpeg_bytes", 0))}


def read_header(path: str | Path) -> dict:
    """The JSON header of a store file, verified by its CRC (one line errors for anything else:
    a header changed in one digit would place the arrays elsewhere)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            start = f.read(16)
            if len(start) < 16 or start[:8] != MAGIC:
                raise FexaError(f"{path} is not a fexa training store (bad magic)")
            (length,) = struct.unpack("<Q", start[8:])
            text = f.read(length)
            crc = f.read(4)
        if len(text) != length or len(crc) != 4:
            raise _damaged(path, "its header is cut short")
        if struct.unpack("<I", crc)[0] != zlib.crc32(start + text):
            with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError):
                if json.loads(text).get("version", STORE_VERSION) != STORE_VERSION:  # older store: no header CRC
                    raise FexaError(f"{path} was built by another fexa version; it is rebuilt from its entry "
                                    "when stores are ensured (training does)")
            raise _damaged(path, "header checksum differs")
        head = _with_offsets(json.loads(text), length)
        for name, a in head["arrays"].items():  # a layout outside its region is a writer's bug: refused too
            end = a["offset"] + np.dtype(a["dtype"]).itemsize * int(np.prod(a["shape"]))
            if not 0 <= a["offset"] <= end <= head["arrays_bytes"]:
                raise _damaged(path, f"array {name} lies outside the array region")
        return head
    except (OSError, ValueError, UnicodeDecodeError, TypeError, KeyError) as e:
        raise _damaged(path, f"unreadable header ({e})") from None


def _build_one(args: tuple[str, StoreConfig]) -> str:
    entry, cfg = args
    try:
        build_store(entry, cfg)
        return ""
    except FexaError as e:
        return str(e)


def ensure_stores(entries: list[str | Path], cfg: StoreConfig = StoreConfig(), workers: int = 1,
                  progress: bool = True) -> dict[str, str]:
    """Build the stores that are missing or stale (finished ones are kept, so an interrupted build
    resumes); return {entry: error} for those that could not be built (usually empty)."""
    todo = [e for e in dict.fromkeys(str(e) for e in entries) if store_state(Path(e), cfg)]
    errors: dict[str, str] = {}
    if not todo:
        return errors
    jobs = [(e, cfg) for e in todo]
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        results = pool.map(_build_one, jobs, chunksize=4) if pool else map(_build_one, jobs)
        for e, err in tqdm(zip(todo, results), total=len(todo), desc="training store", unit="entry",
                           disable=not progress):
            if err:
                errors[e] = err
    return errors


# -- reading --------------------------------------------------------------------------------------
_CHECKED: set[tuple[str, int, int, int]] = set()  # stores whose array region this process verified


def _damaged(path: Path, what: str) -> FexaError:
    """The error for damage that ``store_state`` also finds: the next ``ensure_stores`` rebuilds the store."""
    return FexaError(f"damaged training store {path}: {what}; it is rebuilt from its entry when stores are "
                     "ensured (the next training run does)")


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    """Which version of a store file this is (a rebuilt store is another)."""
    st = os.stat(path)
    return str(path), st.st_size, st.st_mtime_ns, st.st_ino


def _check_arrays(path: Path, head: dict) -> tuple[str, int, int, int]:
    """Verify the size and the array region's CRC of a store (once per process and file version);
    return the version verified."""
    key = _stat_key(path)
    if key[1] != head["size"]:
        raise _damaged(path, f"{key[1]} bytes, its header says {head['size']}")
    if key not in _CHECKED:
        with open(path, "rb") as f:  # read, not mapped: verification does not grow the RSS
            f.seek(head["arrays_at"])
            if zlib.crc32(f.read(head["arrays_bytes"])) != head["arrays_crc"]:
                raise _damaged(path, "its arrays fail their checksum")
        _CHECKED.add(key)
    return key


class _Entry:
    """What items read of an entry: the per-frame arrays (as attributes), the usable frames, the
    crop size, the bytes it holds (for :class:`EntryCache`) and ``frames(idx)``."""

    def __init__(self, arrays: dict[str, np.ndarray], crop_size: int, nbytes: int):
        self.arrays, self.crop_size, self.nbytes = arrays, int(crop_size), nbytes
        self.usable_frames = np.flatnonzero(arrays["usable"])

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None


class StoredEntry(_Entry):
    """One entry's store, opened read-only: arrays as memory maps, frames decoded on demand."""

    def __init__(self, entry: str | Path):
        self.path = Path(entry) / STORE_FILE
        if not self.path.is_file():
            raise FexaError(f"no training store at {self.path}: build it with `fexa extract ... --store` "
                            "(training builds it itself)")
        self.header = head = read_header(self.path)
        self._key = _check_arrays(self.path, head)
        self._map = np.memmap(self.path, np.uint8, "r")
        arrays = {name: np.ndarray(a["shape"], np.dtype(a["dtype"]), self._map, head["arrays_at"] + a["offset"])
                  for name, a in head["arrays"].items()}
        super().__init__(arrays, head["crop_size"], head["arrays_bytes"])

    def jpeg(self, t: int) -> bytes:
        """The stored JPEG of frame ``t``, checked against its CRC."""
        a, b = int(self.offsets[t]), int(self.offsets[t + 1])
        if a == b:
            raise FexaError(f"{self.path}: frame {t} has no face and was not stored")
        blob = self._map[self.header["jpeg_at"] + a: self.header["jpeg_at"] + b]
        if zlib.crc32(blob) != int(self.crc[t]):
            raise self._removed(f"frame {t} fails its checksum")
        return blob

    def _removed(self, what: str) -> FexaError:
        """Remove this damaged store (when the file is still the one opened, not a rebuilt one), so
        that the next ``ensure_stores`` rebuilds it; the error names the entry and says so."""
        with contextlib.suppress(FileNotFoundError):  # another worker may have removed it already
            if _stat_key(self.path) == self._key:
                self.path.unlink()
        return FexaError(f"damaged training store of entry {self.path.parent}: {what}; the store was removed "
                         "and is rebuilt from the entry when stores are ensured (the next training run does)")

    def frames(self, idx: np.ndarray) -> np.ndarray:
        """[n, S, S, 3] uint8 crops of frames ``idx`` (each distinct frame decoded once)."""
        idx = np.asarray(idx)
        uniq, inverse = np.unique(idx, return_inverse=True)
        out = np.empty((len(uniq), self.crop_size, self.crop_size, 3), np.uint8)
        for i, t in enumerate(uniq):
            try:
                simplejpeg.decode_jpeg(self.jpeg(int(t)), colorspace="RGB", buffer=out[i])
            except (ValueError, RuntimeError) as e:
                raise self._removed(f"frame {t} does not decode ({e})") from None
        return out if np.array_equal(uniq, idx) else out[inverse]


class DecodedEntry(_Entry):
    """The same interface from ``track.npz`` and the whole decoded ``crops.mp4`` (the slow path
    training used before the store; kept to compare against and for benchmarks)."""

    def __init__(self, entry: str | Path):
        from fexa.io.media import read_all  # the decoders: loader workers of the store path do not import them

        entry = Path(entry)
        track = TrackData.load(entry / "track.npz")
        self.path = entry
        arrays = entry_arrays(track, given_faces(json.loads((entry / "meta.json").read_text())))
        self._crops = read_all(entry / "crops.mp4")[1]
        if len(self._crops) != track.num_frames:
            raise FexaError(f"damaged entry {entry}: crops.mp4 has {len(self._crops)} frames, its track "
                            f"{track.num_frames}; rerun `fexa extract` (or the training command) to redo it")
        arrays["colours63"] = landmark_colours(self._crops, np.nan_to_num(arrays["traj63"]))
        super().__init__(arrays, track.crop_size, self._crops.nbytes)

    def frames(self, idx: np.ndarray) -> np.ndarray:
        return self._crops[np.asarray(idx)]


SOURCES = {"store": StoredEntry, "video": DecodedEntry}


class EntryCache:
    """Opened entries of one process, least recently used dropped first, bounded by the bytes
    they hold (memory-mapped arrays count as if resident) and by count (open files); the newest
    is always kept. ``max_entries=0``: no cache at all."""

    def __init__(self, source: str = "store", max_bytes: int = 256 << 20, max_entries: int = 128):
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, got {source!r}")
        self.opener, self.max_bytes, self.max_entries = SOURCES[source], max_bytes, max_entries
        self._open: OrderedDict[str, StoredEntry | DecodedEntry] = OrderedDict()
        self._bytes = 0

    def __call__(self, entry: str) -> StoredEntry | DecodedEntry:
        if self.max_entries == 0:  # no cache: every call opens the entry
            return self.opener(entry)
        e = self._open.get(entry)
        if e is not None:
            self._open.move_to_end(entry)
            return e
        e = self.opener(entry)
        self._open[entry] = e
        self._bytes += e.nbytes
        while len(self._open) > 1 and (self._bytes > self.max_bytes or len(self._open) > self.max_entries):
            _, old = self._open.popitem(last=False)
            self._bytes -= old.nbytes
        return e

    def __getstate__(self) -> dict:  # worker processes start with an empty cache
        return {**self.__dict__, "_open": OrderedDict(), "_bytes": 0}
