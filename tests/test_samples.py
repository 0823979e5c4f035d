"""Model inputs built from a cached entry: shapes, determinism, and landmarks that follow the image."""

import numpy as np
import pandas as pd
import pytest
import torch

from fexa.data.samples import FaceSamples, SampleConfig, mirror_permutation


@pytest.fixture(scope="module")
def table(demo_entry):
    return pd.DataFrame([{"id": "demo", "path": "x", "subject": "s", "target": 2.0, "task": "", "start": 0, "end": -1,
                          "fold": "", "entry": str(demo_entry)}])


def test_items_have_the_papers_shapes(table):
    cfg = SampleConfig(num_subclips=1, trajectory_length=64)
    item = FaceSamples(table, ("clip", "heatmaps", "trajectory", "image"), cfg)[0]
    assert item["clip"].shape == (16, 3, 224, 224) and item["heatmaps"].shape == (16, 3, 56, 56)
    assert item["trajectory"].shape == (64, 63, 5) and item["time_index"].shape == (64,)
    assert item["image"].shape == (3, 112, 112) and item["landmarks"].shape == (73, 2)
    assert item["target"].item() == 2.0
    stt = FaceSamples(table, ("clip",), SampleConfig(sampling="segments", clip_size=112, normalize="none"))[0]
    assert stt["clip"].shape == (16, 3, 112, 112) and 0 <= stt["clip"].min() and stt["clip"].max() <= 1


def test_items_are_reproducible_per_epoch(table):
    ds = FaceSamples(table, ("clip", "image"), SampleConfig(num_subclips=1), train=True, seed=3, repeats=4)
    a, b = ds[1], ds[1]
    assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    c = [ds[i]["image"] for i in range(4)]
    assert any(not torch.equal(x, a["image"]) for x in c)  # another epoch draws other crops


def test_flipped_landmarks_follow_the_flipped_image(table):
    cfg = SampleConfig(crop_scale=(1.0, 1.0), flip=True, normalize="none")
    plain = FaceSamples(table, ("image",), SampleConfig(normalize="none"))[0]
    mirror = mirror_permutation(plain["landmarks"].numpy())
    ds = FaceSamples(table, ("image",), cfg, train=True, seed=0, repeats=16, mirror=mirror)
    flipped = next(it for it in (ds[i] for i in range(16)) if not torch.equal(it["image"], plain["image"]))
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))
    expect = plain["landmarks"].clone()
    expect[:, 0] = 111 - expect[:, 0]  # torchvision: pixel centres at integers, x -> W - 1 - x
    torch.testing.assert_close(flipped["landmarks"], expect[mirror])
    # after the flip and the left/right permutation, the subject's right eye is again on the image left
    assert flipped["landmarks"][:10, 0].mean() < flipped["landmarks"][54:64, 0].mean()


def test_mirror_permutation_of_a_symmetric_shape():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 5.0], [2.0, 8.0], [8.0, 8.0]])
    assert mirror_permutation(pts).tolist() == [1, 0, 2, 4, 3]
