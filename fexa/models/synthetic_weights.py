"""Weight files laid out exactly as each release is, filled with seeded random numbers, so that
``fexa reproduce --check`` and the tests run every initialisation path without the real files.

:func:`write_synthetic` writes the file a ``model.pretrained`` name refers to, under its file name,
holding exactly the tensors ``Published.expected()`` lists, wrapped as the file is wrapped where it
comes from (the object ``torch.load`` returns):

- ``qafe_former_dfer``, ``tramp_former_dfer``, ``former_dfer_dfew_fold1..5``: what Former-DFER's
  ``main.py`` saves, ``{'epoch', 'state_dict', 'best_acc', 'optimizer', 'recorder'}``: DataParallel
  ``module.`` keys, ``best_acc`` a tensor, SGD state, and ``recorder`` an object of its
  ``__main__.RecorderMeter``. QAFE-Net's ``main_PFED5.py`` and TraMP-Former's ``load_pretrained``
  read ``['state_dict']`` and strip ``module.`` (``k[7:]``).
- ``tramp_skateformer``: TraMP-Former's ``load_pretrained`` reads ``['model']``, strips ``module.``
  and pops ``evaluator.head``; the rest of the dict (the pretraining script is not released) is
  what its ``main_rgb1x1_128.py`` saves: ``epoch``, ``best_pho``, Adam and StepLR state and a
  ``utils.vis_tools.RecorderMeter``.
- ``pyskl_pose_only``: an mmcv checkpoint, ``{'meta', 'state_dict'}`` with ``backbone.`` /
  ``cls_head.`` keys (QAFE-Net's ``slowonly.py`` reads ``['state_dict']`` and strips ``backbone.``).
- ``poster_ir50``: a bare state dict (POSTER's ``load_pretrained_weights`` takes the dict itself
  when it has no ``state_dict``).
- ``poster_mobilefacenet``: ``{'state_dict'}`` without prefix (POSTER loads ``['state_dict']``
  strictly into its MobileFaceNet).
- ``msceleb_resnet18``: ``{'state_dict'}``, torchvision keys (DAN and Self-Cure-Network load
  ``['state_dict']`` strictly into ``torchvision.models.resnet18()``).
- ``msceleb_ir152``: a bare state dict (face.evoLVe's ``train.py`` saves ``BACKBONE.state_dict()``).
- ``msceleb_swin_s``, ``msceleb_hrnet``, ``msceleb_repvgg``: a bare timm state dict with a
  face-recognition classifier (512-way here; its size is not fixed and fexa drops it).
- ``vit_b16_imagenet``: a bare state dict, as timm's released ``.pth`` files.

Optimizer states hold buffers for the first two tensors only (they are never read; the files stay small).
:func:`write_timm` writes a ``{source: timm, path: FILE}`` file: timm's own layout of a model.
"""

from __future__ import annotations

import math
import pickle
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fexa.errors import FexaError
from fexa.models.weights import PUBLISHED, Published, get_published

Wrapper = Callable[[dict[str, Tensor], torch.Generator], object]
FACE_CLASSES = 512  # the synthetic face-recognition classifier of the timm-layout MS-Celeb files


class _Foreign:
    """Base of stand-ins for the authors' classes, pickled under their module and name (``pickled_as``)."""

    pickled_as: tuple[str, str] = ("", "")


class _ForeignPickler(pickle._Pickler):
    """The pure-Python pickler, writing a :class:`_Foreign` class as the global it stands for."""

    def save_global(self, obj, name=None) -> None:
        if isinstance(obj, type) and issubclass(obj, _Foreign):
            module, qualname = obj.pickled_as
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


FOREIGN = types.ModuleType("fexa_foreign_pickle", "pickle_module for torch.save: see fexa.models.synthetic_weights")
FOREIGN.Pickler = _ForeignPickler


def _recorder(module: str, epochs: int = 100) -> _Foreign:
    """A RecorderMeter as Former-DFER's and TraMP-Former's scripts pickle it (loss and accuracy per epoch)."""
    cls = type("RecorderMeter", (_Foreign,), {"pickled_as": (module, "RecorderMeter")})
    rec = cls()
    rec.__dict__.update(total_epoch=epochs, current_epoch=3, epoch_losses=np.zeros((epochs, 2), np.float32),
                        epoch_accuracy=np.zeros((epochs, 2), np.float32))
    return rec


def _optimizer(sd: dict[str, Tensor], adam: bool, lr: float) -> dict:
    """torch's optimizer state_dict layout: SGD momentum or Adam moments (first two tensors), one group."""
    firsts = list(sd.values())[:2]
    state = {i: ({"step": torch.tensor(3.0), "exp_avg": torch.zeros_like(v), "exp_avg_sq": torch.zeros_like(v)}
                 if adam else {"momentum_buffer": torch.zeros_like(v)}) for i, v in enumerate(firsts)}
    group = ({"lr": lr, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "amsgrad": False} if adam else
             {"lr": lr, "momentum": 0.9, "dampening": 0, "weight_decay": 1e-4, "nesterov": False})
    return {"state": state, "param_groups": [{**group, "params": list(range(len(sd)))}]}


