"""Dataset adapters on synthetic copies of the official layouts, the real sets in ../shared/data,
and subject-wise splits."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import shared_file
from fexa.data.adapters import DATASETS, load_dataset, read_affwild2_labels
from fexa.data.splits import assert_subject_disjoint, fixed_split, split_fold, subject_folds, validation_split
from fexa.data.tables import make_table
from fexa.errors import FexaError


def _frames(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (8, 8)).save(folder / f"{i:05d}.jpg")


def test_pfed5_layout_and_frame_count_check(tmp_path):
    (tmp_path / "PFED5_train.csv").write_text("id_v,score,frames,action\n01_01_01_01_P01,2,3,1\n01_02_01_01_P02,0,2,4\n")
    (tmp_path / "PFED5_test.csv").write_text("01_03_01_01_P03,4,2,0\n")  # no header: read by position
    for pid, vid, n in (("P01", "01_01_01_01", 3), ("P02", "01_02_01_01", 2), ("P03", "01_03_01_01", 2)):
        _frames(tmp_path / pid / vid, n)
    t = load_dataset("pfed5", tmp_path)
    assert t["subject"].tolist() == ["P01", "P02", "P03"] and t["task"].tolist() == ["smile", "clench_teeth", "sit_at_rest"]
    assert t["fold"].tolist() == ["train", "train", "test"] and t["target"].tolist() == [2, 0, 4]
    (tmp_path / "P01" / "01_01_01_01" / "00002.jpg").unlink()
    with pytest.raises(FexaError, match="wrong frame count"):
        load_dataset("pfed5", tmp_path)


def test_dfew_rafdb_and_malformed_lines(tmp_path):
    (tmp_path / "set_1_train.txt").write_text("/data/DFEW/clip/00001 16 0\n/data/DFEW/clip/00002 20 6\n")
    (tmp_path / "set_1_test.txt").write_text("/data/DFEW/clip/00003 18 2\n")
    t = load_dataset("dfew", tmp_path)
    assert t["path"].tolist() == [str(tmp_path / c) for c in ("00001", "00002", "00003")]
    assert t["target"].tolist() == [0, 6, 2] and DATASETS["dfew"].classes[2] == "neutral"
    (tmp_path / "set_1_test.txt").write_text("00003 eighteen 2\n")
    with pytest.raises(FexaError, match="set_1_test.txt:1"):
        load_dataset("dfew", tmp_path)
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5\ntest_0001.jpg 7\n")
    t = load_dataset("rafdb", tmp_path)
    assert t["target"].tolist() == [4, 6] and t["fold"].tolist() == ["train", "test"]
    assert t["path"][0].endswith("Image/aligned/train_00001_aligned.jpg")
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 9\n")
    with pytest.raises(FexaError, match="label 1-7"):
        load_dataset("rafdb", tmp_path)


def test_ferplus_majority_and_affectnet(tmp_path):
    cols = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    (tmp_path / "fer2013new.csv").write_text(cols + "\nTraining,a.png,1,8,0,0,0,0,0,0,1,0\n"
                                             "Training,b.png,4,4,0,0,0,0,0,0,2,0\nPublicTest,c.png,0,0,0,0,0,0,0,0,2,8\n"
                                             "PrivateTest,d.png,0,0,0,0,0,0,7,0,3,0\n")
    t = load_dataset("ferplus", tmp_path)  # b is tied, c is not a face
    assert t["id"].tolist() == ["Training_a", "PrivateTest_d"] and t["target"].tolist() == [1, 6]
    assert t["path"][1].endswith("FER2013Test/d.png") and t["fold"].tolist() == ["train", "test"]
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    head = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
    (lists / "training.csv").write_text(head + "1/a.jpg,0,0,1,1,x,3,0,0\n1/b.jpg,0,0,1,1,x,7,0,0\n")
    (lists / "validation.csv").write_text(head + "2/c.jpg,0,0,1,1,x,0,0,0\n")
    t = load_dataset("affectnet7", tmp_path)
    assert t["target"].tolist() == [3, 0] and t["fold"].tolist() == ["train", "test"]  # contempt (7) left out


def test_affwild2_labels(tmp_path):
    (tmp_path / "Train_Set").mkdir()
    (tmp_path / "Train_Set" / "12-24-1920x1080.txt").write_text("Neutral,Anger,...\n-1\n4\n4\n0\n")
    t = load_dataset("affwild2", tmp_path, labels={"train": "Train_Set"})
    assert t["target"].tolist() == [4] and t["subject"].tolist() == ["12-24-1920x1080".split("_")[0]]
    np.testing.assert_array_equal(read_affwild2_labels(t["labels_file"][0]), [-1, 4, 4, 0])
    (tmp_path / "Train_Set" / "bad.txt").write_text("header\n9\n")
    with pytest.raises(FexaError, match="outside -1..7"):
        load_dataset("affwild2", tmp_path, labels={"train": "Train_Set"})


def test_unbc_toronto_and_manifest(tmp_path):
    (tmp_path / "Sequence_Labels/VAS/042-ll042").mkdir(parents=True)
    (tmp_path / "Sequence_Labels/VAS/042-ll042/ll042t1aaaff.txt").write_text("3.0000000e+00\n")
    t = load_dataset("unbc", tmp_path)
    assert t["target"].tolist() == [3.0] and t["path"][0].endswith("Images/042-ll042/ll042t1aaaff")
    (tmp_path / "Toronto_NeuroFace_split_.csv").write_text(
        "File Name,repID,Number of Frames,start,end\nS01_BLOW_1.mp4,1,100,0,40\nS01_BLOW_1.mp4,2,100,40,90\n"
        "S02_BIGSMILE.mp4,1,50,0,50\n")
    (tmp_path / "labels.csv").write_text("File Name,sum,group\nS01_BLOW_1.mp4,2.5,ALS\nS02_BIGSMILE.mp4,1,HC\n")
    t = load_dataset("toronto_neuroface", tmp_path)
    assert t["id"].tolist() == ["S01_BLOW_1_rep1", "S01_BLOW_1_rep2"] and t["start"].tolist() == [0, 40]
    assert t["task"].tolist() == ["BLOW", "BLOW"] and t["group"].tolist() == ["ALS", "ALS"]
    (tmp_path / "m.csv").write_text("path,subject,score,task\nclip1.mp4,s1,2,smile\n/abs/clip2.mp4,s2,0,smile\n")
    t = load_dataset("manifest", tmp_path / "m.csv")
    assert t["path"].tolist() == [str(tmp_path / "clip1.mp4"), "/abs/clip2.mp4"] and t["target"].tolist() == [2, 0]
    (tmp_path / "bad.csv").write_text("file,who\nx.mp4,s1\n")
    with pytest.raises(FexaError, match=r"lacks columns \['path', 'subject', 'label or score'\]"):
        load_dataset("manifest", tmp_path / "bad.csv")
    with pytest.raises(FexaError, match="unknown dataset"):
        load_dataset("pfed6", tmp_path)
    with pytest.raises(FexaError, match="not found"):
        load_dataset("pfed5", tmp_path / "nowhere")


def test_tables_are_validated():
    with pytest.raises(FexaError, match="duplicate sample ids"):
        make_table([{"id": "a", "path": "p", "subject": "s", "target": 1}] * 2, "x")
    with pytest.raises(FexaError, match="lack columns"):
        make_table([{"id": "a", "path": "p", "target": 1}], "x")
    with pytest.raises(FexaError, match="have no subject"):
        make_table([{"id": "a", "path": "p", "subject": None, "target": 1}], "x")


def test_shared_sets():
    ck = load_dataset("ckplus48", shared_file("ckplus48"))
    assert len(ck) == 981 and ck["subject"].nunique() == 118
    assert ck.groupby("target").size().tolist() == [135, 54, 177, 75, 207, 84, 249]
    jaffe = load_dataset("jaffe", shared_file("jaffe"))
    assert len(jaffe) == 170 and jaffe["subject"].nunique() == 8 and "r60_HAP" in jaffe
    assert "NA" in set(jaffe["subject"])  # a subject code, not a missing value


def _subjects_table(n_subjects=10, per=3, groups=("A", "B")):
    return pd.DataFrame([{"id": f"s{s}_{i}", "subject": f"s{s}", "group": groups[s % len(groups)], "target": i}
                         for s in range(n_subjects) for i in range(per)])


def test_subject_folds_are_disjoint_balanced_and_stratified():
    t = _subjects_table(12, groups=("ALS", "stroke", "healthy"))
    folds = subject_folds(t, 3, seed=1, stratify="group")
    assert (t.groupby("subject").apply(lambda g: folds[g.index].nunique()) == 1).all()  # a subject in one fold
    per_fold = t.assign(f=folds).drop_duplicates("subject").groupby(["f", "group"]).size().unstack()
    assert per_fold.sum(axis=1).tolist() == [4, 4, 4]
    assert (per_fold.max(axis=0) - per_fold.min(axis=0) <= 1).all()
    for f in range(3):
        train, test = split_fold(t, folds, f)
        assert not set(train.subject) & set(test.subject)
    train, val = validation_split(t, 0.25, seed=0)
    assert not set(train.subject) & set(val.subject) and 2 <= val.subject.nunique() <= 4
    with pytest.raises(FexaError, match="both sides"):
        assert_subject_disjoint(t.iloc[:4], t.iloc[3:6])
    with pytest.raises(FexaError, match="cannot make 20 subject folds"):
        subject_folds(t, 20)


def test_affwild2_per_frame_rows_follow_the_frame_folder(tmp_path):
    (tmp_path / "Train_Set").mkdir()
    (tmp_path / "Train_Set" / "v1.txt").write_text("header\n1\n-1\n5\n2\n")
    video = tmp_path / "cropped_aligned" / "v1"
    video.mkdir(parents=True)
    for n in (1, 2, 4):  # frame 3 had no face: its image is missing
        Image.new("RGB", (4, 4)).save(video / f"{n:05d}.jpg")
    t = load_dataset("affwild2", tmp_path, labels={"train": "Train_Set"}, per_frame=True)
    assert t["id"].tolist() == ["v1_00001", "v1_00004"] and t["target"].tolist() == [1, 2]
    assert t["start"].tolist() == [0, 2] and t["end"].tolist() == [1, 3]


def test_fixed_split_keeps_the_datasets_validation_set_apart():
    """FERPlus: Training trains, PublicTest validates, PrivateTest is the test set (the paper's)."""
    t = pd.DataFrame({"id": list("abcdef"), "subject": list("abcdef"),
                      "fold": ["train", "train", "val", "test", "test", "fold1"]})
    train, val, test = fixed_split(t)
    assert train["id"].tolist() == ["a", "b"] and val["id"].tolist() == ["c"] and test["id"].tolist() == ["d", "e", "f"]
    t.loc[2, "subject"] = "a"  # a training subject in the validation set
    with pytest.raises(FexaError, match="validation split: 1 subject"):
        fixed_split(t)


def test_repeat_factor_sampler_repeats_rare_classes_by_hand():
    """LVIS's rule by hand: 90 items of class 0, 10 of class 1. t = 0.4: r1 = sqrt(0.4 / 0.1) = 2 exactly,
    r0 = max(1, sqrt(0.4 / 0.9)) = 1, so every epoch holds each class-1 item twice, each class-0 item
    once (110 items). t = 0.2: r1 = sqrt(2), so each class-1 item comes once or twice (coin 0.414)."""
    from fexa.data.loading import RepeatFactorSampler
    from fexa.data.samples import FaceSamples

    table = pd.DataFrame({"id": range(100), "subject": range(100), "target": [0.0] * 90 + [1.0] * 10,
                          "entry": "unused"})
    ds = FaceSamples(table, ("image",), train=True)
    s = RepeatFactorSampler(ds, 0.4, seed=3)
    for epoch in (0, 1):
        s.set_epoch(epoch)
        order = list(s)
        assert len(s) == len(order) == 110
        assert np.bincount(order, minlength=100).tolist() == [1] * 90 + [2] * 10
    assert list(s) != (s.set_epoch(0) or list(s))  # shuffled afresh each epoch
    s = RepeatFactorSampler(ds, 0.2, seed=3)
    counts = []
    for epoch in range(200):
        s.set_epoch(epoch)
        c = np.bincount(list(s), minlength=100)
        assert set(c[:90]) == {1} and set(c[90:]) <= {1, 2}
        counts.append(c[90:].sum())
    assert abs(np.mean(counts) - 10 * np.sqrt(2)) < 0.2  # 14.14 expected; the mean of 200 epochs is within ~0.1
    r0, r1 = (RepeatFactorSampler(ds, 0.2, 2, rank, seed=3) for rank in (0, 1))
    for r in (r0, r1, s):
        r.set_epoch(5)
    whole = list(s)
    assert len(r0) == len(r1) == -(-len(whole) // 2)
    assert sorted(list(r0) + list(r1)) == sorted(whole + whole[: len(whole) % 2])  # padded with its own first item


def test_balanced_sampler_oversamples_rare_classes_the_same_way_everywhere():
    """90 items of class 0, 10 of class 1: balanced draws give each class about half; the list is a
    function of (seed, epoch) only, and two processes split it without overlap."""
    from fexa.data.loading import BalancedSampler
    from fexa.data.samples import FaceSamples

    table = pd.DataFrame({"id": range(100), "subject": range(100), "target": [0.0] * 90 + [1.0] * 10,
                          "entry": "unused"})
    ds = FaceSamples(table, ("image",), train=True, repeats=2)
    s = BalancedSampler(ds, seed=3)
    s.set_epoch(1)
    a = list(s)
    assert len(a) == len(ds) == 200
    rare = np.mean([ds.row_of(i) >= 90 for i in a])
    assert 0.4 < rare < 0.6  # uniform sampling would give 0.1
    assert a == list(s) and a != (s.set_epoch(2) or list(s))
    s.set_epoch(1)
    r0, r1 = BalancedSampler(ds, 2, 0, seed=3), BalancedSampler(ds, 2, 1, seed=3)
    for r in (r0, r1):
        r.set_epoch(1)
    assert len(r0) == len(r1) == 100 and sorted(list(r0) + list(r1)) == sorted(a)
