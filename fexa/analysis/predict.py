"""Run a model trained with ``fexa train`` on an analysed input, with the run's test-time sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from fexa.data.samples import FaceSamples
from fexa.errors import FexaError
from fexa.train.config import load_config
from fexa.train.inputs import model_inputs, split_output


class TrainedModel:
    """A finished run (its folder): config, weights (best validation epoch if any, else the last)."""

    def __init__(self, run: str | Path):
        from fexa.train.trainer import build_model

        run = Path(run)
        if not (run / "config.yaml").is_file():
            raise FexaError(f"{run} is not a fexa run folder (no config.yaml)")
        self.cfg = load_config(run / "config.yaml")
        self.cfg.model.pretrained = {}  # the run's own weights replace any initialisation
        ckpt = next((run / "checkpoints" / n for n in ("best_val", "last")
                     if (run / "checkpoints" / n / "model.safetensors").is_file()), None)
        if ckpt is None:
            raise FexaError(f"{run} has no checkpoint")
        state = load_file(str(ckpt / "model.safetensors"))
        if not (run / "model.json").is_file():
            raise FexaError(f"{run} lacks model.json (written by fexa train): train the run again")
        meta = json.loads((run / "model.json").read_text())
        self.kind, num_classes = meta["kind"], meta["num_classes"]
        self.classes = tuple(meta["classes"])
        self.model = build_model(self.cfg, num_classes)
        try:
            self.model.load_state_dict(state)
        except RuntimeError as e:
            raise FexaError(f"the checkpoint in {ckpt} does not fit model {self.cfg.model.name!r}: {str(e)[:200]}") from None
        self.model.eval()
        self.keys, self.argfn = model_inputs(self.cfg.model.name)
        self.name = run.name

    @torch.no_grad()
    def predict(self, entry: str | Path, task: str = "") -> pd.DataFrame:
        """One row: the score (and rounded level) or the class probabilities, averaged over test clips."""
        row = pd.DataFrame([{"id": Path(entry).name, "path": "", "subject": "", "target": 0.0, "task": task,
                             "start": 0, "end": -1, "fold": "", "entry": str(entry)}])
        ds = FaceSamples(row, self.keys, self.cfg.data.samples, train=False, seed=self.cfg.train.seed)
        outs = []
        for i in range(len(ds)):
            batch = {k: v[None] for k, v in ds[i].items()}
            pred, _ = split_output(self.model(*self.argfn(batch)))
            outs.append(pred.float().softmax(-1)[0].numpy() if self.kind == "classification" else pred.reshape(-1).numpy())
        mean = np.mean(outs, axis=0)
        if self.kind == "classification":
            names = self.classes or tuple(str(c) for c in range(len(mean)))
            out = {"model": self.name, "prediction": names[int(mean.argmax())]}
            out.update({f"p_{n}": float(p) for n, p in zip(names, mean)})
        else:
            score = float(mean[0])
            out = {"model": self.name, "score": score, "level": int(np.clip(np.rint(score), 0, None))}
        return pd.DataFrame([out])
