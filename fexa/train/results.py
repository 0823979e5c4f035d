"""Scoring a run's test predictions and writing its results: the metrics per task kind, prediction
files, and ``results.{json,csv,md}`` of one run or of a paper + honest pair of runs side by side.

Each protocol's entry in ``results.json`` (``paper`` and/or ``honest``) names the run folder it
comes from (``run``, relative to the results file) and how many samples it was trained on, since
the paper protocol trains on every training subject and the honest one holds some out."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fexa import metrics as M
from fexa.errors import FexaError
from fexa.io.atomic import write_json, write_text
from fexa.train.config import ExperimentConfig

PROTOCOL_NOTES = {
    "paper": "best test epoch, trained on every training subject (as the papers): optimistic",
    "honest": "epoch chosen on held-out training subjects; test evaluated once",
}


def predicted_class(scores: np.ndarray) -> np.ndarray:
    """[N] argmax of [N, C] class scores; M.NO_PREDICTION where a row is NaN (no usable face)."""
    missing = np.isnan(scores).any(axis=1)
    return np.where(missing, M.NO_PREDICTION, np.nan_to_num(scores, nan=0.0).argmax(axis=1))


def _level(p: np.ndarray) -> np.ndarray:
    """The predicted level (class index) of [N, C] scores as floats. A sample without a prediction (no
    usable face) gets the mean of the others, a guess without information, as a score's failure gets
    the training mean."""
    c = predicted_class(p).astype(float)
    missing = c == M.NO_PREDICTION
    return np.where(missing, c[~missing].mean() if (~missing).any() else 0.0, c)


METRICS = {  # per task kind: name -> metric(targets, predictions [N] scores or [N, C] class scores)
    "regression": {"spearman": M.spearman, "pearson": M.pearson, "mae": M.mae, "rmse": M.rmse},
    "classification": {"accuracy": lambda y, p: M.accuracy(y.astype(int), predicted_class(p)),
                       "uar": lambda y, p: M.uar(y.astype(int), predicted_class(p), p.shape[1]),
                       "macro_f1": lambda y, p: M.macro_f1(y.astype(int), predicted_class(p), p.shape[1])},
}
# integer scores trained as classes (data.scores_as_classes: QAFE-Net Table 9, TraMP-Former Table IV):
# the class metrics, the score metrics of the predicted level, and normal/impaired rates
def _of_level(fn):
    """A score metric applied to the predicted level of class scores."""
    return lambda y, p: fn(y, _level(p))


def _impairment(rate: str, normal: int):
    """``M.binary_report``'s ``rate`` with levels above ``normal`` as impaired (positive); a sample
    without a prediction (no usable face) is wrong whichever its truth."""
    def fn(y: np.ndarray, p: np.ndarray) -> float:
        c = predicted_class(p)
        truth = (y > normal).astype(int)
        pred = np.where(c == M.NO_PREDICTION, 1 - truth, (c > normal).astype(int))
        return M.binary_report(truth, pred)[rate]
    return fn


def metric_functions(kind: str, normal_level: int | None = None) -> dict:
    """name -> metric of a task ``kind``. ``normal_level``: the classes are score levels and this one
    is normal (adds the score metrics of the predicted level and binary_accuracy / sensitivity /
    specificity of normal against impaired)."""
    if normal_level is None or kind != "classification":
        return dict(METRICS[kind])
    binary = {f"binary_{r}" if r == "accuracy" else r: _impairment(r, normal_level)
              for r in ("accuracy", "sensitivity", "specificity")}
    return {**METRICS[kind], **{name: _of_level(fn) for name, fn in METRICS["regression"].items()}, **binary}


def class_key(name: str) -> str:
    """A class name as it ends a per-class metric's name: lower case, other characters runs of '_'
    ('Neutral' -> 'neutral', 'Anger/Disgust' -> 'anger_disgust')."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def per_class(y: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """``recall_<class>`` (the papers' per-class accuracy) and ``f1_<class>`` of [N, C] class scores;
    NaN for a class absent from the test set (recall) or from both truth and predictions (F1)."""
    if len(classes) != pred.shape[1]:
        raise FexaError(f"classes: {len(classes)} names for {pred.shape[1]} class scores")
    c, n = predicted_class(pred), pred.shape[1]
    recall, f1 = M.class_recall(y.astype(int), c, n), M.class_f1(y.astype(int), c, n)
    keys = [class_key(k) for k in classes]
    return {**{f"recall_{k}": float(v) for k, v in zip(keys, recall)}, **{f"f1_{k}": float(v) for k, v in zip(keys, f1)}}


def score(kind: str, table: pd.DataFrame, pred: np.ndarray, normal_level: int | None = None,
          classes: Sequence[str] = ()) -> dict[str, float]:
    """Every metric of ``kind`` on a sample table's targets (plus the per-task mean Spearman, and
    with the ``classes``' names, each class's recall and F1: :func:`per_class`)."""
    y = table["target"].to_numpy()
    out = {name: fn(y, pred) for name, fn in metric_functions(kind, normal_level).items()}
    if kind == "regression" and table["task"].nunique() > 1:
        out["spearman_task_mean"] = M.spearman_per_task(y, pred, table["task"])["mean"]
    if kind == "classification" and classes:
        out.update(per_class(y, pred, classes))
    return out


def normal_level_of(cfg: ExperimentConfig) -> int | None:
    """The normal level when scores are trained as classes (``data.normal_level``), else None."""
    return cfg.data.normal_level if cfg.data.scores_as_classes else None


def selection_metric(cfg: ExperimentConfig, kind: str) -> str:
    """The metric that picks epochs: eval.metric, or Spearman / accuracy for ``auto``."""
    if cfg.eval.metric == "auto":
        return "spearman" if kind == "regression" else "accuracy"
    names = metric_functions(kind, normal_level_of(cfg))
    if cfg.eval.metric not in names:
        raise FexaError(f"eval.metric {cfg.eval.metric!r} is not a {kind} metric; choose from "
                        f"{', '.join(names)} or auto")
    return cfg.eval.metric


def save_predictions(path: Path, table: pd.DataFrame, pred: np.ndarray, kind: str) -> None:
    """One row per test sample; ``usable`` is false for those without a usable face (scored as failures)."""
    df = table[["id", "subject", "task", "target"]].copy()
    df["usable"] = table["entry"].notna().to_numpy()
    if kind == "regression":
        df["prediction"] = pred
    else:
        df["prediction"] = predicted_class(pred)
        for c in range(pred.shape[1]):
            df[f"p{c}"] = pred[:, c]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, df.to_csv(index=False))


def read_predictions(path: Path, kind: str) -> np.ndarray:
    df = pd.read_csv(path)
    if kind == "regression":
        return df["prediction"].to_numpy()
    return df[[c for c in df.columns if c.startswith("p") and c[1:].isdigit()]].to_numpy()


def initialisation(cfg: ExperimentConfig, run: Path) -> list[str]:
    """What the run's model started from: the lines build_model recorded in model.json, or 'from scratch'."""
    if not cfg.model.pretrained:
        return ["from scratch (model.pretrained is empty)"]
    try:
        return list(json.loads((run / "model.json").read_text())["initialisation"])
    except (OSError, ValueError, KeyError):
        return ["not recorded (model.json predates fexa recording it)"]


