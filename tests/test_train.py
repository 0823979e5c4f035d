"""Training end to end on a tiny configuration built from the bundled demo clip: the loss falls,
an interrupted run resumes to the same result, and two DDP processes (gloo) match one process."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import DEMO, REPO
from fexa.errors import FexaError
from fexa.train.config import load_config
from fexa.train.trainer import train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A manifest of demo-clip windows with simulated motion reduction, and a tiny config."""
    root = tmp_path_factory.mktemp("tiny")
    rows = []
    for start in (0, 20, 40):
        for sev, scale in enumerate((1.0, 0.5, 0.0)):
            rows.append({"id": f"w{start}_s{sev}", "path": str(DEMO), "subject": f"w{start}", "score": sev,
                         "motion_scale": scale, "start": start, "end": start + 32})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    cfg = root / "tiny.yaml"
    cfg.write_text(f"""
name: tiny
out: {root / "runs"}
data:
  dataset: manifest
  root: {root / "manifest.csv"}
  cache: {root / "cache"}
  split: folds
  folds: 3
  val_fraction: 0.0
  samples: {{trajectory_length: 32, trajectory_channels: 2}}
model:
  name: tramp_trajectory
  options:
    traj_frames: 32
    traj_channels: 2
    dim: 32
    traj_encoder: {{embed_dim: 32, depths: [1], channels: [32], attn_drop: 0.0, drop_path: 0.0}}
optim: {{name: adam, lr: 0.003, weight_decay: 0.0, scheduler: none}}
train: {{epochs: 4, batch_size: 4, loss: mse, seed: 0}}
eval: {{bootstrap: 20, protocol: paper}}
""")
    return cfg


def test_config_is_strict(tiny):
    with pytest.raises(FexaError, match=r"unknown key\(s\) \['epohcs'\]"):
        load_config(tiny, ["train.epohcs=3"])
    with pytest.raises(FexaError, match="expected int"):
        load_config(tiny, ["train.epochs=three"])
    cfg = load_config(tiny, ["train.epochs=7", "optim.lr=0.01"])
    assert cfg.train.epochs == 7 and cfg.optim.lr == 0.01 and cfg.data.samples.trajectory_length == 32
    wrong = load_config(tiny, ["name=wrong_metric", "eval.metric=accuracy"])  # a regression task
    with pytest.raises(FexaError, match="eval.metric 'accuracy' is not a regression metric; choose from spearman"):
        train(wrong, progress=False)
    assert not (wrong.run_dir / "checkpoints").exists()  # refused before any training


def test_class_names_follow_the_target_map():
    from fexa.data.adapters import AFFWILD2_CLASSES
    from fexa.models.cfc_sp import TO_COARSE, TO_NEGATIVE
    from fexa.train.data import class_names

    assert class_names("affwild2", list(TO_COARSE), 5) == ["Neutral", "Happiness", "Surprise", "Other",
                                                          "Anger/Disgust/Fear/Sadness"]
    assert class_names("affwild2", list(TO_NEGATIVE), 4) == ["Anger", "Disgust", "Fear", "Sadness"]
    assert class_names("affwild2", [], 8) == list(AFFWILD2_CLASSES)
    assert class_names("manifest", [], 3) == []


def test_training_lowers_the_loss_and_writes_a_run(tiny):
    cfg = load_config(tiny, ["name=falls", "train.epochs=6"])
    results = train(cfg, progress=False)
    hist = pd.read_csv(cfg.run_dir / "metrics.csv")
    assert hist["train_loss"].iloc[-1] < 0.7 * hist["train_loss"].iloc[0]
    assert results["paper"]["metric"] == "spearman" and "honest" not in results  # no validation subjects
    assert results["initialisation"] == ["from scratch (model.pretrained is empty)"]
    assert "Initialised: from scratch" in (cfg.run_dir / "results.md").read_text()
    for f in ("results.md", "results.json", "curves.png", "splits.csv", "checkpoints/last/model.safetensors"):
        assert (cfg.run_dir / f).exists(), f
    splits = pd.read_csv(cfg.run_dir / "splits.csv")
    assert not set(splits[splits.split == "train"].subject) & set(splits[splits.split == "test"].subject)
    with pytest.raises(FexaError, match="--resume"):
        train(cfg, progress=False)
    r = subprocess.run([sys.executable, "-m", "fexa", "evaluate", str(cfg.run_dir), "--quiet"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-2000:]
    again = json.loads(r.stdout)
    assert again["paper"]["epoch"] == results["paper"]["epoch"]
    assert again["paper"]["value"] == pytest.approx(results["paper"]["value"])


def test_resume_after_interruption_gives_the_same_run(tiny):
    full = load_config(tiny, ["name=full"])
    train(full, progress=False)
    part = load_config(tiny, ["name=part", "train.epochs=2"])
    train(part, progress=False)
    resumed = load_config(tiny, ["name=part", "train.epochs=4"])
    train(resumed, resume=True, progress=False)
    a = pd.read_csv(full.run_dir / "metrics.csv")
    b = pd.read_csv(resumed.run_dir / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)
    wa = load_file(str(full.run_dir / "checkpoints/last/model.safetensors"))
    wb = load_file(str(resumed.run_dir / "checkpoints/last/model.safetensors"))
    assert all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)


