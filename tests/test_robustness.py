"""Batches that never die and cache entries that never belong to the wrong input: the corpus of
real and malformed inputs (tests/corpus.py) through extract and analyze, same-stem and edited
inputs, concurrent shards, damaged entries, and time from timestamps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, REPO, by_stem, entry_of, write_video
from corpus import _frame_folder, demo_frames, make_corpus
from fexa.analysis.analyzer import Analyzer
from fexa.analysis.result import Result
from fexa.analysis.measures import compute_measures, region_motion
from fexa.extract import MANIFEST_COLUMNS, STATUSES, ExtractConfig, entry_state, extract_many
from fexa.io.trackfile import TrackData


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """The whole corpus extracted, then analysed with the extract folder as analyze's cache."""
    root = tmp_path_factory.mktemp("corpus")
    cases = make_corpus(root / "inputs")
    out = root / "extract"
    manifest = extract_many([c.path for c in cases], out, progress=False).set_index("id")
    reasons = {}
    summary = Analyzer(cache=out).analyze_many([c.path for c in cases], root / "analysis",
                                               on_error=lambda i, why: reasons.setdefault(i, why))
    return cases, manifest, summary.set_index("id"), reasons, root


def test_every_corpus_input_gets_a_documented_status_and_a_one_line_reason(corpus_run):
    cases, manifest, summary, reasons, root = corpus_run
    assert list(manifest.reset_index().columns) == MANIFEST_COLUMNS
    ids = [entry_of(root, c.path).name for c in cases]
    assert len(set(ids)) == len(cases)  # every input its own entry
    for case, ident in zip(cases, ids):
        row = manifest.loc[ident]
        assert row["status"] in STATUSES and row["status"] in case.extract, (case.name, row["status"], row["error"])
        assert "Traceback" not in str(row["error"]) and "\n" not in str(row["error"]), case.name
        assert case.reason in str(row["error"]) + str(summary.loc[ident, "error"]), (case.name, row["error"])
        assert summary.loc[ident, "status"] in case.analyze, (case.name, summary.loc[ident, "error"])
    on_disk = pd.read_csv(root / "analysis" / "summary.csv").set_index("id")
    assert sorted(on_disk.index) == sorted(ids) and set(reasons) == set(summary.index[summary["status"] == "error"])
    clean = int(summary["status"].isin(["ok", "partial"]).sum())
    print(f"\n{len(cases)} inputs tried: {clean} analysed ({int((summary['status'] == 'partial').sum())} partial), "
          f"{len(cases) - clean} refused with a reason")


def _meta(root, case_name, cases):
    case = next(c for c in cases if c.name == case_name)
    return json.loads((entry_of(root / "extract", case.path) / "meta.json").read_text()), case


def test_partial_videos_say_what_was_lost(corpus_run):
    cases, _, _, _, root = corpus_run
    meta, _ = _meta(root, "garbage_mid_file", cases)
    assert meta["frames_expected"] == 72 and 50 <= meta["frames_decoded"] < 72  # 25 before: decoding stopped at the damage
    meta, _ = _meta(root, "truncated_50", cases)
    assert meta["status"] == "partial" and meta["frames_decoded"] < 0.6 * meta["frames_expected"]


def test_upside_down_face_is_turned_before_the_mesh(corpus_run):
    cases, _, _, _, root = corpus_run
    meta, _ = _meta(root, "upside_down", cases)
    flipped = TrackData.load(entry_of(root / "extract", next(c.path for c in cases if c.name == "upside_down"))
                             / "track.npz")
    assert flipped.valid.mean() > 0.95 and "turned upright" in " ".join(meta["warnings"])
    roll = flipped.pose[flipped.valid, 2]
    assert (np.abs(np.abs(roll) - 180) < 20).mean() > 0.95, np.median(roll)  # the mesh says: upside down
    width = compute_measures(flipped, "smile").set_index("measure").loc["mouth_width_rom", "value"]
    assert width > 0.15  # the demo's smile; an upright mesh on the inverted face measured ~29 % off
    # turned over at frame 36: no frame is valid with an upright mesh on the inverted face
    meta, case = _meta(root, "turned_over_mid_clip", cases)
    turned = TrackData.load(entry_of(root / "extract", case.path) / "track.npz")
    roll = np.abs(turned.pose[:, 2])
    assert (roll[:31][turned.valid[:31]] < 20).all() and turned.valid[:31].mean() > 0.9
    assert (roll[36:][turned.valid[36:]] > 160).all() and turned.valid[55:].all()
    assert "fitted before the face was found turned over are marked face lost" in " ".join(meta["warnings"])


