"""Run a converted mediapipe TFLite graph (fexa/face/mediapipe/<name>.json + .safetensors) as a batched torch module.

The graph is executed op by op with TFLite's float semantics (TFLite's SAME padding puts the odd pixel at the end,
RESIZE_BILINEAR's align_corners / half_pixel_centers, DEPTH_TO_SPACE's channel order, fused activations), on any
device and for any batch size: tensors stay NHWC as in TFLite, with the batch as the first dimension instead of 1.
Files are written by scripts/convert_mediapipe.py; custom ops come from `fexa.face.mediapipe_ops.CUSTOM_OPS`.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MODEL_DIR = Path(__file__).resolve().parent / "mediapipe"
FORMAT = "fexa-tflite-graph/1"

# Fused activations, applied in place: every operator applies one to a tensor it has just made.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "NONE": lambda x: x,
    "RELU": torch.relu_,
    "RELU6": lambda x: x.clamp_(0.0, 6.0),
    "RELU_N1_TO_1": lambda x: x.clamp_(-1.0, 1.0),
    "TANH": torch.tanh_,
}
_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")
_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int32": torch.int32, "int64": torch.int64,
                 "uint8": torch.uint8, "int8": torch.int8}


def available_models(folder: Path = MODEL_DIR) -> list[str]:
    """Names of the converted graphs in `folder` (those with both a .json and a .safetensors file)."""
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".safetensors").is_file())


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding of one spatial axis: (before, after), the odd pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _bilinear_axis(size_in: int, size_out: int, align_corners: bool, half_pixel: bool,
                   device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """TFLite RESIZE_BILINEAR source indices (lower, upper) and weight of the upper one, for one axis."""
    if align_corners and size_out > 1:
        scale = torch.tensor((size_in - 1) / (size_out - 1), dtype=torch.float32)
    else:
        scale = torch.tensor(size_in / size_out, dtype=torch.float32)
    dst = torch.arange(size_out, dtype=torch.float32)
    src = (dst + 0.5) * scale - 0.5 if half_pixel else dst * scale  # float32 arithmetic, as TFLite
    lower = src.floor().clamp(min=0)
    upper = src.ceil().clamp(max=size_in - 1)
    weight = src - lower  # as TFLite: measured from the clamped lower index
    return lower.long().to(device), upper.long().to(device), weight.to(device)


class TfliteGraph(nn.Module):
    """A converted TFLite graph as a torch module: NHWC float32 batch in, output tensors by name out."""

    def __init__(self, graph: dict, constants: dict[str, Tensor], name: str = "graph") -> None:
        super().__init__()
        if graph.get("format") != FORMAT:
            raise ValueError(f"graph {name!r}: format {graph.get('format')!r}, expected {FORMAT!r}")
        if len(graph["inputs"]) != 1:
            raise ValueError(f"graph {name!r}: {len(graph['inputs'])} inputs, expected 1")
        self.name = name
        self.tensors = graph["tensors"]
        self.input_index = graph["inputs"][0]
        self.input_shape = tuple(self.tensors[self.input_index]["shape"])
        self.output_indices = list(graph["outputs"])
        self.output_names = [self.tensors[i]["name"] for i in self.output_indices]
        self._raw = {int(k): v for k, v in constants.items()}
        self._cast = {f["outputs"][0]: f["inputs"][0] for f in graph["folded"] if f["op"] == "DEQUANTIZE"}
        self._buffers_used: set[int] = set()
        self._steps: list[tuple[Callable, list[int], list[int], dict]] = []
        needs_custom = False
        for k, op in enumerate(self._fold_pads(graph["operators"], self.output_indices)):
            prepare = getattr(self, f"_prepare_{op['op'].lower()}", None)
            run = getattr(self, f"_op_{op['op'].lower()}", None)
            if run is None:
                raise ValueError(f"graph {name!r}: operator {k} {op['op']} is not supported")
            params = prepare(k, op) if prepare is not None else {}
            params.setdefault("act", self._activation(k, op))
            self._steps.append((run, op["inputs"], op["outputs"], params))
            needs_custom |= op["op"] == "CUSTOM"
        for i in sorted(self._buffers_used):
            self.register_buffer(f"c{i}", self._constant(i), persistent=False)
        self._custom_ops = self._load_custom_ops(graph) if needs_custom else {}
        del self._raw
        # Last op that reads each activation tensor: it is freed after that op (keeps batch-32 memory low).
        self._last_use: list[list[int]] = [[] for _ in self._steps]
        last: dict[int, int] = {}
        for k, (_, inputs, _, _) in enumerate(self._steps):
            for i in inputs:
                last[i] = k
        for i, k in last.items():
            if i not in self.output_indices:
                self._last_use[k].append(i)

    @classmethod
    def load(cls, name: str, folder: Path | str | None = None) -> "TfliteGraph":
        """Load the converted graph `name` (e.g. "face_detection_short_range") from fexa/face/mediapipe or `folder`."""
        from safetensors.torch import load_file

        folder = MODEL_DIR if folder is None else Path(folder)
        names = available_models(folder)
        if name not in names:
            raise ValueError(f"name={name!r}: no converted graph of that name in {folder} (available: {', '.join(names)})")
        graph = json.loads((folder / f"{name}.json").read_text())
        return cls(graph, load_file(str(folder / f"{name}.safetensors")), name=name)

    # ---- constants ----------------------------------------------------------------------------------------------

    def _is_constant(self, i: int) -> bool:
        """Whether tensor i is a constant (stored, or a folded DEQUANTIZE of a stored one)."""
        return i in self._raw or i in self._cast

    def _constant(self, i: int) -> Tensor:
        """Constant tensor i as stored, a folded DEQUANTIZE output cast to its dtype (fp16 -> fp32)."""
        if i in self._cast:
            return self._raw[self._cast[i]].to(_TORCH_DTYPES[self.tensors[i]["dtype"]])
        if i not in self._raw:
            raise ValueError(f"graph {self.name!r}: tensor {i} ({self.tensors[i]['name']!r}) is not a constant")
        return self._raw[i]

    def _int_list(self, i: int) -> list:
        """An int32 constant (shapes, paddings, axes) as a nested python list."""
        return self._constant(i).tolist()

    def _use_buffer(self, i: int) -> None:
        """Mark constant tensor i as read at run time (registered as a buffer, moved by .to(device))."""
        self._constant(i)
        self._buffers_used.add(i)

    def _activation(self, k: int, op: dict) -> Callable[[Tensor], Tensor]:
        """The operator's fused activation function."""
        name = op["options"].get("fused_activation_function", "NONE")
        if name not in ACTIVATIONS:
            raise ValueError(f"graph {self.name!r}: operator {k} {op['op']} has unsupported fused activation {name}")
        return ACTIVATIONS[name]

    def _check_batch_first(self, k: int, op: dict, shape: list[int], what: str) -> None:
        """Refuse an operator whose tensor does not keep the batch as its first dimension of size 1."""
        if not shape or shape[0] not in (1, -1):
            raise ValueError(f"graph {self.name!r}: operator {k} {op['op']}: {what} {shape} has no batch dimension first")

    # ---- preparation (load time) ----------------------------------------------------------------------------------

    def _fold_pads(self, operators: list[dict], outputs: list[int]) -> list[dict]:
        """Fold a spatial zero PAD whose only reader is a conv into that conv's padding (same values, one copy less)."""
        readers: dict[int, int] = {}
        for op in operators:
            for i in op["inputs"]:
                readers[i] = readers.get(i, 0) + 1
        pads = {}
        for op in operators:
            if op["op"] == "PAD" and op["outputs"][0] not in outputs and readers.get(op["outputs"][0]) == 1:
                paddings = self._int_list(op["inputs"][1])
                if len(paddings) == 4 and paddings[0] == [0, 0] and paddings[3] == [0, 0]:
                    pads[op["outputs"][0]] = (op["inputs"][0], paddings[1:3])
        folded, removed = [], set()
        for op in operators:
            if op["op"] in _CONVS and op["inputs"][0] in pads:
                source, pre_pad = pads[op["inputs"][0]]
                removed.add(op["inputs"][0])
                op = dict(op, inputs=[source, *op["inputs"][1:]], pre_pad=pre_pad,
                          padded_shape=self.tensors[op["inputs"][0]]["shape"])
            folded.append(op)
        return [op for op in folded if not (op["op"] == "PAD" and op["outputs"][0] in removed)]

    def _conv_params(self, k: int, op: dict, kernel: tuple[int, int], in_shape: list[int]) -> dict:
        """Stride, dilation and (before, after) padding per spatial axis for a conv or pool operator."""
        o = op["options"]
        stride = (o["stride_h"], o["stride_w"])
        dilation = (o.get("dilation_hfactor", 1), o.get("dilation_wfactor", 1))
        if o["padding"] == "VALID":
            pads = ((0, 0), (0, 0))
        elif o["padding"] == "SAME":
            pads = tuple(same_padding(in_shape[1 + a], kernel[a], stride[a], dilation[a]) for a in range(2))
        else:
            raise ValueError(f"graph {self.name!r}: operator {k} {op['op']} has unsupported padding {o['padding']}")
        pre = op.get("pre_pad", ((0, 0), (0, 0)))  # a folded PAD before the conv
        pads = tuple((pre[a][0] + pads[a][0], pre[a][1] + pads[a][1]) for a in range(2))
        return {"stride": stride, "dilation": dilation, "pads": pads}

    def _register_weight(self, k: int, weight: Tensor) -> str:
        """Register an operator's weight (already in torch layout) as a buffer; returns its name."""
        buffer_name = f"w{k}"
        weight = weight.contiguous(memory_format=torch.channels_last) if weight.dim() == 4 else weight.contiguous()
        self.register_buffer(buffer_name, weight, persistent=False)
        return buffer_name

    def _prepare_conv_2d(self, k: int, op: dict) -> dict:
        """CONV_2D: OHWI weight -> OIHW (groups from the input channels, for grouped convs)."""
        x_shape = op.get("padded_shape", self.tensors[op["inputs"][0]]["shape"])
        weight = self._constant(op["inputs"][1])
        params = self._conv_params(k, op, tuple(weight.shape[1:3]), x_shape)
        params["groups"] = x_shape[3] // weight.shape[3]
        params["weight"] = self._register_weight(k, weight.permute(0, 3, 1, 2))
        params["bias"] = self._bias(op)
        return params

    def _prepare_depthwise_conv_2d(self, k: int, op: dict) -> dict:
        """DEPTHWISE_CONV_2D: [1, H, W, C*M] weight -> [C*M, 1, H, W] with groups C (output channel c*M + m)."""
        x_shape = op.get("padded_shape", self.tensors[op["inputs"][0]]["shape"])
        weight = self._constant(op["inputs"][1])
        if weight.shape[3] % x_shape[3]:
            raise ValueError(f"graph {self.name!r}: operator {k}: {weight.shape[3]} depthwise outputs "
                             f"for {x_shape[3]} inputs")
        params = self._conv_params(k, op, tuple(weight.shape[1:3]), x_shape)
        params["groups"] = x_shape[3]
        params["weight"] = self._register_weight(k, weight[0].permute(2, 0, 1).unsqueeze(1))
        params["bias"] = self._bias(op)
        return params

    def _bias(self, op: dict) -> int | None:
        """Index of the operator's bias constant (registered), or None when it has none."""
        if len(op["inputs"]) < 3 or op["inputs"][2] < 0:
            return None
        self._use_buffer(op["inputs"][2])
        return op["inputs"][2]

    def _prepare_max_pool_2d(self, k: int, op: dict) -> dict:
        """MAX_POOL_2D: window and padding (padded cells never win: they are -inf)."""
        o = op["options"]
        kernel = (o["filter_height"], o["filter_width"])
        params = self._conv_params(k, op, kernel, self.tensors[op["inputs"][0]]["shape"])
        params["kernel"] = kernel
        return params

    def _prepare_fully_connected(self, k: int, op: dict) -> dict:
        """FULLY_CONNECTED: [out, in] weight; without keep_num_dims each batch item must be one row."""
        weight = self._constant(op["inputs"][1])
        x_shape = self.tensors[op["inputs"][0]]["shape"]
        keep = op["options"].get("keep_num_dims", False)
        if not keep and math.prod(x_shape[1:]) != weight.shape[1]:
            raise ValueError(f"graph {self.name!r}: operator {k}: input {x_shape} is not one row of {weight.shape[1]} "
                             "per batch item")
        return {"weight": self._register_weight(k, weight), "bias": self._bias(op), "keep": keep}

    def _prepare_binary(self, k: int, op: dict) -> dict:
        """ADD / MUL: register constant operands."""
        for i in op["inputs"]:
            if self._is_constant(i):
                self._use_buffer(i)
        return {}

    _prepare_add = _prepare_binary
    _prepare_mul = _prepare_binary

    def _prepare_prelu(self, k: int, op: dict) -> dict:
        """PRELU: a per-channel alpha becomes F.prelu's weight (one fused kernel); any other shape broadcasts."""
        alpha = self._constant(op["inputs"][1])
        channels = self.tensors[op["inputs"][0]]["shape"][-1]
        if alpha.numel() == channels and alpha.shape[-1] == channels:
            return {"weight": self._register_weight(k, alpha.reshape(channels))}
        self._use_buffer(op["inputs"][1])
        return {"weight": None}

    def _prepare_pad(self, k: int, op: dict) -> dict:
        """PAD: the [rank, 2] paddings as F.pad's list (last axis first); the batch axis is never padded."""
        paddings = self._int_list(op["inputs"][1])
        if paddings[0] != [0, 0]:
            raise ValueError(f"graph {self.name!r}: operator {k} PAD pads the batch axis: {paddings}")
        return {"pad": [p for pair in reversed(paddings[1:]) for p in pair]}

    def _prepare_resize_bilinear(self, k: int, op: dict) -> dict:
        """RESIZE_BILINEAR: output size and the flags."""
        o = op["options"]
        return {"size": self._int_list(op["inputs"][1]), "align_corners": bool(o.get("align_corners", False)),
                "half_pixel": bool(o.get("half_pixel_centers", False))}

    def _prepare_depth_to_space(self, k: int, op: dict) -> dict:
        """DEPTH_TO_SPACE: block size."""
        return {"block": op["options"]["block_size"]}

    def _prepare_reshape(self, k: int, op: dict) -> dict:
        """RESHAPE: target shape (options or the shape input) with the batch kept as the first dimension."""
        if len(op["inputs"]) > 1 and op["inputs"][1] >= 0:
            shape = self._int_list(op["inputs"][1])
        else:
            shape = op["options"]["new_shape"]
        self._check_batch_first(k, op, self.tensors[op["inputs"][0]]["shape"], "input shape")
        self._check_batch_first(k, op, shape, "target shape")
        return {"shape": list(shape[1:])}

    def _prepare_concatenation(self, k: int, op: dict) -> dict:
        """CONCATENATION: the axis (normalised; never the batch axis)."""
        rank = len(self.tensors[op["outputs"][0]]["shape"])
        axis = op["options"]["axis"] % rank
        if axis == 0:
            raise ValueError(f"graph {self.name!r}: operator {k} concatenates along the batch axis")
        return {"axis": axis}

    def _prepare_mean(self, k: int, op: dict) -> dict:
        """MEAN: reduced axes (normalised; never the batch axis) and keep_dims."""
        rank = len(self.tensors[op["inputs"][0]]["shape"])
        axes = self._int_list(op["inputs"][1])
        axes = sorted({a % rank for a in (axes if isinstance(axes, list) else [axes])})
        if 0 in axes:
            raise ValueError(f"graph {self.name!r}: operator {k} MEAN reduces the batch axis")
        return {"axes": axes, "keep": bool(op["options"].get("keep_dims", False))}

    def _prepare_strided_slice(self, k: int, op: dict) -> dict:
        """STRIDED_SLICE: python slices per axis from begin / end / strides and the begin, end and shrink masks."""
        o = op["options"]
        if o.get("ellipsis_mask", 0) or o.get("new_axis_mask", 0) or o.get("offset", False):
            raise ValueError(f"graph {self.name!r}: operator {k} STRIDED_SLICE uses ellipsis / new-axis / offset: {o}")
        begin, end, strides = (self._int_list(i) for i in op["inputs"][1:4])
        in_shape = self.tensors[op["inputs"][0]]["shape"]
        index: list = [slice(None)]
        shrink = o.get("shrink_axis_mask", 0)
        if shrink & 1 or strides[0] != 1 or (begin[0] != 0 and not o["begin_mask"] & 1) or \
                (end[0] not in (1, in_shape[0]) and not o["end_mask"] & 1):
            raise ValueError(f"graph {self.name!r}: operator {k} STRIDED_SLICE slices the batch axis")
        for axis in range(1, len(begin)):
            if shrink >> axis & 1:
                index.append(begin[axis])
                continue
            b = None if o["begin_mask"] >> axis & 1 else begin[axis]
            e = None if o["end_mask"] >> axis & 1 else end[axis]
            if strides[axis] <= 0:
                raise ValueError(f"graph {self.name!r}: operator {k} STRIDED_SLICE has stride {strides[axis]}")
            index.append(slice(b, e, strides[axis]))
        return {"index": tuple(index)}

    def _prepare_custom(self, k: int, op: dict) -> dict:
        """CUSTOM: the op's name and decoded options."""
        return {"code": op["custom_code"], "options": op["options"]}

    def _load_custom_ops(self, graph: dict) -> dict:
        """fexa.face.mediapipe_ops.CUSTOM_OPS, checked to cover every custom op of the graph."""
        try:
            from fexa.face.mediapipe_ops import CUSTOM_OPS
        except ImportError as err:
            raise ImportError(f"graph {self.name!r} has custom ops and fexa.face.mediapipe_ops "
                              f"cannot be imported: {err}") from err
        missing = sorted({op["custom_code"] for op in graph["operators"] if op["op"] == "CUSTOM"} - set(CUSTOM_OPS))
        if missing:
            raise ValueError(f"graph {self.name!r}: custom ops {missing} are not in fexa.face.mediapipe_ops.CUSTOM_OPS")
        return CUSTOM_OPS

    # ---- execution ----------------------------------------------------------------------------------------------

    def _pad_nchw(self, x: Tensor, pads: tuple, value: float) -> tuple[Tensor, tuple[int, int]]:
        """Apply (before, after) pads to an NCHW view: symmetric ones go to the op itself, others through F.pad."""
        (top, bottom), (left, right) = pads
        if top == bottom and left == right:
            return x, (top, left)
        return F.pad(x, (left, right, top, bottom), value=value), (0, 0)

    def _op_conv_2d(self, args: list, p: dict) -> list[Tensor]:
        """CONV_2D / DEPTHWISE_CONV_2D on the NHWC tensor through its NCHW (channels-last) view."""
        x, padding = self._pad_nchw(args[0].permute(0, 3, 1, 2), p["pads"], 0.0)
        bias = None if p["bias"] is None else self._buffers[f"c{p['bias']}"]
        y = F.conv2d(x, self._buffers[p["weight"]], bias, p["stride"], padding, p["dilation"], p["groups"])
        return [p["act"](y).permute(0, 2, 3, 1)]

    _op_depthwise_conv_2d = _op_conv_2d

    def _op_max_pool_2d(self, args: list, p: dict) -> list[Tensor]:
        """MAX_POOL_2D (padded cells are -inf: never the maximum)."""
        x, padding = self._pad_nchw(args[0].permute(0, 3, 1, 2), p["pads"], -math.inf)
        y = F.max_pool2d(x, p["kernel"], p["stride"], padding)
        return [p["act"](y).permute(0, 2, 3, 1)]

    def _op_fully_connected(self, args: list, p: dict) -> list[Tensor]:
        """FULLY_CONNECTED: rows of the last axis times the weight; keep_num_dims keeps the leading axes."""
        x, weight = args[0], self._buffers[p["weight"]]
        bias = None if p["bias"] is None else self._buffers[f"c{p['bias']}"]
        y = F.linear(x if p["keep"] else x.reshape(x.shape[0], -1), weight, bias)
        return [p["act"](y)]

    def _op_add(self, args: list, p: dict) -> list[Tensor]:
        """ADD with broadcasting."""
        return [p["act"](args[0] + args[1])]

    def _op_mul(self, args: list, p: dict) -> list[Tensor]:
        """MUL with broadcasting."""
        return [p["act"](args[0] * args[1])]

    def _op_prelu(self, args: list, p: dict) -> list[Tensor]:
        """PRELU: x where x >= 0, alpha * x elsewhere (F.prelu's max(0, x) + alpha * min(0, x) is the same, exactly)."""
        x = args[0]
        if p["weight"] is None:
            return [torch.where(x >= 0, x, x * args[1])]
        return [F.prelu(x.movedim(-1, 1), self._buffers[p["weight"]]).movedim(1, -1)]

    def _op_relu(self, args: list, p: dict) -> list[Tensor]:
        """RELU."""
        return [torch.relu(args[0])]

    def _op_relu6(self, args: list, p: dict) -> list[Tensor]:
        """RELU6."""
        return [args[0].clamp(0.0, 6.0)]

    def _op_logistic(self, args: list, p: dict) -> list[Tensor]:
        """LOGISTIC (sigmoid)."""
        return [torch.sigmoid(args[0])]

    def _op_tanh(self, args: list, p: dict) -> list[Tensor]:
        """TANH."""
        return [torch.tanh(args[0])]

    def _op_dequantize(self, args: list, p: dict) -> list[Tensor]:
        """DEQUANTIZE of a float16 activation (constant ones were folded at conversion)."""
        return [args[0].float()]

    def _op_pad(self, args: list, p: dict) -> list[Tensor]:
        """PAD with zeros."""
        return [F.pad(args[0], p["pad"])]

    def _op_resize_bilinear(self, args: list, p: dict) -> list[Tensor]:
        """RESIZE_BILINEAR with TFLite's source coordinates (align_corners / half_pixel_centers / neither)."""
        x = args[0]
        (out_h, out_w), (in_h, in_w) = p["size"], x.shape[1:3]
        y0, y1, wy = _bilinear_axis(in_h, out_h, p["align_corners"], p["half_pixel"], x.device)
        x0, x1, wx = _bilinear_axis(in_w, out_w, p["align_corners"], p["half_pixel"], x.device)
        top, bottom = x[:, y0], x[:, y1]
        wy, wx = wy[None, :, None, None], wx[None, None, :, None]
        rows = top + (bottom - top) * wy
        left, right = rows[:, :, x0], rows[:, :, x1]
        return [left + (right - left) * wx]

    def _op_depth_to_space(self, args: list, p: dict) -> list[Tensor]:
        """DEPTH_TO_SPACE in TFLite's order: channel (i * block + j) * C_out + c -> pixel (h * block + i, w * block + j)."""
        x, b = args[0], p["block"]
        n, h, w, c = x.shape
        y = x.reshape(n, h, w, b, b, c // (b * b)).permute(0, 1, 3, 2, 4, 5)
        return [y.reshape(n, h * b, w * b, c // (b * b))]

    def _op_reshape(self, args: list, p: dict) -> list[Tensor]:
        """RESHAPE keeping the batch dimension."""
        return [args[0].reshape(args[0].shape[0], *p["shape"])]

    def _op_concatenation(self, args: list, p: dict) -> list[Tensor]:
        """CONCATENATION along a non-batch axis."""
        return [p["act"](torch.cat(args, dim=p["axis"]))]

    def _op_mean(self, args: list, p: dict) -> list[Tensor]:
        """MEAN over the given axes."""
        return [args[0].mean(dim=p["axes"], keepdim=p["keep"])]

    def _op_strided_slice(self, args: list, p: dict) -> list[Tensor]:
        """STRIDED_SLICE (whole batch kept)."""
        return [args[0][p["index"]]]

    def _op_custom(self, args: list, p: dict) -> list[Tensor]:
        """A mediapipe custom op from fexa.face.mediapipe_ops."""
        return list(self._custom_ops[p["code"]](args, p["options"]))

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is a [B, H, W, C] float32 batch of this graph's input size."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape[1:]:
            raise ValueError(f"x: shape {tuple(x.shape)}, expected [B, {', '.join(map(str, self.input_shape[1:]))}] "
                             f"for graph {self.name!r}")
        if x.dtype != torch.float32:
            raise ValueError(f"x: dtype {x.dtype}, expected torch.float32 for graph {self.name!r}")

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Run the graph on a [B, H, W, C] float32 batch (NHWC, values as the TFLite model expects)."""
        self.check_input(x)
        values: dict[int, Tensor] = {self.input_index: x.contiguous()}
        for k, (run, inputs, outputs, params) in enumerate(self._steps):
            # Constants an op reads at load time only (weights, shapes, paddings) are not buffers: they come as None.
            args = [values[i] if i in values else self._buffers.get(f"c{i}") for i in inputs]
            for i, y in zip(outputs, run(args, params)):
                values[i] = y
            for i in self._last_use[k]:
                values.pop(i, None)
        return {name: values[i] for name, i in zip(self.output_names, self.output_indices)}


class TracedGraph:
    """A graph called through TorchScript traces of itself, one per batch size: the ops are recorded once and
    then run without Python between them (on 2 CPU cores the face mesh takes 7.9 instead of 12.2 ms an image).
    The trace calls the same kernels, so outputs are bit-identical (tests/test_tflite_graph.py); one trace per
    shape, so nothing an op reads from a shape is baked in wrongly. Batches above ``max_batch`` (whose Python
    overhead is small beside their arithmetic) run the graph itself, which bounds the traces kept."""

    def __init__(self, graph: TfliteGraph, max_batch: int = 8) -> None:
        self.graph, self.max_batch = graph, max_batch
        self._traces: dict[tuple[int, ...], Callable[[Tensor], dict[str, Tensor]]] = {}
        self._lock = threading.Lock()

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        self.graph.check_input(x)
        if x.shape[0] > self.max_batch or torch.is_grad_enabled():
            return self.graph(x)
        key = tuple(x.shape)
        if key not in self._traces:
            with self._lock, warnings.catch_warnings():
                # the trace's notes on shape checks (one trace per shape) and on TorchScript's deprecation
                warnings.simplefilter("ignore")
                if key not in self._traces:  # another thread may have traced this shape while we waited
                    self._traces[key] = torch.jit.trace(self.graph, x, strict=False, check_trace=False)
        return self._traces[key](x)


@lru_cache(maxsize=None)
def shared_runner(name: str, device: str = "cpu") -> Callable[[Tensor], dict[str, Tensor]]:
    """``shared_graph(name, device)`` as a function of a batch for inference: through ``TracedGraph`` on the
    CPU, where Python's time between the small ops is most of a call; the graph itself elsewhere."""
    graph = shared_graph(name, device)
    return TracedGraph(graph) if torch.device(device).type == "cpu" else graph


@lru_cache(maxsize=None)
def shared_graph(name: str, device: str = "cpu") -> TfliteGraph:
    """The converted graph ``name`` on ``device`` in eval mode, loaded once per process and shared
    (the graphs keep no state between calls)."""
    return TfliteGraph.load(name).to(device).eval()
