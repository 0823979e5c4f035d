"""``fexa reproduce``: every table row resolves to valid runs, docs/reproduce.md is current, and a
table runs end to end on a synthetic layout with its numbers collected beside the paper's."""

import json
import shutil

import numpy as np
import pytest

from conftest import REPO, TINY_PCDA
from fexa.errors import FexaError
from fexa.train.config import load_config
from fexa.train.reproduce import Plan, docs_markdown, listing, load_tables, papers, run_tables, share, table_runs

ROWS = [(p, t.id, r.name) for p in papers() for t in load_tables(p).values() for r in t.rows if not r.unsupported]


def test_every_paper_has_its_tables():
    assert papers() == ["cfc-sp", "pcda-neaa", "qafe-net", "stt-dfer", "tramp-former"]
    assert {"1", "2", "3", "4"} <= set(load_tables("cfc-sp"))
    assert {"1", "2", "fig6", "3", "4"} <= set(load_tables("stt-dfer"))
    assert {"2", "4", "5", "6", "7", "8", "9", "10"} <= set(load_tables("qafe-net"))
    assert {"II", "III", "V", "VI", "VII", "VIII", "IX"} <= set(load_tables("tramp-former"))


@pytest.mark.parametrize("paper,table,row", ROWS, ids=lambda x: str(x))
def test_every_row_resolves_to_valid_configs(paper, table, row):
    from fexa.train.reproduce import cascade_cells

    tables = load_tables(paper)
    t = tables[table]
    r = next(x for x in t.rows if x.name == row)
    if r.cascade:
        cells = [c for cs in cascade_cells(tables, t, r).values() for c in cs]
    else:
        cells = [cell for c in t.columns for cell in t.cells(r, c)]
        for m in t.metrics:
            t.paper_values(r, m)  # as many numbers as columns
    for cell in cells:  # validation checks every key and the model's options
        load_config(REPO / cell.config, [*cell.sets, "data.root=/x", "model.pretrained=none"])
        if cell.parent is not None:
            load_config(REPO / cell.parent.config, [*cell.parent.sets, "data.root=/x", "model.pretrained=none"])


def test_docs_reproduce_is_current():
    assert (REPO / "docs" / "reproduce.md").read_text() == docs_markdown(), "run: fexa reproduce --docs > docs/reproduce.md"


def test_a_table_runs_and_collects_its_numbers_beside_the_papers(tmp_path, monkeypatch):
    from fexa.data.layouts import make_layouts

    monkeypatch.chdir(REPO)
    layout = make_layouts(tmp_path / "layouts")["rafdb"]
    tiny = [*TINY_PCDA, f"data.root={layout}", f"data.cache={tmp_path / 'cache'}"]
    plan = Plan(tmp_path / "runs" / "pcda-neaa", "paper", tiny)
    frame, missing = run_tables("pcda-neaa", ["4"], plan, progress=False)
    assert missing == []
    assert list(frame["row"]) == ["Conv", "Sum+Repeat", "Abs+Sum+Repeat", "Max+Repeat"]
    assert list(frame["paper_reported"]) == [91.46, 91.72, 91.59, 92.31]
    for line in frame.itertuples():  # each number is its run's test accuracy, in %
        res = json.loads((tmp_path / "runs" / "pcda-neaa" / line.run / "results.json").read_text())
        assert line.fexa_paper == pytest.approx(100 * res["paper"]["accuracy"])
    assert (tmp_path / "runs" / "pcda-neaa" / "table4.md").read_text().count("/ 92.31") == 1
    first = (tmp_path / "runs" / "pcda-neaa" / frame["run"].iloc[0] / "results.json").stat().st_mtime
    again, _ = run_tables("pcda-neaa", ["4"], plan, train=False, progress=False)  # --collect: reads, trains nothing
    assert np.allclose(again["fexa_paper"], frame["fexa_paper"])
    assert (tmp_path / "runs" / "pcda-neaa" / frame["run"].iloc[0] / "results.json").stat().st_mtime == first
    # a run not finished leaves its cell empty and is named, and --collect says so
    shutil.rmtree(tmp_path / "runs" / "pcda-neaa" / frame["run"].iloc[0])
    partial, missing = run_tables("pcda-neaa", ["4"], plan, train=False, progress=False)
    assert missing == [frame["run"].iloc[0]] and partial["fexa_paper"].isna().tolist() == [True, False, False, False]


def test_a_job_array_shares_every_run_once_and_keeps_a_fine_tune_with_its_parent():
    tables = load_tables("stt-dfer")
    runs = table_runs(tables, list(tables.values()))
    names = [c.name for c in runs]
    assert len(names) == len(set(names)) and "stt_afew" in names and "stt_dfew" in names
    assert names.index("stt_dfew") < names.index("stt_afew")  # the parent first
    shares = [share(runs, k, 4) for k in range(1, 5)]
    assert sorted(c.name for s in shares for c in s) == sorted(names)
    holder = next(s for s in shares if any(c.name == "stt_afew" for c in s))
    assert any(c.name == "stt_dfew" for c in holder)
    with pytest.raises(FexaError, match="K must be 1..N"):
        share(runs, 5, 4)