def test_two_ddp_processes_match_one(tiny):
    single = load_config(tiny, ["name=single", "train.epochs=2"])
    train(single, progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fexa", "train",
           str(tiny), "--set", "name=ddp", "--set", "train.epochs=2", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ddp_dir = single.run_dir.parent / "ddp"
    a = pd.read_csv(single.run_dir / "metrics.csv")
    b = pd.read_csv(ddp_dir / "metrics.csv")
    np.testing.assert_allclose(a["train_loss"], b["train_loss"], rtol=1e-4)
    np.testing.assert_allclose(a["test_mae"], b["test_mae"], rtol=1e-4)
    wa = load_file(str(single.run_dir / "checkpoints/last/model.safetensors"))
    wb = load_file(str(ddp_dir / "checkpoints/last/model.safetensors"))
    assert max(float(abs(wa[k] - wb[k]).max()) for k in wa) < 1e-4
    assert json.loads((ddp_dir / "results.json").read_text())["test_samples"] == 3


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads_and_names_a_trainable_model(path):
    from fexa.data.adapters import DATASETS
    from fexa.models import make_config
    from fexa.train.inputs import model_inputs

    cfg = load_config(path)
    assert cfg.data.dataset in DATASETS
    model_inputs(cfg.model.name)
    make_config(cfg.model.name, **cfg.model.options)  # options are valid for the model


def test_a_damaged_checkpoint_falls_back_or_names_the_file_and_the_way_on(tiny):
    def config(epochs: int):
        return load_config(tiny, ["name=damaged", f"train.epochs={epochs}", "data.val_fraction=0.34", "train.batch_size=3",
                                  "eval.protocol=honest"])

    cfg = config(2)
    train(cfg, progress=False)
    ckpt = cfg.run_dir / "checkpoints"
    assert {p.name for p in ckpt.iterdir()} == {"last", "previous", "best_val"}
    weights = ckpt / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    longer = config(3)
    train(longer, resume=True, progress=False)  # falls back to 'previous' (epoch 1), redoes epochs 2 and 3
    assert len(pd.read_csv(cfg.run_dir / "metrics.csv")) == 3
    for name in ("last", "previous"):
        state = ckpt / name / "state.pt"
        state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(FexaError) as err:
        train(longer, resume=True, progress=False)
    msg = str(err.value)
    assert f"damaged training state {ckpt / 'last' / 'state.pt'}" in msg and "--resume --from best_val" in msg
    assert "--overwrite" in msg and "\n" not in msg
    train(config(4), progress=False, resume_from="best_val")
    with pytest.raises(FexaError, match="already holds a run: continue it with `fexa train CONFIG --resume`"):
        train(longer, progress=False)
    train(config(1), progress=False, overwrite=True)
    assert len(pd.read_csv(cfg.run_dir / "metrics.csv")) == 1


@pytest.mark.parametrize("setting, message", [
    ("data.folds=0", "config data.folds=0 is not allowed: must be an integer >= 2"),
    ("data.fold=3", "config data.fold=3 is not allowed: must be an integer from 0 to data.folds - 1 (2)"),
    ("train.epochs=0", "config train.epochs=0 is not allowed: must be an integer >= 1"),
    ("data.root=", "config data.root=None is not allowed: must be the dataset's folder"),
    ("data.val_fraction=1.5", "config data.val_fraction=1.5 is not allowed: must be 0 <= x < 1"),
    ("data.samples.crop_scale=0.5", "config data.samples.crop_scale=0.5 is not allowed: must be a list"),
    ("data.samples.crop_scale=[0.5, 1.5]", "must be [low, high] with 0 < low <= high <= 1"),
    ("optim.lr=-1", "config optim.lr=-1.0 is not allowed: must be > 0"),
])
def test_bad_settings_are_refused_up_front_with_key_value_and_what_is_allowed(tiny, setting, message):
    with pytest.raises(FexaError) as err:
        load_config(tiny, [setting])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_neutral_class_must_exist(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: jaffe, root: x}\nmodel: {name: pcda}\n"
                   "train: {loss: pcda, loss_options: {neutral: 99}}\n")
    with pytest.raises(FexaError, match=r"train.loss_options.neutral=99 is not allowed: must be a class index from 0 to 6"):
        load_config(cfg)


