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
    """Completeness: every parameter is filled and every loaded tensor arrives unchanged at its
    mapped key. This compares with MAPPERS itself, so it cannot see a wrong mapping (norm1 read as
    norm2): test_checkpoint_mappings.py checks the mappings against hand tables and the authors'
    forward passes."""
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


AUTHORS_SCRIPT = """
import sys
import numpy as np
import torch

class RecorderMeter(object):  # as Former-DFER's main.py defines it, in __main__
    def __init__(self, total_epoch):
        self.total_epoch = total_epoch
        self.current_epoch = 0
        self.epoch_losses = np.zeros((total_epoch, 2), dtype=np.float32)

torch.manual_seed(0)
model = torch.nn.DataParallel(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
model(torch.randn(2, 3, 8, 8)).sum().backward()
opt.step()
state = {'epoch': 3, 'state_dict': model.state_dict(), 'best_acc': torch.tensor(61.25),
         'optimizer': opt.state_dict(), 'recorder': RecorderMeter(100)}
torch.save(state, sys.argv[1])
torch.save(state, sys.argv[2], _use_new_zipfile_serialization=False)
torch.save(model.module.state_dict(), sys.argv[3])
"""


def test_an_authors_checkpoint_with_their_own_objects_is_read_without_their_code(tmp_path):
    """Former-DFER's main.py saves a __main__.RecorderMeter and the optimizer state next to the
    weights: weights_only refuses the file; the restricted reader rebuilds the tensors and keeps the
    recorder as an inert placeholder (its class exists in no module of this process)."""
    import subprocess
    import sys

    from fexa.models.checkpoints import read_checkpoint
    from fexa.models.restricted_pickle import Placeholder

    files = [tmp_path / "model_best.pth", tmp_path / "legacy.pth", tmp_path / "plain.pth"]
    subprocess.run([sys.executable, "-c", AUTHORS_SCRIPT, *map(str, files)], check=True)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(files[0], weights_only=True)
    plain = torch.load(files[2], weights_only=True)
    for f in files[:2]:  # torch's zip format and the legacy one
        sd = read_state_dict(f)
        assert sorted(sd) == sorted(plain) and "0.weight" in sd  # 'module.' stripped
        for k in plain:
            assert torch.equal(sd[k], plain[k])
        whole = read_checkpoint(f)
        rec = whole["recorder"]
        assert isinstance(rec, Placeholder) and type(rec).__qualname__ == "__main__.RecorderMeter"
        assert rec.state["total_epoch"] == 100 and rec.state["epoch_losses"].shape == (100, 2)
        assert whole["epoch"] == 3 and whole["best_acc"].item() == 61.25
        assert whole["optimizer"]["state"][0]["momentum_buffer"].shape == plain["0.weight"].shape


class _Evil:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    import builtins
    import struct

    flag = tmp_path / "ran"
    command = f"touch {flag}".encode()
    raw = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."  # os.system(command)
    (tmp_path / "legacy.pth").write_bytes(raw)
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Evil(builtins.eval, f"open('{flag}', 'w')")},
               tmp_path / "zip.pth")
    torch.save({"state_dict": {"w": torch.ones(2)}, "x": _Evil(_Evil, "an unknown class, called")},
               tmp_path / "class.pth")
    for name, refused in [("legacy.pth", "os.system"), ("zip.pth", "builtins.eval"),
                          ("class.pth", "test_checkpoints._Evil")]:
        with pytest.raises(FexaError) as err:
            read_state_dict(tmp_path / name)
        message = str(err.value)
        assert "\n" not in message and str(tmp_path / name) in message and f"calls {refused}" in message
    assert not flag.exists()


def test_skateformer_stem_is_trained_anew_for_two_or_three_trajectory_channels():
    """TraMP-Former's DFEW SkateFormer takes 5 channels; at Cp = 2 or 3 every stem conv changes shape
    (5->10->15->128 against 2->4->6->128), so the stem keeps its own init and the rest loads."""
    sd = _random_state_dict("tramp_skateformer")
    for channels in (2, 3):
        model = create_model("skateformer_face", bias_layout="reference", in_channels=channels)
        stem = {k: v.clone() for k, v in model.stem.state_dict().items()}
        report = load_reference_weights(model, sd, "tramp_skateformer")
        assert sorted(k for k in report.dropped if k.startswith("stem.")) == sorted(f"stem.{k}" for k in stem)
        assert all(torch.equal(v, model.stem.state_dict()[k]) for k, v in stem.items())
        torch.testing.assert_close(model.joint_embedding, sd["joint_person_embedding"])
        torch.testing.assert_close(model.stages[3][2].proj.weight, sd["stages.3.blocks.1.transformer.proj.weight"])
    five = load_reference_weights(create_model("skateformer_face", bias_layout="reference"), sd, "tramp_skateformer")
    assert "stem.0.weight" in five.loaded  # the published 5-channel model loads its stem


