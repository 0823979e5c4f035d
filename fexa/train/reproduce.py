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
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from fexa.errors import FexaError
from fexa.io.atomic import write_text

TABLES = Path(__file__).resolve().parents[2] / "tables"  # the repository's tables/ folder
PROTOCOLS = ("paper", "honest")  # the protocols a run's results.json can hold
CASCADE_COLUMN = "Aff-Wild2 val"  # the one column of CFC-SP's cascade rows
PERCENT = ("spearman", "pearson", "accuracy", "uar", "macro_f1", "binary_accuracy", "specificity",
           "sensitivity")  # reported in % by the papers, as are the per-class recall_<class> and f1_<class>
SECTIONS = r"^(model\.options|data\.samples|data\.options|train\.loss_options|model|data|train|optim)\."
CHECK_TIME = ("Measured 2026-12-04: the whole check of all five papers (`fexa reproduce --check --json`: 132 rows "
              "ok, 1 unsupported, 72 model variants stepped) took 17 min 12 s on this project's 2-core CPU, "
              "layouts, extraction and synthetic weights included (peak memory 13.9 GB: the QAFE-Net step on "
              "UNBC's 144 frames); with `--device cuda --amp --batch 0` on one H200, 219 s "
              "(docs/training.md lists each variant's bf16 step time and peak GPU memory).")
METRIC_NAMES = {"accuracy": "accuracy (WAR)", "uar": "UAR", "macro_f1": "macro-F1", "spearman": "Spearman",
                "mae": "MAE", "rmse": "RMSE", "pearson": "Pearson"}


@dataclass
class Cell:
    """One run of a table: a config and its overrides; ``parent``: the run it is fine-tuned from
    (its weights are loaded into submodule ``into``, "" for the whole model)."""

    config: str
    sets: list[str]
    parent: Cell | None = None
    into: str = ""
    landmarks: str = ""  # the format of the files data.landmarks names (fexa.data.landmark_files), for --check

    @property
    def name(self) -> str:
        """The run's name: the config's and the overrides' (the same variant is one run in every table)."""
        tail = "__".join(re.sub(r"[^A-Za-z0-9_.=-]+", "-", re.sub(SECTIONS, "", s)) for s in self.sets)
        return f"{Path(self.config).parent.name}_{Path(self.config).stem}" + (f"__{tail}" if tail else "")


@dataclass
class Row:
    name: str
    sets: list[str] = field(default_factory=list)
    paper: dict = field(default_factory=dict)  # metric -> [value per column (+ mean)] or the mean alone
    note: str = ""
    unsupported: str = ""
    cascade: dict = field(default_factory=dict)  # CFC-SP: {coarse: [rows], negative: row(s), eight: row, window: w}
    landmarks: str = ""  # the format of the landmark files the row's data.landmarks names (tracks63, insightface106)


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

    def cells(self, row: Row, column: dict) -> list[Cell]:
        """The runs of a row's column: one, or one per fold of a column averaged over ``folds``."""
        spec = column.get("parent") or {}
        parent = Cell(spec["config"], list(spec.get("set", []))) if spec else None
        sets, into = [*row.sets, *column.get("set", [])], spec.get("into", "")
        if "folds" in column:
            return [Cell(column["config"], [*sets, f"data.fold={k}"], parent, into, row.landmarks) for k in column["folds"]]
        return [Cell(column["config"], sets, parent, into, row.landmarks)]

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


def cascade_cells(tables: dict[str, Table], table: Table, row: Row) -> dict[str, list[Cell]]:
    """The nets of a CFC-SP cascade row by role (coarse, negative, eight): cells of its ``members`` table."""
    members = tables[table.members]
    by_name = {r.name: r for r in members.rows}
    column = {c["name"]: c for c in members.columns}
    spec = row.cascade

    def net(name: str, role: str) -> Cell:
        return members.cells(by_name[name], column[role])[0]

    return {"coarse": [net(n, "coarse") for n in spec.get("coarse", [])],
            "negative": [net(n, "negative") for n in _names(spec.get("negative"))],
            "eight": [net(spec["eight"], "eight")] if spec.get("eight") else []}


