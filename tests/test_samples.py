"""Model inputs built from a cached entry: shapes, determinism, and landmarks that follow the image."""

import numpy as np
import pandas as pd
import pytest
import torch

from torchvision.transforms.v2 import functional as F

from fexa.data.samples import FaceSamples, SampleConfig, mirror_permutation
from fexa.face.landmarks import get_scheme


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
    stt_cfg = SampleConfig(sampling="segments", clip_size=112, normalize="none", clip_test="resize")
    stt = FaceSamples(table, ("clip",), stt_cfg)[0]
    assert stt["clip"].shape == (16, 3, 112, 112) and 0 <= stt["clip"].min() and stt["clip"].max() <= 1


def test_items_are_reproducible_per_epoch(table):
    ds = FaceSamples(table, ("clip", "image"), SampleConfig(num_subclips=1), train=True, seed=3, repeats=4)
    a, b = ds[1], ds[1]
    assert torch.equal(a["clip"], b["clip"]) and torch.equal(a["image"], b["image"])
    ds.set_epoch(1)
    c = [ds[i]["image"] for i in range(4)]
    assert any(not torch.equal(x, a["image"]) for x in c)  # another epoch draws other crops


# Mirror images in mediapipe's canonical face model (mediapipe/modules/face_geometry/data/
# canonical_face_model.obj: vertex 263 is vertex 33 with x negated, and so on; the iris centres 468
# and 473 are the refined mesh's extra points), for every mesh point the heatmap73 scheme uses:
# (subject's right, subject's left) pairs, then the midline points, which are their own mirror.
_MESH_MIRROR_PAIRS = (
    (33, 263), (133, 362), (468, 473), (144, 373), (145, 374), (153, 380), (158, 385), (159, 386), (160, 387),
    (161, 388),  # eyes: outer corners, inner corners, iris centres, lids
    (70, 300), (63, 293), (105, 334), (66, 296), (107, 336), (55, 285), (65, 295), (52, 282), (53, 283),  # brows
    (61, 291), (40, 270), (37, 267), (91, 321), (84, 314), (78, 308), (81, 311), (178, 402),  # mouth corners, lips
    (196, 419), (129, 358), (64, 294), (98, 327), (97, 326),  # sides of the nose
)
_MESH_MIDLINE = (0, 17, 13, 14, 168, 197, 5, 1, 2)  # lips' midpoints, nose bridge, tip and subnasale


def _canonical_mirror() -> list[int]:
    """Each heatmap73 point's mirror point, from the canonical mesh's pairs above."""
    mesh = [src for (src,) in get_scheme("heatmap73").source_indices("mediapipe478")]
    partner = {m: m for m in _MESH_MIDLINE} | dict(_MESH_MIRROR_PAIRS) | {b: a for a, b in _MESH_MIRROR_PAIRS}
    return [mesh.index(partner[m]) for m in mesh]


def test_flipped_landmarks_follow_the_flipped_image(table):
    """A horizontal flip puts every landmark at x -> 111 - x (W - 1 - x: fexa's pixel centres are at
    integers, as in cv2.warpAffine's crops and the heatmaps' rounding to a pixel; the image's column j
    goes to 111 - j), and the subject's left points take the place of the right ones. Mutant
    (scripts/mutation_check.py): fexa/data/samples.py FaceSamples._image without ``kp = kp[self.mirror]``."""
    mirror = _canonical_mirror()
    # heatmap73 positions (2d106 index - 33) of the pairs checked by name: the scheme maps them to the mesh
    assert [mirror[k] for k in (2, 6, 19, 1, 53, 38, 20)] == [56, 60, 28, 55, 53, 38, 20]
    assert sorted(mirror) == list(range(73)) and all(mirror[mirror[k]] == k for k in range(73))
    cfg = SampleConfig(crop_scale=(1.0, 1.0), flip=True, normalize="none")
    plain = FaceSamples(table, ("image",), SampleConfig(normalize="none"))[0]
    assert mirror_permutation(plain["landmarks"].numpy()).tolist() == mirror  # the real face's mirror is the mesh's
    ds = FaceSamples(table, ("image",), cfg, train=True, seed=0, repeats=16, mirror=np.array(mirror))
    flipped = next(it for it in (ds[i] for i in range(16)) if not torch.equal(it["image"], plain["image"]))
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))
    p, q = plain["landmarks"], flipped["landmarks"]

    def mirrored(k: int) -> list[float]:
        """Point ``k`` of the plain image where the flip puts it (float32, as the landmarks)."""
        return [(111 - p[k, 0]).item(), p[k, 1].item()]

    for name, right, left in (("outer eye corners (mesh 33, 263)", 2, 56), ("inner eye corners (133, 362)", 6, 60),
                              ("mouth corners (61, 291)", 19, 28), ("iris centres (468, 473)", 1, 55)):
        for a, b in ((right, left), (left, right)):  # each takes the other's place, mirrored
            assert q[a].tolist() == mirrored(b), name
    for midline in (53, 38, 20):  # nose tip (mesh 1), upper and lower lip (0, 17): their own mirror
        assert q[midline].tolist() == mirrored(midline)
    expect = torch.stack([111 - p[mirror, 0], p[mirror, 1]], dim=1)  # every point, by the same rule
    assert torch.equal(q, expect)
    # after the flip and the left/right permutation, the subject's right eye is again on the image left
    assert q[:10, 0].max() < q[54:64, 0].min()


def test_mirror_permutation_of_a_symmetric_shape():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 5.0], [2.0, 8.0], [8.0, 8.0]])
    assert mirror_permutation(pts).tolist() == [1, 0, 2, 4, 3]


