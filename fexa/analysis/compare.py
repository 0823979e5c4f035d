"""Change across visits: the same person's recordings (visits, before/after treatment) compared
measure by measure, each change with its uncertainty and against the measure's own test-retest noise.

Each recording is cut into units: the repetitions of the task's movement when there are at least
``MIN_UNITS``, else consecutive ``WINDOW``-s windows (task-free measures of ordinary footage). Every
measure is computed on each unit (``compute_measures`` on the unit's frames), and a visit's value is
the mean over its units. Then, per measure:

* **uncertainty**: a percentile bootstrap over units (``BOOTSTRAP`` resamples of each visit's units,
  drawn independently per visit) gives the 95 % interval of each visit's value and of the change;
* **test-retest noise**: splitting a recording's units at random into two halves (``SPLITS`` times)
  gives the spread of a half-recording's value; the variance of the difference of two halves is
  4x the variance of a full recording's value (each half has half the units, and two halves
  differ by two such errors), so a full recording's noise SD is SD(difference) / 2. The
  *smallest detectable change* between two visits is 1.96 x sqrt(noise_A^2 + noise_B^2); a smaller
  change is flagged "within test-retest noise".

A recording with fewer than ``MIN_UNITS`` units with a value gives no interval: its
whole-recording values are compared as they are, and the row says why. Counts and totals (blinks,
repetitions, eye closures and their time: ``accumulates``) grow with the recording's length, so
they are compared per minute of recording; trends over the repetitions (their variability, the
change of size over them) have no per-unit value. Both are compared as whole-recording values,
without uncertainty. Each later recording's subject is compared with the baseline's by their face
descriptors (``identity_check``, fexa.face.identity), which says when they differ; a match is not
proof of identity (``IDENTITY_WARNING``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.analysis.measures import MEASURES, Measure, clip_duration, compute_measures
from fexa.analysis.report import COUNT_UNITS
from fexa.analysis.tasks import get_task
from fexa.errors import FexaError
from fexa.io.atomic import atomic_path, write_table

BOOTSTRAP = 2000
SPLITS = 200
WINDOW = 5.0  # s: the unit of recordings without MIN_UNITS repetitions
MIN_UNITS = 3  # units with a value below which no interval or noise is estimated
Z95 = 1.96
LEGEND_HEIGHT = 0.7  # inches below the panels of compare.png for its legend
TREND_ASPECTS = ("variability", "fatigue")  # measures over the repetitions' sequence: no per-unit value
IDENTITY_WARNING = ("a face match is a check, not a proof: make sure these recordings show the same person before "
                    "reading any change")

HIGHER, LOWER, WITHIN = "higher", "lower", "within test-retest noise"
NO_INTERVAL, WHOLE, NOT_MEASURABLE = "no interval", "whole recording", "not measurable"
_BEYOND = "the change is larger than the smallest detectable change (1.96 x the two recordings' combined test-retest noise)"
VERDICTS = {  # each verdict in words, said once (the legend of the page and the console)
    HIGHER: f"{_BEYOND}: an increase beyond the noise",
    LOWER: f"{_BEYOND}: a decrease beyond the noise",
    WITHIN: "the change is smaller than the smallest detectable change: the repetitions of one recording vary "
            "as much",
    NO_INTERVAL: f"fewer than {MIN_UNITS} units (repetitions or {WINDOW:g}-s windows) with a value in a recording: no "
                 "interval or noise can be estimated; the whole-recording values are compared as they are",
    WHOLE: "a count or total (compared per minute of recording, as the recordings' lengths differ) or a trend over "
           "the repetitions: one value per recording, no interval",
    NOT_MEASURABLE: "no value in one of the recordings (its report's flags say why)",
}


@dataclass(frozen=True)
class Units:
    """One recording's per-unit measure values: ``values`` [units x measures], ``basis`` in words."""

    values: pd.DataFrame
    basis: str


