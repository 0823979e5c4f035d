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
from fexa.models.weights import PUBLISHED


@dataclass
class DataConfig:
    dataset: str = "manifest"  # an adapter of fexa.data.adapters
    root: str = ""  # the dataset folder
    options: dict = field(default_factory=dict)  # adapter options (file names, ...)
    cache: str = "cache"  # fexa extract output folder shared by runs
    # "detect": faces found and aligned by fexa (MediaPipe); "given": the dataset's own face images, as the
    # papers used them: resized to the model's input size, not detected, rotated or re-aligned; the mesh
    # only gives landmarks, and an image it fails on is kept (docs/training.md, "Faces")
    faces: str = "detect"
    # a folder of per-sample landmark or point-track files, <sample id>.npy, used instead of the mesh's
    # landmarks for trajectories, heatmaps and image landmarks (docs/landmarks.md, "Landmarks from files")
    landmarks: str = ""
    task: str = ""  # keep only this task (e.g. a PFED5 action)
    split: str = "folds"  # "fixed" (the dataset's fold column), "folds" (subject k-fold) or "file" (fold_file's lists)
    fold_file: str = ""  # published test-subject lists per fold (CSV subject,fold or the authors' Python dict)
    folds: int = 5
    fold: int = 0
    stratify: str = ""  # a column to balance folds over (e.g. Toronto NeuroFace's group)
    val_fraction: float = 0.2  # training subjects held out for the honest protocol (0: none)
    target_map: list = field(default_factory=list)  # remap class targets (e.g. CFC-SP coarse classes)
    scores_as_classes: bool = False  # integer scores 0..K-1 trained as K classes (QAFE-Net Table 9, TraMP-Former Table IV)
    normal_level: int = 0  # with scores_as_classes: the level binary_accuracy/sensitivity/specificity count as normal
    limit: int = 0  # use only the first N samples (smoke tests)
    allow_missing: bool = False  # samples naming media that do not exist: an error (default) or dropped
    workers: int = 0  # DataLoader workers (size them with `fexa bench loader CONFIG`)
    store_quality: int = 90  # JPEG quality of the training store (fexa.data.store)
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
    lr_batch: int = 0  # >0: lr is for batches of this size and scales linearly with train.batch_size (CFC-SP: 512)
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
    compile: bool = False  # torch.compile the training step's model
    cudnn_benchmark: bool = True  # CUDA: cuDNN times its kernels for the fixed input sizes (faster; not bitwise repeatable)
    channels_last: bool = False  # image models and their 4-D inputs in channels-last layout
    device: str = "auto"
    drop_last: bool = True  # BMC is identically zero on a batch of one
    # "uniform" (shuffled passes), "balanced" (class-balanced oversampling, POSTER/AffectNet) or
    # "repeat_factor" (LVIS's repeat-factor sampling with repeat_threshold, CFC-SP)
    sampler: str = "uniform"
    repeat_threshold: float = 0.001  # LVIS's t: classes rarer than t are repeated sqrt(t / frequency) times


PROTOCOLS = ("paper", "honest", "both")
REGRESSION_LOSSES = ("bmc", "gai", "mse", "focal_mse", "focal_l1")
CLASSIFICATION_LOSSES = ("ce", "focal", "compact_softmax", "pcda")


