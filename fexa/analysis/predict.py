"""Run a model trained with ``fexa train`` on an analysed input, with the run's test-time sampling.

Clip models (heatmaps, trajectories, RGB clips) give one prediction per input, averaged over the
run's test clips, and a curve over time from sliding windows (``sliding_windows``,
``window_curve``). Per-frame models (image models, e.g. the CFC-SP members) score every usable
frame; the per-frame outputs are smoothed over time with CFC-SP's smooth predicting (window
``smooth_window`` frames; the paper's best was 256) and averaged into the per-input prediction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from fexa.progress import tqdm

from fexa.analysis.measures import clip_duration
from fexa.data.adapters import AFFWILD2_CLASSES
from fexa.data.samples import FaceSamples
from fexa.data.store import StoreConfig, ensure_stores
from fexa.errors import FexaError
from fexa.io.trackfile import TrackData
from fexa.models.cfc_sp import TO_COARSE, TO_NEGATIVE, cascade, compose_probabilities, smooth_predicting, sp_gain
from fexa.train.checkpoint import read_weights
from fexa.train.config import load_config
from fexa.train.inputs import model_inputs, split_output

PROTOCOL_RUNS = ("honest", "paper")  # the sub-runs of eval.protocol both
_REPRESENTATION = {"image": "single aligned frames", "clip": "RGB clips", "heatmaps": "landmark heatmap volumes",
                   "trajectory": "landmark trajectories"}


def find_run(path: str | Path) -> Path:
    """The run folder of a run, a checkpoint folder or a ``model.safetensors`` file inside a run; of
    a paper + honest pair (``eval.protocol: both``), the honest run (its epoch was chosen without
    the test set)."""
    path = Path(path)
    for folder in (path, *path.parents)[:4]:
        if (folder / "config.yaml").is_file():
            pair = [folder / p for p in PROTOCOL_RUNS if (folder / p / "config.yaml").is_file()]
            return pair[0] if pair else folder
    raise FexaError(f"{path} is not a fexa run folder or a checkpoint inside one (no config.yaml found)")


@dataclass
class Prediction:
    """One model's output for one input: ``row`` (model, then prediction + p_<class> or score +
    level), per-frame columns (per-frame models) and per-segment rows (start, end, ...)."""

    row: dict
    frames: pd.DataFrame | None = None
    segments: pd.DataFrame | None = None


class TrainedModel:
    """A finished run: its config and weights (the checkpoint given, else the best validation epoch
    if any, else a paper run's best test epoch, else the last)."""

    def __init__(self, run_or_checkpoint: str | Path, smooth_window: int = 256):
        from fexa.train.build import build_model

        given = Path(run_or_checkpoint)
        run = find_run(given)
        if given.suffix == ".safetensors":
            weights = given
        elif (given / "model.safetensors").is_file():
            weights = given / "model.safetensors"
        else:
            weights = next((run / "checkpoints" / n / "model.safetensors" for n in ("best_val", "best_test", "last")
                            if (run / "checkpoints" / n / "model.safetensors").is_file()), None)
        if weights is None or not weights.is_file():
            raise FexaError(f"{given} has no checkpoint")
        if not (run / "model.json").is_file():
            raise FexaError(f"{run} lacks model.json (written by fexa train): train the run again")
        self.cfg = load_config(run / "config.yaml")
        self.cfg.model.pretrained = {}  # the run's own weights replace any initialisation
        meta = json.loads((run / "model.json").read_text())
        self.kind, self.classes = meta["kind"], tuple(meta["classes"]) or tuple(map(str, range(meta["num_classes"])))
        self.target_range = tuple(meta.get("target_range", (0.0, np.inf)))
        self.keys, self.argfn = model_inputs(self.cfg.model.name)
        self.model = build_model(self.cfg, meta["num_classes"])
        self._load(weights)
        self.model.eval()
        self.name = run.parent.name if run.name in PROTOCOL_RUNS else run.name  # the pair's name, not 'honest'
        self.per_frame = self.keys == ("image",)
        self.smooth_window = smooth_window
        target_map = tuple(self.cfg.data.target_map)
        self.cfc_role = {TO_COARSE: "coarse", TO_NEGATIVE: "negative"}.get(target_map, "")  # a CFC-SP net

    def _load(self, weights: Path) -> None:
        state = read_weights(weights)
        own = self.model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        wrong = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
        if missing or unexpected or wrong:
            takes = " + ".join(_REPRESENTATION[k] for k in self.keys)
            raise FexaError(
                f"the weights in {weights} do not fit model {self.cfg.model.name!r} (which takes {takes}): "
                f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} of another shape "
                f"(e.g. {(missing + unexpected + wrong)[0]}); were they trained for another model or representation?")
        self.model.load_state_dict(state)

    def _outputs(self, ds: FaceSamples, batch_size: int = 1, progress: bool = False) -> np.ndarray:
        """[len(ds), C] raw outputs (logits or scores)."""
        outs = []
        for batch in tqdm(DataLoader(ds, batch_size=batch_size), desc=self.name, unit="batch", leave=False,
                          disable=not progress):
            pred, _ = split_output(self.model(*self.argfn(batch)))
            outs.append(pred.float().reshape(len(pred), -1))
        return torch.cat(outs).numpy()

    def _summary(self, mean: np.ndarray) -> dict:
        """One prediction row from averaged class probabilities or scores."""
        if self.kind == "classification":
            out = {"model": self.name, "prediction": self.classes[int(mean.argmax())]}
            out.update({f"p_{n}": float(p) for n, p in zip(self.classes, mean)})
            return out
        score = float(mean[0])
        return {"model": self.name, "score": score, "level": int(np.clip(np.rint(score), *self.target_range))}

    @torch.no_grad()
    def predict(self, entry: str | Path, task: str = "", progress: bool = False,
                segments: list[tuple[int, int]] | None = None) -> Prediction:
        """The input's prediction; per frame for per-frame models; per segment ([start, end) frames,
        e.g. the task's repetitions) for clip models given ``segments``, the input's being their mean."""
        entry = Path(entry)
        failed = ensure_stores([entry], StoreConfig(self.cfg.data.store_quality), progress=False)
        if failed:  # the model sees the pixels it was trained on: the training store's
            raise FexaError(failed[str(entry)])
        if self.per_frame:
            return self._predict_frames(entry, task, progress)
        spans = segments or [(0, -1)]
        rows = pd.DataFrame([{"id": f"{entry.name}:{a}", "subject": "", "target": 0.0, "task": task, "start": a,
                              "end": b, "entry": str(entry)} for a, b in spans])
        ds = FaceSamples(rows, self.keys, self.cfg.data.samples, train=False, seed=self.cfg.train.seed)
        out = self._outputs(ds, progress=progress)
        if self.kind == "classification":
            out = torch.from_numpy(out).softmax(-1).numpy()
        per_span = out.reshape(len(spans), -1, out.shape[-1]).mean(axis=1)  # the run's test clips averaged
        table = None
        if segments:
            table = pd.DataFrame([self._summary(p) for p in per_span]).drop(columns="model")
            table.insert(0, "start", [a for a, _ in spans])
            table.insert(1, "end", [b for _, b in spans])
        return Prediction(self._summary(per_span.mean(axis=0)), segments=table)

    @torch.no_grad()
    def frame_outputs(self, entry: str | Path, task: str = "", progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A per-frame model's raw outputs (logits or scores) on every frame of an analysed input:
        ([T, C], zero where the frame has no usable face; usable [T] bool)."""
        entry = Path(entry)
        track = TrackData.load(entry / "track.npz")
        frames = np.flatnonzero(track.usable)
        rows = pd.DataFrame({"id": [f"{entry.name}:{t}" for t in frames], "subject": "", "target": 0.0, "task": task,
                             "start": frames, "end": frames + 1, "entry": str(entry)})
        sc = replace(self.cfg.data.samples, test_clips=1)
        raw = self._outputs(FaceSamples(rows, self.keys, sc, train=False, seed=self.cfg.train.seed), 32, progress)
        full = torch.zeros(track.num_frames, raw.shape[1])
        full[frames] = torch.from_numpy(raw)
        return full, torch.from_numpy(track.usable)

    def _predict_frames(self, entry: Path, task: str, progress: bool) -> Prediction:
        full, valid = self.frame_outputs(entry, task, progress)
        track_usable = valid.numpy()
        smoothed = smooth_predicting(full, self.smooth_window, valid)
        if self.kind == "classification":  # the paper smooths logits: unique + universal parts
            values, names = smoothed.softmax(-1).numpy(), [f"{self.name}_p_{c}" for c in self.classes]
        else:  # a score keeps its scale: the unique and universal parts' weighted mean
            values, names = (smoothed / (1 + sp_gain(self.smooth_window))).numpy(), [f"{self.name}_score"]
        values[~track_usable] = np.nan
        per_frame = pd.DataFrame(values, columns=names)
        if self.kind == "classification":
            best = np.nan_to_num(values, nan=-1.0).argmax(axis=1)
            per_frame.insert(0, f"{self.name}_prediction",
                             np.where(track_usable, np.asarray(self.classes, dtype=object)[best], None))
        return Prediction(self._summary(np.nanmean(values[track_usable], axis=0)), frames=per_frame)


def sliding_windows(times: np.ndarray, window: float, stride: float) -> list[tuple[int, int]]:
    """[start, end) frames of ``window``-s windows every ``stride`` s over frames with timestamps
    ``times``, the last one ending at the clip's end; none when the clip is shorter than a window."""
    if window <= 0 or stride <= 0:
        raise FexaError(f"window and stride must be > 0 s, got {window} and {stride}")
    t = np.asarray(times, np.float64) - times[0]
    duration = clip_duration(times)
    if duration < window:
        return []
    starts = np.arange(0.0, duration - window + 1e-9, stride)
    if duration - (starts[-1] + window) > 1e-9:
        starts = np.r_[starts, duration - window]
    return [(int(np.searchsorted(t, a - 1e-9)), int(np.searchsorted(t, a + window - 1e-9))) for a in starts]


def window_curve(model: TrainedModel, windows: pd.DataFrame, times: np.ndarray, usable: np.ndarray) -> pd.DataFrame:
    """Per-frame columns from a clip model's scores on sliding windows (``windows``: start, end and
    p_<class> or score, as ``predict(segments=...)`` gives): each value interpolated over the
    frames' times between the windows' centre times; NaN where the frame has no usable face;
    <model>_prediction the likeliest class per frame."""
    centre = np.array([(times[a] + times[b - 1]) / 2 for a, b in zip(windows["start"], windows["end"])])
    values = [c for c in windows if c.startswith("p_") or c == "score"]
    curve = pd.DataFrame({f"{model.name}_{c}": np.interp(times, centre, windows[c].to_numpy(float)) for c in values})
    curve.loc[~usable] = np.nan
    if model.kind == "classification":
        best = np.nan_to_num(curve.to_numpy(), nan=-1.0).argmax(axis=1)
        curve.insert(0, f"{model.name}_prediction", np.where(usable, np.asarray(model.classes, dtype=object)[best], None))
    return curve


def cfc_sp_cascade(models: list[TrainedModel], per_frame: list[pd.DataFrame | None],
                   usable: np.ndarray) -> Prediction | None:
    """CFC-SP's coarse-to-fine cascade over per-frame runs trained as its nets (``data.target_map``
    = TO_COARSE: a coarse member, = TO_NEGATIVE: the negative net): coarse members' smoothed
    probabilities averaged (the paper sums them: same ranking), the Negative class resolved by the
    negative net. Returns the clip row and per-frame cfc_sp_prediction / cfc_sp_p_<class>, or None
    unless both kinds of net were given."""
    probs: dict[str, list[np.ndarray]] = {"coarse": [], "negative": []}
    for model, frame in zip(models, per_frame):
        if model.cfc_role and frame is not None:
            probs[model.cfc_role].append(frame[[c for c in frame if c.startswith(f"{model.name}_p_")]].to_numpy(float))
    if not probs["coarse"] or not probs["negative"]:
        return None
    coarse = torch.from_numpy(np.nan_to_num(np.mean(probs["coarse"], axis=0)))
    negative = torch.from_numpy(np.nan_to_num(np.mean(probs["negative"], axis=0)))
    names = np.asarray(AFFWILD2_CLASSES, dtype=object)
    frames = pd.DataFrame(compose_probabilities(coarse, negative).numpy(), columns=[f"cfc_sp_p_{n}" for n in names])
    frames.loc[~usable] = np.nan
    frames.insert(0, "cfc_sp_prediction", np.where(usable, names[cascade(coarse, negative).numpy()], None))
    keep = torch.from_numpy(np.array(usable, dtype=bool))
    clip_coarse, clip_negative = coarse[keep].mean(0, keepdim=True), negative[keep].mean(0, keepdim=True)
    row = {"model": "cfc_sp", "prediction": names[int(cascade(clip_coarse, clip_negative)[0])]}
    row.update({f"p_{n}": float(p) for n, p in zip(names, compose_probabilities(clip_coarse, clip_negative)[0])})
    return Prediction(row, frames=frames)
