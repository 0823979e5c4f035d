"""The papers' result and ablation tables as runnable experiments (``fexa reproduce``).

``tables/<paper>.yaml`` lists each table: its metrics, its columns (one config per column, e.g.
PFED5's five actions or DFEW's five folds) and its rows (the ``--set`` overrides that make the
row's variant, with the paper's numbers). A cell (row x column) is one ``fexa train`` run, named
by its config and overrides, so a variant that appears in several tables trains once. CFC-SP's
cascade rows are scored with :func:`fexa.analysis.cfc_sp_eval.evaluate_cascade` from the runs of
the table's ``members`` table. Rows fexa cannot run say why (``unsupported``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from fexa.errors import FexaError
from fexa.io.atomic import write_text

TABLES = Path(__file__).resolve().parents[2] / "tables"  # the repository's tables/ folder
PROTOCOLS = ("paper", "honest")  # the protocols a run's results.json can hold
CASCADE_COLUMN = "Aff-Wild2 val"  # the one column of CFC-SP's cascade rows
PERCENT = ("spearman", "pearson", "accuracy", "uar", "macro_f1")  # reported in % by the papers
SECTIONS = r"^(model\.options|data\.samples|data\.options|train\.loss_options|model|data|train|optim)\."
METRIC_NAMES = {"accuracy": "accuracy (WAR)", "uar": "UAR", "macro_f1": "macro-F1", "spearman": "Spearman",
                "mae": "MAE", "rmse": "RMSE", "pearson": "Pearson"}


@dataclass
class Cell:
    """One run of a table: a config and its overrides."""

    config: str
    sets: list[str]

    @property
    def name(self) -> str:
        """The run's name: the config's and the overrides' (the same variant is one run in every table)."""
        tail = "__".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", re.sub(SECTIONS, "", s)) for s in self.sets)
        return f"{Path(self.config).parent.name}_{Path(self.config).stem}" + (f"__{tail}" if tail else "")

    def command(self, extra: list[str] = ()) -> str:
        return " ".join(["fexa train", self.config, *(f"--set {_quote(s)}" for s in [*self.sets, *extra])])


@dataclass
class Row:
    name: str
    sets: list[str] = field(default_factory=list)
    paper: dict = field(default_factory=dict)  # metric -> [value per column (+ mean)] or the mean alone
    note: str = ""
    unsupported: str = ""
    cascade: dict = field(default_factory=dict)  # CFC-SP: {coarse: [rows], negative: row(s), eight: row, window: w}


@dataclass
class Table:
    paper: str
    id: str
    title: str
    metrics: list[str]
    columns: list[dict]  # {name, config, set}
    rows: list[Row]
    mean: str = ""  # the label of the papers' mean-over-columns column ("" if none)
    note: str = ""
    members: str = ""  # CFC-SP: the table whose rows x columns are the cascade's nets

    def cell(self, row: Row, column: dict) -> Cell:
        return Cell(column["config"], [*row.sets, *column.get("set", [])])

    def paper_values(self, row: Row, metric: str) -> list:
        """The paper's numbers of a row and metric: one per column, then the mean (None where not given)."""
        v = row.paper.get(metric)
        n = len(self.columns) + bool(self.mean)
        if v is None:
            return [None] * n
        if not isinstance(v, list):  # the mean (or the only column) alone
            return [None] * (n - 1) + [v]
        if len(v) != n:
            raise FexaError(f"{self.paper} table {self.id} row {row.name!r}: {len(v)} {metric} values for {n} columns")
        return v


