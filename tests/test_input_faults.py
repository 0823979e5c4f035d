"""Inputs that once hung or stopped a whole batch (issue 26): a FIFO named like a video, a symbolic
link that leads back to itself. Each becomes its own one-line error row; the others are analysed."""

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO, by_stem


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("command", ["analyze", "extract"])
def test_a_fifo_and_a_link_loop_are_error_rows_and_the_batch_finishes(tmp_path, command):
    folder = tmp_path / "inputs"
    folder.mkdir()
    shutil.copy(DEMO, folder / "good.mp4")
    os.mkfifo(folder / "pipe.mp4")  # opening it for reading would wait for a writer forever
    os.symlink("loop.mp4", folder / "loop.mp4")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "fexa", command, str(folder), str(folder / "pipe.mp4"), "--out", str(out)]
                       + (["--quiet"] if command == "analyze" else []),
                       capture_output=True, text=True, timeout=300)  # a hang fails here, not forever
    assert "internal error" not in r.stdout + r.stderr
    table = by_stem(pd.read_csv(out / ("summary.csv" if command == "analyze" else "manifest.csv")))
    assert table.loc["good", "status"] == "ok"
    assert table.loc["pipe", "status"] == "error" and "not a regular file" in table.loc["pipe", "error"]
    assert table.loc["loop", "status"] == "error" and "symbolic link loop" in table.loc["loop", "error"]
