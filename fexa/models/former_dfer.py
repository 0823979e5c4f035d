"""Former-DFER (Zhao & Liu, ACM MM 2021): the RGB encoder of QAFE-Net and TraMP-Former.

S-Former (per frame): ResNet-18 to layer3, the 14x14 (224 px) or 7x7 (112 px) map as tokens plus a
learnable position embedding, one pre-norm transformer layer (dim 256, 8 heads), back to a map,
layer4, global average pool -> 512. T-Former: a CLS token and position embedding over exactly 16
frame features, 3 layers (dim 512, 8 heads, MLP 1024) -> the CLS output.

Input clips are [B, T, 3, H, W] with T = n x 16; each 16-frame subclip gives one 512-d feature,
so the encoder returns [B, n, 512]. (The reference loaders fed C x T x H x W and mixed channels
with time; here the layout is explicit.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from timm.models.vision_transformer import Block
from torch import Tensor, nn
from torchvision.models import resnet18

from fexa.models.blocks import RegressionHead
from fexa.models.registry import register_model

FRAMES_PER_SUBCLIP = 16


@dataclass(frozen=True)
class FormerDFERConfig:
    img_size: int = 224  # 224 (QAFE/TraMP) or 112 (original DFER)
    num_classes: int = 0  # > 0 adds the DFER classifier on the clip feature
    drop: float = 0.0


def _transformer(dim: int, heads: int, mlp: int, depth: int, drop: float) -> nn.Sequential:
    gelu_tanh = partial(nn.GELU, approximate="tanh")
    return nn.Sequential(*[Block(dim, heads, mlp_ratio=mlp / dim, qkv_bias=False, proj_drop=drop, act_layer=gelu_tanh,
                                 norm_layer=nn.LayerNorm) for _ in range(depth)])


class SFormer(nn.Module):
    """Spatial transformer on one frame: [N, 3, H, W] -> [N, 512]."""

    def __init__(self, img_size: int = 224, drop: float = 0.0):
        super().__init__()
        r = resnet18(weights=None)
        self.stem = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = r.layer1, r.layer2, r.layer3, r.layer4
        self.grid = img_size // 16
        self.pos_embedding = nn.Parameter(torch.randn(1, self.grid * self.grid, 256))
        self.transformer = _transformer(256, 8, 512, 1, drop)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        n, c, h, w = x.shape
        if h * w != self.pos_embedding.shape[1]:
            raise ValueError(f"S-Former built for {self.grid * 16}px input got a {h * 16}x{w * 16} frame")
        t = self.transformer(x.flatten(2).transpose(1, 2) + self.pos_embedding)
        x = t.transpose(1, 2).reshape(n, c, h, w)
        return self.pool(self.layer4(x)).flatten(1)


class TFormer(nn.Module):
    """Temporal transformer over 16 frame features: [N, 16, 512] -> [N, 512] (CLS output)."""

    def __init__(self, frames: int = FRAMES_PER_SUBCLIP, drop: float = 0.0):
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, 512))
        self.pos_embedding = nn.Parameter(torch.randn(1, frames + 1, 512))
        self.temporal_transformer = _transformer(512, 8, 1024, 3, drop)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        return self.temporal_transformer(x)[:, 0]


class FormerDFER(nn.Module):
    """[B, n*16, 3, H, W] -> [B, n, 512] subclip features (or scores / logits with a head)."""

    def __init__(self, cfg: FormerDFERConfig = FormerDFERConfig()):
        super().__init__()
        self.cfg = cfg
        self.s_former = SFormer(cfg.img_size, cfg.drop)
        self.t_former = TFormer(drop=cfg.drop)
        self.head = nn.Linear(512, cfg.num_classes) if cfg.num_classes else None

    def encode(self, clip: Tensor) -> Tensor:
        b, t, c, h, w = clip.shape
        if t % FRAMES_PER_SUBCLIP:
            raise ValueError(f"Former-DFER takes clips of n x {FRAMES_PER_SUBCLIP} frames, got {t}")
        n = t // FRAMES_PER_SUBCLIP
        frames = self.s_former(clip.reshape(b * t, c, h, w))
        return self.t_former(frames.reshape(b * n, FRAMES_PER_SUBCLIP, -1)).reshape(b, n, -1)

    def forward(self, clip: Tensor) -> Tensor:
        feats = self.encode(clip)
        return feats if self.head is None else self.head(feats.mean(dim=1))  # [B, classes]


class FormerDFERRegressor(nn.Module):
    """The papers' RGB baseline (QAFE-Net Tables 2-3, TraMP-Former Tables II-III): Former-DFER with
    its classifier replaced by QAFE-Net's MLP 512 -> 256 -> 128 -> 1 on each subclip feature, the
    scores averaged over subclips: [B, n*16, 3, H, W] -> [B]. The encoder is the submodule ``rgb``,
    as in QAFE-Net and TraMP-Former, so their published Former-DFER files load into it
    (``model.pretrained: {rgb: qafe_former_dfer}``)."""

    def __init__(self, cfg: FormerDFERConfig = FormerDFERConfig()):
        super().__init__()
        if cfg.num_classes:
            raise ValueError("the Former-DFER regressor gives one score: num_classes must be 0")
        self.rgb = FormerDFER(cfg)
        self.head = RegressionHead((512, 256, 128, 1))

    def forward(self, clip: Tensor) -> Tensor:
        return self.head(self.rgb.encode(clip)).mean(dim=(1, 2))


@register_model("former_dfer", FormerDFERConfig, "Former-DFER RGB encoder, 224 px, n x 16 frames -> [B, n, 512]",
                reference_params=18_065_984, paper="qafe-net")
def former_dfer(cfg: FormerDFERConfig) -> FormerDFER:
    return FormerDFER(cfg)


@register_model("former_dfer_112", FormerDFERConfig, "Former-DFER as published for DFEW (112 px, 7 classes)",
                reference_params=18_028_352 + 512 * 7 + 7, paper="stt-dfer", img_size=112, num_classes=7)
def former_dfer_112(cfg: FormerDFERConfig) -> FormerDFER:
    return FormerDFER(cfg)


@register_model("former_dfer_regressor", FormerDFERConfig, "Former-DFER (rgb) + MLP head: the papers' RGB baseline",
                paper="qafe-net")
def former_dfer_regressor(cfg: FormerDFERConfig) -> FormerDFERRegressor:
    return FormerDFERRegressor(cfg)
