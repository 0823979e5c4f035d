"""Metrics cross-checked against scipy and scikit-learn, plus their validation."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from fexa import metrics as M


@pytest.fixture
def reg():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 60).astype(float)
    return y, y + rng.normal(0, 1.0, 60)


def test_regression_metrics_match_scipy(reg):
    y, p = reg
    assert M.spearman(y, p) == pytest.approx(stats.spearmanr(y, p)[0])
    assert M.pearson(y, p) == pytest.approx(stats.pearsonr(y, p)[0])
    assert M.mae(y, p) == pytest.approx(skm.mean_absolute_error(y, p))
    assert M.rmse(y, p) == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))


def test_per_task_mean_is_arithmetic(reg):
    y, p = reg
    tasks = np.repeat(["smile", "frown", "rest"], 20)
    out = M.spearman_per_task(y, p, tasks)
    assert set(out) == {"smile", "frown", "rest", "mean"}
    assert out["smile"] == pytest.approx(stats.spearmanr(y[:20], p[:20])[0])
    assert out["mean"] == pytest.approx(np.mean([out["smile"], out["frown"], out["rest"]]))
    assert M.mean_over_tasks({"a": 0.7535, "b": 0.6829}) == pytest.approx(0.7182)


def test_classification_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 7, 200))
    assert M.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p)) == M.war(y, p)
    assert M.uar(y, p) == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert M.macro_f1(y, p) == pytest.approx(skm.f1_score(y, p, average="macro"))
    np.testing.assert_array_equal(M.confusion_matrix(y, p, 7), skm.confusion_matrix(y, p, labels=range(7)))
    b = M.binary_report([1, 1, 1, 0, 0], [1, 0, 1, 0, 1])
    assert b == {"accuracy": pytest.approx(0.6), "sensitivity": pytest.approx(2 / 3), "specificity": pytest.approx(0.5)}


def test_validation_and_degenerate_inputs():
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        M.mae([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        M.spearman([1, 2, np.nan], [1, 2, 3])
    with pytest.raises(ValueError, match="integers"):
        M.uar([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        M.binary_report([0, 2], [0, 1])
    with pytest.warns(M.ConstantInputWarning):
        assert M.spearman([1, 2, 3, 4], [2, 2, 2, 2]) == 0.0


def test_bootstrap_interval_contains_the_value_and_narrows_with_data(reg):
    y, p = reg
    v, lo, hi = M.bootstrap_ci(M.spearman, y, p, n_boot=300)
    assert lo < v < hi and hi - lo < 0.5
    v2, lo2, hi2 = M.bootstrap_ci(M.spearman, np.tile(y, 4), np.tile(p, 4), n_boot=300)
    assert hi2 - lo2 < hi - lo
    groups = np.repeat(np.arange(12), 5)
    _, glo, ghi = M.bootstrap_ci(M.mae, y, p, n_boot=300, groups=groups)
    assert glo < M.mae(y, p) < ghi


def test_no_bootstrap_gives_the_value_without_an_interval():
    v, lo, hi = M.bootstrap_ci(M.accuracy, [0, 1, 1, 0], [0, 1, 0, 0], n_boot=0)
    assert v == 0.75 and np.isnan(lo) and np.isnan(hi)


def test_no_prediction_counts_wrong_for_its_class_and_as_no_other_class():
    # class 0: one right, one without prediction; class 1: one right, one predicted 0 (hand-computed)
    y, p = np.array([0, 0, 1, 1]), np.array([0, M.NO_PREDICTION, 1, 0])
    assert M.accuracy(y, p) == 0.5
    assert M.uar(y, p, 2) == 0.5  # recalls 1/2 and 1/2
    # F1 class 0: tp 1, predicted 2, true 2 -> 0.5; class 1: tp 1, predicted 1, true 2 -> 2/3; no third "class"
    assert M.macro_f1(y, p, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        M.confusion_matrix(y, p, 2)  # a confusion matrix has no column for it
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        M.uar(np.array([0, -1]), np.array([0, 0]), 2)  # a target is never missing


def test_per_class_recall_and_f1_by_hand_and_against_sklearn():
    # class 0: 2 true, 1 right, 1 without prediction; class 1: 3 true, 2 right, 1 predicted as 2;
    # class 2: never true, predicted once (for a 1) -> recall NaN, F1 0; class 3: absent everywhere -> NaN
    y, p = np.array([0, 0, 1, 1, 1]), np.array([0, M.NO_PREDICTION, 1, 1, 2])
    np.testing.assert_allclose(M.class_recall(y, p, 4), [0.5, 2 / 3, np.nan, np.nan])
    # F1 = 2 TP / (2 TP + FP + FN): class 0: 2 / (2 + 0 + 1); class 1: 4 / (4 + 0 + 1); class 2: 0 / (0 + 1 + 0)
    np.testing.assert_allclose(M.class_f1(y, p, 4), [2 / 3, 4 / 5, 0.0, np.nan])
    assert M.uar(y, p, 4) == pytest.approx((0.5 + 2 / 3) / 2)
    assert M.macro_f1(y, p, 4) == pytest.approx((2 / 3 + 4 / 5 + 0) / 3)
    rng = np.random.default_rng(2)
    y = rng.integers(0, 7, 300)
    p = np.where(rng.random(300) < 0.5, y, rng.integers(0, 7, 300))
    np.testing.assert_allclose(M.class_recall(y, p, 7), skm.recall_score(y, p, average=None, labels=range(7)))
    np.testing.assert_allclose(M.class_f1(y, p, 7), skm.f1_score(y, p, average=None, labels=range(7)))


def test_score_names_each_class_recall_and_f1_by_the_dataset_class_names():
    import pandas as pd

    from fexa.train.results import class_key, score

    table = pd.DataFrame({"target": [0, 0, 1, 2], "task": ""})
    pred = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [np.nan] * 3])  # the last: no face
    out = score("classification", table, pred, classes=["Neutral", "Happy", "Anger/Disgust"])
    assert out["recall_neutral"] == 0.5 and out["recall_happy"] == 1.0 and out["recall_anger_disgust"] == 0.0
    # F1: neutral 2 / (2 + 0 + 1); happy 2 / (2 + 1 + 0); anger/disgust: never predicted, one missed -> 0
    assert out["f1_neutral"] == pytest.approx(2 / 3) and out["f1_happy"] == pytest.approx(2 / 3)
    assert out["f1_anger_disgust"] == 0.0 and out["accuracy"] == 0.5
    assert not any(k.startswith("recall_") for k in score("classification", table, pred))  # no names: none
    assert class_key(" Sad-ness (7)") == "sad_ness_7"