def _expected_random(name: str) -> dict[str, torch.Tensor]:
    from fexa.models.synthetic_weights import random_tensors
    from fexa.models.weights import PUBLISHED

    return random_tensors(PUBLISHED[name].expected(), torch.Generator().manual_seed(1))


def test_torchvision_resnet18_fills_stts_cnn_up_to_layer3():
    sd = _expected_random("msceleb_resnet18")
    model = create_model("stt")
    report = load_reference_weights(model.cnn, sd, "torchvision_resnet18")
    assert {k.split(".")[0] for k in report.dropped} == {"layer4", "fc"}
    torch.testing.assert_close(model.cnn[0].weight, sd["conv1.weight"])
    torch.testing.assert_close(model.cnn[1].running_var, sd["bn1.running_var"])
    torch.testing.assert_close(model.cnn[6][1].conv2.weight, sd["layer3.1.conv2.weight"])
    torch.testing.assert_close(model.cnn[5][0].downsample[0].weight, sd["layer2.0.downsample.0.weight"])


def test_face_evolve_ir152_flat_body_lands_in_its_stage_and_unit():
    """IR-152's units per stage are 3, 8, 36, 3: flat unit 16 is stage 2's unit 5, flat 49 stage 3's last."""
    sd = _expected_random("msceleb_ir152")
    model = create_model("ir152", num_classes=5)
    head = model.head[2].weight.clone()
    report = load_reference_weights(model, sd, "insightface_ir")
    assert {k.split(".")[0] for k in report.dropped} == {"output_layer"}
    torch.testing.assert_close(model.body[2][5].res_layer[1].weight, sd["body.16.res_layer.1.weight"])
    torch.testing.assert_close(model.body[3][2].res_layer[4].running_mean, sd["body.49.res_layer.4.running_mean"])
    assert torch.equal(model.head[2].weight, head)  # the expression classifier is trained anew


def test_vit_b16_blocks_become_pcdas_cross_feature_blocks():
    """qkv's rows [q; k; v]: q -> the landmark query q_lm, k and v -> kv; blocks beyond the depth dropped."""
    sd = _expected_random("vit_b16_imagenet")
    model = create_model("pcda", depth=3)
    report = load_reference_weights(model.blocks, sd, "timm_vit_pcda")
    assert report.adapted == [f"blocks.{i}.attn.qkv.{w}" for i in range(3) for w in ("weight", "bias")]
    qkv = sd["blocks.2.attn.qkv.weight"]
    torch.testing.assert_close(model.blocks[2].q_lm.weight, qkv[:768])
    torch.testing.assert_close(model.blocks[2].kv.weight, qkv[768:])
    torch.testing.assert_close(model.blocks[2].kv.bias, sd["blocks.2.attn.qkv.bias"][768:])
    torch.testing.assert_close(model.blocks[0].proj.weight, sd["blocks.0.attn.proj.weight"])
    torch.testing.assert_close(model.blocks[1].mlp.fc2.bias, sd["blocks.1.mlp.fc2.bias"])
    assert {"blocks.3.mlp.fc1.weight", "blocks.11.norm2.bias", "pos_embed", "head.weight"} <= set(report.dropped)


def test_timm_face_backbone_drops_its_face_classifier_and_keeps_the_new_one():
    from fexa.models.synthetic_weights import synthetic_file

    _, sd = synthetic_file("msceleb_repvgg")
    whole = synthetic_file("msceleb_repvgg")[0]
    assert whole["head.fc.weight"].shape[0] == 512  # the file's face-recognition classifier
    model = create_model("repvgg", num_classes=4)
    report = load_reference_weights(model, whole, "timm_face")
    assert report.dropped == ["head.fc.weight", "head.fc.bias"] and model.head.fc.out_features == 4
    torch.testing.assert_close(model.stem.conv_kxk.conv.weight, sd["stem.conv_kxk.conv.weight"])
