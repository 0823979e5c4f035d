"""Draw docs/img/landmark_schemes.png: which mediapipe mesh points fexa uses for the 73-point
heatmap set and the 63-point trajectory set, on a frame of the bundled demo clip.

    python scripts/make_landmark_figure.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fexa.extract import extract_one  # noqa: E402
from fexa.face.landmarks import REGION_COLORS, get_scheme  # noqa: E402
from fexa.io.trackfile import TrackData  # noqa: E402
from fexa.represent import load_crops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    entry = Path(tempfile.mkdtemp()) / "demo"
    extract_one(REPO / "fexa/data/demo/single_face.mp4", entry)
    track = TrackData.load(entry / "track.npz")
    crop = load_crops(entry)[0]
    mesh = track.points_crop[0]
    fig, axes = plt.subplots(1, 2, figsize=(16, 8.4))
    for ax, name in zip(axes, ("heatmap73", "traj63")):
        s = get_scheme(name)
        ax.imshow(crop, alpha=0.55)
        ax.scatter(mesh[:, 0], mesh[:, 1], s=1, c="0.4")
        pts = s.select(mesh[None], "mediapipe478")[0]
        src = [g[0] for g in s.source_indices("mediapipe478")]
        for k, ((x, y), r) in enumerate(zip(pts, s.region_of_point)):
            region = s.region_names[r]
            ax.scatter([x], [y], s=18, color=[c / 255 for c in REGION_COLORS[region]], edgecolors="k", linewidths=0.3)
            label = f"{s.points_2d106[k]}" if name == "heatmap73" else f"{k}"
            ax.annotate(f"{label}\n({src[k]})", (x, y), fontsize=4.2, ha="center", va="bottom",
                        xytext=(0, 2.5), textcoords="offset points")
        handles = [plt.Line2D([], [], marker="o", ls="", color=[c / 255 for c in REGION_COLORS[r]], label=r)
                   for r in s.region_names]
        ax.legend(handles=handles, fontsize=8, loc="lower right")
        what = "label: 2d106 index (mesh index)" if name == "heatmap73" else "label: position in the set (mesh index)"
        ax.set_title(f"{name}: {s.num_points} points in {len(s.regions)} regions\n{what}", fontsize=10)
        ax.set_xlim(40, 216)
        ax.set_ylim(220, 30)
        ax.axis("off")
    fig.tight_layout()
    out = REPO / "docs/img/landmark_schemes.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    print(out)


if __name__ == "__main__":
    main()
