"""Landmarks from insightface files and OpenFace CSVs become tracks like fexa's own."""

import numpy as np
import pandas as pd
import pytest

from fexa.analysis.measures import region_displacement
from fexa.errors import FexaError
from fexa.face.importers import from_insightface, load_insightface, load_openface_csv
from fexa.face.landmarks import _IBUG_FOR_2D106, get_scheme
from fexa.io.trackfile import TrackData
from fexa.represent import HeatmapConfig, TrajectoryConfig, track_heatmaps, track_trajectory


def test_insightface_73_file_gives_the_same_inputs_as_the_mesh(demo_entry, tmp_path):
    """Write the mesh's heatmap73 points as a released-style [T,73,2] file: importing it must give
    exactly the trajectories and heatmaps computed from the mesh track."""
    mesh = TrackData.load(demo_entry / "track.npz")
    arr73 = get_scheme("heatmap73").select(mesh.points_crop, "mediapipe478")
    np.save(tmp_path / "clip.npy", arr73)
    imported = load_insightface(tmp_path / "clip.npy", fps=mesh.fps)
    assert imported.layout == "insightface73" and imported.valid.all()
    cfg = TrajectoryConfig(length=64, channels=2)
    np.testing.assert_allclose(track_trajectory(imported, cfg)[0], track_trajectory(mesh, cfg)[0], atol=1e-4)
    gray = HeatmapConfig(mode="gray")
    np.testing.assert_allclose(track_heatmaps(imported, gray), track_heatmaps(mesh, gray), atol=1e-6)
    regions = region_displacement(imported)  # the report's region curves work on imported tracks (2-D, no depth)
    assert list(regions) == get_scheme("traj63").region_names
    pd.testing.assert_frame_equal(regions, region_displacement(mesh, head_fixed=False)[regions.columns], atol=1e-4)
    # 74-point variant: one extra leading point
    arr74 = np.concatenate([np.zeros_like(arr73[:, :1]), arr73], axis=1)
    np.testing.assert_array_equal(from_insightface(arr74).points[..., :2], arr73)
    arr106 = np.zeros((len(arr73), 106, 2), np.float32)
    arr106[:, 33:] = arr73
    assert from_insightface(arr106).layout == "insightface106"
    with pytest.raises(FexaError, match=r"\[T, 106\|73\|74, 2\]"):
        from_insightface(np.zeros((5, 68, 2)))


def _openface_csv(path, mesh: TrackData, fail_rows=()):
    """An OpenFace-style CSV (header with leading spaces) with iBUG-68 points taken from the mesh."""
    h = get_scheme("heatmap73").select(mesh.points[mesh.valid][..., :2], "mediapipe478")
    p68 = np.zeros((len(h), 68, 2))
    for idx106, src in _IBUG_FOR_2D106.items():
        if len(src) == 1:
            p68[:, src[0]] = h[:, idx106 - 33]
    jaw = np.linspace(0, 1, 17)
    p68[:, :17, 0] = h[:, [0], 0] + (h[:, [56], 0] - h[:, [0], 0]) * jaw  # a rough jaw line
    p68[:, :17, 1] = h[:, [19], 1].max() + 30
    cols = {"frame": np.arange(1, len(h) + 1), " timestamp": np.arange(len(h)) / 30.0, " success": 1}
    cols.update({f" x_{i}": p68[:, i, 0] for i in range(68)})
    cols.update({f" y_{i}": p68[:, i, 1] for i in range(68)})
    df = pd.DataFrame(cols)
    df.loc[list(fail_rows), " success"] = 0
    df.to_csv(path, index=False)
    return p68


def test_openface_csv(demo_entry, tmp_path):
    mesh = TrackData.load(demo_entry / "track.npz")
    p68 = _openface_csv(tmp_path / "of.csv", mesh, fail_rows=[3])
    tr = load_openface_csv(tmp_path / "of.csv")
    assert tr.layout == "ibug68" and tr.num_frames == len(p68)
    assert not tr.valid[3] and tr.valid.sum() == len(p68) - 1
    assert tr.fps == pytest.approx(30.0)
    np.testing.assert_allclose(tr.points[0, :, :2], p68[0], atol=1e-3)
    # the crop transform puts the face in the middle of the crop
    crop = tr.points_crop[tr.valid]
    assert 100 < np.median(crop[..., 0]) < 156
    x, _ = track_trajectory(tr, TrajectoryConfig(length=32, channels=2))
    assert x.shape == (32, 63, 2) and np.isfinite(x).all()


def test_malformed_openface_csv(tmp_path):
    (tmp_path / "bad.csv").write_text("frame, timestamp, x_0\n1, 0.0, 3\n")
    with pytest.raises(FexaError, match="not an OpenFace landmark CSV"):
        load_openface_csv(tmp_path / "bad.csv")
    (tmp_path / "garbage.csv").write_bytes(b"\x00\x01\x02")
    with pytest.raises(FexaError):
        load_openface_csv(tmp_path / "garbage.csv")
