"""PNG sheets of a track: heatmap strip and trajectory plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fexa.analysis.measures import region_displacement
from fexa.face.landmarks import REGION_COLORS, get_layout, get_scheme
from fexa.io.trackfile import TrackData
from fexa.viz.pyplot import pyplot


def _rgb01(color: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in color)


def pick_frames(track: TrackData, n: int) -> np.ndarray:
    """Up to ``n`` usable frames spread evenly over the clip."""
    usable = np.flatnonzero(track.usable)
    if len(usable) <= n:
        return usable
    return usable[np.linspace(0, len(usable) - 1, n).round().astype(int)]


def plot_heatmap_strip(track: TrackData, crops: np.ndarray | None, out: str | Path, n: int = 8,
                       size: int = 64) -> Path:
    """Rows: crop with heatmap points, the heatmap (jet), the heatmap-weighted crop (paper input)."""
    from fexa.represent import HeatmapConfig, track_heatmaps  # torch-based: not loaded by fexa analyze

    idx = pick_frames(track, n)
    if len(idx) == 0:
        raise ValueError("no usable frame to show")
    gray = track_heatmaps(track, HeatmapConfig(mode="gray", out_size=size), frames=idx)[:, 0]
    rows = 2 if crops is None else 3
    fig, axes = pyplot().subplots(rows, len(idx), figsize=(1.6 * len(idx), 1.7 * rows), squeeze=False)
    scheme = get_scheme("heatmap73")
    pts = scheme.select(track.points_crop[idx], track.layout)
    colors = [_rgb01(REGION_COLORS[scheme.region_names[r]]) for r in scheme.region_of_point]
    for j, t in enumerate(idx):
        ax = axes[0, j]
        if crops is not None:
            ax.imshow(crops[t])
        else:
            ax.set_xlim(0, track.crop_size)
            ax.set_ylim(track.crop_size, 0)
            ax.set_aspect("equal")
        ax.scatter(pts[j, :, 0], pts[j, :, 1], s=2, c=colors)
        ax.set_title(f"#{t}  {track.times[t]:.2f}s", fontsize=7)
        axes[1, j].imshow(gray[j], cmap="jet", vmin=0, vmax=1)
        if crops is not None:
            weighted = track_heatmaps(track, HeatmapConfig(mode="rgb_weighted", out_size=size), crops, frames=[t])[0]
            axes[2, j].imshow(weighted.transpose(1, 2, 0))
    labels = ["crop + points", "heatmap", "heatmap x RGB"]
    for r in range(rows):
        axes[r, 0].set_ylabel(labels[r], fontsize=7)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Landmark heatmaps ({scheme.num_points} points, sigma 1, {size}x{size})", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
    return Path(out)


def plot_trajectories(track: TrackData, out: str | Path) -> Path:
    """Left: 2D paths of the 63 trajectory points (relative to the first frame's nose tip).
    Right: per-region displacement over time, with lost and filled frames shaded."""
    scheme = get_scheme("traj63")
    use = track.usable
    if not use.any():
        raise ValueError("no usable frame to show")
    pts = scheme.select(track.points_crop, track.layout)
    nose0 = track.points_crop[np.flatnonzero(use)[0], get_layout(track.layout).nose_tip, :2]
    rel = pts - nose0
    fig, (ax0, ax1) = pyplot().subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1.5]})
    for name in scheme.region_names:
        sl = scheme.region_slice(name)
        color = _rgb01(REGION_COLORS[name])
        for p in range(sl.start, sl.stop):
            ax0.plot(rel[use, p, 0], rel[use, p, 1], "-", lw=0.8, color=color, alpha=0.8)
        ax0.scatter(rel[use][0, sl, 0], rel[use][0, sl, 1], s=8, color=color, label=name)
    ax0.invert_yaxis()
    ax0.set_aspect("equal")
    ax0.set_title("trajectories (crop px, origin: nose tip at first frame)", fontsize=9)
    ax0.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside the data
    disp = region_displacement(track)
    t = track.times
    for name in scheme.region_names:
        ax1.plot(t, disp[name], color=_rgb01(REGION_COLORS[name]), label=name, lw=1.2)
    ymax = np.nanmax(disp.to_numpy()) if np.isfinite(disp.to_numpy()).any() else 1.0
    for mask, color, label in ((~use, "red", "face lost"), (track.filled, "orange", "filled")):
        if mask.any():
            ax1.fill_between(t, 0, ymax, where=mask, color=color, alpha=0.15, step="mid", label=label)
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("displacement from the rest frame (IOD, nose motion removed)")
    ax1.set_title("region displacement over time", fontsize=9)
    ax1.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    pyplot().close(fig)
    return Path(out)
