"""Data as the papers fed it: the datasets' own face images (``data.faces: given``), landmarks and
point tracks from files (``data.landmarks``), and the recipe options of the sampling code."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import REPO
from fexa.data.landmark_files import build_overlay, link_landmarks, overlay_path
from fexa.data.layouts import make_layouts
from fexa.data.samples import MISSING_LANDMARK, FaceSamples, SampleConfig, erase_fill, finish_item, photometric
from fexa.data.store import build_store
from fexa.errors import FexaError
from fexa.extract import ExtractConfig
from fexa.face.landmarks import get_scheme
from fexa.io.trackfile import TrackData
from fexa.represent.heatmap import HeatmapConfig, render_reference
from fexa.represent.sampling import clip_indices
from fexa.train.config import load_config
from fexa.train.data import prepare_data, training_samples, write_synthetic_landmarks


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    return make_layouts(tmp_path_factory.mktemp("layouts"))


def _ferplus(layouts, tmp: Path, *sets: str):
    return load_config(REPO / "configs/pcda/ferplus.yaml", [
        f"data.root={layouts['ferplus']}", f"data.cache={tmp / 'cache'}", f"out={tmp / 'runs'}", "model.pretrained=none",
        "data.val_fraction=0", "data.store_quality=100", "data.samples.erasing=0", *sets])


def _resized(path: str, size: int) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR), np.float64)


def _pixels(item: dict) -> np.ndarray:
    return item["image"].permute(1, 2, 0).numpy().astype(np.float64)


def test_given_faces_are_the_datasets_images_resized_and_kept_where_the_mesh_fails(layouts, tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)  # no face: the mesh fails on it
    failed = layouts["ferplus"] / "FER2013Train" / "fer0000003.png"
    kept = np.asarray(Image.open(failed)).copy()
    Image.fromarray(noise).save(failed)
    try:
        cfg = _ferplus(layouts, tmp_path)
        assert cfg.data.faces == "given"  # the shipped PCDA FERPlus config uses the dataset's own images
        data = prepare_data(cfg, progress=False)
        detect = prepare_data(_ferplus(layouts, tmp_path, "data.faces=detect"), progress=False)
    finally:
        Image.fromarray(kept).save(failed)
    assert len(data["train"]) == 8 and len(data["test"]) == 2 and data["dropped"].empty  # every image kept
    test = FaceSamples(data["test"], ("image",), cfg.data.samples, uint8=True)
    for i in range(len(test)):
        item, ref = test[i], _resized(data["test"]["path"][i], 112)  # 48 px grey -> 112, as the paper's Resize
        assert np.abs(_pixels(item) - ref).mean() < 2.0  # the video and JPEG codecs' loss only
        assert torch.isfinite(item["landmarks"]).all() and (item["landmarks"] > 0).all()  # the mesh found the face
    # training items: the same pixels (no crop, no erasing here), mirrored half of the time
    train = FaceSamples(data["train"], ("image",), cfg.data.samples, train=True, seed=1, uint8=True)
    row = int(np.flatnonzero(data["train"]["path"].str.endswith("fer0000003.png"))[0])
    item = train[row]
    ref = np.asarray(Image.fromarray(noise).convert("RGB").resize((112, 112), Image.BILINEAR), np.float64)
    got = _pixels(item)
    assert min(np.abs(got - ref).mean(), np.abs(got[:, ::-1] - ref).mean()) < 6.0  # noise survives the codecs worst
    assert (item["landmarks"] == MISSING_LANDMARK).all()  # kept without landmarks: empty Gaussian maps for PCDA
    # detection re-aligns the face (another picture), and the two never share a cache entry
    other = FaceSamples(detect["test"], ("image",), cfg.data.samples, uint8=True)[0]
    assert np.abs(_pixels(other) - _resized(detect["test"]["path"][0], 112)).mean() > 10
    assert Path(data["test"]["entry"][0]).parent != Path(detect["test"]["entry"][0]).parent
    assert "faces" not in ExtractConfig().settings()  # detection's settings (and older caches) unchanged
    assert ExtractConfig(faces="given").digest() != ExtractConfig().digest()


def _demo_table(demo_entry, tmp_path: Path) -> pd.DataFrame:
    """The demo clip's entry copied (its store built) under a sample id."""
    import shutil

    entry = tmp_path / "entry"
    shutil.copytree(demo_entry, entry)
    build_store(entry)
    return pd.DataFrame([{"id": "clip/a", "path": "x", "subject": "s", "target": 1.0, "entry": str(entry)}])


