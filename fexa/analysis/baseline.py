"""The geometric-features + Random Forest baseline (Ipapo et al., cited by TraMP-Former): the
kinematic measures of each sample (``fexa.analysis.measures``) fed to a scikit-learn random forest,
evaluated with the experiment config's subject-wise folds.

    fexa baseline configs/tramp_former/hypomimia_sanity.yaml [--folds K]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from fexa.analysis.measures import compute_measures
from fexa.analysis.tasks import task_of
from fexa.io.trackfile import TrackData
from fexa.train.config import ExperimentConfig, load_config


def sample_features(row: pd.Series) -> pd.Series:
    """Measures of one linked sample (its [start, end) frames; ``motion_scale`` applied like the
    datasets do: each landmark's displacement from the sample's first frame is scaled), for the
    sample's task when it names one (else the detected task)."""
    track = TrackData.load(f"{row['entry']}/track.npz").subclip(int(row.get("start", 0)), int(row.get("end", -1)))
    scale = float(row.get("motion_scale", 1.0))
    if scale != 1.0:
        track = track.scaled_motion(scale)
    m = compute_measures(track, task_of(row.get("task", "")))
    return pd.Series(m["value"].to_numpy(), index=m["measure"])


def _fold_result(cfg: ExperimentConfig, fold: int, trees: int) -> dict:
    from fexa.train.results import score
    from fexa.train.data import full_test, prepare_data, task_kind

    cfg.data.fold = fold
    data = prepare_data(cfg, progress=False)
    kind, num_classes = task_kind(cfg, data)
    train = pd.concat([data["train"], data["val"]], ignore_index=True)  # no model selection: use all training subjects
    x_train = train.apply(sample_features, axis=1).fillna(0.0)
    x_test = data["test"].apply(sample_features, axis=1).reindex(columns=x_train.columns).fillna(0.0)
    y = train["target"].to_numpy()
    if kind == "regression":
        model = RandomForestRegressor(trees, random_state=cfg.train.seed).fit(x_train, y)
        pred = model.predict(x_test)
    else:
        model = RandomForestClassifier(trees, random_state=cfg.train.seed).fit(x_train, y.astype(int))
        pred = np.zeros((len(x_test), num_classes))
        pred[:, model.classes_] = model.predict_proba(x_test)
    table, pred = full_test(kind, data, pred)  # the whole test list: no usable face scores as a failure
    out = {"fold": fold, "test_subjects": int(table["subject"].nunique()), "test_samples": len(table),
           "test_unusable": len(data["unusable_test"])}
    out.update(score(kind, table, pred))
    return out


def cross_validate(config: str, folds: int | None = None, overrides: list[str] | None = None,
                   trees: int = 300) -> pd.DataFrame:
    """Per-fold test metrics of the baseline on the config's data (folds of ``data.split: folds``)."""
    cfg = load_config(config, overrides)
    k = folds or cfg.data.folds
    cfg.data.folds = k
    return pd.DataFrame([_fold_result(cfg, fold, trees) for fold in range(k)])