def write_results(run: Path, results: dict) -> None:
    """``results.json``, ``results.csv`` (one row per protocol) and ``results.md`` in ``run``."""
    write_json(run / "results.json", results)
    rows = [{"protocol": p, **results[p]} for p in ("paper", "honest") if p in results]
    write_text(run / "results.csv", pd.DataFrame(rows).to_csv(index=False))
    write_text(run / "results.md", markdown(results))


def combine_protocols(cfg: ExperimentConfig, parts: dict[str, dict]) -> dict:
    """The results of a paper run and an honest run (``parts``: protocol -> that run's results) as
    one result, each protocol naming its run folder."""
    first = next(iter(parts.values()))
    out = {"name": cfg.name, **{k: first[k] for k in ("model", "dataset", "task", "test_samples", "test_unusable",
                                                      "test_subjects", "initialisation")}}
    for p, r in parts.items():
        out[p] = {**r[p], "run": p}
    return out


def markdown(r: dict) -> str:
    protocols = [p for p in ("paper", "honest") if p in r]
    lines = [f"# {r['name']}: {r['model']} on {r['dataset']}{' / ' + r['task'] if r['task'] else ''}", "",
             f"{r['test_samples']} test samples ({r['test_subjects']} test subjects).", "",
             *([f"{r['test_unusable']} test sample(s) had no usable face or media: scored as wrong predictions "
                "(classes) or the training mean (scores); listed in dropped.csv.", ""] if r.get("test_unusable") else []),
             "Initialised: " + "; ".join(r.get("initialisation", [])), "",
             "| protocol | run | trained on | validated on | epoch | metric | value | 95% CI | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in protocols:
        x = r[p]
        lines.append(f"| {p} | {x['run']} | {x['train_samples']} | {x['val_samples']} | {x['epoch']} | {x['metric']} | "
                     f"{x['value']:.4f} | [{x['ci_low']:.4f}, {x['ci_high']:.4f}] | {x['note']} |")
    return "\n".join(lines) + "\n"
