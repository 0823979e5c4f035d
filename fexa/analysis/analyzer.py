"""``fexa.Analyzer``: one face video (or image, or folder of frames) -> per-frame data, kinematic
measures and a report a person can look at.

``Result.frames`` columns, by group:
  time       frame, time (s)
  quality    usable, valid, filled, score, num_faces
  box        box_x0, box_y0, box_x1, box_y1 (frame pixels)
  pose       yaw, pitch, roll (degrees, see fexa.face.pose)
  signals    eye_aperture_right/left, mouth_width, mouth_opening, brow_height_right/left, lip_protrusion
             (see fexa.analysis.measures)
  landmarks  x_<k>, y_<k> for the 73 heatmap points (2d106 order, frame pixels)
``Result.measures``: measure, value, unit, flag (see fexa.analysis.measures).
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fexa.analysis.measures import compute_measures, detect_blinks, frame_signals  # noqa: E402
from fexa.errors import FexaError  # noqa: E402
from fexa.extract import ExtractConfig, entry_is_done, extract_one, input_ids  # noqa: E402
from fexa.face.landmarks import get_scheme  # noqa: E402
from fexa.io.atomic import atomic_path  # noqa: E402
from fexa.io.trackfile import TrackData  # noqa: E402
from fexa.viz.sheets import plot_trajectories  # noqa: E402


def frames_table(track: TrackData) -> pd.DataFrame:
    """The per-frame DataFrame of a track (column groups in the module docstring)."""
    pts = get_scheme("heatmap73").select(track.points[..., :2], track.layout)
    df = pd.DataFrame({"frame": np.arange(track.num_frames), "time": track.times, "usable": track.usable,
                       "valid": track.valid, "filled": track.filled, "score": track.score,
                       "num_faces": track.num_faces})
    df[["box_x0", "box_y0", "box_x1", "box_y1"]] = track.box
    df[["yaw", "pitch", "roll"]] = track.pose
    sig = frame_signals(track).drop(columns=["time", "usable"])
    coords = {f"{a}_{k}": pts[:, k, i] for k in range(pts.shape[1]) for i, a in enumerate("xy")}
    return pd.concat([df, sig, pd.DataFrame(coords)], axis=1)


@dataclass
class Result:
    """What ``Analyzer.analyze`` returns for one input."""

    source: Path
    entry: Path
    track: TrackData
    frames: pd.DataFrame
    measures: pd.DataFrame
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per model (fexa train runs)
    warnings: list[str] = field(default_factory=list)

    def plot_signals(self, path: str | Path) -> Path:
        """Eye aperture with blinks marked, mouth width and opening, brows right vs left, over time."""
        f = self.frames
        t = f["time"]
        fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True)
        aperture = f[["eye_aperture_right", "eye_aperture_left"]].mean(axis=1)
        blinks = detect_blinks(aperture.to_numpy(), self.track.fps or 25.0)
        axes[0].plot(t, f["eye_aperture_right"], label="right eye", lw=1)
        axes[0].plot(t, f["eye_aperture_left"], label="left eye", lw=1)
        axes[0].plot(t.iloc[list(blinks.frames)], aperture.iloc[list(blinks.frames)], "v", color="red",
                     label=f"blinks ({blinks.count})")
        axes[0].set_ylabel("eye aperture")
        axes[1].plot(t, f["mouth_width"], label="mouth width")
        axes[1].plot(t, f["mouth_opening"], label="mouth opening")
        axes[1].set_ylabel("inter-ocular distances")
        axes[2].plot(t, f["brow_height_right"], label="right brow")
        axes[2].plot(t, f["brow_height_left"], label="left brow")
        axes[2].set_ylabel("brow height (IOD)")
        axes[2].set_xlabel("time (s)")
        lost = ~f["usable"].to_numpy()
        for ax in axes:
            if lost.any():
                ax.fill_between(t, 0, 1, where=lost, transform=ax.get_xaxis_transform(), color="red", alpha=0.12,
                                step="mid", label="face lost")
            ax.legend(fontsize=8, loc="upper right")
            ax.grid(alpha=0.3)
        fig.suptitle(self.source.name, fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
        return Path(path)

    def plot_regions(self, path: str | Path) -> Path:
        """Landmark trajectories and region displacement over time."""
        with atomic_path(path) as tmp:
            plot_trajectories(self.track, tmp)
        return Path(path)

    def to_html(self, path: str | Path, plots: tuple[Path, Path] | None = None) -> Path:
        """One self-contained HTML report (plots embedded, measures and warnings as tables).
        ``plots``: already written (signals, regions) PNGs to embed instead of drawing them again."""
        path = Path(path)
        with tempfile.TemporaryDirectory() as d:
            imgs = plots or (self.plot_signals(Path(d) / "signals.png"), self.plot_regions(Path(d) / "regions.png"))
            embedded = [base64.b64encode(p.read_bytes()).decode() for p in imgs]
        usable = self.track.usable.mean()
        rows = "".join(f"<tr><td>{html.escape(r.measure)}</td><td>{r.value:.4g}</td><td>{html.escape(r.unit)}</td>"
                       f"<td>{html.escape(r.flag)}</td></tr>" for r in self.measures.itertuples())
        warn = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings) or "<li>none</li>"
        preds = (self.predictions.to_html(index=False, float_format="%.3f") if len(self.predictions)
                 else "<p>no model given</p>")
        title = html.escape(self.source.name)
        page = f"""<!doctype html><html><head><meta charset="utf-8"><title>fexa report: {title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>{title}</h1>
<p>{self.track.num_frames} frames at {self.track.fps:.2f} fps; face usable in {100 * usable:.1f}% of frames.</p>
<h2>Warnings</h2><ul>{warn}</ul>
<h2>Model predictions</h2>{preds}
<h2>Signals</h2><img alt="signals" src="data:image/png;base64,{embedded[0]}">
<h2>Regions</h2><img alt="regions" src="data:image/png;base64,{embedded[1]}">
<h2>Measures</h2><table><tr><th>measure</th><th>value</th><th>unit</th><th>flag</th></tr>{rows}</table>
<p style="color:#666">Measures are kinematic descriptions of facial movement, not a diagnosis.</p>
</body></html>"""
        with atomic_path(path) as tmp:
            tmp.write_text(page)
        return path


class Analyzer:
    """``Analyzer(cache="runs/cache").analyze("patient.mp4") -> Result``."""

    def __init__(self, cache: str | Path | None = None, extract: ExtractConfig | None = None,
                 models: list[str | Path] = (), task: str = ""):
        from fexa.analysis.predict import TrainedModel

        self.cache = Path(cache) if cache else Path(tempfile.mkdtemp(prefix="fexa-analyze-"))
        self.extract = extract or ExtractConfig()
        self.models = [TrainedModel(m) for m in models]
        self.task = task

    def analyze(self, path: str | Path) -> Result:
        path = Path(path)
        entry = self.cache / input_ids([path])[0]
        if entry_is_done(entry, path):
            meta = json.loads((entry / "meta.json").read_text())
        else:
            meta = extract_one(path, entry, self.extract)
        if meta["status"] != "ok":
            raise FexaError(meta["error"] or f"status {meta['status']}")
        track = TrackData.load(entry / "track.npz")
        warnings = list(meta.get("warnings", []))
        if track.usable.mean() < 0.5:
            warnings.append(f"the face is usable in only {100 * track.usable.mean():.0f}% of frames: measures are flagged")
        preds = pd.concat([m.predict(entry, self.task) for m in self.models], ignore_index=True) if self.models \
            else pd.DataFrame()
        return Result(path, entry, track, frames_table(track), compute_measures(track), preds, warnings)
