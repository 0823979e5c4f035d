"""Shared fixtures: paths to the real media in ../shared/data (tests skip where no shared data is
expected, and fail where it is but a file is missing), the bundled demo clip, and synthetic videos
written with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# a PCDA small enough to train an epoch on CPU in seconds (from scratch, Gaussian landmark trunk)
TINY_PCDA = ["model.options.ir_units=[1, 1, 1]", "model.options.ir_channels=[8, 16, 32]", "model.options.dim=32",
             "model.options.num_heads=2", "model.options.depth=1", "model.options.landmark_channels=8",
             "model.options.landmark_trunk=gaussian", "model.pretrained=none", "train.epochs=1", "train.batch_size=2",
             "eval.bootstrap=0", "data.val_fraction=0"]
SHARED_ENV = os.environ.get("FEXA_SHARED_DATA") or None  # set: the shared data must be there
SHARED = Path(SHARED_ENV or REPO.parent / "shared" / "data")
DEMO = REPO / "fexa" / "data" / "demo" / "single_face.mp4"


def shared_expected() -> bool:
    """Whether the shared data must be there: FEXA_SHARED_DATA is set, or ../shared/data exists."""
    return SHARED_ENV is not None or SHARED.is_dir()


def _shared_missing(what: str) -> None:
    """Skip where no shared data is expected; fail, naming ``what``, where it is (a renamed or
    deleted clip, or a partial copy, must not silently switch its checks off)."""
    if not shared_expected():
        pytest.skip(f"shared test data not found at {SHARED} (FEXA_SHARED_DATA is not set)")
    source = f"FEXA_SHARED_DATA={SHARED_ENV}" if SHARED_ENV is not None else "the default shared-data folder"
    pytest.fail(f"shared test file missing: {what} ({source} is in use; renamed or deleted?)", pytrace=False)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared-data folder; skip or fail as ``_shared_missing`` says where it is absent."""
    if not SHARED.is_dir():
        _shared_missing(str(SHARED))
    return SHARED


def shared_file(rel: str) -> Path:
    """The shared file ``rel``; skip or fail as ``_shared_missing`` says where it is absent."""
    p = SHARED / rel
    if not p.exists():
        _shared_missing(str(p))
    return p


def entry_of(out: Path, path: Path) -> Path:
    """The cache entry (or analysis folder) of input ``path`` under ``out``."""
    from fexa.io.fingerprint import entry_name

    return Path(out) / entry_name(path)


def by_stem(df):
    """A manifest or summary indexed by its inputs' stems (ids are ``<stem>-<path hash>``)."""
    return df.assign(stem=df["id"].astype(str).str.rsplit("-", n=1).str[0]).set_index("stem")


def write_video(path: Path, frames: np.ndarray, fps: float = 25.0, codec: str = "libx264",
                pix_fmt: str = "yuv420p", in_format: str = "rgb24", times: list[float] | None = None,
                fmt: str | None = None, options: dict | None = None, rotation: int | None = None) -> Path:
    """Encode frames [T, H, W, C] with PyAV; ``times`` (seconds) gives variable frame rate; ``fmt``
    and ``options`` the container and its options; ``rotation`` display-matrix metadata (degrees)."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = pix_fmt
        if rotation is not None:
            s.set_display_rotation(rotation)
        if times is not None:
            s.codec_context.time_base = Fraction(1, 1000)
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format=in_format)
            if times is not None:
                vf.pts = int(round(times[i] * 1000))
                vf.time_base = Fraction(1, 1000)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="session")
def demo_entry(tmp_path_factory) -> Path:
    """The bundled demo clip extracted once for the whole session."""
    from fexa.extract import extract_many

    out = tmp_path_factory.mktemp("demo")
    from fexa.data.store import build_store

    df = extract_many([DEMO], out, progress=False)
    assert df.loc[0, "status"] == "ok", df.to_dict()
    build_store(entry_of(out, DEMO))  # the training store (fexa.data.store) beside the entry
    return entry_of(out, DEMO)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One extraction cache for the shared clips, used by every test module (each clip extracted once)."""
    return tmp_path_factory.mktemp("shared_cache")


def extracted(cache: Path, *rel: str, backend: str | None = None) -> dict[str, Path]:
    """Cache entries (stem -> entry folder) of shared clips ``rel``, extracted into ``cache`` if not yet there;
    ``backend``: another face backend than the default, whose entries are kept in a folder beside ``cache``."""
    from fexa.extract import ExtractConfig, extract_many
    from fexa.face.detector import TrackerConfig

    cfg = ExtractConfig() if backend is None else ExtractConfig(tracker=TrackerConfig(backend=backend))
    if backend is not None:
        cache = cache.parent / f"{cache.name}-{backend}"
    paths = [shared_file(r) for r in rel]
    extract_many(paths, cache, cfg, progress=False)
    return {p.stem: entry_of(cache, p) for p in paths}