def cascade_command(nets: dict[str, list[Cell]], window: int, out: str | Path = "OUT") -> str:
    """The ``fexa evaluate-cascade`` command that scores a cascade row's nets (run folders under ``out``)."""
    args = " ".join(f"--{role} " + " ".join(f"{out}/{c.name}" for c in cells) for role, cells in nets.items() if cells)
    return f"fexa evaluate-cascade {args} --window {window}"


def _cascade_nets_name(nets: dict[str, list[Cell]]) -> str:
    """How evaluate_cascade names the row's whole cascade (or its one 8-class net)."""
    return " + ".join(c.name for c in [*nets["coarse"], *nets["negative"]]) if nets["coarse"] else nets["eight"][0].name


@dataclass
class Plan:
    """How a paper's table runs are made: extra overrides of every run, the datasets' folders
    (``--root DATASET=PATH``), the runs' folder (``OUT/PAPER``) and the evaluation protocol."""

    out: Path
    protocol: str = "paper"
    sets: list[str] = field(default_factory=list)
    roots: dict[str, str] = field(default_factory=dict)

    def overrides(self, cell: Cell) -> list[str]:
        """Every ``--set`` of the cell's run: its variant, the run-wide ones, its name, folder and protocol,
        and for a fine-tune the parent run's checkpoint."""
        sets = [*cell.sets, *self.sets]
        dataset = _dataset(cell) if self.roots else ""
        if dataset in self.roots:
            sets.append(f"data.root={self.roots[dataset]}")
        sets += [f"out={self.out}", f"eval.protocol={self.protocol}", f"name={cell.name}"]
        if cell.parent is not None:
            sets.append(f'model.pretrained={{"{cell.into}": {{source: fexa, path: "{self.parent_checkpoint(cell)}"}}}}')
        return sets

    def config(self, cell: Cell):
        from fexa.train.config import load_config

        return load_config(cell.config, self.overrides(cell))

    def parent_checkpoint(self, cell: Cell) -> Path:
        """The checkpoint a fine-tune starts from: under the paper protocol the parent's best test
        epoch (the authors' model_best.pth), otherwise its best validation epoch (never test-selected)."""
        from fexa.train.evaluate import protocol_runs

        runs = protocol_runs(self.config(cell.parent))
        if self.protocol == "paper":
            return runs["paper"].run_dir / "checkpoints" / "best_test"
        return (runs.get("honest") or next(iter(runs.values()))).run_dir / "checkpoints" / "best_val"

    def command(self, cell: Cell) -> str:
        return " ".join(["fexa train", cell.config, *(f"--set {_quote(s)}" for s in self.overrides(cell))])


# Training items per run, by dataset, from the papers and the datasets' own papers (for --list's GPU
# hours): PFED5 2,811 videos / 5 actions x 30 of 41 training subjects; UNBC-McMaster 200 videos x 4/5;
# DFEW's 11,697 single-label clips x 4/5 per fold; AFEW 773; RAF-DB 12,271; AffectNet's 7-class
# training set 283,901; FERPlus 28,709; Aff-Wild2's expression training frames ~586,000 (ABAW; the
# negative net trains on a share of them, so its hours are an upper bound); Toronto NeuroFace
# augmented repetitions per task: ~240 (an estimate: 36 subjects, repetitions split by fexa).
TRAIN_ITEMS = {"pfed5": 411, "unbc": 160, "dfew": 9_358, "afew": 773, "rafdb": 12_271, "affectnet7": 283_901,
               "ferplus": 28_709, "affwild2": 586_000, "toronto_neuroface": 240}
# Training items per second of one bf16 step at the config's batch on one H100 (docs/training.md,
# "Measured on one H100"); models not measured there have no estimate.
STEP_RATES = {"swin_s": 898, "repvgg": 3_854, "former_dfer_112": 885, "pcda": 1_660, "pcda_gaussian": 1_190,
              "qafe_net": 42, "stt": 850, "tramp_trajectory": 82, "tramp_former": 27}


@cache
def _hours_of(config: str, sets: tuple[str, ...]) -> float | None:
    from fexa.train.config import load_config

    cfg = load_config(config, list(sets))
    items, rate = TRAIN_ITEMS.get(cfg.data.dataset), STEP_RATES.get(cfg.model.name)
    if items is None or rate is None:
        return None
    return cfg.train.epochs * cfg.train.repeats * items / rate / 3600


