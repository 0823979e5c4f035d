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
        df[col] = df[col].fillna(default) if col in df else default  # empty cells: the default (whole video)
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
        df = pd.read_csv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise FexaError(f"{name}: cannot parse {path}: {e}") from None
    if df.shape[1] == 1 and kw.get("sep", ",") == ",":
        first = path.read_text(errors="replace").splitlines()[0] if path.stat().st_size else ""
        sep = next((c for c in (";", "\t", "|") if c in first), None)
        if sep:
            raise FexaError(f"{name}: {path} line 1 is separated by {sep!r}, not commas: save it as a "
                            "comma-separated CSV")
    return df


def require_columns(df: pd.DataFrame, columns: list[str], path: str | Path, name: str) -> None:
    """An error naming the file, the missing columns and the ones it has."""
    missing = [c for c in columns if c not in df]
    if missing:
        raise FexaError(f"{name}: {path} lacks column(s) {missing}; it has {list(map(str, df.columns))}")


def class_indices(values: pd.Series, classes: tuple[str, ...], path: str | Path, name: str,
                  codes: dict[str, int] | None = None) -> pd.Series:
    """Class names (or ``codes``) -> indices, matched case-insensitively ("Happy" is "happy"); a
    value matching no class is an error naming the file, its line and the known classes."""
    lookup = {k.lower(): v for k, v in (codes or {c: i for i, c in enumerate(classes)}).items()}
    if len(lookup) != len(codes or classes):
        raise ValueError(f"{name}: class names differ only in case: {classes}")
    index = values.astype(str).str.strip().str.lower().map(lookup)
    bad = index.isna()
    if bad.any():
        lines = [int(i) + 2 for i in values.index[bad][:3]]  # + header line, 1-based
        raise FexaError(f"{name}: {path} line {lines[0]}: unknown class {values[bad].iloc[0]!r}"
                        f" ({int(bad.sum())} such rows, lines {lines}...); known: {', '.join(lookup)}")
    return index.astype(int)
