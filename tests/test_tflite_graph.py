"""fexa.face.tflite_graph against the TFLite reference interpreter, on real face crops of the demo clip and on noise.

The reference (ai-edge-litert, else tflite-runtime) is a test-only dependency: these tests skip without it. The
source .tflite files come from the installed mediapipe wheel. The attention mesh's custom ops (fexa.face.mediapipe_ops)
have no reference interpreter: its trunk (the 468-point mesh and the face flag) is checked on a copy of the model
cut before them.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import DEMO

from fexa.face.tflite_graph import MODEL_DIR, TfliteGraph, TracedGraph, available_models, same_padding

# model name -> (file under mediapipe/modules, input value range the model expects)
MODELS = {
    "face_detection_short_range": ("face_detection/face_detection_short_range.tflite", (-1.0, 1.0)),
    "face_detection_full_range_sparse": ("face_detection/face_detection_full_range_sparse.tflite", (-1.0, 1.0)),
    "face_landmark": ("face_landmark/face_landmark.tflite", (0.0, 1.0)),
    "face_landmark_with_attention": ("face_landmark/face_landmark_with_attention.tflite", (0.0, 1.0)),
    "iris_landmark": ("iris_landmark/iris_landmark.tflite", (0.0, 1.0)),
    "palm_detection_full": ("palm_detection/palm_detection_full.tflite", (0.0, 1.0)),
    "palm_detection_lite": ("palm_detection/palm_detection_lite.tflite", (0.0, 1.0)),
    "hand_landmark_full": ("hand_landmark/hand_landmark_full.tflite", (0.0, 1.0)),
    "hand_landmark_lite": ("hand_landmark/hand_landmark_lite.tflite", (0.0, 1.0)),
}
PLAIN = [n for n in MODELS if n != "face_landmark_with_attention"]
# Hand labels on the demo clip (640x360, the face still through all 72 frames; looked at frames 0, 36, 71):
FACE_BOX = (168, 60, 428, 320)  # x0, y0, x1, y1: square around hair line to chin
EYE_BOX = (218, 122, 298, 202)  # the subject's right eye (image left), twice the eye's width
FRAMES = (0, 24, 48, 71)
REL_TOL = 1e-4  # max |torch - TFLite| per output, relative to the output's largest |value|


def _interpreter_class():
    """The TFLite reference interpreter class, or None when neither ai-edge-litert nor tflite-runtime is installed."""
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            return importlib.import_module(module).Interpreter
    return None


def _source(name: str) -> Path:
    """The model's .tflite file in the installed mediapipe wheel (skip when it is not there)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or spec.origin is None:
        pytest.skip("mediapipe is not installed: no source .tflite files")
    path = Path(spec.origin).parent / "modules" / MODELS[name][0]
    if not path.is_file():
        pytest.skip(f"{path} not in the installed mediapipe wheel")
    return path


@pytest.fixture(scope="module")
def interpreter_class():
    """The reference interpreter class (skip without one)."""
    cls = _interpreter_class()
    if cls is None:
        pytest.skip("no TFLite reference interpreter installed (pip install ai-edge-litert)")
    return cls


