"""Experiment configs: YAML files mapped onto dataclasses. Unknown keys are errors, not ignored.

    fexa train configs/tramp_former/pfed5_smile.yaml --set train.epochs=10 --set data.root=/data/PFED5
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fexa.data.samples import SampleConfig
from fexa.errors import FexaError


@dataclass
class DataConfig:
    dataset: str = "manifest"  # an adapter of fexa.data.adapters
    root: str = ""  # the dataset folder
    options: dict = field(default_factory=dict)  # adapter options (file names, ...)
    cache: str = "cache"  # fexa extract output folder shared by runs
    task: str = ""  # keep only this task (e.g. a PFED5 action)
    split: str = "folds"  # "fixed" (the dataset's own train/test column) or "folds" (subject k-fold)
    folds: int = 5
    fold: int = 0
    stratify: str = ""  # a column to balance folds over (e.g. Toronto NeuroFace's group)
    val_fraction: float = 0.2  # training subjects held out for the honest protocol (0: none)
    target_map: list = field(default_factory=list)  # remap class targets (e.g. CFC-SP coarse classes)
    limit: int = 0  # use only the first N samples (smoke tests)
    workers: int = 0  # DataLoader workers
    extract_workers: int = 1
    samples: SampleConfig = field(default_factory=SampleConfig)


@dataclass
class ModelConfig:
    name: str = "tramp_trajectory"
    options: dict = field(default_factory=dict)
    pretrained: dict = field(default_factory=dict)  # submodule -> {source, path}, see fexa.models.checkpoints


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    scheduler: str = "step"  # step | cosine | none
    step_size: int = 40
    gamma: float = 0.1
    warmup_epochs: int = 0
    clip_grad: float = 0.0  # 0: no clipping


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 4
    repeats: int = 1  # passes over the training list per epoch (the papers' "5x iterations")
    loss: str = "bmc"  # bmc | gai | mse | focal_mse | focal_l1 | ce | focal | compact_softmax | pcda
    loss_options: dict = field(default_factory=dict)
    seed: int = 0
    amp: bool = False  # bfloat16 autocast (CUDA or CPU)
    device: str = "auto"
    drop_last: bool = True  # BMC is identically zero on a batch of one


@dataclass
class EvalConfig:
    metric: str = "auto"  # the selection metric: spearman (regression) or accuracy (classification)
    bootstrap: int = 1000
    every: int = 1  # evaluate every N epochs


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    out: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out) / self.name


def _build(cls: type, data: Any, where: str) -> Any:
    """Recursively turn a dict into dataclass ``cls``, refusing unknown keys."""
    if not dataclasses.is_dataclass(cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FexaError(f"config {where or 'file'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise FexaError(f"config {where or 'file'}: unknown key(s) {unknown}; known: {sorted(names)}")
    kw = {}
    for k, v in data.items():
        t = hints[k]
        path = f"{where}.{k}" if where else k
        if dataclasses.is_dataclass(t):
            kw[k] = _build(t, v, path)
        elif t is tuple or typing.get_origin(t) is tuple:
            kw[k] = tuple(v)
        elif t in (int, float, str, bool) and v is not None and not isinstance(v, t):
            kw[k] = _coerce(t, v, path)
        else:
            kw[k] = v
    return cls(**kw)


def _coerce(t: type, v: Any, path: str) -> Any:
    """Accept an int for a float and a numeric string such as '1e-6' (YAML reads it as a string)."""
    if t is float and not isinstance(v, bool):
        try:
            return float(v)
        except (TypeError, ValueError):
            pass
    raise FexaError(f"config {path}: expected {t.__name__}, got {v!r}")


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise FexaError(f"--set {dotted}: {k} is not a section")
    d[keys[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config and apply ``--set key=value`` overrides (values parsed as YAML)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FexaError(f"no config file at {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise FexaError(f"config {path} is not valid YAML: {e}") from None
    for item in overrides or []:
        if "=" not in item:
            raise FexaError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        _set(data, key.strip(), yaml.safe_load(value))
    return _build(ExperimentConfig, data, "")

