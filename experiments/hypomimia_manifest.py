"""Write the manifest of the trajectory sanity check: talking-head clips with simulated hypomimia.

    python experiments/hypomimia_manifest.py OUT.csv [CLIP ...] [--window 128]

Each clip (default: the LivePortrait and SadTalker clips in ../shared/data) is cut into windows of
``--window`` frames; every window appears five times with its landmark motion (displacement from
the window's first frame) scaled by 1, 0.75, 0.5, 0.25 and 0, labelled severity 0, 1, 2, 3, 4.
This is a sanity check of the trajectory pipeline and model, not a clinical result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SCALES = (1.0, 0.75, 0.5, 0.25, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("clips", nargs="*", type=Path)
    ap.add_argument("--window", type=int, default=128)
    args = ap.parse_args()
    clips = args.clips or sorted((SHARED / "liveportrait_driving_videos").glob("*.mp4")) + sorted(
        (SHARED / "sadtalker_ref_videos").glob("*.mp4"))
    rows = []
    for clip in clips:
        with av.open(str(clip)) as c:
            n = c.streams.video[0].frames or sum(1 for _ in c.decode(video=0))
        starts = list(range(0, max(n - args.window, 0) + 1, args.window)) or [0]
        for s in starts:
            for sev, scale in enumerate(SCALES):
                rows.append({"id": f"{clip.stem}_{s:05d}_sev{sev}", "path": str(clip.resolve()), "subject": clip.stem,
                             "score": sev, "motion_scale": scale, "start": s, "end": s + args.window})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)
    print(f"{len(rows)} samples from {len(clips)} clips -> {args.out}")


if __name__ == "__main__":
    main()