def _hours(cell: Cell) -> float | None:
    """A run's estimated training time in GPU hours on one H100 (None: no measured step rate)."""
    return _hours_of(cell.config, tuple(cell.sets))


def _dataset(cell: Cell) -> str:
    """The dataset a cell's run reads (its config with the row's overrides)."""
    from fexa.train.config import load_config

    return load_config(cell.config, cell.sets).data.dataset


def table_runs(tables: dict[str, Table], chosen: list[Table]) -> list[Cell]:
    """Every run the chosen tables train, once each (by name), a fine-tune's parent before it."""
    runs: dict[str, Cell] = {}

    def add(cell: Cell) -> None:
        if cell.parent is not None:
            add(cell.parent)
        runs.setdefault(cell.name, cell)

    for t in chosen:
        for row in t.rows:
            if row.unsupported:
                continue
            if row.cascade:
                for cells in cascade_cells(tables, t, row).values():
                    for cell in cells:
                        add(cell)
                continue
            for c in t.columns:
                for cell in t.cells(row, c):
                    add(cell)
    return list(runs.values())


def share(runs: list[Cell], k: int, n: int) -> list[Cell]:
    """The ``k``-th (1-based) of ``n`` shares of ``runs`` for a job array: runs balanced by their
    estimated GPU hours (longest first onto the least loaded share); a fine-tune goes with its parent
    so that the share trains the parent first."""
    if not (isinstance(n, int) and n >= 1 and 1 <= k <= n):
        raise FexaError(f"--cells {k}/{n}: K must be 1..N")
    roots: dict[str, list[Cell]] = {}
    for cell in runs:
        top = cell
        while top.parent is not None:
            top = top.parent
        roots.setdefault(top.name, []).append(cell)
    load = [0.0] * n
    mine: list[Cell] = []
    for group in sorted(roots.values(), key=lambda g: -sum(_hours(c) or 1.0 for c in g)):
        i = load.index(min(load))
        load[i] += sum(_hours(c) or 1.0 for c in group)
        if i == k - 1:
            mine += group
    return mine


def run_share(paper: str, table_ids: list[str] | None, plan: Plan, k: int, n: int, progress: bool = True) -> list[Cell]:
    """Train the runs of share ``k`` of ``n`` of the tables (:func:`share`; finished runs reused) and
    return them; ``--collect`` then writes the tables."""
    tables = load_tables(paper)
    mine = share(table_runs(tables, _chosen(tables, table_ids)), k, n)
    for cell in mine:
        _run_cell(plan, cell, True, progress)
    return mine


def listing(paper: str, table_ids: list[str] | None = None, plan: Plan | None = None) -> pd.DataFrame:
    """One line per (table, row, column): the run's name, the complete command that lands where
    ``--collect`` reads it, its estimated GPU hours and the paper's number of each metric."""
    plan = plan or Plan(Path("runs/reproduce") / paper)
    tables = load_tables(paper)
    lines = []
    for t in _chosen(tables, table_ids):
        for row in t.rows:
            if row.unsupported:
                lines.append({"table": t.id, "row": row.name, "column": "", "run": "", "command": "",
                              "unsupported": row.unsupported})
                continue
            if row.cascade:
                nets = cascade_cells(tables, t, row)
                lines.append({"table": t.id, "row": row.name, "column": CASCADE_COLUMN, "run": _cascade_nets_name(nets),
                              "command": cascade_command(nets, row.cascade.get("window", 256), plan.out),
                              **{m: t.paper_values(row, m)[-1] for m in t.metrics}})
                continue
            for i, c in enumerate(t.columns):
                for cell in t.cells(row, c):
                    hours = _hours(cell)
                    lines.append({"table": t.id, "row": row.name, "column": c["name"], "run": cell.name,
                                  "command": plan.command(cell), "gpu_hours": None if hours is None else round(hours, 2),
                                  **{m: t.paper_values(row, m)[i] for m in t.metrics}})
            if t.mean:
                lines.append({"table": t.id, "row": row.name, "column": t.mean, "run": "", "command": "(mean of the columns)",
                              **{m: t.paper_values(row, m)[-1] for m in t.metrics}})
    return pd.DataFrame(lines)


