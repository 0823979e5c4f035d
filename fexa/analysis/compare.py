"""Change across visits: the same person's recordings (visits, before/after treatment) compared
measure by measure, each change with its uncertainty and against the measure's own test-retest noise.

Each recording is cut into units: the repetitions of the task's movement when there are at least
two, else consecutive ``WINDOW``-s windows (task-free measures of ordinary footage). Every measure
is computed on each unit (``compute_measures`` on the unit's frames), and a visit's value is the
mean over its units. Then, per measure:

* **uncertainty**: a percentile bootstrap over units (``BOOTSTRAP`` resamples of each visit's units,
  drawn independently per visit) gives the 95 % interval of each visit's value and of the change;
* **test-retest noise**: splitting a recording's units at random into two halves (``SPLITS`` times)
  gives the spread of a half-recording's value; the variance of the difference of two halves is
  4x the variance of a full recording's value (each half has half the units, and two halves
  differ by two such errors), so a full recording's noise SD is SD(difference) / 2. The
  *smallest detectable change* between two visits is 1.96 x sqrt(noise_A^2 + noise_B^2); a smaller
  change is flagged "within test-retest noise".

Measures that total or trend over a whole recording (repetition and blink counts, closure time,
repetition variability, fatigue) have no per-unit value and are compared only as whole-recording
values, without uncertainty. fexa does not check that the recordings show the same person.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.analysis.measures import MEASURES, clip_duration, compute_measures
from fexa.analysis.tasks import get_task
from fexa.errors import FexaError
from fexa.io.atomic import atomic_path, write_table

BOOTSTRAP = 2000
SPLITS = 200
WINDOW = 5.0  # s: the unit of recordings without >= 2 repetitions
Z95 = 1.96
WHOLE_ONLY = ("repetitions", "blink_count", "eye_closures", "eye_closure_time", "repetition_variability", "fatigue")


@dataclass(frozen=True)
class Units:
    """One recording's per-unit measure values: ``values`` [units x measures], ``basis`` in words."""

    values: pd.DataFrame
    basis: str


