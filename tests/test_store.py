"""The training store: items equal to the old whole-video path, damage named, builds idempotent
and resumable, no video decoded by training, and `fexa bench loader` on a manifest of windows."""

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import default_collate

from conftest import DEMO, REPO
from fexa.data.samples import (IMAGENET_STD, FaceSamples, SampleConfig, finish_batch, finish_item, link_cache,
                               normalize_pixels)
from fexa.data.store import STORE_FILE, DecodedEntry, StoredEntry, StoreConfig, ensure_stores, read_header
from fexa.errors import FexaError
from fexa.io.atomic import _owner
from fexa.io.trackfile import TrackData
from fexa.represent import load_crops, track_heatmaps, track_trajectory
from fexa.represent.heatmap import HeatmapConfig, heatmap_volume
from fexa.represent.sampling import clip_indices
from fexa.represent.trajectory import TrajectoryConfig

# JPEG (quality 90, 4:2:0) of the decoded H.264 crops, measured on this clip and on 4,800 frames of
# another (docs/training.md): mean |error| 1.1-1.4 grey levels, 99th percentile 5-7. Tolerances sit
# above those and far below what a wrong frame, a shifted crop or a flipped image gives (tens of levels).
MEAN_LEVELS, P99_LEVELS = 2.0, 10.0

KINDS = {  # sample kind -> (inputs, settings)
    "image 112 (PCDA)": (("image",), SampleConfig(image_size=112)),
    "image 224 (Swin-S, IR)": (("image",), SampleConfig(image_size=224)),
    "clip 16x112 segments (STT)": (("clip",), SampleConfig(sampling="segments", clip_size=112, normalize="none",
                                                          clip_train="resized_crop", clip_test="resize")),
    "clip 80x224 + heatmaps (QAFE-Net)": (("clip", "heatmaps"), SampleConfig(num_subclips=5)),
    "clip + trajectory (TraMP-Former)": (("clip", "trajectory"), SampleConfig(num_subclips=1, trajectory_length=64)),
    "trajectory 2 channels, scaled motion": (("trajectory",), SampleConfig(trajectory_channels=2)),
}


def _table(entry, **extra) -> pd.DataFrame:
    return pd.DataFrame([{"id": "demo", "path": "x", "subject": "s", "target": 1.0, "entry": str(entry),
                          "start": 5, "end": 60, **extra}])


