"""Where output cannot be written (issue 26): a full disk and an --out that is a file each give one
line naming the path and what to do, never an "internal error" or a stray traceback."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import DEMO


def _run(command: str, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fexa", command, str(DEMO), "--out", str(out)]
                          + (["--quiet"] if command == "analyze" else []), capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command, size, table", [("analyze", "1m", "summary.csv"), ("extract", "400k", "manifest.csv")])
def test_a_full_disk_is_one_line_naming_the_path(tmp_path, command, size, table):
    """1 MB fills while analyze writes the overlay; 400 kB while extract writes the crops (numpy's
    zip writer had then printed 'Exception ignored in ... ZipFile.__del__' tracebacks)."""
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        r = _run(command, disk / "out")
        text = r.stdout + r.stderr
        assert "no space left on the disk holding" in text and str(disk) in text
        assert "internal error" not in text and "Traceback" not in text and "Exception ignored" not in text
        rows = pd.read_csv(disk / "out" / table)
        assert rows.loc[0, "status"] == "error" and "free some space" in rows.loc[0, "error"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    r = _run("analyze", tmp_path / "results")
    assert r.returncode == 1
    assert "internal error" not in r.stderr and "it must name a folder" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_read_only_output_folder_is_one_line(tmp_path):
    disk = tmp_path / "ro"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        r = _run("analyze", disk / "out")
        assert r.returncode == 1
        assert "the file system is read-only; choose another output folder" in r.stderr
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=True)
