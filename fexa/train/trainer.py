"""``fexa train``: one experiment from a config, on one process or many (torchrun + DDP).

Run folder (``out/name``): ``config.yaml`` (resolved), ``splits.csv`` (which sample went where),
``metrics.csv`` and TensorBoard events (per epoch), ``checkpoints/{last,best_val}/`` (weights as
safetensors, the config as JSON, optimiser/scheduler/RNG state beside them; written atomically
every epoch), ``predictions/epoch_NNN.csv`` (test predictions per epoch), and at the end
``results.{csv,json,md}`` and ``curves.png``.

Two evaluation protocols (``eval.protocol``): **paper** (trained on every training subject, the best
test epoch, as the authors selected: optimistic) and **honest** (``data.val_fraction`` of the
training subjects held out, the epoch with the best validation score; the test set is evaluated
once, with those weights). ``both`` trains the two as runs ``out/name/paper`` and ``out/name/honest``
(sharing the extract cache and store) and reports them side by side in ``out/name/results.*``; a
dataset with its own validation set gives both from one run. All come with bootstrap CIs.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from fexa import losses as L
from fexa import metrics as M
from fexa.data.adapters import DATASETS, load_dataset
from fexa.data.loading import BalancedSampler, RepeatFactorSampler, make_loader, to_device
from fexa.data.samples import FaceSamples, link_cache, mirror_permutation
from fexa.data.store import StoreConfig, StoredEntry
from fexa.data.splits import (assert_subject_disjoint, file_folds, fixed_split, read_fold_file, split_fold,
                              subject_folds, validation_split)
from fexa.errors import FexaError
from fexa.face.landmarks import get_scheme
from fexa.io.atomic import write_json, write_text
from fexa.models import create_model, make_config
from fexa.models.checkpoints import load_reference_weights
from fexa.models.weights import resolve_pretrained
from fexa.train.checkpoint import load_checkpoint, read_weights, resume_point, save_checkpoint
from fexa.train.config import ExperimentConfig, from_scratch, to_dict
from fexa.train.inputs import model_inputs, split_output
from fexa.train.results import (PROTOCOL_NOTES, combine_protocols, initialisation, metric_functions, normal_level_of,
                                read_predictions, save_predictions, score, selection_metric, write_results)

REGRESSION_LOSSES = ("bmc", "gai", "mse", "focal_mse", "focal_l1")
CLASSIFICATION_LOSSES = ("ce", "focal", "compact_softmax", "pcda")


# -- distributed helpers ------------------------------------------------------------------------------
def _dist() -> tuple[int, int]:
    """(rank, world size); initialises torch.distributed under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def _barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def _mean_over_processes(values: list[float], world: int) -> float:
    """The mean of every process's values (each process logs the same number)."""
    t = torch.tensor([sum(values), len(values)], dtype=torch.float64)
    if world > 1:
        dist.all_reduce(t)
    return float(t[0] / t[1]) if t[1] else float("nan")