def _levels(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return (a.float() - b.float()).abs().numpy()


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("train", [True, False])
def test_store_items_equal_the_whole_video_path(demo_entry, kind, train):
    inputs, cfg = KINDS[kind]
    extra = {"motion_scale": 0.5} if "scaled" in kind else {}
    args = (_table(demo_entry, **extra), inputs, cfg, train, 7, 3)
    store = FaceSamples(*args, source="store", uint8=True)
    video = FaceSamples(*args, source="video", uint8=True)
    for ds in (store, video):
        ds.set_epoch(2)
    for i in range(len(store)):
        raw_a, raw_b = store[i], video[i]
        assert raw_a.keys() == raw_b.keys()
        finished = (finish_item(raw_a, cfg), finish_item(raw_b, cfg))
        for a, b in ((raw_a, raw_b), finished):  # as loaded, and as the model sees them
            for k in a:
                if k in ("image", "clip", "crops", "heatmaps"):  # pixels within JPEG error, in grey levels
                    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
                    d = _levels(a[k], b[k]) * (1 if a[k].dtype == torch.uint8 else 255)  # uint8, or floats in [0, 1]
                    if cfg.normalize == "imagenet" and k in ("image", "clip") and a[k].dtype != torch.uint8:
                        d *= IMAGENET_STD.min()  # back from standardised units
                    p99 = np.percentile(d, 99)
                    assert d.mean() <= MEAN_LEVELS and p99 <= P99_LEVELS, (k, d.mean(), p99)
                else:  # landmarks, trajectories, time index, target, index, crop offsets, flips: bit-identical
                    assert torch.equal(a[k], b[k]), k


def test_the_whole_video_path_is_what_training_computed_before(demo_entry):
    """FaceSamples(source="video") against the represent functions the old items called."""
    track = TrackData.load(demo_entry / "track.npz")
    crops = load_crops(demo_entry)
    frames = np.flatnonzero(track.usable)[5:60]
    video = FaceSamples(_table(demo_entry), ("heatmaps", "trajectory"), SampleConfig(num_subclips=1), source="video")[0]
    idx = frames[clip_indices(len(frames), 1).ravel()]
    heat = track_heatmaps(track, HeatmapConfig(out_size=64), crops, frames=idx)[:, :, 4:60, 4:60]
    traj, ti = track_trajectory(track, TrajectoryConfig(), crops, frames)
    assert np.array_equal(video["heatmaps"].numpy(), heat)
    assert np.array_equal(video["trajectory"].numpy(), traj) and np.array_equal(video["time_index"].numpy(), ti)


@pytest.mark.parametrize("inputs, cfg", [(("image", "clip"), SampleConfig(num_subclips=1)),
                                         (("image", "clip"), SampleConfig(normalize="none", image_size=224)),
                                         (("clip", "heatmaps"), SampleConfig(num_subclips=1)),
                                         (("heatmaps",), SampleConfig(num_subclips=1, heatmap_mode="jet"))])
def test_batches_finished_on_the_device_equal_items_finished_in_the_worker(demo_entry, inputs, cfg):
    """uint8 items finished batch-wise (finish_batch, as on the device: heatmaps, clip crops,
    normalisation) equal items finished one by one."""
    args = (_table(demo_entry), inputs, cfg, True, 0, 3)
    floats = default_collate([FaceSamples(*args)[i] for i in range(3)])
    raw = default_collate([FaceSamples(*args, uint8=True)[i] for i in range(3)])
    needs_crops = "heatmaps" in inputs and ("clip" in inputs or cfg.heatmap_mode == "rgb_weighted")
    assert ("crops" in raw) == needs_crops  # jet heatmaps alone decode no frame
    assert all(v.dtype == torch.uint8 for k, v in raw.items() if k in ("image", "clip", "crops"))
    done = finish_batch(raw, cfg)
    assert done.keys() == floats.keys()
    for k in floats:
        torch.testing.assert_close(done[k], floats[k], rtol=0, atol=1e-6, msg=k)


def test_finish_batch_cuts_and_mirrors_each_item_where_it_says():
    """Hand-placed: item 0 unflipped, clip at (1, 2), heatmaps at (0, 8); item 1 mirrored, at (3, 0) / (8, 1)."""
    rng = np.random.default_rng(0)
    crops = torch.from_numpy(rng.integers(0, 256, (2, 2, 8, 8, 3), dtype=np.uint8))
    points = torch.from_numpy(rng.uniform(0, 8, (2, 2, 73, 2)).astype(np.float32))
    cfg = SampleConfig(clip_size=5, normalize="none")
    batch = {"crops": crops, "heatmap_points": points, "flip": torch.tensor([False, True]),
             "clip_box": torch.tensor([[1, 2, 5, 5], [3, 0, 5, 5]]), "heatmap_at": torch.tensor([[0, 8], [8, 1]]),
             "heatmap_src": torch.tensor([8, 8])}
    with pytest.raises(ValueError, match="out_size"):  # 64-px heatmaps need crops of at least 64 px
        finish_batch(batch, cfg)
    crops = torch.from_numpy(rng.integers(0, 256, (2, 2, 64, 64, 3), dtype=np.uint8))
    points = points * 8
    out = finish_batch({**batch, "crops": crops, "heatmap_points": points, "heatmap_src": torch.tensor([64, 64])}, cfg)
    clip = normalize_pixels(crops.permute(0, 1, 4, 2, 3), "none")
    assert torch.equal(out["clip"][0], clip[0, ..., 2:7, 1:6])
    assert torch.equal(out["clip"][1], clip[1, ..., 0:5, 3:8].flip(-1))
    hcfg = HeatmapConfig(src_size=64, out_size=64)
    heat = [torch.from_numpy(heatmap_volume(points[i].numpy(), hcfg, crops[i].numpy())) for i in range(2)]
    torch.testing.assert_close(out["heatmaps"][0], heat[0][..., 8:64, 0:56], rtol=0, atol=1e-6)
    torch.testing.assert_close(out["heatmaps"][1], heat[1][..., 1:57, 8:64].flip(-1), rtol=0, atol=1e-6)
    assert set(out) == {"clip", "heatmaps"}


def test_training_items_decode_no_video(demo_entry, monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("a video was decoded")

    monkeypatch.setattr("fexa.io.media.Media.frames", refuse)
    for inputs, cfg in KINDS.values():
        item = FaceSamples(_table(demo_entry), inputs, cfg, True, 0)[0]
        assert item["target"].item() == 1.0


def test_a_loader_worker_imports_only_what_items_need(demo_entry, tmp_path):
    """Per-worker memory: a worker (a fresh interpreter unpickling the dataset, as a spawned one does)
    builds every kind of item without pandas, OpenCV, PyAV or SciPy (~140 MB of each worker's RSS)."""
    datasets = [FaceSamples(_table(demo_entry), inputs, cfg, True, 0, uint8=True) for inputs, cfg in KINDS.values()]
    (tmp_path / "ds.pkl").write_bytes(pickle.dumps(datasets))
    code = ("import pickle, sys; from fexa.data.loading import worker_init; worker_init(); "
            f"[ds[0] for ds in pickle.loads(open({str(tmp_path / 'ds.pkl')!r}, 'rb').read())]; "
            "print(sorted(m for m in ('pandas', 'cv2', 'av', 'scipy', 'mediapipe') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.fixture
def entry_copy(demo_entry, tmp_path):
    dst = tmp_path / demo_entry.name
    shutil.copytree(demo_entry, dst)
    return dst


def _flip_byte(path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def _stored(entry) -> dict[str, np.ndarray]:
    """A store's arrays, copied (the file may be replaced), and its first usable frames decoded."""
    e = StoredEntry(entry)
    return {**{k: np.array(v) for k, v in e.arrays.items()}, "pixels": e.frames(e.usable_frames[:12])}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_a_damaged_frame_is_named_not_used_and_its_store_rebuilt_on_the_next_run(entry_copy):
    store = entry_copy / STORE_FILE
    clean = _stored(entry_copy)
    head = read_header(store)
    e = StoredEntry(entry_copy)
    t = int(e.usable_frames[10])
    _flip_byte(store, head["jpeg_at"] + int(e.offsets[t]) + 200)
    assert ensure_stores([entry_copy], progress=False) == {} and store.stat().st_size == head["size"]  # not seen yet
    e = StoredEntry(entry_copy)
    with pytest.raises(FexaError, match=rf"damaged training store of entry {entry_copy}: frame {t} fails its "
                                        "checksum; the store was removed and is rebuilt"):
        e.frames([t])
    assert not store.exists()  # marked for the next run
    e.frames([int(e.usable_frames[11])])  # the other frames are still read (this process keeps its map)
    assert ensure_stores([entry_copy], progress=False) == {}
    _assert_same(_stored(entry_copy), clean)


@pytest.mark.parametrize("damage", ["arrays", "truncated", "header version"])
def test_damaged_arrays_truncation_and_old_stores_are_named_and_rebuilt(entry_copy, damage):
    store = entry_copy / STORE_FILE
    clean = _stored(entry_copy)
    head = read_header(store)
    if damage == "arrays":
        _flip_byte(store, head["arrays_at"] + 100)
        why = "its arrays fail their checksum; it is rebuilt from its entry when stores are ensured"
    elif damage == "truncated":
        with open(store, "r+b") as f:
            f.truncate(head["size"] - 1000)
        why = r"damaged training store .*: \d+ bytes, its header says"
    else:  # a store of the previous version: its header has no CRC
        raw = store.read_bytes()
        store.write_bytes(raw.replace(b'"version": 3', b'"version": 2', 1))
        why = "built by another fexa version; it is rebuilt"
    with pytest.raises(FexaError, match=why):
        StoredEntry(entry_copy)
    assert ensure_stores([entry_copy], progress=False) == {}  # found stale: rebuilt
    _assert_same(_stored(entry_copy), clean)


def test_a_header_changed_in_one_digit_is_refused_and_rebuilt(entry_copy):
    """One digit of an array's offset (which placed traj63 elsewhere, unnoticed, before the header CRC)."""
    store = entry_copy / STORE_FILE
    clean = _stored(entry_copy)
    raw = bytearray(store.read_bytes())
    at = raw.index(b'"traj63"')
    at = raw.index(b'"offset": ', at) + len(b'"offset": ')
    assert chr(raw[at]).isdigit() and raw[at] != ord("0")  # a real offset: not the first array
    raw[at] = ord("1") if raw[at] != ord("1") else ord("2")
    store.write_bytes(bytes(raw))
    for read in (read_header, lambda s: StoredEntry(s.parent)):
        with pytest.raises(FexaError, match=rf"damaged training store {store}: header checksum differs"):
            read(store)
    assert ensure_stores([entry_copy], progress=False) == {}
    _assert_same(_stored(entry_copy), clean)


def test_building_twice_is_a_no_op_and_a_killed_build_resumes(demo_entry, tmp_path, monkeypatch):
    entries = []
    for k in range(3):
        dst = tmp_path / f"e{k}"
        shutil.copytree(demo_entry, dst, ignore=shutil.ignore_patterns(STORE_FILE))
        entries.append(dst)
    import fexa.data.store as store_module

    real, built = store_module.build_store, []

    def dies_on_the_second(entry, cfg=StoreConfig()):
        entry = Path(entry)
        if len(built) == 1:
            # what a killed process leaves: a temporary of a dead owner, no store
            (entry / f".{STORE_FILE}.{_owner().split('@')[0]}@999999999.x.tmp.bin").write_bytes(b"partial")
            raise KeyboardInterrupt
        built.append(entry)
        return real(entry, cfg)

    monkeypatch.setattr(store_module, "build_store", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        ensure_stores(entries, progress=False)
    monkeypatch.setattr(store_module, "build_store", real)
    first = (entries[0] / STORE_FILE).stat()
    assert not (entries[1] / STORE_FILE).exists()
    assert ensure_stores(entries, progress=False) == {}
    assert (entries[0] / STORE_FILE).stat().st_ino == first.st_ino  # kept, not rebuilt
    assert all((e / STORE_FILE).is_file() for e in entries)
    assert not list(entries[1].glob(".*.tmp*"))  # the dead build's leftover is gone
    stats = [(e / STORE_FILE).stat() for e in entries]
    monkeypatch.setattr(store_module, "build_store", lambda *a, **k: pytest.fail("rebuilt a finished store"))
    assert ensure_stores(entries, progress=False) == {}
    assert [(e / STORE_FILE).stat().st_mtime_ns for e in entries] == [s.st_mtime_ns for s in stats]


def test_other_settings_or_a_new_extraction_rebuild_the_store(entry_copy):
    before = read_header(entry_copy / STORE_FILE)
    assert store_state_of(entry_copy) == ""
    assert "other settings" in store_state_of(entry_copy, StoreConfig(quality=80))
    meta = json.loads((entry_copy / "meta.json").read_text())
    meta["files"]["crops.mp4"]["sha256"] = "0" * 64
    (entry_copy / "meta.json").write_text(json.dumps(meta))
    assert store_state_of(entry_copy) == "the entry was extracted again"
    assert before["source"]["track.npz"] == meta["files"]["track.npz"]["sha256"]


def store_state_of(entry, cfg=StoreConfig()) -> str:
    from fexa.data.store import store_state

    return store_state(entry, cfg)


def test_decoded_and_stored_entries_share_their_arrays(demo_entry):
    s, v = StoredEntry(demo_entry), DecodedEntry(demo_entry)
    for name in ("usable", "times", "heatmap73", "traj63", "nose", "colours63"):
        assert np.array_equal(getattr(s, name), getattr(v, name), equal_nan=name != "colours63" and name != "usable"), name
    head = read_header(demo_entry / STORE_FILE)
    assert head["jpeg_bytes"] / head["frames"] <= 20 * 1024  # the disk target per 256x256 frame


def test_bench_loader_on_a_manifest_of_windows(tmp_path):
    rows = [{"path": str(DEMO), "subject": f"s{k % 3}", "score": k % 4, "start": 4 * k, "end": 4 * k + 16,
             "fold": "train" if k % 3 else "test"} for k in range(12)]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    cfg = tmp_path / "b.yaml"
    cfg.write_text(f"""
name: bench
out: {tmp_path / "runs"}
data: {{dataset: manifest, root: {tmp_path / "m.csv"}, cache: {tmp_path / "cache"}, split: fixed, val_fraction: 0,
        samples: {{sampling: segments, clip_size: 112, normalize: none, clip_train: resized_crop, clip_test: resize}}}}
model: {{name: stt}}
train: {{batch_size: 2, loss: mse}}
""")
    out = subprocess.run([sys.executable, "-m", "fexa", "bench", "loader", str(cfg), "--items", "6", "--workers", "1",
                          "--json"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["items"] == 6 and r["inputs"] == ["clip"] and r["source"] == "store"
    assert r["item_ms"] > 0 and r["items_per_s"] > 0 and 50 < r["peak_rss_mb"] < 4000 and r["ring_mb"] > 0
    assert (tmp_path / "cache").is_dir() and list((tmp_path / "cache").glob(f"*/{STORE_FILE}"))


def test_a_store_that_cannot_be_built_drops_its_rows_with_the_reason(demo_entry, monkeypatch):
    """link_cache (what fexa train runs) keeps no row whose store failed, and says why."""
    cache = demo_entry.parent
    table = pd.DataFrame([{"id": f"r{i}", "path": str(DEMO), "subject": "s", "target": 0.0} for i in range(2)])
    linked, dropped = link_cache(table, cache, progress=False)
    assert len(linked) == 2 and dropped.empty

    def fail(entry, cfg):
        raise FexaError(f"{entry}/crops.mp4: cannot decode frame 3")

    monkeypatch.setattr("fexa.data.store.build_store", fail)
    linked, dropped = link_cache(table, cache, progress=False, store=StoreConfig(quality=80))  # other settings: rebuilt
    assert linked.empty and list(dropped["id"]) == ["r0", "r1"]
    assert (dropped["status"] == "error").all() and dropped["reason"].str.contains("crops.mp4: cannot decode frame 3").all()
