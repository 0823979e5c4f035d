"""PCDA (product-cross dual attention) for static-image expression recognition, with NeAA training.

Image trunk: IR-50 (3 stages) -> f_img [B, 256, 14, 14]. Landmark trunk -> f_lm [B, 128, 14, 14]:
either the frozen MobileFaceNet's conv_4 features (the paper; its weights must come from the
user's checkpoint, none can be fetched here) or, the default here, per-landmark Gaussian maps at
14 x 14 rendered from fexa's tracked landmarks and lifted to 128 channels by a 1x1 conv. The
model's ``landmark_trunk`` attribute says which one a run used.

Dot-product attention: f_fusion = H * f_img. H is a channel reduction of f_lm to one map, repeated
over f_img's 256 channels (max, the paper's best; sum or abs-sum in Table 4), or, Table 4's "Conv",
a convolution mapping f_lm's 128 channels to 256 maps, one per f_img channel (the paper names no
kernel size, bias or activation: 1x1, with bias, none). Cross-feature attention (2 blocks, 768-d,
12 heads, MLP ratio 4): fusion and landmark tokens (196 + a class token each) are embedded;
queries come from the landmark tokens, keys and values from the fusion tokens:
t' = t_f + W_o CA(W_q_lm t_lm, W_k LN(t_f), W_v LN(t_f)); t_f = t' + MLP(LN(t')) (Eqs. 3-5; the
keys and values read LN(t_f) as in a ViT-B block, where Eq. 3 writes t_fusion), and the fusion
class token goes to the classifier as it is. ``token_norms=True`` adds a LayerNorm on the landmark
tokens before W_q_lm and one on the class token before the classifier (not in the paper). Only
the fusion tokens are updated; ``forward`` returns (logits, class-token features) because NeAA
works on the features.

The paper's 34.2M parameters count a whole ViT-B block per layer (including a query projection
of the fusion tokens that cross-attention never uses) plus the landmark query; fexa builds only
the key/value projection of the fusion tokens, 2 x 590,592 parameters fewer.

Table 1's ablation: ``dot_attention=False`` feeds f_img itself (no H); ``cross_attention=False``
takes the queries from the fusion tokens (self-attention, a plain ViT encoder: the landmark
tokens are not built). Neither removes a module whose weights the full model loads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import Mlp
from torch import Tensor, nn

from fexa.models.face_backbones import IRConfig, IResNet, MobileFaceNet
from fexa.models.registry import register_model

REDUCTIONS = ("max", "sum", "abs_sum", "conv")
TRUNKS = ("gaussian", "mobilefacenet")


@dataclass(frozen=True)
class PCDAConfig:
    num_classes: int = 7
    landmark_trunk: str = "gaussian"
    num_landmarks: int = 68  # points given to the Gaussian trunk
    gaussian_sigma: float = 6.0  # in pixels of the 112 px face
    reduction: str = "max"
    dim: int = 768
    depth: int = 2
    num_heads: int = 12
    mlp_ratio: float = 4.0
    drop: float = 0.5
    img_size: int = 112
    # small configurations (e.g. training from scratch on CPU): IR units and widths per stage
    ir_units: tuple[int, ...] = (3, 4, 14)
    ir_channels: tuple[int, ...] = (64, 128, 256)
    landmark_channels: int = 128
    # LayerNorms on the landmark tokens (before W_q_lm) and on the class token (before the FC): not
    # in the paper's Eqs. 3-5, which normalise only inside the MLP branch; an option for stability
    token_norms: bool = False
    dot_attention: bool = True  # Table 1: f_fusion = H * f_img (True) or f_img
    cross_attention: bool = True  # Table 1: queries from the landmark tokens (True) or the fusion tokens

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if self.landmark_trunk not in TRUNKS:
            raise ValueError(f"landmark_trunk must be one of {TRUNKS}, got {self.landmark_trunk!r}")


class GaussianLandmarkTrunk(nn.Module):
    """[B, P, 2] landmarks (pixels of the img_size face) -> [B, 128, S/8, S/8]: one Gaussian map per
    landmark on the image trunk's grid (14 x 14 at 112 px), mixed to 128 channels by a 1x1 conv + BN + ReLU."""

    def __init__(self, num_landmarks: int, sigma: float, img_size: int = 112, channels: int = 128):
        super().__init__()
        grid = img_size // 8  # the image trunk's three stride-2 stages
        cell = img_size / grid
        self.register_buffer("centres", (torch.arange(grid) + 0.5) * cell, persistent=False)
        self.sigma = sigma
        self.mix = nn.Sequential(nn.Conv2d(num_landmarks, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                 nn.ReLU(inplace=True))

    def maps(self, landmarks: Tensor) -> Tensor:
        c = self.centres
        gx = torch.exp(-((c - landmarks[..., 0:1]) ** 2) / (2 * self.sigma**2))  # [B, P, 14]
        gy = torch.exp(-((c - landmarks[..., 1:2]) ** 2) / (2 * self.sigma**2))
        return gy[..., :, None] * gx[..., None, :]

    def forward(self, landmarks: Tensor) -> Tensor:
        return self.mix(self.maps(landmarks))


class CrossFeatureBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop: float, norm_lm: bool = False):
        super().__init__()
        self.heads = heads
        self.norm_lm = nn.LayerNorm(dim) if norm_lm else nn.Identity()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q_lm = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(drop)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, t_f: Tensor, t_lm: Tensor | None) -> Tensor:
        """Queries from the landmark tokens ``t_lm``; None: from the fusion tokens (self-attention)."""
        b, n, d = t_f.shape
        q = self.q_lm(self.norm_lm(t_lm) if t_lm is not None else self.norm1(t_f)).reshape(b, n, self.heads, -1)
        q = q.transpose(1, 2)
        k, v = self.kv(self.norm1(t_f)).reshape(b, n, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = nn.functional.scaled_dot_product_attention(q, k, v)
        t = t_f + self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, d)))
        return t + self.mlp(self.norm2(t))


