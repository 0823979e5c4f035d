"""Loading the authors' checkpoints: state dicts built from the reference key names and shapes
(fexa/models/reference_keys.json) go through the documented mappings into fexa's modules."""

import json

import pytest
import torch
from safetensors.torch import save_file

from fexa.errors import FexaError
from fexa.models import create_model
from fexa.models.checkpoints import MAPPERS, load_reference_weights, read_state_dict
from fexa.models.weights import REFERENCE_KEYS

KEYS = json.loads(REFERENCE_KEYS.read_text())


def _random_state_dict(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: (torch.randn(s, generator=g) if s else torch.tensor(7)) for k, s in KEYS[name].items()}


CASES = [
    ("former_dfer_qafe", "former_dfer", lambda: create_model("former_dfer")),
    ("slowonly_qafe", "pyskl_slowonly", lambda: create_model("slowonly_r50_heatmap")),
    ("poster_ir50", "poster_ir50", lambda: create_model("ir50")),
    ("poster_mobilefacenet", "poster_mobilefacenet", lambda: create_model("mobilefacenet")),
    ("tramp_skateformer", "tramp_skateformer", lambda: create_model("skateformer_face", bias_layout="reference")),
]


@pytest.mark.parametrize("name, source, make", CASES, ids=[c[0] for c in CASES])
def test_every_reference_tensor_lands_where_the_mapping_says(name, source, make):
    sd = _random_state_dict(name)
    model = make()
    report = load_reference_weights(model, sd, source)
    ours = model.state_dict()
    assert len(report.loaded) > 50 and not report.adapted
    for key in report.loaded:
        torch.testing.assert_close(ours[MAPPERS[source](key)], sd[key].to(ours[MAPPERS[source](key)].dtype))
    # every parameter of ours was filled from the checkpoint
    filled = {MAPPERS[source](k) for k in report.loaded}
    assert {k for k, _ in model.named_parameters()} <= filled


def test_original_former_dfer_checkpoint_into_224_model():
    """The public DFEW checkpoints: 112 px (7 x 7 position embedding), 't_former.spatial_transformer',
    an fc layer, DataParallel's 'module.' prefix and a wrapping dict."""
    sd = {}
    for k, v in _random_state_dict("former_dfer_qafe").items():
        k = k.replace("t_former.temporal_transformer", "t_former.spatial_transformer")
        sd["module." + k] = v
    sd["module.s_former.pos_embedding"] = torch.arange(49.0).reshape(1, 49, 1).repeat(1, 1, 256)
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.randn(7, 512), torch.randn(7)
    model = create_model("former_dfer")
    report = load_reference_weights(model, {"state_dict": sd}["state_dict"], "former_dfer")
    assert report.adapted == ["s_former.pos_embedding"] and set(report.dropped) == {"fc.weight", "fc.bias"}
    pe = model.s_former.pos_embedding.detach().reshape(14, 14, 256)[..., 0]
    assert pe.shape == (14, 14) and pe[0, 0] < pe[0, 13] < pe[13, 13]  # the 7 x 7 ramp, upsampled
    torch.testing.assert_close(model.t_former.temporal_transformer[0].attn.qkv.weight,
                               sd["module.t_former.spatial_transformer.layers.0.0.fn.fn.to_qkv.weight"])


def test_pyskl_ntu_checkpoint_drops_the_keypoint_stem_and_classifier():
    sd = {}
    for k, v in _random_state_dict("slowonly_qafe").items():
        sd[k.replace("restnet3d.", "backbone.")] = v
    sd["backbone.conv1.conv.weight"] = torch.randn(32, 17, 1, 7, 7)
    sd["cls_head.fc_cls.weight"], sd["cls_head.fc_cls.bias"] = torch.randn(60, 512), torch.randn(60)
    model = create_model("slowonly_r50_heatmap")
    before = model.conv1[0].weight.clone()
    report = load_reference_weights(model, sd, "pyskl_slowonly")
    assert {"backbone.conv1.conv.weight", "cls_head.fc_cls.weight", "cls_head.fc_cls.bias"} <= set(report.dropped)
    torch.testing.assert_close(model.conv1[0].weight, before)  # the 3-channel stem keeps its own init
    torch.testing.assert_close(model.layers[2][0].conv2[0].weight, sd["backbone.layer3.0.conv2.conv.weight"])


def test_mismatches_are_clear_errors(tmp_path):
    sd = _random_state_dict("poster_ir50")
    del sd["body.5.res_layer.1.weight"]
    with pytest.raises(FexaError, match="not filled"):
        load_reference_weights(create_model("ir50"), sd, "poster_ir50")
    with pytest.raises(FexaError, match="bias_layout='reference'"):
        load_reference_weights(create_model("skateformer_face"), _random_state_dict("tramp_skateformer"),
                               "tramp_skateformer")
    with pytest.raises(FexaError, match="unknown checkpoint source"):
        load_reference_weights(create_model("ir50"), sd, "insightface")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(FexaError, match="cannot read checkpoint"):
        read_state_dict(tmp_path / "junk.pth")


def test_checkpoint_files(tmp_path):
    sd = _random_state_dict("poster_mobilefacenet")
    torch.save({"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 3}, tmp_path / "mfn.pth.tar")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "mfn.safetensors"))
    for f in ("mfn.pth.tar", "mfn.safetensors"):
        model = create_model("mobilefacenet")
        load_reference_weights(model, tmp_path / f, "poster_mobilefacenet")
        torch.testing.assert_close(model.linear.weight, sd["output_layer.linear.weight"])
