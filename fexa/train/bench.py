"""``fexa bench loader``: how fast a config's training items are built, and whether the loader or
the model limits training, to size ``data.workers`` on the machine it runs on."""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch.utils.data import Sampler

from fexa.data.loading import make_loader, worker_init
from fexa.data.samples import HOST_KEYS, FaceSamples, finish_batch
from fexa.train.config import ExperimentConfig, from_scratch
from fexa.train.inputs import model_inputs
from fexa.train.build import build_training, training_device, training_model, training_step
from fexa.train.data import prepare_data, task_kind, training_samples


class _Order(Sampler):
    def __init__(self, order: np.ndarray):
        self.order = order

    def __iter__(self):
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process without its shared-memory pages (RssAnon + RssFile, Linux /proc;
    NaN elsewhere): the batch ring, mapped by every worker and the training process, is counted once,
    on its own (``ring_mb``)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            kb = [int(line.split()[1]) for line in f if line.startswith(("RssAnon:", "RssFile:"))]
        return sum(kb) / 1024 if kb else float("nan")
    except OSError:
        return float("nan")


def item_ms(ds: FaceSamples, order: np.ndarray, warmup: int = 3) -> float:
    """Median CPU milliseconds to build one item, in this process on one thread."""
    for i in order[:min(warmup, len(order) // 2)]:
        ds[int(i)]
    times = []
    for i in order:
        t0 = time.thread_time()
        ds[int(i)]
        times.append((time.thread_time() - t0) * 1e3)
    return statistics.median(times)


def finish_ms(ds: FaceSamples, order: np.ndarray, batch_size: int, device: torch.device, batches: int = 5) -> float:
    """Median milliseconds per item to finish uint8 batches on ``device`` (:func:`finish_batch`:
    heatmaps, clip crops, normalisation): the device's share of building items, copies not counted."""
    loader = make_loader(ds, batch_size, 0, device, _Order(order[: batch_size * (batches + 1)]))
    times = []
    for i, batch in enumerate(loader):
        batch = {k: v if k in HOST_KEYS else v.to(device) for k, v in batch.items()}
        sync(device)
        t0 = time.perf_counter()
        finish_batch(batch, ds.cfg)
        sync(device)
        if i:  # the first batch warms up kernels and tables
            times.append((time.perf_counter() - t0) * 1e3 / len(batch["index"]))
    return statistics.median(times) if times else float("nan")


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_rate(ds: FaceSamples, order: np.ndarray, batch_size: int, workers: int) -> tuple[float, float, float]:
    """(items/s through a loader with ``workers`` workers, their largest peak RSS in MB, the MB of
    their shared batch ring). Workers
    are spawned, not forked, so that their memory is their own and not a copy of this process's.
    Timing starts once every worker has delivered a batch: ``order`` should hold many batches per
    worker, or the rate is that of the few batches left."""
    loader = make_loader(ds, batch_size, workers, torch.device("cpu"), _Order(order), persistent=False, start="spawn")
    it = iter(loader)
    for _ in range(max(workers, 1)):  # each worker's first batch (batches come round-robin): start-up is not timed
        next(it)
    pids = (loader.worker_pids() if hasattr(loader, "worker_pids") else []) or [os.getpid()]
    t0, n, rss = time.perf_counter(), 0, float("nan")
    for batch in it:
        n += len(batch["index"])
        t1 = time.perf_counter()  # the last batch's arrival: the workers' shutdown is not throughput
        rss = float(np.fmax.reduce([rss, *map(_rss_mb, pids)]))  # sampled per batch; NaN only if all are
    ring = loader.pool.numel() / 2**20 if hasattr(loader, "pool") else 0.0
    return n / max(t1 - t0, 1e-9) if n else float("nan"), rss, ring


def model_rate(step, batch: dict, device: torch.device, steps: int, loader=None) -> tuple[float, float]:
    """(training items/s of ``step``, the fraction of that time spent waiting for batches): ``step``
    is the trainer's (forward, the config's loss, backward, update), on ``batch`` repeated, or on the
    batches of ``loader`` when given."""
    source = iter(loader) if loader is not None else None
    for _ in range(2):  # warm-up (kernels, allocator, workers)
        step(next(source) if source else batch)
    sync(device)
    t0, n, wait = time.perf_counter(), 0, 0.0
    for _ in range(steps):
        t1 = time.perf_counter()
        b = next(source, None) if source else batch
        wait += time.perf_counter() - t1
        if b is None:
            break
        step(b)
        n += len(b["index"])
    sync(device)
    total = max(time.perf_counter() - t0, 1e-9)
    return n / total, wait / total


def bench_loader(cfg: ExperimentConfig, workers: int = 1, items: int = 200, with_model: bool = False,
                 source: str = "store", steps: int = 20, progress: bool = True, cache_mb: int = 256) -> dict:
    """Per-item CPU cost, per-worker rate and peak memory of ``cfg``'s training items; with
    ``with_model`` the model's step rate on synthetic and on loader-fed batches on the current device.
    ``cache_mb``: each process's cache of opened entries (0: every item opens its entry)."""
    data = prepare_data(cfg, progress=progress)  # extraction and the store build are not timed
    keys, argfn = model_inputs(cfg.model.name)
    train = data["train"]
    repeats = max(1, math.ceil(items / len(train)))

    def dataset(inputs: tuple[str, ...]) -> FaceSamples:
        return training_samples(cfg, train, inputs, repeats, source=source, cache_mb=cache_mb)

    ds = dataset(keys)
    order = np.random.default_rng(cfg.train.seed).permutation(len(ds))[:items]
    torch_threads = torch.get_num_threads()
    worker_init()  # measured as a loader worker runs: one thread
    out = {"config": cfg.name, "model": cfg.model.name, "inputs": list(keys), "source": source, "cache_mb": cache_mb,
           "samples": len(train), "items": len(order), "item_ms": item_ms(ds, order)}
    if len(keys) > 1:
        out["input_ms"] = {k: item_ms(dataset((k,)), order[: max(20, len(order) // 4)]) for k in keys}
    torch.set_num_threads(torch_threads)
    device = training_device(cfg)
    batch_size = max(1, cfg.train.batch_size)
    out.update(device=str(device), device_ms=finish_ms(ds, order, batch_size, device))
    if workers > 1 and len(order) < 8 * workers * batch_size:
        print(f"fexa: warning: {len(order)} items are {len(order) // batch_size} batches for {workers} workers: the "
              f"loader rate needs about 8 batches per worker after their start-up (--items {8 * workers * batch_size})",
              file=sys.stderr)
    rate, rss, ring = loader_rate(ds, order, batch_size, workers)
    out.update(workers=workers, items_per_s=rate / max(workers, 1), loader_items_per_s=rate, peak_rss_mb=rss,
               ring_mb=ring)
    if with_model:
        kind, num_classes = task_kind(cfg, data)
        model = training_model(from_scratch(cfg), num_classes, device)  # speed does not depend on the initialisation
        criterion, params, opt, _ = build_training(cfg, kind, data, model, device)
        step = training_step(cfg, kind, model, criterion, opt, params, device, argfn)
        loader = make_loader(ds, batch_size, workers, device, _Order(order), drop_last=True)
        batch = next(iter(make_loader(ds, batch_size, 0, device, _Order(order))))
        synthetic, _ = model_rate(step, batch, device, steps)
        fed, wait = model_rate(step, batch, device, steps, loader)
        need = math.ceil(synthetic / max(out["items_per_s"], 1e-9))
        out.update(model_items_per_s=synthetic, fed_items_per_s=fed, fed_ratio=fed / synthetic, fed_wait=wait,
                   workers_to_feed=need, limit="loader" if rate < synthetic else "model")
    return out


def describe(r: dict) -> str:
    """The benchmark's result as a few readable lines."""
    lines = [f"{r['config']}: {r['model']} items ({', '.join(r['inputs'])}) from the {r['source']}, "
             f"{r['samples']} samples, {r['items']} items",
             f"  per item       {r['item_ms']:8.2f} ms CPU (one thread)"]
    for k, v in r.get("input_ms", {}).items():
        lines.append(f"    {k:<12} {v:8.2f} ms")
    lines.append(f"  on the device  {r['device_ms']:8.2f} ms per item ({r['device']}: heatmaps, crops, normalisation)")
    lines += [f"  loader         {r['loader_items_per_s']:8.1f} items/s with {r['workers']} worker(s) = "
              f"{r['items_per_s']:.1f} items/s per worker",
              f"  peak RSS       {r['peak_rss_mb']:8.0f} MB per worker, besides the {r['ring_mb']:.0f} MB batch ring "
              "they share with the training process"]
    if "model_items_per_s" in r:
        lines += [f"  model          {r['model_items_per_s']:8.1f} items/s on {r['device']} (synthetic batches)",
                  f"  loader-fed     {r['fed_items_per_s']:8.1f} items/s ({r['fed_ratio']:.2f} of synthetic; "
                  f"{100 * r['fed_wait']:.0f} % of the time waiting for batches)",
                  f"  limit: the {r['limit']}; about {r['workers_to_feed']} worker(s) feed this model here"]
    return "\n".join(lines)
