"""``fexa reproduce --check``: every table row proven to build, load its initialisation and train,
in minutes, before a GPU hour is spent.

Every run a table would train (each row x column, fine-tunes' parents, cascades' nets) is made
with its config and overrides, reading a tiny synthetic copy of its dataset's layout
(:mod:`fexa.data.layouts`, from the demo clip) and initialised from synthetic weight files laid out
exactly like the files its ``model.pretrained`` names (:mod:`fexa.models.synthetic_weights`). Each
run is checked in parts, and a part shared by several runs is checked once:

- the config with its overrides validates, and its dataset selection keeps training and test samples;
- its data pipeline builds a training and a test batch at the paper's input shapes (per pipeline:
  runs that differ only in the samples they choose, e.g. PFED5's actions, share it);
- its model is built and its initialisation loaded strictly (per model, options and weights);
- one training step and the evaluation of two test samples run (per model variant and input shapes;
  variants that differ only in their number of classes differ only in the head, and share it);
- its loss gives a finite value and gradient on that model's outputs (per loss);
- a fine-tune loads its parent's checkpoint, and a cascade scores its nets' checkpoints together.

The synthetic layouts hold four subjects, so a subject k-fold split runs as 2 folds (fold mod 2),
training batches hold 2 items (``batch``; each config's own with ``batch=0``, its few samples drawn
again) and the evaluation scores two test samples (one clip each).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import RandomSampler

from fexa.errors import FexaError
from fexa.train.config import ExperimentConfig, load_config, to_dict
from fexa.train.evaluate import protocol_runs
from fexa.train.reproduce import CASCADE_COLUMN, Cell, Plan, Table, _chosen, cascade_cells, cascade_f1, cascade_scores, load_tables

@dataclass
class CheckReport:
    """What ``fexa reproduce --check`` found: one entry per row, the failures per column."""

    rows: int = 0
    ok: int = 0
    failed: list[dict] = field(default_factory=list)  # {paper, table, row, column, error}
    unsupported: list[dict] = field(default_factory=list)  # {paper, table, row, reason}
    steps: list[dict] = field(default_factory=list)  # one per training step taken: model variant, time, memory
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {"rows": self.rows, "ok": self.ok, "failed": self.failed, "unsupported": self.unsupported,
                "seconds": round(self.seconds, 1), "steps": self.steps}


# data settings that only choose which samples a run reads: runs differing in them alone (PFED5's
# actions, DFEW's folds) share one data pipeline, checked once (each one's selection is still checked)
SELECTION = ("task", "fold", "folds", "fold_file", "options", "stratify", "limit")


def _key(*parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (f"{type(err).__name__}: " if not isinstance(err, FexaError) else "") + (text[0] if text else repr(err))


class TableCheck:
    """Checks table runs on synthetic data in ``workdir``, remembering every part already checked."""

    def __init__(self, workdir: Path, device: str = "cpu", amp: bool = False, batch: int = 2):
        from fexa.data.layouts import make_layouts

        self.workdir = Path(workdir)
        done = self.workdir / "layouts" / "layouts.json"  # a kept workdir's layouts are reused (their cache too)
        if done.is_file():
            self.layouts = {k: Path(v) for k, v in json.loads(done.read_text()).items()}
        else:
            self.layouts = make_layouts(self.workdir / "layouts")
            done.write_text(json.dumps({k: str(v) for k, v in self.layouts.items()}))
        self.weights = self.workdir / "weights"
        self.device, self.amp, self.batch = device, amp, batch
        self.done: dict[str, str] = {}  # part key -> "" (passed) or the error
        self.data: dict[str, dict] = {}  # dataset selection -> prepared data
        self.saved: set[Path] = set()  # checkpoints written for fine-tunes and cascades
        self.written: set[str] = set()  # synthetic weight files written
        self.cascades: dict[str, object] = {}  # a cascade's nets -> their scores (fexa.analysis.cfc_sp_eval)
        self.shapes: dict[str, dict] = {}  # data pipeline -> its items' shapes
        self.steps: list[dict] = []

    # -- one run ---------------------------------------------------------------------------------------
    def config(self, plan: Plan, cell: Cell) -> ExperimentConfig:
        """The run's config as a real run gets it, reading the synthetic layout of its dataset."""
        sets = plan.overrides(cell)
        base = load_config(cell.config, sets)
        if base.data.dataset not in self.layouts:
            raise FexaError(f"no synthetic layout of dataset {base.data.dataset!r} to check with")
        sets += [f"data.root={self.layouts[base.data.dataset]}", f"data.cache={self.workdir / 'cache'}",
                 "train.epochs=1", f"train.batch_size={self.batch or base.train.batch_size}", "data.workers=0",
                 "data.extract_workers=1", "eval.bootstrap=0", "data.samples.test_clips=1", f"train.device={self.device}",
                 f"train.amp={str(self.amp or base.train.amp).lower()}"]
        if base.data.split == "folds":
            sets += ["data.folds=2", f"data.fold={base.data.fold % 2}"]
        if base.data.landmarks:  # a row reading landmark files: synthetic ones in the row's format
            if not cell.landmarks:
                raise FexaError(f"data.landmarks={base.data.landmarks} but the row names no format of its files "
                                "(landmarks: tracks63 or insightface106) to check it with")
            folder = self.workdir / "landmarks" / cell.landmarks
            sets.append(f"data.landmarks={folder}")
            cfg = load_config(cell.config, sets)
            key = _key("landmarks", folder, cfg.data.task, cfg.data.dataset)
            if key not in self.done:
                from fexa.train.data import write_synthetic_landmarks

                write_synthetic_landmarks(cfg, folder, cell.landmarks)
                self.done[key] = ""
        return protocol_runs(load_config(cell.config, sets))[plan.protocol]  # the paper run: every training subject

    def run(self, plan: Plan, cell: Cell, save: Path | None = None) -> None:
        """Check one run (a FexaError or another exception says what failed); ``save``: also write its
        checkpoint there, as the real run would (a fine-tune's parent, a cascade's net)."""
        from fexa.train.data import task_kind
        from fexa.train.inputs import model_inputs

        if cell.parent is not None:
            self.run(plan, cell.parent, save=plan.parent_checkpoint(cell))
        if save in self.saved:  # written for an earlier row: the run is checked, its checkpoint there
            save = None
        cfg = self.config(plan, cell)
        d = to_dict(cfg.data)
        data = self._part(_key("data", {k: v for k, v in d.items() if k != "samples"}, cfg.train.seed),
                          lambda: self._prepare(cfg), keep=self.data)
        kind, num_classes = task_kind(cfg, data)
        keys = model_inputs(cfg.model.name)[0]
        batches_key = _key("batches", {k: v for k, v in d.items() if k not in SELECTION}, keys, kind)
        batches = None
        if batches_key not in self.shapes:
            batches = self._part(batches_key, lambda: self._batches(cfg, data, keys))
            self.shapes[batches_key] = batches["shapes"]
        step_key = _key("step", cfg.model.name, cfg.model.options, kind, cfg.train.amp, cfg.train.channels_last,
                        self.shapes[batches_key])  # the number of classes changes the head alone
        init_key = _key("init", cfg.model.name, cfg.model.options, num_classes, cfg.model.pretrained)
        stepping = step_key not in self.done
        if init_key not in self.done or stepping or save is not None:
            model = self._part(init_key, lambda: self._model(cfg, num_classes), force=stepping or save is not None)
        elif self.done[init_key]:
            raise FexaError(self.done[init_key])
        if stepping:
            batches = batches or self._batches(cfg, data, keys)
            self._part(step_key, lambda: self._step(cfg, cell, kind, data, model, batches), force=True)
        elif self.done[step_key]:
            raise FexaError(self.done[step_key])
        if save is not None:  # the run folder a fine-tune or a cascade reads
            self._save(cfg, kind, num_classes, data, model, save)
        b = cfg.train.batch_size
        shape = (b, num_classes) if kind == "classification" else (b,)  # the predictions the loss takes
        self._part(_key("loss", cfg.train.loss, cfg.train.loss_options, kind, shape),
                   lambda: self._loss(cfg, kind, data, shape))

    def _part(self, key: str, check: Callable, keep: dict | None = None, force: bool = False):
        """Run ``check`` unless the part ``key`` was checked (then raise its error again, if it failed)."""
        if key in self.done and not force:
            if self.done[key]:
                raise FexaError(self.done[key])
            return keep.get(key) if keep is not None else None
        try:
            value = check()
        except Exception as err:  # noqa: BLE001 - every failure becomes the row's one-line reason
            self.done[key] = _one_line(err)
            raise FexaError(self.done[key]) from None
        self.done[key] = ""
        if keep is not None:
            keep[key] = value
        return value

    # -- the parts -------------------------------------------------------------------------------------
    @staticmethod
    def _prepare(cfg: ExperimentConfig) -> dict:
        from fexa.train.data import prepare_data

        data = prepare_data(cfg, progress=False)
        if len(data["train"]) < 2 or data["test"].empty:
            raise FexaError(f"the selection keeps {len(data['train'])} training and {len(data['test'])} test samples")
        return data

    def _batches(self, cfg: ExperimentConfig, data: dict, keys: tuple[str, ...]) -> dict:
        """A training and a test batch of the run's items, finished as the step gets them; their shapes recorded."""
        from fexa.data.loading import make_loader, to_device
        from fexa.data.samples import FaceSamples
        from fexa.train.data import training_samples

        cpu, size = torch.device("cpu"), cfg.train.batch_size
        train_ds = training_samples(cfg, data["train"], keys, 1)
        draw = RandomSampler(train_ds, replacement=True, num_samples=size, generator=torch.Generator().manual_seed(0))
        train = next(iter(make_loader(train_ds, size, 0, cpu, draw, drop_last=True)))  # the few samples, repeated
        test_ds = FaceSamples(data["test"].iloc[:2], keys, cfg.data.samples, False, cfg.train.seed, uint8=True)
        test = next(iter(make_loader(test_ds, 2, 0, cpu)))  # two test samples: a correlation needs two
        finished = {name: to_device(batch, cpu, cfg.data.samples) for name, batch in (("training", train), ("test", test))}
        for name, batch in finished.items():
            bad = [k for k in keys if not torch.isfinite(batch[k].float()).all()]
            if bad:
                raise FexaError(f"the {name} batch's {bad[0]} holds non-finite values")
        shapes = {k: list(finished["training"][k].shape[1:]) for k in keys}
        return {"train": train, "test_ds": test_ds, "shapes": shapes}

    def _model(self, cfg: ExperimentConfig, num_classes: int) -> torch.nn.Module:
        """The model with its initialisation loaded strictly from the synthetic weight files."""
        from fexa.models.weights import ENV
        from fexa.train.build import build_model

        self._write_weights(cfg)
        before = os.environ.get(ENV)
        os.environ[ENV] = str(self.weights)
        try:
            return build_model(cfg, num_classes)
        finally:
            if before is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = before

    def _write_weights(self, cfg: ExperimentConfig) -> None:
        """The files ``model.pretrained`` names, laid out as their authors publish them (fexa runs
        are a fine-tune's parent, written when it is checked)."""
        from fexa.models.synthetic_weights import write_synthetic

        for spec in cfg.model.pretrained.values():
            if isinstance(spec, str) and spec not in self.written:
                write_synthetic(spec, self.weights)
                self.written.add(spec)

    def _step(self, cfg: ExperimentConfig, cell: Cell, kind: str, data: dict, model: torch.nn.Module,
              batches: dict) -> None:
        """One training step and the evaluation of two test samples, scored; the step's time and peak memory recorded."""
        from fexa.train.build import build_training, training_device, training_step
        from fexa.train.data import full_test
        from fexa.train.evaluate import evaluate_samples
        from fexa.train.inputs import model_inputs
        from fexa.train.results import score

        device = training_device(cfg)
        model = model.to(device).train()
        argfn = model_inputs(cfg.model.name)[1]
        criterion, params, opt, _ = build_training(cfg, kind, data, model, device)
        step = training_step(cfg, kind, model, criterion, opt, params, device, argfn)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        loss = float(step(batches["train"]))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ms = (time.perf_counter() - start) * 1e3
        if loss != loss or abs(loss) == float("inf"):
            raise FexaError(f"the training step's loss is {loss}")
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad:
            raise FexaError(f"the training step's gradient of {bad[0]} is not finite")
        peak = round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None
        tested = {**data, "test": batches["test_ds"].table}  # the test samples evaluated, scored
        with warnings.catch_warnings():  # a correlation of two samples from one face is often undefined
            warnings.simplefilter("ignore")
            score(kind, *full_test(kind, tested, evaluate_samples(cfg, model, batches["test_ds"], argfn, device, kind)))
        self.steps.append({"run": cell.name, "model": cfg.model.name, "options": cfg.model.options,
                           "inputs": batches["shapes"], "batch": cfg.train.batch_size, "device": str(device),
                           "amp": cfg.train.amp, "step_ms": round(ms, 1), "peak_mb": peak})
        with open(self.workdir / "steps.jsonl", "a") as f:  # as they come: a check cut short keeps them
            f.write(json.dumps(self.steps[-1]) + "\n")
        model.to("cpu")

    def _save(self, cfg: ExperimentConfig, kind: str, num_classes: int, data: dict, model: torch.nn.Module,
              save: Path) -> None:
        """The run folder a fine-tune or a cascade reads: config, model.json and the checkpoint ``save``."""
        import yaml

        from fexa.train.checkpoint import save_checkpoint
        from fexa.train.trainer import write_model_json

        run = save.parent.parent
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        write_model_json(run, cfg, kind, num_classes, data["train"]["target"], [])
        save_checkpoint(save, model, to_dict(cfg), {"epoch": 0})
        self.saved.add(save)

    @staticmethod
    def _loss(cfg: ExperimentConfig, kind: str, data: dict, shape: tuple) -> None:
        """The run's loss on outputs of its model's shape: a finite value and gradient."""
        from fexa.train.build import build_loss, compute_loss

        info = data["info"]
        criterion = build_loss(cfg, kind, data["train"]["target"].to_numpy("float32"), info.neutral if info else None)
        pred = torch.randn(shape, requires_grad=True)
        n = shape[0]
        y = torch.tensor(np.resize(data["train"]["target"].to_numpy("float32"), n))  # the targets, cycled to n
        feats = torch.randn(n, 8, requires_grad=True)
        loss = compute_loss(cfg, kind, criterion, pred, y, feats)
        loss.backward()
        if not torch.isfinite(loss) or not torch.isfinite(pred.grad).all():
            raise FexaError(f"loss {cfg.train.loss} is not finite on outputs of shape {list(shape)}")


