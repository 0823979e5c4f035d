"""``fexa evaluate-cascade``: CFC-SP's nets trained (tiny, one epoch) on a synthetic Aff-Wild2 layout,
then scored per frame on its validation video, checked against the per-video path of ``fexa analyze``."""

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from fexa.data.layouts import N, make_layouts
from fexa.train.config import load_config

TINY = ["model.name=ir50", "model.options={units: [1, 1, 1], channels: [8, 16, 32], num_stages: 3}",
        "data.samples.image_size=112", "train.epochs=1", "train.batch_size=4", "eval.bootstrap=0",
        "eval.protocol=paper", "data.val_fraction=0", "model.pretrained=none"]
# the layout's Validation_Set video is labelled (i + 3) % 8 on frames i = 0..N-1 (all frames labelled)
VAL_LABELS = [(i + 3) % 8 for i in range(N)]


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    from fexa.train.trainer import train

    root = tmp_path_factory.mktemp("cfc")
    layout = make_layouts(root / "layouts")["affwild2"]
    runs = {}
    for name, config, seed in (("coarse_a", "affwild2_coarse_swin_s", 0), ("coarse_b", "affwild2_coarse_swin_s", 1),
                               ("negative", "affwild2_negative_repvgg", 0), ("negative_b", "affwild2_negative_repvgg", 1)):
        cfg = load_config(REPO / "configs" / "cfc_sp" / f"{config}.yaml",
                          [*TINY, f"name={name}", f"train.seed={seed}", f"data.root={layout}",
                           f"data.cache={root / 'cache'}", f"out={root / 'runs'}"])
        train(cfg, progress=False)
        runs[name] = cfg.run_dir
    return runs


def analyze_path_macro_f1(nets: dict, names: list[str], window: int) -> float:
    """The 8-class macro-F1 of the same nets through fexa analyze's per-video path
    (TrainedModel.predict + cfc_sp_cascade) on the one validation video."""
    from fexa.analysis.cfc_sp_eval import test_frames
    from fexa.analysis.predict import TrainedModel, cfc_sp_cascade
    from fexa.data.adapters import AFFWILD2_CLASSES
    from fexa.metrics import macro_f1

    models = [TrainedModel(nets[k], smooth_window=window) for k in names]
    entry = test_frames(models[0])["entry"].unique()
    assert len(entry) == 1  # the one validation video
    per_frame = [m.predict(entry[0]).frames for m in models]
    usable = per_frame[0][f"{models[0].name}_prediction"].notna().to_numpy()
    frames = cfc_sp_cascade(models, per_frame, usable).frames
    pred = pd.Series(frames["cfc_sp_prediction"]).map({n: i for i, n in enumerate(AFFWILD2_CLASSES)})
    return macro_f1(np.asarray(VAL_LABELS), pred.fillna(-1).to_numpy(int), 8)


def test_cascade_scores_every_labelled_validation_frame_and_matches_the_analyze_path(nets):
    from fexa.analysis.cfc_sp_eval import evaluate_cascade

    table = evaluate_cascade([nets["coarse_a"], nets["coarse_b"]], [nets["negative"]], windows=[0, 4], progress=False)
    got = {(r.nets, r.window, r.task): r for r in table.itertuples()}
    negative_frames = sum(label in (1, 2, 3, 5) for label in VAL_LABELS)
    for w in (0, 4):
        assert got[("coarse_a", w, 5)].frames == N and got[("negative", w, 4)].frames == negative_frames == 8
        assert got[("coarse_a + negative", w, 8)].frames == N
        whole = got[("coarse_a + coarse_b + negative", w, 8)]
        assert whole.frames == N and whole.frames_without_prediction == 0
        expected = analyze_path_macro_f1(nets, ["coarse_a", "coarse_b", "negative"], w)
        assert whole.macro_f1 == pytest.approx(expected, abs=1e-12)


def test_negative_nets_ensemble_as_in_the_analyze_path(nets):
    from fexa.analysis.cfc_sp_eval import evaluate_cascade

    table = evaluate_cascade([nets["coarse_a"], nets["coarse_b"]], [nets["negative"], nets["negative_b"]], windows=[4],
                             progress=False)
    got = {(r.nets, r.task): r for r in table.itertuples()}
    assert {("negative", 4), ("negative_b", 4), ("coarse_a + negative + negative_b", 8)} <= set(got)
    whole = got[("coarse_a + coarse_b + negative + negative_b", 8)]
    names = ["coarse_a", "coarse_b", "negative", "negative_b"]
    assert whole.macro_f1 == pytest.approx(analyze_path_macro_f1(nets, names, 4), abs=1e-12)


def test_cascade_refuses_nets_given_in_the_wrong_role(nets):
    from fexa.analysis.cfc_sp_eval import evaluate_cascade
    from fexa.errors import FexaError

    with pytest.raises(FexaError, match="given as a coarse net but trained as a negative net"):
        evaluate_cascade([nets["negative"]], [nets["negative"]], progress=False)
    with pytest.raises(FexaError, match="need the negative net"):
        evaluate_cascade([nets["coarse_a"]], progress=False)