def test_list_prints_complete_commands_that_land_where_collect_reads(tmp_path):
    plan = Plan(tmp_path / "stt-dfer", "paper", [], {"afew": "/data/AFEW", "dfew": "/data/DFEW"})
    lines = listing("stt-dfer", ["4"], plan)
    (line,) = lines.itertuples()
    assert line.run == "stt_afew" and f"out={tmp_path / 'stt-dfer'}" in line.command
    assert "--set data.root=/data/AFEW" in line.command and "--set eval.protocol=paper" in line.command
    # the fine-tune starts from its parent's best test epoch, where the parent's run lands
    assert f"{tmp_path / 'stt-dfer' / 'stt_dfew' / 'checkpoints' / 'best_test'}" in line.command
    table = load_tables("stt-dfer")["4"]
    (cell,) = table.cells(table.rows[0], table.columns[0])
    cfg = load_config(REPO / cell.config, plan.overrides(cell))
    assert cfg.run_dir == tmp_path / "stt-dfer" / "stt_afew" and cfg.data.root == "/data/AFEW"
    hours = listing("stt-dfer", ["3"], plan)["gpu_hours"].dropna()
    # 100 epochs x 9,358 clips at 850 clips/s on an H100
    assert len(hours) == 5 and hours.iloc[0] == pytest.approx(100 * 9_358 / 850 / 3600, abs=0.01)


# -- fexa reproduce --check ---------------------------------------------------------------------------
# One row of every paper, each exercising what its tables need: a landmark-free PCDA variant, a
# fine-tune chained to its parent (STT Table 4), a trajectory-only TraMP-Former row (the pretrained
# 5-channel stem meets 2-channel trajectories), QAFE-Net with both published initialisations, and a
# CFC-SP cascade scored from its nets' checkpoints.
CHECKED = [("pcda-neaa", "1", "4: NeAA"), ("stt-dfer", "4", "STT"), ("tramp-former", "VIII", "–/zero"),
           ("qafe-net", "2", "QAFE-Net"), ("cfc-sp", "4", "0")]


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    from fexa.train.check import TableCheck

    return TableCheck(tmp_path_factory.mktemp("check"))


@pytest.mark.parametrize("paper,table,row", CHECKED, ids=lambda x: str(x))
def test_check_proves_a_row_of_every_paper(checker, paper, table, row):
    from fexa.train.check import check_rows

    report = check_rows(checker, paper, [table], [row])
    assert report.failed == [] and report.rows == report.ok == 1, report.failed
    assert report.steps and all(s["step_ms"] > 0 for s in report.steps)


def test_check_reports_a_broken_row_in_one_line_and_exits_nonzero(tmp_path, monkeypatch, capsys):
    import fexa.train.check as check
    from fexa.cli.main import main
    from fexa.train import reproduce

    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "pcda-neaa.yaml").write_text("""tables:
  - id: "1"
    title: t
    columns: [{name: RAF-DB, config: configs/pcda/rafdb.yaml}]
    metrics: [accuracy]
    rows:
      - {name: bad option, set: [model.options.no_such_option=1]}
      - {name: unsupported, unsupported: "needs something fexa lacks"}
""")
    monkeypatch.setattr(check, "load_tables", lambda paper: reproduce.load_tables(paper, folder))
    monkeypatch.chdir(REPO)
    code = main(["reproduce", "pcda-neaa", "--check", "--json", "--workdir", str(tmp_path / "work")])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["rows"] == 1 and out["ok"] == 0
    (failure,) = out["failed"]
    assert failure["row"] == "bad option" and failure["column"] == "RAF-DB" and "no_such_option" in failure["error"]
    assert "\n" not in failure["error"]
    assert out["unsupported"] == [{"paper": "pcda-neaa", "table": "1", "row": "unsupported",
                                   "reason": "needs something fexa lacks"}]


@pytest.mark.slow
@pytest.mark.parametrize("paper", papers())
def test_check_proves_every_row_of_every_paper(checker, paper):
    from fexa.train.check import check_rows

    report = check_rows(checker, paper)
    assert report.failed == [], report.failed


def test_a_fine_tune_table_trains_its_parent_first_and_starts_from_its_best_test_epoch(tmp_path):
    """STT Table 4 end to end on the synthetic layouts: the DFEW fold-1 run trains first, AFEW's starts from it."""
    from fexa.data.layouts import make_layouts

    layouts = make_layouts(tmp_path / "layouts")
    tiny = ["model.options.depth=1", "model.options.dim=64", "model.options.num_heads=2", "model.pretrained=none",
            "train.epochs=1", "train.batch_size=2", "eval.bootstrap=0", f"data.cache={tmp_path / 'cache'}"]
    plan = Plan(tmp_path / "runs" / "stt-dfer", "paper", tiny, {"dfew": str(layouts["dfew"]), "afew": str(layouts["afew"])})
    frame, missing = run_tables("stt-dfer", ["4"], plan, progress=False)
    assert missing == [] and list(frame["metric"]) == ["uar", "accuracy"] and frame["fexa_paper"].notna().all()
    parent = tmp_path / "runs" / "stt-dfer" / "stt_dfew" / "checkpoints" / "best_test"
    assert (parent / "model.safetensors").is_file()
    child = json.loads((tmp_path / "runs" / "stt-dfer" / "stt_afew" / "results.json").read_text())
    assert child["dataset"] == "afew" and any(str(parent) in line for line in child["initialisation"])
