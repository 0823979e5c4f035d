"""Loaders that keep a device busy: uint8 batches from persistent single-threaded workers, handed
over through a ring of shared page-locked memory (:mod:`fexa.data.batch_ring`) and copied
asynchronously, finished on the device (heatmaps, clip crops, normalisation)."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, SequentialSampler

from fexa.data.batch_ring import RingLoader
from fexa.data.samples import HOST_KEYS, FaceSamples, SampleConfig, finish_batch


def worker_init(_: int = 0) -> None:
    """DataLoader workers: one compute thread each (the loader's parallelism is its workers). OpenCV,
    imported only by the items that use it, reads its thread count at import."""
    torch.set_num_threads(1)
    os.environ["OPENCV_FOR_THREADS_NUM"] = "1"
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(1)


_cv2_threads: list[int] = []


def _cv2_before_fork() -> None:
    """OpenCV's thread pool does not survive fork: a child that resizes it (``worker_init``) waits
    forever for the parent's pool threads. So the pool is shrunk to none before a fork and
    restored in the parent after it."""
    if "cv2" in sys.modules:
        _cv2_threads.append(sys.modules["cv2"].getNumThreads())
        sys.modules["cv2"].setNumThreads(1)


def _cv2_after_fork_in_parent() -> None:
    if _cv2_threads:
        sys.modules["cv2"].setNumThreads(_cv2_threads.pop())


os.register_at_fork(before=_cv2_before_fork, after_in_parent=_cv2_after_fork_in_parent)


def item_classes(ds: FaceSamples) -> np.ndarray:
    """The class index of every item of ``ds`` (rows repeated as the items repeat them)."""
    return ds.table["target"].to_numpy()[[ds.row_of(i) for i in range(len(ds))]].astype(np.int64)


class BalancedSampler(Sampler):
    """Class-balanced oversampling (POSTER's ImbalancedDatasetSampler, used for AffectNet): each
    epoch draws len(dataset) items with replacement, an item's weight 1 / (its class's count), from
    a generator seeded by (seed, epoch), so every process, worker and resume draws the same list;
    process ``rank`` of ``world`` takes every world-th item of it."""

    def __init__(self, ds: FaceSamples, world: int = 1, rank: int = 0, seed: int = 0):
        targets = item_classes(ds)
        counts = np.bincount(targets)
        self.weights = torch.from_numpy(1.0 / counts[targets])
        self.world, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self.per_rank = math.ceil(len(ds) / world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.multinomial(self.weights, self.per_rank * self.world, replacement=True, generator=g)
        return iter(order[self.rank::self.world].tolist())

    def __len__(self) -> int:
        return self.per_rank


class RepeatFactorSampler(Sampler):
    """LVIS's repeat-factor sampling (Gupta et al. 2019; CFC-SP's "over-sample method proposed in
    [9]"): an item of a class that makes up a fraction f of the items is repeated
    r = max(1, sqrt(threshold / f)) times per epoch, the fraction of r by a coin. Coins and the
    shuffle come from a generator seeded by (seed, epoch), so every process, worker and resume draws
    the same list; it is padded to a multiple of ``world`` with its own first items and process
    ``rank`` takes every world-th item."""

    def __init__(self, ds: FaceSamples, threshold: float, world: int = 1, rank: int = 0, seed: int = 0):
        targets = item_classes(ds)
        freq = np.bincount(targets) / len(targets)
        self.factors = torch.from_numpy(np.maximum(1.0, np.sqrt(threshold / freq[targets])))
        self.world, self.rank, self.seed, self.epoch = world, rank, seed, 0
        self._drawn: tuple[int, list[int]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if self._drawn is None or self._drawn[0] != self.epoch:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            whole = self.factors.floor()
            copies = (whole + (torch.rand(len(self.factors), generator=g) < self.factors - whole)).long()
            order = torch.repeat_interleave(torch.arange(len(copies)), copies)
            order = order[torch.randperm(len(order), generator=g)]
            order = torch.cat([order, order[: -len(order) % self.world]])
            self._drawn = (self.epoch, order[self.rank::self.world].tolist())
        return self._drawn[1]

    def __iter__(self):
        return iter(self._order())

    def __len__(self) -> int:
        return len(self._order())


def make_loader(ds: FaceSamples, batch_size: int, workers: int, device: torch.device, sampler: Sampler | None = None,
                drop_last: bool = False, persistent: bool = True, prefetch: int = 2,
                start: str | None = None) -> DataLoader | RingLoader:
    """A loader over ``ds``: ``workers`` processes that live across epochs (``persistent``), each
    keeping ``prefetch`` batches ready in its slots of a shared ring, batches yielded on ``device``
    (:class:`RingLoader`); with 0 workers, a DataLoader in this process (pinned memory on CUDA).
    ``start``: how workers start (multiprocessing context; default the platform's)."""
    if workers:
        return RingLoader(ds, batch_size, workers, device, sampler or SequentialSampler(ds), drop_last, persistent,
                          prefetch, worker_init, start, HOST_KEYS)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                      pin_memory=device.type == "cuda")


def to_device(batch: dict, device: torch.device, cfg: SampleConfig, channels_last: bool = False) -> dict:
    """Move a batch to ``device`` (asynchronously from pinned memory) and finish it there
    (:func:`finish_batch`: heatmaps, clip crops, normalisation); 4-D images in channels-last layout if asked."""
    batch = finish_batch({k: v if k in HOST_KEYS else v.to(device, non_blocking=True) for k, v in batch.items()}, cfg)
    if channels_last and "image" in batch:
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    return batch
