"""Every loss against values computed by hand or by an independent formula."""

import math

import numpy as np
import pytest
import torch

from fexa.losses import (BMCLoss, GAILoss, anchor_loss, bmc_loss, compact_softmax_loss, focal_cross_entropy,
                         focal_l1, focal_mse, gai_loss, neaa_loss, neutral_loss, pcda_loss)


def test_bmc_by_hand_and_its_gradient():
    pred = torch.tensor([0.0, 1.0], requires_grad=True)
    target = torch.tensor([0.0, 2.0])
    loss = bmc_loss(pred, target, 1.0)
    # logits row 0: [0, -2]; row 1: [-0.5, -0.5]; CE targets (0, 1); x 2 sigma^2 = 2
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)) + math.log(2), rel=1e-6)
    loss.backward()
    # loss = CE_0 + CE_1 with CE_i = -l_ii + logsumexp_j l_ij, l_ij = -(p_i - y_j)^2 / 2, so
    # dCE_i/dp_i = (p_i - y_i) - sum_j w_ij (p_i - y_j), w_i. = softmax(l_i.)
    w01 = 1 / (1 + math.exp(2))  # weight of candidate y_1 = 2 in row 0
    assert pred.grad[0].item() == pytest.approx(0 - w01 * (0 - 2), rel=1e-5)
    assert pred.grad[1].item() == pytest.approx((1 - 2) - 0.5 * (1 - 0) - 0.5 * (1 - 2), abs=1e-6)


def test_bmc_prediction_comes_first():
    """Eq. 7 with tau = 2 sigma^2 and Y = the batch's labels: row i of the logits is prediction i
    against every label y_j, the target is y_i. Squared distances (p_i - y_j)^2 for p = (0, 3, 1),
    y = (1, 2, 2.5), by hand: row 0 (1, 4, 6.25), row 1 (4, 1, 0.25), row 2 (0, 1, 2.25). With the
    arguments swapped (TraMP-Former's criterion(label, pred)) the softmax runs over the columns:
    a different number. Mutant killed: fexa/losses/regression.py bmc_loss with ``pred`` and
    ``target`` exchanged at its start (or the logits transposed)."""
    p, y = torch.tensor([0.0, 3.0, 1.0]), torch.tensor([1.0, 2.0, 2.5])
    d2 = np.array([[1.0, 4.0, 6.25], [4.0, 1.0, 0.25], [0.0, 1.0, 2.25]])

    def by_hand(d2: np.ndarray, noise_var: float) -> float:
        tau = 2 * noise_var
        ce = [d2[i, i] / tau + math.log(sum(math.exp(-x / tau) for x in d2[i])) for i in range(3)]
        return tau * sum(ce) / 3

    assert by_hand(d2, 1.0) == pytest.approx(2.018133, abs=1e-6)  # (0.258951 + 0.985116 + 1.783133) x 2 / 3
    assert by_hand(d2.T, 1.0) == pytest.approx(2.135257, abs=1e-6)  # (1.054957 + 0.798916 + 1.349012) x 2 / 3
    assert bmc_loss(p, y, 1.0).item() == pytest.approx(by_hand(d2, 1.0), rel=1e-6)
    assert bmc_loss(y, p, 1.0).item() == pytest.approx(by_hand(d2.T, 1.0), rel=1e-6)
    assert bmc_loss(p, y, 4.0).item() == pytest.approx(by_hand(d2, 4.0), rel=1e-6)  # sigma = 2: tau = 8
    assert BMCLoss(init_noise_sigma=2.0)(p, y).item() == pytest.approx(by_hand(d2, 4.0), rel=1e-6)


def test_bmc_batch_of_one():
    with pytest.raises(ValueError, match="batch of one"):
        BMCLoss()(torch.tensor([1.0]), torch.tensor([2.0]))
    loss = BMCLoss(label_bank=torch.tensor([0.0, 4.0]))(torch.tensor([1.0]), torch.tensor([2.0]))
    logits = np.array([-(1 - 2) ** 2, -(1 - 0) ** 2, -(1 - 4) ** 2]) / 2
    assert loss.item() == pytest.approx(2 * (np.log(np.exp(logits).sum()) - logits[0]), rel=1e-6)
    assert loss.item() > 0


def test_bmc_sigma_learnable_or_fixed():
    learn = BMCLoss(init_noise_sigma=1.0, learnable=True)
    assert [n for n, _ in learn.named_parameters()] == ["noise_sigma"]
    assert list(BMCLoss().parameters()) == []
    loss = learn(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.5, 1.0, 3.0]))
    loss.backward()
    assert learn.noise_sigma.grad is not None and learn.noise_sigma.grad.item() != 0


