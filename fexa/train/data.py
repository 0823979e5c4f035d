"""A training run's data: the dataset's samples linked to the extract cache and the training store,
split by the config (fixed, subject folds or the authors' fold lists, a held-out validation share),
and the whole test list, whose samples without a usable face are scored as failures."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fexa.data.adapters import DATASETS, load_dataset
from fexa.data.landmark_files import FileLandmarks, link_landmarks, write_landmark_files
from fexa.data.samples import FaceSamples, link_cache, mirror_permutation
from fexa.data.store import StoreConfig, StoredEntry
from fexa.data.splits import (assert_subject_disjoint, file_folds, fixed_split, read_fold_file, split_fold,
                              subject_folds, validation_split)
from fexa.errors import FexaError
from fexa.train.config import CLASSIFICATION_LOSSES, ExperimentConfig
from fexa.face.align import CROP_SIZE
from fexa.train.distributed import barrier
from fexa.train.inputs import model_inputs

if TYPE_CHECKING:
    from fexa.extract import ExtractConfig


def dataset_table(cfg: ExperimentConfig) -> pd.DataFrame:
    """The config's samples: the dataset's table, its task, target map and limit applied."""
    d = cfg.data
    table = load_dataset(d.dataset, d.root, **d.options)
    if d.task:
        table = table[table["task"] == d.task]
        if table.empty:
            tasks = sorted(set(load_dataset(d.dataset, d.root, **d.options)["task"]))
            raise FexaError(f"no samples of task {d.task!r}; tasks: {tasks}")
    if d.target_map:
        table = table.assign(target=table["target"].map(lambda t: d.target_map[int(t)]))
        table = table[table["target"] >= 0]
    if d.limit:
        table = table.iloc[: d.limit]
    return table


def prepare_data(cfg: ExperimentConfig, rank: int = 0, world: int = 1, progress: bool = True) -> dict:
    """Load, link and split the dataset: {'train', 'val', 'test' (usable samples), 'unusable_test',
    'dropped', 'info', 'held_out' (whether 'val' are training subjects held out)}."""
    d = cfg.data
    info = DATASETS.get(d.dataset)
    table = dataset_table(cfg)
    table, absent = _check_media(table, d.allow_missing)
    linked, dropped = linked_samples(cfg, table, rank, world, progress)
    dropped = pd.concat([absent, dropped], ignore_index=True)
    # every sample is split, usable or not: the splits do not depend on face detection, and the test
    # list stays the dataset's whole list (its unusable samples are scored as wrong, see full_test)
    rows = pd.concat([linked, dropped], ignore_index=True)
    val = rows.iloc[0:0]
    if d.split == "fixed":
        train, val, test = fixed_split(rows)
    elif d.split == "folds":
        folds = subject_folds(rows, d.folds, cfg.train.seed, d.stratify or None)
        train, test = split_fold(rows, folds, d.fold)
    elif d.split == "file":
        train, test = published_fold(rows, d.fold_file, d.fold, rank)
    else:
        raise FexaError(f"data.split must be 'fixed', 'folds' or 'file', got {d.split!r}")
    held_out = val.empty and d.val_fraction > 0
    if held_out:  # no validation set of the dataset's own: hold out training subjects
        train, val = validation_split(train, d.val_fraction, cfg.train.seed, d.stratify or None)
        assert_subject_disjoint(train, val, "the validation split")
    usable = {k: df[df["entry"].notna()].drop(columns=["status", "reason"], errors="ignore").reset_index(drop=True)
              for k, df in (("train", train), ("val", val), ("test", test))}
    unusable_test = test[test["entry"].isna()].reset_index(drop=True)
    if len(dropped) and rank == 0:
        counts = ", ".join(f"{v} {k}" for k, v in dropped["status"].value_counts().items())
        print(f"fexa: warning: {len(dropped)} of {len(rows)} samples have no usable face or media ({counts}); "
              f"{len(unusable_test)} of them are test samples, scored as wrong predictions; all are listed in "
              f"{cfg.run_dir / 'dropped.csv'}", file=sys.stderr)
    if usable["train"].empty or usable["test"].empty:
        raise FexaError(f"empty split: {len(usable['train'])} training and {len(usable['test'])} test samples "
                        f"with a usable face")
    return {**usable, "unusable_test": unusable_test, "dropped": dropped, "info": info, "held_out": held_out}


def extract_settings(cfg: ExperimentConfig) -> tuple[ExtractConfig, Path]:
    """(extraction settings, cache folder) of the config's faces. Given faces are cropped at the model's
    input size (the image or clip size; the 256-px crop for trajectories alone), in their own cache
    folder ``<cache>/given<size>``, so runs on detected and given faces (or other sizes) keep their entries."""
    from fexa.extract import ExtractConfig  # the face models' module: not where a worker imports this
    from fexa.face.detector import TrackerConfig

    d = cfg.data
    info = DATASETS.get(d.dataset)
    fallback = TrackerConfig(whole_image_fallback=True)
    if d.faces == "given":
        keys, _ = model_inputs(cfg.model.name)
        size = d.samples.image_size if "image" in keys else d.samples.clip_size if "clip" in keys else CROP_SIZE
        return ExtractConfig(faces="given", crop_size=size, tracker=fallback), Path(d.cache) / f"given{size}"
    return (ExtractConfig(tracker=fallback) if info and info.face_crops else ExtractConfig()), Path(d.cache)


def linked_samples(cfg: ExperimentConfig, table: pd.DataFrame, rank: int = 0, world: int = 1,
                   progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(samples linked to the extract cache, the training store and ``data.landmarks`` files; samples
    dropped, with the status and reason). Rank 0 extracts and builds; the others then find all complete."""
    d = cfg.data
    extract, cache = extract_settings(cfg)
    store = StoreConfig(d.store_quality)
    keys, _ = model_inputs(cfg.model.name)

    def link(workers: int, bars: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
        linked, dropped = link_cache(table, cache, extract, workers=workers, progress=bars, store=store)
        if not d.landmarks:
            return linked, dropped
        linked, missing = link_landmarks(linked, d.landmarks, keys, d.allow_missing)
        return linked, pd.concat([dropped, missing], ignore_index=True)

    if rank == 0:
        result = link(d.extract_workers, progress)
    barrier(world)
    return result if rank == 0 else link(1, False)


def write_synthetic_landmarks(cfg: ExperimentConfig, folder: str | Path, fmt: str) -> list[Path]:
    """A ``data.landmarks`` folder for the config's samples, in format ``fmt`` (insightface106,
    insightface73 or tracks63), made from fexa's own mesh: what ``fexa reproduce --check`` runs the
    rows that read landmark files on (the researcher's files come from SCRFD or the trackers)."""
    plain = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, landmarks=""))
    table, _ = _check_media(dataset_table(plain), True)
    linked, _ = linked_samples(plain, table, progress=False)
    return write_landmark_files(linked, folder, fmt)