def papers(folder: Path = TABLES) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def load_tables(paper: str, folder: Path = TABLES) -> dict[str, Table]:
    """Table id -> Table of ``tables/<paper>.yaml``."""
    path = folder / f"{paper}.yaml"
    if not path.is_file():
        raise FexaError(f"no tables for paper {paper!r}; papers: {', '.join(papers(folder))}")
    spec = yaml.safe_load(path.read_text())
    column_sets = spec.get("columns", {})
    out = {}
    for t in spec["tables"]:
        columns = column_sets[t["columns"]] if isinstance(t.get("columns"), str) else t.get("columns", [])
        try:
            rows = [Row(**{k: v for k, v in r.items() if k != "set"}, sets=r.get("set", [])) for r in t["rows"]]
        except TypeError as err:
            raise FexaError(f"{path} table {t['id']}: {err}") from None
        out[str(t["id"])] = Table(paper, str(t["id"]), t["title"], t["metrics"], columns, rows, t.get("mean", ""),
                                  t.get("note", ""), t.get("members", ""))
    return out


def _names(spec: str | list | None) -> list[str]:
    """A cascade role's rows: one name, a list (an ensemble) or none."""
    return [] if not spec else [spec] if isinstance(spec, str) else list(spec)


def cascade_command(tables: dict[str, Table], table: Table, row: Row) -> tuple[dict, str]:
    """(the nets' cells by role, the ``fexa evaluate-cascade`` command) of a CFC-SP cascade row."""
    members = tables[table.members]
    by_name = {r.name: r for r in members.rows}
    column = {c["name"]: c for c in members.columns}
    spec = row.cascade
    nets = {"coarse": [members.cell(by_name[n], column["coarse"]) for n in spec.get("coarse", [])],
            "negative": [members.cell(by_name[n], column["negative"]) for n in _names(spec.get("negative"))],
            "eight": [members.cell(by_name[spec["eight"]], column["eight"])] if spec.get("eight") else []}
    args = " ".join(f"--{role} " + " ".join(f"OUT/{c.name}" for c in cells) for role, cells in nets.items() if cells)
    return nets, f"fexa evaluate-cascade {args} --window {spec.get('window', 256)}"


def listing(paper: str, table_ids: list[str] | None = None) -> pd.DataFrame:
    """One line per (table, row, column): the command and the paper's number of each metric."""
    tables = load_tables(paper)
    lines = []
    for t in _chosen(tables, table_ids):
        for row in t.rows:
            if row.unsupported:
                lines.append({"table": t.id, "row": row.name, "column": "", "command": "", "unsupported": row.unsupported})
                continue
            if row.cascade:
                _, cmd = cascade_command(tables, t, row)
                lines.append({"table": t.id, "row": row.name, "column": CASCADE_COLUMN, "command": cmd,
                              **{m: t.paper_values(row, m)[-1] for m in t.metrics}})
                continue
            for i, c in enumerate(t.columns):
                lines.append({"table": t.id, "row": row.name, "column": c["name"], "command": t.cell(row, c).command(),
                              **{m: t.paper_values(row, m)[i] for m in t.metrics}})
            if t.mean:
                lines.append({"table": t.id, "row": row.name, "column": t.mean, "command": "(mean of the columns)",
                              **{m: t.paper_values(row, m)[-1] for m in t.metrics}})
    return pd.DataFrame(lines)


def _chosen(tables: dict[str, Table], ids: list[str] | None) -> list[Table]:
    unknown = [i for i in ids or [] if i not in tables]
    if unknown:
        raise FexaError(f"no table {unknown[0]!r}; tables: {', '.join(tables)}")
    return [tables[i] for i in ids] if ids else list(tables.values())


def _quote(s: str) -> str:
    return f"'{s}'" if re.search(r"[\s\[\]{},*]", s) else s


