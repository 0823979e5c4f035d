"""``fexa train``: one experiment from a config, on one process or many (torchrun + DDP).

Run folder (``out/name``): ``config.yaml`` (resolved), ``splits.csv`` (which sample went where),
``metrics.csv`` and TensorBoard events (per epoch), ``checkpoints/{last,best_val,best_test}/`` (weights as
safetensors, the config as JSON, optimiser/scheduler/RNG state beside them; written atomically
every epoch), ``predictions/epoch_NNN.csv`` (test predictions per epoch), and at the end
``results.{csv,json,md}`` and ``curves.png``.

Two evaluation protocols (``eval.protocol``): **paper** (trained on every training subject, the best
test epoch, as the authors selected: optimistic) and **honest** (``data.val_fraction`` of the
training subjects held out, the epoch with the best validation score; the test set is evaluated
once, with those weights). A paper run keeps the best test epoch's weights in ``checkpoints/best_test``
(the authors' ``model_best.pth``; a fine-tune or cascade of the paper protocol starts from them). ``both`` trains the two as runs ``out/name/paper`` and ``out/name/honest``
(sharing the extract cache and store) and reports them side by side in ``out/name/results.*``; a
dataset with its own validation set gives both from one run. All come with bootstrap CIs.
"""

from __future__ import annotations

import random
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DistributedSampler
from fexa.progress import tqdm

from fexa.data.loading import BalancedSampler, RepeatFactorSampler, make_loader
from fexa.data.samples import FaceSamples
from fexa.errors import FexaError
from fexa.io.atomic import write_json, write_text
from fexa.models.weights import resolve_pretrained
from fexa.train.build import build_training, training_device, training_model, training_step
from fexa.train.checkpoint import resume_point, save_checkpoint
from fexa.train.config import ExperimentConfig, to_dict
from fexa.train.distributed import barrier, init_distributed, mean_over_processes
from fexa.train.data import class_names, full_test, prepare_data, task_kind, training_samples, whole_test_list
from fexa.train.evaluate import evaluate_samples, finish_run, protocol_runs
from fexa.train.inputs import model_inputs
from fexa.train.runlock import clear_run, hold_run
from fexa.train.results import combine_protocols, normal_level_of, score, save_predictions, selection_metric, write_results

