"""Every shipped config on a tiny synthetic copy of its dataset's official layout, made at test time
from the demo clip's frames: the config resolves, its adapter reads the layout, extraction and the
training store build, the split keeps train and test, and the config's training and test items
build (default suite); one epoch of training with one evaluation runs end to end (``-m slow``)."""

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from fexa.data.layouts import make_layouts
from fexa.train.config import load_config

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    return make_layouts(tmp_path_factory.mktemp("layouts"))


def config_on_layout(path: Path, layouts: dict[str, Path], out: Path):
    """The shipped config, reading its dataset's synthetic layout; small where the tiny data needs it
    (two folds, batch 2, one epoch, no bootstrap) and from scratch (the tests build no weights here)."""
    cfg = load_config(path)
    sets = [f"data.root={layouts[cfg.data.dataset]}", f"data.cache={out.parent / 'cache'}", f"out={out}",
            "model.pretrained=none", "train.epochs=1", "train.batch_size=2", "train.repeats=1", "eval.bootstrap=0",
            "eval.protocol=paper", "data.val_fraction=0", "data.workers=0"]
    if cfg.data.split == "folds":
        sets += ["data.folds=2", "data.fold=0"]
    return load_config(path, sets)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_reads_its_datasets_layout_and_builds_its_items(path, layouts, tmp_path_factory):
    import torch

    from fexa.data.loading import make_loader, to_device
    from fexa.data.samples import FaceSamples
    from fexa.train.inputs import model_inputs
    from fexa.train.data import prepare_data, training_samples

    cfg = config_on_layout(path, layouts, tmp_path_factory.mktemp("runs"))
    data = prepare_data(cfg, progress=False)
    assert len(data["train"]) >= 2 and len(data["test"]) >= 1, (len(data["train"]), len(data["test"]))
    keys, _ = model_inputs(cfg.model.name)
    cpu = torch.device("cpu")
    for ds in (training_samples(cfg, data["train"], keys),
               FaceSamples(data["test"], keys, cfg.data.samples, False, cfg.train.seed, uint8=True)):
        batch = to_device(next(iter(make_loader(ds, 2, 0, cpu))), cpu, ds.cfg)  # as the training step gets it
        assert all(torch.is_tensor(batch[k]) and len(batch[k]) >= 1 and torch.isfinite(batch[k].float()).all()
                   for k in keys), sorted(batch)


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_trains_an_epoch_and_evaluates_on_its_datasets_layout(path, layouts, tmp_path_factory):
    from fexa.train.trainer import train

    cfg = config_on_layout(path, layouts, tmp_path_factory.mktemp("runs"))
    results = train(cfg, progress=False)
    assert np.isfinite(results["paper"]["value"]) or results["paper"]["metric"] in ("spearman", "pearson")
    assert results["test_samples"] >= 1 and (cfg.run_dir / "results.md").is_file()
