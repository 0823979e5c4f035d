"""Sample tables: every dataset adapter returns one pandas DataFrame with these columns.

========= ======== =============================================================================
column    type     meaning
========= ======== =============================================================================
id        str      unique sample id
path      str      the media: a video file, a folder of frames, or an image
subject   str      who is filmed (splits are by subject)
target    float    class index (classification) or score (regression)
task      str      action / expression task ('' when the dataset has one task)
start     int      first frame of the sample in ``path`` (repetition sub-clips; 0 otherwise)
end       int      one past its last frame (-1: to the end)
fold      str      the dataset's own split (e.g. 'train'/'test', 'fold1'), '' when it has none
========= ======== =============================================================================

Adapters add any further columns they know (e.g. JAFFE's ratings, Aff-Wild2's per-frame label file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fexa.errors import FexaError

COLUMNS = ["id", "path", "subject", "target", "task", "start", "end", "fold"]


def make_table(rows: list[dict] | pd.DataFrame, name: str) -> pd.DataFrame:
    """Fill defaults, order the columns and validate a sample table."""
    df = pd.DataFrame(rows).copy()
    if df.empty:
        raise FexaError(f"{name}: no samples found")
    for col, default in (("task", ""), ("start", 0), ("end", -1), ("fold", "")):
        if col not in df:
            df[col] = default
    missing = [c for c in COLUMNS if c not in df]
    if missing:
        raise FexaError(f"{name}: samples lack columns {missing}")
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    for col in ("id", "path", "subject"):
        if df[col].isna().any():
            bad = df.index[df[col].isna()].tolist()[:5]
            raise FexaError(f"{name}: rows {bad} have no {col}")
    for col in ("id", "path", "subject", "task", "fold"):
        df[col] = df[col].astype(str)
    df["start"], df["end"] = df["start"].astype(int), df["end"].astype(int)
    try:
        df["target"] = df["target"].astype(float)
    except (TypeError, ValueError):
        raise FexaError(f"{name}: targets must be numbers") from None
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise FexaError(f"{name}: duplicate sample ids {dup[:5]}")
    if df["target"].isna().any():
        bad = df.loc[df["target"].isna(), "id"].tolist()
        raise FexaError(f"{name}: samples without a target {bad[:5]}")
    return df.reset_index(drop=True)


def read_csv(path: str | Path, name: str, **kw) -> pd.DataFrame:
    """pandas.read_csv with a clear error for a missing or malformed file. Only empty cells are
    missing values: codes such as "NA" or "None" (JAFFE has a subject "NA") stay text."""
    kw.setdefault("keep_default_na", False)
    kw.setdefault("na_values", [""])
    path = Path(path)
    if not path.is_file():
        raise FexaError(f"{name}: annotation file not found: {path}")
    try:
        return pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise FexaError(f"{name}: cannot parse {path}: {e}") from None