def check_tables(papers: list[str], table_ids: list[str] | None, workdir: str | Path, device: str = "cpu",
                 amp: bool = False, batch: int = 2, sets: list[str] = (), rows: list[str] | None = None,
                 say: Callable[[str], None] = print) -> CheckReport:
    """Check every runnable row of the papers' (chosen) tables (``rows``: only rows of these names)
    in ``workdir``; ``say`` gets one line per row."""
    start = time.perf_counter()
    checker = TableCheck(Path(workdir), device, amp, batch)
    report = CheckReport()
    for paper in papers:
        part = check_rows(checker, paper, table_ids if len(papers) == 1 else None, rows, sets, say)
        report.rows, report.ok = report.rows + part.rows, report.ok + part.ok
        report.failed += part.failed
        report.unsupported += part.unsupported
    report.steps = checker.steps
    report.seconds = time.perf_counter() - start
    return report


def check_rows(checker: TableCheck, paper: str, table_ids: list[str] | None = None, rows: list[str] | None = None,
               sets: list[str] = (), say: Callable[[str], None] = lambda line: None) -> CheckReport:
    """Check a paper's rows with ``checker`` (parts it checked before are not checked again)."""
    start, steps = time.perf_counter(), len(checker.steps)
    tables = load_tables(paper)
    plan = Plan(checker.workdir / "runs" / paper, "paper", list(sets))
    report = CheckReport()
    for t in _chosen(tables, table_ids):
        for row in t.rows:
            if rows and row.name not in rows:
                continue
            where = {"paper": paper, "table": t.id, "row": row.name}
            if row.unsupported:
                report.unsupported.append({**where, "reason": row.unsupported})
                say(f"--   {paper} table {t.id} {row.name!r}: unsupported: {row.unsupported}")
                continue
            row_start = time.perf_counter()
            failures = _check_row(checker, plan, tables, t, row)
            report.rows += 1
            report.ok += not failures
            report.failed += [{**where, "column": c, "error": e} for c, e in failures]
            took = f"({time.perf_counter() - row_start:.1f} s)"
            if failures:
                say(f"FAIL {paper} table {t.id} {row.name!r} [{failures[0][0]}]: {failures[0][1]} {took}")
            else:
                say(f"ok   {paper} table {t.id} {row.name!r} {took}")
    report.steps = checker.steps[steps:]
    report.seconds = time.perf_counter() - start
    return report


