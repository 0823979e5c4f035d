"""fexa analyze / fexa.analysis.Analyzer on the bundled demo clip."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import DEMO
from fexa.analysis.analyzer import Analyzer


def test_analyzer_result_tables_and_report(tmp_path):
    res = Analyzer(cache=tmp_path / "cache").analyze(DEMO)
    f = res.frames
    assert len(f) == 72 and f["usable"].all()
    for col in ("time", "score", "box_x0", "yaw", "eye_aperture_right", "mouth_width", "x_0", "y_72"):
        assert col in f, col
    assert f["mouth_width"].between(0.3, 1.2).all()  # mouth a bit narrower than the eyes' span
    m = res.measures.set_index("measure")
    assert m.loc["blink_count", "unit"] == "blinks" and m.loc["rom_lower_lip", "value"] > 0
    page = res.to_html(tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "blink_count" in page
    again = Analyzer(cache=tmp_path / "cache").analyze(DEMO)  # the cached entry is reused
    pd.testing.assert_frame_equal(again.frames, f)


def test_cli_reports_failures_per_input_and_continues(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(tmp_path / "broken.mp4"), str(DEMO), "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 1 and "error  broken: not a readable video" in r.stderr and "Traceback" not in r.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("id")
    assert summary.loc["broken", "status"] == "error" and summary.loc["single_face", "status"] == "ok"
    for name in ("frames.csv", "measures.csv", "report.html", "signals.png", "regions.png", "overlay.mp4"):
        assert (tmp_path / "out" / "single_face" / name).stat().st_size > 0, name


def test_a_trained_run_scores_a_new_video(tmp_path):
    """Train a tiny trajectory regressor on demo-clip windows, then let analyze score the clip."""
    from fexa.train.config import load_config
    from fexa.train.trainer import train

    rows = [{"id": f"w{s}_{k}", "path": str(DEMO), "subject": f"w{s}", "score": k, "motion_scale": 1 - k / 2,
             "start": s, "end": s + 32} for s in (0, 20, 40) for k in range(3)]
    pd.DataFrame(rows).to_csv(tmp_path / "m.csv", index=False)
    cfg = load_config(None, [f"out={tmp_path / 'runs'}", "name=tiny", "data.dataset=manifest",
                             f"data.root={tmp_path / 'm.csv'}",
                             f"data.cache={tmp_path / 'cache'}", "data.folds=3", "data.val_fraction=0.0",
                             "data.samples={trajectory_length: 32, trajectory_channels: 2}", "model.name=tramp_trajectory",
                             "model.options={traj_frames: 32, traj_channels: 2, dim: 32, traj_encoder: "
                             "{embed_dim: 32, depths: [1], channels: [32], attn_drop: 0.0, drop_path: 0.0}}",
                             "train.epochs=1", "train.loss=mse", "eval.bootstrap=10"])
    train(cfg, progress=False)
    res = Analyzer(cache=tmp_path / "cache", models=[cfg.run_dir]).analyze(DEMO)
    p = res.predictions
    assert list(p.columns) == ["model", "score", "level"] and p.loc[0, "model"] == "tiny"
    assert pd.notna(p.loc[0, "score"]) and p.loc[0, "level"] == max(0, round(p.loc[0, "score"]))
    assert "Model predictions" in res.to_html(tmp_path / "r.html").read_text()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    report = Analyzer(cache=tmp_path / "cache").analyze(DEMO).to_html(tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400", f"--screenshot={shot}",
                    report.as_uri()], capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1200)
    assert img.std() > 20  # text and plots, not a blank page
    assert (img[300:1000] < 128).mean() > 0.01  # the embedded signal plot drew dark lines
