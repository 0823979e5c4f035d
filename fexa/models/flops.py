"""Each model's compute at the input size its paper uses, beside the papers' own counts (``fexa models --flops``).

FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode` on the meta device (shapes
only, no weights or arithmetic): matrix products, convolutions and attention, 2 FLOPs per
multiply-add; element-wise operations, normalisation and pooling are not counted. Papers that
print "FLOPs" usually count multiply-adds (thop, fvcore): their number is then half of this one, so
both are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from fexa.models.registry import count_parameters, create_model


def _clip(frames: int, size: int = 224) -> Tensor:
    return torch.zeros(1, frames, 3, size, size)


def _trajectory(frames: int = 128) -> tuple[Tensor, Tensor]:
    return torch.zeros(1, frames, 63, 5), torch.zeros(1, frames)


def _image(size: int = 112) -> Tensor:
    return torch.zeros(1, 3, size, size)


# model -> one sample at its paper's size (QAFE-Net / TraMP-Former: 80 frames, 5 subclips; T_p = 128)
PAPER_INPUTS: dict[str, Callable[[], tuple]] = {
    "former_dfer": lambda: (_clip(80),),
    "former_dfer_112": lambda: (_clip(16, 112),),
    "former_dfer_regressor": lambda: (_clip(80),),
    "slowonly_r50_heatmap": lambda: (torch.zeros(1, 3, 16, 56, 56),),
    "slowonly_r50_posec3d": lambda: (torch.zeros(1, 17, 48, 56, 56),),  # pyskl's NTU60 joint model: 48 frames
    "qafe_net": lambda: (_clip(80), torch.zeros(1, 80, 3, 56, 56)),
    "skateformer_face": lambda: _trajectory(),
    "tramp_former": lambda: (_clip(80), *_trajectory()),
    "tramp_trajectory": lambda: (None, *_trajectory()),
    "stt": lambda: (_clip(16, 112),),
    "pcda": lambda: (_image(),),
    "pcda_gaussian": lambda: (_image(), torch.zeros(1, 68, 2)),
    "ir50": lambda: (_image(),),
    "ir152": lambda: (_image(),),
    "mobilefacenet": lambda: (_image(),),
    "swin_s": lambda: (_image(224),),
    "repvgg": lambda: (_image(),),
    "hrnet": lambda: (_image(128),),
    "cfc_sp": lambda: (_image(),),  # one frame
}


@dataclass(frozen=True)
class PaperCost:
    """A model's parameters and "FLOPs" as a paper prints them, and what fexa builds to compare."""

    model: str
    source: str  # the paper and table
    params: float
    flops: float
    options: dict = field(default_factory=dict)


PAPER_COSTS = [
    PaperCost("pcda", "pcda-neaa Tables 2, 7: PCDA", 34.2e6, 9.3e9),
    PaperCost("ir50", "pcda-neaa Table 8: image backbone", 17.6e6, 5.5e9),
    PaperCost("mobilefacenet", "pcda-neaa Table 8: landmark backbone", 1.0e6, 0.2e9),
]


def count_flops(model: nn.Module, inputs: tuple) -> int:
    """FLOPs of one forward pass of ``model`` on ``inputs`` (2 per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


def model_cost(name: str, **options) -> tuple[int, int]:
    """(parameters, FLOPs) of model ``name`` with ``options`` on one sample at its paper's input size,
    built and run on the meta device."""
    if name not in PAPER_INPUTS:
        raise KeyError(f"model {name!r} has no paper input size in fexa.models.flops.PAPER_INPUTS")
    with torch.device("meta"):
        model = create_model(name, **options).eval()
        inputs = PAPER_INPUTS[name]()
    return count_parameters(model), count_flops(model, inputs)
