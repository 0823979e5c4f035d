"""A dataset of thousands of entries: store build time, disk, start-up and one epoch's loader time.

Entries are copies of real extract entries (hard links of their track and crops, under new
input names), short and long mixed, so that the store build and the loader do real work:

    python benchmarks/bench_scale.py SOURCE_CACHE --out DIR [--entries 2000] [--long 10] [--workers 2] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fexa.data.loading import make_loader
from fexa.data.samples import FaceSamples, SampleConfig, link_cache
from fexa.data.store import STORE_FILE, StoredEntry
from fexa.extract import input_ids


def make_dataset(source: Path, out: Path, entries: int, long: int) -> pd.DataFrame:
    """``entries`` inputs (hard links of the source videos) with ready extract entries in out/cache."""
    man = pd.read_csv(source / "manifest.csv")
    man = man[man["status"] == "ok"]
    short, longer = man[man["frames"] <= 300], man[man["frames"] > 300]
    plan = [longer.iloc[i % len(longer)] for i in range(long)] + [short.iloc[i % len(short)] for i in range(entries - long)]
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    rows = []
    for k, src in enumerate(plan):
        path = out / "inputs" / f"clip{k:05d}{Path(src['path']).suffix}"
        if not path.exists():
            os.link(Path(src["path"]).resolve(), path)
        entry = cache / input_ids([path])[0]
        if not (entry / "meta.json").exists():
            entry.mkdir(parents=True, exist_ok=True)
            for name in ("track.npz", "crops.mp4"):
                os.link(source / src["id"] / name, entry / name)
            meta = json.loads((source / src["id"] / "meta.json").read_text())
            meta.update(id=entry.name, path=str(path.absolute()))
            (entry / "meta.json").write_text(json.dumps(meta))
        rows.append({"id": f"c{k}", "path": str(path), "subject": f"s{k}", "target": float(k % 7), "task": "",
                     "frames": int(src["frames"])})
    return pd.DataFrame(rows)


def epoch_time(ds: FaceSamples, workers: int, batch: int) -> float:
    loader = make_loader(ds, batch, workers, torch.device("cpu"), persistent=False)
    t0 = time.perf_counter()
    for _ in loader:
        pass
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--long", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    table = make_dataset(a.source, a.out, a.entries, a.long)
    cache = a.out / "cache"
    for e in cache.glob(f"*/{STORE_FILE}"):
        e.unlink()
    t0 = time.perf_counter()
    linked, dropped = link_cache(table, cache, workers=a.workers, progress=True)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    linked, dropped = link_cache(table, cache, workers=a.workers, progress=False)
    startup = time.perf_counter() - t0
    sizes = [(Path(e) / STORE_FILE).stat().st_size for e in linked["entry"]]
    frames = int(table["frames"].sum())
    res = {"entries": len(linked), "dropped": len(dropped), "frames": frames, "long_entries": a.long,
           "build_s_incl_verification": build, "startup_s": startup, "store_gb": sum(sizes) / 1e9,
           "kb_per_frame": sum(sizes) / frames / 1024, "workers": a.workers}
    clips = FaceSamples(linked, ("clip",), SampleConfig(sampling="segments", clip_size=112, normalize="none",
                                                        clip_train="resized_crop", clip_test="resize"), True,
                        uint8=True)
    res["clip_epoch_s"] = epoch_time(clips, a.workers, 32)
    rng = np.random.default_rng(0)
    per_frame = []
    for r in linked.itertuples():  # one random frame with a face per entry: Aff-Wild2-style frame items
        t = int(rng.choice(StoredEntry(r.entry).usable_frames))
        per_frame.append({**r._asdict(), "start": t, "end": t + 1})
    frames_ds = FaceSamples(pd.DataFrame(per_frame).drop(columns="Index"), ("image",), SampleConfig(image_size=224), True,
                            uint8=True)
    res["frame_epoch_s"] = epoch_time(frames_ds, a.workers, 128)
    res["clip_items_per_s"] = len(clips) / res["clip_epoch_s"]
    res["frame_items_per_s"] = len(frames_ds) / res["frame_epoch_s"]
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