def training_device(cfg: ExperimentConfig, rank: int = 0) -> torch.device:
    """The device ``train.device`` names ('auto': this process's GPU, else the CPU); on CUDA,
    cuDNN picks its fastest kernels for the fixed input sizes when ``train.cudnn_benchmark``."""
    if cfg.train.device != "auto":
        device = torch.device(cfg.train.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", rank % torch.cuda.device_count())
    else:
        device = torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark
    return device


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- data ---------------------------------------------------------------------------------------------
def dataset_table(cfg: ExperimentConfig) -> pd.DataFrame:
    """The config's samples: the dataset's table, its task, target map and limit applied."""
    d = cfg.data
    table = load_dataset(d.dataset, d.root, **d.options)
    if d.task:
        table = table[table["task"] == d.task]
        if table.empty:
            tasks = sorted(set(load_dataset(d.dataset, d.root, **d.options)["task"]))
            raise FexaError(f"no samples of task {d.task!r}; tasks: {tasks}")
    if d.target_map:
        table = table.assign(target=table["target"].map(lambda t: d.target_map[int(t)]))
        table = table[table["target"] >= 0]
    if d.limit:
        table = table.iloc[: d.limit]
    return table


def prepare_data(cfg: ExperimentConfig, rank: int = 0, world: int = 1, progress: bool = True) -> dict:
    """Load, link and split the dataset: {'train', 'val', 'test' (usable samples), 'unusable_test',
    'dropped', 'info', 'held_out' (whether 'val' are training subjects held out)}."""
    d = cfg.data
    info = DATASETS.get(d.dataset)
    table = dataset_table(cfg)
    table, absent = _check_media(table, d.allow_missing)
    from fexa.extract import ExtractConfig  # the face models' module: not where a worker imports this
    from fexa.face.detector import TrackerConfig

    store = StoreConfig(d.store_quality)
    extract = ExtractConfig(tracker=TrackerConfig(whole_image_fallback=True)) if info and info.face_crops else None
    if rank == 0:  # one process extracts and builds the training store; the others then find both complete
        linked, dropped = link_cache(table, d.cache, extract, workers=d.extract_workers, progress=progress, store=store)
    _barrier(world)
    if rank != 0:
        linked, dropped = link_cache(table, d.cache, extract, progress=False, store=store)
    dropped = pd.concat([absent, dropped], ignore_index=True)
    # every sample is split, usable or not: the splits do not depend on face detection, and the test
    # list stays the dataset's whole list (its unusable samples are scored as wrong, see full_test)
    rows = pd.concat([linked, dropped], ignore_index=True)
    val = rows.iloc[0:0]
    if d.split == "fixed":
        train, val, test = fixed_split(rows)
    elif d.split == "folds":
        folds = subject_folds(rows, d.folds, cfg.train.seed, d.stratify or None)
        train, test = split_fold(rows, folds, d.fold)
    elif d.split == "file":
        train, test = published_fold(rows, d.fold_file, d.fold, rank)
    else:
        raise FexaError(f"data.split must be 'fixed', 'folds' or 'file', got {d.split!r}")
    held_out = val.empty and d.val_fraction > 0
    if held_out:  # no validation set of the dataset's own: hold out training subjects
        train, val = validation_split(train, d.val_fraction, cfg.train.seed, d.stratify or None)
        assert_subject_disjoint(train, val, "the validation split")
    usable = {k: df[df["entry"].notna()].drop(columns=["status", "reason"], errors="ignore").reset_index(drop=True)
              for k, df in (("train", train), ("val", val), ("test", test))}
    unusable_test = test[test["entry"].isna()].reset_index(drop=True)
    if len(dropped) and rank == 0:
        counts = ", ".join(f"{v} {k}" for k, v in dropped["status"].value_counts().items())
        print(f"fexa: warning: {len(dropped)} of {len(rows)} samples have no usable face or media ({counts}); "
              f"{len(unusable_test)} of them are test samples, scored as wrong predictions; all are listed in "
              f"{cfg.run_dir / 'dropped.csv'}", file=sys.stderr)
    if usable["train"].empty or usable["test"].empty:
        raise FexaError(f"empty split: {len(usable['train'])} training and {len(usable['test'])} test samples "
                        f"with a usable face")
    return {**usable, "unusable_test": unusable_test, "dropped": dropped, "info": info, "held_out": held_out}


def published_fold(rows: pd.DataFrame, fold_file: str, fold: int, rank: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) of fold ``fold`` of the authors' published fold lists (``data.fold_file``).
    Subjects in no list train in every fold, as in the authors' code; both kinds of mismatch are
    reported, since they change what the folds test."""
    lists = read_fold_file(fold_file)
    if fold not in lists:
        raise FexaError(f"data.fold {fold} is not in {fold_file}: it has folds 0..{len(lists) - 1}")
    folds, unlisted, unmatched = file_folds(rows, lists)
    if rank == 0 and (unlisted or unmatched):
        print(f"fexa: warning: {fold_file}: subjects in no fold list (they train in every fold): {unlisted or 'none'}; "
              f"listed names matching no subject: {[repr(s) for s in unmatched] or 'none'}", file=sys.stderr)
    return split_fold(rows, folds, fold)


def whole_test_list(data: dict) -> pd.DataFrame:
    """The dataset's whole test list: the samples with a usable face (``data["test"]``, which the
    model sees), then those without a usable face or media (``data["unusable_test"]``)."""
    missing = data["unusable_test"]
    return pd.concat([data["test"], missing[data["test"].columns.intersection(missing.columns)]], ignore_index=True)


def full_test(kind: str, data: dict, pred: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """(:func:`whole_test_list`, predictions for it): the model's for the usable samples, and failures
    for the others: no class (NaN scores, counted wrong by every metric) or, for scores, the
    training mean (a prediction without information)."""
    n = len(data["unusable_test"])
    if kind == "classification":
        fill = np.full((n, pred.shape[1]), np.nan)
    else:
        fill = np.full(n, float(data["train"]["target"].mean()))
    return whole_test_list(data), np.concatenate([pred, fill.astype(pred.dtype)])


def _check_media(table: pd.DataFrame, allow_missing: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows whose media exist, rows whose media do not). Missing media are an error listing the
    first few unless ``allow_missing``."""
    exists = table["path"].map(os.path.exists)
    absent = table[~exists].assign(status="missing", reason="media not found")
    if len(absent):
        examples = "; ".join(f"{r.id}: {r.path}" for r in absent.head(3).itertuples())
        what = f"{len(absent)} of {len(table)} samples name media that do not exist (e.g. {examples})"
        if not allow_missing:
            raise FexaError(f"{what}: fix the labels, or drop them with --allow-missing (data.allow_missing=true)")
    return table[exists], absent


