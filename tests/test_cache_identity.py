"""A cache entry is reused only for the very input and settings it was made from, and the tests of
the shared data cannot silently switch themselves off.

Inputs: a frame of a frame folder, a video and a still image each replaced by another of exactly
the same byte size (and times) must change the content fingerprint and make the cache redo the
entry; hashing names and sizes, or a file's first MiB, is not enough. Settings: an entry made with
other extraction settings is redone, one made with the same settings reused. Shared data: a
missing shared file skips only where no shared data is expected at all.

Mutants these tests catch (tried one at a time in a copy of the tree, issue 30):

- fexa/io/fingerprint.py, content_fingerprint: ``file_sha256(f)`` dropped from a frame folder's
  hash (names and sizes only) -> test_a_frame_replaced_by_one_of_the_same_size_redoes_the_entry.
- fexa/io/fingerprint.py, content_fingerprint: a file hashed by its size only, or by its first
  MiB only -> test_a_file_replaced_by_one_of_the_same_size_redoes_the_entry (video and image).
- fexa/extract.py, entry_state: the ``settings_digest != cfg.digest()`` check deleted ->
  test_an_entry_made_with_other_settings_is_stale and test_an_entry_made_with_other_settings_is_redone.
- fexa/extract.py, ExtractConfig.settings: a field left out (e.g. ``d.pop("crop_size")``) ->
  the same two tests, for that field.
- tests/conftest.py, shared_file / _shared_missing: a missing file skipped although shared data is
  expected -> test_a_missing_shared_file_fails_where_shared_data_is_expected and
  test_a_missing_shared_file_fails_a_pytest_run_with_FEXA_SHARED_DATA_set.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import conftest
import fexa.extract
from conftest import DEMO, entry_of, write_video
from fexa.extract import ExtractConfig, ensure_entry, entry_state, extract_many
from fexa.face.detector import TrackerConfig
from fexa.io.fingerprint import content_fingerprint
from fexa.io.media import read_all
from fexa.io.trackfile import TrackData

MIB = 2**20
CHANGED = "the input changed since it was extracted"
OTHER_SETTINGS = "extracted with other settings or an older fexa"


@pytest.fixture(scope="module")
def half() -> np.ndarray:
    """The demo clip's 72 frames at half size (180 x 320): frame 0 is neutral, frame 50 smiles."""
    return np.ascontiguousarray(read_all(DEMO)[1][:, ::2, ::2])


@pytest.fixture
def extractions(monkeypatch) -> list[Path]:
    """The inputs ``fexa.extract.extract_one`` is called for (by extract_many and ensure_entry), in order."""
    calls: list[Path] = []
    real = fexa.extract.extract_one

    def counted(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fexa.extract, "extract_one", counted)
    return calls


def stored_png(rgb: np.ndarray) -> bytes:
    """A PNG without compression: its byte size depends only on the picture's size, not its content."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def replace_keeping_times(path: Path, data: bytes) -> None:
    """Overwrite ``path`` with ``data`` and put its access and modification times back."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def meta_of(entry: Path) -> dict:
    return json.loads((entry / "meta.json").read_text())


