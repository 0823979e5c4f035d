"""Evaluating a run: predictions of a sample set, the runs each evaluation protocol needs, and a
finished run's results (paper and/or honest protocol, bootstrap CIs) written beside its curves."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn
from fexa.progress import tqdm

from fexa import metrics as M
from fexa.data.loading import make_loader, to_device
from fexa.data.samples import FaceSamples
from fexa.errors import FexaError
from fexa.train.build import build_model, training_device
from fexa.train.checkpoint import load_checkpoint
from fexa.train.config import ExperimentConfig
from fexa.train.data import class_names, dataset_table, full_test, prepare_data, task_kind, whole_test_list
from fexa.train.inputs import model_inputs, split_output
from fexa.train.results import (PROTOCOL_NOTES, combine_protocols, initialisation, metric_functions, normal_level_of,
                                read_predictions, save_predictions, score, selection_metric, write_results)


@torch.no_grad()
def predict(model: nn.Module, ds: FaceSamples, argfn, device: torch.device, kind: str, batch_size: int,
            amp: bool = False, workers: int = 0, channels_last: bool = False, desc: str = "") -> np.ndarray:
    """Per-row predictions of ``ds`` (test clips averaged): [N] scores or [N, C] probabilities;
    ``desc``: a progress bar over its batches with this name."""
    model.eval()
    loader = make_loader(ds, batch_size, workers, device, persistent=False)
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not desc):
        batch = to_device(batch, device, ds.cfg, channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out, _ = split_output(model(*argfn(batch)))
        out = out.float()
        val = out.softmax(dim=1) if kind == "classification" else out.reshape(-1)
        for i, v in zip(batch["index"].tolist(), val.cpu().numpy()):
            sums[i] = sums.get(i, 0) + v
            counts[i] = counts.get(i, 0) + 1
    return np.stack([sums[i] / counts[i] for i in range(len(ds.table))])


def evaluate_samples(cfg: ExperimentConfig, model: nn.Module, ds: FaceSamples, argfn, device: torch.device,
              kind: str, desc: str = "") -> np.ndarray:
    """:func:`predict` with the run's batch size, precision, workers and memory layout."""
    return predict(model, ds, argfn, device, kind, max(1, cfg.train.batch_size), cfg.train.amp, cfg.data.workers,
                   cfg.train.channels_last, desc)