def test_landmark_files_feed_trajectories_and_heatmaps_as_computed_by_hand(demo_entry, tmp_path):
    table = _demo_table(demo_entry, tmp_path)
    track = TrackData.load(Path(table["entry"][0]) / "track.npz")
    t = track.num_frames
    # a researcher's 73-point file (media pixels): the mesh's points moved, so they differ from the entry's
    rng = np.random.default_rng(0)
    pts = get_scheme("heatmap73").select(track.points[..., :2], track.layout) + rng.normal(0, 2, (t, 73, 2))
    pts[3] = np.nan  # a frame the detector missed
    folder = tmp_path / "lm"
    (folder / "clip").mkdir(parents=True)
    np.save(folder / "clip" / "a.npy", pts.astype(np.float32))
    linked, dropped = link_landmarks(table, folder, ("trajectory",))
    assert dropped.empty and Path(linked["landmarks"][0]).is_file()
    # by hand: crop pixels through each frame's affine, the 63 points' 2d106 indices into 33..105
    crop = np.einsum("tij,tpj->tpi", track.affine[:, :, :2], pts) + track.affine[:, None, :, 2]
    usable = np.flatnonzero(track.usable & np.isfinite(pts).all(axis=(1, 2)))
    idx63 = [i - 33 for i in get_scheme("traj63").points_2d106]
    n = len(usable)
    cfg = SampleConfig(trajectory_length=n, trajectory_channels=2)
    item = FaceSamples(linked, ("trajectory",), cfg)[0]
    expect = crop[usable][:, idx63] - crop[usable[0], 86 - 33]  # origin: the nose tip of the first frame
    np.testing.assert_allclose(item["trajectory"].numpy(), expect, atol=1e-3)
    # heatmaps drawn from the file's points on the sampled frames: the literal QAFE-Net recipe, by hand
    hcfg = SampleConfig(num_subclips=1, heatmap_mode="gray")
    heat = FaceSamples(linked, ("heatmaps",), hcfg, uint8=True)[0]
    frames = usable[clip_indices(n, 1).ravel()]
    points = heat["heatmap_points"].numpy()
    np.testing.assert_allclose(points, crop[frames], atol=1e-3)
    # the maps from those points (float32): each patch sits at its point's rounded pixel, and a point at a half
    # pixel rounds by its last bit (seen: x 150.49998 in float32, 150.50002 in float64; 8 map pixels 0.11 off)
    maps = finish_item(heat, hcfg)["heatmaps"][:, 0].numpy()
    ref = render_reference(points, HeatmapConfig(src_size=track.crop_size, out_size=64))[:, 4:60, 4:60]
    np.testing.assert_allclose(maps, ref, atol=2e-3)


def test_point_tracks_give_trajectories_only_and_bad_files_name_the_sample(demo_entry, tmp_path):
    table = _demo_table(demo_entry, tmp_path)
    track = TrackData.load(Path(table["entry"][0]) / "track.npz")
    folder = tmp_path / "tracks"
    (folder / "clip").mkdir(parents=True)
    tracks = get_scheme("traj63").select(track.points[..., :2], track.layout).astype(np.float32)
    np.save(folder / "clip" / "a.npy", tracks)
    linked, _ = link_landmarks(table, folder, ("clip", "trajectory"))
    x = FaceSamples(linked, ("trajectory",), SampleConfig(trajectory_length=8, trajectory_channels=2))[0]["trajectory"]
    crop = np.einsum("tij,tpj->tpi", track.affine[:, :, :2], tracks) + track.affine[:, None, :, 2]
    first = np.flatnonzero(track.usable)[0]
    origin = crop[first, get_scheme("traj63").points_2d106.index(80)]  # tracks lack the nose tip: point 80
    used = np.flatnonzero(track.usable)[-8:]  # long clips keep their last T_p frames
    np.testing.assert_allclose(x.numpy(), crop[used] - origin, atol=1e-3)
    with pytest.raises(FexaError, match="63-point tracks.*heatmaps"):
        link_landmarks(table, folder, ("clip", "heatmaps"))
    np.save(folder / "clip" / "a.npy", tracks[:-1])
    with pytest.raises(FexaError, match=r"sample clip/a: landmark file .*a\.npy has \d+ frames; its media has"):
        link_landmarks(table, folder, ("trajectory",))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FexaError, match=r"sample clip/a: no landmark file .*empty.*a\.npy"):
        link_landmarks(table, empty, ("trajectory",))
    linked, dropped = link_landmarks(table, folder, ("trajectory",), allow_missing=True)
    assert linked.empty and "has" in dropped["reason"][0] and dropped["status"][0] == "error"


