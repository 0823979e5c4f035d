"""One writer per run folder: ``RUN/train.lock``, ``flock``-ed by the training process while it trains.

Two ``fexa train`` processes on one folder would interleave their checkpoints and metrics silently;
the second one is refused at once, naming the holder. The kernel drops the lock when its holder
exits or dies, so a killed run leaves nothing that blocks a later ``--resume``. The lock file itself
stays (deleting it would let a second process lock a new file while the first still holds the old).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fexa.errors import FexaError

LOCK_NAME = "train.lock"


@contextmanager
def hold_run(run: Path, config_hint: str = "CONFIG") -> Iterator[None]:
    """Hold ``run``'s lock (creating the folder) for the ``with`` block, or fail naming its holder."""
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK_NAME
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise FexaError(f"{run} is being trained by {holder} (lock {path}): wait for it to finish, or stop it and "
                            f"continue with `fexa train {config_hint} --resume`") from None
        f.seek(0)
        f.truncate()
        f.write(f"host {socket.gethostname()} pid {os.getpid()}\n")
        f.flush()
        yield  # closing the file releases the lock


def clear_run(run: Path) -> None:
    """Empty a held run folder for a fresh start, keeping its lock file."""
    for p in run.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
