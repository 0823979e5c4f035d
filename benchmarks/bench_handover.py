"""How fast loader workers can hand batches to the device, apart from building items: workers
return one constant uint8 batch, and the training process only moves it to the device. torch's
DataLoader (a fresh shared-memory block per batch, pinned by its pin-memory thread on CUDA)
against fexa's batch ring (fexa/data/batch_ring.py), for STT- and QAFE-Net-sized batches, and the
cost of first-touching shared memory. Medians of --runs runs.

    python benchmarks/bench_handover.py [--workers 14] [--batches 150] [--runs 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

# Spawned workers import this script again: only the standard library at its top.

SIZES = {"STT 32 x 16 x 112²": ((16, 3, 112, 112), 32), "QAFE-Net 4 x 80 x 256²": ((80, 3, 256, 256), 4)}


class Constant:
    """Items that cost nothing to build: what is measured is the handover."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape, self.x, self.epoch = shape, None, 0

    def __len__(self) -> int:
        return 10**7

    def __getitem__(self, item):
        import torch

        if self.x is None:
            self.x = torch.randint(0, 255, self.shape, dtype=torch.uint8)
        return {"clip": self.x}


def first_touch_ms(mb: int = 64) -> tuple[float, float]:
    """(ms to write a fresh shared-memory block of ``mb`` MB, ms to write it again)."""
    import torch

    t = torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(mb << 20))
    t0 = time.perf_counter()
    t.fill_(1)
    t1 = time.perf_counter()
    t.fill_(2)
    return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3


def rate(shape, batch: int, workers: int, batches: int, ring: bool) -> float:
    """Batches per second reaching the device (CUDA if there is one, else copied on the CPU)."""
    import torch
    from torch.utils.data import DataLoader, SequentialSampler

    from fexa.data.batch_ring import RingLoader
    from fexa.data.loading import worker_init

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ds = Constant(shape)
    if ring:
        loader = RingLoader(ds, batch, workers, device, SequentialSampler(range(len(ds))), False, True, 2, worker_init,
                            "spawn")
    else:
        loader = DataLoader(ds, batch_size=batch, num_workers=workers, pin_memory=device.type == "cuda",
                            prefetch_factor=2, persistent_workers=True, worker_init_fn=worker_init,
                            multiprocessing_context="spawn")
    it = iter(loader)
    for _ in range(2 * workers):  # start-up
        next(it)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(batches):
        b = next(it)["clip"]
        b = b.to(device, non_blocking=True) if device.type == "cuda" else b.clone()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batches / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=14)
    ap.add_argument("--batches", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=str)
    a = ap.parse_args()
    touch = [first_touch_ms() for _ in range(a.runs)]
    out = {"first_touch_64mb_ms": statistics.median(t[0] for t in touch),
           "second_touch_64mb_ms": statistics.median(t[1] for t in touch), "workers": a.workers, "rows": []}
    print(f"64 MB of shared memory: first write {out['first_touch_64mb_ms']:.1f} ms, again "
          f"{out['second_touch_64mb_ms']:.1f} ms")
    for name, (shape, batch) in SIZES.items():
        mb = batch * int(__import__("math").prod(shape)) / 2**20
        for ring in (False, True):
            r = statistics.median(rate(shape, batch, a.workers, a.batches, ring) for _ in range(a.runs))
            how = "batch ring" if ring else "DataLoader"
            out["rows"].append({"batch": name, "path": how, "batches_per_s": r, "gb_per_s": r * mb / 1024})
            print(f"{name:<24} {how:<11} {r:8.1f} batches/s  {r * mb / 1024:6.2f} GB/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