def run_tables(paper: str, table_ids: list[str] | None, sets: list[str], out: str | Path, protocol: str = "paper",
               progress: bool = True) -> pd.DataFrame:
    """Train every cell of the tables (finished runs are reused, started ones resumed), score the
    cascade rows, and collect one results table beside the paper's numbers, written to
    ``out/<paper>/table<id>.{csv,md}``."""
    tables = load_tables(paper)
    out = Path(out) / paper
    extra = [*sets, f"out={out}", f"eval.protocol={protocol}"]
    results = []
    for t in _chosen(tables, table_ids):
        lines = []
        for row in t.rows:
            if row.unsupported:
                continue
            if row.cascade:
                lines += _cascade_row(tables, t, row, extra, protocol, progress)
                continue
            values = {}
            for i, c in enumerate(t.columns):
                cell = t.cell(row, c)
                _, res = _run_cell(cell, extra, progress)
                for m in t.metrics:
                    fexa = {p: res[p].get(m) for p in PROTOCOLS if p in res}
                    values.setdefault(m, []).append(fexa)
                    lines.append(_line(t, row, c["name"], m, t.paper_values(row, m)[i], fexa, cell.name))
            if t.mean:
                for m in t.metrics:
                    mean = {p: sum(v[p] for v in values[m]) / len(values[m]) for p in values[m][0]
                            if all(p in v and v[p] is not None for v in values[m])}
                    lines.append(_line(t, row, t.mean, m, t.paper_values(row, m)[-1], mean, ""))
        frame = pd.DataFrame(lines)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / f"table{t.id}.csv", frame.to_csv(index=False))
        write_text(out / f"table{t.id}.md", table_markdown(t, frame, "honest" if protocol == "honest" else "paper"))
        results.append(frame)
    return pd.concat(results, ignore_index=True) if results else pd.DataFrame()


def _run_cell(cell: Cell, extra: list[str], progress: bool) -> tuple[Path, dict]:
    """(run folder, results) of a cell: a finished run's results.json, else the run trained (resumed if started)."""
    from fexa.train.config import load_config
    from fexa.train.trainer import train

    cfg = load_config(cell.config, [*cell.sets, *extra, f"name={cell.name}"])
    path = cfg.run_dir / "results.json"
    if path.is_file():
        return cfg.run_dir, json.loads(path.read_text())
    return cfg.run_dir, train(cfg, resume=(cfg.run_dir / "config.yaml").is_file(), progress=progress)


def _cascade_row(tables: dict[str, Table], t: Table, row: Row, extra: list[str], protocol: str,
                 progress: bool) -> list[dict]:
    """A CFC-SP cascade row: its nets trained (Table 3's cells), then scored together. Each net is
    its run's checkpoint as ``fexa analyze`` takes it (of a paper + honest pair, the honest run; of a
    paper run, its last epoch), so the number is reported under that protocol."""
    from fexa.analysis.cfc_sp_eval import evaluate_cascade

    nets, _ = cascade_command(tables, t, row)
    runs = {role: [_run_cell(cell, extra, progress)[0] for cell in cells] for role, cells in nets.items()}
    window = row.cascade.get("window", 256)
    scores = evaluate_cascade(runs["coarse"], runs["negative"], runs["eight"], [window], progress=progress)
    nets_name = " + ".join(c.name for c in [*nets["coarse"], *nets["negative"]]) if nets["coarse"] else nets["eight"][0].name
    whole = scores[(scores["nets"] == nets_name) & (scores["task"] == 8)].iloc[0]
    used = "paper" if protocol == "paper" else "honest"
    return [_line(t, row, CASCADE_COLUMN, "macro_f1", t.paper_values(row, "macro_f1")[-1],
                  {used: float(whole["macro_f1"])}, nets_name)]


def _line(t: Table, row: Row, column: str, metric: str, paper, fexa: dict, run: str) -> dict:
    scale = 100 if metric in PERCENT else 1
    return {"table": t.id, "row": row.name, "column": column, "metric": metric, "paper_reported": paper,
            **{f"fexa_{p}": (None if v is None else scale * v) for p, v in fexa.items()}, "run": run}


