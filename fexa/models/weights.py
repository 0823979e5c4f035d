"""The authors' published weight files fexa knows: what each initialises, where its authors publish
it and the tensors it must hold; a downloaded file is checked strictly before it is used.

Configs name a file in ``model.pretrained`` by its fexa name (``{rgb: qafe_former_dfer}``); the files
sit in one weights folder, ``FEXA_WEIGHTS`` or ``fexa train --weights DIR``, under the file names
their authors gave them. ``{source, path}`` entries (a file anywhere, or ``source: fexa`` for another
run's checkpoint, ``source: timm`` for a local timm checkpoint) are checked to exist the same way.
The expected keys and shapes come from the reference modules (``reference_keys.json``) and the
documented layout of each file (wrapper, prefixes, the layers fexa drops).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fexa.errors import FexaError

if TYPE_CHECKING:
    from torch import nn

    from fexa.models.checkpoints import LoadReport

REFERENCE_KEYS = Path(__file__).with_name("reference_keys.json")
ENV = "FEXA_WEIGHTS"
Shapes = dict[str, tuple[int, ...]]
QAFE_NET = "https://github.com/shuchaoduan/QAFE-Net (README, 'Pretrained Weights': the Google Drive 'pretrain' folder)"
TRAMP_FORMER = "https://github.com/shuchaoduan/TraMP-Former (README, 'Pretrained Weights': Google Drive)"
POSTER = "https://github.com/zczcwh/POSTER (README, 'Pretrained model weights': the Google Drive 'pretrain' folder)"


@cache
def reference_keys() -> dict[str, Shapes]:
    """Key -> shape of each reference module's state dict (facts read from the authors' code)."""
    return {name: {k: tuple(s) for k, s in keys.items()} for name, keys in json.loads(REFERENCE_KEYS.read_text()).items()}


def _former_dfer(tokens: int) -> Callable[[], Shapes]:
    """Former-DFER's DFEW checkpoints: the T-Former named ``spatial_transformer``, the 7-class ``fc``."""
    def layout() -> Shapes:
        keys = {k.replace("t_former.temporal_transformer", "t_former.spatial_transformer"): s
                for k, s in reference_keys()["former_dfer_qafe"].items()}
        return {**keys, "s_former.pos_embedding": (1, tokens, 256), "fc.weight": (7, 512), "fc.bias": (7,)}
    return layout


def _pose_only() -> Shapes:
    """pyskl's PoseC3D SlowOnly on NTU60-XSub joints: 17 keypoint channels in, 60 classes out."""
    keys = {"backbone." + k.removeprefix("restnet3d."): s for k, s in reference_keys()["slowonly_qafe"].items()}
    conv1 = keys["backbone.conv1.conv.weight"]
    return {**keys, "backbone.conv1.conv.weight": (conv1[0], 17, *conv1[2:]),
            "cls_head.fc_cls.weight": (60, 512), "cls_head.fc_cls.bias": (60,)}


def _same(name: str) -> Callable[[], Shapes]:
    return lambda: dict(reference_keys()[name])


def _shapes(module: nn.Module) -> Shapes:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _torchvision_resnet18() -> Shapes:
    """torchvision's ResNet-18 with its 1000-way ``fc``: the file DAN and SCN load strictly into
    ``torchvision.models.resnet18()`` from its ``state_dict`` entry."""
    import torch
    from torchvision.models import resnet18

    with torch.device("meta"):
        return _shapes(resnet18(weights=None))


def _face_evolve_ir152() -> Shapes:
    """face.evoLVe's IR_152 (112 px): ``input_layer``, the 50 units as one flat ``body.N``
    (3 + 8 + 36 + 3), ``output_layer`` = BN2d, Dropout, Flatten, Linear(512*7*7, 512), BN1d. The
    unit and output-layer key names are those of POSTER's IR-50, the same face.evoLVe code."""
    import torch

    from fexa.models.face_backbones import IR_UNITS, IRConfig, IResNet

    with torch.device("meta"):
        ours = _shapes(IResNet(IRConfig(depth=152, num_stages=4)))
    starts = [sum(IR_UNITS[152][:i]) for i in range(4)]
    out = {}
    for k, shape in ours.items():
        m = re.match(r"^body\.(\d)\.(\d+)\.(.*)$", k)
        out[f"body.{starts[int(m[1])] + int(m[2])}.{m[3]}" if m else k] = shape
    output = {k: s for k, s in reference_keys()["poster_ir50"].items() if k.startswith("output_layer.")}
    return {**out, **output}


def _timm(name: str, head: bool = False) -> Callable[[], Shapes]:
    """timm's ``name`` (built on the meta device, no weights fetched), its classifier left out unless
    ``head``: a face-recognition file's classifier has no fixed size and is dropped when loading."""
    def layout() -> Shapes:
        import timm
        import torch

        with torch.device("meta"):
            return _shapes(timm.create_model(name, pretrained=False, **({} if head else {"num_classes": 0})))
    return layout


