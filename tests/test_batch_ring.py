"""Loader workers hand batches over through a ring of shared memory: the batches equal those built
in this process, epoch by epoch (persistent workers see the epoch), and bad items are named."""

import os

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from fexa.data.batch_ring import RingLoader, _layout
from fexa.data.loading import make_loader, worker_init
from fexa.data.samples import FaceSamples, SampleConfig

CPU = torch.device("cpu")


def _samples(entry, inputs=("clip",), cfg=SampleConfig(num_subclips=1, clip_size=112)) -> FaceSamples:
    table = pd.DataFrame([{"id": f"r{i}", "path": "x", "subject": f"s{i}", "target": float(i), "entry": str(entry),
                           "start": 3 * i, "end": 40 + 3 * i} for i in range(5)])
    return FaceSamples(table, inputs, cfg, True, 11, 1, uint8=True)


def _batches(loader) -> list[dict]:
    return [{k: v.clone() for k, v in b.items()} for b in loader]


def _assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), k


@pytest.mark.parametrize("inputs, cfg", [(("clip",), SampleConfig(num_subclips=1, clip_size=112)),
                                         (("clip", "heatmaps"), SampleConfig(num_subclips=1))])
def test_ring_batches_equal_in_process_batches_in_every_epoch(demo_entry, inputs, cfg):
    """Two persistent workers, batches of 2 over 5 items (the last batch has one row), two epochs:
    every tensor equals what this process builds for the same epoch. Before the ring, persistent
    workers kept the epoch they started with: epoch 1 repeated epoch 0's crops and flips."""
    ring_ds, here_ds = _samples(demo_entry, inputs, cfg), _samples(demo_entry, inputs, cfg)
    ring = make_loader(ring_ds, 2, 2, CPU)
    here = make_loader(here_ds, 2, 0, CPU)
    assert isinstance(ring, RingLoader) and len(ring) == len(here) == 3
    seen = []
    for epoch in (0, 1):
        ring_ds.set_epoch(epoch)
        here_ds.set_epoch(epoch)
        got = _batches(ring)
        _assert_same(got, _batches(here))
        assert [len(b["index"]) for b in got] == [2, 2, 1]
        seen.append(got)
    pids = ring.worker_pids()  # what `fexa bench loader` reads the workers' memory from
    assert len(pids) == 2 and os.getpid() not in pids
    differ = [not torch.equal(a[k], b[k]) for a, b in zip(*seen) for k in a if k not in ("index", "target")]
    assert any(differ)  # the augmentation moved on with the epoch


def test_an_abandoned_epoch_does_not_leak_into_the_next(demo_entry):
    ring_ds, here_ds = _samples(demo_entry), _samples(demo_entry)
    ring = make_loader(ring_ds, 1, 2, CPU)
    first = next(iter(ring))  # abandoned with batches in flight in both workers
    assert torch.equal(first["index"], torch.tensor([0]))
    ring_ds.set_epoch(3)
    here_ds.set_epoch(3)
    _assert_same(_batches(ring), _batches(make_loader(here_ds, 1, 0, CPU)))


class _Items(Dataset):
    """Items whose ``x`` changes shape at index ``bad``: the ring's layout is that of item 0."""

    def __init__(self, bad: int):
        self.bad, self.epoch = bad, 0

    def __len__(self) -> int:
        return 4

    def __getitem__(self, item):
        _, i = item if isinstance(item, tuple) else (0, item)
        return {"x": torch.zeros(3 if i == self.bad else 2, dtype=torch.uint8), "n": i, "w": 0.5, "name": f"i{i}"}


def test_items_collate_as_the_default_and_a_shape_change_is_named():
    ring = RingLoader(_Items(bad=-1), 2, 1, CPU, range(4), False, False, 2, worker_init, None)
    want = list(DataLoader(_Items(bad=-1), batch_size=2))
    for got, w in zip(ring, want):
        assert got["name"] == w["name"]
        for k in ("x", "n", "w"):  # int64 and float64 as default_collate makes them
            assert got[k].dtype == w[k].dtype and torch.equal(got[k], w[k]), k
    with pytest.raises(ValueError, match=r"loader item 'x'.*\(3,\).*\(2,\)"):
        list(RingLoader(_Items(bad=3), 2, 1, CPU, range(4), False, False, 2, worker_init, None))


def test_slot_layout_is_aligned_and_sized_by_hand():
    layout, size = _layout({"a": torch.zeros(3, dtype=torch.uint8), "b": 1.0, "s": "x"}, 4)
    assert layout == {"a": (0, (4, 3), torch.uint8), "b": (64, (4,), torch.float64)}  # 12 bytes, padded to 64
    assert size == 128


def test_workers_start_after_opencv_used_its_thread_pool(tmp_path):
    """A process that resized an image with OpenCV's threads (the report's face picture) and then
    started loader workers hung for ever: a forked worker resizing the pool waits for the parent's
    pool threads. Run in a child process with a time limit, so a hang fails instead of stalling."""
    import subprocess
    import sys

    code = ("import cv2, numpy as np, torch\n"
            "from torch.utils.data import Dataset\n"
            "from fexa.data.loading import worker_init\n"
            "cv2.resize(np.zeros((256, 256, 3), np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)\n"
            "class D(Dataset):\n"
            "    def __len__(self): return 4\n"
            "    def __getitem__(self, i):\n"
            "        return torch.tensor(float(cv2.resize(np.full((64, 64), i, np.uint8), (32, 32)).mean()))\n"
            "dl = torch.utils.data.DataLoader(D(), batch_size=2, num_workers=2, worker_init_fn=worker_init,\n"
            "                                 multiprocessing_context='fork')\n"
            "print(sorted(float(x) for b in dl for x in b))\n")
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("loader workers hung after OpenCV used its thread pool")
    assert r.returncode == 0 and r.stdout.strip() == "[0.0, 1.0, 2.0, 3.0]", r.stderr