def class_names(dataset: str, target_map: list[int], num_classes: int) -> list[str]:
    """The trained classes' names: the dataset's, or after a ``target_map`` the names mapped onto
    each target joined by '/' (e.g. CFC-SP's coarse 'Anger/Disgust/Fear/Sadness'); [] if unknown."""
    names = DATASETS[dataset].classes if dataset in DATASETS else ()
    if target_map and len(names) == len(target_map):
        return ["/".join(n for n, t in zip(names, target_map) if t == k) for k in range(num_classes)]
    return list(names) if len(names) == num_classes else []


def task_kind(cfg: ExperimentConfig, data: dict) -> tuple[str, int]:
    """('regression', 0) or ('classification', number of classes) for the prepared data."""
    info = data["info"]
    kind = info.kind if info else "regression"
    if cfg.data.dataset == "manifest" and cfg.train.loss in CLASSIFICATION_LOSSES and not cfg.data.scores_as_classes:
        kind = "classification"  # a manifest trained with a class loss holds classes, unless its scores are levels
    if cfg.data.scores_as_classes:
        if kind != "regression":
            raise FexaError(f"data.scores_as_classes turns scores into classes, but {cfg.data.dataset} is already "
                            "a classification dataset")
        return "classification", score_levels(data)
    if kind == "regression":
        return kind, 0
    if cfg.data.target_map:
        return kind, len(set(cfg.data.target_map) - {-1})
    if info is not None and info.classes:
        return kind, len(info.classes)
    return kind, int(data["train"]["target"].max()) + 1


def score_levels(data: dict) -> int:
    """The number of classes when integer scores 0..K-1 are trained as classes: the highest score of
    any split + 1 (a level absent from training still has its class). Non-integer scores are refused."""
    y = pd.concat([data[k]["target"] for k in ("train", "val", "test", "unusable_test")]).to_numpy(float)
    if (y < 0).any() or not np.array_equal(y, np.round(y)):
        bad = y[(y < 0) | (y != np.round(y))][0]
        raise FexaError(f"data.scores_as_classes needs integer scores 0, 1, 2...; this dataset has {bad:g}")
    return int(y.max()) + 1


def mirror_of(train: pd.DataFrame) -> np.ndarray:
    """Left/right permutation of the heatmap73 points, from the training set's mean shape."""
    shapes = []
    for entry in train["entry"].iloc[:50]:
        e = StoredEntry(entry)
        shapes.append(e.heatmap73[e.usable_frames[0]])
    return mirror_permutation(np.mean(shapes, axis=0))


