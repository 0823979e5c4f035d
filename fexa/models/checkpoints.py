"""Load the authors' released weights into fexa's modules through explicit key mappings.

Sources (``source=`` of :func:`load_reference_weights`) and the module to load them into:

=================== =========================================== ==========================================
source              checkpoint                                  fexa module
=================== =========================================== ==========================================
former_dfer         Former-DFER DFEW fold checkpoints (112 px), FormerDFER (e.g. ``QAFENet.rgb``,
                    or QAFE-Net's 224 px retrained one          ``TraMPFormer.rgb``)
former_dfer_        a DFEW fold checkpoint as a whole model,    ``former_dfer_112`` (7 classes)
classifier          its ``fc`` included
pyskl_slowonly      pyskl PoseC3D SlowOnly NTU60-XSub joint     SlowOnly (``QAFENet.heatmap``)
                    weights (``pose_only.pth``)
poster_ir50         POSTER's ``ir50.pth`` (MS-Celeb-1M)         IResNet (``PCDA.image``)
poster_mobilefacenet POSTER's MobileFaceNet landmark checkpoint MobileFaceNet (``PCDA.landmarks``)
tramp_skateformer   TraMP-Former's SkateFormer DFEW trajectory  SkateFormer (``TraMPFormer.trajectory``,
                    weights                                     built with ``bias_layout="reference"``)
torchvision_        a torchvision-layout ResNet-18 (e.g. the    ``STT.cnn`` (conv1 ... layer3)
resnet18            MS-Celeb-1M ``resnet18_msceleb.pth``)
insightface_ir      face.evoLVe / InsightFace IR-152 (``body.N``IResNet depth 152 (``ir152``)
                    flat, ``output_layer``)
timm_face           a timm-layout face-recognition backbone     the timm model (``swin_s``, ``hrnet``,
                    (Swin-S, HRNet, RepVGG on MS-Celeb-1M)      ``repvgg``)
timm_vit_pcda       timm's ImageNet ViT-B/16                    ``PCDA.blocks`` (an approximation)
=================== =========================================== ==========================================

Documented adaptations: Former-DFER's ``fc`` is dropped, ``t_former.spatial_transformer`` is read as
the temporal transformer, and a 7 x 7 (112 px) S-Former position embedding is bicubically
interpolated to 14 x 14 for 224 px input; pyskl's ``conv1`` is dropped when its input channels differ
(17 keypoint channels vs 3 heatmap channels) and so is its ``cls_head``; POSTER's IR-50 stages
beyond the model's and its ``output_layer`` are dropped; SkateFormer's pre-training ``head`` /
``evaluator`` layers and index buffers are dropped; its 1 x 1-conv stem (5 -> 10 -> 15 -> 128) is
dropped and trained anew when the model takes other trajectory channels (TraMP-Former's Cp = 2 or 3:
every stem conv changes shape, so no slice of the 5-channel stem is meaningful; the authors' code
builds only the 5-channel model); torchvision's ``layer4`` and ``fc`` are dropped (STT cuts the
ResNet after layer3); the IR-152's ``output_layer`` (the face embedding) and a face backbone's
classifier are dropped, and the expression classifier of the model is trained anew. ViT-B/16 into
PCDA: each of the first ``depth`` blocks' ``attn.qkv`` is split into its query rows (read as the
landmark query ``q_lm``) and its key and value rows (``kv``); ``norm1``, ``attn.proj``, ``norm2``
and the MLP load as they are; the other blocks, the patch and position embeddings, the class
token, the final norm and the ImageNet head are dropped (PCDA embeds its tokens with linear layers
and has no position embedding).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fexa.errors import FexaError
from fexa.models.face_backbones import IR_UNITS
from fexa.models.restricted_pickle import RefusedGlobal, load_restricted


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # checkpoint keys deliberately not used
    adapted: list[str] = field(default_factory=list)  # loaded after a documented reshaping

    def __str__(self) -> str:
        return f"{len(self.loaded)} tensors loaded ({len(self.adapted)} adapted), {len(self.dropped)} dropped"


def read_checkpoint(path: str | Path) -> object:
    """The object a .pth/.pt/.tar (torch's zip or legacy format) or .safetensors file holds. torch's
    ``weights_only`` reader first; a file it refuses (the authors' scripts pickle their own objects
    next to the weights) is read by :mod:`fexa.models.restricted_pickle`: tensors and containers
    rebuilt, other objects inert placeholders, and a file that would call anything else refused."""
    path = Path(path)
    if not path.is_file():
        raise FexaError(f"no checkpoint file at {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            return load_restricted(path)
    except RefusedGlobal as e:
        raise FexaError(f"refused to read checkpoint {path}: its pickle calls {e.name}, which is neither a tensor "
                        "nor a plain container (nothing of it was run)") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise FexaError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a checkpoint file (:func:`read_checkpoint`), unwrapping ``state_dict``/``model``
    and DataParallel's ``module.`` prefix."""
    sd = read_checkpoint(path)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(sd, Mapping) and key in sd and isinstance(sd[key], Mapping):
            sd = sd[key]
    if not isinstance(sd, Mapping):
        raise FexaError(f"checkpoint {path} holds no state dict")
    return {re.sub(r"^module\.", "", k): v for k, v in sd.items() if isinstance(v, Tensor)}


# -- key mappings: reference key -> fexa key (None: deliberately dropped) --------------------------
_VIT_LAYER = [
    (r"\.layers\.(\d+)\.0\.fn\.norm\.", r".\1.norm1."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_qkv\.", r".\1.attn.qkv."),
    (r"\.layers\.(\d+)\.0\.fn\.fn\.to_out\.0\.", r".\1.attn.proj."),
    (r"\.layers\.(\d+)\.1\.fn\.norm\.", r".\1.norm2."),
    (r"\.layers\.(\d+)\.1\.fn\.fn\.net\.0\.", r".\1.mlp.fc1."),
    (r"\.layers\.(\d+)\.1\.fn\.fn\.net\.3\.", r".\1.mlp.fc2."),
]


def map_former_dfer(key: str) -> str | None:
    if key.startswith("fc."):
        return None
    key = key.replace("t_former.spatial_transformer", "t_former.temporal_transformer")
    key = key.replace("s_former.spatial_transformer", "s_former.transformer")
    key = re.sub(r"^s_former\.conv1\.", "s_former.stem.0.", key)
    key = re.sub(r"^s_former\.bn1\.", "s_former.stem.1.", key)
    for pattern, repl in _VIT_LAYER:
        key = re.sub(pattern, repl, key)
    return key


def map_former_dfer_classifier(key: str) -> str | None:
    """A complete Former-DFER (``fexa weights import``): its 7-class ``fc`` becomes fexa's ``head``."""
    return "head." + key.removeprefix("fc.") if key.startswith("fc.") else map_former_dfer(key)


def _numbered(key: str, names: tuple[str, ...]) -> str:
    """'a.conv.weight' -> 'a.0.weight': the named layers of a conv block become Sequential indices."""
    parts = key.split(".")
    if len(parts) >= 2 and parts[-2] in names:
        parts[-2] = str(names.index(parts[-2]))
    return ".".join(parts)


def map_pyskl_slowonly(key: str) -> str | None:
    key = re.sub(r"^(backbone|restnet3d)\.", "", key)
    if key.startswith("cls_head."):
        return None
    key = re.sub(r"^layer(\d+)\.", lambda m: f"layers.{int(m[1]) - 1}.", key)
    return _numbered(key, ("conv", "bn"))


def map_ir(key: str, depth: int = 50, num_stages: int = 3) -> str | None:
    """face.evoLVe's IR nets (POSTER's IR-50, the IR-152): the flat ``body.N`` becomes fexa's
    ``body.stage.unit``; stages beyond ``num_stages`` and the embedding ``output_layer`` are dropped."""
    if key.startswith("output_layer."):
        return None
    m = re.match(r"^body\.(\d+)\.(.*)$", key)
    if not m:
        return key
    flat, rest = int(m[1]), m[2]
    for stage, units in enumerate(IR_UNITS[depth]):
        if flat < units:
            return f"body.{stage}.{flat}.{rest}" if stage < num_stages else None
        flat -= units
    return None


def map_poster_mobilefacenet(key: str) -> str | None:
    key = key.replace(".model.", ".")
    if key.startswith("output_layer."):
        key = key.removeprefix("output_layer.")
        if key.startswith(("linear.", "bn.")):
            return key
    return _numbered(key, ("conv", "bn", "prelu"))


def map_tramp_skateformer(key: str) -> str | None:
    if "relative_position_index" in key or key.startswith(("head.", "evaluator.")):
        return None
    key = key.replace("joint_person_embedding", "joint_embedding")
    m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(transformer|downsample)\.(.*)$", key)
    if m:
        stage, block, part, rest = int(m[1]), int(m[2]), m[3], m[4]
        index = 0 if part == "downsample" else block + (1 if stage > 0 else 0)
        return f"stages.{stage}.{index}.{rest}"
    return key


def map_torchvision_resnet18(key: str) -> str | None:
    """torchvision's ResNet-18 into ``STT.cnn`` = Sequential(conv1, bn1, relu, maxpool, layer1..3)."""
    if key.startswith(("layer4.", "fc.")):
        return None
    key = re.sub(r"^conv1\.", "0.", key)
    key = re.sub(r"^bn1\.", "1.", key)
    return re.sub(r"^layer([123])\.", lambda m: f"{int(m[1]) + 3}.", key)


def map_timm_face(key: str) -> str | None:
    """A timm-layout face backbone: every key as it is, its classifier (``head.fc`` of Swin and
    RepVGG, ``classifier`` of HRNet, whatever its size) dropped."""
    return None if key.startswith(("head.fc.", "classifier.")) else key


def map_timm_vit_pcda(key: str) -> str | None:
    """timm's ViT-B/16 block N (its qkv already split by :func:`_split_qkv`) -> ``PCDA.blocks`` N."""
    m = re.match(r"^blocks\.(\d+)\.(.*)$", key)
    if not m:
        return None
    rest = m[2].replace("attn.q.", "q_lm.").replace("attn.kv.", "kv.").replace("attn.proj.", "proj.")
    return f"{m[1]}.{rest}"


MAPPERS: dict[str, Callable[[str], str | None]] = {
    "former_dfer": map_former_dfer,
    "former_dfer_classifier": map_former_dfer_classifier,
    "pyskl_slowonly": map_pyskl_slowonly,
    "poster_ir50": map_ir,
    "poster_mobilefacenet": map_poster_mobilefacenet,
    "tramp_skateformer": map_tramp_skateformer,
    "torchvision_resnet18": map_torchvision_resnet18,
    "insightface_ir": partial(map_ir, depth=152, num_stages=4),
    "timm_face": map_timm_face,
    "timm_vit_pcda": map_timm_vit_pcda,
}


def _interpolate_pos_embedding(pe: Tensor, tokens: int) -> Tensor:
    """[1, g*g, C] -> [1, tokens, C] by bicubic interpolation on the square grid."""
    g, n = int(round(pe.shape[1] ** 0.5)), int(round(tokens**0.5))
    grid = pe.reshape(1, g, g, -1).permute(0, 3, 1, 2)
    out = F.interpolate(grid, size=(n, n), mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(1, n * n, -1)


def _split_qkv(sd: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """A ViT's fused ``attn.qkv`` rows [q; k; v] split into ``attn.q`` and ``attn.kv``; returns the
    new state dict and the split keys."""
    out, split = {}, []
    for key, value in sd.items():
        if ".attn.qkv." in key:
            d = value.shape[0] // 3
            out[key.replace(".attn.qkv.", ".attn.q.")] = value[:d]
            out[key.replace(".attn.qkv.", ".attn.kv.")] = value[d:]
            split.append(key)
        else:
            out[key] = value
    return out, split


def _trained_anew(module: nn.Module, source: str, sd: Mapping[str, Tensor]) -> tuple[str, ...]:
    """Prefixes of ``module``'s keys a source's file deliberately does not fill: pyskl's 17-channel
    stem, the expression classifier of a face-recognition backbone, TraMP's stem for Cp != 5."""
    if source == "pyskl_slowonly":
        return ("conv1.0.",)
    if source == "insightface_ir":
        return ("head.",)
    if source == "timm_face":
        return (module.pretrained_cfg["classifier"] + ".",)
    if source == "tramp_skateformer" and _stem_differs(module, sd):
        return ("stem.",)
    return ()


def _stem_differs(module: nn.Module, sd: Mapping[str, Tensor]) -> bool:
    """Whether the checkpoint's SkateFormer stem takes other input channels than ``module``'s."""
    ours = module.state_dict().get("stem.0.weight")
    return "stem.0.weight" in sd and ours is not None and sd["stem.0.weight"].shape[1] != ours.shape[1]


def load_reference_weights(module: nn.Module, checkpoint: str | Path | Mapping[str, Tensor], source: str,
                           strict: bool = True) -> LoadReport:
    """Map ``checkpoint`` (a path or a state dict) from ``source``'s key names into ``module``.

    With ``strict``, every parameter and buffer of ``module`` must be filled and every checkpoint
    tensor used or deliberately dropped; otherwise a FexaError names what did not fit."""
    if source not in MAPPERS:
        raise FexaError(f"unknown checkpoint source {source!r}; known: {sorted(MAPPERS)}")
    sd = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    sd = {re.sub(r"^module\.", "", k): v for k, v in sd.items()}
    ours = module.state_dict()
    report, mapped, unknown = LoadReport(), {}, []
    if source == "timm_vit_pcda":
        sd, report.adapted = _split_qkv(sd)
    anew = _trained_anew(module, source, sd)
    for key, value in sd.items():
        new = MAPPERS[source](key)
        if new is None or (source == "tramp_skateformer" and anew and key.startswith("stem.")):
            report.dropped.append(key)
            continue
        if source == "timm_vit_pcda" and new not in ours and int(new.split(".")[0]) >= len(module):
            report.dropped.append(key)  # a ViT block beyond the model's depth
            continue
        if new not in ours:
            unknown.append(f"{key} -> {new}")
            continue
        target = ours[new]
        if value.shape != target.shape:
            if new.endswith("s_former.pos_embedding") and value.dim() == 3:
                value = _interpolate_pos_embedding(value, target.shape[1])
                report.adapted.append(key)
            elif source == "pyskl_slowonly" and new.startswith("conv1.0.") and value.shape[1] != target.shape[1]:
                report.dropped.append(key)  # keypoint-channel stem: the heatmap stem is trained anew
                continue
            else:
                unknown.append(f"{key} {tuple(value.shape)} -> {new} {tuple(target.shape)}")
                continue
        mapped[new] = value.to(target.dtype)
        report.loaded.append(key)
    if source == "tramp_skateformer" and getattr(getattr(module, "cfg", None), "bias_layout", "reference") != "reference":
        raise FexaError("TraMP-Former's SkateFormer weights need the model built with bias_layout='reference'")
    missing = [k for k in ours if k not in mapped and not k.endswith("num_batches_tracked")
               and not (anew and k.startswith(anew))]
    report.adapted = [k for k in report.adapted if k.replace(".attn.qkv.", ".attn.q.") in report.loaded]
    if strict and (unknown or missing):
        more = lambda xs: " ..." if len(xs) > 5 else ""  # noqa: E731
        raise FexaError(f"checkpoint does not fit ({source}): unmatched {unknown[:5]}{more(unknown)}; "
                        f"not filled {missing[:5]}{more(missing)}")
    module.load_state_dict(mapped, strict=False)
    return report
