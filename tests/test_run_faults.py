"""A run folder's faults (issue 26): a second trainer on a folder another process trains is refused
naming the holder, a dead holder blocks nothing, ``--resume`` before the first checkpoint starts from
the beginning, and a ``state.pt`` that would run code when read is refused without running it."""

import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from conftest import REPO
from fexa.errors import FexaError
from fexa.train.config import load_config
from fexa.train.runlock import LOCK_NAME, hold_run
from fexa.train.trainer import train
import test_train

tiny = test_train.tiny  # the tiny demo-clip config (a module fixture), shared with test_train

HOLDER = "import sys; from pathlib import Path; from fexa.train.runlock import hold_run\n" \
         "with hold_run(Path(sys.argv[1])):\n    print('held', flush=True)\n    sys.stdin.read()\n"


def test_a_second_trainer_on_a_held_run_folder_is_refused_naming_the_holder(tiny):
    cfg = load_config(tiny, ["name=held", "train.epochs=1"])
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cfg.run_dir)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(FexaError) as err:
            train(cfg, progress=False)
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and str(cfg.run_dir) in msg and "--resume" in msg and "\n" not in msg
        assert sorted(p.name for p in cfg.run_dir.iterdir()) == [LOCK_NAME]  # refused before writing anything
    finally:
        holder.send_signal(signal.SIGKILL)  # dies holding it: the kernel releases the lock
        holder.wait()
    with hold_run(cfg.run_dir):  # nothing left behind blocks the next trainer
        pass


def test_resume_before_the_first_checkpoint_starts_from_the_beginning(tiny, capsys):
    fresh = load_config(tiny, ["name=fresh", "train.epochs=2"])
    train(fresh, progress=False)
    killed = load_config(tiny, ["name=killed", "train.epochs=2"])
    (killed.run_dir / "tensorboard").mkdir(parents=True)  # what a run killed in its first epoch leaves
    (killed.run_dir / "tensorboard" / "events.out.tfevents.0.stale").write_bytes(b"stale")
    (killed.run_dir / "metrics.csv").write_text("epoch,lr,train_loss\n0,1.0,99.0\n")
    capsys.readouterr()
    train(killed, resume=True, progress=False)
    said = capsys.readouterr().err
    assert f"nothing to resume in {killed.run_dir} (no checkpoint yet): training it from the beginning" in said
    assert not (killed.run_dir / "tensorboard" / "events.out.tfevents.0.stale").exists()
    pd.testing.assert_frame_equal(pd.read_csv(fresh.run_dir / "metrics.csv"), pd.read_csv(killed.run_dir / "metrics.csv"))


class _RunsCommand:
    """Pickles as a call of ``os.system``: unpickling it with a plain reader runs the command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_state_that_would_run_a_command_is_refused_and_the_command_does_not_run(tiny, tmp_path):
    cfg = load_config(tiny, ["name=received", "train.epochs=1"])
    train(cfg, progress=False)
    state = cfg.run_dir / "checkpoints" / "last" / "state.pt"
    marker = tmp_path / "ran"
    torch.save({"epoch": 0, "history": [], "payload": _RunsCommand(f"touch {marker}")}, state)
    with pytest.raises(FexaError) as err:
        train(load_config(tiny, ["name=received", "train.epochs=2"]), resume=True, progress=False)
    msg = str(err.value)
    assert f"refused training state {state}: reading it would call posix.system" in msg and "\n" not in msg
    assert not marker.exists()


def test_a_killed_runs_checkpoint_temporaries_are_removed_on_resume(tiny):
    import re
    import socket

    cfg = load_config(tiny, ["name=leftovers", "train.epochs=1"])
    train(cfg, progress=False)
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())  # as fexa.io.atomic names its temporaries
    stale = cfg.run_dir / "checkpoints" / f".last.{host}@999999.abc.tmp"  # pid 999999: no such process
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"half")
    train(load_config(tiny, ["name=leftovers", "train.epochs=2"]), resume=True, progress=False)
    assert not stale.exists()
