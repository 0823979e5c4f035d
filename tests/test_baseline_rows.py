"""The papers' comparison rows that swap in another model (QAFE-Net's and TraMP-Former's Former-DFER
baseline, QAFE-Net on Toronto NeuroFace): each row's published files load strictly into the model it builds."""

import pytest
import torch

from conftest import REPO
from fexa.models import create_model
from fexa.models.weights import PUBLISHED
from fexa.train.reproduce import load_tables
from test_weights import write_published

ROWS = [("qafe-net", "2", "Former-DFER (regression head)"), ("qafe-net", "3", "Former-DFER (80 frames)"),
        ("tramp-former", "III", "Former-DFER"), ("tramp-former", "III", "QAFE-Net")]


@pytest.mark.parametrize("paper, table, row", ROWS)
def test_a_baseline_row_starts_from_its_published_files(paper, table, row, tmp_path, monkeypatch):
    from fexa.train.build import build_model
    from fexa.train.config import load_config

    t = load_tables(paper)[table]
    r = next(x for x in t.rows if x.name == row)
    column = t.columns[0]
    cfg = load_config(REPO / column["config"], [*r.sets, *column.get("set", [])])
    files = {name: write_published(PUBLISHED[name], tmp_path, seed=i)
             for i, name in enumerate(cfg.model.pretrained.values())}
    monkeypatch.setenv("FEXA_WEIGHTS", str(tmp_path))
    report: list[str] = []
    model = build_model(cfg, 0, report)
    assert len(report) == len(files)
    rgb = files[cfg.model.pretrained["rgb"]]  # the DFEW Former-DFER file, into the rgb submodule
    torch.testing.assert_close(model.rgb.t_former.temporal_transformer[2].mlp.fc2.bias,
                               rgb["t_former.spatial_transformer.layers.2.1.fn.fn.net.3.bias"])


def test_the_former_dfer_regressor_averages_its_head_over_subclips():
    m = create_model("former_dfer_regressor", img_size=112).eval()
    clip = torch.randn(2, 32, 3, 112, 112)
    with torch.no_grad():
        feats = m.rgb.encode(clip)  # [2, 2 subclips, 512]
        torch.testing.assert_close(m(clip), (m.head(feats[:, 0]) + m.head(feats[:, 1]))[:, 0] / 2)
    with pytest.raises(ValueError, match="num_classes must be 0"):
        create_model("former_dfer_regressor", num_classes=7)