def protocol_runs(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """The runs ``eval.protocol`` needs, by protocol: one (its folder out/name), or for ``both`` on a
    dataset without a validation set of its own a paper and an honest run (out/name/paper, .../honest)."""
    p = cfg.eval.protocol
    paper = replace(cfg, data=replace(cfg.data, val_fraction=0.0), eval=replace(cfg.eval, protocol="paper"))
    if p == "paper":  # every training subject trains (a validation set of the dataset's own changes nothing)
        return {p: paper}
    if cfg.data.split == "fixed" and (dataset_table(cfg)["fold"].astype(str) == "val").any():
        return {p: cfg}  # the dataset's own validation set: every training subject trains, one run gives both
    if cfg.data.val_fraction <= 0:
        raise FexaError(f"eval.protocol={p} needs held-out validation subjects, but data.val_fraction=0 and dataset "
                        f"{cfg.data.dataset!r} has no validation set of its own: set data.val_fraction (e.g. 0.2) "
                        "or eval.protocol=paper")
    if p == "honest":
        return {p: cfg}
    honest = replace(cfg, eval=replace(cfg.eval, protocol="honest"))
    return {"paper": replace(paper, name=f"{cfg.name}/paper"), "honest": replace(honest, name=f"{cfg.name}/honest")}


def finish_run(cfg, run, model, test_ds, argfn, device, kind, metric, data, history) -> dict:
    """The protocols ``eval.protocol`` asks of this run, with bootstrap CIs -> results.{json,csv,md}
    and curves.png. The paper protocol is reported only when every training subject trained (no
    held-out subjects), the honest one only when there was a validation set."""
    hist = pd.DataFrame(history)
    table = whole_test_list(data)
    y = table["target"].to_numpy()
    ordinal = normal_level_of(cfg)
    classes = class_names(cfg.data.dataset, cfg.data.target_map, task_kind(cfg, data)[1])
    fn = metric_functions(kind, ordinal)[metric]
    groups = table["subject"].to_numpy()

    def protocol(name: str, pred: np.ndarray, epoch: int) -> dict:
        v, lo, hi = M.bootstrap_ci(fn, y, pred, cfg.eval.bootstrap, seed=cfg.train.seed, groups=groups)
        return {"epoch": epoch, "metric": metric, "value": v, "ci_low": lo, "ci_high": hi, "note": PROTOCOL_NOTES[name],
                "run": ".", "train_samples": len(data["train"]), "val_samples": len(data["val"]),
                **score(kind, table, pred, ordinal, classes)}

    results = {"name": cfg.name, "model": cfg.model.name, "dataset": cfg.data.dataset, "task": cfg.data.task,
               "protocol": cfg.eval.protocol, "test_samples": len(table), "test_unusable": len(data["unusable_test"]),
               "test_subjects": int(table["subject"].nunique()), "initialisation": initialisation(cfg, run)}
    if cfg.eval.protocol in ("paper", "both") and not data["held_out"]:
        evaluated = hist.dropna(subset=[f"test_{metric}"])
        best = evaluated[f"test_{metric}"]
        epoch = int(evaluated.loc[best.idxmin() if metric in ("mae", "rmse") else best.idxmax(), "epoch"])
        pred = read_predictions(run / "predictions" / f"epoch_{epoch:03d}.csv", kind)
        if len(pred) != len(table):
            raise FexaError(f"{run / 'predictions'} holds {len(pred)} test predictions for {len(table)} test samples: "
                            "the run was made with an older fexa or other data; train it again (--overwrite)")
        results["paper"] = protocol("paper", pred, epoch)
    best_val = run / "checkpoints" / "best_val"
    if cfg.eval.protocol in ("honest", "both") and best_val.is_dir():
        weights, state = load_checkpoint(best_val)
        model.load_state_dict(weights)
        _, pred = full_test(kind, data, evaluate_samples(cfg, model, test_ds, argfn, device, kind))
        save_predictions(run / "predictions" / "honest.csv", table, pred, kind)
        results["honest"] = protocol("honest", pred, int(state["epoch"]))
    write_results(run, results)
    from fexa.viz.curves import plot_training_curves

    plot_training_curves(hist, run / "curves.png", metric)
    return results


def evaluate_run(cfg: ExperimentConfig, progress: bool = True) -> dict:
    """Recompute a finished run's results (its protocols) from its checkpoints and predictions; for
    ``both`` as two runs, each run's and then the pair's."""
    runs = protocol_runs(cfg)
    if len(runs) > 1:
        results = combine_protocols(cfg, {p: evaluate_run(sub, progress) for p, sub in runs.items()})
        write_results(cfg.run_dir, results)
        return results
    cfg = next(iter(runs.values()))
    run = cfg.run_dir
    if not (run / "metrics.csv").is_file():
        raise FexaError(f"{run} holds no finished run to evaluate (no metrics.csv); train it first")
    device = training_device(cfg)
    data = prepare_data(cfg, progress=progress)
    kind, num_classes = task_kind(cfg, data)
    keys, argfn = model_inputs(cfg.model.name)
    model = build_model(cfg, num_classes).to(device)
    test_ds = FaceSamples(data["test"], keys, cfg.data.samples, False, cfg.train.seed, uint8=True)
    metric = selection_metric(cfg, kind)
    history = pd.read_csv(run / "metrics.csv").to_dict("records")
    return finish_run(cfg, run, model, test_ds, argfn, device, kind, metric, data, history)