class PCDA(nn.Module):
    """forward(images [B, 3, 112, 112], landmarks [B, P, 2] or None) -> (logits [B, C], features [B, 768])."""

    def __init__(self, cfg: PCDAConfig = PCDAConfig()):
        super().__init__()
        self.cfg = cfg
        self.landmark_trunk = cfg.landmark_trunk
        self.image = IResNet(IRConfig(depth=50, num_stages=3, units=cfg.ir_units, channels=cfg.ir_channels))
        lm_channels = 128 if cfg.landmark_trunk == "mobilefacenet" else cfg.landmark_channels
        if cfg.dot_attention or cfg.cross_attention:  # modules the ablation leaves unused are not built
            if cfg.landmark_trunk == "mobilefacenet":
                self.landmarks = MobileFaceNet()
                self.landmarks.requires_grad_(False)
            else:
                self.landmarks = GaussianLandmarkTrunk(cfg.num_landmarks, cfg.gaussian_sigma, cfg.img_size, lm_channels)
        conv = cfg.reduction == "conv" and cfg.dot_attention
        self.reduce_conv = nn.Conv2d(lm_channels, self.image.out_channels, 1) if conv else None
        d = cfg.dim
        self.embed_f = nn.Linear(self.image.out_channels, d)
        if cfg.cross_attention:
            self.embed_lm = nn.Linear(lm_channels, d)
        self.cls_f = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.cls_f, std=0.02)
        if cfg.cross_attention:
            self.cls_lm = nn.Parameter(torch.zeros(1, 1, d))
            nn.init.trunc_normal_(self.cls_lm, std=0.02)
        self.blocks = nn.ModuleList(CrossFeatureBlock(d, cfg.num_heads, cfg.mlp_ratio, cfg.drop, cfg.token_norms)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d) if cfg.token_norms else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes)

    def train(self, mode: bool = True) -> "PCDA":
        super().train(mode)
        if self.landmark_trunk == "mobilefacenet" and hasattr(self, "landmarks"):
            self.landmarks.eval()  # frozen, BN statistics included
        return self

    def landmark_features(self, images: Tensor, landmarks: Tensor | None) -> Tensor:
        if self.landmark_trunk == "mobilefacenet":
            with torch.no_grad():
                return self.landmarks.features(images)
        if landmarks is None:
            raise ValueError("the Gaussian landmark trunk needs landmarks [B, P, 2] in face-crop pixels")
        return self.landmarks(landmarks)

    def attention_map(self, f_lm: Tensor) -> Tensor:
        """[B, 128, 14, 14] -> the dot-product attention weights H: [B, 1, 14, 14] (a reduction,
        broadcast over f_img's channels as the paper's repeat) or [B, 256, 14, 14] (the conv)."""
        r = self.cfg.reduction
        if r == "max":
            return f_lm.amax(dim=1, keepdim=True)
        if r == "sum":
            return f_lm.sum(dim=1, keepdim=True)
        if r == "abs_sum":
            return f_lm.abs().sum(dim=1, keepdim=True)
        return self.reduce_conv(f_lm)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> tuple[Tensor, Tensor]:
        f_img = self.image(images)
        cfg, b = self.cfg, images.shape[0]
        f_lm = self.landmark_features(images, landmarks) if cfg.dot_attention or cfg.cross_attention else None
        f_fusion = self.attention_map(f_lm) * f_img if cfg.dot_attention else f_img
        t_f = torch.cat([self.cls_f.expand(b, -1, -1), self.embed_f(f_fusion.flatten(2).transpose(1, 2))], dim=1)
        t_lm = None
        if cfg.cross_attention:
            t_lm = torch.cat([self.cls_lm.expand(b, -1, -1), self.embed_lm(f_lm.flatten(2).transpose(1, 2))], dim=1)
        for blk in self.blocks:
            t_f = blk(t_f, t_lm)
        feats = self.norm(t_f[:, 0])
        return self.head(feats), feats


@register_model("pcda", PCDAConfig, "PCDA: IR-50 + landmark trunk, dot-product and cross-feature attention",
                reference_params=34_200_000, paper="pcda-neaa", landmark_trunk="mobilefacenet",
                param_difference=-2 * 590_592,
                param_note="the paper counts a fusion-token query projection per block that cross-attention never uses")
def pcda(cfg: PCDAConfig) -> PCDA:
    return PCDA(cfg)


@register_model("pcda_gaussian", PCDAConfig, "PCDA with landmark Gaussian maps from fexa's tracks as landmark trunk",
                paper="pcda-neaa")
def pcda_gaussian(cfg: PCDAConfig) -> PCDA:
    return PCDA(cfg)
