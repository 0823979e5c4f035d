"""The torch face backend (fexa.face.mp_face, ``TrackerConfig.backend="torch"``): mediapipe's FaceDetection and
FaceMesh solutions rebuilt on fexa's torch models, against mediapipe 0.10.21 itself (skipped without it) and
on its own, without mediapipe, on the demo clip (hand labels below); the backend in extraction settings."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DEMO, REPO, shared_file
from fexa.errors import FexaError
from fexa.extract import ExtractConfig
from fexa.face import mp_face
from fexa.face.detector import FaceTracker, TrackerConfig
from fexa.io.trackfile import TrackData

# Hand labels of the demo clip (640 x 360, 72 frames, one man facing the camera in every frame), from the
# frames viewed at 4x: frame 35 smiling with the teeth showing (lips ~12 px apart at the middle), iris centres
# ~(257, 159) and ~(324, 157); frame 71 neutral with the lips closed, iris centres ~(260, 162) and ~(328, 160).
DEMO_FRAMES = 72
IRISES = {35: [(257, 159), (324, 157)], 71: [(260, 162), (328, 160)]}


def _bench():
    """benchmarks/bench_face_backends.py as a module (its track comparison and tolerances)."""
    spec = importlib.util.spec_from_file_location("bench_face_backends", REPO / "benchmarks" / "bench_face_backends.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frames(indices: list[int]) -> list[np.ndarray]:
    """RGB demo frames ``indices``."""
    import av

    want, out = set(indices), []
    with av.open(str(DEMO)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                out.append(f.to_ndarray(format="rgb24"))
    return out


def _points(result) -> list[np.ndarray]:
    """The meshes of a FaceMesh result (either backend's) as [478, 3] arrays, left to right."""
    faces = [np.array([(p.x, p.y, p.z) for p in f.landmark]) for f in result.multi_face_landmarks or []]
    return sorted(faces, key=lambda p: p[:, 0].mean())


# ----------------------------------------------------------------------------- mp_face on its own

def test_association_keeps_the_later_of_two_overlapping_rois_by_hand():
    det = np.array([[0.3, 0.5, 0.2, 0.2, 0.0],  # A: x 0.2..0.4, y 0.4..0.6
                    [0.8, 0.5, 0.2, 0.2, 0.0]], np.float32)  # B: x 0.7..0.9, apart from A
    held = np.array([[0.32, 0.5, 0.2, 0.2, 0.1],  # C: x 0.22..0.42, IoU with A 0.036 / 0.044 = 0.82 > 0.5
                     [0.42, 0.5, 0.2, 0.2, 0.0]], np.float32)  # D: x 0.32..0.52, IoU with C 0.02 / 0.06 = 1/3
    # C replaces A (rotation ignored for the overlap) and goes after B; D overlaps C too little: both stay
    np.testing.assert_allclose(mp_face.associate_rois(det, held), [det[1], held[0], held[1]])
    np.testing.assert_allclose(mp_face.associate_rois(held[:1], det), det)  # the other order: A replaces C
    assert mp_face.associate_rois(det[:0], held[:0]).shape == (0, 5)


def test_solutions_validate_their_arguments():
    with pytest.raises(ValueError, match="model_selection"):
        mp_face.FaceDetection(model_selection=2)
    with pytest.raises(ValueError, match="min_detection_confidence"):
        mp_face.FaceDetection(min_detection_confidence=1.5)
    with pytest.raises(ValueError, match="refine_landmarks"):
        mp_face.FaceMesh(refine_landmarks=False)
    with pytest.raises(ValueError, match="max_num_faces"):
        mp_face.FaceMesh(max_num_faces=0)
    with pytest.raises(ValueError, match="min_tracking_confidence"):
        mp_face.FaceMesh(min_tracking_confidence=-0.1)
    mesh = mp_face.FaceMesh()
    with pytest.raises(ValueError, match="RGB uint8"):
        mesh.process(np.zeros((8, 8), np.uint8))
    mesh.close()
    with pytest.raises(ValueError, match="closed"):
        mesh.process(np.zeros((8, 8, 3), np.uint8))


def test_torch_mesh_on_demo_frames_matches_hand_labels():
    frames = _frames(sorted(IRISES))
    with mp_face.FaceMesh(static_image_mode=True) as mesh, mp_face.FaceDetection(model_selection=1) as detector:
        assert detector.process(np.zeros((120, 160, 3), np.uint8)).detections is None  # mediapipe's None, not []
        assert mesh.process(np.zeros((120, 160, 3), np.uint8)).multi_face_landmarks is None
        gaps = []
        for frame, (_, irises) in zip(frames, sorted(IRISES.items())):
            assert len(detector.process(frame).detections) == 1
            (p,) = _points(mesh.process(frame))
            px = p[:, :2] * [640, 360]
            np.testing.assert_allclose(px[[468, 473]], irises, atol=4)  # iris centres, left and right in the image
            gaps.append(px[14, 1] - px[13, 1])  # inner lips, lower minus upper
    assert gaps[0] > 8 and abs(gaps[1]) < 3  # smiling with the teeth showing, then closed


# ----------------------------------------------------------------------------- against mediapipe

@pytest.mark.parametrize("static", [False, True])
def test_face_mesh_equals_mediapipe_through_a_lost_face(static):
    """Video mode holds the face by its previous mesh, drops it on a blank frame and finds it again with
    the detector; static mode detects every frame. Both as mediapipe's FaceMesh, frame by frame."""
    solutions = pytest.importorskip("mediapipe").solutions
    frames = _frames(list(range(8)))
    frames[4] = np.zeros_like(frames[4])
    with (solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=1, refine_landmarks=True) as ref,
          mp_face.FaceMesh(static_image_mode=static, max_num_faces=1) as ours):
        for i, f in enumerate(frames):
            want, got = _points(ref.process(f)), _points(ours.process(f))
            assert len(want) == len(got) == (0 if i == 4 else 1)
            for w, g in zip(want, got):
                assert np.abs((w[:, :2] - g[:, :2]) * [640, 360]).max() < 0.25  # pixels
                assert np.abs(w[:, 2] - g[:, 2]).max() < 1e-3