def _chosen(tables: dict[str, Table], ids: list[str] | None) -> list[Table]:
    unknown = [i for i in ids or [] if i not in tables]
    if unknown:
        raise FexaError(f"no table {unknown[0]!r}; tables: {', '.join(tables)}")
    return [tables[i] for i in ids] if ids else list(tables.values())


def _quote(s: str) -> str:
    return f"'{s}'" if re.search(r"[\s\[\]{},*\"]", s) else s


def run_tables(paper: str, table_ids: list[str] | None, plan: Plan, train: bool = True,
               progress: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """Collect every cell of the tables beside the paper's numbers into ``plan.out/table<id>.{csv,md}``.
    With ``train``, runs not finished are trained first (finished runs are reused, started ones
    resumed; a fine-tune's parent first); without, they are left empty. Returns (the lines, the
    runs still missing)."""
    tables = load_tables(paper)
    results, missing = [], []
    for t in _chosen(tables, table_ids):
        lines = []
        for row in t.rows:
            if row.unsupported:
                continue
            if row.cascade:
                line, absent = _cascade_row(tables, t, row, plan, train, progress)
                lines.append(line)
                missing += absent
                continue
            values = {}
            for i, c in enumerate(t.columns):
                per_fold = []
                for cell in t.cells(row, c):
                    res = _run_cell(plan, cell, train, progress)
                    if res is None:
                        missing.append(cell.name)
                    per_fold.append(res or {})
                names = " ".join(cell.name for cell in t.cells(row, c))
                for m in t.metrics:
                    fexa = _mean([{p: r[p].get(m) for p in PROTOCOLS if p in r} for r in per_fold])
                    values.setdefault(m, []).append(fexa)
                    lines.append(_line(t, row, c["name"], m, t.paper_values(row, m)[i], fexa, names))
            if t.mean:
                for m in t.metrics:
                    lines.append(_line(t, row, t.mean, m, t.paper_values(row, m)[-1], _mean(values[m]), ""))
        frame = pd.DataFrame(lines)
        plan.out.mkdir(parents=True, exist_ok=True)
        write_text(plan.out / f"table{t.id}.csv", frame.to_csv(index=False))
        write_text(plan.out / f"table{t.id}.md", table_markdown(t, frame, "honest" if plan.protocol == "honest" else "paper"))
        results.append(frame)
    return (pd.concat(results, ignore_index=True) if results else pd.DataFrame()), sorted(set(missing))


def _mean(values: list[dict]) -> dict:
    """Per protocol, the mean over ``values`` (runs' numbers), where every run has one."""
    protocols = set().union(*values) if values else set()
    return {p: sum(v[p] for v in values) / len(values) for p in PROTOCOLS if p in protocols
            and all(p in v and v[p] is not None for v in values)}


def _run_cell(plan: Plan, cell: Cell, train: bool, progress: bool) -> dict | None:
    """A run's results: a finished run's results.json, else (``train``) the run trained, resumed if
    started, after its parent; None when not finished and not to be trained."""
    from fexa.train.trainer import train as train_run

    cfg = plan.config(cell)
    path = cfg.run_dir / "results.json"
    if path.is_file():
        return json.loads(path.read_text())
    if not train:
        return None
    if cell.parent is not None:
        _run_cell(plan, cell.parent, train, progress)
    return train_run(cfg, resume=(cfg.run_dir / "config.yaml").is_file(), progress=progress)


def _cascade_row(tables: dict[str, Table], t: Table, row: Row, plan: Plan, train: bool,
                 progress: bool) -> tuple[dict, list[str]]:
    """A CFC-SP cascade row's line: its nets (Table 3's cells) trained, then scored together, and
    the nets still missing. Each net is its run's checkpoint as ``fexa analyze`` takes it: of a
    paper + honest pair, the honest run (best validation epoch); of a paper run, its best test epoch
    (best_test: the paper selected its nets on Aff-Wild2's validation set, which is the test here)."""
    nets = cascade_cells(tables, t, row)
    missing = [c.name for cells in nets.values() for c in cells if _run_cell(plan, c, train, progress) is None]
    value = {}
    if not missing:
        runs = {role: [_scored_run(plan.config(c).run_dir) for c in cells] for role, cells in nets.items()}
        window = row.cascade.get("window", 256)
        value = {"paper" if plan.protocol == "paper" else "honest":
                 cascade_f1(cascade_scores(runs, [window], progress), nets, window)}
    return _line(t, row, CASCADE_COLUMN, "macro_f1", t.paper_values(row, "macro_f1")[-1], value,
                 _cascade_nets_name(nets)), missing


def _scored_run(run: Path) -> Path:
    """The run folder of a finished run whose weights a cascade scores: a paper + honest pair's honest run."""
    return run / "honest" if (run / "honest" / "model.json").is_file() else run


def cascade_scores(runs: dict[str, list[Path]], windows: list[int], progress: bool = False) -> pd.DataFrame:
    """:func:`fexa.analysis.cfc_sp_eval.evaluate_cascade` of the nets' run folders ``runs`` (by role)."""
    from fexa.analysis.cfc_sp_eval import evaluate_cascade

    return evaluate_cascade(runs["coarse"], runs["negative"], runs["eight"], windows, progress=progress)


def cascade_f1(scores: pd.DataFrame, nets: dict[str, list[Cell]], window: int) -> float:
    """The 8-class per-frame macro-F1 of a cascade row's nets at ``window``, from :func:`cascade_scores`."""
    whole = scores[(scores["nets"] == _cascade_nets_name(nets)) & (scores["task"] == 8) & (scores["window"] == window)]
    if whole.empty:
        raise FexaError(f"the cascade of {_cascade_nets_name(nets)} at window {window} was not scored")
    return float(whole.iloc[0]["macro_f1"])


def _percent(metric: str) -> bool:
    return metric in PERCENT or metric.startswith(("recall_", "f1_"))


def _metric_name(metric: str) -> str:
    """A metric as the tables name it: 'UAR', 'recall (neutral)'."""
    kind, _, cls = metric.partition("_")
    return f"{kind} ({cls})" if kind in ("recall", "f1") and cls else METRIC_NAMES.get(metric, metric)


def _line(t: Table, row: Row, column: str, metric: str, paper, fexa: dict, run: str) -> dict:
    scale = 100 if _percent(metric) else 1
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
        lines += [f"{_metric_name(m)}{' (%)' if _percent(m) else ''}", "",
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


def _column_text(c: dict) -> str:
    """A column in docs/reproduce.md: its config, overrides, folds averaged and the run it fine-tunes."""
    text = f"{c['name']} = `{c['config']}`"
    if c.get("set"):
        text += f" with `{' '.join('--set ' + _quote(s) for s in c['set'])}`"
    if "folds" in c:
        text += f", the mean of `data.fold` = {', '.join(map(str, c['folds']))}"
    if c.get("parent"):
        parent = c["parent"]
        text += (f", fine-tuned from the run of `{parent['config']}`"
                 + (f" with `{' '.join('--set ' + _quote(s) for s in parent['set'])}`" if parent.get("set") else "")
                 + " (trained first; its best test epoch under the paper protocol, else its best validation epoch)")
    return text


def docs_markdown() -> str:
    """docs/reproduce.md: every paper's tables, row by row: the command and the paper's numbers."""
    lines = ["# Reproducing the papers' tables", "",
             "Generated from `tables/*.yaml` by `fexa reproduce --docs` (a test checks it is current).", "",
             "## Before a GPU hour is spent: `--check`", "",
             "`fexa reproduce [PAPER] [--table N...] [--row NAME] --check [--json]` goes through every row and "
             "column a real run would train (fine-tunes' parents and cascades' nets included) on tiny synthetic "
             "copies of each dataset's layout made from the demo clip (`fexa.data.layouts`), with synthetic weight "
             "files laid out exactly like each file a row names (same keys, shapes, wrapping and extra pickled "
             "objects as the authors' releases; `fexa.models.synthetic_weights`). For each run it validates the "
             "config with its overrides and its dataset selection, builds a training and a test batch at the "
             "paper's input shapes, builds the model and loads its initialisation strictly, takes one training step "
             "and evaluates and scores two test samples, checks its loss, and chains what the row chains (a fine-tune loads its "
             "parent's checkpoint, a cascade scores its nets' checkpoints). A part shared by runs (e.g. the model "
             "step of the five PFED5 actions, or a loss on the same model) is checked once. It prints one line per "
             "row, ok or the one-line reason, and exits 1 when any row fails; `--json` prints `{rows, ok, failed: "
             "[{paper, table, row, column, error}], unsupported, seconds, steps}`. Training batches hold 2 items "
             "(`--batch 0`: each config's own), subject k-fold splits run as 2 folds (the layouts hold four subjects) "
             "and a test sample is one clip. `--device cuda --amp --batch 0` takes each distinct model variant's bf16 step "
             "on a GPU and reports its time and peak memory (`steps` in the JSON).", "",
             CHECK_TIME, "",
             "## Running the tables", "",
             "`fexa reproduce PAPER --list [--table N]` prints every run's complete `fexa train` command (its name, "
             "`out` and protocol, so it lands where `--collect` reads it) and its estimated GPU hours on one H100 "
             "(the configs' epochs x the datasets' training-set sizes / the bf16 step rates measured in "
             "docs/training.md; '' where no rate was measured). `fexa reproduce PAPER --table N --set data.root=... "
             "--weights DIR` trains every cell of a table (finished runs are reused, so a variant shared by several "
             "tables trains once; a fine-tune's parent trains first), then writes `OUT/PAPER/tableN.{csv,md}`: "
             "fexa's number beside the paper's for every row and column. Tables that span datasets take each "
             "dataset's folder with `--root DATASET=PATH` (repeatable). Runs use `eval.protocol=paper` (the papers' "
             "protocol: best test epoch, every training subject) unless `--protocol honest|both` is given; the "
             "authors' weights are needed where `model.pretrained` names them (`fexa weights`).", "",
             "On a cluster: `fexa reproduce PAPER --cells K/N` (K = 1..N, e.g. a Slurm array index) trains the K-th "
             "of N shares of the tables' runs, balanced by estimated GPU hours, each fine-tune with its parent; "
             "when all shares are done, `fexa reproduce PAPER --collect` writes the tables from the finished runs "
             "(it trains nothing, names the runs still missing and exits 1 while any is).", "",
             "Data as the papers fed it: the configs of DFEW, RAF-DB, FERPlus, AffectNet and Aff-Wild2 use the "
             "dataset's own face images (`data.faces: given`: resized to the model's input, not detected or "
             "re-aligned, as the papers did); AFEW is detected with MediaPipe where STT used Dlib; `--set "
             "data.faces=detect` uses fexa's alignment instead. Landmarks or point tracks made elsewhere (SCRFD, "
             "TAPIR, CoTracker, BootsTAP; docs/landmarks.md) reach training with `data.landmarks=DIR`.", "",
             "Numbers are in % except MAE and RMSE. `OUT` below is `--out` (default `runs/reproduce`) / PAPER.", ""]
    for paper in papers():
        tables = load_tables(paper)
        lines += [f"## {paper}", ""]
        for t in _chosen(tables, None):
            lines += [f"### Table {t.id}: {t.title}", ""]
            if t.note:
                lines += [t.note, ""]
            if t.columns and not any(r.cascade for r in t.rows):
                lines += ["Columns: " + "; ".join(_column_text(c) for c in t.columns)
                          + (f"; {t.mean} = their mean." if t.mean else "."), ""]
            lines += ["| row | variant (`--set`, on every column) | paper: " + ", ".join(_metric_name(m)
                      for m in t.metrics) + " |", "|---|---|---|"]
            for row in t.rows:
                paper_nums = "; ".join(" ".join(_num(v) for v in t.paper_values(row, m)) for m in t.metrics)
                if row.unsupported:
                    variant = f"not runnable in fexa: {row.unsupported}"
                elif row.cascade:
                    variant = f"`{cascade_command(cascade_cells(tables, t, row), row.cascade.get('window', 256))}`"
                else:
                    variant = " ".join(f"`--set {_quote(s)}`" for s in row.sets) or "(the config as shipped)"
                if row.note:
                    variant += f" ({row.note})"
                lines.append(f"| {row.name} | {variant} | {paper_nums} |")
            lines.append("")
    return "\n".join(lines)