def test_missing_media_are_an_error_unless_allowed(tiny, tmp_path):
    rows = pd.read_csv(tiny.parent / "manifest.csv")
    rows.loc[0, "path"] = str(tmp_path / "gone.mp4")
    rows.to_csv(tmp_path / "manifest.csv", index=False)
    over = [f"data.root={tmp_path / 'manifest.csv'}", "name=missing", "train.epochs=1"]
    with pytest.raises(FexaError, match=r"1 of 9 samples name media that do not exist \(e.g. w0_s0: .*gone.mp4\).*"
                                         r"--allow-missing"):
        train(load_config(tiny, over), progress=False)
    cfg = load_config(tiny, over + ["data.allow_missing=true"])
    train(cfg, progress=False)
    dropped = pd.read_csv(cfg.run_dir / "dropped.csv")
    assert list(dropped["id"]) == ["w0_s0"] and dropped.loc[0, "status"] == "missing"


def test_fine_tuning_from_another_dataset_matches_the_classifier_by_class_name(tmp_path):
    """STT on AFEW from a DFEW run (configs/stt/afew.yaml): the two datasets order their 7 classes
    differently, so each AFEW class row must come from the DFEW row of the same emotion."""
    from dataclasses import replace

    from safetensors.torch import save_file

    from fexa.data.adapters import AFEW_CLASSES, DFEW_CLASSES
    from fexa.train.config import to_dict
    from fexa.train.build import build_model, class_heads

    dfew_cfg = load_config(REPO / "configs/stt/dfew.yaml", ["model.pretrained=none"])
    torch.manual_seed(0)
    dfew = build_model(dfew_cfg, 7)
    src = tmp_path / "best_val"
    src.mkdir()
    save_file({k: v.contiguous() for k, v in dfew.state_dict().items()}, str(src / "model.safetensors"))
    (src / "config.json").write_text(json.dumps(to_dict(dfew_cfg)))
    afew_cfg = load_config(REPO / "configs/stt/afew.yaml")
    afew_cfg = replace(afew_cfg, model=replace(afew_cfg.model, pretrained={"": {"source": "fexa", "path": str(src)}}))
    report = []
    afew = build_model(afew_cfg, 7, report)
    heads = class_heads(afew_cfg, 7, "")
    assert heads and all(k.split(".")[-1] in ("weight", "bias") for k in heads)
    a, d = afew.state_dict(), dfew.state_dict()
    for k in heads:
        for i, name in enumerate(AFEW_CLASSES):
            j = [c.lower() for c in DFEW_CLASSES].index(name.lower())
            assert torch.equal(a[k][i], d[k][j]), (k, name)
        assert not torch.equal(a[k], d[k])  # the same rows, in the AFEW order
    assert all(torch.equal(a[k], d[k]) for k in a if k not in heads)
    assert len(report) == 1 and "classifier rows loaded by class name (angry, disgust, fear, happy" in report[0]


def test_lr_scales_with_the_batch_when_given_for_another_batch():
    """CFC-SP's released recipe: 5e-4 for batches of 512; fexa's one-process batch of 128 gets 1.25e-4."""
    from fexa.train.build import learning_rate

    cfg = load_config(REPO / "configs/cfc_sp/affwild2_coarse_swin_s.yaml")
    assert cfg.optim.lr_batch == 512 and learning_rate(cfg) == pytest.approx(5e-4 * 128 / 512)
    assert learning_rate(load_config(REPO / "configs/stt/dfew.yaml")) == 0.01


