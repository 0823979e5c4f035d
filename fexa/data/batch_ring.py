"""Batches handed from loader workers to the training process through a fixed ring of shared memory.

torch's DataLoader gives every batch a fresh shared-memory segment: the worker faults its pages in
to write it, the training process receives a file descriptor per tensor, maps the segment, faults
its pages in again and copies it to pinned memory before the device can read it. On a 16-core H100
node this path delivered 1.9 GB/s (104 batches/s of 32 STT clips with workers that do nothing), the
whole of what a QAFE-Net step on four 63 MB batches could receive. Here the batch memory is
allocated once: every worker owns ``prefetch + 1`` slots of one shared pool, collates each batch
into its next slot and sends only the slot's number; the training process reads the slot in place
(on CUDA the pool is page-locked, so the device copies it directly, asynchronously, on a side
stream): 18 GB/s on the same node.

A worker holds at most ``prefetch`` unfinished batches (the DataLoader sends it a new index only
when one of its batches is handed over), so with ``prefetch + 1`` slots a worker never writes the
slot of the batch last handed over; that batch's device copy is waited for before the next batch
is fetched, and before a new epoch's iteration starts.
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, default_collate, get_worker_info

ALIGN = 64  # bytes: every tensor of a slot starts on a cache line
SLOT, ROWS = "_ring_slot", "_ring_rows"


class EpochIndices(Sampler):
    """``sampler``'s indices as ``(epoch, index)`` pairs, the epoch read from ``ds`` when iteration
    starts: persistent loader workers hold their own copy of the dataset, which ``ds.set_epoch`` in
    the training process does not reach."""

    def __init__(self, sampler, ds):
        self.sampler, self.ds = sampler, ds

    def __iter__(self):
        epoch = self.ds.epoch
        return ((epoch, i) for i in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def _layout(item: dict, batch_size: int) -> tuple[dict, int]:
    """Where each tensor of a batch of ``batch_size`` items like ``item`` lies in a slot:
    {key: (offset, shape, dtype)} for the keys that collate to tensors, and the slot's bytes."""
    one = default_collate([item])
    layout, offset = {}, 0
    for key, v in one.items():
        if isinstance(v, torch.Tensor):
            shape = (batch_size, *v.shape[1:])
            layout[key] = (offset, shape, v.dtype)
            offset += -(-int(np.prod(shape)) * v.element_size() // ALIGN) * ALIGN
    return layout, max(offset, ALIGN)


def _views(row: torch.Tensor, layout: dict) -> dict:
    """The tensors of one slot (``row``: its bytes), by key."""
    out = {}
    for key, (offset, shape, dtype) in layout.items():
        n = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
        out[key] = row[offset:offset + n].view(dtype).view(shape)
    return out


class RingCollate:
    """A loader worker's collate function: stacks the items' tensors into the worker's next slot
    and returns the slot's number, the row count and whatever does not collate to a tensor."""

    def __init__(self, pool: torch.Tensor, layout: dict, slots: int):
        self.pool, self.layout, self.slots, self.count = pool, layout, slots, 0
        self._slot_views: dict[int, dict] = {}

    def __call__(self, items: list[dict]) -> dict:
        info = get_worker_info()
        slot = (info.id if info is not None else 0) * self.slots + self.count % self.slots
        self.count += 1
        if slot not in self._slot_views:
            self._slot_views[slot] = _views(self.pool[slot], self.layout)
        views, n = self._slot_views[slot], len(items)
        out = {SLOT: slot, ROWS: n}
        for key in items[0]:
            values = [it[key] for it in items]
            if key not in self.layout:
                out[key] = default_collate(values)
                continue
            dest = views[key][:n]
            tensors = all(isinstance(v, torch.Tensor) for v in values)
            got = values if tensors else [default_collate(values)]
            bad = next((v for v in got if v.dtype != dest.dtype or v.shape != dest.shape[1 if tensors else 0:]), None)
            if bad is not None:
                raise ValueError(f"loader item {key!r}: {bad.dtype} {tuple(bad.shape[0 if tensors else 1:])} per item, "
                                 f"where the batch layout (the dataset's first item) holds {dest.dtype} "
                                 f"{tuple(dest.shape[1:])}")
            if tensors:
                torch.stack(values, out=dest)
            else:
                dest.copy_(got[0])
        if set(items[0]) != set(self.layout) | (set(out) - {SLOT, ROWS}):
            raise ValueError(f"loader item keys {sorted(items[0])} differ from the dataset's first item's "
                             f"{sorted(self.layout)}")
        return out


def _unregister(pool: torch.Tensor) -> None:
    torch.cuda.cudart().cudaHostUnregister(pool.data_ptr())


class RingLoader:
    """A DataLoader over ``ds`` with ``workers`` persistent-or-not processes whose batches pass
    through a ring of shared memory (module docstring). It yields dicts like the DataLoader's:
    tensors already on ``device`` (CUDA: copied asynchronously on a side stream; the CPU: copied out
    of the ring), except ``host_keys``, which stay on the host. Items are ``ds[(epoch, index)]``."""

    def __init__(self, ds, batch_size: int, workers: int, device: torch.device, sampler: Sampler, drop_last: bool,
                 persistent: bool, prefetch: int, worker_init_fn, start: str | None, host_keys: tuple[str, ...] = ()):
        if workers < 1:
            raise ValueError(f"RingLoader needs workers >= 1, got {workers}")
        self.layout, slot_bytes = _layout(ds[0], batch_size)
        self.slots = prefetch + 1
        self.pool = torch.empty(workers * self.slots, slot_bytes, dtype=torch.uint8).share_memory_()
        self.device, self.host_keys = device, host_keys
        self._views = [_views(row, self.layout) for row in self.pool]
        self._stream, self._pending, self._it = None, None, None
        if device.type == "cuda":  # page-locked: the device reads the ring directly, asynchronously
            err = torch.cuda.cudart().cudaHostRegister(self.pool.data_ptr(), self.pool.numel(), 0)
            if int(err) != 0:
                raise RuntimeError(f"could not page-lock the {self.pool.numel() >> 20} MB batch ring "
                                   f"(CUDA error {int(err)})")
            weakref.finalize(self, _unregister, self.pool)
            self._stream = torch.cuda.Stream(device)
        self.loader = DataLoader(ds, batch_size=batch_size, sampler=EpochIndices(sampler, ds), num_workers=workers,
                                 collate_fn=RingCollate(self.pool, self.layout, self.slots), drop_last=drop_last,
                                 persistent_workers=persistent, prefetch_factor=prefetch, worker_init_fn=worker_init_fn,
                                 multiprocessing_context=start)

    def __len__(self) -> int:
        return len(self.loader)

    def worker_pids(self) -> list[int]:
        """Process ids of the current iteration's workers (none before the first iteration)."""
        return [w.pid for w in getattr(self._it, "_workers", [])]

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.synchronize()
            self._pending = None

    def __iter__(self):
        self._wait()  # an abandoned iteration's last copy: its slot may be written again now
        self._it = it = iter(self.loader)
        while True:
            self._wait()  # fetching the next batch lets a worker write a slot: the last copy must be done
            try:
                packed = next(it)
            except StopIteration:
                return
            yield self._receive(packed)

    def _receive(self, packed: dict) -> dict:
        views, n = self._views[packed.pop(SLOT)], packed.pop(ROWS)
        batch = dict(packed)
        if self._stream is None:
            batch.update({k: v[:n].clone() for k, v in views.items()})
            return batch
        main = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._stream):
            for k, v in views.items():
                batch[k] = v[:n].clone() if k in self.host_keys else v[:n].to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self._stream)
        main.wait_event(done)
        for k in views:
            if k not in self.host_keys:
                batch[k].record_stream(main)  # allocated on the side stream, used on the main one
        self._pending = done
        return batch
