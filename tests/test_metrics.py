"""Metrics cross-checked against scipy and scikit-learn, plus their validation."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

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


def test_validation_names_the_argument_and_the_bad_value():
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        M.mae([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="0 or 1"):
        M.binary_report([0, 2], [0, 1])
    for fn in (M.spearman, M.pearson, M.mae, M.rmse):  # never dropped: an error naming the argument and index
        with pytest.raises(ValueError, match=rf"{fn.__name__}: y_pred holds 1 NaN or infinite value\(s\) "
                                             r"\(first nan at index 2\)"):
            fn([1, 2, 3, 4], [1, 2, np.nan, 4])
        with pytest.raises(ValueError, match=rf"{fn.__name__}: y_true holds 2 NaN .* \(first inf at index 0\)"):
            fn([np.inf, 2, np.nan, 4], [1, 2, 3, 4])
    # class labels: a NaN target (a missing label) was once counted as a wrong answer by accuracy
    for fn in (M.accuracy, M.uar, M.macro_f1):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: y_true must hold integer class labels, got float64 "
                                             r"\(NaN: a missing label\?\)"):
            fn([0, np.nan, 1], [0, 1, 1])
        with pytest.raises(ValueError, match=rf"{fn.__name__}: y_pred must hold integer class labels, got float64$"):
            fn([0, 1], [0.0, 1.0])
        with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2 \(-1: no prediction\); y_pred holds -2"):
            fn([0, 1, 2], [0, -2, 1])


def test_correlations_by_hand_with_ties_and_constant_inputs():
    """Ties get their mean rank (scipy); a constant input is fexa's convention, where scipy gives NaN for both:
    constant targets cannot be measured (NaN), constant predictions rank nothing (0.0)."""
    # ranks of y: 1, 2.5, 2.5, 4; of p: 1.5, 1.5, 3.5, 3.5 -> deviations (-1.5, 0, 0, 1.5) and (-1, -1, 1, 1):
    # r = 3 / sqrt(4.5 * 4) = 1 / sqrt(2). The no-ties formula 1 - 6 sum d^2 / (n (n^2 - 1)) would give 0.75.
    y, p = [1, 2, 2, 3], [1, 1, 2, 2]
    assert M.spearman(y, p) == pytest.approx(1 / np.sqrt(2)) == stats.spearmanr(y, p)[0]
    assert M.pearson(y, p) == pytest.approx(1 / np.sqrt(2))  # the values are their own ranks' linear map here
    rng = np.random.default_rng(3)  # 5 score levels on both sides: mostly ties
    y, p = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
    assert M.spearman(y, p) == pytest.approx(stats.spearmanr(y, p)[0])
    with pytest.warns(M.ConstantInputWarning, match=r"spearman: y_pred is constant \(2\), it ranks nothing; returning 0.0"):
        assert M.spearman([1, 2, 3, 4], [2, 2, 2, 2]) == 0.0
    with pytest.warns(M.ConstantInputWarning, match=r"pearson: y_true is constant \(3\), the correlation cannot be"):
        assert np.isnan(M.pearson([3, 3, 3], [1, 2, 3]))
    with pytest.warns(M.ConstantInputWarning, match="y_true is constant"):
        assert np.isnan(M.spearman([3, 3], [1, 1]))  # both constant: the targets decide
    with pytest.warns(stats.ConstantInputWarning):
        assert np.isnan(stats.spearmanr([1, 2, 3, 4], [2, 2, 2, 2])[0])  # scipy: undefined either way
    with pytest.raises(ValueError, match="spearman: needs at least 2 values, got 1"):
        M.spearman([1], [1])
    # a task whose targets do not vary cannot be measured, and neither can the mean over tasks
    with pytest.warns(M.ConstantInputWarning):
        out = M.spearman_per_task([1, 2, 3, 2, 2, 2], [1, 2, 3, 1, 2, 3], ["a"] * 3 + ["b"] * 3)
    assert out["a"] == pytest.approx(1.0) and np.isnan(out["b"]) and np.isnan(out["mean"])


def test_errors_by_hand():
    assert M.mae([3.0], [1.0]) == 2.0 and M.rmse([3.0], [1.0]) == 2.0  # one sample is enough
    assert M.mae([0, 0, 0, 4], [1, 1, 1, 0]) == pytest.approx(7 / 4)
    assert M.rmse([0, 0, 0, 4], [1, 1, 1, 0]) == pytest.approx(np.sqrt(19 / 4))


def test_uar_and_macro_f1_over_classes_absent_from_the_test_set():
    """Mutant (fexa/metrics/__init__.py, uar): the mean over all num_classes, an absent class's recall as 0
    (``np.mean(np.nan_to_num(recall))``, sklearn's recall_score(average="macro", labels=range(C))) must fail here;
    so must macro_f1 averaging every num_classes class (f1_score(..., labels=range(C)))."""
    # 5 classes allowed; class 2 predicted but never true, class 4 neither true nor predicted
    y, p = np.array([0, 0, 1, 1, 1, 3]), np.array([0, 2, 1, 1, 0, 3])
    # recall: class 0 1/2, class 1 2/3, class 3 1/1; classes 2 and 4 have no true sample: left out
    assert M.uar(y, p, 5) == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert M.uar(y, p, 5) == pytest.approx(skm.balanced_accuracy_score(y, p))
    with pytest.warns(UndefinedMetricWarning):  # what the mutant computes: 0.433
        assert M.uar(y, p, 5) != pytest.approx(skm.recall_score(y, p, average="macro", labels=range(5)))
    assert M.uar(y, p, 5) == pytest.approx(skm.recall_score(y, p, average="macro", labels=range(5), zero_division=np.nan))
    # F1 = 2 TP / (2 TP + FP + FN): class 0 2 / (2 + 1 + 1); class 1 4 / (4 + 0 + 1); class 2 0 (predicted, never
    # true); class 3 2 / 2; class 4 left out
    assert M.macro_f1(y, p, 5) == pytest.approx((1 / 2 + 4 / 5 + 0 + 1) / 4) == skm.f1_score(y, p, average="macro")
    with pytest.warns(UndefinedMetricWarning):  # a 0 for class 4: 0.46
        assert M.macro_f1(y, p, 5) != pytest.approx(skm.f1_score(y, p, average="macro", labels=range(5)))
    assert M.accuracy(y, p) == pytest.approx(4 / 6) == skm.accuracy_score(y, p)
    # one class in the test set: UAR is its recall (= accuracy); macro-F1 also counts the wrong class predicted
    y1, p1 = np.array([1, 1, 1]), np.array([1, 0, 1])
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert M.uar(y1, p1, 3) == pytest.approx(2 / 3) == skm.balanced_accuracy_score(y1, p1)
    assert M.macro_f1(y1, p1, 3) == pytest.approx((0 + 4 / 5) / 2) == skm.f1_score(y1, p1, average="macro")
    assert M.macro_f1(y1, y1, 3) == 1.0 == M.uar(y1, y1, 3)
    # a sample without a prediction: wrong for its class (sklearn: a label no true sample has) and no class's F1
    y2, p2 = np.array([0, 0, 1, 1, 2]), np.array([0, M.NO_PREDICTION, 1, 0, 1])
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert M.uar(y2, p2, 4) == pytest.approx(skm.balanced_accuracy_score(y2, p2))
    assert M.macro_f1(y2, p2, 4) == pytest.approx(skm.f1_score(y2, p2, average="macro", labels=[0, 1, 2]))


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