def test_pretrained_none_trains_from_scratch_and_a_wrong_value_is_named():
    cfg = load_config(REPO / "configs/stt/afew.yaml", ["model.pretrained=none"])
    assert cfg.model.pretrained == {}
    with pytest.raises(FexaError, match="model.pretrained=.*must be a mapping, or none"):
        load_config(REPO / "configs/stt/afew.yaml", ["model.pretrained=scratch"])


@pytest.mark.parametrize("sampler", ["balanced", "repeat_factor"])
def test_a_classification_run_trains_with_oversampling(tiny, sampler):
    small = ("{img_size: 64, ir_units: [1, 1, 1], ir_channels: [16, 32, 64], landmark_channels: 16, dim: 32, "
             "depth: 1, num_heads: 2, mlp_ratio: 2.0}")
    cfg = load_config(tiny, [f"name={sampler}", "train.epochs=1", "train.loss=ce", f"train.sampler={sampler}",
                             "train.repeat_threshold=0.5", "eval.metric=accuracy", "eval.bootstrap=0",
                             "model.name=pcda_gaussian", f"model.options={small}", "data.samples.image_size=64"])
    results = train(cfg, progress=False)
    assert results["paper"]["metric"] == "accuracy" and len(pd.read_csv(cfg.run_dir / "metrics.csv")) == 1
    with pytest.raises(FexaError, match=f"sampler={sampler} oversamples rare classes"):
        train(load_config(tiny, [f"name={sampler}_regression", f"train.sampler={sampler}"]), progress=False)


