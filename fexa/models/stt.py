"""STT (spatio-temporal transformer for dynamic expression recognition).

ResNet-18 up to layer3 on each of F = 16 frames (112 px -> 7 x 7 x 256; ``cnn``, which the paper
initialises from MS-Celeb-1M: ``model.pretrained: {cnn: msceleb_resnet18}``), a 1x1 conv to d = 512,
a learnable spatial position embedding over the 49 tokens, a CLS "frame" (one learnable token
copied to all 49 positions) prepended in time and a learnable temporal embedding over F + 1.
Four blocks of [spatial multi-head attention over the 49 tokens of a frame -> temporal multi-head
attention over the F + 1 tokens at one position -> MLP], each pre-norm and residual, 8 heads.
The CLS token at (t = 0, p = 0) of the last block goes to the classifier (Eq. 13: p = FC(z_(0,0));
``head_norm=True`` puts a LayerNorm before it, as pre-norm ViTs do, an option the paper does not use).

Table 1's ablation (``attention``): ``spatial`` or ``temporal`` keeps one attention per block;
``lstm`` replaces the transformer by an LSTM over the frames' mean tokens (the paper's baseline).
The paper does not say where those variants read out; fexa reads the tokens that can have seen
the whole clip: without temporal attention no token crosses frames, so the classifier gets the
mean over frames and positions (no CLS frame is added); without spatial attention the CLS frame's token at
position p only sees position p, so it gets the CLS frame's mean over positions; the LSTM's last
hidden state (width d, one layer).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import Attention, Mlp
from torch import Tensor, nn
from torchvision.models import resnet18

from fexa.models.registry import register_model

ATTENTIONS = ("spatial_temporal", "spatial", "temporal", "lstm")


@dataclass(frozen=True)
class STTConfig:
    num_classes: int = 7
    num_frames: int = 16
    img_size: int = 112
    dim: int = 512
    depth: int = 4
    num_heads: int = 8
    mlp_ratio: float = 4.0
    drop: float = 0.0
    head_norm: bool = False  # a LayerNorm on the class token before the FC; the paper's Eq. 13 has none
    attention: str = "spatial_temporal"  # Table 1: spatial_temporal (paper) | spatial | temporal | lstm

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")


class SpatioTemporalBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop: float, spatial: bool = True,
                 temporal: bool = True):
        super().__init__()
        if spatial:
            self.norm_s, self.spatial = nn.LayerNorm(dim), Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        if temporal:
            self.norm_t, self.temporal = nn.LayerNorm(dim), Attention(dim, heads, qkv_bias=True, proj_drop=drop)
        self.norm_m = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        b, t, p, d = x.shape
        if hasattr(self, "spatial"):
            s = x.reshape(b * t, p, d)
            x = (s + self.spatial(self.norm_s(s))).reshape(b, t, p, d)
        if hasattr(self, "temporal"):
            tt = x.transpose(1, 2).reshape(b * p, t, d)
            x = (tt + self.temporal(self.norm_t(tt))).reshape(b, p, t, d).transpose(1, 2)
        return x + self.mlp(self.norm_m(x))


class STT(nn.Module):
    """forward(clip [B, 16, 3, 112, 112]) -> logits [B, classes]."""

    def __init__(self, cfg: STTConfig = STTConfig()):
        super().__init__()
        self.cfg = cfg
        r = resnet18(weights=None)
        self.cnn = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3)
        self.to_tokens = nn.Conv2d(256, cfg.dim, 1)
        tokens = (cfg.img_size // 16) ** 2
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1, tokens, cfg.dim))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        self.has_cls = cfg.attention in ("spatial_temporal", "temporal")  # read out from the CLS frame
        if self.has_cls:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, 1, cfg.dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if cfg.attention == "lstm":
            self.lstm = nn.LSTM(cfg.dim, cfg.dim, batch_first=True)
        else:
            self.temporal_pos = nn.Parameter(torch.zeros(1, cfg.num_frames + self.has_cls, 1, cfg.dim))
            nn.init.trunc_normal_(self.temporal_pos, std=0.02)
            spatial, temporal = cfg.attention != "temporal", cfg.attention != "spatial"
            self.blocks = nn.Sequential(*[SpatioTemporalBlock(cfg.dim, cfg.num_heads, cfg.mlp_ratio, cfg.drop,
                                                              spatial, temporal) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.dim) if cfg.head_norm else nn.Identity()
        self.head = nn.Linear(cfg.dim, cfg.num_classes)

    def forward(self, clip: Tensor) -> Tensor:
        b, t, c, h, w = clip.shape
        if t != self.cfg.num_frames:
            raise ValueError(f"STT takes {self.cfg.num_frames} frames, got {t}")
        x = self.to_tokens(self.cnn(clip.reshape(b * t, c, h, w)))  # [B*T, d, 7, 7]
        x = x.flatten(2).transpose(1, 2).reshape(b, t, -1, self.cfg.dim) + self.spatial_pos
        if self.cfg.attention == "lstm":
            return self.head(self.norm(self.lstm(x.mean(dim=2))[1][0][-1]))
        if self.has_cls:
            x = torch.cat([self.cls_token.expand(b, 1, x.shape[2], -1), x], dim=1)
        x = self.blocks(x + self.temporal_pos)
        if self.cfg.attention == "spatial":  # no token crossed frames: all tokens pooled
            return self.head(self.norm(x.mean(dim=(1, 2))))
        if self.cfg.attention == "temporal":  # each CLS-frame token saw one position: pooled over positions
            return self.head(self.norm(x[:, 0].mean(dim=1)))
        return self.head(self.norm(x[:, 0, 0]))


@register_model("stt", STTConfig, "STT: ResNet-18 (to layer3) tokens + 4 spatial-then-temporal attention blocks",
                paper="stt-dfer")
def stt(cfg: STTConfig) -> STT:
    return STT(cfg)
