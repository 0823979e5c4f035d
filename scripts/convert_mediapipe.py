"""Convert mediapipe's .tflite face, iris, palm and hand models into fexa's graph files (JSON + safetensors).

Reads each model with the pure-python `tflite` flatbuffer schema (a conversion-time dependency only) and writes
`fexa/face/mediapipe/<name>.json` (tensors, operators in order, decoded options) and `<name>.safetensors` (the
constant tensors by tensor index, in their original dtype: fp16 stays fp16). DENSIFY of a constant is resolved
here (the dense tensor is stored) and DEQUANTIZE of a constant is folded into the JSON's `folded` list, so that the
runtime (`fexa.face.tflite_graph`) only casts. Also writes LICENSE (Apache-2.0, from the wheel) and NOTICE (origin,
file names, sha256 of each source file).

Usage: python scripts/convert_mediapipe.py [--src MEDIAPIPE_MODULES_DIR] [--out fexa/face/mediapipe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

MODELS = (
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "face_landmark/face_landmark_with_attention.tflite",
    "face_landmark/face_landmark.tflite",
    "iris_landmark/iris_landmark.tflite",
    "palm_detection/palm_detection_full.tflite",
    "palm_detection/palm_detection_lite.tflite",
    "hand_landmark/hand_landmark_full.tflite",
    "hand_landmark/hand_landmark_lite.tflite",
)
MEDIAPIPE_VERSION = "0.10.21"
FORMAT = "fexa-tflite-graph/1"
# TFLite TensorType enum -> numpy dtype (only the types these models use or could plausibly use).
TENSOR_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8"}
# Option fields whose integer values are enums, shown by name in the JSON.
ENUM_FIELDS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType"}


def _enum_names(tflite_module, enum_class: str) -> dict[int, str]:
    """Value -> name of a generated flatbuffer enum class."""
    cls = getattr(tflite_module, enum_class)
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def _snake(name: str) -> str:
    """CamelCase -> snake_case (flatbuffer accessor names -> schema field names)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _table_fields(obj, tflite_module) -> dict:
    """Every scalar and vector field of a generated flatbuffer options table, as a JSON-ready dict."""
    methods = [m for m in dir(obj) if not m.startswith("_") and callable(getattr(obj, m))]
    skip_suffixes = ("AsNumpy", "IsNone", "Length", "BufferHasIdentifier")
    fields = {}
    for m in methods:
        if m.startswith(("GetRootAs", "Init")) or m.endswith(skip_suffixes):
            continue
        key = _snake(m)
        if m + "AsNumpy" in methods:
            value = getattr(obj, m + "AsNumpy")()
            fields[key] = [] if isinstance(value, int) else np.asarray(value).tolist()
            continue
        value = getattr(obj, m)()
        if isinstance(value, (bool, np.bool_)):
            value = bool(value)
        elif isinstance(value, (int, np.integer)):
            value = int(value)
            if key in ENUM_FIELDS:
                value = _enum_names(tflite_module, ENUM_FIELDS[key])[value]
        elif isinstance(value, (float, np.floating)):
            value = float(value)
        else:
            raise ValueError(f"option field {m!r} of {type(obj).__name__} has unsupported type {type(value).__name__}")
        fields[key] = value
    return fields


def _builtin_options(op, tflite_module) -> dict:
    """The operator's builtin options decoded to a dict (empty when it has none)."""
    kind = op.BuiltinOptionsType()
    if kind == 0:
        return {}
    class_name = _enum_names(tflite_module, "BuiltinOptions")[kind]
    table = op.BuiltinOptions()
    options = getattr(tflite_module, class_name)()
    options.Init(table.Bytes, table.Pos)
    return _table_fields(options, tflite_module)


def _custom_options(op) -> dict:
    """The operator's flexbuffer custom options decoded to a dict (empty when it has none)."""
    if op.CustomOptionsIsNone() or op.CustomOptionsLength() == 0:
        return {}
    from flatbuffers import flexbuffers

    decoded = flexbuffers.Loads(bytes(op.CustomOptionsAsNumpy()))
    if not isinstance(decoded, dict):
        raise ValueError(f"custom options decode to {type(decoded).__name__}, expected a map")
    return decoded


def _int_vector(union_type: int, table, tflite_module) -> np.ndarray:
    """An Int32Vector / Uint16Vector / Uint8Vector union member (sparsity segments or indices) as int64."""
    class_name = _enum_names(tflite_module, "SparseIndexVector")[union_type]
    vec = getattr(tflite_module, class_name)()
    vec.Init(table.Bytes, table.Pos)
    return np.asarray(vec.ValuesAsNumpy(), dtype=np.int64)


