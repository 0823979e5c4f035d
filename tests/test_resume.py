"""Which checkpoint ``--resume`` continues from (issue 30 item 5). Redoing an epoch is deterministic,
so the final result cannot tell ``last`` from ``previous``: each checkpoint's state is marked
(a train loss no epoch gives) and the resumed run's history shows whose state it carries on."""

import shutil

import pandas as pd
import pytest
import torch

from fexa.train.checkpoint import read_state
from fexa.train.config import load_config
from fexa.train.trainer import train
import test_train

tiny = test_train.tiny  # the tiny demo-clip config (a module fixture), shared with test_train

MARK = {"previous": 1000.0, "last": 1001.0}  # far above any loss of the tiny run (about 1)


def _mark(checkpoints, name: str) -> int:
    """Set the train loss of checkpoint ``name``'s own epoch to MARK[name] in its state; return that epoch."""
    path = checkpoints / name / "state.pt"
    state = read_state(path)
    state["history"][-1]["train_loss"] = MARK[name]
    torch.save(state, path)
    return state["epoch"]


def test_resume_starts_after_last_and_from_previous_only_when_last_is_damaged(tiny, capsys):
    """Mutant (fexa/train/checkpoint.py, RESUMABLE): ``("previous", "last")`` resumes from epoch 1's state and
    redoes epoch 2, losing last's mark: the first assertion on ``intact``'s train_loss fails."""
    first = load_config(tiny, ["name=intact", "train.epochs=2"])
    train(first, progress=False)
    checkpoints = first.run_dir / "checkpoints"
    trained = pd.read_csv(first.run_dir / "metrics.csv")["train_loss"].tolist()  # before the marks
    assert {name: _mark(checkpoints, name) for name in MARK} == {"previous": 0, "last": 1}  # 0-based epochs
    damaged = load_config(tiny, ["name=damaged", "train.epochs=2"])
    shutil.copytree(first.run_dir, damaged.run_dir)  # the same two epochs, marked alike
    weights = damaged.run_dir / "checkpoints" / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short

    capsys.readouterr()
    train(load_config(tiny, ["name=intact", "train.epochs=3"]), resume=True, progress=False)
    history = pd.read_csv(first.run_dir / "metrics.csv")
    # last's state carried on: its epochs kept (epoch 2's mark), only epoch 3 trained
    assert history["train_loss"][1] == MARK["last"] and history["train_loss"][0] < 10
    assert history["epoch"].tolist() == [0, 1, 2] and history["train_loss"][2] < 10
    assert "resuming from checkpoint" not in capsys.readouterr().err  # nothing skipped, nothing said
    assert read_state(checkpoints / "last" / "state.pt")["epoch"] == 2
    assert read_state(checkpoints / "previous" / "state.pt")["epoch"] == 1

    train(load_config(tiny, ["name=damaged", "train.epochs=3"]), resume=True, progress=False)
    said = capsys.readouterr().err
    assert f"damaged weights file {weights}" in said and "resuming from checkpoint 'previous' (epoch 1)" in said
    history = pd.read_csv(damaged.run_dir / "metrics.csv")
    # previous's state carried on: epoch 1 kept (its mark), epochs 2 and 3 trained again
    assert history["train_loss"][0] == MARK["previous"] and history["epoch"].tolist() == [0, 1, 2]
    # redone from epoch 1's state, epochs 2 and 3 are the intact run's (training is deterministic)
    assert history["train_loss"][1] == pytest.approx(trained[1])
    assert history["train_loss"][2] == pytest.approx(pd.read_csv(first.run_dir / "metrics.csv")["train_loss"][2])
