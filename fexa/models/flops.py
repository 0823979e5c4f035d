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


def _clip(b: int, frames: int, size: int = 224) -> Tensor:
    return torch.randn(b, frames, 3, size, size)


def _trajectory(b: int, frames: int = 128) -> tuple[Tensor, Tensor]:
    return torch.randn(b, frames, 63, 5), torch.linspace(-1, 1, frames).expand(b, frames)


def _image(b: int, size: int = 112) -> Tensor:
    return torch.randn(b, 3, size, size)


# model -> its inputs for a batch of b samples at its paper's size (QAFE-Net / TraMP-Former: 80 frames
# in 5 subclips, T_p = 128); also benchmarks/bench_models.py's inputs
PAPER_INPUTS: dict[str, Callable[[int], tuple]] = {
    "former_dfer": lambda b: (_clip(b, 80),),
    "former_dfer_112": lambda b: (_clip(b, 16, 112),),
    "former_dfer_regressor": lambda b: (_clip(b, 80),),
    "slowonly_r50_heatmap": lambda b: (torch.rand(b, 3, 16, 56, 56),),
    "slowonly_r50_posec3d": lambda b: (torch.rand(b, 17, 48, 56, 56),),  # pyskl's NTU60 joint model: 48 frames
    "qafe_net": lambda b: (_clip(b, 80), torch.rand(b, 80, 3, 56, 56)),
    "skateformer_face": lambda b: _trajectory(b),
    "tramp_former": lambda b: (_clip(b, 80), *_trajectory(b)),
    "tramp_trajectory": lambda b: (None, *_trajectory(b)),
    "stt": lambda b: (_clip(b, 16, 112),),
    "pcda": lambda b: (_image(b),),
    "pcda_gaussian": lambda b: (_image(b), torch.rand(b, 68, 2) * 112),
    "ir50": lambda b: (_image(b),),
    "ir152": lambda b: (_image(b),),
    "mobilefacenet": lambda b: (_image(b),),
    "swin_s": lambda b: (_image(b, 224),),
    "repvgg": lambda b: (_image(b),),
    "hrnet": lambda b: (_image(b, 128),),
    "cfc_sp": lambda b: (_image(b),),  # b frames of one video
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
        inputs = PAPER_INPUTS[name](1)
    return count_parameters(model), count_flops(model, inputs)
