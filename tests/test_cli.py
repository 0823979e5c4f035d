"""The ``fexa`` command as a user runs it."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO, by_stem, entry_of
from fexa.io.media import read_all
from fexa.io.trackfile import TrackData


def fexa(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fexa", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("cmd", ["extract", "show", "import-landmarks"])
def test_help(cmd):
    r = fexa(cmd, "--help")
    assert r.returncode == 0 and "usage: fexa " + cmd in r.stdout


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    (tmp_path / "fake.mp4").write_text("not a video")
    r = fexa("extract", tmp_path / "fake.mp4", DEMO, "--out", tmp_path / "out", "--quiet")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "error  fake-" in r.stderr and "not a readable video" in r.stderr
    assert "INFO:" not in r.stdout + r.stderr and "W0000" not in r.stdout + r.stderr  # no mediapipe chatter
    df = by_stem(pd.read_csv(tmp_path / "out/manifest.csv"))
    assert df.loc["single_face", "status"] == "ok" and df.loc["fake", "status"] == "error"
    r = fexa("show", entry_of(tmp_path / "out", tmp_path / "fake.mp4"))
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0 and r.stderr.startswith("fexa: error: nothing to show")
    r = fexa("show", tmp_path)
    assert r.returncode == 1 and "not a fexa extract entry" in r.stderr and "Traceback" not in r.stderr
    r = fexa("extract", DEMO, "--out", tmp_path / "o2", "--shard", "3/2")
    assert r.returncode == 1 and r.stderr.strip() == "fexa: error: --shard must be K/N with 0 <= K < N, got '3/2'"


def test_show_writes_overlay_and_sheets(demo_entry, tmp_path):
    r = fexa("show", demo_entry, "--out", tmp_path / "show", "--quiet")
    assert r.returncode == 0, r.stderr
    tr = TrackData.load(demo_entry / "track.npz")
    info, frames, _ = read_all(tmp_path / "show/overlay.mp4")
    assert len(frames) == tr.num_frames and (info.width, info.height) == (640, 360)
    _, src, _ = read_all(DEMO)
    changed = (abs(frames.astype(int) - src.astype(int)).sum(-1) > 60).mean(axis=(1, 2))
    assert (changed > 0.005).all()  # every frame has drawings on it
    for name in ("heatmaps.png", "trajectories.png"):
        png = tmp_path / "show" / name
        assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"
