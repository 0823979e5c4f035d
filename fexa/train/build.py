"""A training run's parts, built from its config: the device, the model with its initialisations
(the authors' files, another fexa run, a timm file), the loss, the optimiser and its schedule, and
the function that takes one optimisation step."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fexa import losses as L
from fexa.data.loading import to_device
from fexa.errors import FexaError
from fexa.face.landmarks import get_scheme
from fexa.models import create_model, make_config
from fexa.models.checkpoints import load_reference_weights
from fexa.models.weights import resolve_pretrained
from fexa.train.checkpoint import read_weights
from fexa.train.config import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, ExperimentConfig, from_scratch
from fexa.train.data import class_names
from fexa.train.inputs import split_output


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
        try:
            module = model.get_submodule(sub) if sub else model
        except AttributeError:
            raise FexaError(f"model.pretrained.{sub}: {cfg.model.name} with options {cfg.model.options} has no "
                            f"submodule {sub!r} to load into (set model.pretrained.{sub}=none)") from None
        if spec["source"] == "fexa":  # a fexa run's checkpoint folder, e.g. runs/stt_dfew/checkpoints/best_val
            heads = class_heads(cfg, num_classes, sub) if num_classes else set()
            line = load_fexa_weights(module, spec, heads, class_names(cfg.data.dataset, cfg.data.target_map, num_classes))
        elif spec["source"] == "timm":  # a local file through timm's loader (classifier dropped if its size differs)
            from timm.models import load_pretrained

            load_pretrained(module, {**module.pretrained_cfg, "file": spec["path"], "url": "", "hf_hub_id": ""},
                            num_classes=getattr(module, "num_classes", 0))
            line = f"{sub or 'whole model'}: timm weights from {spec['path']}"
        else:
            loaded = load_reference_weights(module, spec["path"], spec["source"])
            line = f"{sub or 'whole model'}: {spec.get('published', spec['source'])} weights from {spec['path']} ({loaded})"
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


def compute_loss(cfg: ExperimentConfig, kind: str, criterion, pred: torch.Tensor, y: torch.Tensor,
                 feats: torch.Tensor | None = None) -> torch.Tensor:
    """The config's loss of a batch's predictions (in float32): class targets for a classifier, one
    score per item for a regressor; the pcda loss also takes the class-token features."""
    pred = pred.float()
    if kind == "classification":
        return criterion(pred, y.long(), feats.float()) if cfg.train.loss == "pcda" else criterion(pred, y.long())
    return criterion(pred.reshape(-1), y)


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
        loss = compute_loss(cfg, kind, criterion, pred, batch["target"], feats)
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
