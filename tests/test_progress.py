"""Progress bars in a log file: whole lines, no carriage returns or cursor codes (issue 25)."""

import io

from fexa.progress import tqdm


def test_redirected_bars_write_plain_lines():
    log = io.StringIO()  # not a terminal
    for _ in tqdm(range(3), desc="outer", file=log):
        for _ in tqdm(range(4), desc="inner", leave=False, file=log):
            pass
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[-1].startswith("outer: 100%") and "3/3" in lines[-1]
    assert not any(line.startswith("inner") for line in lines)  # short inner bars stay silent in a log
