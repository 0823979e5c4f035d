"""A classification run's results hold each class's recall and F1 under the names the papers' tables
list (PCDA Table 3's recall_neutral / f1_neutral on RAF-DB), equal to its saved predictions."""

import json

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, TINY_PCDA
from fexa import metrics as M


def test_a_rafdb_run_reports_each_class_recall_and_f1_from_its_predictions(tmp_path, monkeypatch):
    from fexa.data.layouts import make_layouts
    from fexa.train.config import load_config
    from fexa.train.reproduce import load_tables
    from fexa.train.trainer import train

    monkeypatch.chdir(REPO)
    layout = make_layouts(tmp_path / "layouts")["rafdb"]
    tiny = [*TINY_PCDA, f"data.root={layout}", f"data.cache={tmp_path / 'cache'}",
            f"out={tmp_path / 'runs'}", "name=rafdb", "eval.protocol=paper",
            "model.options.img_size=64", "data.samples.image_size=64"]
    cfg = load_config(REPO / "configs/pcda/rafdb.yaml", tiny)
    paper = train(cfg, progress=False)["paper"]
    for m in load_tables("pcda-neaa")["3"].metrics + load_tables("pcda-neaa")["6"].metrics:
        assert m in paper, m
    run = cfg.run_dir
    classes = json.loads((run / "model.json").read_text())["classes"]  # RAF-DB's order
    pred = pd.read_csv(run / "predictions" / f"epoch_{paper['epoch']:03d}.csv")
    y, p = pred["target"].to_numpy(int), pred["prediction"].to_numpy(int)
    recall, f1 = M.class_recall(y, p, len(classes)), M.class_f1(y, p, len(classes))
    for k, name in enumerate(classes):
        key = name.lower()
        assert paper[f"recall_{key}"] == pytest.approx(recall[k], nan_ok=True)
        assert paper[f"f1_{key}"] == pytest.approx(f1[k], nan_ok=True)
    assert paper["uar"] == pytest.approx(np.nanmean(recall))
