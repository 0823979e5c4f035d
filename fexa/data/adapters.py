"""Dataset adapters: read a licensed dataset's files as distributed into a sample table
(``fexa.data.tables``). Each adapter is registered with its task kind and class names.

Layouts read (``root`` is the dataset folder; file names can be overridden by options):

- ``pfed5``: ``PFED5_train.csv`` / ``PFED5_test.csv`` (or TraMP's ``train_41.csv`` / ``test_41.csv``):
  id_v, score, frames, action (column 3; column 4 in 5-column files); frames at
  ``root/<patient>/<video>/*.jpg`` with patient = id_v's last ``_`` field and video = id_v[:11].
- ``toronto_neuroface``: the repetition split CSV (File Name, repID, Number of Frames, start, end)
  and a labels CSV (File Name, sum or the subscore column ``score_column``); subject and task are
  read from the file name by regex.
- ``unbc``: ``Images/<subject>/<sequence>/*.png`` with ``Sequence_Labels/VAS/<subject>/<sequence>.txt``.
- ``dfew``: Former-DFER annotation lines ``<frames_dir> <num_frames> <label 0-6>`` (frames under
  ``root/<last part of frames_dir>``); one file per split.
- ``afew``: ``<Train|Val>/<Emotion>/*.avi``.
- ``rafdb``: ``EmoLabel/list_patition_label.txt`` (labels 1-7) and ``Image/aligned/*_aligned.jpg``.
- ``ferplus``: ``fer2013new.csv`` vote counts (majority label) and ``FER2013{Train,Valid,Test}/``.
- ``affectnet7``: ``Manually_Annotated_file_lists/{training,validation}.csv`` (expression 0-6) and
  ``Manually_Annotated_Images/``.
- ``affwild2``: per-video label files (header line, then one label per frame, -1 = skip) and frames
  ``<frames_dir>/<video>/{i:05d}.jpg``; one row per video (``labels_file`` column).
- ``manifest``: a user's CSV with path, subject, label or score, and optionally task, id, start, end.
- ``jaffe``, ``ckplus48``, ``yale``, ``fer2013``: the small real sets in ../shared/data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fexa.data.tables import class_indices, make_table, read_csv, require_columns
from fexa.errors import FexaError
from fexa.io.media import list_frame_files


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    adapter: Callable[..., pd.DataFrame]
    kind: str  # "classification" or "regression"
    classes: tuple[str, ...] = ()
    neutral: int | None = None  # index of the neutral class (NeAA)
    tasks: tuple[str, ...] = ()
    face_crops: bool = False  # images that are face crops already: extraction falls back to the whole image


DATASETS: dict[str, DatasetInfo] = {}


def register(name: str, kind: str, classes: tuple[str, ...] = (), neutral: int | None = None,
             tasks: tuple[str, ...] = (), face_crops: bool = False) -> Callable:
    def wrap(fn: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        DATASETS[name] = DatasetInfo(name, fn, kind, classes, neutral, tasks, face_crops)
        return fn

    return wrap


def load_dataset(name: str, root: str | Path, **options) -> pd.DataFrame:
    """The sample table of dataset ``name`` stored at ``root``."""
    if name not in DATASETS:
        raise FexaError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    root = Path(root)
    if not root.exists():
        raise FexaError(f"{name}: dataset folder not found: {root}")
    try:
        return DATASETS[name].adapter(root, **options)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise FexaError(f"{name}: {e}") from None
        raise


def _read_positional_csv(path: Path, name: str) -> pd.DataFrame:
    """A CSV read by column position; a first row whose second field is not a number is a header."""
    df = read_csv(path, name, header=None, dtype=str)
    try:
        float(df.iloc[0, 1])
    except (ValueError, TypeError, IndexError):
        df = df.iloc[1:]
    return df.reset_index(drop=True)


PFED5_ACTIONS = ("sit_at_rest", "smile", "frown", "squeeze_eyes", "clench_teeth")


@register("pfed5", "regression", tasks=PFED5_ACTIONS)
def pfed5(root: Path, train_csv: str = "PFED5_train.csv", test_csv: str = "PFED5_test.csv",
          check_frames: bool = True) -> pd.DataFrame:
    """PFED5 (MDS-UPDRS 0-4 per action; fixed subject split 30 train / 11 test)."""
    rows, bad = [], []
    for fold, csv in (("train", train_csv), ("test", test_csv)):
        df = _read_positional_csv(root / csv, "pfed5")
        action_col = 4 if df.shape[1] >= 5 else 3
        for r in df.itertuples(index=False):
            id_v = str(r[0]).strip()
            patient, video = id_v.split("_")[-1], id_v[:11]
            frames = root / patient / video
            n = int(float(r[2]))
            if check_frames:
                have = len(list_frame_files(frames)) if frames.is_dir() else 0
                if have != n:
                    bad.append(f"{frames} ({have} frames, CSV says {n})")
            rows.append({"id": id_v, "path": str(frames), "subject": patient, "target": float(r[1]),
                         "task": PFED5_ACTIONS[int(float(r[action_col]))], "fold": fold, "frames": n})
    if bad:
        raise FexaError(f"pfed5: {len(bad)} clip folders are missing or have the wrong frame count, e.g. {bad[:3]}")
    return make_table(rows, "pfed5")


TORONTO_TASKS = ("BLOW", "KISS", "OPEN", "SPREAD", "BROW")


@register("toronto_neuroface", "regression", tasks=TORONTO_TASKS)
def toronto_neuroface(root: Path, split_csv: str = "Toronto_NeuroFace_split_.csv", labels_csv: str = "labels.csv",
                      subject_regex: str = r"^([A-Za-z]*\d+)", task_regex: str = r"(BLOW|KISS|OPEN|SPREAD|BROW|BIGSMILE)",
                      group_column: str = "group", score_column: str = "sum") -> pd.DataFrame:
    """Augmented Toronto NeuroFace: one sample per task repetition; target = the raters' mean
    overall score (``sum`` column of the labels CSV), or one subscore column named by ``score_column``
    (TraMP-Former's loader reads symmetry, ROM, speed, variability, fatigue beside sum: Table IV).
    BIGSMILE is excluded, as in TraMP-Former."""
    split = read_csv(root / split_csv, "toronto_neuroface")
    labels = read_csv(root / labels_csv, "toronto_neuroface")
    split.columns = [c.strip() for c in split.columns]
    labels.columns = [c.strip() for c in labels.columns]
    needs = ((["File Name", "repID", "start", "end"], split, split_csv), (["File Name", score_column], labels, labels_csv))
    for need, df, file in needs:
        missing = [c for c in need if c not in df]
        if missing:
            raise FexaError(f"toronto_neuroface: {file} lacks columns {missing} (it has {list(df.columns)})")
    labels["File Name"] = labels["File Name"].astype(str).str.strip()
    split["File Name"] = split["File Name"].astype(str).str.strip()
    merged = split.merge(labels, on="File Name", how="left")
    rows = []
    for r in merged.to_dict("records"):
        name = r["File Name"]
        task = re.search(task_regex, name, re.IGNORECASE)
        subject = re.search(subject_regex, name)
        if not task or not subject:
            raise FexaError(f"toronto_neuroface: cannot read subject/task from file name {name!r}")
        if task[1].upper() == "BIGSMILE":
            continue
        rows.append({"id": f"{Path(name).stem}_rep{r['repID']}", "path": str(root / name), "subject": subject[1],
                     "target": r[score_column], "task": task[1].upper(), "start": int(r["start"]), "end": int(r["end"]),
                     "group": str(r.get(group_column, ""))})
    return make_table(rows, "toronto_neuroface")


@register("unbc", "regression")
def unbc(root: Path, images: str = "Images", vas: str = "Sequence_Labels/VAS") -> pd.DataFrame:
    """UNBC-McMaster shoulder pain: one sample per sequence, target = VAS (0-10)."""
    rows = []
    for label in sorted((root / vas).glob("*/*.txt")):
        subject, seq = label.parent.name, label.stem
        try:
            value = float(label.read_text().split()[0])
        except (ValueError, IndexError):
            raise FexaError(f"unbc: malformed VAS file {label}") from None
        rows.append({"id": seq, "path": str(root / images / subject / seq), "subject": subject, "target": value})
    return make_table(rows, "unbc")


DFEW_CLASSES = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")


@register("dfew", "classification", DFEW_CLASSES, neutral=2)
def dfew(root: Path, annotations: dict[str, str] | None = None) -> pd.DataFrame:
    """DFEW with Former-DFER annotation files, e.g. {"train": "set_1_train.txt", "test": "set_1_test.txt"}.
    DFEW has no subject ids: each clip is its own subject."""
    annotations = annotations or {"train": "set_1_train.txt", "test": "set_1_test.txt"}
    rows = []
    for fold, file in annotations.items():
        path = root / file
        if not path.is_file():
            raise FexaError(f"dfew: annotation file not found: {path}")
        for n, line in enumerate(path.read_text().splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
                raise FexaError(f"dfew: {path}:{n}: expected '<frames_dir> <num_frames> <label>', got {line!r}")
            clip = Path(parts[0]).name
            rows.append({"id": f"{fold}_{clip}", "path": str(root / clip), "subject": clip, "target": int(parts[2]),
                         "fold": fold, "frames": int(parts[1])})
    return make_table(rows, "dfew")


AFEW_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


@register("afew", "classification", AFEW_CLASSES, neutral=4)
def afew(root: Path, splits: tuple[str, ...] = ("Train", "Val")) -> pd.DataFrame:
    rows = []
    for split in splits:
        for k, emotion in enumerate(AFEW_CLASSES):
            for f in sorted((root / split / emotion).glob("*")):
                if f.is_file() or f.is_dir():
                    rows.append({"id": f"{split}_{f.stem}", "path": str(f), "subject": f.stem, "target": k,
                                 "fold": "train" if split.lower() == "train" else "test"})  # Val: the papers' test set
    return make_table(rows, "afew")


RAFDB_CLASSES = ("Surprise", "Fear", "Disgust", "Happy", "Sad", "Anger", "Neutral")


@register("rafdb", "classification", RAFDB_CLASSES, neutral=6, face_crops=True)
def rafdb(root: Path, labels: str = "EmoLabel/list_patition_label.txt", images: str = "Image/aligned") -> pd.DataFrame:
    path = root / labels
    if not path.is_file():
        raise FexaError(f"rafdb: label file not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= 7:
            raise FexaError(f"rafdb: {path}:{n}: expected '<image> <label 1-7>', got {line!r}")
        stem = Path(parts[0]).stem
        rows.append({"id": stem, "path": str(root / images / f"{stem}_aligned.jpg"), "subject": stem,
                     "target": int(parts[1]) - 1, "fold": "train" if stem.startswith("train") else "test"})
    return make_table(rows, "rafdb")


FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
_FERPLUS_DIRS = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
_FERPLUS_FOLDS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}  # the papers' test set: PrivateTest


@register("ferplus", "classification", FERPLUS_CLASSES, neutral=0, face_crops=True)
def ferplus(root: Path, labels: str = "fer2013new.csv") -> pd.DataFrame:
    """FERPlus majority labels; images whose top vote is 'unknown'/'NF' or tied are left out."""
    df = read_csv(root / labels, "ferplus")
    missing = [c for c in ("Usage", "Image name", *FERPLUS_CLASSES, "unknown", "NF") if c not in df]
    if missing:
        raise FexaError(f"ferplus: {labels} lacks columns {missing}")
    df = df.dropna(subset=["Image name"])
    votes = df[[*FERPLUS_CLASSES, "unknown", "NF"]].to_numpy(float)
    top = votes.argmax(axis=1)
    unique = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) == 1
    keep = unique & (top < len(FERPLUS_CLASSES))
    rows = [{"id": f"{u}_{Path(n).stem}", "path": str(root / _FERPLUS_DIRS.get(u, u) / n), "subject": f"{u}_{Path(n).stem}",
             "target": int(t), "fold": _FERPLUS_FOLDS.get(u, u)}
            for u, n, t in zip(df["Usage"][keep], df["Image name"][keep], top[keep])]
    return make_table(rows, "ferplus")


AFFECTNET7_CLASSES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger")


@register("affectnet7", "classification", AFFECTNET7_CLASSES, neutral=0, face_crops=True)
def affectnet7(root: Path, lists: str = "Manually_Annotated_file_lists",
               images: str = "Manually_Annotated_Images") -> pd.DataFrame:
    rows = []
    for fold, csv in (("train", "training.csv"), ("test", "validation.csv")):  # its validation set is the papers' test set
        df = read_csv(root / lists / csv, "affectnet7")
        if not {"subDirectory_filePath", "expression"} <= set(df.columns):
            raise FexaError(f"affectnet7: {csv} lacks subDirectory_filePath/expression columns")
        df = df[df["expression"].between(0, 6)]
        rows += [{"id": f"{fold}_{p}", "path": str(root / images / p), "subject": p, "target": int(e), "fold": fold}
                 for p, e in zip(df["subDirectory_filePath"], df["expression"])]
    return make_table(rows, "affectnet7")


AFFWILD2_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")


def read_affwild2_labels(path: str | Path) -> np.ndarray:
    """Per-frame labels of one Aff-Wild2 annotation file (header skipped); -1 marks frames to skip."""
    lines = Path(path).read_text().splitlines()[1:]
    try:
        labels = np.array([int(x.strip()) for x in lines if x.strip()], dtype=np.int64)
    except ValueError:
        raise FexaError(f"affwild2: malformed label file {path}") from None
    if ((labels < -1) | (labels >= len(AFFWILD2_CLASSES))).any():
        raise FexaError(f"affwild2: labels outside -1..7 in {path}")
    return labels


@register("affwild2", "classification", AFFWILD2_CLASSES, neutral=0)
def affwild2(root: Path, labels: dict[str, str] | None = None, frames: str = "cropped_aligned",
             per_frame: bool = False, every: int = 1) -> pd.DataFrame:
    """One row per video (``labels_file`` holds the per-frame labels, ``target`` the most common one),
    or with ``per_frame`` one row per labelled frame whose image exists (every ``every``-th), its
    ``start`` being the frame's position in the video's sorted frame folder (frames without a face
    are missing from Aff-Wild2's cropped folders, so positions and frame numbers differ). The
    validation set is the test set (``fold`` "test"): CFC-SP and the ABAW papers report on it, the
    challenge's test labels not being public."""
    labels = labels or {"train": "Train_Set", "test": "Validation_Set"}
    rows = []
    for fold, folder in labels.items():
        for f in sorted((root / folder).glob("*.txt")):
            lab = read_affwild2_labels(f)
            valid = lab[lab >= 0]
            if not len(valid):
                continue
            video = root / frames / f.stem
            base = {"path": str(video), "subject": f.stem.split("_")[0], "fold": fold}
            if not per_frame:
                rows.append({**base, "id": f.stem, "target": int(np.bincount(valid).argmax()), "labels_file": str(f)})
                continue
            position = {p.stem: i for i, p in enumerate(list_frame_files(video))} if video.is_dir() else {}
            for number in range(1, len(lab) + 1, every):
                k = position.get(f"{number:05d}")
                if lab[number - 1] >= 0 and k is not None:
                    rows.append({**base, "id": f"{f.stem}_{number:05d}", "target": int(lab[number - 1]),
                                 "start": k, "end": k + 1})
    return make_table(rows, "affwild2")


@register("manifest", "regression")
def manifest(root: Path, file: str = "manifest.csv") -> pd.DataFrame:
    """A user's CSV: path (relative to the CSV's folder or absolute), subject, and label (classes)
    or score (regression); optional id, task, start, end, fold."""
    csv = root / file if root.is_dir() else root
    df = read_csv(csv, "manifest")
    value = "label" if "label" in df else "score" if "score" in df else None
    missing = [c for c in ("path", "subject") if c not in df] + ([] if value else ["label or score"])
    if missing:
        raise FexaError(f"manifest: {csv} lacks columns {missing}")
    base = csv.parent
    df = df.assign(path=[str(p if Path(p).is_absolute() else base / p) for p in df["path"]], target=df[value])
    if "id" not in df:
        df["id"] = [f"{Path(p).stem}_{i}" for i, p in enumerate(df["path"])]
    return make_table(df.drop(columns=[value]), "manifest")


# -- the small real sets in ../shared/data --------------------------------------------------------------
JAFFE_CLASSES = ("neutral", "happy", "sad", "surprise", "angry", "disgust", "fear")
_JAFFE_CODES = {"NE": 0, "HA": 1, "SA": 2, "SU": 3, "AN": 4, "DI": 5, "FE": 6}


@register("jaffe", "classification", JAFFE_CLASSES, neutral=0)
def jaffe(root: Path) -> pd.DataFrame:
    """JAFFE: 256 px grayscale posed expressions; the raters' mean scores are kept (r60_*, r30_*)."""
    csv = root / "labels.csv"
    df = read_csv(csv, "jaffe")
    require_columns(df, ["file", "subject_id", "expression_code"], csv, "jaffe")
    df = df.assign(id=[Path(f).stem for f in df["file"]], path=[str(root / f) for f in df["file"]],
                   subject=df["subject_id"], target=class_indices(df["expression_code"], JAFFE_CLASSES, csv, "jaffe",
                                                                  _JAFFE_CODES))
    return make_table(df.drop(columns=["file", "subject_id"]), "jaffe")


CKPLUS_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


@register("ckplus48", "classification", CKPLUS_CLASSES, face_crops=True)
def ckplus48(root: Path) -> pd.DataFrame:
    """CK+48: 48 px grayscale crops, the last 3 (apex) frames of each labelled sequence."""
    csv = root / "labels.csv"
    df = read_csv(csv, "ckplus48", dtype={"sequence_id": str})
    require_columns(df, ["file", "subject_id", "expression"], csv, "ckplus48")
    df = df.assign(id=[Path(f).stem for f in df["file"]], path=[str(root / f) for f in df["file"]],
                   subject=df["subject_id"], target=class_indices(df["expression"], CKPLUS_CLASSES, csv, "ckplus48"))
    return make_table(df.drop(columns=["file", "subject_id"]), "ckplus48")


YALE_CLASSES = ("normal", "happy", "sad", "sleepy", "surprised", "wink")


@register("yale", "classification", YALE_CLASSES, neutral=0)
def yale(root: Path, expressions_only: bool = True) -> pd.DataFrame:
    csv = root / "labels.csv"
    df = read_csv(csv, "yale")
    require_columns(df, ["file", "subject_id", "condition"], csv, "yale")
    expression = df["condition"].str.lower().isin(YALE_CLASSES)  # lighting and glasses are not expressions
    if expressions_only:
        df, expression = df[expression], expression[expression]
    target = pd.Series(-1, index=df.index)
    target[expression] = class_indices(df.loc[expression, "condition"], YALE_CLASSES, csv, "yale")
    df = df.assign(id=[Path(f).stem for f in df["file"]], path=[str(root / f) for f in df["file"]],
                   subject=df["subject_id"], target=target)
    return make_table(df.drop(columns=["file", "subject_id"]), "yale")


FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")


@register("fer2013", "classification", FER2013_CLASSES, neutral=4, face_crops=True)
def fer2013(root: Path) -> pd.DataFrame:
    """FER2013 PrivateTest images (no subject ids: each image is its own subject)."""
    csv = root / "labels.csv"
    df = read_csv(csv, "fer2013")
    require_columns(df, ["file", "expression"], csv, "fer2013")
    df = df.assign(id=[Path(f).stem for f in df["file"]], path=[str(root / f) for f in df["file"]],
                   subject=[Path(f).stem for f in df["file"]],
                   target=class_indices(df["expression"], FER2013_CLASSES, csv, "fer2013"))
    return make_table(df.drop(columns=["file"]), "fer2013")


