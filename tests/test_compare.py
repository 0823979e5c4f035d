"""Change across visits (fexa.analysis.compare): the statistics against hand-computed values, and a
real clip against itself and against a copy with half its movement."""

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO, shared_file
from fexa.analysis.analyzer import Analyzer
from fexa.analysis.compare import bootstrap_means, compare_results, recording_units, split_half_noise
from fexa.errors import FexaError


def test_split_half_noise_and_bootstrap_match_hand_computed_values():
    rng = np.random.default_rng(0)
    # [1, 2, 3, 4] splits into halves 6 ways; the half-mean differences are +-2, +-1, 0, 0: variance 10/6,
    # so the noise SD of the full mean is sqrt(10/6) / 2 = 0.645 (= std(ddof=1) / sqrt(4), as it should)
    assert split_half_noise(np.array([1.0, 2, 3, 4]), rng, 4000) == pytest.approx(np.sqrt(10 / 6) / 2, rel=0.05)
    assert split_half_noise(np.array([5.0, np.nan]), rng) != split_half_noise(np.array([5.0, np.nan]), rng)  # NaN
    means = bootstrap_means(np.array([0.0, 10.0]), rng, 20000)  # means 0, 5, 10 with probabilities 1/4, 1/2, 1/4
    assert set(np.unique(means)) == {0.0, 5.0, 10.0} and (means == 5).mean() == pytest.approx(0.5, abs=0.02)
    assert np.isnan(bootstrap_means(np.array([3.0]), rng, 10)).all()


@pytest.fixture(scope="module")
def brows(tmp_path_factory):
    """LivePortrait d11: eyebrows raised five times in 9 s (the brow task, repetitions found by fexa)."""
    return Analyzer(cache=tmp_path_factory.mktemp("cmp"), task="brow").analyze(
        shared_file("liveportrait_driving_videos/d11.mp4"))


def test_a_recording_against_itself_and_against_half_its_movement(brows):
    assert len(brows.repetitions) >= 4
    units = recording_units(brows)
    assert units.basis == f"{len(brows.repetitions)} repetitions" and len(units.values) == len(brows.repetitions)
    same = compare_results([brows, brows], ["visit 1", "visit 2"]).set_index("measure")
    per_unit = same[same["verdict"] != "whole-recording values only: no uncertainty for a total or trend"]
    assert (per_unit["change"].abs() < 1e-12).all()
    assert (per_unit.loc[per_unit["change"].notna(), "verdict"] == "within test-retest noise").all()
    half = dataclasses.replace(brows, track=brows.track.scaled_motion(0.5))  # the same face moving half as far
    df = compare_results([brows, half], ["before", "after"]).set_index("measure")
    for name in ("rom_right_brow", "rom_left_brow", "repetition_amplitude"):
        r = df.loc[name]
        assert r["value"] == pytest.approx(0.5 * r["baseline"], rel=0.05)
        assert r["baseline_low"] <= r["baseline"] <= r["baseline_high"] and r["smallest_detectable_change"] > 0
    # halving is beyond the noise of five repetitions for the right brow and the repetition amplitude
    # (measured: change -0.056 IOD vs smallest detectable 0.043; -0.047 vs 0.029), not for the left brow,
    # whose repetitions vary from 0.045 to 0.18 IOD
    for name in ("rom_right_brow", "repetition_amplitude"):
        assert df.loc[name, "verdict"] == "lower" and df.loc[name, "change_high"] < 0
    assert df.loc["rom_left_brow", "verdict"] == "within test-retest noise"
    with pytest.raises(FexaError, match="different tasks"):
        compare_results([brows, dataclasses.replace(brows, task="smile")])
    with pytest.raises(FexaError, match="d11.mp4 is a still image"):
        compare_results([brows, dataclasses.replace(brows, task_source="image")])


def test_cli_compare_writes_a_table_plot_and_page(tmp_path):
    r = subprocess.run([sys.executable, "-m", "fexa", "compare", str(DEMO), str(DEMO), "--out", str(tmp_path),
                        "--labels", "visit 1", "visit 2", "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "compare.csv")
    assert (df["visit"] == "visit 2").all() and (df["change"].fillna(0) == 0).all()
    # 2.4 s with one smile: no units to estimate an uncertainty from, and the page says so
    assert df["verdict"].str.startswith(("no uncertainty", "whole-recording")).all()
    page = (tmp_path / "compare.html").read_text()
    assert "Change across visits" in page and "Range of motion: upper lip" in page and "nan" not in page.lower()
