"""The attention mesh's custom ops (fexa.face.mediapipe_ops) against transforms worked out by hand,
and the whole converted attention mesh against mediapipe FaceMesh on the demo clip."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import DEMO
from fexa.face.mediapipe_ops import CUSTOM_OPS

L2TM = CUSTOM_OPS["Landmarks2TransformMatrix"]
TTB = CUSTOM_OPS["TransformTensorBilinear"]
TL = CUSTOM_OPS["TransformLandmarks"]


def l2tm_options(left: int, right: int, subset: list[int], scale: float = 1.5, size: int = 16) -> dict:
    """Options as the model's Landmarks2TransformMatrix operators carry them (v2)."""
    return {"left_rotation_idx": left, "right_rotation_idx": right, "subset_idxs": subset,
            "output_width": size, "output_height": size, "scale_x": scale, "scale_y": scale,
            "target_rotation_radians": 0.0}


def matrix(rows: list[list[float]]) -> torch.Tensor:
    """A [1, 4, 4] matrix from its first two rows (rows 2 and 3 identity)."""
    return torch.tensor([rows[0], rows[1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)[None]


def grid(h: int, w: int, c: int = 2) -> torch.Tensor:
    """[1, h, w, c] with value 10 y + x + 100 c at pixel (y, x) of channel c: every value says where it is."""
    y, x, ch = torch.meshgrid(torch.arange(h), torch.arange(w), torch.arange(c), indexing="ij")
    return (10 * y + x + 100 * ch).float()[None]


# Landmarks2TransformMatrix ------------------------------------------------------------------


def test_matrix_of_level_landmarks_by_hand() -> None:
    # left (2, 5) -> right (10, 5): level, no rotation. The subset [0, 1, 2, 3, 4] (odd: the last
    # one pairs with itself) spans x 2..10, y 3..9: box 8 x 6, centre (6, 6). Landmark 5 at
    # (100, 100) is not in the subset and must not count; z values must not count either.
    lm = torch.tensor([[[2, 5, 7], [10, 5, -3], [4, 3, 0], [6, 9, 0], [5, 6, 50], [100, 100, 0]]], dtype=torch.float32)
    (m,) = L2TM([lm], l2tm_options(0, 1, [0, 1, 2, 3, 4]))
    # sx = 1.5 * 8 / 16 = 0.75, sy = 1.5 * 6 / 16 = 0.5625; the patch centre (8, 8) lands on (6, 6):
    # t = (6 - 0.75 * 8, 6 - 0.5625 * 8) = (0, 1.5)
    expected = matrix([[0.75, 0, 0, 0], [0, 0.5625, 0, 1.5]])
    assert torch.allclose(m, expected, atol=1e-6), m


def test_matrix_of_landmarks_turned_90_degrees_by_hand() -> None:
    # left (5, 2) -> right (5, 10) points along +y: atan2(8, 0) = pi/2, so r = -pi/2. Rotated by r,
    # (x, y) -> (y, -x): the subset (x 2..8, y 2..10) spans x' 2..10 (w 8) and y' -8..-2 (h 6).
    # The box centre is (5, 6) in the landmarks' frame; the patch's x axis runs along +y.
    lm = torch.tensor([[[5, 2, 0], [5, 10, 0], [2, 6, 0], [8, 6, 0]]], dtype=torch.float32)
    (m,) = L2TM([lm], l2tm_options(0, 1, [0, 1, 2, 3]))
    # rotate(pi/2) . scale(0.75, 0.5625) = [[0, -0.5625], [0.75, 0]]; t = (5, 6) - that . (8, 8) = (9.5, 0)
    expected = matrix([[0, -0.5625, 0, 9.5], [0.75, 0, 0, 0]])
    assert torch.allclose(m, expected, atol=1e-6), m
    # the patch's left-middle and right-middle edge points land on the rotation landmarks' line x = 5
    ends = TL([torch.tensor([[[0.0, 8.0], [16.0, 8.0]]]), m], None)[0]
    assert torch.allclose(ends[0, :, 0], torch.tensor([5.0, 5.0]), atol=1e-5)


def test_matrix_recovers_a_known_similarity() -> None:
    # Landmarks placed as a similarity S (30 degrees, scale 2, shift (40, 30)) of the 16 x 16
    # patch's corners and edge midpoints: with scale 1 the op must return S itself, since the
    # box of S(corners) seen at S's angle is the patch scaled by 2, centred on S(8, 8).
    a, k, tx, ty = math.radians(30), 2.0, 40.0, 30.0
    c, s = k * math.cos(a), k * math.sin(a)
    patch = [(0, 8), (16, 8), (0, 0), (16, 0), (16, 16), (0, 16)]  # left-mid, right-mid, 4 corners
    lm = torch.tensor([[[c * x - s * y + tx, s * x + c * y + ty, 0.0] for x, y in patch]])
    (m,) = L2TM([lm], l2tm_options(0, 1, [2, 3, 4, 5], scale=1.0))
    assert torch.allclose(m, matrix([[c, -s, 0, tx], [s, c, 0, ty]]), atol=1e-4), m


def test_matrix_batch_equals_single_runs() -> None:
    torch.manual_seed(0)
    lm = torch.rand(5, 30, 3) * 48
    options = l2tm_options(3, 17, [0, 3, 5, 9, 17, 20, 29])
    (batched,) = L2TM([lm], options)
    singles = torch.cat([L2TM([lm[i:i + 1]], options)[0] for i in range(5)])
    assert batched.shape == (5, 4, 4)
    assert torch.equal(batched, singles)
    assert not torch.equal(batched[0], batched[1])  # each face has its own matrix


def test_matrix_rejects_bad_input() -> None:
    lm = torch.zeros(1, 4, 3)
    with pytest.raises(ValueError, match="lack 'subset_idxs'"):
        L2TM([lm], {"subset": [0, 1], "input_hw": [48, 48]})  # version-1 options
    with pytest.raises(ValueError, match=r"indices \[7\] are outside the 4 landmarks"):
        L2TM([lm], l2tm_options(0, 1, [0, 7]))
    with pytest.raises(ValueError, match=r"expected \[B, N, 3\]"):
        L2TM([torch.zeros(1, 1, 1, 12)], l2tm_options(0, 1, [0, 1]))


# TransformTensorBilinear ---------------------------------------------------------------------


def test_bilinear_identity_copies_the_input() -> None:
    # pixel centres: output (x, y) reads the input at I (x + 0.5, y + 0.5) - 0.5 = (x, y) exactly
    x = grid(3, 4)
    (out,) = TTB([x, matrix([[1, 0, 0, 0], [0, 1, 0, 0]])], {"output_height": 3, "output_width": 4})
    assert torch.equal(out, x)


def test_bilinear_shift_and_right_border_by_hand() -> None:
    x = grid(2, 4)  # row 0: 0 1 2 3, row 1: 10 11 12 13 (channel 1: +100)
    # shift by 1.5: output x reads input x + 1.5, i.e. the mean of columns x + 1 and x + 2;
    # x = 2 reads 3.5 > W - 1 = 3: outside, 0 (not the border value, not a blend)
    (out,) = TTB([x, matrix([[1, 0, 0, 1.5], [0, 1, 0, 0]])], {"output_height": 2, "output_width": 4})
    assert out[0, :, :, 0].tolist() == [[1.5, 2.5, 0, 0], [11.5, 12.5, 0, 0]]
    assert out[0, 0, :, 1].tolist() == [101.5, 102.5, 0, 0]
    # shift by exactly 1: x = 2 reads 3.0 = W - 1, still inside (column 3 in full); x = 3 reads 4: 0
    (out,) = TTB([x, matrix([[1, 0, 0, 1], [0, 1, 0, 0]])], {"output_height": 2, "output_width": 4})
    assert out[0, :, :, 0].tolist() == [[1, 2, 3, 0], [11, 12, 13, 0]]


def test_bilinear_left_border_and_half_pixel_scaling_by_hand() -> None:
    x = grid(4, 4)
    # scale 0.5 (an output twice the input's resolution): output x reads 0.5 (x + 0.5) - 0.5 = 0.5 x - 0.25.
    # x = 0 reads -0.25 < 0: outside, 0; x = 1 reads 0.25: 0.75 col 0 + 0.25 col 1; x = 7 reads 3.25 > 3: 0.
    # y likewise: output row 1 reads input row 0.25 = 0.75 row 0 + 0.25 row 1 (rows are 10 apart).
    (out,) = TTB([x, matrix([[0.5, 0, 0, 0], [0, 0.5, 0, 0]])], {"output_height": 8, "output_width": 8})
    assert out.shape == (1, 8, 8, 2)
    assert out[0, 1, :, 0].tolist() == [0, 2.75, 3.25, 3.75, 4.25, 4.75, 5.25, 0]  # 2.5 + 0.25, 2.5 + 0.75, ...
    assert out[0, 0].abs().sum() == 0 and out[0, 7].abs().sum() == 0  # rows reading -0.25 and 3.25
    assert out[0, 3, 3, 1].item() == pytest.approx(100 + 10 * 1.25 + 1.25)
    # shift by -0.25: every output column reads x - 0.25, so column 0 (-0.25) is outside: 0
    (out,) = TTB([x, matrix([[1, 0, 0, -0.25], [0, 1, 0, 0]])], {"output_height": 4, "output_width": 4})
    assert out[0, 2, :, 0].tolist() == [0, 20.75, 21.75, 22.75]


def test_bilinear_quarter_turn_by_hand() -> None:
    # T = [[0, 1, 0, 0], [-1, 0, 0, 3]] on a 3 x 3 input: output (x, y) reads
    # (y + 0.5 - 0.5, -(x + 0.5) + 3 - 0.5) = (y, 2 - x): a quarter turn about the centre pixel
    # (3 = the side in pixel spans, not side - 1: the half-pixel convention)
    x = grid(3, 3)
    (out,) = TTB([x, matrix([[0, 1, 0, 0], [-1, 0, 0, 3]])], {"output_height": 3, "output_width": 3})
    assert out[0, :, :, 0].tolist() == [[20, 10, 0], [21, 11, 1], [22, 12, 2]]


def test_bilinear_batch_equals_single_runs_and_nan_is_not_hidden() -> None:
    torch.manual_seed(1)
    x = torch.randn(3, 12, 10, 4)
    a = torch.tensor([0.3, -1.0, 2.0])
    m = torch.zeros(3, 4, 4)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a.cos() * 0.7, -a.sin() * 0.7, a.sin() * 0.7, a.cos() * 0.7
    m[:, 0, 3], m[:, 1, 3], m[:, 2, 2], m[:, 3, 3] = torch.tensor([2.0, 6.0, -1.0]), torch.tensor([1.0, 5.0, 9.0]), 1, 1
    options = {"output_height": 9, "output_width": 11}
    (batched,) = TTB([x, m], options)
    singles = torch.cat([TTB([x[i:i + 1], m[i:i + 1]], options)[0] for i in range(3)])
    assert batched.shape == (3, 9, 11, 4)
    assert torch.equal(batched, singles)
    assert (batched == 0).any() and (batched != 0).any()  # each patch partly outside its input
    m[1] = float("nan")
    assert TTB([x, m], options)[0][1].isnan().all()


# TransformLandmarks ---------------------------------------------------------------------------


def test_landmarks_by_hand() -> None:
    # x' = 2 x + 0 y + 1, y' = 0 x + 3 y - 1; column 2 (9) never counts (the kernel sets z = 0)
    m = matrix([[2, 0, 9, 1], [0, 3, 9, -1]])
    (out,) = TL([torch.tensor([[[1.0, 2.0], [-1.0, 0.5]]]), m], None)
    assert out.tolist() == [[[3.0, 5.0], [-1.0, 0.5]]]
    # three coordinates: z is copied unchanged
    (out,) = TL([torch.tensor([[[1.0, 2.0, 7.0]]]), m], None)
    assert out.tolist() == [[[3.0, 5.0, 7.0]]]
    # a quarter turn plus shift: (x, y) -> (-y + 4, x)
    (out,) = TL([torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]), matrix([[0, -1, 0, 4], [1, 0, 0, 0]])], None)
    assert out.tolist() == [[[4.0, 1.0], [3.0, 0.0]]]


