"""CFC-SP evaluated as the paper reports it: per-frame 8-class macro-F1 on Aff-Wild2's validation
set (fexa's ``affwild2`` test split) of the whole coarse-to-fine cascade with Smooth Predicting,
of each coarse member cascaded with the negative net, and of each net on its own task (Tables 1-4).

Every net's raw per-frame logits are computed once per video; Smooth Predicting (on logits, over
each video's usable frames) and the cascade are then applied for every window asked for. The
frame list is the dataset's whole test list: a labelled frame whose face was not usable has no
prediction and counts as wrong (``frames_without_prediction`` says how many).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from fexa.progress import tqdm

from fexa import metrics as M
from fexa.analysis.predict import TrainedModel
from fexa.errors import FexaError
from fexa.io.atomic import write_text
from fexa.models.cfc_sp import TO_COARSE, TO_NEGATIVE, cascade, smooth_predicting

COLUMNS = ("nets", "window", "task", "macro_f1", "frames", "frames_without_prediction")
TASK_CLASSES = {"coarse": 5, "negative": 4, "eight": 8}


def _role(model: TrainedModel) -> str:
    """'coarse', 'negative' or 'eight' (a net trained on Aff-Wild2's 8 classes)."""
    if model.cfc_role:
        return model.cfc_role
    if model.cfg.data.dataset == "affwild2" and not model.cfg.data.target_map and model.per_frame:
        return "eight"
    raise FexaError(f"{model.name}: not a CFC-SP net (a per-frame Aff-Wild2 run with the coarse or negative "
                    f"target_map, or none for 8 classes)")


def test_frames(model: TrainedModel) -> pd.DataFrame:
    """The Aff-Wild2 test list (8-class targets) of a member's dataset: one row per labelled frame
    with its video's ``entry`` (NaN where the video has no usable entry) and frame ``start``."""
    from fexa.train.data import prepare_data, whole_test_list

    cfg = dataclasses.replace(model.cfg, data=dataclasses.replace(model.cfg.data, target_map=[], limit=0))
    return whole_test_list(prepare_data(cfg, progress=False))


def evaluate_cascade(coarse: Sequence[str | Path] = (), negative: Sequence[str | Path] = (),
                     eight: Sequence[str | Path] = (), windows: Sequence[int] = (256,),
                     progress: bool = True) -> pd.DataFrame:
    """Macro-F1 (in [0, 1]) per (nets, window, task) on the test frames: ``task`` 8 for the cascade
    (every coarse member with the negative net, each coarse member alone with it, and each 8-class
    net), 5 for each coarse member's coarse task, 4 for each negative net on the negative frames.
    Several negative nets are one ensemble (probabilities averaged, as ``fexa analyze`` does)."""
    given = [(r, "coarse") for r in coarse] + [(r, "negative") for r in negative] + [(r, "eight") for r in eight]
    if not given:
        raise FexaError("give the CFC-SP nets' runs: --coarse, --negative and/or --eight")
    if coarse and not negative:
        raise FexaError("coarse nets need the negative net (--negative) to give Aff-Wild2's 8 classes")
    models = [TrainedModel(r) for r, _ in given]
    roles = [role for _, role in given]
    for m, role in zip(models, roles):
        if _role(m) != role:
            raise FexaError(f"{m.name}: given as a {role} net but trained as a {_role(m)} net (data.target_map)")
    members = [m.name for m, r in zip(models, roles) if r == "coarse"]
    neg = " + ".join(m.name for m, r in zip(models, roles) if r == "negative")
    frames = test_frames(models[0])
    y = frames["target"].to_numpy(int)
    pred: dict[tuple[str, int, int], np.ndarray] = {}  # (nets, window, task) -> per-frame prediction

    def put(key: tuple[str, int, int], rows: np.ndarray, classes: torch.Tensor, usable: torch.Tensor) -> None:
        """Store a video's predicted classes, M.NO_PREDICTION where the frame had no usable face."""
        pred.setdefault(key, np.full(len(frames), M.NO_PREDICTION))[rows] = np.where(usable.numpy(), classes.numpy(),
                                                                                     M.NO_PREDICTION)

    videos = frames[frames["entry"].notna()].groupby("entry", sort=False).indices
    for entry, rows in tqdm(videos.items(), desc="videos", unit="video", disable=not progress):
        starts = frames["start"].to_numpy(int)[rows]
        outputs = [m.frame_outputs(entry) for m in models]
        usable = outputs[0][1][starts]
        for w in windows:
            probs = {"coarse": [], "negative": [], "eight": []}
            for m, role, (logits, valid) in zip(models, roles, outputs):
                p = smooth_predicting(logits, w, valid).softmax(-1)[starts]
                probs[role].append(p)
                put((m.name, w, TASK_CLASSES[role]), rows, p.argmax(1), usable)
            if not members:
                continue
            negative_p = torch.stack(probs["negative"]).mean(0)
            for name, p in zip(members, probs["coarse"]):
                put((f"{name} + {neg}", w, 8), rows, cascade(p, negative_p), usable)
            if len(members) > 1:
                ensemble = torch.stack(probs["coarse"]).mean(0)  # the paper sums them: the same argmax
                put((" + ".join([*members, neg]), w, 8), rows, cascade(ensemble, negative_p), usable)
    missing_entry = frames["entry"].isna().to_numpy()
    out = []
    for (nets, w, task), p in pred.items():
        p = np.where(missing_entry, M.NO_PREDICTION, p)
        target = {8: y, 5: np.asarray(TO_COARSE)[y], 4: np.asarray(TO_NEGATIVE)[y]}[task]
        keep = target >= 0  # the negative net is scored on the negative frames only
        out.append({"nets": nets, "window": w, "task": task, "macro_f1": M.macro_f1(target[keep], p[keep], task),
                    "frames": int(keep.sum()), "frames_without_prediction": int((p[keep] == M.NO_PREDICTION).sum())})
    return pd.DataFrame(out, columns=list(COLUMNS)).sort_values(["task", "nets", "window"], ascending=[False, True, True],
                                                               ignore_index=True)


def write_cascade_results(table: pd.DataFrame, out: str | Path) -> None:
    """``cascade.csv`` and ``cascade.md`` (macro-F1 in %) in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "cascade.csv", table.to_csv(index=False))
    write_text(out / "cascade.md", markdown(table))


def markdown(table: pd.DataFrame) -> str:
    lines = ["| nets | task | window | macro-F1 (%) | frames | without prediction |", "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.nets} | {r.task} classes | {r.window} | {100 * r.macro_f1:.2f} | {r.frames} | "
                     f"{r.frames_without_prediction} |")
    return "\n".join(lines) + "\n"
