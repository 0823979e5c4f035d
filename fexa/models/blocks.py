"""Attention blocks the papers share that timm does not provide: cross-attention with its own norms."""

from __future__ import annotations

import torch.nn.functional as F
from timm.layers import Mlp
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Multi-head attention of queries ``x`` over ``context``: q/k/v without bias, output
    projection with bias (the layout of QAFE-Net's, TraMP-Former's and PCDA's fusion blocks)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int | None = None, attn_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        inner = self.num_heads * self.head_dim
        self.q = nn.Linear(dim, inner, bias=False)
        self.k = nn.Linear(dim, inner, bias=False)
        self.v = nn.Linear(dim, inner, bias=False)
        self.proj = nn.Linear(inner, dim)
        self.attn_drop = attn_drop

    def _heads(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        q, k, v = self._heads(self.q(x)), self._heads(self.k(context)), self._heads(self.v(context))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))


class CrossAttentionBlock(nn.Module):
    """query += CA(LN_q(query), LN_kv(context)); query += MLP(LN(query)) (TraMP-Former's TraMP block,
    one direction of QAFE-Net's cross fusion)."""

    def __init__(self, dim: int, heads: int, mlp: int):
        super().__init__()
        self.norm_q, self.norm_kv, self.norm = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads)
        self.mlp = Mlp(dim, mlp)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        query = query + self.attn(self.norm_q(query), self.norm_kv(context))
        return query + self.mlp(self.norm(query))


class CrossFusionBlock(CrossAttentionBlock):
    """QAFE-Net's cross fusion: each stream attends to the other through the same weights."""

    def forward(self, x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
        return super().forward(x1, x2), super().forward(x2, x1)


class RegressionHead(nn.Sequential):
    """MLP with ReLU between layers, e.g. 512 -> 256 -> 128 -> 1 (the papers' score heads)."""

    def __init__(self, dims: tuple[int, ...]):
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
