"""Per-item cost of training items against the length of the video they come from, for the
training store and for the old path (decoding the entry's whole crops.mp4), and per-worker
rates and memory; medians of several runs. Every item opens its entry (no cache hits), as in a
dataset far larger than a worker's cache. The sources are extract entries of a cache
(e.g. ``fexa extract VIDEO... --out CACHE``).

    python benchmarks/bench_loader.py CACHE [--items 100] [--runs 3] [--video-items 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

# Spawned loader workers import this script again (as __mp_main__): only the standard library at
# its top, so that their memory is what building items takes, as under `fexa train`.

KINDS = {  # item kind -> (model, sample settings, frame items, batch size: the configs' for clips, 8 for frames)
    "STT clip 16x112": ("stt", ["data.samples.sampling=segments", "data.samples.clip_size=112",
                                "data.samples.normalize=none", "data.samples.clip_train=resized_crop",
                                "data.samples.clip_test=resize"], False, 32),
    "Swin-S frame 224": ("swin_s", ["data.samples.image_size=224"], True, 8),
    "PCDA frame 112": ("pcda", ["data.samples.image_size=112"], True, 8),
    "QAFE-Net 80x224 + heatmaps": ("qafe_net", ["data.samples.num_subclips=5", "data.samples.clip_size=224"], False, 4),
    "TraMP-Former 80x224 + trajectory": ("tramp_former", ["data.samples.num_subclips=5", "data.samples.clip_size=224"],
                                         False, 4),
}


def manifest(folder: Path, video: str, entry: Path, per_frame: bool, rows: int = 64) -> Path:
    """One source video as a manifest: whole-video samples, or single-frame samples spread over
    its frames with a face."""
    import numpy as np
    import pandas as pd

    from fexa.data.store import StoredEntry

    if per_frame:
        usable = StoredEntry(entry).usable_frames
        ks = np.random.default_rng(0).choice(usable, size=min(rows, len(usable)), replace=False)
        df = pd.DataFrame({"path": video, "subject": [f"s{i % 2}" for i in range(len(ks))], "label": 0,
                           "start": ks, "end": ks + 1, "fold": ["train" if i % 2 == 0 else "test" for i in range(len(ks))]})
    else:
        df = pd.DataFrame({"path": [video, video], "subject": ["a", "b"], "label": [0, 1], "fold": ["train", "test"]})
    path = folder / f"{Path(video).stem}_{'frames' if per_frame else 'clips'}.csv"
    df.to_csv(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--items", type=int, default=100, help="items per run (at least 10 batches)")
    ap.add_argument("--video-items", type=int, default=5, help="items per run on the old path (slow)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    ap.add_argument("--video-kinds", nargs="*", default=list(KINDS)[:2], help="kinds also timed on the old path")
    ap.add_argument("--cache-mb", type=int, default=0,
                    help="per-process cache of opened entries (default 0: every item opens its entry, as in a "
                    "dataset far larger than the cache)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    import pandas as pd

    from fexa.train.bench import bench_loader
    from fexa.train.config import load_config

    man = pd.read_csv(a.cache / "manifest.csv")
    man = man[man["status"] == "ok"].sort_values("frames")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.kinds:
            model, sets, per_frame, batch = KINDS[kind]
            for src in man.itertuples():
                csv = manifest(Path(tmp), src.path, a.cache / src.id, per_frame)
                for source in ("store", "video") if kind in a.video_kinds else ("store",):
                    items = max(a.items, 10 * batch) if source == "store" else a.video_items
                    cfg = load_config(None, [f"name=bench_{model}", "data.dataset=manifest", f"data.root={csv}",
                                             f"data.cache={a.cache}", "data.split=fixed", "data.val_fraction=0",
                                             "train.loss=ce", f"model.name={model}", f"train.batch_size={batch}", *sets])
                    runs = [bench_loader(cfg, workers=1, items=items, source=source, progress=False, cache_mb=a.cache_mb)
                            for _ in range(a.runs)]
                    r = {"kind": kind, "source_frames": int(src.frames), "entry": src.id, "source": source,
                         **{k: statistics.median(x[k] for x in runs)
                            for k in ("item_ms", "items_per_s", "peak_rss_mb", "device_ms")},
                         "input_ms": runs[-1].get("input_ms", {})}
                    results.append(r)
                    print(f"{kind:<34} {src.frames:>5} frames  {source:<5}  {r['item_ms']:8.2f} ms/item  "
                          f"{r['items_per_s']:7.1f} items/s/worker  {r['peak_rss_mb']:6.0f} MB  "
                          f"+ {r['device_ms']:6.2f} ms/item on {runs[-1]['device']}", flush=True)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
