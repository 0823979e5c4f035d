"""Pictures of what fexa computed: overlay videos and PNG sheets."""

from __future__ import annotations

import json
from pathlib import Path

from fexa.errors import FexaError
from fexa.io.atomic import atomic_path
from fexa.io.trackfile import TrackData
from fexa.viz.overlay import write_overlay
from fexa.viz.sheets import plot_heatmap_strip, plot_trajectories

__all__ = ["show_entry", "write_overlay", "plot_heatmap_strip", "plot_trajectories"]


def show_entry(entry: str | Path, out: str | Path | None = None, progress: bool = True) -> dict[str, Path]:
    """Write overlay.mp4, heatmaps.png and trajectories.png for one extract entry."""
    entry = Path(entry)
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        raise FexaError(f"{entry} is not a fexa extract entry (no meta.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("status") != "ok":
        raise FexaError(f"nothing to show for {entry.name}: status {meta.get('status')} ({meta.get('error', '')})")
    track = TrackData.load(entry / "track.npz")
    out = Path(out) if out else entry
    out.mkdir(parents=True, exist_ok=True)
    from fexa.represent import load_crops  # torch: only for the heatmap sheet

    crops = load_crops(entry) if (entry / "crops.mp4").is_file() else None
    source = Path(meta["path"])
    if not source.exists() and crops is None:
        raise FexaError(f"input {source} is gone and {entry.name} has no crops.mp4: nothing to draw on")
    written = {"overlay": out / "overlay.mp4", "heatmaps": out / "heatmaps.png", "trajectories": out / "trajectories.png"}
    with atomic_path(written["overlay"]) as tmp:
        if source.exists():
            write_overlay(track, source, tmp, progress=progress)
        else:  # the input moved: draw on the crops instead
            write_overlay(track, entry / "crops.mp4", tmp, use_crops=True, progress=progress)
    with atomic_path(written["heatmaps"]) as tmp:
        plot_heatmap_strip(track, crops, tmp)
    with atomic_path(written["trajectories"]) as tmp:
        plot_trajectories(track, tmp)
    return written