# -- same-size replacements -------------------------------------------------------------------------
def test_a_frame_replaced_by_one_of_the_same_size_redoes_the_entry(tmp_path, half, extractions):
    """Eight stored PNG frames (173,097 bytes each); frame_0003.png becomes demo frame 50 (a smile)
    and later frame_0005.png frame 55: same names, sizes and times. Both extract_many and
    ensure_entry (analyze's path) redo the entry, whose frame 3 is then the smile; frames 0-2 keep
    their landmarks."""
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(8):
        (folder / f"frame_{i:04d}.png").write_bytes(stored_png(half[i]))
    out, cfg = tmp_path / "out", ExtractConfig()
    extract_many([folder], out, progress=False)
    entry = entry_of(out, folder)
    before, fingerprint = TrackData.load(entry / "track.npz"), content_fingerprint(folder)
    assert meta_of(entry)["status"] == "ok" and before.valid.all()

    frame3 = folder / "frame_0003.png"
    old, new = frame3.read_bytes(), stored_png(half[50])
    assert len(new) == len(old) == 173_097 and new != old
    replace_keeping_times(frame3, new)
    assert content_fingerprint(folder) != fingerprint
    assert entry_state(entry, folder, cfg) == CHANGED
    extractions.clear()
    extract_many([folder], out, progress=False)
    assert extractions == [folder]
    after = TrackData.load(entry / "track.npz")
    assert meta_of(entry)["fingerprint"] == content_fingerprint(folder)
    np.testing.assert_allclose(after.points[:3], before.points[:3], atol=1e-3)
    assert np.abs(after.points[3] - before.points[3]).max() > 5  # the smile's landmarks, in pixels

    replace_keeping_times(folder / "frame_0005.png", stored_png(half[55]))
    assert ensure_entry(folder, entry, cfg)["fingerprint"] == content_fingerprint(folder)
    assert extractions == [folder, folder]
    extract_many([folder], out, progress=False)  # unchanged now: reused by both
    ensure_entry(folder, entry, cfg)
    assert extractions == [folder, folder]


def _videos(half: np.ndarray, folder: Path) -> tuple[bytes, bytes]:
    """Two uncompressed AVIs of 10 half-size demo frames: frames 0-9, and frames 0-6 then the smile
    of frames 50-52 (172,800 bytes a frame: their first MiB is the same)."""
    a = write_video(folder / "a.avi", half[:10], fps=30, codec="rawvideo", pix_fmt="bgr24")
    b = write_video(folder / "b.avi", np.concatenate([half[:7], half[50:53]]), fps=30, codec="rawvideo",
                    pix_fmt="bgr24")
    return a.read_bytes(), b.read_bytes()


def _images(half: np.ndarray, folder: Path) -> tuple[bytes, bytes]:
    """Two stored 1280 x 720 PNGs: demo frame 0 at twice its size, and the same with rows 300 on
    (the mouth and chin) from the smiling frame 50 (3,841 bytes a row: their first MiB is the same)."""
    neutral, smile = (np.repeat(np.repeat(half[i], 4, axis=0), 4, axis=1) for i in (0, 50))
    edited = neutral.copy()
    edited[300:] = smile[300:]
    return stored_png(neutral), stored_png(edited)


@pytest.mark.parametrize("name, make, changed_frames", [("clip.avi", _videos, slice(7, 10)),
                                                        ("photo.png", _images, slice(0, 1))], ids=["video", "image"])
def test_a_file_replaced_by_one_of_the_same_size_redoes_the_entry(tmp_path, half, extractions, name, make,
                                                                  changed_frames):
    """A video and a still image overwritten by another of the same size whose first MiB is the
    same (times kept): the fingerprint changes, the entry is stale and redone, and its track has
    the new frames' landmarks."""
    first, second = make(half, tmp_path)
    assert len(first) == len(second) > 1.5 * MIB and first[:MIB] == second[:MIB] and first != second
    path, out = tmp_path / name, tmp_path / "out"
    path.write_bytes(first)
    extract_many([path], out, progress=False)
    entry = entry_of(out, path)
    before, fingerprint = TrackData.load(entry / "track.npz"), content_fingerprint(path)
    assert meta_of(entry)["status"] == "ok" and before.valid.all()

    replace_keeping_times(path, second)
    assert content_fingerprint(path) != fingerprint
    assert entry_state(entry, path, ExtractConfig()) == CHANGED
    extractions.clear()
    extract_many([path], out, progress=False)
    assert extractions == [path] and meta_of(entry)["fingerprint"] == content_fingerprint(path)
    after = TrackData.load(entry / "track.npz")
    unchanged = np.ones(len(after.points), bool)
    unchanged[changed_frames] = False
    np.testing.assert_allclose(after.points[unchanged], before.points[unchanged], atol=1e-3)
    assert np.abs(after.points[changed_frames] - before.points[changed_frames]).max() > 5


