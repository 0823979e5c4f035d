"""Per-process item rate when N processes build a config's training items at once, without a
DataLoader: tells the machine's contention (shared cores, caches, memory bandwidth) apart from the
loader's own overhead when ``fexa bench loader --workers N`` falls short of N x one worker.

    python benchmarks/bench_parallel.py CONFIG [--set k=v ...] [--processes 1 4 8 14] [--items 300] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from fexa.data.loading import worker_init
from fexa.data.samples import FaceSamples
from fexa.train.config import load_config
from fexa.train.inputs import model_inputs
from fexa.train.data import prepare_data, training_samples


def _dataset(config: str, sets: list[str]) -> FaceSamples:
    cfg = load_config(config, sets)
    return training_samples(cfg, prepare_data(cfg, progress=False)["train"], model_inputs(cfg.model.name)[0], 1000,
                            cache_mb=0)


def _run(config: str, sets: list[str], items: int, seed: int, start, out) -> None:
    """One process: wait for the others, then build ``items`` items; put its items/s."""
    worker_init()
    ds = _dataset(config, sets)
    order = np.random.default_rng(seed).permutation(len(ds))[:items]
    for i in order[:3]:
        ds[int(i)]
    start.wait()
    t0 = time.perf_counter()
    for i in order:
        ds[int(i)]
    out.put(len(order) / (time.perf_counter() - t0))


def per_process_rate(config: str, sets: list[str], processes: int, items: int) -> list[float]:
    ctx = get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_run, args=(config, sets, items, k, start, out)) for k in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--processes", type=int, nargs="*", default=[1, 4, 8, 14])
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    _dataset(a.config, a.set)  # extraction and the store build, once, not timed
    rows = []
    for n in a.processes:
        rates = per_process_rate(a.config, a.set, n, a.items)
        rows.append({"config": a.config, "processes": n, "items_per_s_per_process": statistics.median(rates),
                     "items_per_s_total": sum(rates)})
        print(f"{n:>3} processes: {statistics.median(rates):8.1f} items/s per process (median), {sum(rates):8.1f} in all",
              flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
