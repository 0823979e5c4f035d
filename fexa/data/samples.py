"""Torch datasets over extracted samples: each item holds exactly the inputs a model needs.

A sample table (``fexa.data.tables``) is linked to the extract cache (``fexa extract``), then
``FaceSamples`` builds per item, from the cached track and aligned crops:

- ``image`` [3, S, S] (the sample's middle frame) and ``landmarks`` [73, 2] in its pixels (PCDA);
- ``clip`` [n*16, 3, S, S] (QAFE/TraMP/STT RGB; n x 16 frames, or STT's 8 x 2 segments);
- ``heatmaps`` [n*16, 3, 56, 56] on the same frames (QAFE-Net);
- ``trajectory`` [T_p, 63, C] and ``time_index`` [T_p] (TraMP-Former);
- ``target`` (float: class index or score) and ``index`` (row of the table).

Landmarks come from the entry (fexa's mesh) or, for a table with a ``landmarks`` column (linked by
``fexa.data.landmark_files.link_landmarks``), from a landmark file's arrays. Clips with heatmaps or
trajectories use only frames with landmarks; an image without landmarks (a given face the mesh failed
on) gets every landmark at ``MISSING_LANDMARK``, far outside the image: PCDA's Gaussian trunk then
renders empty maps, so the model sees the image without landmark guidance.

An optional ``motion_scale`` column scales every landmark's displacement from the sample's first
frame before the landmark-based inputs (trajectories, heatmaps, image landmarks) are built: a
simulated reduction of facial motion, for sanity checks (the RGB pixels are not changed).

Randomness (window, crop, flip, time reversal) is drawn from a generator seeded by
(seed, epoch, index, clip): every item is reproducible, whatever the worker, process or resume.
Crops, resizes and flips are torchvision transforms v2 (landmarks as ``tv_tensors.KeyPoints``, so
they follow the image), applied with those drawn parameters.

Training items (``uint8=True``) leave part of the work to :func:`finish_batch`, run on the device
on whole batches: pixel normalisation, and for heatmap items the clip crop and the heatmap volume,
which the item carries as its uint8 ``crops`` (when the clip or the heatmap colours need them),
``heatmap_points`` and drawn offsets and flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from fexa.errors import FexaError
from fexa.data.landmark_files import FileLandmarks
from fexa.data.store import EntryCache, StoreConfig, ensure_stores
from fexa.represent.heatmap import HeatmapConfig, heatmap_volume_torch
from fexa.represent.sampling import clip_indices, segment_indices
from fexa.represent.trajectory import TrajectoryConfig, trajectory

if TYPE_CHECKING:
    import pandas as pd

    from fexa.extract import ExtractConfig

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
INPUT_KEYS = ("image", "clip", "heatmaps", "trajectory")
HOST_KEYS = ("flip", "clip_box", "heatmap_at", "heatmap_src")  # steer finish_batch: not copied to the device
MISSING_LANDMARK = -1000.0  # image landmarks of an image the mesh failed on (pixels, outside any crop)


@dataclass(frozen=True)
class SampleConfig:
    """How items are built (defaults: the papers' settings)."""

    image_size: int = 112  # static images (PCDA)
    clip_size: int = 224  # RGB clips (Former-DFER at 224; 112 for STT)
    num_subclips: int = 5  # T = n x 16 (UNBC-McMaster: 9)
    # where a training (or random test) clip of a video shorter than n x 16 frames starts before looping:
    # "first" frame (QAFE-Net's released PFED5 code) or a "random" one (QAFE-Net's text, used on UNBC-McMaster)
    clip_start: str = "first"
    sampling: str = "subclips"  # "subclips" (QAFE/TraMP) or "segments" (STT/Former-DFER: 8 x 2)
    normalize: str = "imagenet"  # "imagenet" or "none" (Former-DFER's DFEW models use [0, 1])
    heatmap_mode: str = "rgb_weighted"
    heatmap_sigma: float = 1.0
    # the patch drawn around each landmark and the smoothing blur (fexa.represent.heatmap); kernel 1 and
    # blur 0 mark the landmark pixels alone: QAFE-Net Table 4's "Landmarks" / Table 10's "N/A" row
    heatmap_kernel: int = 11
    heatmap_blur: int = 7
    heatmap_skip_first: bool = False  # the released code's 72 maps (its loop skips point 0); paper: all 73
    heatmap_subpixel: bool = False  # Gaussians at the exact coordinates; paper: at the landmark's pixel
    trajectory_length: int = 128
    trajectory_channels: int = 5
    trajectory_origin: str = "first"
    trajectory_padding: str = "loop"
    # a clip shorter than n x 16 frames: "loop" back to its start, or "zero" (black frames; TraMP-Former Table VIII)
    clip_padding: str = "loop"
    trajectory_scale: float = 1.0  # divide positions by this (1: crop pixels, as the reference)
    flip: bool = True  # training: horizontal flip
    crop_scale: tuple[float, float] = (0.8, 1.0)  # training: random resized crop of images (area)
    # clips from the stored crop (256 px): in training a random clip_size window ("crop": QAFE-Net,
    # TraMP-Former) or a random box of clip_scale of the area and aspect 3/4..4/3, resized
    # ("resized_crop": Former-DFER, STT); at test time the centre window ("center": QAFE-Net) or the
    # whole face resized ("resize": TraMP-Former, Former-DFER, STT)
    clip_train: str = "crop"
    clip_test: str = "center"
    clip_scale: tuple[float, float] = (0.08, 1.0)
    time_reverse: float = 0.5  # training: probability of reversing trajectories
    # training augmentations of images (0: off), each drawn from the item's generator. CFC-SP's
    # released recipe: rotation 6, grayscale 0.8, color_jitter 0.4 at 0.2, blur 0.1-2 sigma, erasing
    # 0.25; PCDA (POSTER): erasing 0.5. Erasing fills with the colour normalisation maps to 0.
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation] (landmarks follow)
    grayscale: float = 0.0  # probability
    color_jitter: float = 0.0  # brightness, contrast and saturation factors in [1 - j, 1 + j], random order
    color_jitter_p: float = 1.0  # probability of jittering
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # Gaussian blur sigma range
    blur: float = 0.0  # probability of blurring
    erasing: float = 0.0  # probability of erasing a box of erasing_scale of the image's area, aspect 0.3-3.3
    erasing_scale: tuple[float, float] = (0.02, 0.33)  # torchvision's default; POSTER (PCDA's base): 0.02-0.25
    test_clips: int = 1  # clips averaged per sample at test time (UNBC-McMaster: 10 random clips)