def sparsity_levels(sparsity, tflite_module) -> tuple[list[int], list[int], list[dict]]:
    """A tensor's SparsityParameters as plain data: traversal order, block map, and per level its format and arrays."""
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()]
    block_map = [] if sparsity.BlockMapIsNone() else [int(v) for v in sparsity.BlockMapAsNumpy()]
    levels = []
    for level in range(sparsity.DimMetadataLength()):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:  # DimensionType.DENSE
            levels.append({"format": "DENSE", "dense_size": int(meta.DenseSize())})
        else:  # DimensionType.SPARSE_CSR
            levels.append({"format": "SPARSE_CSR",
                           "segments": _int_vector(meta.ArraySegmentsType(), meta.ArraySegments(), tflite_module),
                           "indices": _int_vector(meta.ArrayIndicesType(), meta.ArrayIndices(), tflite_module)})
    return order, block_map, levels


def densify(values: np.ndarray, shape: list[int], order: list[int], block_map: list[int], levels: list[dict]) -> np.ndarray:
    """Resolve TFLite's sparse tensor format (traversal order, block map, DENSE / SPARSE_CSR levels) to a dense array.

    Level i walks dimension order[i] (0..rank-1: an original dimension, its block index where it is blocked;
    rank + k: the index inside the block of original dimension block_map[k]). The stored values are the leaves of the
    walk, in order: a DENSE level visits 0..dense_size-1 (child position = parent position * dense_size + i); a
    SPARSE_CSR level visits indices[segments[p]:segments[p+1]] of its parent position p (child position = the
    position in `indices`).
    """
    rank = len(shape)
    if len(levels) != rank + len(block_map) or sorted(order) != list(range(len(levels))):
        raise ValueError(f"sparsity: traversal order {order} does not fit rank {rank} with block map {block_map}")
    # Walk level by level, vectorised: one row per partial path (its index at each level so far).
    level_index = np.zeros((1, 0), dtype=np.int64)
    position = np.zeros(1, dtype=np.int64)
    block_sizes = {}
    for level, meta in enumerate(levels):
        if meta["format"] == "DENSE":
            size = meta["dense_size"]
            child = np.arange(size, dtype=np.int64)
            level_index = np.concatenate(
                [np.repeat(level_index, size, axis=0), np.tile(child, len(position))[:, None]], axis=1
            )
            position = (position[:, None] * size + child[None, :]).reshape(-1)
        elif meta["format"] == "SPARSE_CSR":
            segments, indices = np.asarray(meta["segments"], np.int64), np.asarray(meta["indices"], np.int64)
            starts, stops = segments[position], segments[position + 1]
            counts = stops - starts
            offsets = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
            child_pos = np.repeat(starts, counts) + offsets
            level_index = np.concatenate([np.repeat(level_index, counts, axis=0), indices[child_pos][:, None]], axis=1)
            position = child_pos
        else:
            raise ValueError(f"sparsity: level {level} has unknown format {meta['format']!r}")
        if order[level] >= rank:
            if meta["format"] != "DENSE":
                raise ValueError(f"sparsity: block level {level} is not DENSE")
            block_sizes[order[level]] = meta["dense_size"]
    if len(position) != values.size:
        raise ValueError(f"sparsity: the walk visits {len(position)} values, the buffer holds {values.size}")
    # Index of each value per level dimension, then in the dense tensor.
    by_dim = np.empty_like(level_index)
    by_dim[:, order] = level_index
    original = by_dim[:, :rank].copy()
    for k, dim in enumerate(block_map):
        original[:, dim] = original[:, dim] * block_sizes[rank + k] + by_dim[:, rank + k]
    if np.any(original >= np.asarray(shape)) or np.any(original < 0):
        raise ValueError(f"sparsity: an index falls outside the dense shape {shape}")
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(original.T)] = values.reshape(-1)
    return dense


def _tensor_entry(tensor) -> dict:
    """JSON description of one tensor: name, shape, dtype."""
    dtype = TENSOR_DTYPES.get(tensor.Type())
    if dtype is None:
        raise ValueError(f"tensor {tensor.Name().decode()!r} has unsupported TFLite type {tensor.Type()}")
    return {"name": tensor.Name().decode(), "shape": [int(v) for v in tensor.ShapeAsNumpy()], "dtype": dtype}


def _buffer_array(model, tensor) -> np.ndarray | None:
    """The tensor's constant data as a numpy array (raw values, before any sparsity), or None for an activation."""
    if tensor.Buffer() == 0:
        return None
    buffer = model.Buffers(tensor.Buffer())
    if buffer.DataIsNone() or buffer.DataLength() == 0:
        return None
    return np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=TENSOR_DTYPES[tensor.Type()]).copy()