# -- extraction settings ----------------------------------------------------------------------------
# A value other than the default for every field of ExtractConfig (tracker fields as "tracker.<name>")
OTHER_VALUES = {
    "crop_size": 64, "crop_margin": 1.5, "rotate": False, "smooth": 1, "max_gap": 0, "fps": 15.0,
    "min_video_frames": 20, "write_crops": False, "faces": "given", "start": 0.1, "end": 0.3,
    "tracker.max_faces": 1, "tracker.detect_every": 1, "tracker.min_detection_confidence": 0.99,
    "tracker.min_tracking_confidence": 0.9, "tracker.roi_scale": 2.0, "tracker.roi_scale_detection": 2.0,
    "tracker.roi_size": 192, "tracker.match_iou": 0.5, "tracker.duplicate_iou": 0.8, "tracker.max_lost": 5,
    "tracker.small_image": 100, "tracker.max_roll": 45.0, "tracker.orientation_margin": 0.1,
    "tracker.orientation_min_score": 0.9, "tracker.orientation_every": 10, "tracker.whole_image_fallback": True,
    "tracker.backend": "mediapipe",
}
# how much memory is used, and where the models ran (the same results within rounding), not what comes out
NOT_IN_SETTINGS = {"frame_cache_mb": 1, "tracker.device": "cuda"}


def config_with(field: str, value) -> ExtractConfig:
    """The default ExtractConfig with one field (``tracker.<name>`` for the tracker's) set to ``value``."""
    if field.startswith("tracker."):
        return ExtractConfig(tracker=dataclasses.replace(TrackerConfig(), **{field.split(".", 1)[1]: value}))
    return ExtractConfig(**{field: value})


def _fields(config: dict, prefix: str = "") -> set[str]:
    """Every field of an asdict'ed config, nested ones as ``<outer>.<inner>``."""
    return {n for k, v in config.items() for n in (_fields(v, f"{prefix}{k}.") if isinstance(v, dict) else [prefix + k])}


@pytest.fixture(scope="module")
def gap_clip(tmp_path_factory, half) -> tuple[Path, Path]:
    """(clip, its entry made with the default settings): 10 half-size demo frames at 30 fps, frames
    4 and 5 black (the face lost there, no shot cut: max_gap 5 fills both)."""
    root = tmp_path_factory.mktemp("settings")
    frames = half[:10].copy()
    frames[4:6] = 0
    clip = write_video(root / "gap.mp4", frames, fps=30)
    extract_many([clip], root / "out", progress=False)
    entry = entry_of(root / "out", clip)
    track = TrackData.load(entry / "track.npz")
    assert meta_of(entry)["status"] == "ok" and track.filled.tolist() == [False] * 4 + [True] * 2 + [False] * 4
    return clip, entry


def test_every_setting_but_the_memory_budget_and_the_device_is_in_the_digest():
    """The parametrisations below cover every field: a field added to ExtractConfig is tried too."""
    assert set(OTHER_VALUES) | set(NOT_IN_SETTINGS) == _fields(dataclasses.asdict(ExtractConfig()))
    for field, value in NOT_IN_SETTINGS.items():
        assert config_with(field, value).digest() == ExtractConfig().digest()


@pytest.mark.parametrize("field", sorted(OTHER_VALUES))
def test_an_entry_made_with_other_settings_is_stale(gap_clip, field):
    """An entry made with the defaults is stale for a config differing in ``field`` only, and done
    for the defaults."""
    clip, entry = gap_clip
    other = config_with(field, OTHER_VALUES[field])
    assert other.digest() != ExtractConfig().digest()
    assert entry_state(entry, clip, other) == OTHER_SETTINGS
    assert entry_state(entry, clip, ExtractConfig()) == ""


def _track(entry: Path) -> TrackData:
    return TrackData.load(entry / "track.npz")


