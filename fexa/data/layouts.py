"""Tiny synthetic copies of every supported dataset's official layout, made from the bundled demo
clip's frames (the same face in every sample): what the config tests and ``fexa reproduce --check``
train on, so a config's adapter, extraction, store and training step meet the files a researcher's
copy of the dataset holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from fexa.io.media import read_all
from fexa.io.video_writer import VideoWriter

DEMO = Path(__file__).resolve().parent / "demo" / "single_face.mp4"
N = 16  # frames per clip
SUBJECTS = ("S01", "S02", "S03", "S04")


def _frames(folder: Path, frames: np.ndarray, ext: str = "jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames, 1):
        Image.fromarray(f).save(folder / f"{i:05d}.{ext}")
    return folder


def _image(path: Path, frame: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame).save(path)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _video(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 25.0) as w:
        for f in frames:
            w.write(f)


def make_layouts(root: str | Path) -> dict[str, Path]:
    """dataset -> its folder under ``root``: a few samples per class/task, over four subjects, train and test."""
    root = Path(root)
    frames = read_all(DEMO)[1][:40][::2][:N]  # half-size steps through the demo clip's smile
    small = np.ascontiguousarray(frames[:, ::2, ::2])
    out = {}
    # PFED5: root/<patient>/<video>/*.jpg; CSVs id_v, score, frames, action (0-4)
    d = out["pfed5"] = root / "PFED5"
    lines = {"train": [], "test": []}
    for s, pid in enumerate(SUBJECTS):
        for action in range(5):
            vid = f"01_{action:02d}_{s:02d}_01"
            _frames(d / pid / vid, small)
            lines["test" if s >= 2 else "train"].append(f"{vid}_{pid},{(s + action) % 5},{N},{action}")
    for split, rows in lines.items():
        _write(d / f"PFED5_{split}.csv", "id_v,score,frames,action\n" + "\n".join(rows) + "\n")
    # Toronto NeuroFace: videos, a repetition split file and the raters' labels with groups
    d = out["toronto_neuroface"] = root / "Toronto"
    split, labels = ["File Name,repID,Number of Frames,start,end"], ["File Name,sum,group,symmetry,ROM,speed"]
    for s, pid in enumerate(SUBJECTS):
        for task in ("BLOW", "BROW", "KISS", "OPEN", "SPREAD"):
            name = f"{pid}_{task}.mp4"
            _video(d / name, small)
            split += [f"{name},1,{N},0,{N // 2}", f"{name},2,{N},{N // 2},{N}"]
            labels.append(f"{name},{s + 0.5},{'ALS' if s % 2 else 'HC'},{1 + s % 4},{1 + (s + 1) % 4},{1 + (s + 2) % 4}")
    _write(d / "Toronto_NeuroFace_split_.csv", "\n".join(split) + "\n")
    _write(d / "labels.csv", "\n".join(labels) + "\n")
    # UNBC-McMaster: Images/<subject>/<sequence>/ and Sequence_Labels/VAS/<subject>/<sequence>.txt
    d = out["unbc"] = root / "UNBC"
    for s, pid in enumerate(SUBJECTS):
        for k in range(2):
            _frames(d / "Images" / pid / f"{pid}t{k}", small, "png")
            _write(d / "Sequence_Labels" / "VAS" / pid / f"{pid}t{k}.txt", f"{s + k}.0000000e+00\n")
    # DFEW: frame folders and Former-DFER's annotation lines, five folds (fold k tests clips 2k-2, 2k-1)
    d = out["dfew"] = root / "DFEW"
    for c in range(10):
        _frames(d / f"{c:05d}", small)
    for k in range(1, 6):
        test = {2 * k - 2, 2 * k - 1}
        for split, clips in (("train", [c for c in range(10) if c not in test]), ("test", sorted(test))):
            _write(d / f"set_{k}_{split}.txt", "".join(f"/DFEW/{c:05d} {N} {c % 7}\n" for c in clips))
    # AFEW: <Train|Val>/<Emotion>/<clip>.avi
    d = out["afew"] = root / "AFEW"
    for split, clips in (("Train", range(7)), ("Val", range(7, 9))):
        for c in clips:
            _video(d / split / ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")[c % 7]
                        / f"{c:06d}.avi", small)
    # Aff-Wild2: per-video label files (header, then one label per frame) and cropped frames
    d = out["affwild2"] = root / "AffWild2"
    for s, (folder, video) in enumerate([("Train_Set", "10-60-1280x720"), ("Train_Set", "11-24-1920x1080"),
                                         ("Train_Set", "12-24-1920x1080"), ("Validation_Set", "13-30-1920x1080")]):
        _frames(d / "cropped_aligned" / video, small)
        _write(d / folder / f"{video}.txt", "Neutral,Anger,...\n" + "".join(f"{(i + s) % 8}\n" for i in range(N)))
    # face-crop image sets
    faces = [np.ascontiguousarray(f[40:440, 120:520]) for f in frames[::2]]  # the face, roughly, as the crops show it
    d = out["rafdb"] = root / "RAFDB"
    names = [f"train_{i:05d}" for i in range(1, 8)] + ["test_0001", "test_0002"]
    for i, n in enumerate(names):
        _image(d / "Image" / "aligned" / f"{n}_aligned.jpg", faces[i % len(faces)])
    _write(d / "EmoLabel" / "list_patition_label.txt", "".join(f"{n}.jpg {i % 7 + 1}\n" for i, n in enumerate(names)))
    d = out["ferplus"] = root / "FERPlus"
    cols = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = []
    for i, usage in enumerate(["Training"] * 8 + ["PublicTest"] * 2 + ["PrivateTest"] * 2):
        name = f"fer{i:07d}.png"
        _image(d / {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}[usage] / name,
               np.asarray(Image.fromarray(faces[i % len(faces)]).convert("L").resize((48, 48))))
        votes = [0] * 10
        votes[i % 8] = 9
        rows.append(f"{usage},{name}," + ",".join(map(str, votes)))
    _write(d / "fer2013new.csv", cols + "\n" + "\n".join(rows) + "\n")
    d = out["affectnet7"] = root / "AffectNet"
    head = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
    for csv, items in (("training.csv", range(8)), ("validation.csv", range(8, 10))):
        for i in items:
            _image(d / "Manually_Annotated_Images" / "1" / f"{i}.jpg", faces[i % len(faces)])
        _write(d / "Manually_Annotated_file_lists" / csv,
               head + "".join(f"1/{i}.jpg,0,0,1,1,x,{i % 7},0,0\n" for i in items))
    # a manifest of windows of longer videos (the hypomimia sanity set's layout)
    d = out["manifest"] = root / "manifest.csv"
    rows = [f"{root / 'Toronto' / f'{pid}_OPEN.mp4'},{pid},{k},OPEN,{4 * k},{4 * k + 8}"
            for pid in SUBJECTS for k in range(3)]
    _write(d, "path,subject,score,task,start,end\n" + "\n".join(rows) + "\n")
    # the small real sets' layouts (../shared/data): labels.csv beside the images
    d = out["jaffe"] = root / "jaffe"
    codes = ("NE", "HA", "SA", "SU", "AN", "DI", "FE")
    rows = [f"{s}.{codes[i % 7]}{i}.tiff,{s},{codes[i % 7]}" for s in SUBJECTS for i in range(4)]
    for r in rows:
        _image(d / r.split(",")[0], np.asarray(Image.fromarray(faces[len(r) % len(faces)]).convert("L")))
    _write(d / "labels.csv", "file,subject_id,expression_code\n" + "\n".join(rows) + "\n")
    d = out["ckplus48"] = root / "ckplus48"
    classes = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
    rows = [f"{classes[i % 7]}/{s}_{i}.png,{s},{classes[i % 7]},{i}" for s in SUBJECTS for i in range(4)]
    for r in rows:
        _image(d / r.split(",")[0], np.asarray(Image.fromarray(faces[len(r) % len(faces)]).convert("L").resize((48, 48))))
    _write(d / "labels.csv", "file,subject_id,expression,sequence_id\n" + "\n".join(rows) + "\n")
    return out
