"""Training checkpoints: ``RUN/checkpoints/<name>/`` holds ``model.safetensors``, ``config.json`` and
``state.pt`` (optimiser, scheduler, RNG, epoch, history), swapped in atomically.

``last`` is written every epoch and the one before it is kept as ``previous``, so a ``last`` damaged
on disk (a full disk, a copy cut short) costs one epoch, not the run; ``best_val`` is the epoch
chosen on validation subjects. Every read names the file that failed and what to do next.

``state.pt`` is read with torch's ``weights_only`` unpickler (tensors, numbers, strings, containers)
and numpy's array and scalar rebuilders (the numpy RNG state, metrics): a run folder received from
someone else cannot run code on ``--resume``; a state asking for anything else is refused.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from fexa.errors import FexaError
from fexa.io.atomic import atomic_dir, remove_stale_temporaries, write_json
from fexa.models.restricted_pickle import SAFE_GLOBALS

RESUMABLE = ("last", "previous")  # tried in this order by --resume
# numpy's array, scalar and dtype rebuilders: data only (the numpy RNG state, metrics as numpy scalars)
NUMPY_GLOBALS = [(obj, name) for name, obj in SAFE_GLOBALS.items() if name.startswith("numpy.")] \
    + [getattr(np.dtypes, n) for n in np.dtypes.__all__]


def save_checkpoint(path: Path, model: nn.Module, config: dict, state: dict, keep_previous: bool = False) -> None:
    """Weights (safetensors), config (JSON) and training state into the folder ``path``, swapped in
    atomically; with ``keep_previous`` the checkpoint it replaces becomes ``previous`` beside it.
    Leftovers of a killed run's checkpoint writes beside it are removed first (never a live run's)."""
    if path.parent.is_dir():
        remove_stale_temporaries(path.parent)
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
    """A checkpoint's ``state.pt`` read without running anything from it, or an error naming the file."""
    if not path.is_file():
        raise FexaError(f"no training state at {path}")
    with torch.serialization.safe_globals(NUMPY_GLOBALS):
        try:
            return torch.load(path, weights_only=True)
        except pickle.UnpicklingError as e:  # the safe unpickler met something it does not rebuild
            calls = _unsafe_globals(path)
            reason = f"reading it would call {', '.join(calls)}" if calls \
                else _first_line(str(e).rpartition("WeightsUnpickler error:")[2])
            raise FexaError(f"refused training state {path}: {reason} (a fexa state holds only tensors, numbers and "
                            "containers; was the file made elsewhere?)") from None
        except Exception as e:  # EOFError, RuntimeError: the file is damaged
            raise FexaError(f"damaged training state {path}: {type(e).__name__}: {_first_line(str(e))}") from None


def _first_line(text: str) -> str:
    """A message's first non-blank line: torch's run on over several."""
    return text.strip().partition("\n")[0]


def _unsafe_globals(path: Path) -> list[str]:
    """The functions and classes a ``torch.save`` file names beyond what :func:`read_state` allows ([] if unreadable)."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint, or damaged: the load's own error says more
        return []


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
