"""Where output cannot be written (issue 26): a full disk and an --out that is a file each give one
line naming the path and what to do, never an "internal error" or a stray traceback."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO


def _analyze(out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fexa", "analyze", str(DEMO), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300)


def test_a_full_disk_is_one_line_naming_the_path(tmp_path):
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        r = _analyze(disk / "out")
        assert r.returncode == 1
        text = r.stdout + r.stderr
        assert "no space left on the disk holding" in text and str(disk) in text
        assert "internal error" not in text and "Traceback" not in text and "Exception ignored" not in text
        summary = pd.read_csv(disk / "out" / "summary.csv")
        assert summary.loc[0, "status"] == "error" and "free some space" in summary.loc[0, "error"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    r = _analyze(tmp_path / "results")
    assert r.returncode == 1
    assert "internal error" not in r.stderr and "it must name a folder" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