def test_landmarks_batch_equals_single_runs() -> None:
    torch.manual_seed(2)
    lm, m = torch.rand(4, 71, 2) * 16, torch.randn(4, 4, 4)
    (batched,) = TL([lm, m], None)
    assert torch.equal(batched, torch.cat([TL([lm[i:i + 1], m[i:i + 1]], None)[0] for i in range(4)]))
    with pytest.raises(ValueError, match=r"matrix input has shape \(1, 4, 4\); expected \[4, 4, 4\]"):
        TL([lm, m[:1]], None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ops_on_cuda_match_cpu() -> None:
    torch.manual_seed(3)
    lm = torch.rand(2, 468, 3) * 48
    options = l2tm_options(61, 291, [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
    x = torch.randn(2, 48, 48, 32)
    cpu_m = L2TM([lm], options)[0]
    cpu_patch = TTB([x, cpu_m], {"output_height": 16, "output_width": 16})[0]
    cpu_lm = TL([lm[:, :80, :2], cpu_m], None)[0]
    gpu_m = L2TM([lm.cuda()], options)[0]
    assert gpu_m.is_cuda
    assert torch.allclose(gpu_m.cpu(), cpu_m, atol=1e-4)
    assert torch.allclose(TTB([x.cuda(), gpu_m], {"output_height": 16, "output_width": 16})[0].cpu(), cpu_patch, atol=1e-4)
    assert torch.allclose(TL([lm[:, :80, :2].cuda(), gpu_m], None)[0].cpu(), cpu_lm, atol=1e-3)


# The whole attention mesh --------------------------------------------------------------------


def test_attention_mesh_reproduces_mediapipe_face_mesh_on_the_demo_clip() -> None:
    """The converted attention mesh, run with these ops on the crop mediapipe itself used, gives
    mediapipe FaceMesh's 478 points (refine_landmarks=True) to within 0.005 px on average.

    mediapipe crops a tracked frame from the previous frame's mesh (face_landmark_landmarks_to_roi),
    so the same frame fed twice is meshed on the ROI of its own first mesh: that ROI, cut and
    meshed with fexa's graph, must give the second mesh. Measured on frames 0 and 45 (faces ~100 px
    between the outer eye corners): mean 2e-5 px, max 9e-5 px; with the sampler's half-pixel shift
    left out the mean is 0.49 px, with scale 1.4 for 1.5 in Landmarks2TransformMatrix 0.33 px."""
    mp = pytest.importorskip("mediapipe")
    import cv2
    import numpy as np

    from fexa.face import mp_pipeline
    from fexa.face.tflite_graph import TfliteGraph

    cap = cv2.VideoCapture(str(DEMO))
    frames = []
    for i in range(46):
        ok, bgr = cap.read()
        assert ok, f"{DEMO}: frame {i} unreadable"
        if i in (0, 45):
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    images = np.stack(frames)
    height, width = images.shape[1:3]
    first, second = [], []
    for rgb in frames:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1,
                                             min_tracking_confidence=0.0) as mesh:
            runs = [mesh.process(rgb).multi_face_landmarks[0].landmark for _ in range(2)]
        first.append([[p.x, p.y, p.z] for p in runs[0]])
        second.append([[p.x, p.y] for p in runs[1]])
    rects = mp_pipeline.landmark_rois(np.array(first, np.float32), (width, height))
    graph = TfliteGraph.load("face_landmark_with_attention").eval()
    with torch.no_grad():
        points, present = mp_pipeline.landmarks_in_rois(graph, torch.from_numpy(images), rects)
    assert present.tolist() == [True, True]
    assert points.shape == (2, 478, 3)
    err = np.linalg.norm((points[..., :2].numpy() - np.array(second)) * [width, height], axis=-1)
    assert err.mean() < 0.005 and err.max() < 0.05, (err.mean(), err.max())