def test_gai_single_component_by_hand():
    pred, y = torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.0])
    mu, v, w, s2 = 2.0, 0.5, 1.0, 1.0
    loss = gai_loss(pred, y, torch.tensor([mu]), torch.tensor([v]), torch.tensor([w]), s2)
    p, t = pred.numpy(), y.numpy()
    per = (p - t) ** 2 / (2 * s2) + 0.5 * math.log(s2) + (-0.5 * np.log(v + s2) - (p - mu) ** 2 / (2 * (v + s2)))
    assert loss.item() == pytest.approx(float(np.mean(per * 2 * s2)), rel=1e-6)


def test_gai_fits_a_gmm_on_the_labels():
    labels = np.r_[np.zeros(50), np.full(30, 4.0)] + np.random.default_rng(0).normal(0, 0.1, 80)
    g = GAILoss(labels)
    assert sorted(g.means.tolist()) == pytest.approx([0, 4], abs=0.1)
    assert sorted(g.weights.tolist()) == pytest.approx([0.375, 0.625], abs=0.01)
    assert torch.isfinite(g(torch.tensor([0.1, 3.0]), torch.tensor([0.0, 4.0])))


def test_focal_regression_losses():
    w = 2 / (1 + math.exp(-0.2)) - 1  # 2 sigmoid(0.2 * 1) - 1
    assert focal_mse(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(w / 2, rel=1e-6)
    w3 = 2 / (1 + math.exp(-0.6)) - 1
    assert focal_l1(torch.tensor([3.0]), torch.tensor([0.0])).item() == pytest.approx(3 * w3, rel=1e-6)


def test_focal_cross_entropy():
    logits, y = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    p = np.exp(2) / (np.exp(2) + 1 + np.exp(-1))
    assert focal_cross_entropy(logits, y, gamma=2).item() == pytest.approx(-(1 - p) ** 2 * np.log(p), rel=1e-6)
    assert focal_cross_entropy(logits, y, gamma=0).item() == pytest.approx(-np.log(p), rel=1e-6)


def test_compact_softmax_by_hand():
    logits, y = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0])
    ce = -np.log(np.exp(1) / np.exp([1, 2, 3]).sum())
    p = np.exp([2, 3]) / np.exp([2, 3]).sum()
    u = np.array([0.5, 0.5])
    kl = (u * np.log(u / p)).sum() + (p * np.log(2 * p)).sum()
    assert compact_softmax_loss(logits, y, beta=0.2).item() == pytest.approx(ce + 0.1 * kl, rel=1e-6)
    assert compact_softmax_loss(logits, y, beta=0.0).item() == pytest.approx(ce, rel=1e-6)
    flat = torch.tensor([[5.0, 1.0, 1.0, 1.0]])  # equal non-target logits: no compactness penalty
    assert compact_softmax_loss(flat, y, 0.2).item() == pytest.approx(torch.nn.functional.cross_entropy(flat, y).item())


def test_anchor_and_neaa_by_hand():
    f = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [1.0, 1.0], [3.0, 1.0], [1.0, 3.0]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    logits = torch.tensor([[0.0, 0.0], [5.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.5], [0.0, 9.0]])
    # class 0 anchor: sample 1 (most confident); MSEs to it: 2, 0, 10 -> mean 4
    # class 1 anchor: sample 5; MSEs: 2, 4, 0 -> mean 2
    assert anchor_loss(f, logits, y).item() == pytest.approx(4 + 2, rel=1e-6)
    assert anchor_loss(f, logits, y, exclude=1).item() == pytest.approx(4, rel=1e-6)
    # neutral = class 1: pairs (3,4): 2, (3,5): 2, (4,5): 4 -> ordered-pair sum 16 / (3-1)^2 = 4
    assert neutral_loss(f, y, neutral=1).item() == pytest.approx(4, rel=1e-6)
    assert neaa_loss(f, logits, y, neutral=1).item() == pytest.approx(8, rel=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, y).item()
    assert pcda_loss(f, logits, y, neutral=1).item() == pytest.approx(ce + 0.08, rel=1e-6)
    assert neutral_loss(f[:1], y[:1], neutral=0).item() == 0.0


def test_label_smoothing_cross_entropy_by_hand():
    from fexa.losses import cross_entropy

    logits, y = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    lp = torch.log_softmax(logits, 1)[0].numpy()
    expect = 0.8 * -lp[0] + 0.2 * np.mean(-lp)  # (1 - eps) NLL + eps * mean over classes
    assert cross_entropy(logits, y, label_smoothing=0.2).item() == pytest.approx(expect, rel=1e-6)