def recording_units(result) -> Units:
    """The units of an analysed recording (``fexa.analysis.analyzer.Result``) and every measure on
    each: its repetitions when there are >= 2, else ``WINDOW``-s windows."""
    track, task = result.track, result.task
    reps = result.repetitions
    if get_task(task).signal is not None and len(reps) >= 2:
        spans = list(zip(reps["start"].astype(int), reps["end"].astype(int)))
        basis = f"{len(spans)} repetitions"
    else:
        n = int(clip_duration(track.times) // WINDOW)
        edges = np.searchsorted(track.times, track.times[0] + WINDOW * np.arange(n + 1))
        spans = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        basis = f"{n} windows of {WINDOW:g} s"
    rows = []
    for start, end in spans:
        sub = track.subclip(start, end)
        if not sub.usable.any():
            continue
        m = compute_measures(sub, task)  # hidden frames are already NaN in the result's track
        rows.append(m.set_index("measure")["value"])
    return Units(pd.DataFrame(rows).reset_index(drop=True), basis)


def bootstrap_means(values: np.ndarray, rng: np.random.Generator, n: int = BOOTSTRAP) -> np.ndarray:
    """``n`` bootstrap resamples of the mean of ``values`` (NaN values left out; NaN if < 2 remain)."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return np.full(n, np.nan)
    return v[rng.integers(0, len(v), size=(n, len(v)))].mean(axis=1)


def split_half_noise(values: np.ndarray, rng: np.random.Generator, n: int = SPLITS) -> float:
    """The test-retest noise SD of the mean of ``values``: SD over ``n`` random half splits of
    (mean of one half - mean of the other) / 2 (NaN with fewer than 2 finite values)."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return float("nan")
    half = len(v) // 2
    d = []
    for _ in range(n):
        perm = rng.permutation(len(v))
        d.append(v[perm[:half]].mean() - v[perm[half:2 * half]].mean())
    return float(np.std(d, ddof=1) / 2)


def compare_results(results: list, labels: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Every measure of each recording against the first (the baseline). One row per measure and
    later visit: measure, visit, basis (units of each), baseline and value (mean over units) with
    95 % intervals, whole-recording values, change (value - baseline) and its interval, noise_sd of
    each, smallest_detectable_change, verdict ("within test-retest noise", "higher", "lower", or
    why it cannot be said). Results must show the same task."""
    if len(results) < 2:
        raise FexaError(f"compare needs at least two recordings, got {len(results)}")
    labels = labels or [r.source.name for r in results]
    if len(labels) != len(results):
        raise FexaError(f"{len(labels)} labels for {len(results)} recordings")
    images = [r.source.name for r in results if r.task_source == "image"]
    if images:
        raise FexaError(f"compare needs recordings with movement; {', '.join(images)} is a still image")
    tasks = {r.task for r in results}
    if len(tasks) > 1:
        raise FexaError(f"the recordings show different tasks ({', '.join(sorted(tasks))}): compare recordings of "
                        "the same task (give it with --task)")
    rng = np.random.default_rng(seed)
    units = [recording_units(r) for r in results]
    whole = [r.measures.set_index("measure")["value"] for r in results]
    primary = results[0].measures.set_index("measure")["primary"]
    rows = []
    base_u, base_w = units[0], whole[0]
    for k in range(1, len(results)):
        u, w = units[k], whole[k]
        for name in MEASURES:
            row = {"measure": name, "visit": labels[k], "baseline_visit": labels[0], "primary": bool(primary[name]),
                   "unit": MEASURES[name].unit, "basis": f"{base_u.basis} / {u.basis}",
                   "baseline_whole": float(base_w[name]), "whole": float(w[name])}
            if name in WHOLE_ONLY or name not in base_u.values or name not in u.values:
                row.update(change=row["whole"] - row["baseline_whole"],
                           verdict="whole-recording values only: no uncertainty for a total or trend"
                           if name in WHOLE_ONLY else "no uncertainty: fewer than 2 units (repetitions or windows) "
                           "in a recording; whole-recording values compared")
                rows.append(row)
                continue
            a, b = base_u.values[name].to_numpy(float), u.values[name].to_numpy(float)
            boot_a, boot_b = bootstrap_means(a, rng), bootstrap_means(b, rng)
            noise_a, noise_b = split_half_noise(a, rng), split_half_noise(b, rng)
            sdc = Z95 * float(np.hypot(noise_a, noise_b))
            change = float(np.nanmean(b) - np.nanmean(a)) if np.isfinite(a).any() and np.isfinite(b).any() \
                else float("nan")
            diff = boot_b - boot_a
            row.update(baseline=float(np.nanmean(a)) if np.isfinite(a).any() else float("nan"),
                       baseline_low=_q(boot_a, 2.5), baseline_high=_q(boot_a, 97.5),
                       value=float(np.nanmean(b)) if np.isfinite(b).any() else float("nan"),
                       value_low=_q(boot_b, 2.5), value_high=_q(boot_b, 97.5),
                       change=change, change_low=_q(diff, 2.5), change_high=_q(diff, 97.5),
                       baseline_noise_sd=noise_a, noise_sd=noise_b, smallest_detectable_change=sdc,
                       verdict=_verdict(change, sdc, a, b))
            rows.append(row)
    return pd.DataFrame(rows)


def _q(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if np.isfinite(x).all() else float("nan")


def _verdict(change: float, sdc: float, a: np.ndarray, b: np.ndarray) -> str:
    if not np.isfinite(change):
        return "not measurable in both recordings"
    if np.isfinite(a).sum() < 2 or np.isfinite(b).sum() < 2 or not np.isfinite(sdc):
        return "no uncertainty: fewer than 2 units (repetitions or windows) in a recording"
    if abs(change) < sdc:
        return "within test-retest noise"
    return "higher" if change > 0 else "lower"


def plot_comparison(df: pd.DataFrame, labels: list[str], path: Path, limit: int = 12) -> Path:
    """Side by side, per measure (the baseline's primary ones with values, at most ``limit``):
    each visit's value with its 95 % interval; a change beyond test-retest noise in red."""
    from fexa.analysis.glossary import describe
    from fexa.viz.pyplot import pyplot

    shown = df[df["primary"] & df["baseline"].notna() & df["value"].notna()] if "baseline" in df else df.iloc[:0]
    names = list(dict.fromkeys(shown["measure"]))[:limit]
    if not names:
        raise FexaError("no measure has per-unit values in every recording: nothing to plot")
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        sub = shown[shown["measure"] == name]
        first = sub.iloc[0]
        y = [first["baseline"], *sub["value"]]
        lo = [first["baseline_low"], *sub["value_low"]]
        hi = [first["baseline_high"], *sub["value_high"]]
        colors = ["tab:blue", *("tab:red" if v in ("higher", "lower") else "tab:gray" for v in sub["verdict"])]
        x = np.arange(len(y))
        for xi, yi, l0, h0, c in zip(x, y, lo, hi, colors):
            ax.errorbar(xi, yi, yerr=[[yi - l0], [h0 - yi]], fmt="o", color=c, capsize=4)
        ax.set_xticks(x, labels[:len(y)], fontsize=8, rotation=20)
        ax.set_xlim(-0.5, len(y) - 0.5)
        d = describe(name)
        ax.set_title(d.label, fontsize=9)
        ax.set_ylabel(MEASURES[name].unit, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("mean over units with 95% bootstrap interval; red: change beyond test-retest noise", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    pyplot().close(fig)
    return path


def write_comparison(df: pd.DataFrame, labels: list[str], out: str | Path, fmt: str = "csv") -> Path:
    """``out/compare.<fmt>`` (the table), ``out/compare.png`` and a self-contained ``out/compare.html``."""
    import base64
    import html

    from fexa.analysis.glossary import describe
    from fexa.analysis.report import STYLE, format_value

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(df, out / f"compare.{fmt}")
    try:
        png = plot_comparison(df, labels, out / "compare.png")
        picture = f'<img alt="comparison" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
    except FexaError as e:
        picture = f"<p>{html.escape(str(e))}</p>"

    def cell(v: float, lo: float, hi: float, unit: str) -> str:
        text = format_value(v, unit, "")
        return text + (f" <span class=note>({lo:.3g} to {hi:.3g})</span>" if np.isfinite(lo) and np.isfinite(hi) else "")

    body = []
    for r in df.itertuples():
        d = describe(r.measure)
        get = r._asdict().get
        if get("baseline") is None or not np.isfinite(get("baseline", np.nan)):
            a, b = format_value(r.baseline_whole, r.unit, ""), format_value(r.whole, r.unit, "")
        else:
            a = cell(r.baseline, r.baseline_low, r.baseline_high, r.unit)
            b = cell(r.value, r.value_low, r.value_high, r.unit)
        ch = get("change", np.nan)
        change = cell(ch, get("change_low", np.nan), get("change_high", np.nan), r.unit) if np.isfinite(ch) else "-"
        sdc = get("smallest_detectable_change", np.nan)
        strong = r.verdict in ("higher", "lower")
        verdict = f"<b>{html.escape(r.verdict)}</b>" if strong else html.escape(r.verdict)
        body.append(f'<tr{" class=primary" if r.primary else ""} title="{html.escape(r.measure)} = '
                    f'{html.escape(d.formula)}"><td>{html.escape(d.label)}</td><td>{html.escape(r.visit)}</td>'
                    f'<td class=num>{a}</td><td class=num>{b}</td><td class=num>{change}</td>'
                    f'<td class=num>{format_value(sdc, r.unit, "") if np.isfinite(sdc) else "-"}</td>'
                    f"<td>{html.escape(d.unit)}</td><td>{verdict}</td></tr>")
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fexa comparison</title>
<style>{STYLE} tr.primary td{{background:#f3f8f3}}</style></head><body>
<h1>Change across visits</h1>
<p>Baseline: <b>{html.escape(labels[0])}</b>; compared: {", ".join(html.escape(x) for x in labels[1:])}.
Units: {html.escape(str(df["basis"].iloc[0]))}.</p>
<p class=note>Each value is the mean over the recording's units (the task's repetitions, or 5-s windows) with its
95% bootstrap interval in brackets. A change smaller than the <i>smallest detectable change</i> (1.96 x the test-retest
noise, estimated by splitting each recording's units in halves) is reported as within noise. fexa does not check
that the recordings show the same person.</p>
{picture}
<table><tr><th>measure</th><th>visit</th><th>baseline</th><th>this visit</th><th>change</th>
<th>smallest detectable change</th><th>unit</th><th>verdict</th></tr>{"".join(body)}</table>
<p class=note>Rows of measures serving the task are shaded. These measures describe facial movement; they are not a
diagnosis.</p></body></html>"""
    with atomic_path(out / "compare.html") as tmp:
        tmp.write_text(page)
    return out