__all__ = ["train", "train_run"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _better(metric: str, a: float, b: float | None) -> bool:
    if b is None or not np.isfinite(b):
        return True
    return a < b if metric in ("mae", "rmse") else a > b


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def _has_checkpoints(run: Path) -> bool:
    return (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())


def train(cfg: ExperimentConfig, resume: bool = False, progress: bool = True, resume_from: str | None = None,
          overwrite: bool = False, config_hint: str = "CONFIG") -> dict:
    """Train and evaluate ``cfg`` under its ``eval.protocol``; return the results (rank 0; other
    ranks return {}).

    ``resume``: continue from the last intact checkpoint (``last``, else ``previous``), or from
    ``resume_from`` (e.g. ``best_val``); ``overwrite``: delete an existing run first.
    ``config_hint``: how the user named the config, for the commands suggested in errors. With two
    runs (``both``), resuming continues the started ones and starts the other. A run without a
    checkpoint yet (killed in its first epoch) is started from the beginning, saying so. Rank 0 holds
    the run folder's lock (:mod:`fexa.train.runlock`) while it trains."""
    if resume and overwrite:
        raise FexaError("--resume and --overwrite exclude each other: continue the run, or start it over")
    resolve_pretrained(cfg.model.pretrained)  # a missing weights file is said before any data is prepared
    runs = protocol_runs(cfg)
    rank, world = init_distributed()
    if len(runs) == 1:
        results = train_run(next(iter(runs.values())), resume, progress, resume_from, overwrite, config_hint)
    else:
        parent = cfg.run_dir
        with hold_run(parent, config_hint) if rank == 0 else nullcontext():
            if rank == 0:
                if overwrite:
                    clear_run(parent)
                write_text(parent / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
            barrier(world)
            resume = resume or resume_from is not None
            parts = {}
            for p, sub in runs.items():
                since = resume_from if resume_from and (sub.run_dir / "checkpoints" / resume_from).is_dir() else None
                parts[p] = train_run(sub, resume, progress, since, False, config_hint)
            results = {}
            if rank == 0:
                results = combine_protocols(cfg, parts)
                write_results(parent, results)
    if world > 1:
        dist.destroy_process_group()
    return results


def write_model_json(run: Path, cfg: ExperimentConfig, kind: str, num_classes: int, targets: pd.Series,
                     init: list[str]) -> None:
    """``run/model.json``: what ``fexa analyze --model`` and the cascade need to use the run's weights."""
    classes = class_names(cfg.data.dataset, cfg.data.target_map, num_classes) if kind == "classification" else []
    write_json(run / "model.json", {"name": cfg.model.name, "kind": kind, "num_classes": num_classes,
                                    "classes": classes, "inputs": list(model_inputs(cfg.model.name)[0]),
                                    "target_range": [float(targets.min()), float(targets.max())],
                                    "initialisation": init})


def train_run(cfg: ExperimentConfig, resume: bool = False, progress: bool = True, resume_from: str | None = None,
              overwrite: bool = False, config_hint: str = "CONFIG") -> dict:
    """Train and evaluate one run in ``cfg.run_dir`` (see :func:`train`), holding its lock on rank 0."""
    rank, world = init_distributed()
    with hold_run(cfg.run_dir, config_hint) if rank == 0 else nullcontext():
        return _train_held_run(cfg, rank, world, resume, progress, resume_from, overwrite, config_hint)


def _train_held_run(cfg: ExperimentConfig, rank: int, world: int, resume: bool, progress: bool,
                    resume_from: str | None, overwrite: bool, config_hint: str) -> dict:
    """:func:`train_run`'s work, once rank 0 holds the run folder."""
    device = training_device(cfg, rank)
    _seed_everything(cfg.train.seed)
    run = cfg.run_dir
    checkpoints = run / "checkpoints"
    last = checkpoints / "last"
    resume = resume or resume_from is not None
    started = not overwrite and _has_checkpoints(run)
    if resume and not started:  # killed before its first checkpoint: a job that always resumes still recovers
        if rank == 0:
            print(f"fexa: warning: nothing to resume in {run} (no checkpoint yet): training it from the beginning",
                  file=sys.stderr)
        resume, overwrite = False, True  # its partial files (metrics, events, predictions) are replaced
    if rank == 0:
        if overwrite:
            clear_run(run)
        if started and not resume:
            raise FexaError(f"{run} already holds a run: continue it with `fexa train {config_hint} --resume`, start "
                            f"it over with `fexa train {config_hint} --overwrite`, or give another name/out")
        run.mkdir(parents=True, exist_ok=True)
        write_text(run / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    data = prepare_data(cfg, rank, world, progress and rank == 0)
    kind, num_classes = task_kind(cfg, data)
    keys, argfn = model_inputs(cfg.model.name)
    sc = cfg.data.samples
    train_ds = training_samples(cfg, data["train"], keys)
    val_ds = FaceSamples(data["val"], keys, sc, False, cfg.train.seed, uint8=True) if len(data["val"]) else None
    test_ds = FaceSamples(data["test"], keys, sc, False, cfg.train.seed, uint8=True)
    init: list[str] = []  # what each weights source the model starts from gave it
    model = training_model(cfg, num_classes, device, init)
    if rank == 0:
        for line in init:
            print(f"fexa: initialised from {line}", file=sys.stderr)
        write_model_json(run, cfg, kind, num_classes, data["train"]["target"], init)
        parts = [df.assign(split=k, usable=df["entry"].notna())[["id", "subject", "target", "task", "split", "usable"]]
                 for k, df in (("train", data["train"]), ("val", data["val"]), ("test", whole_test_list(data)))]
        write_text(run / "splits.csv", pd.concat(parts).to_csv(index=False))
        if len(data["dropped"]):
            write_text(run / "dropped.csv", data["dropped"].to_csv(index=False))
    if cfg.train.batch_size % world:
        raise FexaError(f"train.batch_size {cfg.train.batch_size} must be divisible by the {world} processes")
    if cfg.train.sampler != "uniform" and kind != "classification":
        raise FexaError(f"train.sampler={cfg.train.sampler} oversamples rare classes: it needs a classification dataset")
    if cfg.train.sampler == "balanced":
        sampler = BalancedSampler(train_ds, world, rank, cfg.train.seed)
    elif cfg.train.sampler == "repeat_factor":
        sampler = RepeatFactorSampler(train_ds, cfg.train.repeat_threshold, world, rank, cfg.train.seed)
    else:
        sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.train.seed)
    loader = make_loader(train_ds, cfg.train.batch_size // world, cfg.data.workers, device, sampler, cfg.train.drop_last)

    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    criterion, params, opt, sched = build_training(cfg, kind, data, model, device)
    step = training_step(cfg, kind, net, criterion, opt, params, device, argfn)
    metric, ordinal = selection_metric(cfg, kind), normal_level_of(cfg)
    classes = class_names(cfg.data.dataset, cfg.data.target_map, num_classes)  # names the per-class metrics

    start, history, best_val, best_test = 0, [], None, None
    keep_best_test = cfg.eval.protocol == "paper" and not data["held_out"]  # the authors' model_best.pth
    if resume:
        name, weights, state, skipped = resume_point(checkpoints, resume_from, config_hint)
        if skipped and rank == 0:
            print(f"fexa: warning: {'; '.join(skipped)}; resuming from checkpoint {name!r} (epoch {state['epoch'] + 1})",
                  file=sys.stderr)
        model.load_state_dict(weights)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if isinstance(criterion, nn.Module) and "criterion" in state:
            criterion.load_state_dict(state["criterion"])
        _set_rng_state(state["rng"])
        start, history, best_val = state["epoch"] + 1, state["history"], state["best_val"]
        best_test = state.get("best_test")

    writer = None
    if rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run / "tensorboard"))
    bar = tqdm(range(start, cfg.train.epochs), desc=cfg.name, unit="epoch", disable=not progress or rank != 0,
               initial=start, total=cfg.train.epochs)
    for epoch in bar:
        sampler.set_epoch(epoch)
        train_ds.set_epoch(epoch)
        net.train()
        losses, improved, improved_test = [], False, False
        steps = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", leave=False, disable=not progress or rank != 0)
        for batch in steps:
            losses.append(step(batch))  # no per-step device sync: read once per epoch
        sched.step()
        losses = torch.stack(losses).float().cpu().tolist() if losses else []
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": mean_over_processes(losses, world)}
        if rank == 0 and ((epoch + 1) % cfg.eval.every == 0 or epoch + 1 == cfg.train.epochs):
            shown = "test set" if progress else ""
            test_table, test_pred = full_test(kind, data, evaluate_samples(cfg, model, test_ds, argfn, device, kind, shown))
            row.update({f"test_{k}": v for k, v in score(kind, test_table, test_pred, ordinal, classes).items()})
            save_predictions(run / "predictions" / f"epoch_{epoch:03d}.csv", test_table, test_pred, kind)
            if keep_best_test:
                improved_test = _better(metric, row[f"test_{metric}"], best_test)
                best_test = row[f"test_{metric}"] if improved_test else best_test
            if val_ds is not None:
                val_pred = evaluate_samples(cfg, model, val_ds, argfn, device, kind, "validation set" if progress else "")
                row.update({f"val_{k}": v for k, v in score(kind, data["val"], val_pred, ordinal, classes).items()})
                improved = _better(metric, row[f"val_{metric}"], best_val)
                best_val = row[f"val_{metric}"] if improved else best_val
            for k, v in row.items():
                if k != "epoch":
                    writer.add_scalar(k, v, epoch)
            # the test set is for the end: the bar shows what the run is steered by
            shown = f"  val {metric} {row[f'val_{metric}']:.3f}" if f"val_{metric}" in row else ""
            bar.set_postfix_str(f"loss {row['train_loss']:.3f}{shown}")
        history.append(row)
        if rank == 0:
            write_text(run / "metrics.csv", pd.DataFrame(history).to_csv(index=False))
            state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": _rng_state(),
                     "epoch": epoch, "history": history, "best_val": best_val, "best_test": best_test}
            if isinstance(criterion, nn.Module):
                state["criterion"] = criterion.state_dict()
            if val_ds is not None and improved:  # a full state: `--resume --from best_val` continues from it
                save_checkpoint(checkpoints / "best_val", model, to_dict(cfg), state)
            if improved_test:  # the paper protocol's weights: the best test epoch, as the authors kept them
                save_checkpoint(checkpoints / "best_test", model, to_dict(cfg), state)
            save_checkpoint(last, model, to_dict(cfg), state, keep_previous=True)
        barrier(world)
    if writer is not None:
        writer.close()
    results = {}
    if rank == 0:
        results = finish_run(cfg, run, model, test_ds, argfn, device, kind, metric, data, history)
    return results