# What shows each setting in the entry of gap_clip (measured: defaults -> other value)
SHOWN = {
    "crop_size": lambda e: _track(e).crop_size,  # 256 -> 64
    "crop_margin": lambda e: _track(e).affine,
    "rotate": lambda e: _track(e).affine,  # the face is rolled about 2.5 degrees
    "smooth": lambda e: _track(e).affine,
    "max_gap": lambda e: int(_track(e).filled.sum()),  # 2 -> 0
    "fps": lambda e: _track(e).fps,  # 30 -> 15
    "write_crops": lambda e: (e / "crops.mp4").is_file(),
    "faces": lambda e: _track(e).affine,  # the whole frame scaled to the crop
    "tracker.detect_every": lambda e: meta_of(e)["detector_calls"],  # 3 -> 10
    "tracker.roi_size": lambda e: _track(e).points,
    "tracker.min_detection_confidence": lambda e: meta_of(e)["status"],  # ok -> no_face
}


@pytest.mark.parametrize("field", sorted(SHOWN))
def test_an_entry_made_with_other_settings_is_redone(tmp_path, gap_clip, extractions, field):
    """The default-settings entry, given to a run with ``field`` changed, is redone with that
    setting (which shows in the entry), and then reused by a run with the same settings."""
    clip, made = gap_clip
    entry = tmp_path / made.name
    shutil.copytree(made, entry)
    other = config_with(field, OTHER_VALUES[field])
    extract_many([clip], tmp_path, other, progress=False)
    assert extractions == [clip] and meta_of(entry)["settings_digest"] == other.digest()
    before, after = SHOWN[field](made), SHOWN[field](entry)
    assert not np.array_equal(before, after, equal_nan=isinstance(before, np.ndarray)), (before, after)
    extract_many([clip], tmp_path, other, progress=False)
    assert extractions == [clip]


# -- shared data ------------------------------------------------------------------------------------
def test_a_missing_shared_file_fails_where_shared_data_is_expected(tmp_path, monkeypatch):
    """No FEXA_SHARED_DATA and no ../shared/data: skip. FEXA_SHARED_DATA set, or ../shared/data
    present (a partial copy): a missing file fails the test, naming the file."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clip.mp4").write_bytes(b"x")
    monkeypatch.setattr(conftest, "SHARED_ENV", None)
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match="shared test data not found"):
        conftest.shared_file("clip.mp4")
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "data")  # the default folder, present
    assert conftest.shared_file("clip.mp4") == tmp_path / "data" / "clip.mp4"
    with pytest.raises(pytest.fail.Exception, match=f"shared test file missing: {tmp_path / 'data' / 'renamed.mp4'} "
                                                    r"\(the default shared-data folder is in use"):
        conftest.shared_file("renamed.mp4")
    monkeypatch.setattr(conftest, "SHARED_ENV", str(tmp_path / "absent"))
    monkeypatch.setattr(conftest, "SHARED", tmp_path / "absent")
    with pytest.raises(pytest.fail.Exception, match=f"shared test file missing: {tmp_path / 'absent' / 'clip.mp4'} "
                                                    rf"\(FEXA_SHARED_DATA={tmp_path / 'absent'} is in use"):
        conftest.shared_file("clip.mp4")


def test_a_missing_shared_file_fails_a_pytest_run_with_FEXA_SHARED_DATA_set(tmp_path):
    """The environment variable read at import, end to end: a pytest run with FEXA_SHARED_DATA set
    passes the test whose file is there and fails, naming the file, the one whose file is not."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "clip.mp4").write_bytes(b"x")
    probe = tmp_path / "probe" / "test_probe.py"
    probe.parent.mkdir()
    probe.write_text(f"import sys\nsys.path.insert(0, {str(Path(conftest.__file__).parent)!r})\n"
                     "from conftest import shared_file\n\n"
                     "def test_present():\n    assert shared_file('clip.mp4').read_bytes() == b'x'\n\n"
                     "def test_renamed():\n    shared_file('renamed.mp4')\n")
    env = {**os.environ, "FEXA_SHARED_DATA": str(data)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)], cwd=probe.parent,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "1 failed, 1 passed" in run.stdout, run.stdout + run.stderr
    assert f"shared test file missing: {data / 'renamed.mp4'} (FEXA_SHARED_DATA={data} is in use" in run.stdout