def published_fold(rows: pd.DataFrame, fold_file: str, fold: int, rank: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of fold ``fold`` of the authors' published fold lists (``data.fold_file``).
    Subjects in no list train in every fold, as in the authors' code; both kinds of mismatch are
    reported, since they change what the folds test."""
    lists = read_fold_file(fold_file)
    if fold not in lists:
        raise FexaError(f"data.fold {fold} is not in {fold_file}: it has folds 0..{len(lists) - 1}")
    folds, unlisted, unmatched = file_folds(rows, lists)
    if rank == 0 and (unlisted or unmatched):
        print(f"fexa: warning: {fold_file}: subjects in no fold list (they train in every fold): {unlisted or 'none'}; "
              f"listed names matching no subject: {[repr(s) for s in unmatched] or 'none'}", file=sys.stderr)
    return split_fold(rows, folds, fold)


def whole_test_list(data: dict) -> pd.DataFrame:
    """The dataset's whole test list: the samples with a usable face (``data["test"]``, which the
    model sees), then those without a usable face or media (``data["unusable_test"]``)."""
    missing = data["unusable_test"]
    return pd.concat([data["test"], missing[data["test"].columns.intersection(missing.columns)]], ignore_index=True)


def full_test(kind: str, data: dict, pred: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """(:func:`whole_test_list`, predictions for it): the model's for the usable samples, and failures
    for the others: no class (NaN scores, counted wrong by every metric) or, for scores, the
    training mean (a prediction without information)."""
    n = len(data["unusable_test"])
    if kind == "classification":
        fill = np.full((n, pred.shape[1]), np.nan)
    else:
        fill = np.full(n, float(data["train"]["target"].mean()))
    return whole_test_list(data), np.concatenate([pred, fill.astype(pred.dtype)])


def _check_media(table: pd.DataFrame, allow_missing: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose media exist, rows whose media do not). Missing media are an error listing the
    first few unless ``allow_missing``."""
    exists = table["path"].map(os.path.exists)
    absent = table[~exists].assign(status="missing", reason="media not found")
    if len(absent):
        examples = "; ".join(f"{r.id}: {r.path}" for r in absent.head(3).itertuples())
        what = f"{len(absent)} of {len(table)} samples name media that do not exist (e.g. {examples})"
        if not allow_missing:
            raise FexaError(f"{what}: fix the labels, or drop them with --allow-missing (data.allow_missing=true)")
    return table[exists], absent