def _module_prefix(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    return {"module." + k: v for k, v in sd.items()}


def _former_dfer_main(sd: dict[str, Tensor], g: torch.Generator) -> object:
    return {"epoch": 4, "state_dict": _module_prefix(sd), "best_acc": torch.tensor(55.5),
            "optimizer": _optimizer(sd, adam=False, lr=0.01), "recorder": _recorder("__main__")}


def _tramp_main(sd: dict[str, Tensor], g: torch.Generator) -> object:
    head = {"evaluator.head.weight": torch.randn(7, 256, generator=g), "evaluator.head.bias": torch.zeros(7)}
    return {"epoch": 4, "model": _module_prefix({**sd, **head}), "best_pho": 0.5,
            "optimizer": _optimizer(sd, adam=True, lr=1e-4),
            "scheduler": {"step_size": 10, "gamma": 0.5, "base_lrs": [1e-4], "last_epoch": 4, "_step_count": 5},
            "recorder": _recorder("utils.vis_tools")}


def _mmcv(sd: dict[str, Tensor], g: torch.Generator) -> object:
    return {"meta": {"mmcv_version": "1.5.0", "epoch": 24, "iter": 24000, "CLASSES": None}, "state_dict": sd}


def _state_dict(sd: dict[str, Tensor], g: torch.Generator) -> object:
    return {"state_dict": sd}


def _bare(sd: dict[str, Tensor], g: torch.Generator) -> object:
    return sd


def _face_classifier(p: Published) -> Callable[[dict[str, Tensor], torch.Generator], object]:
    """A bare timm state dict plus the face-recognition classifier its model gets with FACE_CLASSES outputs."""
    def wrap(sd: dict[str, Tensor], g: torch.Generator) -> object:
        from fexa.models import create_model

        with torch.device("meta"):
            full = create_model(p.model, num_classes=FACE_CLASSES).state_dict()
        return {**sd, **{k: torch.randn(v.shape, generator=g) for k, v in full.items() if k not in sd}}
    return wrap


WRAPPERS: dict[str, Wrapper] = {
    "qafe_former_dfer": _former_dfer_main,
    "tramp_former_dfer": _former_dfer_main,
    **{f"former_dfer_dfew_fold{k}": _former_dfer_main for k in range(1, 6)},
    "tramp_skateformer": _tramp_main,
    "pyskl_pose_only": _mmcv,
    "poster_ir50": _bare,
    "poster_mobilefacenet": _state_dict,
    "msceleb_resnet18": _state_dict,
    "msceleb_ir152": _bare,
    "vit_b16_imagenet": _bare,
}


def random_tensors(shapes: dict[str, tuple[int, ...]], g: torch.Generator) -> dict[str, Tensor]:
    """Seeded random values of those shapes, scaled as a trained network's are, so that a frozen
    module in eval mode (PCDA's MobileFaceNet) gives finite outputs: matrices and kernels with
    variance 1 / fan-in, norm scales near 1, small biases and means, positive running variances,
    BatchNorm's ``num_batches_tracked`` an int64 count."""
    def value(key: str, shape: tuple[int, ...]) -> Tensor:
        x = torch.randn(shape, generator=g)
        if key.endswith("num_batches_tracked"):
            return torch.tensor(100)
        if key.endswith("running_var"):
            return 0.5 + torch.rand(shape, generator=g)
        if len(shape) >= 2:
            return x / max(1, math.prod(shape[1:])) ** 0.5
        return 1 + 0.1 * x if key.endswith("weight") else 0.1 * x

    return {k: value(k, s) for k, s in shapes.items()}


def synthetic_file(name: str, seed: int = 0) -> tuple[object, dict[str, Tensor]]:
    """The object the file ``name`` holds and its tensors as ``Published.expected()`` names them."""
    p = get_published(name)
    wrap = _face_classifier(p) if p.source == "timm_face" else WRAPPERS.get(name)
    if wrap is None:
        raise FexaError(f"no synthetic layout for the weights {name!r}; add its wrapping to fexa.models.synthetic_weights")
    g = torch.Generator().manual_seed(seed)
    sd = random_tensors(p.expected(), g)
    return wrap(sd, g), sd


def write_synthetic(name: str, folder: str | Path, seed: int = 0) -> Path:
    """Write the file the published name ``name`` refers to into ``folder``, under its file name."""
    obj, _ = synthetic_file(name, seed)
    path = Path(folder) / get_published(name).filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, pickle_module=FOREIGN, pickle_protocol=2)
    return path


def write_all(folder: str | Path, seed: int = 0) -> list[Path]:
    """Every known file (:data:`PUBLISHED`) into ``folder``: a complete synthetic weights folder."""
    return [write_synthetic(name, folder, seed) for name in PUBLISHED]


def write_timm(timm_name: str, path: str | Path, seed: int = 0) -> Path:
    """A ``{source: timm, path}`` file: timm model ``timm_name``'s state dict (its own classifier
    included, as timm's released files) with seeded random values, saved as a bare dict."""
    import timm

    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in timm.create_model(timm_name, pretrained=False).state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_tensors(shapes, torch.Generator().manual_seed(seed)), path)
    return path
