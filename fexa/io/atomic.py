"""Atomic writes: a file or folder is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, is_dir: bool) -> None:
    """Give a temporary (created private) the permissions a normal file or folder would get."""
    os.chmod(path, (0o777 if is_dir else 0o666) & ~_umask())


def _owner() -> str:
    """Who makes a temporary: ``<host>@<pid>``, so that concurrent processes (shards) never take
    each other's work in progress for leftovers."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname()) or "host"
    return f"{host}@{os.getpid()}"


_OWNER_RE = re.compile(r"\.(?P<host>[A-Za-z0-9-]+)@(?P<pid>\d+)\.")


@contextlib.contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it over ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{_owner()}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish_mode(tmp_path, is_dir=False)
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Arrays as a compressed ``.npz``, compressed in memory first: a write that fails (a full disk)
    is then one OSError, not numpy's half-closed zip file complaining on stderr as it is collected."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(buffer.getbuffer())


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_table(table: Any, path: str | Path) -> Path:
    """A pandas DataFrame as CSV, JSON (records) or Parquet, chosen by ``path``'s suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        elif path.suffix == ".json":
            tmp.write_text(table.to_json(orient="records", indent=1))
        else:
            tmp.write_text(table.to_csv(index=False))
    return path


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Build a folder in a temporary sibling and swap it in for ``final`` only on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{_owner()}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        _publish_mode(tmp, is_dir=True)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.{_owner()}.", suffix=".old.tmp", dir=final.parent))
            os.rmdir(old)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def is_stale(path: Path, max_age_h: float = 24.0) -> bool:
    """A temporary is stale when the process that made it has ended (same host), or, made on
    another host or by an older fexa (no owner in its name), when it is older than ``max_age_h``."""
    m = _OWNER_RE.search(path.name)
    if m and m["host"] == _owner().split("@")[0]:
        return int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"]))
    try:
        return time.time() - path.lstat().st_mtime > max_age_h * 3600
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) for the block: processes
    that read, change and rewrite one shared file (a summary) take their turns instead of losing
    each other's changes. The kernel releases it when the process ends, however it ends."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete leftovers of interrupted atomic writes (hidden ``*.tmp*`` entries) whose makers have
    ended (see ``is_stale``); other processes' work in progress is left alone. Returns how many."""
    n = 0
    for p in Path(folder).glob(".*.tmp*"):
        if not is_stale(p):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
