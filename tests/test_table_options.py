"""The options the papers' ablation rows need (tables/*.yaml): each checked by hand."""

import numpy as np
import pandas as pd
import pytest
import torch

from fexa.errors import FexaError


@pytest.mark.parametrize("attention", ["spatial", "temporal", "lstm"])
def test_stt_one_attention_variants_train_every_parameter(attention):
    from fexa.models.stt import STT, STTConfig

    m = STT(STTConfig(attention=attention, dim=32, depth=1, num_heads=2, num_frames=4))
    m(torch.randn(2, 4, 3, 112, 112)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())  # DDP needs every parameter used
    names = {n.split(".")[-1] for n, _ in m.named_modules()}
    assert ("temporal" in names) == (attention == "temporal") and ("spatial" in names) == (attention == "spatial")
    assert hasattr(m, "lstm") == (attention == "lstm")


def test_pcda_without_either_attention_ignores_the_landmarks():
    from fexa.models.pcda import PCDA, PCDAConfig

    # two blocks (the paper's): in one, the class token is updated by the landmark class token alone
    small = dict(ir_units=(1, 1, 1), ir_channels=(8, 16, 32), dim=32, num_heads=2, depth=2, landmark_channels=8)
    img, a, b = torch.randn(2, 3, 112, 112), torch.rand(2, 68, 2) * 112, torch.rand(2, 68, 2) * 112
    for dot, cross, uses in ((False, False, False), (True, False, True), (False, True, True)):
        m = PCDA(PCDAConfig(dot_attention=dot, cross_attention=cross, **small)).eval()
        with torch.no_grad():
            same = torch.equal(m(img, a)[0], m(img, b)[0])
        assert same != uses, (dot, cross)
        m.train()
        m(img, a)[0].sum().backward()
        assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


def test_scores_as_classes_counts_levels_over_every_split_and_refuses_fractions():
    from fexa.train.data import score_levels

    part = lambda *y: pd.DataFrame({"target": list(y)})  # noqa: E731
    data = {"train": part(0, 1, 2), "val": part(), "test": part(1, 3), "unusable_test": part()}
    assert score_levels(data) == 4  # level 3 is only in the test set: it still has its class
    data["train"] = part(0, 1.5)
    with pytest.raises(FexaError, match="integer scores"):
        score_levels(data)


def test_subscore_levels_give_normal_against_impaired_rates_counted_by_hand():
    from fexa.train.results import metric_functions

    # levels 1-4 with 1 normal (TraMP-Former Table IV); classes 0..4, one-hot predictions, one sample without a face
    y = np.array([1, 1, 1, 2, 3, 4, 4, 2])
    pred_class = [1, 2, 1, 2, 4, 1, 4, -1]
    p = np.array([np.eye(5)[c] if c >= 0 else np.full(5, np.nan) for c in pred_class])
    m = metric_functions("classification", normal_level=1)
    # normal samples 0-2: predicted normal, impaired, normal -> specificity 2/3
    # impaired samples 3-7: impaired, impaired, normal, impaired, no prediction (wrong) -> sensitivity 3/5
    assert m["specificity"](y, p) == pytest.approx(2 / 3)
    assert m["sensitivity"](y, p) == pytest.approx(3 / 5)
    assert m["binary_accuracy"](y, p) == pytest.approx(5 / 8)
    assert m["accuracy"](y, p) == pytest.approx(4 / 8)  # exact levels: samples 0, 2, 3, 6
    assert "specificity" not in metric_functions("classification")  # only for score levels


def test_toronto_reads_a_subscore_column_and_names_the_columns_it_has(tmp_path):
    from fexa.data.adapters import toronto_neuroface

    (tmp_path / "split.csv").write_text("File Name,repID,start,end\nA001_BLOW.mp4,1,0,10\nS002_OPEN.mp4,1,0,9\n")
    (tmp_path / "labels.csv").write_text("File Name,sum,ROM,speed\nA001_BLOW.mp4,2.5,3,1\nS002_OPEN.mp4,1.0,1,2\n")
    t = toronto_neuroface(tmp_path, "split.csv", "labels.csv", score_column="ROM")
    assert list(t["target"]) == [3, 1] and list(t["subject"]) == ["A001", "S002"]
    assert list(toronto_neuroface(tmp_path, "split.csv", "labels.csv")["target"]) == [2.5, 1.0]
    with pytest.raises(FexaError, match=r"lacks columns \['symmetry'\].*'ROM', 'speed'"):
        toronto_neuroface(tmp_path, "split.csv", "labels.csv", score_column="symmetry")


def test_published_folds_are_read_as_written(tmp_path):
    from fexa.data.splits import file_folds, read_fold_file

    py = tmp_path / "folds.py"
    py.write_text("import os\nclass D:\n    def f(self):\n        cv = {'1': ['A1', 'S7 '], '2': ['B2'], '3': ['C3']}\n")
    folds = read_fold_file(py)
    assert folds == {0: ["A1", "S7 "], 1: ["B2"], 2: ["C3"]}
    table = pd.DataFrame({"subject": ["A1", "S7", "B2", "C3", "A1"]})
    fold, unlisted, unmatched = file_folds(table, folds)
    assert list(fold) == [0, -1, 1, 2, 0] and unlisted == ["S7"] and unmatched == ["S7 "]  # the authors' trailing space
    csv = tmp_path / "folds.csv"
    csv.write_text("subject,fold\nA1,1\nB2,2\n")
    assert read_fold_file(csv) == {0: ["A1"], 1: ["B2"]}


def test_heatmap_kernel_one_without_blur_marks_the_landmark_pixels_alone():
    from fexa.represent.heatmap import HeatmapConfig, landmark_heatmaps

    pts = np.array([[[3.0, 5.0], [6.0, 1.0]]])  # one frame, two landmarks (x, y)
    maps = landmark_heatmaps(pts, HeatmapConfig(kernel=1, blur=0, src_size=8, out_size=8, mode="gray"))[0]
    expected = np.zeros((8, 8))
    expected[5, 3] = expected[1, 6] = 1.0
    np.testing.assert_allclose(maps, expected, atol=1e-6)


def test_zero_clip_padding_is_refused_where_it_is_not_implemented():
    from fexa.train.config import load_config

    with pytest.raises(FexaError, match="clip_padding"):
        load_config(None, ["data.root=/x", "model.name=qafe_net", "data.samples.clip_padding=zero"])
    load_config(None, ["data.root=/x", "model.name=tramp_former", "data.samples.clip_padding=zero"])