def recording_units(result) -> Units:
    """The units of an analysed recording (``fexa.analysis.analyzer.Result``) and every measure on
    each: its repetitions when there are >= ``MIN_UNITS``, else ``WINDOW``-s windows."""
    track, task = result.track, result.task
    reps = result.repetitions
    if get_task(task).signal is not None and len(reps) >= MIN_UNITS:
        spans = list(zip(reps["start"].astype(int), reps["end"].astype(int)))
        basis = f"{len(spans)} repetitions"
    else:
        n = int(clip_duration(track.times) // WINDOW)
        edges = np.searchsorted(track.times, track.times[0] + WINDOW * np.arange(n + 1))
        spans = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        basis = f"{n} window{'s' * (n != 1)} of {WINDOW:g} s"
    rows = []
    for start, end in spans:
        sub = track.subclip(start, end)
        if not sub.usable.any():
            continue
        m = compute_measures(sub, task)  # hidden frames are already NaN in the result's track
        rows.append(m.set_index("measure")["value"])
    return Units(pd.DataFrame(rows, columns=list(MEASURES)).reset_index(drop=True), basis)


def accumulates(m: Measure) -> bool:
    """A count or total that grows with the recording's length (blinks, repetitions, eye closures and
    their total time): compared per minute."""
    return m.unit in COUNT_UNITS or (m.aspect == "blinks" and m.unit == "s")


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
    later visit: measure, visit, primary, unit (the unit compared: counts and totals per minute),
    compared_as, basis (units of each), baseline_whole and whole (whole-recording values in the
    measure's own unit), baseline and value (compared values) with 95 % intervals, change (value -
    baseline) and its interval, noise_sd of each, smallest_detectable_change, verdict (a key of
    ``VERDICTS``) and reason (what this row's verdict rests on). Results must show the same task."""
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
    seconds = [clip_duration(r.track.times) for r in results]
    primary = results[0].measures.set_index("measure")["primary"]
    rows = []
    for k in range(1, len(results)):
        for name, m in MEASURES.items():
            row = {"measure": name, "visit": labels[k], "baseline_visit": labels[0], "primary": bool(primary[name]),
                   "unit": m.unit, "baseline_basis": units[0].basis, "basis": units[k].basis,
                   "baseline_length_s": seconds[0],
                   "length_s": seconds[k], "baseline_whole": float(whole[0][name]), "whole": float(whole[k][name])}
            pair = (0, k)
            if accumulates(m) or m.aspect in TREND_ASPECTS:
                row.update(_whole_row(m, [row["baseline_whole"], row["whole"]], [seconds[i] for i in pair],
                                      [labels[i] for i in pair]))
            else:
                row.update(_unit_row([units[i].values[name].to_numpy(float) for i in pair],
                                     [row["baseline_whole"], row["whole"]],
                                     [f"{labels[i]} ({units[i].basis})" for i in pair], rng))
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ["measure", "visit", "baseline_visit", "primary", "unit", "compared_as", "baseline_basis", "basis",
           "baseline_length_s",
           "length_s", "baseline_whole", "whole",
           "baseline", "baseline_low", "baseline_high", "value", "value_low", "value_high", "change", "change_low",
           "change_high", "baseline_noise_sd", "noise_sd", "smallest_detectable_change", "verdict", "reason"]


def _whole_row(m: Measure, values: list[float], seconds: list[float], labels: list[str]) -> dict:
    """A count or total per minute of recording, or a trend, compared as one value per recording."""
    if accumulates(m):
        rates = [60 * v / t if t > 0 else float("nan") for v, t in zip(values, seconds)]
        how = "; ".join(f"{lab}: {v:.3g} in {t:.1f} s" for lab, v, t in zip(labels, values, seconds))
        row = {"unit": f"{m.unit}/min", "compared_as": "per minute of recording", "baseline": rates[0],
               "value": rates[1], "reason": f"per minute of recording ({how})"}
    else:
        row = {"compared_as": "whole recording", "baseline": values[0], "value": values[1],
               "reason": "a trend over the repetitions: one value per recording"}
    return {**row, **_change(row["baseline"], row["value"], WHOLE, labels)}


def _unit_row(per_unit: list[np.ndarray], whole: list[float], labels: list[str], rng: np.random.Generator) -> dict:
    """A measure compared over units (mean, bootstrap interval, noise), or as whole-recording values
    when a recording has fewer than ``MIN_UNITS`` units with a value (``labels``: the recordings'
    names with their units, for the reason)."""
    counts = [int(np.isfinite(v).sum()) for v in per_unit]
    if min(counts) < MIN_UNITS:
        few = "; ".join(f"{lab}: {n}" for lab, n in zip(labels, counts) if n < MIN_UNITS)
        row = {"compared_as": "whole recording", "baseline": whole[0], "value": whole[1],
               "reason": f"units with a value: {few} (an interval needs {MIN_UNITS})"}
        return {**row, **_change(whole[0], whole[1], NO_INTERVAL, labels)}
    a, b = per_unit
    boot_a, boot_b = bootstrap_means(a, rng), bootstrap_means(b, rng)
    noise_a, noise_b = split_half_noise(a, rng), split_half_noise(b, rng)
    sdc = Z95 * float(np.hypot(noise_a, noise_b))
    change = float(np.nanmean(b) - np.nanmean(a))
    diff = boot_b - boot_a
    verdict = WITHIN if abs(change) < sdc else HIGHER if change > 0 else LOWER
    return {"compared_as": "mean over units", "baseline": float(np.nanmean(a)), "baseline_low": _q(boot_a, 2.5),
            "baseline_high": _q(boot_a, 97.5), "value": float(np.nanmean(b)), "value_low": _q(boot_b, 2.5),
            "value_high": _q(boot_b, 97.5), "change": change, "change_low": _q(diff, 2.5),
            "change_high": _q(diff, 97.5), "baseline_noise_sd": noise_a, "noise_sd": noise_b,
            "smallest_detectable_change": sdc, "verdict": verdict, "reason": ""}


def _change(baseline: float, value: float, verdict: str, labels: list[str]) -> dict:
    """The change of two values without uncertainty, and ``verdict`` unless one is missing."""
    if np.isfinite(baseline) and np.isfinite(value):
        return {"change": value - baseline, "verdict": verdict}
    missing = ", ".join(lab for lab, v in zip(labels, (baseline, value)) if not np.isfinite(v))
    return {"change": float("nan"), "verdict": NOT_MEASURABLE, "reason": f"no value in {missing}"}


def _q(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if np.isfinite(x).all() else float("nan")


def comparison_figure(df: pd.DataFrame, labels: list[str], limit: int = 12):
    """Side by side, per measure (the baseline's primary ones with a value in every recording, at
    most ``limit``): each visit's value with its 95 % interval, or without one (an open marker) where
    the row has none; a change beyond test-retest noise in red; one legend for all panels."""
    from matplotlib.lines import Line2D

    from fexa.analysis.glossary import describe
    from fexa.viz.pyplot import pyplot

    measured = df.groupby("measure", sort=False)["verdict"].transform(lambda v: (v != NOT_MEASURABLE).all())
    shown = df[df["primary"] & measured]
    names = list(dict.fromkeys(shown["measure"]))[:limit]
    if not names:
        raise FexaError("no measure serving the task has a value in every recording: nothing to plot")
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    height = 3.1 * rows + LEGEND_HEIGHT
    fig, axes = pyplot().subplots(rows, cols, figsize=(max(3.2 * cols, 7.0), height), squeeze=False)
    seen = set()  # which kinds of marker were drawn: the legend names only those
    for ax, name in zip(axes.flat, names):
        sub = shown[shown["measure"] == name]
        first = sub.iloc[0]
        y = [first["baseline"], *sub["value"]]
        lo = [first["baseline_low"], *sub["value_low"]]
        hi = [first["baseline_high"], *sub["value_high"]]
        changed = [False, *(v in (HIGHER, LOWER) for v in sub["verdict"])]
        for xi, (yi, l0, h0, red) in enumerate(zip(y, lo, hi, changed)):
            color = "tab:blue" if xi == 0 else "tab:red" if red else "tab:gray"
            if np.isfinite(l0) and np.isfinite(h0):
                ax.errorbar(xi, yi, yerr=[[yi - l0], [h0 - yi]], fmt="o", color=color, capsize=4)
                seen.add("interval")
            else:
                ax.plot(xi, yi, "o", mfc="white", color=color)
                seen.add("open")
            seen.update({"red"} if red else set())
        ax.set_xticks(range(len(y)), labels[:len(y)], fontsize=8, rotation=20)
        ax.set_xlim(-0.5, len(y) - 0.5)
        title = describe(name).label + (" (per minute)" if first["compared_as"] == "per minute of recording" else "")
        ax.set_title(textwrap.fill(title, 30), fontsize=9)
        ax.set_ylabel(first["unit"], fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles = [Line2D([], [], marker="o", ls="", color="tab:blue", label=f"baseline ({labels[0]})")]
    if "red" in seen:
        handles.append(Line2D([], [], marker="o", ls="", color="tab:red", label="change beyond test-retest noise"))
    handles.append(Line2D([], [], marker="o", ls="", color="tab:gray", label="no change beyond noise, or not tested"))
    if "interval" in seen:
        handles.append(Line2D([], [], marker="|", ms=12, ls="", color="k", label="bar: 95% bootstrap interval of the "
                              "mean over units"))
    if "open" in seen:
        handles.append(Line2D([], [], marker="o", mfc="white", ls="", color="k",
                              label="open: whole-recording value, no interval"))
    fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, LEGEND_HEIGHT / height, 1, 1))
    return fig


def plot_comparison(df: pd.DataFrame, labels: list[str], path: Path, limit: int = 12) -> Path:
    """``comparison_figure`` as a PNG at ``path``."""
    from fexa.viz.pyplot import pyplot

    fig = comparison_figure(df, labels, limit)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    pyplot().close(fig)
    return path


def _per_minute(df: pd.DataFrame) -> dict[str, str]:
    """Per measure compared per minute: each recording's whole count and length, in words."""
    from fexa.analysis.glossary import describe
    from fexa.analysis.report import format_value

    said = {}
    for name, rows in df[df["compared_as"] == "per minute of recording"].groupby("measure", sort=False):
        first, unit, words = rows.iloc[0], MEASURES[name].unit, describe(name).unit
        each = [(first["baseline_visit"], first["baseline_whole"], first["baseline_length_s"]),
                *zip(rows["visit"], rows["whole"], rows["length_s"])]
        said[name] = ", ".join(f"{label} {format_value(v, unit, '')} {words} in {t:.1f} s" for label, v, t in each)
    return said


def _face(result) -> list[float] | None:
    """The mean face descriptor of a result's subject, from its cache entry's meta.json (None if none)."""
    import json

    try:
        tracks = json.loads((result.entry / "meta.json").read_text()).get("tracks", [])
    except (OSError, ValueError):
        return None
    return next((t.get("face") for t in tracks if t["id"] == result.track.track_id), None)


def identity_check(results: list, labels: list[str]) -> list[str]:
    """Per later recording, in a sentence, whether its subject's face matches the baseline's
    (``fexa.face.identity.same_person``); sentences that need the reader's attention start with WARNING."""
    from fexa.face.identity import JOIN_DISTANCE, SPLIT_DISTANCE, same_person

    base, lines = _face(results[0]), []
    for result, label in zip(results[1:], labels[1:]):
        verdict, d = same_person(base, _face(result))
        lines.append({
            "same": f"{label}: the same face as {labels[0]} (descriptor distance {d:.2f}; below {JOIN_DISTANCE:g} "
                    "is one person)",
            "different": f"WARNING: {label} shows a different face from {labels[0]} (descriptor distance {d:.2f}; above "
                         f"{SPLIT_DISTANCE:g} are different people): this comparison may mix two people",
            "unsure": f"WARNING: {label} may not show the same person as {labels[0]} (descriptor distance {d:.2f}, between "
                      f"{JOIN_DISTANCE:g} and {SPLIT_DISTANCE:g}): check by eye",
            "unknown": f"WARNING: {label}'s face could not be compared with {labels[0]}'s (too small to describe): check "
                       "by eye that they are the same person",
        }[verdict])
    return lines


def write_comparison(df: pd.DataFrame, labels: list[str], out: str | Path, fmt: str = "csv",
                     identity: list[str] = ()) -> list[Path]:
    """``out/compare.<fmt>`` (the table), ``out/compare.png`` (when a measure serving the task has
    values in every recording) and a self-contained ``out/compare.html`` (``identity``: the lines of
    ``identity_check``, at its top): the files written."""
    import base64
    import html

    from fexa.analysis.glossary import describe
    from fexa.analysis.report import STYLE, format_value

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_table(df, out / f"compare.{fmt}")]
    try:
        png = plot_comparison(df, labels, out / "compare.png")
        written.append(png)
        picture = f'<img alt="comparison" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
    except FexaError as e:
        picture = f"<p>No plot: {html.escape(str(e))}.</p>"

    def cell(v: float, lo: float, hi: float, unit: str) -> str:
        text = format_value(v, unit, "")
        return text + (f" <span class=note>({lo:.3g} to {hi:.3g})</span>" if np.isfinite(lo) and np.isfinite(hi) else "")

    body = []
    for r in df.itertuples():
        d = describe(r.measure)
        per_minute = r.compared_as == "per minute of recording"
        unit = f"{d.unit} per minute of recording" if per_minute else d.unit
        change = cell(r.change, r.change_low, r.change_high, r.unit) if np.isfinite(r.change) else "-"
        sdc = format_value(r.smallest_detectable_change, r.unit, "") if np.isfinite(r.smallest_detectable_change) else "-"
        verdict = f"<b>{html.escape(r.verdict)}</b>" if r.verdict in (HIGHER, LOWER) else html.escape(r.verdict)
        why = f' title="{html.escape(r.reason)}"' if r.reason else ""
        body.append(f'<tr{" class=primary" if r.primary else ""} title="{html.escape(r.measure)} = '
                    f'{html.escape(d.formula)}"><td>{html.escape(d.label)}</td><td>{html.escape(r.visit)}</td>'
                    f'<td class=num>{cell(r.baseline, r.baseline_low, r.baseline_high, r.unit)}</td>'
                    f'<td class=num>{cell(r.value, r.value_low, r.value_high, r.unit)}</td><td class=num>{change}</td>'
                    f"<td class=num>{sdc}</td><td>{html.escape(unit)}</td><td{why}>{verdict}</td></tr>")
    legend = []
    for verdict, meaning in VERDICTS.items():
        rows = df[df["verdict"] == verdict]
        if len(rows):
            reasons = list(dict.fromkeys(x for x in rows["reason"] if x and verdict != WHOLE))
            detail = f" ({html.escape('; '.join(reasons))})" if reasons else ""
            legend.append(f"<dt>{html.escape(verdict)}</dt><dd>{html.escape(meaning)}{detail}</dd>")
    minutes = "".join(f"<li>{html.escape(describe(name).label)}: {html.escape(text)}</li>"
                      for name, text in _per_minute(df).items())
    if minutes:
        minutes = ("<p class=note>Counts and totals are compared <b>per minute of recording</b>, as the recordings' "
                   f"lengths differ:</p><ul class=note>{minutes}</ul>")
    first = df.iloc[0]
    units = "; ".join([f"{first['baseline_visit']}: {first['baseline_basis']}",
                       *(f"{r.visit}: {r.basis}" for r in df.drop_duplicates("visit").itertuples())])
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>fexa comparison</title>
<style>{STYLE} tr.primary td{{background:#f3f8f3}} .warn{{background:#fff3cd;border:2px solid #d39e00;padding:.6em 1em;
font-weight:600}}</style></head><body>
<h1>Change across visits</h1>
<div class=warn>{"".join(f"<p>{html.escape(line)}</p>" for line in identity)}<p>{html.escape(IDENTITY_WARNING)}.</p></div>
<p>Baseline: <b>{html.escape(labels[0])}</b>; compared: {", ".join(html.escape(x) for x in labels[1:])}.
Units: {html.escape(units)}.</p>
<p class=note>Each value is the mean over the recording's units (the task's repetitions, or {WINDOW:g}-s windows) with its
95% bootstrap interval in brackets. A change smaller than the <i>smallest detectable change</i> (1.96 x the test-retest
noise, estimated by splitting each recording's units in halves) is reported as within noise. With fewer than
{MIN_UNITS} units in a recording there is no interval, and the whole-recording values are compared.</p>
{minutes}
{picture}
<h2>What the verdicts mean</h2><dl class=glossary>{"".join(legend)}</dl>
<table><tr><th>measure</th><th>visit</th><th>baseline</th><th>this visit</th><th>change</th>
<th>smallest detectable change</th><th>unit</th><th>verdict</th></tr>{"".join(body)}</table>
<p class=note>Rows of measures serving the task are shaded. These measures describe facial movement; they are not a
diagnosis.</p></body></html>"""
    with atomic_path(out / "compare.html") as tmp:
        tmp.write_text(page)
    return [out / "compare.html", *written]