@pytest.fixture(scope="module")
def demo_frames() -> torch.Tensor:
    """Frames FRAMES of the demo clip as [N, 360, 640, 3] float in [0, 1]."""
    with av.open(str(DEMO)) as container:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in FRAMES]
    assert len(frames) == len(FRAMES)
    return torch.from_numpy(np.stack(frames)).float() / 255.0


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """[N, H, W, 3] -> [N, size, size, 3] (antialiased bilinear)."""
    x = F.interpolate(images.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(0, 2, 3, 1).contiguous()


def _real_inputs(name: str, frames: torch.Tensor, size: int) -> torch.Tensor:
    """Real inputs for a model: the letterboxed frame for detectors, the face crop, the eye crop for the iris model."""
    if "detection" in name:
        n, h, w, _ = frames.shape
        top = (w - h) // 2
        images = torch.zeros(n, w, w, 3)
        images[:, top:top + h] = frames
    else:
        x0, y0, x1, y1 = EYE_BOX if name == "iris_landmark" else FACE_BOX
        images = frames[:, y0:y1, x0:x1]
    lo, hi = MODELS[name][1]
    return _resize(images, size) * (hi - lo) + lo


def _inputs(name: str, frames: torch.Tensor, size: int) -> torch.Tensor:
    """Four real crops and two uniform-noise images in the model's value range."""
    lo, hi = MODELS[name][1]
    noise = torch.rand(2, size, size, 3, generator=torch.Generator().manual_seed(0)) * (hi - lo) + lo
    return torch.cat([_real_inputs(name, frames, size), noise])


def _reference(interpreter_class, model: bytes, x: torch.Tensor) -> dict[str, np.ndarray]:
    """The reference interpreter's outputs by name, one image at a time, stacked on the batch axis."""
    interpreter = interpreter_class(model_content=model)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    outputs = {d["name"]: [] for d in interpreter.get_output_details()}
    for image in x.numpy():
        interpreter.set_tensor(index, image[None])
        interpreter.invoke()
        for d in interpreter.get_output_details():
            outputs[d["name"]].append(interpreter.get_tensor(d["index"]))
    return {k: np.concatenate(v) for k, v in outputs.items()}


def _compare(graph: TfliteGraph, reference: dict[str, np.ndarray], x: torch.Tensor) -> dict[str, float]:
    """Relative max |difference| per output (torch on the whole batch at once vs the reference one by one)."""
    with torch.inference_mode():
        out = graph(x)
    errors = {}
    for key, ref in reference.items():
        got = out[key].numpy()
        assert got.shape == ref.shape, f"{key}: torch {got.shape}, TFLite {ref.shape}"
        errors[key] = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-6))
    return errors


def _cut_before_custom_ops(model: bytes, outputs: list[int]) -> bytes:
    """A copy of the flatbuffer whose subgraph outputs are `outputs`, with only the operators they depend on.

    Rewrites the subgraph's operator vector in place (the kept operators first, the vector shortened) and its output
    vector; every table keeps its position, so the flatbuffer stays valid.
    """
    import tflite

    data = bytearray(model)
    graph = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    ops = [graph.Operators(k) for k in range(graph.OperatorsLength())]
    producer = {int(t): k for k, op in enumerate(ops) for t in op.OutputsAsNumpy()}
    needed, stack = set(), list(outputs)
    while stack:
        k = producer.get(stack.pop())
        if k is not None and k not in needed:
            needed.add(k)
            stack.extend(int(t) for t in ops[k].InputsAsNumpy() if t >= 0)
    kept = sorted(needed)
    table = graph._tab
    op_vector = table.Vector(table.Offset(10))  # Subgraph.operators
    targets = [table.Indirect(op_vector + 4 * k) for k in kept]
    struct.pack_into("<I", data, op_vector - 4, len(kept))
    for slot, target in enumerate(targets):
        struct.pack_into("<I", data, op_vector + 4 * slot, target - (op_vector + 4 * slot))
    out_vector = table.Vector(table.Offset(8))  # Subgraph.outputs
    struct.pack_into("<I", data, out_vector - 4, len(outputs))
    for slot, tensor in enumerate(outputs):
        struct.pack_into("<i", data, out_vector + 4 * slot, tensor)
    return bytes(data)


def test_every_model_converted():
    """The package folder holds all nine converted models, with LICENSE and NOTICE naming each source's sha256."""
    assert available_models() == sorted(MODELS)
    notice = (MODEL_DIR / "NOTICE").read_text()
    for name in MODELS:
        sha = json.loads((MODEL_DIR / f"{name}.json").read_text())["sha256"]
        assert sha in notice and MODELS[name][0] in notice
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text()