def _crops_of(ds: FaceSamples, item: int) -> torch.Tensor:
    """The [T, 3, N, N] stored crops an item's clip was cut from (same frames: same seeded draws)."""
    raw = FaceSamples(ds.table, ("clip", "heatmaps"), ds.cfg, ds.train, ds.seed, uint8=True)
    raw.set_epoch(ds.epoch)
    return raw[item]["crops"].permute(0, 3, 1, 2)


@pytest.mark.parametrize("size, test_mode", [(112, "resize"), (224, "resize"), (224, "center")])
def test_test_clips_are_the_whole_face_resized_or_the_papers_centre_window(table, size, test_mode):
    """Former-DFER / STT (112) and TraMP-Former (224) resize the whole 256-px face at test time;
    QAFE-Net cuts the centre 224 (a 112 window would keep eyes to mouth only, brows and chin lost)."""
    cfg = SampleConfig(sampling="segments", clip_size=size, normalize="none", clip_test=test_mode)
    ds = FaceSamples(table, ("clip",), cfg, uint8=True)
    clip, crops = ds[0]["clip"], _crops_of(ds, 0)
    want = F.resize(crops, [size, size], antialias=True) if test_mode == "resize" else crops[..., 16:240, 16:240]
    assert clip.shape == (16, 3, size, size) and torch.equal(clip, want)


def test_training_clips_of_the_former_dfer_recipe_are_random_boxes_resized(table):
    """clip_train=resized_crop: one box per clip, 8-100 % of the crop's area, aspect 3/4..4/3, resized."""
    cfg = SampleConfig(sampling="segments", clip_size=112, normalize="none", clip_train="resized_crop", flip=False)
    ds = FaceSamples(table, ("clip",), cfg, train=True, seed=5, repeats=40, uint8=True)
    areas = []
    for i in range(40):
        rng = np.random.default_rng([5, 0, i, 0])  # the item's draws (flip off: none for it)
        ds._frame_indices(len(ds.entries(ds._entry[0]).usable_frames), rng)
        x0, y0, w, h = ds._clip_box(256, rng)
        assert 0.08 * 256**2 * 0.99 <= w * h <= 256**2 * 1.01 and 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
        assert 0 <= x0 <= 256 - w and 0 <= y0 <= 256 - h
        areas.append(w * h / 256**2)
        if i < 3:  # the item is that box of its crops, resized
            want = F.resize(_crops_of(ds, i)[..., y0:y0 + h, x0:x0 + w], [112, 112], antialias=True)
            assert torch.equal(ds[i]["clip"], want)
    assert min(areas) < 0.4 and max(areas) > 0.7  # the boxes vary


class _DotsEntry:
    """A fake store entry: one 64-px frame, grey with white 3 x 3 dots at its three landmarks."""

    def __init__(self):
        self.pts = np.array([[[12.0, 14.0], [40.0, 20.0], [30.0, 50.0]]], np.float32)
        img = np.full((1, 64, 64, 3), 60, np.uint8)
        for x, y in self.pts[0].astype(int):
            img[0, y - 1:y + 2, x - 1:x + 2] = 255
        self.img, self.usable_frames, self.crop_size = img, np.array([0]), 64
        self.heatmap73, self.traj63, self.nose = self.pts, self.pts, self.pts[:, 0]

    def frames(self, idx):
        return self.img[np.asarray(idx)]


def _dots_item(cfg: SampleConfig, seed: int = 0) -> dict:
    table = pd.DataFrame([{"id": "d", "path": "x", "subject": "s", "target": 0.0, "entry": "fake"}])
    ds = FaceSamples(table, ("image",), cfg, train=True, seed=seed, uint8=True)
    entry = _DotsEntry()
    ds.entries = lambda _: entry
    return ds[0]


def test_rotated_images_keep_their_landmarks_on_the_face():
    cfg = SampleConfig(image_size=64, crop_scale=(1.0, 1.0), flip=False, rotation=40.0)
    moved = []
    for seed in range(4):
        item = _dots_item(cfg, seed)
        img, kp = item["image"].float(), item["landmarks"]
        moved.append(float((kp - torch.from_numpy(_DotsEntry().pts[0])).abs().max()))
        for x, y in kp.round().long().tolist():  # each landmark sits on its (rotated) dot
            assert img[:, y - 1:y + 2, x - 1:x + 2].max() > 150, (seed, x, y)
    assert max(moved) > 5  # the angles drawn turned the face


def test_photometric_augmentations_by_hand():
    base = dict(image_size=64, crop_scale=(1.0, 1.0), flip=False)
    gray = _dots_item(SampleConfig(grayscale=1.0, color_jitter=0.4, **base))["image"]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    plain = _dots_item(SampleConfig(**base))["image"]
    blurred = _dots_item(SampleConfig(blur=1.0, blur_sigma=(1.5, 1.5), **base))["image"]
    assert (blurred > 60).sum() > 3 * (plain > 60).sum() and blurred.max() < 255  # the dots spread
    for normalize, fill in (("imagenet", [124, 116, 104]), ("none", [0, 0, 0])):
        erased = _dots_item(SampleConfig(erasing=1.0, normalize=normalize, **base))["image"]
        filled = (erased == torch.tensor(fill, dtype=torch.uint8)[:, None, None]).all(0)
        changed = (erased != plain).any(0) | (filled & (plain == erased).all(0))
        assert 0.02 * 64 * 64 * 0.8 <= filled.sum() and changed.sum() <= 0.33 * 64 * 64 * 1.2, normalize
        ys, xs = torch.nonzero(filled, as_tuple=True)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert box >= filled.sum() * 0.9  # one rectangle
