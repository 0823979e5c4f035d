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


LOADED = ("import sys; from fexa.cli.main import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
          "print('LOADED', *sorted(m for m in ('torch', 'torchvision', 'mediapipe', 'scipy.signal', 'matplotlib') "
          "if m in sys.modules))")


def loaded_by(*args) -> list[str]:
    """The heavy libraries a fexa command line imported (run in a fresh interpreter)."""
    r = subprocess.run([sys.executable, "-c", LOADED, *map(str, args)], capture_output=True, text=True)
    return r.stdout.strip().splitlines()[-1].split()[1:]


def test_help_and_a_missing_input_load_no_heavy_library_and_analysis_without_a_model_no_torchvision(tmp_path):
    """Help and a missing input start no heavy library; the analysis of a clip loads torch for its face models
    (the default backend) but neither torchvision (no model asked for) nor mediapipe (not needed)."""
    assert loaded_by("--help") == [] and loaded_by("analyze", "--help") == []
    assert loaded_by("analyze", tmp_path / "missing.mp4", "--out", tmp_path / "o", "--quiet") == []
    assert (tmp_path / "o" / "summary.csv").is_file()  # the batch still ends with its summary
    used = loaded_by("analyze", DEMO, "--out", tmp_path / "demo", "--quiet")
    assert "torch" in used and "torchvision" not in used and "mediapipe" not in used, used


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
    assert len(frames) == tr.num_frames and info.height == 360 and info.width > 640  # the picture, then a text panel
    _, src, _ = read_all(DEMO)
    changed = (abs(frames[:, :, :640].astype(int) - src.astype(int)).sum(-1) > 60).mean(axis=(1, 2))
    assert (changed > 0.005).all()  # every frame has drawings on it
    for name in ("heatmaps.png", "trajectories.png"):
        png = tmp_path / "show" / name
        assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"