def _converter():
    """scripts/convert_mediapipe.py as a module."""
    spec = importlib.util.spec_from_file_location("convert_mediapipe", MODEL_DIR.parents[2] / "scripts/convert_mediapipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conversion_reproduces_the_committed_files(tmp_path):
    """Converting the wheel's .tflite files again gives the committed JSON and safetensors, byte for byte."""
    pytest.importorskip("tflite")
    _source("face_detection_short_range")
    assert _converter().main(["--out", str(tmp_path)]) == 0
    for name in MODELS:
        for ext in ("json", "safetensors"):
            assert (tmp_path / f"{name}.{ext}").read_bytes() == (MODEL_DIR / f"{name}.{ext}").read_bytes(), f"{name}.{ext}"


def test_densify_block_sparse_and_column_major():
    """DENSIFY formats the full-range detector does not use (its weights are row-major CSR in the last axis only)."""
    densify = _converter().densify
    # 4x4 in 2x2 blocks, block rows dense, block columns CSR (blocks (0, 0) and (1, 1) stored), each block dense.
    expected = np.array([[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 0, 0], [0, 0, 5, 6]], dtype=np.float16)
    levels = [{"format": "DENSE", "dense_size": 2}, {"format": "SPARSE_CSR", "segments": [0, 1, 2], "indices": [0, 1]},
              {"format": "DENSE", "dense_size": 2}, {"format": "DENSE", "dense_size": 2}]
    values = np.array([1, 2, 3, 4, 0, 0, 5, 6], dtype=np.float16)
    assert np.array_equal(densify(values, [4, 4], [0, 1, 2, 3], [0, 1], levels), expected)
    # The same 4x4 by columns (traversal order 1, 0): columns dense, rows CSR.
    levels = [{"format": "DENSE", "dense_size": 4},
              {"format": "SPARSE_CSR", "segments": [0, 2, 4, 5, 6], "indices": [0, 1, 0, 1, 3, 3]}]
    values = np.array([1, 3, 2, 4, 5, 6], dtype=np.float16)
    assert np.array_equal(densify(values, [4, 4], [1, 0], [], levels), expected)
    with pytest.raises(ValueError, match="visits 6 values, the buffer holds 5"):
        densify(values[:5], [4, 4], [1, 0], [], levels)


@pytest.mark.parametrize("name", PLAIN)
def test_matches_tflite(name, interpreter_class, demo_frames):
    """Every output equals TFLite's within 1e-4 of its range, on 4 face crops and 2 noise images run as one batch."""
    graph = TfliteGraph.load(name).eval()
    x = _inputs(name, demo_frames, graph.input_shape[1])
    errors = _compare(graph, _reference(interpreter_class, _source(name).read_bytes(), x), x)
    assert sorted(errors) == sorted(graph.output_names)
    worst = max(errors.values())
    assert worst < REL_TOL, f"{name}: relative max |torch - TFLite| per output {errors}"


def test_attention_mesh_trunk_matches_tflite(interpreter_class, demo_frames):
    """The attention mesh's 468-point mesh and face flag (no custom op on their path) equal TFLite's."""
    name = "face_landmark_with_attention"
    graph_json = json.loads((MODEL_DIR / f"{name}.json").read_text())
    by_name = {t["name"]: i for i, t in enumerate(graph_json["tensors"])}
    keep = [by_name["output_mesh"], by_name["conv_faceflag"]]
    # The same cut on the torch side: the graph with those outputs, built from the committed files.
    from safetensors.torch import load_file

    graph_json["outputs"] = keep
    kept_ops = []
    needed = set(keep)
    for op in reversed(graph_json["operators"]):
        if needed & set(op["outputs"]):
            kept_ops.append(op)
            needed |= {i for i in op["inputs"] if i >= 0}
    assert not any(op["op"] == "CUSTOM" for op in kept_ops)
    graph_json["operators"] = kept_ops[::-1]
    graph = TfliteGraph(graph_json, load_file(str(MODEL_DIR / f"{name}.safetensors")), name=name).eval()
    x = _inputs(name, demo_frames, 192)
    reference = _reference(interpreter_class, _cut_before_custom_ops(_source(name).read_bytes(), keep), x)
    errors = _compare(graph, reference, x)
    assert set(errors) == {"output_mesh", "conv_faceflag"}
    assert max(errors.values()) < REL_TOL, errors
    # The real crops are faces: the face-flag logit is high there (sigmoid > 0.9), not on noise.
    with torch.inference_mode():
        flag = torch.sigmoid(graph(x)["conv_faceflag"].reshape(-1))
    assert (flag[:4] > 0.9).all() and (flag[4:] < 0.5).all(), flag


def test_attention_mesh_runs_with_custom_ops(demo_frames):
    """With fexa.face.mediapipe_ops present, the full attention mesh runs batched and gives every output per image."""
    pytest.importorskip("fexa.face.mediapipe_ops")
    graph = TfliteGraph.load("face_landmark_with_attention").eval()
    x = _real_inputs("face_landmark_with_attention", demo_frames, 192)
    with torch.inference_mode():
        out = graph(x)
    shapes = {"output_mesh_identity": 1404, "output_lips": 160, "output_left_eye": 142, "output_right_eye": 142,
              "output_left_iris": 10, "output_right_iris": 10, "conv_faceflag": 1}
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (4, 1, 1, n) for k, n in shapes.items()}
    assert all(torch.isfinite(v).all() for v in out.values())


