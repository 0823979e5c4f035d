"""Progress bars that suit where they are written: tqdm's live bar on a terminal; plain lines
(no ``\\r``, no cursor codes), at most one every ``LOG_INTERVAL`` s per bar, when the output is
redirected to a log file or a pipe. Use ``from fexa.progress import tqdm`` instead of tqdm's own."""

from __future__ import annotations

import re
import sys

from tqdm.auto import tqdm as _terminal_tqdm
from tqdm.std import tqdm as _plain_tqdm

LOG_INTERVAL = 30.0  # s between a bar's lines in a log
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")  # cursor movements and carriage returns


class LineStream:
    """A text stream that turns tqdm's in-place updates into whole lines: carriage returns and
    ANSI cursor codes are dropped, each non-blank update ends with a newline."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        line = _CONTROL.sub("", str(text)).strip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LogTqdm(_plain_tqdm):
    """tqdm writing plain lines (see ``LineStream``) at most every ``LOG_INTERVAL`` s; an inner bar
(``leave=False``) writes nothing unless it runs longer than that."""

    def __init__(self, *args, **kwargs):
        kwargs["file"] = LineStream(kwargs.get("file") or sys.stderr)
        kwargs.setdefault("mininterval", LOG_INTERVAL)
        kwargs["dynamic_ncols"], kwargs["ncols"] = False, None
        if kwargs.get("leave") is False:
            kwargs.setdefault("delay", LOG_INTERVAL)
        super().__init__(*args, **kwargs)


def tqdm(*args, **kwargs):
    """A progress bar: tqdm's own on a terminal, plain lines elsewhere (same arguments as tqdm)."""
    stream = kwargs.get("file") or sys.stderr
    return (_terminal_tqdm if _is_terminal(stream) else _LogTqdm)(*args, **kwargs)