def test_two_faces_tracked_as_mediapipe():
    """max_num_faces=2 on demo frames beside their mirror image, the mirror blacked out in the first two:
    one face held while the detector keeps looking, then the second face found (its detection ROI joins
    the held one, the held face's own detection merged away), then both held, as mediapipe does."""
    solutions = pytest.importorskip("mediapipe").solutions
    frames = [np.concatenate([f, f[:, ::-1] * (i >= 2)], axis=1) for i, f in enumerate(_frames(list(range(5))))]
    with (solutions.face_mesh.FaceMesh(max_num_faces=2, refine_landmarks=True) as ref,
          mp_face.FaceMesh(max_num_faces=2) as ours):
        for i, f in enumerate(frames):
            want, got = _points(ref.process(f)), _points(ours.process(f))
            assert len(want) == len(got) == (1 if i < 2 else 2)
            for w, g in zip(want, got):
                assert np.abs((w[:, :2] - g[:, :2]) * [1280, 360]).max() < 0.25


@pytest.mark.parametrize("static, calls", [(False, [0, 5]), (True, list(range(8)))])
def test_detector_runs_only_while_no_face_is_held(monkeypatch, static, calls):
    """Video mode: the detector runs on the first frame and after the face is lost (blank frame 4: the
    mesh of the held ROI finds no face there, so frame 5 is detected again); static mode: every frame."""
    frames = _frames(list(range(8)))
    frames[4] = np.zeros_like(frames[4])
    seen, detect = [], mp_face.mp.detect_faces
    monkeypatch.setattr(mp_face.mp, "detect_faces", lambda *a, **k: seen.append(frame) or detect(*a, **k))
    with mp_face.FaceMesh(static_image_mode=static) as mesh:
        for frame, f in enumerate(frames):
            assert len(_points(mesh.process(f))) == (0 if frame == 4 else 1)
    assert seen == calls


def test_demo_clip_extracted_with_both_backends_agrees(tmp_path):
    """``fexa extract`` of the demo clip: the torch backend's valid frames within 1 % of mediapipe's and
    its landmarks within 0.5 px on average (crop pixels); the smile's large movements within 1 %. (Measures
    of small movements differ more, as much as mediapipe's own do when its ROI scale changes by 0.01 %:
    see benchmarks/bench_face_backends.py.)"""
    pytest.importorskip("mediapipe")
    bench = _bench()
    mp_track, _ = bench.extract(DEMO, TrackerConfig(backend="mediapipe"), tmp_path / "mediapipe")
    torch_track, _ = bench.extract(DEMO, TrackerConfig(backend="torch"), tmp_path / "torch")
    r = bench.compare_tracks(mp_track, torch_track)
    assert r["valid"] == {"mediapipe": DEMO_FRAMES, "torch": DEMO_FRAMES}
    assert r["landmark_mean_px"] <= bench.LANDMARK_TOLERANCE_PX
    assert r["task"] == r["task_torch_auto"] == "smile"
    for name in ("mouth_opening_rom", "rom_lower_lip", "rom_mouth_corner_left", "rom_mouth_corner_right"):
        assert r["measures"][name]["relative"] <= bench.MEASURE_TOLERANCE, (name, r["measures"][name])