def test_missing_custom_ops_fail_at_load(monkeypatch):
    """A graph with custom ops refuses to load, naming them, when fexa.face.mediapipe_ops lacks one."""
    module = types.ModuleType("fexa.face.mediapipe_ops")
    module.CUSTOM_OPS = {}
    monkeypatch.setitem(sys.modules, "fexa.face.mediapipe_ops", module)
    with pytest.raises(ValueError, match="Landmarks2TransformMatrix"):
        TfliteGraph.load("face_landmark_with_attention")


@pytest.mark.parametrize("name", ["face_detection_full_range_sparse", "palm_detection_lite", "hand_landmark_lite"])
def test_batch_equals_single_runs(name, demo_frames):
    """A batch of 4 gives the same outputs as the 4 images run one by one."""
    graph = TfliteGraph.load(name).eval()
    x = _real_inputs(name, demo_frames, graph.input_shape[1])
    with torch.inference_mode():
        batch = graph(x)
        singles = [graph(x[i:i + 1]) for i in range(len(x))]
    for key, value in batch.items():
        single = torch.cat([s[key] for s in singles])
        scale = value.abs().max().item()
        assert torch.allclose(value, single, rtol=0, atol=1e-5 * scale), f"{key}: {(value - single).abs().max()}"


@pytest.mark.parametrize("name", ["face_landmark_with_attention", "face_detection_short_range", "hand_landmark_full"])
def test_traced_graph_gives_the_graphs_outputs_bit_for_bit(name, demo_frames):
    """TracedGraph (the CPU path of the face and hand models) equals the graph exactly on real inputs, for
    batches of 1, 3 and 1 again (one trace per batch size, each reused); above max_batch the graph itself runs.
    The attention mesh has custom ops, whose Python a trace must not have baked in for one shape."""
    graph = TfliteGraph.load(name).eval()
    traced = TracedGraph(graph, max_batch=3)
    x = _real_inputs(name, demo_frames, graph.input_shape[1])
    with torch.inference_mode():
        for batch in (x[:1], x[1:4], x[3:4], x):
            ours, theirs = traced(batch), graph(batch)
            assert ours.keys() == theirs.keys()
            assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    assert sorted(traced._traces) == [(1, *graph.input_shape[1:]), (3, *graph.input_shape[1:])]
    with pytest.raises(ValueError, match="x: dtype torch.float64"):
        traced(x.double())