def test_the_landmark_arrays_are_keyed_by_the_files_content(demo_entry, tmp_path):
    table = _demo_table(demo_entry, tmp_path)
    entry = Path(table["entry"][0])
    track = TrackData.load(entry / "track.npz")
    file = tmp_path / "a.npy"
    pts = get_scheme("heatmap73").select(track.points[..., :2], track.layout).astype(np.float32)
    np.save(file, pts)
    first, _ = build_overlay(entry, file, "a")
    np.save(file, pts + 1)
    second, _ = build_overlay(entry, file, "a")
    assert first != second == overlay_path(entry, file) and first.is_file() and second.is_file()


def test_synthetic_landmark_files_reach_training(layouts, tmp_path):
    sets = [f"data.root={layouts['pfed5']}", f"data.cache={tmp_path / 'cache'}", f"out={tmp_path / 'runs'}",
            "model.pretrained=none", "data.val_fraction=0", "train.repeats=1"]
    cfg = load_config(REPO / "configs/tramp_former/pfed5_smile.yaml", sets)
    written = write_synthetic_landmarks(cfg, tmp_path / "scrfd", "insightface106")
    assert written and np.load(written[0]).shape[1:] == (106, 2)
    cfg = load_config(REPO / "configs/tramp_former/pfed5_smile.yaml", [*sets, f"data.landmarks={tmp_path / 'scrfd'}"])
    data = prepare_data(cfg, progress=False)
    assert data["train"]["landmarks"].str.contains("landmarks-").all()
    plain = prepare_data(load_config(REPO / "configs/tramp_former/pfed5_smile.yaml", sets), progress=False)
    ds, ref = (training_samples(c, d["train"], ("clip", "trajectory")) for c, d in ((cfg, data), (cfg, plain)))
    # the files hold the mesh's own points (contour aside): the same trajectories as without them
    np.testing.assert_allclose(ds[0]["trajectory"][..., :2].numpy(), ref[0]["trajectory"][..., :2].numpy(), atol=1e-3)


def test_short_clips_start_at_a_random_frame_when_asked():
    for seed in range(3):
        got = clip_indices(7, 1, 16, train=True, rng=np.random.default_rng(seed), random_start=True).ravel()
        start = np.random.default_rng(seed).integers(0, 7)
        assert got.tolist() == [(start + i) % 7 for i in range(16)]
    starts = {int(clip_indices(7, 1, 16, train=True, rng=np.random.default_rng(s), random_start=True)[0, 0])
              for s in range(20)}
    assert len(starts) > 3
    assert clip_indices(7, 1, 16, train=True, rng=np.random.default_rng(0))[0, 0] == 0  # the released code: frame 0
    assert clip_indices(7, 1, 16, random_start=True)[0, 0] == 0  # test clips start at frame 0


def test_erasing_covers_the_configured_share_of_the_image():
    img = torch.zeros(3, 100, 100, dtype=torch.uint8)
    for share in (0.1, 0.25):
        cfg = SampleConfig(erasing=1.0, erasing_scale=(share, share))
        out = photometric(img, cfg, np.random.default_rng(0))
        erased = (out == erase_fill(cfg.normalize)[:, None, None]).all(dim=0).sum().item()
        assert abs(erased / 1e4 - share) < 0.03  # a box of share x area, rounded to whole pixels


def test_the_new_data_keys_are_checked():
    with pytest.raises(FexaError, match=r"data.faces='found' is not allowed: must be detect or given"):
        load_config(None, ["data.root=/x", "data.faces=found"])
    with pytest.raises(FexaError, match=r"data.samples.clip_start='random' is not allowed"):
        load_config(None, ["data.root=/x", "model.name=tramp_former", "data.samples.clip_padding=zero",
                           "data.samples.clip_start=random"])
    with pytest.raises(FexaError, match=r"data.samples.erasing_scale=\(0.3, 0.2\) is not allowed"):
        load_config(None, ["data.root=/x", "data.samples.erasing_scale=[0.3, 0.2]"])