# -- linking a table to the extract cache -------------------------------------------------------
def link_cache(table: pd.DataFrame, cache: str | Path, extract: ExtractConfig | None = None, workers: int = 1,
               progress: bool = True, store: StoreConfig | None = StoreConfig()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract every sample's media into ``cache`` and build the entries' training stores
    (``store``; None: none); finished entries and stores are reused. Returns (usable rows with an
    ``entry`` column, dropped rows with the status and reason)."""
    from fexa.extract import USABLE_STATUSES, expand_inputs, extract_many, input_ids  # the face models: not in workers

    paths = sorted(set(table["path"]))
    expanded = expand_inputs(paths, "video")  # a dataset's folder is a clip's frames
    if [str(p) for p in expanded] != paths:
        raise FexaError("sample paths must be single videos, images or frame folders, not folders of videos")
    manifest = extract_many(paths, cache, extract, workers=workers, progress=progress, folder_as="video").set_index("id")
    ids = dict(zip(paths, input_ids([Path(p) for p in paths])))
    entry = table["path"].map(lambda p: str(Path(cache) / ids[p]))
    status = table["path"].map(lambda p: manifest["status"].get(ids[p], "missing"))
    reason = table["path"].map(lambda p: manifest["error"].get(ids[p], ""))
    ok = status.isin(USABLE_STATUSES)  # partial entries (damaged videos) are used; their manifest rows say so
    if store is not None:
        failed = ensure_stores(sorted(set(entry[ok])), store, workers, progress)
        bad = ok & entry.isin(list(failed))
        status, reason = status.mask(bad, "error"), reason.mask(bad, entry.map(failed))
        ok &= ~bad
    linked = table[ok].assign(entry=entry[ok])
    dropped = table[~ok].assign(status=status[~ok], reason=reason[~ok])
    return linked.reset_index(drop=True), dropped.reset_index(drop=True)


# -- small helpers --------------------------------------------------------------------------------
def mirror_permutation(points: np.ndarray) -> np.ndarray:
    """For a roughly frontal mean shape [P, 2], the index of each point's mirror image (found by
    matching the horizontally mirrored shape to the original)."""
    from scipy.optimize import linear_sum_assignment

    cx = points[:, 0].mean()
    mirrored = points.copy()
    mirrored[:, 0] = 2 * cx - mirrored[:, 0]
    cost = np.linalg.norm(mirrored[:, None] - points[None], axis=-1)
    _, perm = linear_sum_assignment(cost)
    return perm


class _Scaled:
    """Rows of a per-frame landmark array whose motion from row ``ref`` is scaled by ``scale``
    (read lazily, like the memory-mapped array it wraps)."""

    def __init__(self, values: np.ndarray, ref: int, scale: float):
        self.values, self.ref, self.scale = values, values[ref], scale

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, idx) -> np.ndarray:
        return self.ref + self.scale * (self.values[idx] - self.ref)


def landmark_arrays(entry, frames: np.ndarray, scale: float) -> dict:
    """The entry's heatmap73, traj63 and nose arrays, with motion scaled from the sample's first frame."""
    names = ("heatmap73", "traj63", "nose")
    if scale == 1.0:
        return {n: getattr(entry, n) for n in names}
    return {n: _Scaled(getattr(entry, n), int(frames[0]), scale) for n in names}


class FaceSamples(Dataset):
    """Items for the model inputs ``inputs`` (a subset of image, clip, heatmaps, trajectory).

    ``source``: ``"store"`` (the training store, ``fexa.data.store``: an item decodes only the
    frames it uses) or ``"video"`` (each entry's whole crops.mp4, the old slow path, for
    comparisons). ``uint8``: items stay uint8 and unfinished (a quarter of the bytes through the
    loader; heatmaps not drawn), for :func:`finish_batch` on the device; otherwise each item is
    finished by that same function. ``cache_mb``: each process's cache of opened entries (0: none)."""

    def __init__(self, table: pd.DataFrame, inputs: tuple[str, ...], cfg: SampleConfig = SampleConfig(),
                 train: bool = False, seed: int = 0, repeats: int = 1, mirror: np.ndarray | None = None,
                 source: str = "store", uint8: bool = False, cache_mb: int = 256):
        unknown = sorted(set(inputs) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"unknown inputs {unknown}; known: {INPUT_KEYS}")
        if "entry" not in table:
            raise ValueError("the table has no 'entry' column: link it to the extract cache first (link_cache)")
        self.table = table.reset_index(drop=True)
        self.inputs, self.cfg, self.train, self.seed = tuple(inputs), cfg, train, seed
        self.repeats = repeats if train else 1
        self.clips = 1 if train else cfg.test_clips
        self.epoch = 0
        self.mirror = mirror
        self.uint8 = uint8
        self.entries = EntryCache(source, max_bytes=cache_mb << 20, max_entries=128 if cache_mb else 0)
        t = self.table  # per-row values as arrays: an item reads no pandas (workers do not import it)
        self.rows = n = len(t)
        self._entry = t["entry"].astype(str).to_numpy()
        self._ids = t["id"].astype(str).to_numpy() if "id" in t else np.arange(n).astype(str)
        self._target = t["target"].to_numpy(np.float32)
        self._start = t["start"].fillna(0).to_numpy(np.int64) if "start" in t else np.zeros(n, np.int64)
        self._end = t["end"].fillna(-1).to_numpy(np.int64) if "end" in t else np.full(n, -1, np.int64)
        self._scale = t["motion_scale"].to_numpy(np.float64) if "motion_scale" in t else np.ones(n)
        self._landmarks = t["landmarks"].fillna("").astype(str).to_numpy() if "landmarks" in t else np.full(n, "")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getstate__(self) -> dict:  # loader workers get the arrays, not the table: no pandas there
        return {k: v for k, v in self.__dict__.items() if k != "table"}

    def __len__(self) -> int:
        return self.rows * self.repeats * self.clips

    def row_of(self, item: int) -> int:
        return (item // self.clips) % self.rows

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        """Item ``item`` of the current epoch, or of ``epoch`` for an ``(epoch, item)`` pair (what loader
        workers receive: their copy of the dataset does not see ``set_epoch``)."""
        epoch, item = item if isinstance(item, tuple) else (self.epoch, item)
        row = self.row_of(item)
        clip_no = item % self.clips
        rng = np.random.default_rng([self.seed, epoch if self.train else 0, item, clip_no])
        entry = self.entries(self._entry[row])
        if self._landmarks[row]:
            entry = FileLandmarks(entry, self._landmarks[row])
        start, end = int(self._start[row]), int(self._end[row])
        usable = entry.usable_frames
        frames = usable[np.searchsorted(usable, start): np.searchsorted(usable, end) if end >= 0 else len(usable)]
        if "heatmaps" in self.inputs or "trajectory" in self.inputs:  # given faces and files may lack landmarks
            frames = frames[np.isfinite(entry.nose[frames, 0])]
        if len(frames) == 0:
            raise FexaError(f"sample {self._ids[row]}: no frame with a face and landmarks in frames {start}..{end}")
        # simulated hypomimia: every landmark moves less from the sample's first frame
        points = landmark_arrays(entry, frames, float(self._scale[row]))
        out = {"target": torch.tensor(float(self._target[row])), "index": torch.tensor(row)}
        flip = self.train and self.cfg.flip and rng.random() < 0.5
        if "image" in self.inputs:
            out.update(self._image(entry, points, frames, rng, flip))
        if "clip" in self.inputs or "heatmaps" in self.inputs:
            out.update(self._clip(entry, points, frames, rng, flip))
        if "trajectory" in self.inputs:
            out.update(self._trajectory(entry, points, frames, rng))
        return out if self.uint8 else finish_item(out, self.cfg)

    # -- per input --------------------------------------------------------------------------------
    def _image(self, entry, points: dict, frames: np.ndarray, rng, flip: bool) -> dict:
        t = frames[len(frames) // 2]
        crop = entry.frames([t])[0]
        n, size = crop.shape[0], self.cfg.image_size
        pts = np.array(points["heatmap73"][t], np.float32)
        missing = not np.isfinite(pts).all()
        img = tv_tensors.Image(torch.from_numpy(crop).permute(2, 0, 1))
        kp = tv_tensors.KeyPoints(torch.from_numpy(np.nan_to_num(pts)), canvas_size=(n, n))
        if self.train and self.cfg.rotation:
            angle = float(rng.uniform(-self.cfg.rotation, self.cfg.rotation))
            img, kp = F.rotate(img, angle), F.rotate(kp, angle)
        if self.train:  # random resized crop (square), parameters from the item's generator
            side = int(round(n * np.sqrt(rng.uniform(*self.cfg.crop_scale))))
            x0, y0 = (int(v) for v in rng.integers(0, n - side + 1, size=2))
        else:
            side, x0, y0 = n, 0, 0
        img = F.resized_crop(img, y0, x0, side, side, [size, size], antialias=True)
        kp = F.resized_crop(kp, y0, x0, side, side, [size, size])
        if flip:
            img, kp = F.horizontal_flip(img), F.horizontal_flip(kp)
            if self.mirror is not None:  # the subject's left points become right points
                kp = kp[self.mirror]
        img = img.as_subclass(torch.Tensor)
        if self.train:
            img = photometric(img, self.cfg, rng)
        landmarks = kp.as_subclass(torch.Tensor).float()
        return {"image": img, "landmarks": landmarks.fill_(MISSING_LANDMARK) if missing else landmarks}

    def _frame_indices(self, n: int, rng) -> np.ndarray:
        if self.cfg.sampling == "segments":
            return segment_indices(n, train=self.train, rng=rng)
        return clip_indices(n, self.cfg.num_subclips, train=self.train or self.clips > 1, rng=rng,
                            random_start=self.cfg.clip_start == "random").ravel()

    def _clip(self, entry, points: dict, frames: np.ndarray, rng, flip: bool) -> dict:
        idx = frames[self._frame_indices(len(frames), rng)]
        box = self._clip_box(entry.crop_size, rng) if "clip" in self.inputs else None
        if "heatmaps" not in self.inputs:
            crops = torch.from_numpy(entry.frames(idx))  # [T, N, N, 3] uint8
            if self.cfg.clip_padding == "zero":  # subclip sampling loops a short clip from position len(frames) on
                crops[len(frames):] = 0
            return {"clip": cut_clip(crops, box, self.cfg.clip_size, flip)}
        # finished by finish_batch (on the device when training): the clip is cut from the same crops;
        # heatmaps are drawn at 64 and cut to 56, a random window in training, the centre in testing.
        # Crops travel only when something needs them (gray and jet heatmaps alone decode nothing).
        out = {}
        if box is not None:
            out["clip_box"] = torch.tensor(box)
        if box is not None or self.cfg.heatmap_mode == "rgb_weighted":
            out["crops"] = torch.from_numpy(entry.frames(idx))
        out.update(flip=torch.tensor(flip), heatmap_src=torch.tensor(entry.crop_size),
                   heatmap_points=torch.from_numpy(np.asarray(points["heatmap73"][idx], np.float32)))
        out["heatmap_at"] = torch.tensor([int(v) for v in rng.integers(0, 9, size=2)] if self.train else [4, 4])
        return out

    def _clip_box(self, n: int, rng) -> list[int]:
        """(x0, y0, width, height) of the clip in the n x n crop, as SampleConfig.clip_train / clip_test say."""
        s, c = self.cfg.clip_size, self.cfg
        if not self.train:
            return [(n - s) // 2, (n - s) // 2, s, s] if c.clip_test == "center" and n > s else [0, 0, n, n]
        if c.clip_train == "crop":
            return [int(v) for v in rng.integers(0, n - s + 1, size=2)] + [s, s] if n > s else [0, 0, n, n]
        for _ in range(10):  # torchvision's RandomResizedCrop: area fraction, then log-uniform aspect ratio
            area = n * n * rng.uniform(*c.clip_scale)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w, h = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if 0 < w <= n and 0 < h <= n:
                return [int(rng.integers(0, n - w + 1)), int(rng.integers(0, n - h + 1)), w, h]
        return [0, 0, n, n]

    def _trajectory(self, entry, points: dict, frames: np.ndarray, rng) -> dict:
        c = self.cfg
        reverse = self.train and rng.random() < c.time_reverse
        tcfg = TrajectoryConfig(c.trajectory_length, c.trajectory_channels, c.trajectory_origin, c.trajectory_padding,
                                reverse, c.trajectory_scale)
        x, ti = trajectory(points["traj63"], points["nose"], entry.colours63, tcfg, frames)
        return {"trajectory": torch.from_numpy(x), "time_index": torch.from_numpy(ti)}


def normalize_pixels(frames: torch.Tensor, mode: str) -> torch.Tensor:
    """uint8 [..., 3, H, W] -> float, ImageNet-normalised (``mode="imagenet"``) or in [0, 1] ("none")."""
    x = F.to_dtype(frames, torch.float32, scale=True)
    return F.normalize(x, IMAGENET_MEAN.tolist(), IMAGENET_STD.tolist()) if mode == "imagenet" else x


def photometric(img: torch.Tensor, cfg: SampleConfig, rng) -> torch.Tensor:
    """A uint8 [3, H, W] image through the enabled training augmentations of ``cfg`` (grayscale,
    colour jitter, blur, erasing), in that order, with parameters from ``rng``."""
    if cfg.grayscale and rng.random() < cfg.grayscale:
        img = F.rgb_to_grayscale(img, num_output_channels=3)
    if cfg.color_jitter and rng.random() < cfg.color_jitter_p:
        j = cfg.color_jitter
        factors = rng.uniform(1 - j, 1 + j, size=3)
        adjust = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation)
        for k in rng.permutation(3):
            img = adjust[k](img, float(factors[k]))
    if cfg.blur and rng.random() < cfg.blur:
        sigma = float(rng.uniform(*cfg.blur_sigma))
        k = 2 * int(np.ceil(3 * sigma)) + 1
        img = F.gaussian_blur(img, [k, k], [sigma, sigma])
    if cfg.erasing and rng.random() < cfg.erasing:
        h, w = img.shape[-2:]
        for _ in range(10):  # torchvision's RandomErasing: area fraction, log-uniform aspect 0.3-3.3
            area = h * w * rng.uniform(*cfg.erasing_scale)
            aspect = np.exp(rng.uniform(np.log(0.3), np.log(3.3)))
            eh, ew = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if eh < h and ew < w:
                y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
                img = img.clone()
                img[:, y:y + eh, x:x + ew] = erase_fill(cfg.normalize)[:, None, None]
                break
    return img


def erase_fill(normalize: str) -> torch.Tensor:
    """[3] uint8 colour that normalisation maps to (about) 0: the ImageNet mean, or black."""
    mean = IMAGENET_MEAN if normalize == "imagenet" else np.zeros(3, np.float32)
    return torch.from_numpy(np.rint(mean * 255).astype(np.uint8))


def cut_clip(crops: torch.Tensor, box: list[int], size: int, flip: bool) -> torch.Tensor:
    """[T, N, N, 3] uint8 crops -> [T, 3, size, size]: the box (x0, y0, width, height), resized to
    size x size (antialiased) unless it already is; mirrored if ``flip``. A view when not resized."""
    x0, y0, w, h = box
    video = crops.permute(0, 3, 1, 2)[..., y0:y0 + h, x0:x0 + w]
    if (h, w) != (size, size):
        video = F.resize(video, [size, size], antialias=True)
    return video.flip(-1) if flip else video


def finish_batch(batch: dict, cfg: SampleConfig) -> dict:
    """A batch of ``FaceSamples(uint8=True)`` items as the models take them, computed on the batch's
    device: heatmap items' clips cut and heatmaps drawn from the uint8 crops (cheap there, the bulk of
    a QAFE-Net item's CPU time in a worker), then pixels normalised. Items with ``uint8=False`` are
    finished by this same function, one at a time."""
    batch = dict(batch)
    if "heatmap_points" in batch:
        crops, flips = batch.pop("crops", None), batch.pop("flip").tolist()
        if "clip_box" in batch:
            boxes = batch.pop("clip_box").tolist()
            batch["clip"] = torch.stack([cut_clip(c, b, cfg.clip_size, f) for c, b, f in zip(crops, boxes, flips)])
        hcfg = HeatmapConfig(mode=cfg.heatmap_mode, sigma=cfg.heatmap_sigma, src_size=int(batch.pop("heatmap_src")[0]),
                             out_size=64, skip_first=cfg.heatmap_skip_first, subpixel=cfg.heatmap_subpixel,
                             kernel=cfg.heatmap_kernel, blur=cfg.heatmap_blur)
        maps = heatmap_volume_torch(batch.pop("heatmap_points"), hcfg, crops if cfg.heatmap_mode == "rgb_weighted" else None)
        at = batch.pop("heatmap_at").tolist()
        batch["heatmaps"] = torch.stack([m[..., y:y + 56, x:x + 56].flip(-1) if f else m[..., y:y + 56, x:x + 56]
                                         for m, (x, y), f in zip(maps, at, flips)])
    return {k: normalize_pixels(v, cfg.normalize) if k in ("image", "clip") and v.dtype == torch.uint8 else v
            for k, v in batch.items()}


def finish_item(item: dict, cfg: SampleConfig) -> dict:
    """One uint8 item finished as :func:`finish_batch` finishes a batch (a batch of one)."""
    return {k: v[0] for k, v in finish_batch({k: v[None] for k, v in item.items()}, cfg).items()}
