"""Dynamic batching of model calls made from several threads: each thread tracks its own input frame by
frame, and their calls to the same face model run together as one batch (on the GPU when there is one).

``group = BatchGroup()``; each worker thread runs inside ``with group.client():`` and calls
``group.run(model, x)`` instead of ``model(x)``. A call waits until every client of the group is waiting
on a model (the largest batch there can be) or ``max_wait`` seconds have passed since it was made (a
client busy elsewhere, e.g. decoding, does not hold the others back); then the waiting calls of each model
run as one batch (``x`` concatenated along the first dimension, at most ``max_batch`` items a run) and each
caller gets its own rows of every output back. A thread outside any client (or a group with no clients)
runs its call at once, alone. The threads take turns at Python's interpreter lock between model calls, so
the calls of N clients arrive spread over N times one client's per-frame Python work (about 10 ms on a
CPU core): ``max_wait`` is long enough for several to gather (measured, 4 inputs on 2 CPU cores: 1.4
calls a batch with 5 ms, 2.0 with 50 ms; a client that is busy for longer, e.g. describing a face for
the identity check, costs the others at most that). Tracking state stays with each caller, so every input is tracked exactly as
frame by frame; only the floating-point rounding of the batched kernels differs.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

Model = Callable[[Tensor], Mapping[str, Tensor]]


@dataclass(eq=False)
class _Call:
    """One caller's input and, once its batch has run, its outputs (or the batch's error)."""

    x: Tensor
    out: dict[str, Tensor] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass(eq=False)
class _Queue:
    model: Model
    calls: list[_Call] = field(default_factory=list)


class BatchGroup:
    """Model calls of several client threads batched together (module docstring)."""

    def __init__(self, max_batch: int = 64, max_wait: float = 0.05) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch: expected an integer >= 1; got {max_batch!r}")
        if not max_wait >= 0:
            raise ValueError(f"max_wait: expected seconds >= 0; got {max_wait!r}")
        self.max_batch = max_batch
        self.max_wait = float(max_wait)
        self._cond = threading.Condition()
        self._clients = 0
        self._queues: dict[int, _Queue] = {}  # id(model) -> its waiting calls
        self.batches = 0  # batches run (for reports: items / batches is the mean batch)
        self.items = 0

    @contextlib.contextmanager
    def client(self) -> Iterator[None]:
        """Count the calling thread as a client while the block runs (its calls are waited for)."""
        with self._cond:
            self._clients += 1
        try:
            yield
        finally:
            with self._cond:
                self._clients -= 1
                self._cond.notify_all()  # those waiting for this client need not wait any more

    def run(self, model: Model, x: Tensor) -> dict[str, Tensor]:
        """``model(x)``, batched with the other clients' waiting calls of the same model."""
        call = _Call(x)
        deadline = time.monotonic() + self.max_wait
        with self._cond:
            self._queues.setdefault(id(model), _Queue(model)).calls.append(call)
            while not call.done:
                queued = list(self._queued_calls())  # calls not yet taken by a batch
                if call in queued and (len(queued) >= self._clients or time.monotonic() >= deadline):
                    self._run_queued()  # everyone is waiting, or this call has waited long enough: run what is queued
                    continue
                self._cond.wait(max(deadline - time.monotonic(), 0.0) if call in queued else None)
        if call.error is not None:
            raise call.error
        return call.out

    def _queued_calls(self) -> Iterator[_Call]:
        for queue in self._queues.values():
            yield from queue.calls

    def _run_queued(self) -> None:
        """Take every queued call, run each model's batches (the lock released meanwhile), hand the rows back."""
        taken = [q for q in self._queues.values() if q.calls]
        self._queues = {}
        self._cond.release()
        try:
            for queue in taken:
                for start in range(0, len(queue.calls), self.max_batch):
                    self._run_batch(queue.model, queue.calls[start:start + self.max_batch])
        finally:
            self._cond.acquire()
            self._cond.notify_all()

    def _run_batch(self, model: Model, calls: list[_Call]) -> None:
        sizes = [c.x.shape[0] for c in calls]
        try:
            out = model(calls[0].x if len(calls) == 1 else torch.cat([c.x for c in calls]))
            rows = {name: value.split(sizes) for name, value in out.items()}
            for k, c in enumerate(calls):
                c.out = {name: parts[k] for name, parts in rows.items()}
        except BaseException as err:  # every caller of the batch gets the error (none is left waiting)
            for c in calls:
                c.error = err
        for c in calls:
            c.done = True
        self.batches += 1
        self.items += sum(sizes)


_ACTIVE: BatchGroup | None = None


@contextlib.contextmanager
def batching(group: BatchGroup) -> Iterator[BatchGroup]:
    """Make ``group`` the one fexa's torch face models batch their calls in (``model_call``) while the
    block runs, in every thread."""
    global _ACTIVE
    if _ACTIVE is not None:
        raise RuntimeError("a BatchGroup is active already: batching() blocks do not nest")
    _ACTIVE = group
    try:
        yield group
    finally:
        _ACTIVE = None


def batch_client() -> contextlib.AbstractContextManager:
    """The active group's ``client()`` (the calling thread's model calls are waited for while the block runs),
    or a block that does nothing when no group is active."""
    return contextlib.nullcontext() if _ACTIVE is None else _ACTIVE.client()


def batching_active() -> bool:
    """Whether a BatchGroup is active (``batching``)."""
    return _ACTIVE is not None


def model_call(model: Model, x: Tensor) -> dict[str, Tensor]:
    """``model(x)`` without autograd, through the active BatchGroup when there is one."""
    with torch.inference_mode():
        return model(x) if _ACTIVE is None else _ACTIVE.run(model, x)