def test_input_validation():
    """A wrong shape or dtype, or an unknown model name, is refused with a message naming it."""
    graph = TfliteGraph.load("face_detection_short_range")
    with pytest.raises(ValueError, match=r"x: shape \(1, 64, 64, 3\), expected \[B, 128, 128, 3\]"):
        graph(torch.zeros(1, 64, 64, 3))
    with pytest.raises(ValueError, match="x: dtype torch.float64"):
        graph(torch.zeros(1, 128, 128, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="name='nope'"):
        TfliteGraph.load("nope")


# ---- single operators whose options the mediapipe models do not use (hand-computed or torch-known expectations) ----


def _one_op_graph(op: str, in_shape: list[int], out_shape: list[int], options: dict,
                  constants: dict[int, torch.Tensor] | None = None) -> TfliteGraph:
    """A graph of one operator: tensor 0 in, tensor 1 out, constants as tensors 2, 3, ..."""
    constants = constants or {}
    tensors = [{"name": "x", "shape": in_shape, "dtype": "float32"}, {"name": "y", "shape": out_shape, "dtype": "float32"}]
    for i in sorted(constants):
        dtype = {torch.float32: "float32", torch.int32: "int32"}[constants[i].dtype]
        tensors.append({"name": f"c{i}", "shape": list(constants[i].shape), "dtype": dtype, "constant": True})
    graph = {"format": "fexa-tflite-graph/1", "inputs": [0], "outputs": [1], "tensors": tensors, "folded": [],
             "operators": [{"op": op, "inputs": [0, *sorted(constants)], "outputs": [1], "options": options}]}
    return TfliteGraph(graph, {str(i): t for i, t in constants.items()}, name=op)


def test_same_padding_puts_the_odd_pixel_after():
    """TFLite SAME: total padding split with the extra pixel at the end (at the start in none of these cases)."""
    assert same_padding(128, 3, 2, 1) == (0, 1)
    assert same_padding(127, 3, 2, 1) == (1, 1)
    assert same_padding(8, 2, 2, 1) == (0, 0)
    assert same_padding(7, 2, 2, 1) == (0, 1)
    assert same_padding(10, 5, 1, 1) == (2, 2)
    assert same_padding(10, 3, 1, 2) == (2, 2)
    assert same_padding(10, 4, 1, 1) == (1, 2)


def test_depth_to_space_uses_tflite_channel_order():
    """Output pixel (h*2+i, w*2+j), channel c = input channel (i*2+j)*C + c (not pixel_shuffle's c*4 + i*2 + j)."""
    x = torch.arange(1 * 2 * 3 * 8, dtype=torch.float32).reshape(1, 2, 3, 8)
    y = _one_op_graph("DEPTH_TO_SPACE", [1, 2, 3, 8], [1, 4, 6, 2], {"block_size": 2})(x)["y"]
    for h in range(2):
        for w in range(3):
            for i in range(2):
                for j in range(2):
                    for c in range(2):
                        assert y[0, h * 2 + i, w * 2 + j, c] == x[0, h, w, (i * 2 + j) * 2 + c]
    torch_order = F.pixel_shuffle(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    assert not torch.equal(y, torch_order)


@pytest.mark.parametrize("align_corners,half_pixel", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("size", [(9, 14), (3, 2)])
def test_resize_bilinear_flags(align_corners, half_pixel, size):
    """align_corners and half_pixel_centers as torch's two modes; neither: TFLite's legacy src = dst * in / out."""
    x = torch.randn(2, 5, 7, 3, generator=torch.Generator().manual_seed(1))
    size_t = torch.tensor(size, dtype=torch.int32)
    graph = _one_op_graph("RESIZE_BILINEAR", [1, 5, 7, 3], [1, *size, 3],
                          {"align_corners": align_corners, "half_pixel_centers": half_pixel}, {2: size_t})
    y = graph(x)["y"]
    if align_corners or half_pixel:
        expected = F.interpolate(x.permute(0, 3, 1, 2), size=size, mode="bilinear",
                                 align_corners=align_corners).permute(0, 2, 3, 1)
    else:
        expected = torch.empty(2, *size, 3)
        for oy in range(size[0]):
            for ox in range(size[1]):
                sy, sx = oy * 5 / size[0], ox * 7 / size[1]
                y0, x0 = int(sy), int(sx)
                y1, x1 = min(y0 + 1, 4), min(x0 + 1, 6)
                dy, dx = sy - y0, sx - x0
                expected[:, oy, ox] = (x[:, y0, x0] * (1 - dy) * (1 - dx) + x[:, y1, x0] * dy * (1 - dx)
                                       + x[:, y0, x1] * (1 - dy) * dx + x[:, y1, x1] * dy * dx)
    assert torch.allclose(y, expected, atol=1e-5)


def test_strided_slice_masks():
    """begin / end masks take the whole axis, shrink_axis drops it, strides step; the batch is kept."""
    x = torch.arange(3 * 4 * 5 * 6, dtype=torch.float32).reshape(3, 4, 5, 6)
    begin, end, strides = (torch.tensor(v, dtype=torch.int32) for v in ([0, 1, 2, 1], [1, 3, 0, 6], [1, 1, 1, 2]))
    options = {"begin_mask": 0b0100, "end_mask": 0b0100, "ellipsis_mask": 0, "new_axis_mask": 0,
               "shrink_axis_mask": 0, "offset": False}
    graph = _one_op_graph("STRIDED_SLICE", [1, 4, 5, 6], [1, 2, 5, 3], options, {2: begin, 3: end, 4: strides})
    assert torch.equal(graph(x)["y"], x[:, 1:3, :, 1:6:2])
    options["shrink_axis_mask"] = 0b0010
    graph = _one_op_graph("STRIDED_SLICE", [1, 4, 5, 6], [1, 5, 3], options, {2: begin, 3: end, 4: strides})
    assert torch.equal(graph(x)["y"], x[:, 1, :, 1:6:2])


def test_conv_dilation_depth_multiplier_and_same_padding():
    """DEPTHWISE_CONV_2D with depth multiplier 2, dilation 2 and SAME padding equals a direct sum over the window."""
    x = torch.randn(2, 6, 7, 3, generator=torch.Generator().manual_seed(2))
    w = torch.randn(1, 3, 3, 6, generator=torch.Generator().manual_seed(3))
    b = torch.randn(6, generator=torch.Generator().manual_seed(4))
    options = {"padding": "SAME", "stride_h": 2, "stride_w": 1, "dilation_hfactor": 2, "dilation_wfactor": 2,
               "depth_multiplier": 2, "fused_activation_function": "RELU6"}
    graph = _one_op_graph("DEPTHWISE_CONV_2D", [1, 6, 7, 3], [1, 3, 7, 6], options, {2: w, 3: b})
    y = graph(x)["y"]
    top, _ = same_padding(6, 3, 2, 2)
    left, _ = same_padding(7, 3, 1, 2)
    expected = torch.zeros(2, 3, 7, 6)
    for oy in range(3):
        for ox in range(7):
            for ky in range(3):
                for kx in range(3):
                    iy, ix = oy * 2 + ky * 2 - top, ox + kx * 2 - left
                    if 0 <= iy < 6 and 0 <= ix < 7:
                        for c in range(3):
                            for m in range(2):
                                expected[:, oy, ox, c * 2 + m] += x[:, iy, ix, c] * w[0, ky, kx, c * 2 + m]
    expected = (expected + b).clamp(0, 6)
    assert torch.allclose(y, expected, atol=1e-5)


def test_max_pool_same_pads_with_minus_infinity():
    """MAX_POOL_2D SAME on odd sizes: the padded cell (after) never wins, even where every value is negative."""
    x = -1.0 - torch.rand(1, 5, 5, 2, generator=torch.Generator().manual_seed(5))
    options = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "filter_height": 2, "filter_width": 2,
               "fused_activation_function": "NONE"}
    y = _one_op_graph("MAX_POOL_2D", [1, 5, 5, 2], [1, 3, 3, 2], options)(x)["y"]
    assert torch.equal(y[0, 2, 2], x[0, 4, 4])
    assert torch.equal(y[0, 0, 0], x[0, :2, :2].amax(dim=(0, 1)))


def test_to_device_moves_every_constant():
    """.to() moves the weights with the module: all buffers follow (checked on the meta device, no GPU needed)."""
    graph = TfliteGraph.load("hand_landmark_lite").to("meta")
    assert {b.device.type for b in graph.buffers()} == {"meta"}
    out = graph(torch.zeros(2, 224, 224, 3, device="meta"))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"Identity": (2, 63), "Identity_1": (2, 1),
                                                           "Identity_2": (2, 1), "Identity_3": (2, 63)}
