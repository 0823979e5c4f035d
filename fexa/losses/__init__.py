"""Training losses of the five papers."""

from fexa.losses.classification import (
    NEUTRAL_INDEX,
    anchor_loss,
    compact_softmax_loss,
    cross_entropy,
    focal_cross_entropy,
    neaa_loss,
    neutral_loss,
    pcda_loss,
)
from fexa.losses.regression import BMCLoss, GAILoss, bmc_loss, focal_l1, focal_mse, gai_loss, mse

__all__ = [
    "NEUTRAL_INDEX", "BMCLoss", "GAILoss", "anchor_loss", "bmc_loss", "compact_softmax_loss", "cross_entropy",
    "focal_cross_entropy", "focal_l1", "focal_mse", "gai_loss", "mse", "neaa_loss", "neutral_loss", "pcda_loss",
]
