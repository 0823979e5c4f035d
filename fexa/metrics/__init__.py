"""Evaluation metrics as plain functions on arrays (scikit-learn style: inputs validated, errors say why).

Conventions where scipy and scikit-learn leave a case undefined or warn (each function's docstring
says its own; tests/test_metrics.py checks them against scipy and scikit-learn where those define it):

- A correlation whose targets are constant cannot be measured on that test set: NaN with a
  ``ConstantInputWarning``. Constant predictions with varying targets rank nothing: 0.0 with a
  ``ConstantInputWarning`` (a collapsed model scores no correlation, so epoch selection and a
  mean over tasks stay defined and are pulled down, not emptied). scipy gives NaN for both.
- NaN or infinite values are an error naming the argument and the first bad index, never dropped.
- UAR is the mean recall over the classes present in y_true (scikit-learn's
  ``balanced_accuracy_score``: the mean of the per-class accuracies DFER papers such as DFEW's and
  FERV39k's report as UAR; a class absent from the test set has no recall and is left out).
  Macro-F1 is the mean F1 over the classes present in y_true or y_pred (scikit-learn's
  ``f1_score(average="macro")`` with its default labels). Classes that ``num_classes`` allows but
  no sample has or gets enter neither mean.

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
    """A correlation was asked of a constant array: NaN (constant targets) or 0.0 (constant predictions)."""


def _pair(y_true, y_pred, name: str, numeric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """y_true and y_pred flattened, of one length and not empty; ``numeric``: as floats, all finite."""
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.ndim != 1 or b.ndim != 1:
        a, b = a.reshape(-1), b.reshape(-1)
    if len(a) != len(b):
        raise ValueError(f"{name}: y_true has {len(a)} values but y_pred has {len(b)}")
    if len(a) == 0:
        raise ValueError(f"{name}: no values")
    if numeric:
        a, b = a.astype(np.float64), b.astype(np.float64)
        _finite(a, "y_true", name)
        _finite(b, "y_pred", name)
    return a, b


def _finite(x: np.ndarray, arg: str, name: str) -> None:
    """Refuse NaN and infinite values of argument ``arg``, naming it and the first bad index."""
    bad = np.flatnonzero(~np.isfinite(x))
    if len(bad):
        raise ValueError(f"{name}: {arg} holds {len(bad)} NaN or infinite value(s) (first {x[bad[0]]} at index "
                         f"{bad[0]}); drop or fill those samples first")


def _correlation(fn, y_true, y_pred, name: str) -> float:
    """``fn`` (a scipy correlation) of the pair; NaN for constant targets, 0.0 for constant predictions."""
    a, b = _pair(y_true, y_pred, name)
    if len(a) < 2:
        raise ValueError(f"{name}: needs at least 2 values, got {len(a)}")
    if np.ptp(a) == 0:
        warnings.warn(f"{name}: y_true is constant ({a[0]:g}), the correlation cannot be measured; returning NaN",
                      ConstantInputWarning, stacklevel=3)
        return float("nan")
    if np.ptp(b) == 0:
        warnings.warn(f"{name}: y_pred is constant ({b[0]:g}), it ranks nothing; returning 0.0",
                      ConstantInputWarning, stacklevel=3)
        return 0.0
    return float(fn(a, b)[0])


def spearman(y_true, y_pred) -> float:
    """Spearman's rank correlation, tied values given their mean rank (as scipy.stats.spearmanr);
    NaN for constant y_true, 0.0 for constant y_pred (both with a ConstantInputWarning)."""
    return _correlation(stats.spearmanr, y_true, y_pred, "spearman")


def pearson(y_true, y_pred) -> float:
    """Pearson's correlation (as scipy.stats.pearsonr); NaN for constant y_true, 0.0 for constant y_pred."""
    return _correlation(stats.pearsonr, y_true, y_pred, "pearson")


def mean_over_tasks(per_task: Mapping[str, float]) -> float:
    """The papers' 'Avg. Corr.': the arithmetic mean of per-task correlations (not Fisher-z)."""
    if not per_task:
        raise ValueError("mean_over_tasks: no tasks")
    return float(np.mean(list(per_task.values())))


def spearman_per_task(y_true, y_pred, tasks) -> dict[str, float]:
    """Spearman within each task (e.g. each PFED5 action) plus their arithmetic 'mean' (NaN when a
    task's targets are constant: that task cannot be measured)."""
    a, b = _pair(y_true, y_pred, "spearman_per_task")
    t = np.asarray(tasks).reshape(-1)
    if len(t) != len(a):
        raise ValueError(f"spearman_per_task: {len(t)} task labels for {len(a)} values")
    out = {str(k): spearman(a[t == k], b[t == k]) for k in sorted(set(t.tolist()), key=str)}
    out["mean"] = mean_over_tasks(out)
    return out


def mae(y_true, y_pred) -> float:
    """Mean absolute error (as sklearn's mean_absolute_error); NaN or infinite values are an error."""
    a, b = _pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(a - b)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error; NaN or infinite values are an error."""
    a, b = _pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((a - b) ** 2)))


NO_PREDICTION = -1  # predicted label of a sample the model could not be run on


def _labels(y_true, y_pred, name: str, num_classes: int | None,
            missing: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """y_true and y_pred as integer class labels in 0..n-1 (y_pred also NO_PREDICTION with ``missing``),
    and n: ``num_classes``, or the largest label + 1."""
    a, b = _pair(y_true, y_pred, name, numeric=False)
    for arg, x in (("y_true", a), ("y_pred", b)):
        if x.dtype.kind not in "iu":
            raise ValueError(f"{name}: {arg} must hold integer class labels, got {x.dtype}"
                             + (" (NaN: a missing label?)" if x.dtype.kind == "f" and np.isnan(x).any() else ""))
    n = int(max(a.max(), b.max()) + 1) if num_classes is None else num_classes
    also = f" ({NO_PREDICTION}: no prediction)" if missing else ""
    for arg, x, low in (("y_true", a, 0), ("y_pred", b, NO_PREDICTION if missing else 0)):
        bad = x[(x < low) | (x >= n)]
        if len(bad):
            raise ValueError(f"{name}: labels must lie in 0..{n - 1}{also if arg == 'y_pred' else ''}; "
                             f"{arg} holds {bad[0]}")
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
    """Fraction correct (= WAR, weighted average recall, in DFER papers; as sklearn's accuracy_score) of
    integer class labels; a NO_PREDICTION counts wrong."""
    a, b, _ = _labels(y_true, y_pred, "accuracy", None, missing=True)
    return float(np.mean(a == b))


war = accuracy


def _recall(cm: np.ndarray) -> np.ndarray:
    """[C] recall of each class from :func:`_counts`; NaN for a class absent from y_true."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def _f1(cm: np.ndarray) -> np.ndarray:
    """[C] F1 = 2 TP / (2 TP + FP + FN) of each class from :func:`_counts`; NaN for a class neither true nor
    predicted."""
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
    """Unweighted average recall: the mean over the classes present in y_true of their recall (as
    sklearn's balanced_accuracy_score); classes absent from y_true are left out, even if predicted."""
    return float(np.nanmean(_recall(_counts(y_true, y_pred, "uar", num_classes))))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean F1 over the classes that occur in y_true or y_pred (as sklearn's f1_score(average="macro")
    with its default labels); a class predicted but never true has F1 0, one neither true nor
    predicted is left out."""
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