# -- model, loss, optimiser -------------------------------------------------------------------------
def training_samples(cfg: ExperimentConfig, table: pd.DataFrame, keys: tuple[str, ...], repeats: int | None = None,
                     **options) -> FaceSamples:
    """The training items of ``table`` for a model taking ``keys``: the config's sampling and seed,
    uint8 batches finished on the device, image items mirrored by the table's mean face;
    ``repeats`` (default ``train.repeats``) passes per epoch, ``options`` to FaceSamples."""
    mirror = mirror_of(table) if "image" in keys else None
    repeats = cfg.train.repeats if repeats is None else repeats
    return FaceSamples(table, keys, cfg.data.samples, True, cfg.train.seed, repeats, mirror, uint8=True, **options)


def training_model(cfg: ExperimentConfig, num_classes: int, device: torch.device,
                   report: list[str] | None = None) -> nn.Module:
    """:func:`build_model` on ``device`` in training mode, channels-last when ``train.channels_last``."""
    model = build_model(cfg, num_classes, report).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.train()


def class_heads(cfg: ExperimentConfig, num_classes: int, sub: str) -> set[str]:
    """Keys of submodule ``sub``'s state dict whose shape follows the number of classes (the
    classifier), found by building the model with one class more on the meta device (no memory)."""
    with torch.device("meta"):
        bare = from_scratch(cfg)
        a, b = (build_model(bare, n) for n in (num_classes, num_classes + 1))
    sa = (a.get_submodule(sub) if sub else a).state_dict()
    sb = (b.get_submodule(sub) if sub else b).state_dict()
    return {k for k in sa if sa[k].shape != sb[k].shape}


def load_fexa_weights(module: nn.Module, spec: dict, heads: set[str], classes: list[str]) -> str:
    """Load a fexa run's checkpoint (``spec["path"]``, a checkpoint folder) into ``module``: every
    tensor of the same name and shape, except the classifier (``heads``), whose rows are copied by
    class name from the source run's classes; rows of classes it lacks stay newly initialised.
    Returns one line saying what was done with the classifier."""
    folder = Path(spec["path"])
    state = read_weights(folder / "model.safetensors")
    prefix = spec.get("prefix", "")
    own = module.state_dict()
    state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    body = {k: v for k, v in state.items() if k in own and k not in heads and own[k].shape == v.shape}
    module.load_state_dict(body, strict=False)
    found = [k for k in heads if k in state]
    if not found:
        return f"{folder}: no classifier loaded (it has none under these names)"
    try:
        data = json.loads((folder / "config.json").read_text()).get("data", {})
        source = [c.lower() for c in class_names(data.get("dataset", ""), data.get("target_map") or [],
                                                 len(state[found[0]]))]
    except (OSError, ValueError, AttributeError):
        source = []
    classes = [c.lower() for c in classes]
    if not source or not classes:
        return f"{folder}: classifier not loaded (class names unknown on one side): newly initialised"
    bad = [k for k in found if state[k].shape[1:] != own[k].shape[1:] or state[k].shape[0] != len(source)]
    if bad:
        return f"{folder}: classifier not loaded ({bad[0]} has shape {tuple(state[bad[0]].shape)}): newly initialised"
    pairs = [(i, source.index(c)) for i, c in enumerate(classes) if c in source]
    with torch.no_grad():
        for k in found:
            for i, j in pairs:
                own[k][i].copy_(state[k][j])  # state-dict tensors share the parameters' storage
    missing = [c for c in classes if c not in source]
    return (f"{folder}: classifier rows loaded by class name ({', '.join(classes[i] for i, _ in pairs)})"
            + (f"; newly initialised: {', '.join(missing)}" if missing else ""))


