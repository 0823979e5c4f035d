"""torch.distributed for training runs: one process, or many under torchrun (NCCL on GPUs, gloo on CPUs)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def mean_over_processes(values: list[float], world: int) -> float:
    """The mean of every process's values (each process logs the same number)."""
    t = torch.tensor([sum(values), len(values)], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(t)
    return float(t[0] / t[1]) if t[1] else float("nan")
