"""Several analyze runs into one --out, and runs killed mid-write (issue 26): no summary row is
lost, and a dead run's half-written files do not stay."""

import re
import socket
import subprocess
import sys
import textwrap

import pandas as pd

from conftest import DEMO


def test_two_processes_merging_into_one_summary_lose_no_row(tmp_path):
    """Without the lock, two writers read the same old summary and the second rewrite drops the
    first's rows (1 run in 6 lost one with real analyses); 60 merges each make a race certain."""
    script = textwrap.dedent(f"""
        import sys
        import pandas as pd
        from pathlib import Path
        from fexa.analysis.analyzer import merge_summary
        for k in range(60):
            merge_summary(Path({str(tmp_path / "summary.csv")!r}), pd.DataFrame([{{"id": f"{{sys.argv[1]}}{{k}}",
                          "status": "error", "error": "x"}}]))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    ids = set(pd.read_csv(tmp_path / "summary.csv")["id"])
    assert ids == {f"{n}{k}" for n in "ab" for k in range(60)}


def test_a_killed_runs_temporaries_are_removed_by_the_next_run(tmp_path):
    from fexa.analysis.analyzer import Analyzer
    from fexa.io.fingerprint import entry_name

    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())  # as fexa.io.atomic names its temporaries
    folder = tmp_path / entry_name(DEMO)
    folder.mkdir()
    dead = [folder / f".overlay.mp4.{host}@999999.abc.tmp.mp4", folder / f".regions.png.{host}@999999.abc.tmp.png",
            tmp_path / f".summary.csv.{host}@999999.abc.tmp.csv"]  # pid 999999: no such process
    for p in dead:
        p.write_bytes(b"")
    Analyzer(cache=tmp_path / "cache").analyze_many([DEMO], out=tmp_path)
    assert not any(p.exists() for p in dead)
    assert (folder / "overlay.mp4").is_file()