def build_model(cfg: ExperimentConfig, num_classes: int, report: list[str] | None = None) -> nn.Module:
    """The config's model with its pretrained weights; one line per weights source loaded (for fexa
    checkpoints, what their classifier gave) is appended to ``report``."""
    options = dict(cfg.model.options)
    fields = make_config(cfg.model.name).__dataclass_fields__
    if num_classes and "num_classes" in fields and "num_classes" not in options:
        options["num_classes"] = num_classes
    if "num_landmarks" in fields and "num_landmarks" not in options:
        options["num_landmarks"] = get_scheme("heatmap73").num_points
    model = create_model(cfg.model.name, **options)
    for sub, spec in resolve_pretrained(cfg.model.pretrained).items():
        module = model.get_submodule(sub) if sub else model
        if spec["source"] == "fexa":  # a fexa run's checkpoint folder, e.g. runs/stt_dfew/checkpoints/best_val
            heads = class_heads(cfg, num_classes, sub) if num_classes else set()
            line = load_fexa_weights(module, spec, heads, class_names(cfg.data.dataset, cfg.data.target_map, num_classes))
        elif spec["source"] == "timm":  # a local file through timm's loader (classifier dropped if its size differs)
            from timm.models import load_pretrained

            load_pretrained(module, {**module.pretrained_cfg, "file": spec["path"], "url": "", "hf_hub_id": ""},
                            num_classes=getattr(module, "num_classes", 0))
            line = f"{sub or 'whole model'}: timm weights from {spec['path']}"
        else:
            load_reference_weights(module, spec["path"], spec["source"])
            line = f"{sub or 'whole model'}: {spec.get('published', spec['source'])} weights from {spec['path']}"
        if report is not None:
            report.append(line)
    return model


def build_loss(cfg: ExperimentConfig, kind: str, train_targets: np.ndarray, neutral: int | None):
    name, opts = cfg.train.loss, dict(cfg.train.loss_options)
    allowed = REGRESSION_LOSSES if kind == "regression" else CLASSIFICATION_LOSSES
    if name not in allowed:
        raise FexaError(f"loss {name!r} does not fit a {kind} dataset; choose from {allowed}")
    if name == "bmc":
        return L.BMCLoss(opts.get("sigma", 1.0), opts.get("learnable", False), torch.tensor(train_targets))
    if name == "gai":
        return L.GAILoss(train_targets, opts.get("components", 2), opts.get("sigma", 1.0))
    simple = {"mse": L.mse, "focal_mse": L.focal_mse, "focal_l1": L.focal_l1,
              "ce": lambda p, y: L.cross_entropy(p, y, opts.get("label_smoothing", 0.0)),
              "focal": lambda p, y: L.focal_cross_entropy(p, y, opts.get("gamma", 2.0)),
              "compact_softmax": lambda p, y: L.compact_softmax_loss(p, y, opts.get("beta", 0.2))}
    if name in simple:
        return simple[name]
    if neutral is None and "neutral" not in opts:
        raise FexaError("the pcda loss needs the neutral class index: set train.loss_options.neutral")
    n = opts.get("neutral", neutral)
    return lambda p, y, f: L.pcda_loss(f, p, y, n, opts.get("lambda", 0.01))


def build_training(cfg: ExperimentConfig, kind: str, data: dict, model: nn.Module, device: torch.device):
    """(criterion, parameters it trains, optimiser, scheduler) for ``model``: the config's loss on
    ``device`` (BMC's noise scale and GAI's prior are trained with the model)."""
    info = data["info"]
    train_targets = data["train"]["target"].to_numpy(np.float32)
    criterion = build_loss(cfg, kind, train_targets, info.neutral if info else None)
    if isinstance(criterion, nn.Module):
        criterion = criterion.to(device)
    params = list(model.parameters()) + (list(criterion.parameters()) if isinstance(criterion, nn.Module) else [])
    opt, sched = build_optimizer(cfg, [p for p in params if p.requires_grad])
    return criterion, params, opt, sched


