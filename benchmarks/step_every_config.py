"""One training step of every shipped config on the current device: the config's model, items,
loss and optimiser, with bf16 autocast if asked, its data replaced by rows of one extracted clip
(labels spread over the config's classes or score range). What a user's first step on a GPU runs;
prints a line per config and, with --json, the results.

    python benchmarks/step_every_config.py CACHE [--video fexa/data/demo/single_face.mp4] [--device cuda]
        [--amp] [--batch-size N] [--configs configs/stt/dfew.yaml ...] [--json OUT]

CACHE is an extract cache holding the video (``fexa extract VIDEO --out CACHE``); the model's
pretrained weights are not loaded (model.pretrained=none): the step is what is checked.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from fexa.data.adapters import DATASETS
from fexa.data.loading import make_loader
from fexa.train.bench import sync
from fexa.train.config import load_config
from fexa.train.inputs import model_inputs
from fexa.train.build import build_training, training_device, training_model, training_step
from fexa.train.config import CLASSIFICATION_LOSSES
from fexa.train.data import prepare_data, task_kind, training_samples

REPO = Path(__file__).resolve().parents[1]


def stand_in(config: Path, video: Path, cache: Path, folder: Path, batch: int | None, device: str, amp: bool) -> list[str]:
    """Overrides that keep ``config``'s model, items, loss and optimiser and read one clip instead
    of its dataset: enough training rows for two batches, labels cycling over its classes."""
    cfg = load_config(config)
    info = DATASETS[cfg.data.dataset]
    size = batch or cfg.train.batch_size
    if cfg.train.loss in CLASSIFICATION_LOSSES and not cfg.data.scores_as_classes:  # raw labels it trains on (target_map)
        labels = [k for k in range(len(info.classes)) if not cfg.data.target_map or cfg.data.target_map[k] >= 0]
    else:  # scores (or score levels trained as classes)
        labels = list(range(5))
    rows = 2 * size + 2
    df = pd.DataFrame({"path": str(video), "subject": [f"s{i}" for i in range(rows)],
                       "label": [labels[i % len(labels)] for i in range(rows)],
                       "fold": ["train"] * (rows - 2) + ["test"] * 2})
    csv = folder / f"{config.parent.name}_{config.stem}.csv"
    df.to_csv(csv, index=False)
    sets = [f"name={csv.stem}", f"out={folder}", "data.dataset=manifest", f"data.root={csv}", f"data.cache={cache}",
            "data.options={}", "data.task=", "data.limit=0", "data.split=fixed", "data.val_fraction=0",
            "data.allow_missing=false", "model.pretrained=none", f"train.device={device}", f"train.amp={str(amp).lower()}",
            f"train.batch_size={size}"]
    if cfg.train.loss == "pcda" and "neutral" not in cfg.train.loss_options:
        sets.append(f"train.loss_options.neutral={info.neutral}")
    return sets


def one_step(config: Path, sets: list[str]) -> dict:
    """Two training steps of ``config`` with ``sets``: the first warms up, the second is timed."""
    cfg = load_config(config, sets)
    data = prepare_data(cfg, progress=False)
    kind, num_classes = task_kind(cfg, data)
    keys, argfn = model_inputs(cfg.model.name)
    device = training_device(cfg)
    model = training_model(cfg, num_classes, device)
    criterion, params, opt, _ = build_training(cfg, kind, data, model, device)
    step = training_step(cfg, kind, model, criterion, opt, params, device, argfn)
    ds = training_samples(cfg, data["train"], keys, 1)
    loader = iter(make_loader(ds, cfg.train.batch_size, 0, device, drop_last=True))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    first = float(step(next(loader)))
    batch = next(loader)
    sync(device)
    t0 = time.perf_counter()
    second = float(step(batch))
    sync(device)
    ms = (time.perf_counter() - t0) * 1e3
    grads = [p.grad for p in params if p.requires_grad]
    return {"config": str(config.relative_to(REPO)), "model": cfg.model.name, "kind": kind, "classes": num_classes,
            "loss": cfg.train.loss, "batch_size": cfg.train.batch_size, "device": str(device), "amp": cfg.train.amp,
            "loss_first": first, "loss_second": second, "step_ms": ms,
            "items_per_s": cfg.train.batch_size / ms * 1e3,
            "params_with_grad": sum(g is not None for g in grads), "params": len(grads),
            "grads_finite": all(bool(torch.isfinite(g).all()) for g in grads if g is not None),
            "peak_gpu_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else math.nan}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument("--video", type=Path, default=REPO / "fexa/data/demo/single_face.mp4")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast")
    ap.add_argument("--batch-size", type=int, help="instead of the configs' (e.g. 2 for a quick CPU check)")
    ap.add_argument("--configs", nargs="*", type=Path, default=sorted((REPO / "configs").rglob("*.yaml")))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    results, failed = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for config in a.configs:
            config = config.resolve()
            try:
                r = one_step(config, stand_in(config, a.video.resolve(), a.cache, Path(tmp), a.batch_size, a.device, a.amp))
                ok = math.isfinite(r["loss_second"]) and r["grads_finite"] and r["params_with_grad"] > 0
                print(f"{'ok  ' if ok else 'BAD '} {r['config']:<44} {r['model']:<14} batch {r['batch_size']:>3}  "
                      f"loss {r['loss_first']:.4f} -> {r['loss_second']:.4f}  {r['step_ms']:8.1f} ms  "
                      f"{r['items_per_s']:8.1f} items/s  grads {r['params_with_grad']}/{r['params']}  "
                      f"peak {r['peak_gpu_mb']:.0f} MB", flush=True)
            except Exception as e:  # one config's failure is reported, the others still run
                ok, r = False, {"config": str(config.relative_to(REPO)), "error": f"{type(e).__name__}: {e}"}
                print(f"FAIL {r['config']}: {r['error']}", flush=True)
            failed += not ok
            results.append({**r, "ok": ok})
    print(f"{len(results) - failed} of {len(results)} configs took a finite training step on {a.device}"
          f"{' with bf16 autocast' if a.amp else ''}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
