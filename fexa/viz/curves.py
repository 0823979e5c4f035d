"""Training curves: loss, learning rate and the selection metric per epoch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fexa.viz.pyplot import pyplot


def plot_training_curves(history: pd.DataFrame, out: str | Path, metric: str) -> Path:
    fig, axes = pyplot().subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(history["epoch"], history["train_loss"], "-o", ms=3)
    axes[0].set_title("training loss")
    axes[1].plot(history["epoch"], history["lr"])
    axes[1].set_title("learning rate")
    for split, style in (("val", "-s"), ("test", "-o")):
        col = f"{split}_{metric}"
        if col in history:
            h = history.dropna(subset=[col])
            axes[2].plot(h["epoch"], h[col], style, ms=3, label=split)
    axes[2].set_title(metric)
    if axes[2].get_legend_handles_labels()[0]:  # no evaluated epoch yet: no legend (matplotlib would warn)
        axes[2].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    pyplot().close(fig)
    return Path(out)
