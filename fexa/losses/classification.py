"""Losses for expression classification: cross-entropy variants, STT's compact softmax loss, and the
anchor / neutral-aware anchor (NeAA) feature losses of PCDA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def cross_entropy(logits: Tensor, target: Tensor, label_smoothing: float = 0.0) -> Tensor:
    return F.cross_entropy(logits.float(), target, label_smoothing=label_smoothing)


def focal_cross_entropy(logits: Tensor, target: Tensor, gamma: float = 2.0, alpha: Tensor | None = None) -> Tensor:
    """Focal loss (Lin et al.): -alpha_y (1 - p_y)^gamma log p_y, averaged."""
    logp = F.log_softmax(logits.float(), dim=1).gather(1, target.reshape(-1, 1)).squeeze(1)
    loss = -(1 - logp.exp()).pow(gamma) * logp
    if alpha is not None:
        loss = loss * alpha.to(loss)[target]
    return loss.mean()


def compact_softmax_loss(logits: Tensor, target: Tensor, beta: float = 0.2) -> Tensor:
    """STT's compact softmax cross-entropy: CE + beta/2 [KL(u'||p') + KL(p'||u')], where p' is the
    softmax over the C-1 non-target logits and u' the uniform distribution over them. It pushes the
    non-target probabilities to be equal, i.e. keeps the wrong classes compact."""
    logits = logits.float()
    c = logits.shape[1]
    if c < 3:
        raise ValueError("the compact softmax term needs at least 3 classes")
    mask = F.one_hot(target, c).bool()
    others = logits.masked_fill(mask, float("-inf"))
    logp = F.log_softmax(others, dim=1).masked_fill(mask, 0.0)  # log p' over the C-1 other classes
    p = logp.exp().masked_fill(mask, 0.0)
    log_u = -torch.log(torch.tensor(c - 1.0, device=logits.device))
    kl_up = (log_u.exp() * (log_u - logp)).masked_fill(mask, 0.0).sum(1)  # KL(u'||p')
    kl_pu = (p * (logp - log_u)).sum(1)  # KL(p'||u') = sum p' log((C-1) p')
    return F.cross_entropy(logits, target) + beta / 2 * (kl_up + kl_pu).mean()


def _anchors(features: Tensor, logits: Tensor, target: Tensor, classes: list[int]) -> dict[int, Tensor]:
    """Per class present in the batch, the feature of its most confident sample (lowest entropy)."""
    p = F.softmax(logits.detach().float(), dim=1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum(1)
    out = {}
    for c in classes:
        idx = torch.nonzero(target == c).flatten()
        if len(idx):
            out[c] = features[idx[entropy[idx].argmin()]]
    return out


def anchor_loss(features: Tensor, logits: Tensor, target: Tensor, exclude: int | None = None) -> Tensor:
    """Anchor loss (PCDA eq. 7): per class, the mean over its samples of MSE(f_i, f_anchor), summed
    over the classes in the batch (``exclude``: a class to leave out, e.g. neutral)."""
    classes = [int(c) for c in torch.unique(target) if int(c) != exclude]
    total = features.new_zeros(())
    for c, anchor in _anchors(features, logits, target, classes).items():
        f = features[target == c]
        total = total + ((f - anchor) ** 2).mean(dim=1).mean()
    return total


def neutral_loss(features: Tensor, target: Tensor, neutral: int) -> Tensor:
    """PCDA eq. 9: sum over ordered pairs i != j of neutral samples of MSE(f_i, f_j) / (N_n - 1)^2."""
    f = features[target == neutral]
    n = f.shape[0]
    if n < 2:
        return features.new_zeros(())
    d = ((f[:, None, :] - f[None, :, :]) ** 2).mean(-1)  # MSE of every pair (diagonal is 0)
    return d.sum() / (n - 1) ** 2


def neaa_loss(features: Tensor, logits: Tensor, target: Tensor, neutral: int) -> Tensor:
    """Neutral-aware anchor loss: anchor loss over the non-neutral classes + the neutral pair loss."""
    return anchor_loss(features, logits, target, exclude=neutral) + neutral_loss(features, target, neutral)


def pcda_loss(features: Tensor, logits: Tensor, target: Tensor, neutral: int, lam: float = 0.01) -> Tensor:
    """PCDA's total loss: CE + lambda * NeAA (lambda = 0.01)."""
    return F.cross_entropy(logits.float(), target) + lam * neaa_loss(features, logits, target, neutral)


# Index of the neutral class in each dataset's label order (PCDA/POSTER conventions).
NEUTRAL_INDEX = {"rafdb": 6, "affectnet7": 0, "ferplus": 0}
