import numpy as np
import pytest

from fexa.face.landmarks import LAYOUTS, SCHEMES, get_layout, get_scheme, interocular, nose_tip
from fexa.io.trackfile import TrackData

# TraMP-Former's reference groups, as indices into its 71-point array (../shared/spec/models.md §2).
REF_GROUPS_71 = {
    "right_eye": list(range(0, 9)), "right_brow": list(range(9, 18)), "left_eye": list(range(53, 62)),
    "left_brow": list(range(62, 71)), "nose": [38, 40, 41, 42, 44, 46, 50, 48, 47],
    "lower_lip": [18, 20, 26, 23, 27, 24, 25, 22, 21], "upper_lip": [18, 29, 33, 27, 35, 36, 28, 32, 31],
}


def test_schemes_have_the_papers_sizes():
    h, t = get_scheme("heatmap73"), get_scheme("traj63")
    assert h.num_points == 73 and h.points_2d106 == tuple(range(33, 106))
    assert t.num_points == 63 and len(t.regions) == 7
    assert all(len(p) == 9 for _, p in t.regions)
    assert t.region_names == ["right_eye", "right_brow", "left_eye", "left_brow", "nose", "lower_lip", "upper_lip"]
    # the mouth corners (2d106 52 and 61) are in both lip groups
    lo, up = dict(t.regions)["lower_lip"], dict(t.regions)["upper_lip"]
    assert {52, 61} <= set(lo) & set(up)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_point_maps_into_every_layout(scheme, layout):
    s = get_scheme(scheme)
    src = s.source_indices(layout)
    n = get_layout(layout).num_points
    assert len(src) == s.num_points
    assert all(0 <= i < n for group in src for i in group)
    w = s.weights(layout)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)


def test_mediapipe_points_are_distinct():
    for s in SCHEMES.values():
        idx = [g[0] for g in s.source_indices("mediapipe478")]
        # distinct 2d106 points get distinct mesh points (traj63 repeats only the two mouth corners)
        assert len(set(idx)) == len(set(s.points_2d106)), s.name


def test_traj63_matches_the_reference_71_point_indexing():
    """Build the reference's 71-point array from a 73-point file (sequential np.delete of local
    indices 1 then 54) and check every group and the nose tip against our scheme."""
    rng = np.random.default_rng(0)
    arr73 = rng.normal(size=(4, 73, 2))
    arr71 = np.delete(np.delete(arr73, 1, axis=1), 54, axis=1)
    ours = get_scheme("traj63").select(arr73, "insightface73")
    ref = np.concatenate([arr71[:, REF_GROUPS_71[r]] for r in get_scheme("traj63").region_names], axis=1)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(nose_tip(arr73, "insightface73"), arr71[:, 52])


def test_73_and_106_layouts_agree():
    a106 = np.random.default_rng(1).normal(size=(2, 106, 2))
    for s in SCHEMES.values():
        np.testing.assert_array_equal(s.select(a106, "insightface106"), s.select(a106[:, 33:], "insightface73"))


def test_ibug68_derived_points_are_means():
    p68 = np.random.default_rng(2).normal(size=(3, 68, 2))
    h = get_scheme("heatmap73").select(p68, "ibug68")
    # 2d106 point 40 (upper eyelid middle) = mean of iBUG 37 and 38; 2d106 point 52 = iBUG 48
    np.testing.assert_allclose(h[:, 40 - 33], p68[:, [37, 38]].mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(h[:, 52 - 33], p68[:, 48])


def test_wrong_point_count_is_a_clear_error():
    with pytest.raises(ValueError, match="expected 478 points"):
        get_scheme("traj63").select(np.zeros((2, 68, 2)), "mediapipe478")
    with pytest.raises(KeyError, match="unknown landmark scheme"):
        get_scheme("nope")


def test_mediapipe_mapping_is_anatomically_right(demo_entry):
    """On a real frontal face: subject's right parts on the image left, brows above eyes, upper lip
    above lower lip, the iris centre inside the eye, the nose tip between the eyes horizontally."""
    tr = TrackData.load(demo_entry / "track.npz")
    p = tr.points_crop[tr.valid][:10]
    s = get_scheme("traj63")
    reg = {r: s.select(p, "mediapipe478")[:, s.region_slice(r)] for r in s.region_names}
    assert (reg["right_eye"][..., 0].mean(1) < reg["left_eye"][..., 0].mean(1)).all()
    assert (reg["right_brow"][..., 1].mean(1) < reg["right_eye"][..., 1].mean(1)).all()
    assert (reg["left_brow"][..., 1].mean(1) < reg["left_eye"][..., 1].mean(1)).all()
    assert (reg["nose"][..., 1].mean(1) < reg["upper_lip"][..., 1].mean(1)).all()
    # inner-lip midpoints: 2d106 62 (upper, position 6 in upper_lip) above 60 (lower, position 2)
    assert (reg["upper_lip"][:, 6, 1] <= reg["lower_lip"][:, 2, 1]).all()
    h = get_scheme("heatmap73").select(p, "mediapipe478")
    iris, eye = h[:, 34 - 33], h[:, [35 - 33, 39 - 33]]  # centre, outer and inner corners
    assert ((iris[:, 0] > eye[:, :, 0].min(1)) & (iris[:, 0] < eye[:, :, 0].max(1))).all()
    nose = nose_tip(p, "mediapipe478")
    assert ((nose[:, 0] > reg["right_eye"][..., 0].mean(1)) & (nose[:, 0] < reg["left_eye"][..., 0].mean(1))).all()
    iod = interocular(p, "mediapipe478")
    assert (iod > 0.25 * tr.crop_size).all() and (iod < 0.75 * tr.crop_size).all()