def class_names(dataset: str, target_map: list[int], num_classes: int) -> list[str]:
    """The trained classes' names: the dataset's, or after a ``target_map`` the names mapped onto
    each target joined by '/' (e.g. CFC-SP's coarse 'Anger/Disgust/Fear/Sadness'); [] if unknown."""
    names = DATASETS[dataset].classes if dataset in DATASETS else ()
    if target_map and len(names) == len(target_map):
        return ["/".join(n for n, t in zip(names, target_map) if t == k) for k in range(num_classes)]
    return list(names) if len(names) == num_classes else []


def task_kind(cfg: ExperimentConfig, data: dict) -> tuple[str, int]:
    """('regression', 0) or ('classification', number of classes) for the prepared data."""
    info = data["info"]
    kind = info.kind if info else "regression"
    if cfg.data.dataset == "manifest" and cfg.train.loss in CLASSIFICATION_LOSSES and not cfg.data.scores_as_classes:
        kind = "classification"  # a manifest trained with a class loss holds classes, unless its scores are levels
    if cfg.data.scores_as_classes:
        if kind != "regression":
            raise FexaError(f"data.scores_as_classes turns scores into classes, but {cfg.data.dataset} is already "
                            "a classification dataset")
        return "classification", score_levels(data)
    if kind == "regression":
        return kind, 0
    if cfg.data.target_map:
        return kind, len(set(cfg.data.target_map) - {-1})
    if info is not None and info.classes:
        return kind, len(info.classes)
    return kind, int(data["train"]["target"].max()) + 1


def score_levels(data: dict) -> int:
    """The number of classes when integer scores 0..K-1 are trained as classes: the highest score of
    any split + 1 (a level absent from training still has its class). Non-integer scores are refused."""
    y = pd.concat([data[k]["target"] for k in ("train", "val", "test", "unusable_test")]).to_numpy(float)
    if (y < 0).any() or not np.array_equal(y, np.round(y)):
        bad = y[(y < 0) | (y != np.round(y))][0]
        raise FexaError(f"data.scores_as_classes needs integer scores 0, 1, 2...; this dataset has {bad:g}")
    return int(y.max()) + 1


def mirror_of(train: pd.DataFrame) -> np.ndarray | None:
    """Left/right permutation of the heatmap73 points, from the mean shape of the first 50 training
    samples with landmarks among the first 500 (None when none has any: image landmarks all missing)."""
    shapes = []
    files = train["landmarks"] if "landmarks" in train else pd.Series("", index=train.index)
    for entry, file in zip(train["entry"].iloc[:500], files.fillna("").iloc[:500]):
        e = FileLandmarks(StoredEntry(entry), file) if file else StoredEntry(entry)
        found = e.usable_frames[np.isfinite(e.nose[e.usable_frames, 0])]
        if len(found):
            shapes.append(e.heatmap73[found[0]])
        if len(shapes) == 50:
            break
    return mirror_permutation(np.mean(shapes, axis=0)) if shapes else None


def training_samples(cfg: ExperimentConfig, table: pd.DataFrame, keys: tuple[str, ...], repeats: int | None = None,
                     **options) -> FaceSamples:
    """The training items of ``table`` for a model taking ``keys``: the config's sampling and seed,
    uint8 batches finished on the device, image items mirrored by the table's mean face;
    ``repeats`` (default ``train.repeats``) passes per epoch, ``options`` to FaceSamples."""
    mirror = mirror_of(table) if "image" in keys else None
    repeats = cfg.train.repeats if repeats is None else repeats
    return FaceSamples(table, keys, cfg.data.samples, True, cfg.train.seed, repeats, mirror, uint8=True, **options)
