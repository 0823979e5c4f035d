"""Training checkpoints: ``RUN/checkpoints/<name>/`` holds ``model.safetensors``, ``config.json`` and
``state.pt`` (optimiser, scheduler, RNG, epoch, history), swapped in atomically.

``last`` is written every epoch and the one before it is kept as ``previous``, so a ``last`` damaged
on disk (a full disk, a copy cut short) costs one epoch, not the run; ``best_val`` is the epoch
chosen on validation subjects. Every read names the file that failed and what to do next.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fexa.errors import FexaError
from fexa.io.atomic import atomic_dir, write_json

RESUMABLE = ("last", "previous")  # tried in this order by --resume


def save_checkpoint(path: Path, model: nn.Module, config: dict, state: dict, keep_previous: bool = False) -> None:
    """Weights (safetensors), config (JSON) and training state into the folder ``path``, swapped in
    atomically; with ``keep_previous`` the checkpoint it replaces becomes ``previous`` beside it."""
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        write_json(tmp / "config.json", config)
        torch.save(state, tmp / "state.pt")
        if keep_previous and path.is_dir():
            previous = path.with_name("previous")
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(path, previous)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A ``model.safetensors`` file's tensors, or an error naming the file."""
    if not path.is_file():
        raise FexaError(f"no weights file at {path}")
    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError, OSError, ...: the file is damaged
        raise FexaError(f"damaged weights file {path}: {type(e).__name__}: {e}") from None


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint's ``state.pt``, or an error naming the file."""
    if not path.is_file():
        raise FexaError(f"no training state at {path}")
    try:
        return torch.load(path, weights_only=False)
    except Exception as e:  # EOFError, UnpicklingError, RuntimeError: the file is damaged
        raise FexaError(f"damaged training state {path}: {type(e).__name__}: {e}") from None


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, state) of a checkpoint folder; an error naming the damaged or missing file."""
    return read_weights(folder / "model.safetensors"), read_state(folder / "state.pt")


def resume_point(checkpoints: Path, name: str | None, config_hint: str) -> tuple[str, dict, dict, list[str]]:
    """The checkpoint to continue from: ``name`` if given, else the first intact of ``RESUMABLE``.
    Returns (its name, weights, state, notes on damaged checkpoints skipped). Fails naming every
    damaged file and the commands that go on (``--from best_val``, or ``--overwrite``)."""
    names = [name] if name else list(RESUMABLE)
    problems = []
    for n in names:
        folder = checkpoints / n
        if not folder.is_dir():
            problems.append(f"no checkpoint {folder}")
            continue
        try:
            weights, state = load_checkpoint(folder)
            return n, weights, state, problems
        except FexaError as e:
            problems.append(str(e))
    others = sorted(p.name for p in checkpoints.iterdir() if p.is_dir() and p.name not in names) \
        if checkpoints.is_dir() else []
    options = [f"`fexa train {config_hint} --resume --from {o}`" for o in others]
    raise FexaError("cannot resume: " + "; ".join(problems) + ". Continue with "
                    + (", or ".join(options) + ", or start over with " if options else "")
                    + f"`fexa train {config_hint} --overwrite`")