def table_markdown(t: Table, frame: pd.DataFrame, protocol: str = "paper") -> str:
    """The table as the paper lays it out: fexa's number (``protocol``) / the paper's, per column."""
    if any(r.cascade for r in t.rows):
        cols = [CASCADE_COLUMN]
    else:
        cols = [c["name"] for c in t.columns] + ([t.mean] if t.mean else [])
    lines = [f"# {t.paper} Table {t.id}: {t.title}", "",
             f"Each cell: fexa ({protocol} protocol) / the paper's number" + (f"; {t.note}" if t.note else "") + ".", ""]
    for m in t.metrics:
        lines += [f"{METRIC_NAMES.get(m, m)}{' (%)' if m in PERCENT else ''}", "",
                  "| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for row in t.rows:
            sel = frame[(frame["row"] == row.name) & (frame["metric"] == m)] if len(frame) else frame
            cells = []
            for c in cols:
                hit = sel[sel["column"] == c] if len(sel) else sel
                ours, tag = None, ""
                for p in (protocol, *PROTOCOLS):  # a cascade row of a `both` table has the honest runs' number only
                    if len(hit) and f"fexa_{p}" in hit and pd.notna(hit[f"fexa_{p}"].iloc[0]):
                        ours, tag = hit[f"fexa_{p}"].iloc[0], "" if p == protocol else f" ({p})"
                        break
                theirs = hit["paper_reported"].iloc[0] if len(hit) else None
                cells.append(f"{_num(ours)}{tag} / {_num(theirs)}")
            lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _num(v) -> str:
    return "–" if v is None or (isinstance(v, float) and pd.isna(v)) else f"{v:.2f}"


def docs_markdown() -> str:
    """docs/reproduce.md: every paper's tables, row by row: the command and the paper's numbers."""
    lines = ["# Reproducing the papers' tables", "",
             "Generated from `tables/*.yaml` by `fexa reproduce --docs` (a test checks it is current).", "",
             "`fexa reproduce PAPER --list [--table N]` prints these commands; `fexa reproduce PAPER --table N "
             "--set data.root=... --weights DIR` trains every cell of a table (finished runs are reused, so a "
             "variant shared by several tables trains once), then writes `OUT/PAPER/tableN.{csv,md}`: fexa's number "
             "beside the paper's for every row and column. Runs use `eval.protocol=paper` (the papers' protocol: "
             "best test epoch, every training subject) unless `--protocol honest|both` is given; every config "
             "still needs its `data.root` (the `--set` applies to every run of the table) and the authors' weights "
             "where `model.pretrained` names them (`fexa weights`).", "",
             "Numbers are in % except MAE and RMSE. `OUT` below is `--out` (default `runs/reproduce`) / PAPER.", ""]
    for paper in papers():
        tables = load_tables(paper)
        lines += [f"## {paper}", ""]
        for t in _chosen(tables, None):
            lines += [f"### Table {t.id}: {t.title}", ""]
            if t.note:
                lines += [t.note, ""]
            if t.columns and not any(r.cascade for r in t.rows):
                lines += ["Columns: " + "; ".join(f"{c['name']} = `{c['config']}`" + (
                    f" with `{' '.join('--set ' + _quote(s) for s in c.get('set', []))}`" if c.get("set") else "")
                    for c in t.columns) + (f"; {t.mean} = their mean." if t.mean else "."), ""]
            lines += ["| row | variant (`--set`, on every column) | paper: " + ", ".join(METRIC_NAMES.get(m, m)
                      for m in t.metrics) + " |", "|---|---|---|"]
            for row in t.rows:
                paper_nums = "; ".join(" ".join(_num(v) for v in t.paper_values(row, m)) for m in t.metrics)
                if row.unsupported:
                    variant = f"not runnable in fexa: {row.unsupported}"
                elif row.cascade:
                    variant = f"`{cascade_command(tables, t, row)[1]}`"
                else:
                    variant = " ".join(f"`--set {_quote(s)}`" for s in row.sets) or "(the config as shipped)"
                if row.note:
                    variant += f" ({row.note})"
                lines.append(f"| {row.name} | {variant} | {paper_nums} |")
            lines.append("")
    return "\n".join(lines)