def test_slow_and_variable_frame_rates_use_time(corpus_run):
    cases, _, summary, _, root = corpus_run
    one_fps = summary.loc[entry_of(root, next(c.path for c in cases if c.name == "one_fps")).name]
    assert np.isnan(one_fps["blink_count"]) and np.isnan(one_fps["peak_speed_upper_lip"])
    assert "blinks: not measurable at 1 frames/s" in one_fps["warnings"]
    vfr = TrackData.load(entry_of(root / "extract", next(c.path for c in cases if c.name == "variable_rate"))
                         / "track.npz")
    dt = np.round(np.diff(vfr.times), 3)
    assert set(dt) <= {0.022, 0.023, 0.05} and 0.05 in dt, set(dt)  # 1/45 and 1/20 s, as encoded (ms)


def test_same_stem_inputs_with_equal_times_get_their_own_results(corpus_run):
    cases, manifest, summary, _, root = corpus_run
    a, b = (entry_of(root, c.path).name for c in cases if c.name.startswith("same_stem"))
    assert a != b and a.startswith("smile-") and b.startswith("smile-")
    assert manifest.loc[a, "frames"] == manifest.loc[b, "frames"] == 24
    assert summary.loc[a, "mouth_width_rom"] != summary.loc[b, "mouth_width_rom"]  # B is not reported with A's


def test_one_at_a_time_same_stem_and_edited_inputs_are_redone(tmp_path):
    frames = demo_frames()
    a = _frame_folder(tmp_path / "a" / "smile", frames[:12])
    b = _frame_folder(tmp_path / "b" / "smile", frames[40:52])
    for p in (*a.iterdir(), a, *b.iterdir(), b):
        os.utime(p, (1_700_000_000, 1_700_000_000))
    out = tmp_path / "out"
    extract_many([a], out, progress=False)
    extract_many([b], out, progress=False)  # not skipped as "done": it is another input
    ta, tb = (TrackData.load(entry_of(out, p) / "track.npz") for p in (a, b))
    assert not np.allclose(ta.points[0], tb.points[0])
    # edit a in place: new frames, the folder's and files' times kept
    before = Analyzer(cache=tmp_path / "analysis").analyze(a).measures.set_index("measure")["value"]
    _frame_folder(a, frames[60:72])
    for p in (*a.iterdir(), a):
        os.utime(p, (1_700_000_000, 1_700_000_000))
    assert entry_state(entry_of(out, a), a, ExtractConfig()) == "the input changed since it was extracted"
    extract_many([a], out, progress=False)
    edited = TrackData.load(entry_of(out, a) / "track.npz")
    assert not np.allclose(edited.points[0], ta.points[0])
    after = Analyzer(cache=tmp_path / "analysis").analyze(a).measures.set_index("measure")["value"]
    assert after["mouth_width_rom"] != before["mouth_width_rom"]  # analyze redoes it too
    # a video replaced by another of different size under the same name
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(DEMO.read_bytes())
    extract_many([clip], out, progress=False)
    write_video(clip, frames[10:30], fps=30)
    m = extract_many([clip], out, progress=False).set_index("id")
    assert m.loc[entry_of(out, clip).name, "frames"] == 20


