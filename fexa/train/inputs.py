"""Which sample inputs each model takes, and in which order its forward wants them."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

Batch = dict[str, Tensor]

_CLIP = (("clip",), lambda b: (b["clip"],))
_IMAGE = (("image",), lambda b: (b["image"],))
MODEL_INPUTS: dict[str, tuple[tuple[str, ...], Callable[[Batch], tuple]]] = {
    "qafe_net": (("clip", "heatmaps"), lambda b: (b["clip"], b["heatmaps"])),
    "tramp_former": (("clip", "trajectory"), lambda b: (b["clip"], b["trajectory"], b["time_index"])),
    "tramp_trajectory": (("trajectory",), lambda b: (None, b["trajectory"], b["time_index"])),
    "skateformer_face": (("trajectory",), lambda b: (b["trajectory"], b["time_index"])),
    "former_dfer_regressor": _CLIP,
    "former_dfer_112": _CLIP,
    "stt": _CLIP,
    "pcda": (("image",), lambda b: (b["image"], b["landmarks"])),
    "pcda_gaussian": (("image",), lambda b: (b["image"], b["landmarks"])),
    "ir50": _IMAGE,
    "ir152": _IMAGE,
    "swin_s": _IMAGE,
    "repvgg": _IMAGE,
    "hrnet": _IMAGE,
}


def model_inputs(name: str) -> tuple[tuple[str, ...], Callable[[Batch], tuple]]:
    try:
        return MODEL_INPUTS[name]
    except KeyError:
        raise ValueError(f"model {name!r} cannot be trained by fexa train; trainable: {sorted(MODEL_INPUTS)}") from None


def split_output(out) -> tuple[Tensor, Tensor | None]:
    """(prediction, features): PCDA returns (logits, class-token features), others a tensor."""
    if isinstance(out, tuple):
        return out[0], out[1]
    return out, None