@dataclass(frozen=True)
class Published:
    name: str  # fexa's name for the file, used in configs
    filename: str  # as its authors publish it
    source: str  # key mapping (fexa.models.checkpoints.MAPPERS)
    model: str  # the fexa model it loads into (whole), with options
    initialises: str
    where: str  # the repository whose README links the file
    layout: Callable[[], Shapes]  # the file's tensors (after unwrapping state_dict/model and 'module.')
    options: dict = field(default_factory=dict)
    submodule: str = ""  # the part of ``model`` it initialises ("" = all of it), as configs name it

    def expected(self) -> Shapes:
        return dict(_expected(self.name))


PUBLISHED: dict[str, Published] = {p.name: p for p in [
    Published("qafe_former_dfer", "FormerDFER-DFEWset1-model_best.pth", "former_dfer", "former_dfer",
              "QAFE-Net's RGB encoder (Former-DFER retrained on DFEW fold 1 at 224 px)",
              QAFE_NET,
              _former_dfer(196)),
    Published("pyskl_pose_only", "pose_only.pth", "pyskl_slowonly", "slowonly_r50_heatmap",
              "QAFE-Net's heatmap encoder (pyskl SlowOnly, NTU60-XSub joints; its 17-channel stem and classifier "
              "are not used)",
              QAFE_NET,
              _pose_only),
    Published("tramp_former_dfer", "FormerDFER_DFEW.pth", "former_dfer", "former_dfer",
              "TraMP-Former's RGB encoder (Former-DFER on DFEW, 224 px)",
              TRAMP_FORMER,
              _former_dfer(196)),
    Published("tramp_skateformer", "SkateFormer_256_rgb1x1.pth", "tramp_skateformer", "skateformer_face",
              "TraMP-Former's trajectory encoder (SkateFormer pre-trained on DFEW trajectories, T_p 256, 5 channels; "
              "its evaluator head is not used)",
              TRAMP_FORMER,
              _same("tramp_skateformer"), {"bias_layout": "reference"}),
    Published("poster_ir50", "ir50.pth", "poster_ir50", "ir50",
              "PCDA's image backbone (POSTER's IR-50, MS-Celeb-1M; its 4th stage and output layer are not used)",
              POSTER,
              _same("poster_ir50")),
    Published("poster_mobilefacenet", "mobilefacenet_model_best.pth.tar", "poster_mobilefacenet", "mobilefacenet",
              "PCDA's frozen landmark network (POSTER's MobileFaceNet, 68 landmarks)",
              POSTER,
              _same("poster_mobilefacenet")),
    Published("msceleb_resnet18", "resnet18_msceleb.pth", "torchvision_resnet18", "stt",
              "STT's CNN (ResNet-18 pre-trained on MS-Celeb-1M, cut after layer3: its layer4 and fc are not used)",
              "not released by STT's authors; the MS-Celeb-1M ResNet-18 FER work commonly starts from is the "
              "resnet18_msceleb.pth linked from the READMEs of https://github.com/yaoing/DAN and "
              "https://github.com/kaiwang960112/Self-Cure-Network (a torchvision ResNet-18 under 'state_dict')",
              _torchvision_resnet18, submodule="cnn"),
    Published("msceleb_ir152", "ir152_msceleb.pth", "insightface_ir", "ir152",
              "CFC-SP's IR-152 coarse-net member (MS-Celeb-1M; its output_layer embedding is not used)",
              "not released by CFC-SP's authors; face.evoLVe's IR-152 trained on MS-Celeb-1M "
              "(https://github.com/ZhaoJ9014/face.evoLVe, README 'Model Zoo', the Backbone_IR_152 checkpoint), "
              "saved under this name",
              _face_evolve_ir152),
    *[Published(f"msceleb_{name}", f"{timm_name}_msceleb.pth", "timm_face", name,
                f"CFC-SP's {label} (MS-Celeb-1M; its face-recognition classifier is not used)",
                f"not released by CFC-SP's authors; an MS-Celeb-1M {label} in timm's {timm_name} key layout "
                "(e.g. FaceX-Zoo's, https://github.com/JDAI-CV/FaceX-Zoo, converted to timm's names), saved under "
                "this name",
                _timm(timm_name)) for name, timm_name, label in [
        ("swin_s", "swin_small_patch4_window7_224", "Swin-S coarse-net member"),
        ("hrnet", "hrnet_w18", "HRNet-W18 coarse-net member"),
        ("repvgg", "repvgg_a2", "RepVGG-A2 negative net")]],
    Published("vit_b16_imagenet", "jx_vit_base_p16_224-80ecf9dd.pth", "timm_vit_pcda", "pcda",
              "an approximation of PCDA Table 2's 'pre-trained ViT' (the paper names no ViT): ViT-B/16 ImageNet "
              "blocks 1-6 into a 6-block cross-feature attention (qkv's query rows as the landmark query)",
              "https://github.com/huggingface/pytorch-image-models (timm's original vit_base_patch16_224 "
              "ImageNet weights, release 'v0.1-vitjx'; a plain state dict)",
              _timm("vit_base_patch16_224", head=True),
              {"landmark_trunk": "mobilefacenet", "depth": 6}, submodule="blocks"),
    *[Published(f"former_dfer_dfew_fold{k}", f"set{k}-model_best.pth", "former_dfer_classifier", "former_dfer_112",
                f"Former-DFER trained on DFEW fold {k} (112 px, 7 classes): a complete model (`fexa weights import`)",
                "https://github.com/zengqunzhao/Former-DFER (README, 'Pretrain Models on DFEW': Google Drive folder "
                f"fd{k}; the file name starts with its training time)",
                _former_dfer(49)) for k in range(1, 6)],
]}

