"""TraMP-Former (Duan et al., 2025): landmark trajectories (SkateFormer) + RGB (Former-DFER),
fused by TraMP blocks in which the RGB feature queries the trajectory feature.

E_f = mean over subclips of Linear(512 -> 256)(Former-DFER features); E_p = SkateFormer(trajectories).
TraMP block (dim 256, 8 heads of 32, MLP 1024): E_f += CA(LN_q(E_f), LN_kv(E_p)); E_f += MLP(LN(E_f));
E_p is never updated. Head: 256 -> 128 -> 64 -> 1.

With a single key/value token the attention weights are all 1, so a block reduces to
E_f += W_o W_v LN(E_p) (+ MLP): the query and key weights receive no gradient. That is the
published design; the other fusions of the ablation are options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from fexa.models.blocks import CrossAttentionBlock, CrossFusionBlock, RegressionHead
from fexa.models.former_dfer import FormerDFER, FormerDFERConfig
from fexa.models.registry import register_model
from fexa.models.skateformer import SkateFormer, SkateFormerConfig

FUSIONS = ("tramp_rgb_query", "tramp_traj_query", "cross", "sum", "concat")
STREAMS = ("both", "rgb", "trajectory")


@dataclass(frozen=True)
class TraMPFormerConfig:
    traj_frames: int = 128  # T_p
    traj_channels: int = 5  # C_p
    img_size: int = 224
    num_subclips: int = 5
    fusion: str = "tramp_rgb_query"
    num_blocks: int = 3
    streams: str = "both"
    dim: int = 256
    num_heads: int = 8
    traj_encoder: dict = field(default_factory=dict)  # further SkateFormerConfig options (e.g. attn_drop)
    num_classes: int = 0  # 0: the regression MLP (one score); > 0: Table IV's single linear classification layer

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.streams not in STREAMS:
            raise ValueError(f"streams must be one of {STREAMS}, got {self.streams!r}")


class TraMPFormer(nn.Module):
    """forward(clip [B, n*16, 3, 224, 224] or None, traj [B, T_p, 63, C_p] or None, time_index [B, T_p]) -> [B] scores
    (or [B, classes] logits with ``num_classes``)."""

    def __init__(self, cfg: TraMPFormerConfig = TraMPFormerConfig()):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        use_rgb, use_traj = cfg.streams in ("both", "rgb"), cfg.streams in ("both", "trajectory")
        self.rgb = FormerDFER(FormerDFERConfig(img_size=cfg.img_size)) if use_rgb else None
        self.rgb_transform = nn.Linear(512, d) if use_rgb else None
        skate = SkateFormerConfig(in_channels=cfg.traj_channels, num_frames=cfg.traj_frames, **cfg.traj_encoder)
        self.trajectory = SkateFormer(skate) if use_traj else None
        if use_traj and skate.channels[-1] != d:
            raise ValueError(f"the trajectory encoder's last stage must have dim={d} channels, got {skate.channels[-1]}")
        self.blocks = None
        if cfg.streams == "both" and cfg.fusion in ("tramp_rgb_query", "tramp_traj_query"):
            self.blocks = nn.ModuleList(CrossAttentionBlock(d, cfg.num_heads, 1024) for _ in range(cfg.num_blocks))
        elif cfg.streams == "both" and cfg.fusion == "cross":
            self.blocks = nn.ModuleList(CrossFusionBlock(d, cfg.num_heads, 4 * d) for _ in range(cfg.num_blocks))
        head_in = 2 * d if cfg.streams == "both" and cfg.fusion == "concat" else d
        self.head = nn.Linear(head_in, cfg.num_classes) if cfg.num_classes else RegressionHead((head_in, 128, 64, 1))

    def encode_rgb(self, clip: Tensor) -> Tensor:
        return self.rgb_transform(self.rgb.encode(clip)).mean(dim=1)  # [B, 256]

    def forward(self, clip: Tensor | None, traj: Tensor | None, time_index: Tensor | None = None) -> Tensor:
        ef = self.encode_rgb(clip) if self.rgb is not None else None
        if self.trajectory is not None:
            if time_index is None:
                raise ValueError("the trajectory stream needs the time index (fexa.represent.track_trajectory returns it)")
            ep = self.trajectory(traj, time_index)
        if self.cfg.streams == "rgb":
            x = ef
        elif self.cfg.streams == "trajectory":
            x = ep
        elif self.cfg.fusion == "sum":
            x = ef + ep
        elif self.cfg.fusion == "concat":
            x = torch.cat([ef, ep], dim=-1)
        elif self.cfg.fusion == "cross":
            a, b = ef[:, None], ep[:, None]
            for blk in self.blocks:
                a, b = blk(a, b)
            x = torch.cat([a, b], dim=1)
        else:
            q, c = (ef, ep) if self.cfg.fusion == "tramp_rgb_query" else (ep, ef)
            q, c = q[:, None], c[:, None]
            for blk in self.blocks:
                q = blk(q, c)
            x = q[:, 0]
        out = self.head(x)
        out = out.mean(dim=1) if out.dim() == 3 else out
        return out if self.cfg.num_classes else out.squeeze(-1)


@register_model("tramp_former", TraMPFormerConfig, "TraMP-Former: SkateFormer trajectories + Former-DFER RGB, "
                "3 TraMP blocks", reference_params=25_168_930, paper="tramp-former")
def tramp_former(cfg: TraMPFormerConfig) -> TraMPFormer:
    return TraMPFormer(cfg)


@register_model("tramp_trajectory", TraMPFormerConfig, "TraMP-Former's trajectory stream alone (SkateFormer + head)",
                paper="tramp-former", streams="trajectory")
def tramp_trajectory(cfg: TraMPFormerConfig) -> TraMPFormer:
    return TraMPFormer(cfg)