def test_detection_keeps_the_graphs_own_thresholds():
    """mediapipe 0.10.21's FaceDetection ignores min_detection_confidence and keeps its graphs' thresholds
    (0.6 full range, 0.5 short range): on pyfeat's no_face clip the full-range model scores 0.54, 0.53 and
    0.57 in frames 22, 28 and 31 (a pattern on a wall), and mediapipe asked for 0.2 reports no face there.
    fexa's FaceDetection keeps those thresholds as floors, and a higher min_detection_confidence on top
    (the demo's face scores 0.89-0.97)."""
    import av

    with av.open(str(shared_file("pyfeat_test_media/no_face.mp4"))) as c:
        wall = [f.to_ndarray(format="rgb24") for k, f in enumerate(c.decode(video=0)) if k in (22, 28, 31)]
    with mp_face.FaceDetection(model_selection=1, min_detection_confidence=0.2) as low:
        assert [low.process(f).detections for f in wall] == [None] * 3
    with mp_face.FaceDetection(model_selection=1, min_detection_confidence=0.99) as high:
        assert high.process(_frames([0])[0]).detections is None
    with mp_face.FaceDetection(model_selection=1) as usual:
        assert len(usual.process(_frames([0])[0]).detections) == 1
    if importlib.util.find_spec("mediapipe") is not None:
        from mediapipe.python.solutions.face_detection import FaceDetection

        with FaceDetection(model_selection=1, min_detection_confidence=0.2) as ref:
            assert [ref.process(f).detections for f in wall] == [None] * 3


# ----------------------------------------------------------------------------- without mediapipe

def test_torch_backend_extracts_the_demo_clip_without_mediapipe(tmp_path):
    """In a fresh process where ``import mediapipe`` fails, the torch backend extracts the demo clip: the
    face in every frame (hand label), the irises where they were seen."""
    code = f"""
import json, sys
sys.modules["mediapipe"] = None  # importing it now raises ImportError
from fexa.extract import ExtractConfig, extract_one
from fexa.face.detector import TrackerConfig
meta = extract_one({str(DEMO)!r}, {str(tmp_path / "entry")!r}, ExtractConfig(tracker=TrackerConfig(backend="torch")))
print(json.dumps({{"status": meta["status"], "error": meta["error"], "backend": meta["config"]["tracker"]["backend"],
                  "imported": sorted(m for m in sys.modules if m.split(".")[0] == "mediapipe")}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {"status": "ok", "error": "", "backend": "torch", "imported": ["mediapipe"]}  # the None placeholder
    track = TrackData.load(tmp_path / "entry" / "track.npz")
    assert track.num_frames == DEMO_FRAMES and track.valid.all()
    for k, irises in IRISES.items():
        np.testing.assert_allclose(track.points[k, [468, 473], :2], irises, atol=4)


# ----------------------------------------------------------------------------- settings

def test_backend_is_a_setting():
    """torch is the default; mediapipe's extractions are identified as before the torch backend existed (their
    caches stay valid); the device is not part of what identifies an extraction."""
    assert ExtractConfig().settings()["tracker"]["backend"] == "torch"
    mediapipe_cfg = ExtractConfig(tracker=TrackerConfig(backend="mediapipe"))
    assert "backend" not in mediapipe_cfg.settings()["tracker"] and mediapipe_cfg.digest() != ExtractConfig().digest()
    assert "device" not in ExtractConfig(tracker=TrackerConfig(device="cuda")).settings()["tracker"]
    with pytest.raises(FexaError, match="backend='onnx'"):
        ExtractConfig(tracker=TrackerConfig(backend="onnx"))
    with pytest.raises(ValueError, match="backend"):
        FaceTracker(TrackerConfig(backend="onnx"))


def test_cli_passes_the_backend(monkeypatch, tmp_path):
    import pandas as pd

    from fexa.cli import main as cli

    seen = {}

    def extract_many(inputs, out, cfg, **kwargs) -> pd.DataFrame:
        seen["cfg"], seen["streams"] = cfg, kwargs["streams"]
        return pd.DataFrame({"id": [], "status": []})

    monkeypatch.setattr("fexa.extract.extract_many", extract_many)
    assert cli.main(["extract", str(DEMO), "--out", str(tmp_path), "--face-backend", "mediapipe", "--quiet"]) == 0
    assert seen["cfg"].tracker.backend == "mediapipe" and seen["streams"] == 1
    assert cli.main(["extract", str(DEMO), "--out", str(tmp_path), "--streams", "4", "--device", "cuda:1", "--quiet"]) == 0
    assert (seen["cfg"].tracker.backend, seen["cfg"].tracker.device, seen["streams"]) == ("torch", "cuda:1", 4)
    args = cli.build_parser().parse_args(["analyze", str(DEMO), "--face-backend", "mediapipe"])
    assert args.face_backend == "mediapipe"
    assert cli.build_parser().parse_args(["analyze", str(DEMO)]).face_backend == "torch"


def test_a_device_that_cannot_run_is_refused_naming_it(tmp_path):
    from fexa.extract import extract_many

    for tracker, message in ((TrackerConfig(device="gpu0"), "'gpu0' is not a torch device"),
                             (TrackerConfig(backend="mediapipe", device="cuda"), "runs on the CPU only")):
        with pytest.raises(FexaError, match=message):
            extract_many([DEMO], tmp_path, ExtractConfig(tracker=tracker), progress=False)
    with pytest.raises(FexaError, match="streams=2: batched streams need the torch face backend"):
        extract_many([DEMO], tmp_path, progress=False, streams=2, workers=2)

