"""Losses for severity / intensity regression: Balanced MSE (BMC, GAI), MSE and the DIR focal losses.

Balanced MSE (Ren et al., CVPR 2022) as used by QAFE-Net and TraMP-Former: the prediction comes
first, and the candidate set of BMC is the labels of the batch (not the 5 severity levels).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def bmc_loss(pred: Tensor, target: Tensor, noise_var: Tensor | float, candidates: Tensor | None = None) -> Tensor:
    """Batch-based Monte-Carlo Balanced MSE.

    logits[i, j] = -(pred_i - y_j)^2 / (2 sigma^2) over candidate labels y_j (by default the
    batch's own targets, so target i is candidate i); loss = CE(logits, index of target i) * 2 sigma^2,
    the scale detached. With one sample and no other candidates the loss is identically zero, so
    that case is refused: pass ``candidates`` (e.g. the training labels) instead."""
    pred, target = pred.reshape(-1, 1).float(), target.reshape(-1).float()
    if pred.shape[0] != target.shape[0]:
        raise ValueError(f"BMC: {pred.shape[0]} predictions but {target.shape[0]} targets")
    noise_var = torch.as_tensor(noise_var, dtype=pred.dtype, device=pred.device)
    if candidates is None:
        if pred.shape[0] < 2:
            raise ValueError("BMC with a batch of one sample is identically zero: pass candidates "
                             "(e.g. BMCLoss(label_bank=...)) or use batches of two or more")
        cands, index = target, torch.arange(pred.shape[0], device=pred.device)
    else:
        cands = torch.cat([target, candidates.reshape(-1).to(target)])
        index = torch.arange(pred.shape[0], device=pred.device)
    logits = -(pred - cands.reshape(1, -1)).pow(2) / (2 * noise_var)
    return F.cross_entropy(logits, index) * (2 * noise_var).detach()


class BMCLoss(nn.Module):
    """BMC with sigma fixed (the papers: sigma = 1, so tau = 2) or learnable (BalancedMSE's default:
    give ``noise_sigma`` its own optimiser group). ``label_bank``: labels used as extra candidates
    when a batch has one sample."""

    def __init__(self, init_noise_sigma: float = 1.0, learnable: bool = False, label_bank: Tensor | None = None):
        super().__init__()
        sigma = torch.tensor(float(init_noise_sigma))
        if learnable:
            self.noise_sigma = nn.Parameter(sigma)
        else:
            self.register_buffer("noise_sigma", sigma)
        self.register_buffer("label_bank", None if label_bank is None else torch.as_tensor(label_bank).float().reshape(-1))

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        extra = self.label_bank if pred.numel() == 1 else None  # without a bank, bmc_loss explains the error
        return bmc_loss(pred, target, self.noise_sigma**2, extra)


def gai_loss(pred: Tensor, target: Tensor, means: Tensor, variances: Tensor, weights: Tensor,
             noise_var: Tensor | float) -> Tensor:
    """GMM-based analytical integration Balanced MSE for a 1-D label GMM (means, variances, weights [K])."""
    pred, target = pred.reshape(-1, 1).float(), target.reshape(-1, 1).float()
    noise_var = torch.as_tensor(noise_var, dtype=pred.dtype, device=pred.device)
    mse = (pred - target).pow(2) / (2 * noise_var) + 0.5 * noise_var.log()
    total_var = variances.reshape(1, -1) + noise_var
    balancing = (-0.5 * total_var.log() - (pred - means.reshape(1, -1)).pow(2) / (2 * total_var)
                 + weights.reshape(1, -1).log())
    loss = (mse + torch.logsumexp(balancing, dim=1, keepdim=True)) * (2 * noise_var).detach()
    return loss.mean()


class GAILoss(nn.Module):
    """GAI with a K-component GMM fitted (scikit-learn, random_state 0) on the training labels."""

    def __init__(self, train_labels: np.ndarray, components: int = 2, init_noise_sigma: float = 1.0,
                 learnable: bool = False, seed: int = 0):
        super().__init__()
        from sklearn.mixture import GaussianMixture

        y = np.asarray(train_labels, np.float64).reshape(-1, 1)
        if len(y) < components:
            raise ValueError(f"GAI needs at least {components} training labels to fit its GMM, got {len(y)}")
        gmm = GaussianMixture(components, random_state=seed).fit(y)
        self.register_buffer("means", torch.tensor(gmm.means_.ravel(), dtype=torch.float32))
        self.register_buffer("variances", torch.tensor(gmm.covariances_.ravel(), dtype=torch.float32))
        self.register_buffer("weights", torch.tensor(gmm.weights_.ravel(), dtype=torch.float32))
        sigma = torch.tensor(float(init_noise_sigma))
        if learnable:
            self.noise_sigma = nn.Parameter(sigma)
        else:
            self.register_buffer("noise_sigma", sigma)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return gai_loss(pred, target, self.means, self.variances, self.weights, self.noise_sigma**2)


def focal_mse(pred: Tensor, target: Tensor, beta: float = 0.2, gamma: float = 1.0) -> Tensor:
    """DIR focal-R MSE: e^2 * (2 sigmoid(beta |e|) - 1)^gamma, averaged."""
    e = (pred.reshape(-1) - target.reshape(-1)).float()
    return (e.pow(2) * (2 * torch.sigmoid(beta * e.abs()) - 1).pow(gamma)).mean()


def focal_l1(pred: Tensor, target: Tensor, beta: float = 0.2, gamma: float = 1.0) -> Tensor:
    """DIR focal-R L1: |e| * (2 sigmoid(beta |e|) - 1)^gamma, averaged."""
    e = (pred.reshape(-1) - target.reshape(-1)).float()
    return (e.abs() * (2 * torch.sigmoid(beta * e.abs()) - 1).pow(gamma)).mean()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(pred.reshape(-1).float(), target.reshape(-1).float())