def _check_row(checker: TableCheck, plan: Plan, tables: dict[str, Table], t: Table, row) -> list[tuple[str, str]]:
    """(column, error) of every column of ``row`` that fails the check."""
    failures = []
    if row.cascade:
        nets = cascade_cells(tables, t, row)
        runs: dict[str, list[Path]] = {}
        try:
            for role, cells in nets.items():
                runs[role] = []
                for cell in cells:
                    run = plan.out / cell.name
                    checker.run(plan, cell, save=run / "checkpoints" / "best_test")
                    runs[role].append(run)
            window = row.cascade.get("window", 256)
            key = _key("cascade", runs)
            if key not in checker.cascades:  # the nets scored once, at every window the tables ask of them
                checker.cascades[key] = cascade_scores(runs, _windows(tables, nets))
            cascade_f1(checker.cascades[key], nets, window)
        except Exception as err:  # noqa: BLE001
            failures.append((CASCADE_COLUMN, _one_line(err)))
        return failures
    for c in t.columns:
        for cell in t.cells(row, c):
            try:
                checker.run(plan, cell)
            except Exception as err:  # noqa: BLE001
                failures.append((c["name"], _one_line(err)))
                break
    return failures


def _windows(tables: dict[str, Table], nets: dict[str, list[Cell]]) -> list[int]:
    """Every Smooth Predicting window the tables' cascade rows of these nets use."""
    names = {role: [c.name for c in cells] for role, cells in nets.items()}
    return sorted({r.cascade.get("window", 256) for t in tables.values() for r in t.rows if r.cascade
                   and {role: [c.name for c in cells] for role, cells in cascade_cells(tables, t, r).items()} == names})