def convert_model(data: bytes, source_name: str) -> tuple[dict, dict[str, np.ndarray]]:
    """One .tflite flatbuffer -> (graph dict for the JSON file, constants by tensor index for safetensors)."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"{source_name}: {model.SubgraphsLength()} subgraphs, expected 1")
    graph = model.Subgraphs(0)
    op_names = _enum_names(tflite, "BuiltinOperator")
    tensors = [_tensor_entry(graph.Tensors(i)) for i in range(graph.TensorsLength())]
    constants: dict[int, np.ndarray] = {}
    sparse: dict[int, object] = {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        raw = _buffer_array(model, tensor)
        if raw is None:
            continue
        if tensor.Sparsity() is not None:
            sparse[i] = (raw, tensor.Sparsity())
        else:
            constants[i] = raw.reshape(tensors[i]["shape"])
    operators, folded = [], []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        inputs = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if name == "DENSIFY" and inputs[0] in sparse:
            raw, sparsity = sparse.pop(inputs[0])
            constants[outputs[0]] = densify(raw, tensors[inputs[0]]["shape"], *sparsity_levels(sparsity, tflite))
            folded.append({"op": name, "inputs": inputs, "outputs": outputs,
                           "note": "resolved at conversion: the output is stored dense"})
            continue
        if name == "DEQUANTIZE" and inputs[0] in constants:
            folded.append({"op": name, "inputs": inputs, "outputs": outputs,
                           "note": "constant input: the runtime casts it to the output dtype"})
            continue
        entry = {"op": name, "inputs": inputs, "outputs": outputs}
        if name == "CUSTOM":
            entry["custom_code"] = code.CustomCode().decode()
            entry["options"] = _custom_options(op)
        else:
            entry["options"] = _builtin_options(op, tflite)
        operators.append(entry)
    if sparse:
        raise ValueError(f"{source_name}: sparse tensors {sorted(sparse)} are not the input of a DENSIFY")
    for i in constants:
        tensors[i]["constant"] = True
    graph_dict = {
        "format": FORMAT,
        "source": source_name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "inputs": [int(v) for v in graph.InputsAsNumpy()],
        "outputs": [int(v) for v in graph.OutputsAsNumpy()],
        "tensors": tensors,
        "operators": operators,
        "folded": folded,
    }
    return graph_dict, {str(i): np.ascontiguousarray(a) for i, a in sorted(constants.items())}


def _apache_license(wheel_license: Path) -> str:
    """The Apache-2.0 text of the mediapipe wheel's LICENSE (the part before its notes on third-party files)."""
    text = wheel_license.read_text()
    head = text.split("\n=====")[0].rstrip() + "\n"
    if "Apache License" not in head or "END OF TERMS AND CONDITIONS" not in head:
        raise ValueError(f"{wheel_license}: not the Apache-2.0 license text")
    return head


def _default_src() -> Path:
    """The installed mediapipe wheel's modules folder."""
    import mediapipe

    return Path(mediapipe.__file__).parent / "modules"


def main(argv: list[str] | None = None) -> int:
    """Convert every model in MODELS from --src into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=None, help="mediapipe's modules folder (default: the installed wheel)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fexa/face/mediapipe")
    parser.add_argument("--license", type=Path, default=None, help="Apache-2.0 text (default: the wheel's LICENSE)")
    args = parser.parse_args(argv)
    src = args.src or _default_src()
    if not src.is_dir():
        parser.error(f"--src {src}: not a folder")
    license_path = args.license
    if license_path is None:
        import mediapipe

        license_path = next(Path(mediapipe.__file__).parent.parent.glob("mediapipe-*.dist-info/LICENSE"))
    args.out.mkdir(parents=True, exist_ok=True)
    notice = [
        "fexa/face/mediapipe: graphs and weights converted from Google's MediaPipe models (Apache License 2.0,",
        "see LICENSE in this folder) by scripts/convert_mediapipe.py. Origin: the mediapipe "
        f"{MEDIAPIPE_VERSION} wheel, folder mediapipe/modules/.",
        "Changes: the flatbuffer graph is rewritten as JSON + safetensors; sparse (DENSIFY) weights are stored dense;",
        "DEQUANTIZE of constant fp16 weights is recorded, not executed. Values are unchanged.",
        "",
        "converted file  <-  source file  sha256",
    ]
    total = 0
    for rel in MODELS:
        path = src / rel
        if not path.is_file():
            print(f"error: {path}: model file not found", file=sys.stderr)
            return 1
        data = path.read_bytes()
        graph, constants = convert_model(data, rel)
        name = path.stem
        (args.out / f"{name}.json").write_text(json.dumps(graph, indent=1) + "\n")
        # One metadata key: safetensors writes the metadata map in no fixed order, and the files must be reproducible.
        save_file(constants, str(args.out / f"{name}.safetensors"), metadata={"source": f"{rel} sha256 {graph['sha256']}"})
        size = sum((args.out / f"{name}.{ext}").stat().st_size for ext in ("json", "safetensors"))
        total += size
        notice.append(f"{name}.json/.safetensors  <-  {rel}  {graph['sha256']}")
        print(f"{name}: {len(graph['operators'])} ops, {len(graph['folded'])} folded, {size / 1e6:.2f} MB")
    (args.out / "LICENSE").write_text(_apache_license(license_path))
    (args.out / "NOTICE").write_text("\n".join(notice) + "\n")
    print(f"total {total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
