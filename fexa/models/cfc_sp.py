"""CFC-SP (coarse-to-fine cascade with smooth predicting) for per-frame video expression recognition
on Aff-Wild2's 8 classes (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other).

Coarse net: an ensemble of backbones over 5 classes (Neutral, Happy, Surprise, Other, Negative)
whose softmax scores are summed. Negative net: 4 classes (Anger, Disgust, Fear, Sadness). A frame
keeps its coarse class unless that is Negative, in which case the negative net decides.
Smooth Predicting (the paper's Eq. 1, on each network's per-frame logits, as the paper's "feature
logits" and the reference spec say): f'_i = f_i + (1/w) sum of f_j over j = i - w/2 .. i + w/2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fexa.models.registry import create_model, make_config, register_model

COARSE_CLASSES = ("Neutral", "Happy", "Surprise", "Other", "Negative")
NEGATIVE_CLASSES = ("Anger", "Disgust", "Fear", "Sadness")
TO_COARSE = (0, 4, 4, 4, 1, 4, 2, 3)  # Aff-Wild2 class -> coarse class
TO_NEGATIVE = (-1, 0, 1, 2, -1, 3, -1, -1)  # Aff-Wild2 class -> negative class (-1: not negative)
COARSE_TO_8 = (0, 4, 6, 7, -1)
NEGATIVE_TO_8 = (1, 2, 3, 5)


def sp_gain(window: int) -> float:
    """How much Smooth Predicting adds of a constant signal: the paper sums w + 1 frames (w // 2 on
    each side and the frame itself) and divides by w. 0 when SP is off."""
    return (2 * (window // 2) + 1) / window if window > 0 else 0.0


def smooth_predicting(x: Tensor, window: int, valid: Tensor | None = None) -> Tensor:
    """[T, ...] per-frame logits -> x_i + (1/w) sum(x_j, |j - i| <= w / 2) along time (the paper's Eq. 1).

    Where the window is not full (the clip's ends; frames with ``valid`` False, which neither
    contribute nor change) the sum is over the frames it holds, scaled up to the window's count:
    x_i + sp_gain(w) * mean(x_j present). In a full window this is the paper's formula exactly.
    window 0 = identity."""
    if window <= 0:
        return x
    t = x.shape[0]
    v = torch.ones(t, dtype=x.dtype, device=x.device) if valid is None else valid.to(x.dtype)
    flat = x.reshape(t, -1) * v[:, None]
    half = window // 2
    csum = torch.cat([torch.zeros_like(flat[:1]), flat.cumsum(0)])
    ccount = torch.cat([v.new_zeros(1), v.cumsum(0)])
    lo = (torch.arange(t, device=x.device) - half).clamp(min=0)
    hi = (torch.arange(t, device=x.device) + half + 1).clamp(max=t)
    mean = (csum[hi] - csum[lo]) / (ccount[hi] - ccount[lo]).clamp(min=1)[:, None]
    out = x + sp_gain(window) * mean.reshape(x.shape)
    if valid is not None:
        out = torch.where(valid.reshape(-1, *([1] * (x.dim() - 1))).bool(), out, x)
    return out


def cascade(coarse_probs: Tensor, negative_probs: Tensor) -> Tensor:
    """[N, 5] coarse and [N, 4] negative scores -> [N] Aff-Wild2 class indices."""
    coarse = coarse_probs.argmax(dim=1)
    c8 = torch.tensor(COARSE_TO_8, device=coarse.device)[coarse]
    n8 = torch.tensor(NEGATIVE_TO_8, device=coarse.device)[negative_probs.argmax(dim=1)]
    return torch.where(coarse == 4, n8, c8)


def compose_probabilities(coarse_probs: Tensor, negative_probs: Tensor) -> Tensor:
    """[N, 5] coarse and [N, 4] negative probabilities -> [N, 8] Aff-Wild2 probabilities: each
    coarse class keeps its probability, the Negative one is shared out by the negative net."""
    out = coarse_probs.new_zeros(coarse_probs.shape[0], len(TO_COARSE))
    keep = [c for c in range(len(COARSE_TO_8)) if COARSE_TO_8[c] >= 0]
    out[:, [COARSE_TO_8[c] for c in keep]] = coarse_probs[:, keep]
    out[:, list(NEGATIVE_TO_8)] = coarse_probs[:, 4:5] * negative_probs
    return out


@dataclass(frozen=True)
class CFCSPConfig:
    coarse_backbones: tuple[str, ...] = ("ir152", "swin_s", "hrnet")
    negative_backbone: str = "repvgg"
    window: int = 256  # SP window w (frames); 0 disables smoothing


class _Member(nn.Module):
    """A registered backbone as a feature extractor plus its own classifier; ``img_size`` is the
    input size its config names (112 px by default)."""

    def __init__(self, name: str, num_classes: int):
        super().__init__()
        self.name = name
        self.backbone = create_model(name, num_classes=0)
        self.img_size = getattr(make_config(name), "img_size", 112)
        dim = getattr(self.backbone, "num_features", None) or self.backbone.out_channels
        self.classifier = nn.Linear(dim, num_classes)

    def _features(self, x: Tensor) -> Tensor:
        f = self.backbone(x)
        return f.mean(dim=(2, 3)) if f.dim() == 4 else f

    def forward(self, x: Tensor, window: int = 0, valid: Tensor | None = None) -> Tensor:
        return smooth_predicting(self.classifier(self._features(x)), window, valid)


class CFCSP(nn.Module):
    """forward(frames [T, 3, H, W] of one video, valid [T]) -> dict of per-frame coarse/negative
    probabilities and the cascaded Aff-Wild2 prediction. Members see the frames resized to their
    input size: 224 px for Swin-S, 112 px otherwise, except HRNet at 128 px (timm's HRNet needs a
    multiple of 32; the paper used 112)."""

    def __init__(self, cfg: CFCSPConfig = CFCSPConfig()):
        super().__init__()
        self.cfg = cfg
        self.coarse = nn.ModuleList(_Member(n, len(COARSE_CLASSES)) for n in cfg.coarse_backbones)
        self.negative = _Member(cfg.negative_backbone, len(NEGATIVE_CLASSES))

    @staticmethod
    def _sized(frames: Tensor, member: _Member) -> Tensor:
        size = member.img_size
        if frames.shape[-2:] == (size, size):
            return frames
        return nn.functional.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)

    def forward(self, frames: Tensor, valid: Tensor | None = None) -> dict[str, Tensor]:
        w = self.cfg.window
        coarse = sum(m(self._sized(frames, m), w, valid).softmax(dim=1) for m in self.coarse)
        negative = self.negative(self._sized(frames, self.negative), w, valid).softmax(dim=1)
        return {"coarse": coarse / len(self.coarse), "negative": negative, "prediction": cascade(coarse, negative)}


@register_model("cfc_sp", CFCSPConfig, "CFC-SP: coarse ensemble (IR-152, Swin-S, HRNet) + RepVGG negative net + SP",
                paper="cfc-sp")
def cfc_sp(cfg: CFCSPConfig) -> CFCSP:
    return CFCSP(cfg)