def training_step(cfg: ExperimentConfig, kind: str, net: nn.Module, criterion, opt: torch.optim.Optimizer,
                  params: list[nn.Parameter], device: torch.device, argfn):
    """The function that takes one optimisation step on a loader batch: finish it on ``device``,
    forward (bf16 autocast when ``train.amp``), the config's loss in float32, backward, gradient
    clipping, update (``net`` compiled when ``train.compile``). It returns the detached loss without
    waiting for the device."""
    sc, net = cfg.data.samples, torch.compile(net) if cfg.train.compile else net

    def step(batch: dict) -> torch.Tensor:
        batch = to_device(batch, device, sc, cfg.train.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.amp):
            pred, feats = split_output(net(*argfn(batch)))
        y, pred = batch["target"], pred.float()
        if kind == "classification":
            loss = criterion(pred, y.long(), feats.float()) if cfg.train.loss == "pcda" else criterion(pred, y.long())
        else:
            loss = criterion(pred.reshape(-1), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.clip_grad:
            nn.utils.clip_grad_norm_(params, cfg.optim.clip_grad)
        opt.step()
        return loss.detach()

    return step


def learning_rate(cfg: ExperimentConfig) -> float:
    """optim.lr, scaled by train.batch_size / optim.lr_batch when that is set (the linear scaling rule)."""
    o = cfg.optim
    return o.lr * cfg.train.batch_size / o.lr_batch if o.lr_batch else o.lr


def build_optimizer(cfg: ExperimentConfig, params) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    o, lr = cfg.optim, learning_rate(cfg)
    if o.name == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=o.momentum, weight_decay=o.weight_decay)
    elif o.name in ("adam", "adamw"):
        cls = torch.optim.Adam if o.name == "adam" else torch.optim.AdamW
        opt = cls(params, lr=lr, weight_decay=o.weight_decay)
    else:
        raise FexaError(f"optim.name must be sgd, adam or adamw, got {o.name!r}")
    epochs = cfg.train.epochs

    def factor(e: int) -> float:
        warm = (e + 1) / o.warmup_epochs if e < o.warmup_epochs else 1.0
        if o.scheduler == "step":
            return warm * o.gamma ** (e // o.step_size)
        if o.scheduler == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * e / max(epochs, 1)))
        if o.scheduler == "none":
            return warm
        raise FexaError(f"optim.scheduler must be step, cosine or none, got {o.scheduler!r}")

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


# -- evaluation -------------------------------------------------------------------------------------------
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


def _evaluate(cfg: ExperimentConfig, model: nn.Module, ds: FaceSamples, argfn, device: torch.device,
              kind: str, desc: str = "") -> np.ndarray:
    """:func:`predict` with the run's batch size, precision, workers and memory layout."""
    return predict(model, ds, argfn, device, kind, max(1, cfg.train.batch_size), cfg.train.amp, cfg.data.workers,
                   cfg.train.channels_last, desc)


def _better(metric: str, a: float, b: float | None) -> bool:
    if b is None or not np.isfinite(b):
        return True
    return a < b if metric in ("mae", "rmse") else a > b


# -- checkpoints ------------------------------------------------------------------------------------------
def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


# -- the run ------------------------------------------------------------------------------------------------
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


def _has_checkpoints(run: Path) -> bool:
    return (run / "checkpoints").is_dir() and any((run / "checkpoints").iterdir())