def test_damaged_entries_are_redone_by_extract_and_analyze(tmp_path):
    out = tmp_path / "cache"
    extract_many([DEMO], out, progress=False)
    entry = entry_of(out, DEMO)
    good = TrackData.load(entry / "track.npz").points
    for name in ("track.npz", "crops.mp4"):
        data = (entry / name).read_bytes()
        (entry / name).write_bytes(data[: len(data) // 2])  # truncated, e.g. by a copy cut short
        assert "damaged" in entry_state(entry, DEMO, ExtractConfig())
        res = Analyzer(cache=out).analyze(DEMO)  # redone, not fatal
        assert res.track.num_frames == 72 and entry_state(entry, DEMO, ExtractConfig()) == ""
        np.testing.assert_allclose(TrackData.load(entry / "track.npz").points, good, atol=1e-3)


def test_a_failure_outside_fexa_does_not_stop_the_batch_and_summaries_merge(tmp_path, monkeypatch):
    calls = []

    def broken_overlay(self, path, progress=False):
        calls.append(path)
        if len(calls) == 1:
            raise ValueError("operands could not be broadcast together")  # e.g. a size change numpy refuses
        return original(self, path, progress)

    original = Result.write_overlay
    monkeypatch.setattr(Result, "write_overlay", broken_overlay)
    two = tmp_path / "two.mp4"
    two.write_bytes(DEMO.read_bytes())
    out = tmp_path / "out"
    summary = Analyzer(cache=tmp_path / "cache").analyze_many([DEMO, two], out)
    assert list(summary["status"]) == ["error", "ok"]
    assert summary.loc[0, "error"] == "internal error: ValueError: operands could not be broadcast together"
    assert not (entry_of(out, DEMO) / "overlay.mp4").exists()  # no half-written video
    assert not list(entry_of(out, DEMO).glob(".*tmp*"))
    # a rerun of the failed input alone updates its row and keeps the other's
    Analyzer(cache=tmp_path / "cache").analyze_many([DEMO], out)
    merged = by_stem(pd.read_csv(out / "summary.csv"))
    assert sorted(merged.index) == ["single_face", "two"] and (merged["status"] == "ok").all()


def _cli_extract(inputs, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "fexa", "extract", *map(str, inputs), "--out", str(out), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


@pytest.mark.parametrize("stagger", [0.0, 2.0])
def test_concurrent_shards_into_one_folder_equal_one_process(tmp_path, stagger):
    frames = demo_frames()
    inputs = []
    for i in range(4):
        inputs.append(write_video(tmp_path / f"clip{i}.mp4", frames[i * 12:i * 12 + 24], fps=30))
    single = tmp_path / "single"
    extract_many(inputs, single, progress=False)
    shared = tmp_path / "shared"
    first = _cli_extract(inputs, shared, "--shard", "0/2")
    time.sleep(stagger)
    second = _cli_extract(inputs, shared, "--shard", "1/2")
    for p in (first, second):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    manifest = pd.read_csv(shared / "manifest.csv")
    assert len(manifest) == 4 and (manifest["status"] == "ok").all()
    assert not list(shared.glob(".*tmp*"))
    for path in inputs:
        a, b = (TrackData.load(entry_of(folder, path) / "track.npz") for folder in (single, shared))
        np.testing.assert_allclose(a.points, b.points, atol=1e-3)
        ma, mb = (json.loads((entry_of(folder, path) / "meta.json").read_text()) for folder in (single, shared))
        assert ma["fingerprint"] == mb["fingerprint"] and ma["files"]["track.npz"]["size"] > 0


def test_another_process_s_temporaries_are_left_alone(tmp_path):
    from fexa.io.atomic import _owner, remove_stale_temporaries

    host = _owner().split("@")[0]
    alive = tmp_path / f".entry.{host}@{os.getppid()}.x1.tmp"  # a running process's work in progress
    dead = tmp_path / f".entry.{host}@{2 ** 22 + 12345}.x2.tmp"  # no such pid
    old = tmp_path / ".entry.x3.tmp"  # an older fexa's, no owner
    for p in (alive, dead, old):
        p.mkdir()
    os.utime(old, (0, 0))
    assert remove_stale_temporaries(tmp_path) == 2
    assert alive.exists() and not dead.exists() and not old.exists()


def test_speeds_use_timestamps_under_variable_frame_rate(demo_entry):
    """The same motion sampled at a constant 30 fps and at alternating 1/20 and 1/45 s intervals
    (mean rate 30 fps): peak speeds from the timestamps agree; with the mean rate they were 33 % off."""
    from fexa.face.landmarks import get_scheme

    face = TrackData.load(demo_entry / "track.npz").points_crop[0]  # a real frontal mesh, crop pixels
    scheme = get_scheme("traj63")
    lower_lip = sorted({i for src in scheme.source_indices("mediapipe478")[scheme.region_slice("lower_lip")]
                        for i in src})

    def peak_speed(times: np.ndarray) -> float:
        pts = np.repeat(face[None], len(times), axis=0)
        pts[:, lower_lip, 1] += 8.0 * np.sin(2 * np.pi * 0.5 * times)[:, None]  # 8 px at 0.5 Hz
        track = TrackData.from_landmarks(pts, "mediapipe478", 30.0, 256, (256, 256))
        track.times = times
        return region_motion(track).set_index("region").loc["lower_lip", "peak_speed"]

    cfr = peak_speed(np.arange(0, 4, 1 / 30))
    vfr = peak_speed(np.cumsum([0] + [1 / 20 if i % 2 else 1 / 45 for i in range(120)]))
    assert vfr == pytest.approx(cfr, rel=0.05), (vfr, cfr)
