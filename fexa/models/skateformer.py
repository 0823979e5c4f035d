"""SkateFormer (Do et al., ECCV 2024) with facial partitions: TraMP-Former's trajectory encoder.

Input: landmark trajectories [B, T, P, C] (T = 64/128/256 frames, P = 63 points = 7 regions x 9,
C = 5 for x, y, R, G, B) and the normalised time index [B, T]. A 1x1-conv stem lifts C to 128
channels; a skate-embedding (sinusoid of the time index times a learnable point embedding) is added;
four stages of blocks (channels 128, 256, 256, 256; stages 2-4 halve T with a strided 7x1 conv) follow.

Each block: LN -> Linear C -> 2C; C/2 channels go to convolutions (a learnable point-mixing G-Conv
per channel group and a grouped temporal 7x1 T-Conv), 3C/2 channels to four partition attentions
(q, k, v of C/8 each), 4 heads apiece:
  type 1: L = 8 contiguous frames x the 9 points of one region          (local motion, neighbours)
  type 2: L = 8 contiguous frames x one point from each of the 7 regions (local motion, distant)
  type 3: G frames at stride T/G x the 9 points of one region           (global motion, neighbours)
  type 4: G frames at stride T/G x one point from each region           (global motion, distant)
with G = T_p / L, the paper's T_p = G x L (8, 16, 32 for T_p = 64, 128, 256), kept through the stages as
SkateFormer keeps its partition sizes (the stride T/G shrinks as T halves). The results are concatenated, projected, added back (drop-path), then
LN -> MLP (ratio 2) -> residual. Relative time biases per partition (types 2/4 per point pair
too); the global types' tables are sized for 256 frames (63 offsets) and their first 2G - 1 rows used,
as in the reference weights. SkateFormer's own code tiles the type 1/3 bias so that it does not
follow the tokens' time order; ``bias_layout="reference"`` reproduces that for its weights, the
default indexes the bias by true time offset. Attention is scaled by heads^-0.5 (SkateFormer's choice, kept for
weight compatibility). Output: the mean over time and points, [B, 256].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from fexa.models.registry import register_model


@dataclass(frozen=True)
class SkateFormerConfig:
    in_channels: int = 5  # 5 (x, y, RGB), 2 (x, y) or 3 (RGB)
    num_frames: int = 128  # T_p: 64, 128 or 256
    num_regions: int = 7
    points_per_region: int = 9
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 2, 2)
    channels: tuple[int, ...] = (128, 256, 256, 256)
    num_heads: int = 32  # over the block: 8 go to the G-Conv groups, 4 to each partition attention
    local_frames: int = 8  # L
    max_frames: int = 256  # sizes the global partitions' bias tables
    kernel_size: int = 7
    mlp_ratio: float = 2.0
    attn_drop: float = 0.5
    drop_path: float = 0.2
    num_classes: int = 0  # > 0 adds a linear head (e.g. DFEW pre-training)
    # Types 1/3 relative time bias: "time" indexes it by the tokens' real time offset; "reference"
    # reproduces SkateFormer's tiling (token r gets the bias row of frame r mod L, not r // points),
    # which the published weights were trained with.
    bias_layout: str = "time"

    @property
    def global_frames(self) -> int:
        """G = T_p / L: the frames of a global partition (the paper's T_p = G x L)."""
        return self.num_frames // self.local_frames

    def __post_init__(self) -> None:
        if self.bias_layout not in ("time", "reference"):
            raise ValueError(f"bias_layout must be 'time' or 'reference', got {self.bias_layout!r}")
        if self.num_frames % (self.local_frames * 2 ** (len(self.depths) - 1)):
            raise ValueError(f"num_frames must be a multiple of {self.local_frames * 2 ** (len(self.depths) - 1)}")
        if self.local_frames % 2 ** (len(self.depths) - 1):  # the last stage's T / G = L / 2^(stages - 1) frames
            raise ValueError(f"local_frames ({self.local_frames}) must be a multiple of 2^(stages - 1) = "
                             f"{2 ** (len(self.depths) - 1)}, for the global partitions' stride at the last stage")
        if self.num_frames > self.max_frames:
            raise ValueError(f"num_frames {self.num_frames} exceeds max_frames {self.max_frames}, which sizes the "
                             "global partitions' bias tables")


def _relative_index(p: int) -> Tensor:
    """[p, p] index of the time offset t1 - t2 into a table of 2p - 1 rows."""
    t = torch.arange(p)
    return t[:, None] - t[None, :] + p - 1


class PartitionAttention(nn.Module):
    """Self-attention inside windows of (time tokens x point tokens), with a relative time bias.

    ``per_point_bias``: the bias also depends on the pair of point slots (types 2 and 4)."""

    def __init__(self, heads: int, time_tokens: int, point_tokens: int, table_frames: int, per_point_bias: bool,
                 attn_drop: float, reference_layout: bool = False):
        super().__init__()
        self.reference_layout = reference_layout
        self.heads, self.tt, self.pt = heads, time_tokens, point_tokens
        self.scale = heads**-0.5
        rows = 2 * table_frames - 1
        shape = (rows, point_tokens, point_tokens, heads) if per_point_bias else (rows, heads)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(shape))
        trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", _relative_index(time_tokens), persistent=False)
        self.per_point = per_point_bias
        self.attn_drop = nn.Dropout(attn_drop)

    def bias(self) -> Tensor:
        """[heads, N, N] with N = time_tokens * point_tokens, tokens ordered time-major."""
        n = self.tt * self.pt
        table = self.relative_position_bias_table[: 2 * self.tt - 1]
        b = table[self.relative_position_index]  # [tt, tt, (pt, pt,) heads]
        if self.per_point:
            b = b.permute(0, 2, 1, 3, 4)  # [t1, p1, t2, p2, h]
        elif self.reference_layout:
            b = b.repeat(self.pt, self.pt, 1)  # row r holds frame r mod tt (SkateFormer's tiling)
        else:
            b = b[:, None, :, None, :].expand(self.tt, self.pt, self.tt, self.pt, self.heads)
        return b.reshape(n, n, self.heads).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        """[W, N, 3c] (q, k, v stacked on channels) -> [W, N, c]."""
        w, n, _ = x.shape
        q, k, v = x.reshape(w, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.bias()
        attn = self.attn_drop(attn.softmax(dim=-1))
        return (attn @ v).transpose(1, 2).reshape(w, n, -1)


def _partition(x: Tensor, time_split: tuple[int, int], point_split: tuple[int, int], global_time: bool,
               across_points: bool) -> tuple[Tensor, tuple]:
    """[B, C, T, V] -> windows [B * windows, time_tokens * point_tokens, C].

    Time is split T = a x b: local windows take (window, token) = (a, b); global ones (token, window).
    Points V = regions x 9: same-region windows take (window, token) = (regions, 9); across-region
    ones V = 7 x 9 read as (token, window)."""
    b, c, t, v = x.shape
    x = x.reshape(b, c, *time_split, *point_split)  # [B, C, t0, t1, v0, v1]
    tw, tt = (3, 2) if global_time else (2, 3)
    pw, pt = (5, 4) if across_points else (4, 5)
    order = (0, tw, pw, tt, pt, 1)
    y = x.permute(*order)
    shape = y.shape
    return y.reshape(-1, shape[3] * shape[4], c), (order, shape, (b, c, t, v))


def _reverse(y: Tensor, info: tuple) -> Tensor:
    order, shape, (b, c, t, v) = info
    y = y.reshape(*shape[:5], -1)
    inverse = [order.index(i) for i in range(6)]
    return y.permute(*inverse).reshape(b, -1, t, v)


class SkateFormerBlock(nn.Module):
    def __init__(self, dim: int, cfg: SkateFormerConfig, drop_path: float):
        super().__init__()
        v = cfg.num_regions * cfg.points_per_region
        self.cfg = cfg
        groups = cfg.num_heads // 4
        self.norm_1 = nn.LayerNorm(dim)
        self.mapping = nn.Linear(dim, 2 * dim)
        self.gconv = nn.Parameter(torch.zeros(groups, v, v))
        trunc_normal_(self.gconv, std=0.02)
        self.tconv = nn.Conv2d(dim // 4, dim // 4, (cfg.kernel_size, 1), padding=((cfg.kernel_size - 1) // 2, 0),
                               groups=groups)
        heads = cfg.num_heads // 8
        lf, gf, gmax = cfg.local_frames, cfg.global_frames, cfg.max_frames // cfg.local_frames
        m, n, ref = cfg.num_regions, cfg.points_per_region, cfg.bias_layout == "reference"
        self.attention = nn.ModuleList([
            PartitionAttention(heads, lf, n, lf, False, cfg.attn_drop, ref),  # type 1
            PartitionAttention(heads, lf, m, lf, True, cfg.attn_drop),  # type 2
            PartitionAttention(heads, gf, n, gmax, False, cfg.attn_drop, ref),  # type 3
            PartitionAttention(heads, gf, m, gmax, True, cfg.attn_drop),  # type 4
        ])
        self.proj = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm_2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(cfg.mlp_ratio * dim))

    def _windows(self, t: int) -> list[tuple]:
        cfg = self.cfg
        lf, gf, m, n = cfg.local_frames, cfg.global_frames, cfg.num_regions, cfg.points_per_region
        local, glob = (t // lf, lf), (gf, t // gf)
        regions, across = (m, n), (m, n)
        return [(local, regions, False, False), (local, across, False, True),
                (glob, regions, True, False), (glob, across, True, True)]

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, v = x.shape
        skip = x.permute(0, 2, 3, 1)  # [B, T, V, C]
        f = self.mapping(self.norm_1(skip)).permute(0, 3, 1, 2)  # [B, 2C, T, V]
        f_conv, f_attn = torch.split(f, [c // 2, 3 * c // 2], dim=1)
        f_g, f_t = torch.chunk(f_conv, 2, dim=1)
        g = self.gconv.shape[0]
        gconv = torch.einsum("bgctu,gvu->bgctv", f_g.reshape(b, g, -1, t, v), self.gconv).reshape(b, -1, t, v)
        y = [gconv, self.tconv(f_t)]
        for part, attn, (ts, ps, glob, across) in zip(torch.chunk(f_attn, 4, dim=1), self.attention, self._windows(t)):
            windows, info = _partition(part, ts, ps, glob, across)
            y.append(_reverse(attn(windows), info))
        out = skip + self.drop_path(self.proj(torch.cat(y, dim=1).permute(0, 2, 3, 1)))
        out = out + self.drop_path(self.mlp(self.norm_2(out)))
        return out.permute(0, 3, 1, 2)


class Downsample(nn.Module):
    """Strided temporal conv + BN between stages (halves T)."""

    def __init__(self, cin: int, cout: int, kernel: int = 7):
        super().__init__()
        self.reduction = nn.Conv2d(cin, cout, (kernel, 1), stride=(2, 1), padding=(kernel // 2, 0))
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.reduction(x))


class SkateFormer(nn.Module):
    """forward(trajectories [B, T, P, C], time_index [B, T]) -> [B, 256] (or logits with num_classes)."""

    def __init__(self, cfg: SkateFormerConfig = SkateFormerConfig()):
        super().__init__()
        self.cfg = cfg
        c = cfg.in_channels
        self.stem = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.GELU(), nn.Conv2d(2 * c, 3 * c, 1), nn.GELU(),
                                  nn.Conv2d(3 * c, cfg.embed_dim, 1))
        v = cfg.num_regions * cfg.points_per_region
        self.joint_embedding = nn.Parameter(torch.zeros(cfg.embed_dim, v))
        trunc_normal_(self.joint_embedding, std=0.02)
        rates = torch.linspace(0, cfg.drop_path, sum(cfg.depths), device="cpu").tolist()  # also under a meta device
        stages, cin, k = [], cfg.embed_dim, 0
        for i, (depth, dim) in enumerate(zip(cfg.depths, cfg.channels)):
            layers: list[nn.Module] = [Downsample(cin, dim, cfg.kernel_size)] if i > 0 else []
            for _ in range(depth):
                layers.append(SkateFormerBlock(dim, cfg, rates[k]))
                k += 1
            stages.append(nn.Sequential(*layers))
            cin = dim
        self.stages = nn.Sequential(*stages)
        self.out_dim = cin
        self.head = nn.Linear(cin, cfg.num_classes) if cfg.num_classes else None

    def skate_embedding(self, time_index: Tensor) -> Tensor:
        """[B, T] -> [B, C, T, V]: sinusoid of the time index times the point embedding."""
        d = self.cfg.embed_dim
        div = torch.exp(torch.arange(0, d, 2, device=time_index.device, dtype=torch.float32) * (-math.log(1e4) / d))
        arg = time_index.float()[..., None] * div
        te = torch.stack([arg.sin(), arg.cos()], dim=-1).flatten(-2)  # interleaved: even sin, odd cos
        return torch.einsum("btc,cv->bctv", te, self.joint_embedding)

    def forward(self, traj: Tensor, time_index: Tensor) -> Tensor:
        b, t, v, c = traj.shape
        if (t, v, c) != (self.cfg.num_frames, self.joint_embedding.shape[1], self.cfg.in_channels):
            raise ValueError(f"SkateFormer built for [B, {self.cfg.num_frames}, {self.joint_embedding.shape[1]}, "
                             f"{self.cfg.in_channels}] trajectories, got {list(traj.shape)}")
        x = self.stem(traj.permute(0, 3, 1, 2)) + self.skate_embedding(time_index)
        x = self.stages(x).mean(dim=(2, 3))
        return x if self.head is None else self.head(x)


@register_model("skateformer_face", SkateFormerConfig, "SkateFormer trajectory encoder, 7 regions x 9 points -> 256",
                reference_params=4_561_889, paper="tramp-former")
def skateformer_face(cfg: SkateFormerConfig) -> SkateFormer:
    return SkateFormer(cfg)
