"""Evaluation metrics as plain functions on arrays (scikit-learn style: inputs validated, errors say why).

Defined behaviour for degenerate input: a correlation with a constant input (all predictions, or
all targets, equal) carries no ranking information and is returned as 0.0 with a
``ConstantInputWarning``; NaN or infinite values are an error, never silently dropped.

A predicted class label of -1 (``NO_PREDICTION``) is a sample the model could not be run on (no
usable face): accuracy, UAR and macro-F1 count it as wrong for its true class and as a prediction
of no other class, so an evaluation stays over the whole test list.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping

import numpy as np
from scipy import stats


class ConstantInputWarning(UserWarning):
    """A correlation was asked of a constant array; 0.0 was returned."""


def _pair(y_true, y_pred, name: str, numeric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1:
        a, b = a.reshape(-1), b.reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"{name}: y_true has {len(a)} values but y_pred has {len(b)}")
    if len(a) == 0:
        raise ValueError(f"{name}: no values")
    if numeric:
        a, b = a.astype(np.float64), b.astype(np.float64)
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError(f"{name}: inputs contain NaN or infinite values")
    return a, b


def _correlation(fn, y_true, y_pred, name: str) -> float:
    a, b = _pair(y_true, y_pred, name)
    if len(a) < 2:
        raise ValueError(f"{name}: needs at least 2 values")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        warnings.warn(f"{name}: constant input, correlation undefined; returning 0.0", ConstantInputWarning, stacklevel=3)
        return 0.0
    return float(fn(a, b)[0])


def spearman(y_true, y_pred) -> float:
    """Spearman's rank correlation (ties averaged, as scipy)."""
    return _correlation(stats.spearmanr, y_true, y_pred, "spearman")


def pearson(y_true, y_pred) -> float:
    return _correlation(stats.pearsonr, y_true, y_pred, "pearson")


def mean_over_tasks(per_task: Mapping[str, float]) -> float:
    """The papers' 'Avg. Corr.': the arithmetic mean of per-task correlations (not Fisher-z)."""
    if not per_task:
        raise ValueError("mean_over_tasks: no tasks")
    return float(np.mean(list(per_task.values())))


def spearman_per_task(y_true, y_pred, tasks) -> dict[str, float]:
    """Spearman within each task (e.g. each PFED5 action) plus their arithmetic 'mean'."""
    a, b = _pair(y_true, y_pred, "spearman_per_task")
    t = np.asarray(tasks).reshape(-1)
    if len(t) != len(a):
        raise ValueError(f"spearman_per_task: {len(t)} task labels for {len(a)} values")
    out = {str(k): spearman(a[t == k], b[t == k]) for k in sorted(set(t.tolist()), key=str)}
    out["mean"] = mean_over_tasks(out)
    return out


def mae(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(a - b)))


def rmse(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((a - b) ** 2)))


NO_PREDICTION = -1  # predicted label of a sample the model could not be run on


def _labels(y_true, y_pred, name: str, num_classes: int | None,
            missing: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    a, b = _pair(y_true, y_pred, name, numeric=False)
    if a.dtype.kind not in "iu" or b.dtype.kind not in "iu":
        raise ValueError(f"{name}: class labels must be integers, got {a.dtype} and {b.dtype}")
    n = int(max(a.max(), b.max()) + 1) if num_classes is None else num_classes
    low = NO_PREDICTION if missing else 0
    if a.min() < 0 or b.min() < low or max(a.max(), b.max()) >= n:
        also = f" ({NO_PREDICTION}: no prediction)" if missing else ""
        raise ValueError(f"{name}: labels must lie in 0..{n - 1}{also}")
    return a, b, n


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """[C, C] counts, rows = true class, columns = predicted class."""
    a, b, n = _labels(y_true, y_pred, "confusion_matrix", num_classes)
    return np.bincount(a * n + b, minlength=n * n).reshape(n, n)


def _counts(y_true, y_pred, name: str, num_classes: int | None) -> np.ndarray:
    """[C, C + 1] counts, rows = true class, columns = predicted class and last "no prediction"."""
    a, b, n = _labels(y_true, y_pred, name, num_classes, missing=True)
    b = np.where(b == NO_PREDICTION, n, b)
    return np.bincount(a * (n + 1) + b, minlength=n * (n + 1)).reshape(n, n + 1)


def accuracy(y_true, y_pred) -> float:
    """Fraction correct (= WAR, weighted average recall, in DFER papers)."""
    a, b = _pair(y_true, y_pred, "accuracy", numeric=False)
    return float(np.mean(a == b))


war = accuracy


def _recall(cm: np.ndarray) -> np.ndarray:
    """[C] recall of each class from :func:`_counts`; NaN for a class absent from y_true."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def _f1(cm: np.ndarray) -> np.ndarray:
    """[C] F1 = 2 TP / (2 TP + FP + FN) of each class from :func:`_counts`; NaN for a class neither true nor predicted."""
    denom = cm[:, :-1].sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * np.diag(cm) / denom, np.nan)


def class_recall(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """[C] recall of each class (the papers' per-class accuracy); NaN for a class absent from y_true."""
    return _recall(_counts(y_true, y_pred, "class_recall", num_classes))


def class_f1(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """[C] F1 of each class; NaN for a class that is neither true nor predicted."""
    return _f1(_counts(y_true, y_pred, "class_f1", num_classes))


def uar(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted average recall: the mean over the classes present in y_true of their recall."""
    return float(np.nanmean(_recall(_counts(y_true, y_pred, "uar", num_classes))))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean F1 over the classes that occur in y_true or y_pred (F1 = 0 where precision+recall = 0)."""
    return float(np.nanmean(_f1(_counts(y_true, y_pred, "macro_f1", num_classes))))


def binary_report(y_true, y_pred) -> dict[str, float]:
    """Accuracy, sensitivity (recall of 1) and specificity (recall of 0) of 0/1 labels;
    NaN for a rate whose class is absent from y_true."""
    a, b = _pair(y_true, y_pred, "binary_report", numeric=False)
    if not (np.isin(a, [0, 1]).all() and np.isin(b, [0, 1]).all()):
        raise ValueError("binary_report: labels must be 0 or 1")
    pos, neg = a == 1, a == 0
    return {
        "accuracy": float(np.mean(a == b)),
        "sensitivity": float(np.mean(b[pos] == 1)) if pos.any() else float("nan"),
        "specificity": float(np.mean(b[neg] == 0)) if neg.any() else float("nan"),
    }


def bootstrap_ci(metric: Callable, y_true, y_pred, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0, groups=None) -> tuple[float, float, float]:
    """(value, low, high): the metric and its percentile bootstrap (1 - alpha) interval.

    ``groups`` (e.g. subject ids) resamples whole groups, the honest choice when a subject has
    several videos."""
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if len(a) != len(b):
        raise ValueError(f"bootstrap_ci: y_true has {len(a)} values but y_pred has {len(b)}")
    value = metric(a, b)
    rng = np.random.default_rng(seed)
    if groups is None:
        units = [np.array([i]) for i in range(len(a))]
    else:
        g = np.asarray(groups)
        units = [np.flatnonzero(g == k) for k in np.unique(g)]
    stats_ = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        for _ in range(n_boot):
            idx = np.concatenate([units[k] for k in rng.integers(0, len(units), len(units))])
            stats_.append(metric(a[idx], b[idx]))
    if not stats_:  # n_boot = 0 (eval.bootstrap: 0): no interval
        return float(value), float("nan"), float("nan")
    low, high = np.nanpercentile(stats_, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(value), float(low), float(high)
