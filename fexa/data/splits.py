"""Subject-wise splits: no subject may appear on both sides of a split."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.errors import FexaError


def assert_subject_disjoint(a: pd.DataFrame, b: pd.DataFrame, what: str = "split") -> None:
    """Raise if any subject is in both tables."""
    shared = sorted(set(a["subject"]) & set(b["subject"]))
    if shared:
        raise FexaError(f"{what}: {len(shared)} subject(s) appear on both sides, e.g. {shared[:5]}")


def subject_folds(table: pd.DataFrame, k: int, seed: int = 0, stratify: str | None = None) -> pd.Series:
    """Fold number (0..k-1) of every row, assigning whole subjects to folds.

    Subjects are shuffled (``seed``) and dealt round-robin, within each stratum of ``stratify``
    (e.g. Toronto NeuroFace's ALS / stroke / healthy group) so folds are balanced over it; folds
    differ in size by at most one subject per stratum."""
    subjects = table.groupby("subject", sort=True)
    if subjects.ngroups < k:
        raise FexaError(f"cannot make {k} subject folds from {subjects.ngroups} subjects")
    if stratify is not None:
        strata = subjects[stratify].agg(lambda s: s.iloc[0])
    else:
        strata = pd.Series("", index=sorted(table["subject"].unique()))
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    offset = 0
    for _, members in strata.groupby(strata, sort=True):
        names = list(members.index)
        rng.shuffle(names)
        for i, s in enumerate(names):
            fold_of[s] = (i + offset) % k
        offset += len(names)  # the next stratum starts where this one stopped: folds stay even
    return table["subject"].map(fold_of).astype(int)


def split_fold(table: pd.DataFrame, folds: pd.Series, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) for one fold number."""
    train, test = table[folds != fold].reset_index(drop=True), table[folds == fold].reset_index(drop=True)
    assert_subject_disjoint(train, test, f"fold {fold}")
    return train, test


def validation_split(train: pd.DataFrame, fraction: float, seed: int = 0,
                     stratify: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out about ``fraction`` of the training subjects for model selection (the honest protocol)."""
    if fraction <= 0:
        return train, train.iloc[0:0]
    n_subjects = train["subject"].nunique()
    k = max(2, round(1 / fraction))
    if n_subjects < 2:
        raise FexaError("a validation split needs at least 2 training subjects")
    folds = subject_folds(train, min(k, n_subjects), seed, stratify)
    return split_fold(train, folds, 0)


def fixed_split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, val, test) from the dataset's own ``fold`` column: "train" rows train, "val" rows are
    the dataset's validation set (e.g. FERPlus PublicTest; empty when it has none), every other row
    is a test row (e.g. "test", PFED5's "fold1")."""
    fold = table["fold"].astype(str)
    masks = (fold == "train", fold == "val", ~fold.isin(["train", "val"]))
    train, val, test = (table[m].reset_index(drop=True) for m in masks)
    assert_subject_disjoint(train, test, "the dataset's train/test split")
    assert_subject_disjoint(train, val, "the dataset's train/validation split")
    return train, val, test


def read_fold_file(path: str | Path) -> dict[int, list[str]]:
    """Published test folds: fold number (0-based) -> its test subjects, as the authors wrote them.

    A CSV with ``subject`` and ``fold`` columns (folds numbered from 0 or 1), or the authors' Python
    file holding one dict literal of fold -> subject list (TraMP-Former's
    ``dataloader/NeuroFace_data.py`` ``cv_dict``), read as a literal, never run."""
    path = Path(path)
    if not path.is_file():
        raise FexaError(f"data.fold_file: {path} does not exist")
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str)
        if not {"subject", "fold"} <= set(df.columns):
            raise FexaError(f"data.fold_file: {path} needs columns subject and fold, has {list(df.columns)}")
        lists = {k: g["subject"].tolist() for k, g in df.groupby("fold")}
    else:
        lists = None
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Dict) and node.keys and all(isinstance(v, ast.List) for v in node.values):
                lists = ast.literal_eval(node)
                break
        if lists is None:
            raise FexaError(f"data.fold_file: no dict of fold -> subject list found in {path}")
    try:
        numbers = sorted(int(k) for k in lists)
    except ValueError:
        raise FexaError(f"data.fold_file: fold names in {path} must be numbers, got {sorted(lists)}") from None
    first = numbers[0]
    return {int(k) - first: [str(s) for s in v] for k, v in sorted(lists.items(), key=lambda kv: int(kv[0]))}


def file_folds(table: pd.DataFrame, folds: dict[int, list[str]]) -> tuple[pd.Series, list[str], list[str]]:
    """(fold number of every row, -1 for subjects in no fold list; the dataset's subjects in no list;
    listed names matching no subject). Names are matched exactly as written, as the authors' code
    does: TraMP-Former's 'S007 ' (trailing space) matches no subject, so S007 trains in every fold."""
    owner = {s: k for k, names in folds.items() for s in names}
    fold = table["subject"].astype(str).map(owner).fillna(-1).astype(int)
    subjects = set(table["subject"].astype(str))
    return fold, sorted(subjects - set(owner)), sorted(set(owner) - subjects)