NOT_PUBLISHED = {  # initialisations the papers describe with no file their authors publish
    "stt": "STT's ResNet-18 pre-trained on MS-Celeb-1M: its authors release none; configs/stt/dfew.yaml names the "
           "commonly used resnet18_msceleb.pth (msceleb_resnet18 above)",
    "cfc_sp": "CFC-SP's MS-Celeb-1M Swin-S / IR-152 / HRNet / RepVGG: its authors release none; the CFC-SP configs "
              "and rows name face.evoLVe's IR-152 and timm-layout files (msceleb_* above)",
    "pcda": "PCDA's ImageNet ViT (Table 2): the paper names none; vit_b16_imagenet above is fexa's approximation",
}


@cache
def _expected(name: str) -> Shapes:
    """A known file's tensors, built once (some layouts build a whole model to read them)."""
    return PUBLISHED[name].layout()


def get_published(name: str) -> Published:
    if name not in PUBLISHED:
        raise FexaError(f"unknown published weights {name!r}; known: {', '.join(PUBLISHED)} (see `fexa weights`)")
    return PUBLISHED[name]


def weights_folder(given: str | Path | None = None) -> Path | None:
    """The weights folder: ``given``, else ``$FEXA_WEIGHTS``, else None."""
    folder = given or os.environ.get(ENV)
    return Path(folder) if folder else None


def resolve_pretrained(pretrained: dict) -> dict[str, dict]:
    """``model.pretrained`` (validated with the config: published names or {source, path}) with every
    entry as {source, path} and every file checked to exist (a FexaError names the first that does
    not, and where its authors publish it)."""
    out = {}
    for sub, spec in pretrained.items():
        where = "model.pretrained." + (sub or '""')
        if isinstance(spec, str):
            p = get_published(spec)
            base = weights_folder()
            if base is None:
                raise FexaError(f"{where} is {spec} ({p.filename}) but no weights folder is set: download it from "
                                f"{p.where} into a folder and set {ENV}=DIR or pass --weights DIR (`fexa weights` lists "
                                "every file), or --set model.pretrained=none to train from scratch")
            path = base / p.filename
            if not path.is_file():
                raise FexaError(f"{where}: {p.filename} ({p.initialises}) is not in the weights folder {base}; get it "
                                f"from: {p.where}; or --set model.pretrained=none to train from scratch")
            spec = {"source": p.source, "path": str(path), "published": spec}
        elif not Path(spec["path"]).exists():
            raise FexaError(f"{where}: {spec['path']} does not exist ({spec['source']} weights)")
        out[sub] = dict(spec)
    return out


def load_published(p: Published, path: str | Path) -> tuple[nn.Module, LoadReport]:
    """Verify a downloaded file strictly: the tensors ``p`` must hold, of those shapes, nothing
    else but the layers fexa deliberately drops; then load it strictly into a new fexa module.
    Returns the module and the load report; a FexaError says what does not fit."""
    from fexa.models import create_model
    from fexa.models.checkpoints import MAPPERS, load_reference_weights, read_state_dict

    sd = read_state_dict(path)
    expected = p.expected()
    missing = [k for k in expected if k not in sd]
    wrong = [f"{k} {tuple(sd[k].shape)} (expected {expected[k]})" for k in expected
             if k in sd and tuple(sd[k].shape) != expected[k]]
    extra = [k for k in sd if k not in expected and MAPPERS[p.source](k) is not None]
    if missing or wrong or extra:
        parts = [f"{len(xs)} {what} (e.g. {xs[0]})" for xs, what in ((missing, "missing"), (wrong, "of another shape"),
                                                                     (extra, "unexpected")) if xs]
        raise FexaError(f"{path} is not {p.filename} as fexa knows it (from: {p.where}): " + ", ".join(parts))
    model = create_model(p.model, **p.options)
    return model, load_reference_weights(model.get_submodule(p.submodule) if p.submodule else model, sd, p.source)


def configs_using(name: str, configs: Path) -> list[str]:
    """The shipped configs (``configs/**.yaml``) whose model.pretrained names ``name``."""
    import yaml

    hits = []
    for path in sorted(configs.rglob("*.yaml")):
        pre = ((yaml.safe_load(path.read_text()) or {}).get("model") or {}).get("pretrained") or {}
        if name in pre.values():
            hits.append(str(path.relative_to(configs.parent)))
    return hits