@dataclass
class EvalConfig:
    metric: str = "auto"  # the selection metric: spearman (regression) or accuracy (classification)
    bootstrap: int = 1000
    every: int = 1  # evaluate every N epochs
    # paper: train on the whole training split, report the best test epoch (the papers' protocol);
    # honest: hold out data.val_fraction of the training subjects, pick the epoch on them, test once;
    # both: the two as separate runs (out/name/paper, out/name/honest) reported side by side. A dataset
    # with its own validation set (FERPlus) gives both from one run.
    protocol: str = "both"


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
            if not isinstance(v, (list, tuple)):
                raise FexaError(f"config {path}={v!r} is not allowed: must be a list, e.g. [0.8, 1.0]")
            kw[k] = tuple(v)
        elif t is dict:  # "none" (e.g. --set model.pretrained=none): empty
            if v is None or v == "none":
                v = {}
            if not isinstance(v, dict):
                raise FexaError(f"config {path}={v!r} is not allowed: must be a mapping, or none")
            kw[k] = v
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


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _check(cfg: ExperimentConfig) -> list[tuple[str, Any, str]]:
    """(key, value, what is allowed) for every setting that is out of range."""
    from fexa.data.adapters import DATASETS
    from fexa.face.align import CROP_SIZE
    from fexa.train.inputs import MODEL_INPUTS

    d, t, o, e, sc = cfg.data, cfg.train, cfg.optim, cfg.eval, cfg.data.samples
    bad = []

    def need(key: str, value: Any, ok: bool, allowed: str) -> None:
        if not ok:
            bad.append((key, value, allowed))

    need("data.dataset", d.dataset, d.dataset in DATASETS, f"one of {', '.join(sorted(DATASETS))}")
    need("data.root", d.root, isinstance(d.root, str) and d.root.strip() != "", "the dataset's folder (or manifest CSV)")
    need("data.cache", d.cache, isinstance(d.cache, str) and d.cache.strip() != "", "a folder for the extract cache")
    need("data.split", d.split, d.split in ("fixed", "folds", "file"), "fixed, folds or file")
    need("data.faces", d.faces, d.faces in ("detect", "given"), "detect or given")
    need("data.landmarks", d.landmarks, isinstance(d.landmarks, str), "a folder of <sample id>.npy files, or empty")
    if d.split == "file":
        need("data.fold_file", d.fold_file, isinstance(d.fold_file, str) and d.fold_file.strip() != "",
             "the published fold lists (a subject,fold CSV or the authors' Python file)")
        need("data.fold", d.fold, isinstance(d.fold, int) and d.fold >= 0, "an integer >= 0")
    if d.split == "folds":
        need("data.folds", d.folds, isinstance(d.folds, int) and d.folds >= 2, "an integer >= 2")
        need("data.fold", d.fold, isinstance(d.fold, int) and isinstance(d.folds, int) and 0 <= d.fold < max(d.folds, 1),
             f"an integer from 0 to data.folds - 1 ({d.folds - 1 if isinstance(d.folds, int) else '?'})")
    need("data.val_fraction", d.val_fraction, _is_number(d.val_fraction) and 0 <= d.val_fraction < 1, "0 <= x < 1")
    need("data.limit", d.limit, isinstance(d.limit, int) and d.limit >= 0, "an integer >= 0 (0: all)")
    need("data.workers", d.workers, isinstance(d.workers, int) and d.workers >= 0, "an integer >= 0")
    need("data.store_quality", d.store_quality, isinstance(d.store_quality, int) and 50 <= d.store_quality <= 100,
         "an integer in 50..100")
    need("data.extract_workers", d.extract_workers, isinstance(d.extract_workers, int) and d.extract_workers >= 1,
         "an integer >= 1")
    need("data.target_map", d.target_map, all(isinstance(x, int) for x in d.target_map),
         "a list of class indices (-1 drops a class)")
    need("data.samples.crop_scale", sc.crop_scale, len(sc.crop_scale) == 2 and all(map(_is_number, sc.crop_scale))
         and 0 < sc.crop_scale[0] <= sc.crop_scale[1] <= 1, "[low, high] with 0 < low <= high <= 1")
    need("data.samples.erasing_scale", sc.erasing_scale, len(sc.erasing_scale) == 2
         and all(map(_is_number, sc.erasing_scale)) and 0 < sc.erasing_scale[0] <= sc.erasing_scale[1] < 1,
         "[low, high] area fractions with 0 < low <= high < 1")
    need("data.samples.clip_start", sc.clip_start, sc.clip_start == "first" or (
        sc.clip_start == "random" and sc.clip_padding == "loop"), "first, or random for looped clips (clip_padding loop)")
    need("data.samples.clip_scale", sc.clip_scale, len(sc.clip_scale) == 2 and all(map(_is_number, sc.clip_scale))
         and 0 < sc.clip_scale[0] <= sc.clip_scale[1] <= 1, "[low, high] with 0 < low <= high <= 1")
    need("data.samples.clip_train", sc.clip_train, sc.clip_train in ("crop", "resized_crop"), "crop or resized_crop")
    need("data.samples.clip_test", sc.clip_test, sc.clip_test in ("center", "resize"), "center or resize")
    rgb_only = cfg.model.name in ("tramp_former", "former_dfer_regressor")  # clips without heatmaps
    need("data.samples.clip_padding", sc.clip_padding, sc.clip_padding == "loop" or (
        sc.clip_padding == "zero" and sc.sampling == "subclips" and rgb_only),
        "loop, or zero for subclip-sampled RGB clips without heatmaps (TraMP-Former, Former-DFER)")
    side = CROP_SIZE  # a window much smaller than the face crop cuts off brows and chin
    for key in ("clip_train", "clip_test"):
        if getattr(sc, key) in ("crop", "center") and isinstance(sc.clip_size, int):
            need(f"data.samples.{key}", getattr(sc, key), sc.clip_size >= 0.75 * side,
                 f"{'resized_crop' if key == 'clip_train' else 'resize'} for a {sc.clip_size}-px clip: a "
                 f"{sc.clip_size}-px window of the {side}-px face crop cuts off the brows and chin")
    for key in ("image_size", "clip_size", "num_subclips", "trajectory_length", "test_clips"):
        v = getattr(sc, key)
        need(f"data.samples.{key}", v, isinstance(v, int) and v >= 1, "an integer >= 1")
    need("data.samples.blur_sigma", sc.blur_sigma, len(sc.blur_sigma) == 2 and all(map(_is_number, sc.blur_sigma))
         and 0 < sc.blur_sigma[0] <= sc.blur_sigma[1], "[low, high] with 0 < low <= high")
    need("data.samples.rotation", sc.rotation, _is_number(sc.rotation) and 0 <= sc.rotation <= 180, "degrees, 0..180")
    need("data.samples.color_jitter", sc.color_jitter, _is_number(sc.color_jitter) and 0 <= sc.color_jitter < 1,
         "0 <= j < 1")
    for key in ("time_reverse", "grayscale", "color_jitter_p", "blur", "erasing"):
        v = getattr(sc, key)
        need(f"data.samples.{key}", v, _is_number(v) and 0 <= v <= 1, "a probability, 0 <= p <= 1")
    need("model.name", cfg.model.name, cfg.model.name in MODEL_INPUTS, f"one of {', '.join(sorted(MODEL_INPUTS))}")
    if cfg.model.name in MODEL_INPUTS:
        from fexa.models.registry import make_config

        try:  # the model's own config checks its options (names and values)
            make_config(cfg.model.name, **cfg.model.options)
        except (TypeError, ValueError) as err:
            need("model.options", cfg.model.options, False, f"options of {cfg.model.name} ({err})")
    for sub, spec in cfg.model.pretrained.items():
        ok = spec in PUBLISHED if isinstance(spec, str) else isinstance(spec, dict) and {"source", "path"} <= set(spec)
        need(f"model.pretrained.{sub}", spec, ok, "a published weights name (`fexa weights`) or {source, path}")
    need("train.epochs", t.epochs, isinstance(t.epochs, int) and t.epochs >= 1, "an integer >= 1")
    need("train.batch_size", t.batch_size, isinstance(t.batch_size, int) and t.batch_size >= 1, "an integer >= 1")
    need("train.sampler", t.sampler, t.sampler in ("uniform", "balanced", "repeat_factor"),
         "uniform, balanced or repeat_factor")
    need("train.repeat_threshold", t.repeat_threshold, _is_number(t.repeat_threshold) and 0 < t.repeat_threshold <= 1,
         "a number in (0, 1]")
    need("train.repeats", t.repeats, isinstance(t.repeats, int) and t.repeats >= 1, "an integer >= 1")
    need("optim.name", o.name, o.name in ("sgd", "adam", "adamw"), "sgd, adam or adamw")
    need("optim.lr", o.lr, _is_number(o.lr) and o.lr > 0, "> 0")
    need("optim.lr_batch", o.lr_batch, isinstance(o.lr_batch, int) and o.lr_batch >= 0, "an integer >= 0 (0: lr as given)")
    need("optim.weight_decay", o.weight_decay, _is_number(o.weight_decay) and o.weight_decay >= 0, ">= 0")
    need("optim.scheduler", o.scheduler, o.scheduler in ("step", "cosine", "none"), "step, cosine or none")
    need("optim.step_size", o.step_size, isinstance(o.step_size, int) and o.step_size >= 1, "an integer >= 1")
    need("optim.warmup_epochs", o.warmup_epochs, isinstance(o.warmup_epochs, int) and o.warmup_epochs >= 0,
         "an integer >= 0")
    need("eval.every", e.every, isinstance(e.every, int) and e.every >= 1, "an integer >= 1")
    need("eval.protocol", e.protocol, e.protocol in PROTOCOLS, "paper, honest or both")
    need("eval.bootstrap", e.bootstrap, isinstance(e.bootstrap, int) and e.bootstrap >= 0, "an integer >= 0")
    info = DATASETS.get(d.dataset)
    classes = (max(d.target_map) + 1 if d.target_map else len(info.classes)) if info and info.classes else None
    neutral = t.loss_options.get("neutral")
    if neutral is not None and classes:
        need("train.loss_options.neutral", neutral, isinstance(neutral, int) and -1 <= neutral < classes,
             f"a class index from 0 to {classes - 1}, or -1 (no neutral class)")
    return bad


def validate(cfg: ExperimentConfig) -> ExperimentConfig:
    """Check every setting before any data is prepared; one line naming the key, the value and
    what is allowed (all bad keys at once)."""
    bad = _check(cfg)
    if bad:
        raise FexaError("; ".join(f"config {k}={v!r} is not allowed: must be {allowed}" for k, v, allowed in bad))
    return cfg


def from_scratch(cfg: ExperimentConfig) -> ExperimentConfig:
    """``cfg`` with no pretrained weights (where only the model's shape matters)."""
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, pretrained={}))


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
    cfg = _build(ExperimentConfig, data, "")
    if isinstance(cfg.model.pretrained, dict):  # model.pretrained.SUB=none: that submodule starts from scratch
        cfg.model.pretrained = {k: v for k, v in cfg.model.pretrained.items() if v not in (None, "none")}
    return validate(cfg)