def train(cfg: ExperimentConfig, resume: bool = False, progress: bool = True, resume_from: str | None = None,
          overwrite: bool = False, config_hint: str = "CONFIG") -> dict:
    """Train and evaluate ``cfg`` under its ``eval.protocol``; return the results (rank 0; other
    ranks return {}).

    ``resume``: continue from the last intact checkpoint (``last``, else ``previous``), or from
    ``resume_from`` (e.g. ``best_val``); ``overwrite``: delete an existing run first.
    ``config_hint``: how the user named the config, for the commands suggested in errors. With two
    runs (``both``), resuming continues the started ones and starts the other."""
    if resume and overwrite:
        raise FexaError("--resume and --overwrite exclude each other: continue the run, or start it over")
    resolve_pretrained(cfg.model.pretrained)  # a missing weights file is said before any data is prepared
    runs = protocol_runs(cfg)
    rank, world = _dist()
    if len(runs) == 1:
        results = train_run(next(iter(runs.values())), resume, progress, resume_from, overwrite, config_hint)
    else:
        parent = cfg.run_dir
        if rank == 0:
            if overwrite and parent.exists():
                shutil.rmtree(parent)
            parent.mkdir(parents=True, exist_ok=True)
            write_text(parent / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        _barrier(world)
        resume = resume or resume_from is not None
        parts = {}
        for p, sub in runs.items():
            go_on = resume and _has_checkpoints(sub.run_dir)
            since = resume_from if go_on and resume_from and (sub.run_dir / "checkpoints" / resume_from).is_dir() else None
            parts[p] = train_run(sub, go_on, progress, since, False, config_hint)
        results = {}
        if rank == 0:
            results = combine_protocols(cfg, parts)
            write_results(parent, results)
    if world > 1:
        dist.destroy_process_group()
    return results


def train_run(cfg: ExperimentConfig, resume: bool = False, progress: bool = True, resume_from: str | None = None,
              overwrite: bool = False, config_hint: str = "CONFIG") -> dict:
    """Train and evaluate one run in ``cfg.run_dir`` (see :func:`train`)."""
    rank, world = _dist()
    device = training_device(cfg, rank)
    _seed_everything(cfg.train.seed)
    run = cfg.run_dir
    checkpoints = run / "checkpoints"
    last = checkpoints / "last"
    resume = resume or resume_from is not None
    started = not overwrite and _has_checkpoints(run)
    if resume and not started:  # said before any data is prepared
        raise FexaError(f"nothing to resume in {run}: no checkpoint yet")
    if rank == 0:
        if overwrite and run.exists():
            shutil.rmtree(run)
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
        classes = class_names(cfg.data.dataset, cfg.data.target_map, num_classes) if kind == "classification" else []
        targets = data["train"]["target"]
        write_json(run / "model.json", {"name": cfg.model.name, "kind": kind, "num_classes": num_classes,
                                        "classes": classes, "inputs": list(keys),
                                        "target_range": [float(targets.min()), float(targets.max())],
                                        "initialisation": init})
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

    start, history, best_val = 0, [], None
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
        losses, improved = [], False
        steps = tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", leave=False, disable=not progress or rank != 0)
        for batch in steps:
            losses.append(step(batch))  # no per-step device sync: read once per epoch
        sched.step()
        losses = torch.stack(losses).float().cpu().tolist() if losses else []
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "train_loss": _mean_over_processes(losses, world)}
        if rank == 0 and ((epoch + 1) % cfg.eval.every == 0 or epoch + 1 == cfg.train.epochs):
            shown = "test set" if progress else ""
            test_table, test_pred = full_test(kind, data, _evaluate(cfg, model, test_ds, argfn, device, kind, shown))
            row.update({f"test_{k}": v for k, v in score(kind, test_table, test_pred, ordinal).items()})
            save_predictions(run / "predictions" / f"epoch_{epoch:03d}.csv", test_table, test_pred, kind)
            if val_ds is not None:
                val_pred = _evaluate(cfg, model, val_ds, argfn, device, kind, "validation set" if progress else "")
                row.update({f"val_{k}": v for k, v in score(kind, data["val"], val_pred, ordinal).items()})
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
                     "epoch": epoch, "history": history, "best_val": best_val}
            if isinstance(criterion, nn.Module):
                state["criterion"] = criterion.state_dict()
            if val_ds is not None and improved:  # a full state: `--resume --from best_val` continues from it
                save_checkpoint(checkpoints / "best_val", model, to_dict(cfg), state)
            save_checkpoint(last, model, to_dict(cfg), state, keep_previous=True)
        _barrier(world)
    if writer is not None:
        writer.close()
    results = {}
    if rank == 0:
        results = _finish(cfg, run, model, test_ds, argfn, device, kind, metric, data, history)
    return results


def _finish(cfg, run, model, test_ds, argfn, device, kind, metric, data, history) -> dict:
    """The protocols ``eval.protocol`` asks of this run, with bootstrap CIs -> results.{json,csv,md}
    and curves.png. The paper protocol is reported only when every training subject trained (no
    held-out subjects), the honest one only when there was a validation set."""
    hist = pd.DataFrame(history)
    table = whole_test_list(data)
    y = table["target"].to_numpy()
    ordinal = normal_level_of(cfg)
    fn = metric_functions(kind, ordinal)[metric]
    groups = table["subject"].to_numpy()

    def protocol(name: str, pred: np.ndarray, epoch: int) -> dict:
        v, lo, hi = M.bootstrap_ci(fn, y, pred, cfg.eval.bootstrap, seed=cfg.train.seed, groups=groups)
        return {"epoch": epoch, "metric": metric, "value": v, "ci_low": lo, "ci_high": hi, "note": PROTOCOL_NOTES[name],
                "run": ".", "train_samples": len(data["train"]), "val_samples": len(data["val"]),
                **score(kind, table, pred, ordinal)}

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
        _, pred = full_test(kind, data, _evaluate(cfg, model, test_ds, argfn, device, kind))
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
    return _finish(cfg, run, model, test_ds, argfn, device, kind, metric, data, history)
