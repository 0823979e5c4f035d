"""Published trained models as fexa runs (``fexa weights import``): a released checkpoint, checked
strictly and mapped into fexa's module, becomes a run folder that ``fexa analyze --model RUN`` uses
directly, with the dataset's class names and the paper's test-time sampling."""

from __future__ import annotations

from pathlib import Path

import yaml
from safetensors.torch import save_file

from fexa.data.adapters import DATASETS
from fexa.errors import FexaError
from fexa.io.atomic import atomic_dir, write_json, write_text
from fexa.models.weights import get_published, load_published
from fexa.train.config import load_config, to_dict
from fexa.train.inputs import model_inputs

# name -> (published weights per fold, the run's config: the paper's data and test-time sampling)
IMPORTABLE = {
    "former_dfer_dfew": ("former_dfer_dfew_fold{fold}", [
        "data.dataset=dfew", "data.split=fixed", "model.name=former_dfer_112",
        "data.options={annotations: {train: set_{fold}_train.txt, test: set_{fold}_test.txt}}",
        "data.samples={sampling: segments, clip_size: 112, normalize: none, clip_train: resized_crop, clip_test: resize}",
        "optim={name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 0.0001, scheduler: step, step_size: 40, gamma: 0.1}",
        "train={epochs: 100, batch_size: 32, loss: ce}", "eval={metric: uar, protocol: paper}"]),
}


def import_published(file: str | Path, as_name: str, out: str | Path, fold: int = 1) -> Path:
    """Turn the released checkpoint ``file`` of model ``as_name`` (trained on fold ``fold``) into the
    run folder ``out``; returns it. The file is checked and loaded strictly (:func:`load_published`)."""
    if as_name not in IMPORTABLE:
        raise FexaError(f"--as {as_name!r}: fexa imports {', '.join(IMPORTABLE)}")
    weights_name, settings = IMPORTABLE[as_name]
    published = get_published(weights_name.format(fold=fold))
    model, _ = load_published(published, file)
    out = Path(out)
    cfg = load_config(None, [s.replace("{fold}", str(fold)) for s in settings]
                      + [f"name={out.name}", f"out={out.parent}", f"data.root=(imported from {Path(file).name})"])
    classes = list(DATASETS[cfg.data.dataset].classes)
    with atomic_dir(out) as tmp:
        write_text(tmp / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
        write_json(tmp / "model.json", {
            "name": cfg.model.name, "kind": "classification", "num_classes": len(classes), "classes": classes,
            "inputs": list(model_inputs(cfg.model.name)[0]), "target_range": [0.0, float(len(classes) - 1)],
            "initialisation": [f"imported: {published.initialises}, from {Path(file).resolve()} ({published.where})"]})
        (tmp / "checkpoints" / "last").mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                  str(tmp / "checkpoints" / "last" / "model.safetensors"))
    return out
