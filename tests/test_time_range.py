"""``--start``/``--end``: one part of a recording analysed without a video editor; outputs keep the
input's timestamps, and two parts of one file never share a cache entry or an output folder."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO
from fexa.analysis.analyzer import Analyzer
from fexa.errors import FexaError
from fexa.extract import ExtractConfig
from fexa.io.media import Media


def test_a_part_keeps_the_inputs_times_and_matches_the_whole_analysis(tmp_path):
    analyzer = Analyzer(cache=tmp_path / "cache")
    whole = analyzer.analyze(DEMO)
    part = Analyzer(cache=tmp_path / "cache", start=0.5, end=1.5).analyze(DEMO)
    times = np.array([f.time for f in Media(DEMO).frames()])
    inside = (times >= 0.5) & (times < 1.5)
    np.testing.assert_array_equal(part.frames["time"].to_numpy(), times[inside])  # the file's own timestamps
    assert part.entry != whole.entry  # its own cache entry
    a = whole.frames.loc[inside, "mouth_width"].to_numpy()
    b = part.frames["mouth_width"].to_numpy()
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.sum() >= 25 and np.corrcoef(a[ok], b[ok])[0, 1] > 0.95  # the same face, tracked from a later start


def test_two_parts_of_one_file_get_their_own_folders(tmp_path):
    for start, end in ((0.0, 1.0), (1.0, 2.0)):
        r = subprocess.run([sys.executable, "-m", "fexa", "analyze", str(DEMO), "--out", str(tmp_path), "--quiet",
                            "--start", str(start), "--end", str(end)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert sorted(summary["id"].str.rsplit("-t", n=1).str[1]) == ["0-1s", "1-2s"]
    for ident in summary["id"]:
        frames = pd.read_csv(tmp_path / ident / "frames.csv")
        lo, hi = (float(x) for x in ident.rsplit("-t", 1)[1].removesuffix("s").split("-"))
        assert frames["time"].between(lo, hi, inclusive="left").all()


@pytest.mark.parametrize("start, end, word", [(-1.0, None, "start"), (2.0, 1.0, "end")])
def test_a_bad_range_is_refused_naming_it(start, end, word):
    with pytest.raises(FexaError, match=word):
        ExtractConfig(start=start, end=end)


def test_a_range_after_the_end_of_the_input_is_one_line_error(tmp_path):
    summary = Analyzer(cache=tmp_path / "cache", start=100.0).analyze_many([DEMO])
    assert summary.loc[0, "status"] == "error"
    assert "100" in summary.loc[0, "error"] and "\n" not in summary.loc[0, "error"]


def test_compare_reads_the_same_part_of_each_recording(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fexa", "compare", str(DEMO), str(DEMO), "--out", str(tmp_path), "--quiet",
                        "--start", "0.5", "--end", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    entries = [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    assert entries and all(e.endswith("-t0.5-2s") for e in entries), entries


def test_the_overlay_of_a_part_shows_that_parts_frames(tmp_path):
    part = Analyzer(cache=tmp_path / "cache", start=1.0, end=2.0).analyze(DEMO)
    video = part.write_overlay(tmp_path / "overlay.mp4")
    first = next(Media(video).frames()).rgb[:, :part.track.frame_size[1]].astype(float)  # the picture, not the panel
    source = {f.index: f.rgb.astype(float) for f in Media(DEMO).frames() if f.index in (0, 30)}
    assert np.abs(first - source[30]).mean() < 0.5 * np.abs(first - source[0]).mean()  # 1.0 s is frame 30
