"""QAFE-Net (Duan et al., 2024): RGB (Former-DFER) + landmark heatmap volume (SlowOnly) streams,
fused by cross-fusion blocks, scored by an MLP.

Cross-fusion block (dim 512, 8 heads): with x1 = RGB tokens and x2 = heatmap tokens,
x1' = x1 + CA(LN_q(x1), LN_kv(x2)); x1' += MLP(LN2(x1')); x2' = x2 + CA(LN_q(x2), LN_kv(x1)) (the
*old* x1); x2' += MLP(LN2(x2')). CA, the norms and the MLP are shared by both directions. A
subclip position embedding is added to the RGB tokens first (the paper; the released code adds it
to the heatmap tokens: ``spe_on="heatmap"``). After the blocks a Conv1d mixes the 2n tokens and the
head (512 -> 256 -> 128 -> 1 or classes) scores every token; the scores are averaged.

The reference defines one more LayerNorm that it never uses; it is left out here (1,024 parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fexa.models.blocks import CrossFusionBlock, RegressionHead
from fexa.models.former_dfer import FRAMES_PER_SUBCLIP, FormerDFER, FormerDFERConfig
from fexa.models.registry import register_model
from fexa.models.slowonly import SlowOnly, SlowOnlyConfig

FUSIONS = ("cross", "sum", "concat")
OUTPUTS = ("concat_conv1d", "concat", "rgb", "heatmap")


@dataclass(frozen=True)
class QAFENetConfig:
    num_subclips: int = 5  # T = 80 frames (UNBC-McMaster: 9 -> 144 frames)
    img_size: int = 224
    heatmap_channels: int = 3
    fusion: str = "cross"
    num_blocks: int = 3  # ablation: 1-5
    num_heads: int = 8
    output: str = "concat_conv1d"
    spe_on: str = "rgb"  # where the subclip position embedding goes: "rgb" (paper) or "heatmap" (code)
    num_classes: int = 0  # 0: regression (one score); > 0: classification logits

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.spe_on not in ("rgb", "heatmap"):
            raise ValueError(f"spe_on must be 'rgb' or 'heatmap', got {self.spe_on!r}")
        if self.fusion != "cross" and self.output in ("rgb", "heatmap"):
            raise ValueError(f"output {self.output!r} needs the two token streams of fusion='cross'")


class QAFENet(nn.Module):
    """forward(clip [B, n*16, 3, 224, 224], heatmaps [B, n*16, C, 56, 56]) -> [B] scores or [B, classes]."""

    def __init__(self, cfg: QAFENetConfig = QAFENetConfig()):
        super().__init__()
        self.cfg = cfg
        n, dim = cfg.num_subclips, 512
        self.rgb = FormerDFER(FormerDFERConfig(img_size=cfg.img_size))
        self.heatmap = SlowOnly(SlowOnlyConfig(in_channels=cfg.heatmap_channels))
        if cfg.fusion == "cross":
            self.subclip_pos = nn.Parameter(torch.randn(1, n, dim))
            self.blocks = nn.ModuleList(CrossFusionBlock(dim, cfg.num_heads, 4 * dim) for _ in range(cfg.num_blocks))
        tokens = n if cfg.fusion == "sum" or cfg.output in ("rgb", "heatmap") else 2 * n
        self.mix = nn.Conv1d(tokens, tokens, 1) if cfg.output == "concat_conv1d" else None
        self.head = RegressionHead((dim, 256, 128, cfg.num_classes or 1))

    def encode_heatmaps(self, heatmaps: Tensor) -> Tensor:
        """[B, n*16, C, H, W] -> [B, n, 512], one SlowOnly feature per 16-frame subclip."""
        b, t, c, h, w = heatmaps.shape
        n = t // FRAMES_PER_SUBCLIP
        x = heatmaps.reshape(b * n, FRAMES_PER_SUBCLIP, c, h, w).transpose(1, 2)  # [B*n, C, 16, H, W]
        return self.heatmap(x).reshape(b, n, -1)

    def fuse(self, ev: Tensor, eh: Tensor) -> Tensor:
        """RGB [B, n, 512] and heatmap [B, n, 512] features -> fused tokens [B, tokens, 512]."""
        if self.cfg.fusion == "sum":
            x = ev + eh
        elif self.cfg.fusion == "concat":
            x = torch.cat([ev, eh], dim=1)
        else:
            if self.cfg.spe_on == "rgb":
                ev = ev + self.subclip_pos
            else:
                eh = eh + self.subclip_pos
            for blk in self.blocks:
                ev, eh = blk(ev, eh)
            x = {"rgb": ev, "heatmap": eh}.get(self.cfg.output, None)
            if x is None:
                x = torch.cat([ev, eh], dim=1)
        return x if self.mix is None else self.mix(x)

    def forward(self, clip: Tensor, heatmaps: Tensor) -> Tensor:
        out = self.head(self.fuse(self.rgb.encode(clip), self.encode_heatmaps(heatmaps))).mean(dim=1)
        return out.squeeze(-1) if not self.cfg.num_classes else out


@register_model("qafe_net", QAFENetConfig, "QAFE-Net: Former-DFER + SlowOnly heatmaps + 3 cross-fusion blocks",
                reference_params=29_661_775, paper="qafe-net", param_difference=-1024,
                param_note="the reference's unused LayerNorm(512) is left out")
def qafe_net(cfg: QAFENetConfig) -> QAFENet:
    return QAFENet(cfg)