def _step_every_config():
    """benchmarks/step_every_config.py, the script that steps every config on a GPU, as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("step_every_config", REPO / "benchmarks" / "step_every_config.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
QUICK = {"ckplus48_small.yaml", "hypomimia_sanity.yaml"}  # small models: in the default suite


@pytest.mark.parametrize("path", [pytest.param(p, marks=() if p.name in QUICK else pytest.mark.slow) for p in CONFIGS],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_takes_a_training_step_that_reaches_every_parameter(path, demo_entry, tmp_path):
    """The config's own model, items, loss and optimiser (batch 2, data: rows of the demo clip); on an
    H100 with bf16 autocast all 27 configs pass the same check (docs/training.md)."""
    m = _step_every_config()
    r = m.one_step(path, m.stand_in(path, DEMO, demo_entry.parent, tmp_path, 2, "cpu", False))
    assert np.isfinite(r["loss_first"]) and np.isfinite(r["loss_second"]) and r["grads_finite"]
    assert r["params_with_grad"] == r["params"] > 0  # no parameter left out of the loss


@pytest.mark.parametrize("loss", ["ce", "mse"])
def test_test_samples_without_a_usable_face_stay_in_the_test_list_as_failures(tiny, tmp_path, loss):
    """Each subject gets a faceless image (black): it cannot be predicted, so the test metric is over
    the whole test list with it scored as wrong (classes) or as the training mean (scores), and counted."""
    from PIL import Image

    black = tmp_path / "black.png"
    Image.new("RGB", (128, 128)).save(black)
    rows = pd.read_csv(tiny.parent / "manifest.csv")
    faceless = pd.DataFrame([{"id": f"{s}_black", "path": str(black), "subject": s, "score": 2}
                             for s in rows["subject"].unique()])
    pd.concat([rows, faceless]).to_csv(tmp_path / "manifest.csv", index=False)
    small = ("{img_size: 64, ir_units: [1, 1, 1], ir_channels: [16, 32, 64], landmark_channels: 16, dim: 32, "
             "depth: 1, num_heads: 2, mlp_ratio: 2.0}")
    over = [f"data.root={tmp_path / 'manifest.csv'}", f"name=faceless_{loss}", "train.epochs=1", f"train.loss={loss}",
            "eval.bootstrap=0"]
    if loss == "ce":
        over += ["eval.metric=accuracy", "model.name=pcda_gaussian", f"model.options={small}", "data.samples.image_size=64"]
    cfg = load_config(tiny, over)
    results = train(cfg, progress=False)
    assert (results["test_samples"], results["test_unusable"]) == (4, 1)  # 3 windows of the test subject + its black image
    pred = pd.read_csv(cfg.run_dir / "predictions" / "epoch_000.csv")
    assert len(pred) == 4 and list(pred["usable"]) == [True, True, True, False]
    missing = pred.iloc[-1]
    assert missing["id"].endswith("_black")
    if loss == "ce":
        assert missing["prediction"] == -1  # no class: wrong whatever the target
        hand = float((pred["prediction"] == pred["target"]).mean())  # over all 4, the faceless one wrong
        assert results["paper"]["accuracy"] == pytest.approx(hand) and hand <= 0.75
    else:
        splits = pd.read_csv(cfg.run_dir / "splits.csv")
        train_mean = splits[(splits["split"] == "train") & splits["usable"]]["target"].mean()
        assert missing["prediction"] == pytest.approx(train_mean)
        assert results["paper"]["mae"] == pytest.approx(float((pred["prediction"] - pred["target"]).abs().mean()))
    dropped = pd.read_csv(cfg.run_dir / "dropped.csv")
    assert sorted(dropped["id"]) == sorted(faceless["id"]) and set(dropped["status"]) == {"no_face"}
    assert "1 test sample(s) had no usable face" in (cfg.run_dir / "results.md").read_text()


def test_protocol_both_is_a_paper_run_on_every_training_subject_and_an_honest_run(tiny):
    """eval.protocol=both: the paper number comes from a run trained on all training subjects (not
    fewer, as when it was read off the honest run), the honest one from a run holding one out."""
    from fexa.analysis.predict import find_run

    sets = ["name=both", "train.epochs=2", "eval.protocol=both", "data.val_fraction=0.34", "train.batch_size=3"]
    cfg = load_config(tiny, sets)
    results = train(cfg, progress=False)
    run = cfg.run_dir
    paper, honest = (pd.read_csv(run / p / "splits.csv") for p in ("paper", "honest"))
    subjects = lambda df, split: set(df[df.split == split].subject)  # noqa: E731
    assert subjects(paper, "train") == subjects(honest, "train") | subjects(honest, "val")
    assert len(subjects(paper, "train")) == 2 and len(subjects(honest, "val")) == 1 and not subjects(paper, "val")
    assert subjects(paper, "test") == subjects(honest, "test")
    used = {p: (results[p]["run"], results[p]["train_samples"], results[p]["val_samples"]) for p in ("paper", "honest")}
    assert used == {"paper": ("paper", 6, 0), "honest": ("honest", 3, 3)}
    own = {p: json.loads((run / p / "results.json").read_text()) for p in ("paper", "honest")}
    assert "honest" not in own["paper"] and "paper" not in own["honest"]
    assert results["paper"]["value"] == own["paper"]["paper"]["value"]
    assert results["honest"]["value"] == own["honest"]["honest"]["value"]
    md = (run / "results.md").read_text()
    assert "| paper | paper | 6 | 0 |" in md and "| honest | honest | 3 | 3 |" in md
    assert find_run(run) == run / "honest"  # fexa analyze --model RUN uses the honestly selected weights
    import shutil

    shutil.rmtree(run / "honest")  # interrupted before the honest run started: --resume starts it
    again = train(load_config(tiny, sets), resume=True, progress=False)
    assert again["honest"]["value"] == results["honest"]["value"] and again["paper"] == results["paper"]
    with pytest.raises(FexaError, match="eval.protocol=both needs held-out validation subjects.*eval.protocol=paper"):
        train(load_config(tiny, ["name=noval", "eval.protocol=both"]), progress=False)
    assert not (cfg.run_dir.parent / "noval").exists()


def test_a_dataset_with_its_own_validation_set_gives_both_protocols_from_one_run(tiny, tmp_path):
    table = pd.read_csv(tiny.parent / "manifest.csv")
    table["fold"] = table["subject"].map({"w0": "train", "w20": "val", "w40": "test"})
    table.to_csv(tmp_path / "fixed.csv", index=False)
    cfg = load_config(tiny, ["name=own_val", "train.epochs=2", "eval.protocol=both", "data.split=fixed",
                             "train.batch_size=3", f"data.root={tmp_path / 'fixed.csv'}"])
    results = train(cfg, progress=False)
    assert results["paper"]["run"] == results["honest"]["run"] == "."
    assert results["paper"]["train_samples"] == results["honest"]["train_samples"] == 3
    assert not (cfg.run_dir / "paper").exists() and (cfg.run_dir / "checkpoints" / "best_val").is_dir()
