"""``fexa reproduce``: every table row resolves to valid runs, docs/reproduce.md is current, and a
table runs end to end on a synthetic layout with its numbers collected beside the paper's."""

import json

import numpy as np
import pytest

from conftest import REPO
from fexa.train.config import load_config
from fexa.train.reproduce import docs_markdown, load_tables, papers, run_tables

ROWS = [(p, t.id, r.name) for p in papers() for t in load_tables(p).values() for r in t.rows if not r.unsupported]


def test_every_paper_has_its_tables():
    assert papers() == ["cfc-sp", "pcda-neaa", "qafe-net", "stt-dfer", "tramp-former"]
    assert {"1", "2", "3", "4"} <= set(load_tables("cfc-sp"))
    assert {"1", "2", "fig6", "3", "4"} <= set(load_tables("stt-dfer"))
    assert {"2", "4", "5", "6", "7", "8", "9", "10"} <= set(load_tables("qafe-net"))
    assert {"II", "III", "V", "VI", "VII", "VIII", "IX"} <= set(load_tables("tramp-former"))


@pytest.mark.parametrize("paper,table,row", ROWS, ids=lambda x: str(x))
def test_every_row_resolves_to_valid_configs(paper, table, row):
    from fexa.train.reproduce import cascade_command

    tables = load_tables(paper)
    t = tables[table]
    r = next(x for x in t.rows if x.name == row)
    if r.cascade:
        cells = [c for cs in cascade_command(tables, t, r)[0].values() for c in cs]
    else:
        cells = [t.cell(r, c) for c in t.columns]
        for m in t.metrics:
            t.paper_values(r, m)  # as many numbers as columns
    for cell in cells:  # validation checks every key and the model's options
        load_config(REPO / cell.config, [*cell.sets, "data.root=/x", "model.pretrained=none"])


def test_docs_reproduce_is_current():
    assert (REPO / "docs" / "reproduce.md").read_text() == docs_markdown(), "run: fexa reproduce --docs > docs/reproduce.md"


def test_a_table_runs_and_collects_its_numbers_beside_the_papers(tmp_path, monkeypatch):
    from fexa.data.layouts import make_layouts

    monkeypatch.chdir(REPO)
    layout = make_layouts(tmp_path / "layouts")["rafdb"]
    tiny = ["model.options.ir_units=[1, 1, 1]", "model.options.ir_channels=[8, 16, 32]", "model.options.dim=32",
            "model.options.num_heads=2", "model.options.depth=1", "model.options.landmark_channels=8",
            "model.options.landmark_trunk=gaussian", "model.pretrained=none", "train.epochs=1", "train.batch_size=2",
            "eval.bootstrap=0", "data.val_fraction=0", f"data.root={layout}", f"data.cache={tmp_path / 'cache'}"]
    frame = run_tables("pcda-neaa", ["4"], tiny, tmp_path / "runs", progress=False)
    assert list(frame["row"]) == ["Conv", "Sum+Repeat", "Abs+Sum+Repeat", "Max+Repeat"]
    assert list(frame["paper_reported"]) == [91.46, 91.72, 91.59, 92.31]
    for line in frame.itertuples():  # each number is its run's test accuracy, in %
        res = json.loads((tmp_path / "runs" / "pcda-neaa" / line.run / "results.json").read_text())
        assert line.fexa_paper == pytest.approx(100 * res["paper"]["accuracy"])
    assert (tmp_path / "runs" / "pcda-neaa" / "table4.md").read_text().count("/ 92.31") == 1
    first = (tmp_path / "runs" / "pcda-neaa" / frame["run"].iloc[0] / "results.json").stat().st_mtime
    again = run_tables("pcda-neaa", ["4"], tiny, tmp_path / "runs", progress=False)  # finished runs are reused
    assert np.allclose(again["fexa_paper"], frame["fexa_paper"])
    assert (tmp_path / "runs" / "pcda-neaa" / frame["run"].iloc[0] / "results.json").stat().st_mtime == first
