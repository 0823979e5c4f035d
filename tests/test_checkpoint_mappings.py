"""The checkpoint key mappings against facts that do not come from the mappings themselves.

1. Hand-written tables of reference key -> fexa key (None: deliberately dropped), one per source of
   ``fexa.models.checkpoints.MAPPERS``, written from the reference layouts (/work/shared/spec/models.md,
   ``fexa/models/reference_keys.json``) and fexa's module definitions: every layer type and position
   (norm before attention vs norm before the MLP, qkv, projections, first / last unit of a stage,
   downsample / shortcut, stem, heads that are dropped). The mapper must give the table's key, and a
   randomised published-layout state dict loaded through ``load_reference_weights`` must put each
   tensor where the table says.
2. The authors' Former-DFER and POSTER IR-50 forward passes rebuilt in plain torch from the spec's
   facts and run on the reference state dict by its own key names: fexa's modules, loaded from that
   state dict, must give the same outputs.
3. Loads are position-sensitive: exchanging two same-shaped tensors of the state dict changes the
   output (so 1 and 2 compare tensors that matter).

Mutants these tests kill (each tried on a copy of the tree, see the report of issue 30):
- fexa/models/checkpoints.py ``_VIT_LAYER``: the targets ``norm1`` and ``norm2`` exchanged (Former-DFER's
  pre-attention norm loaded as the pre-MLP one) -> test_mapper_follows_the_hand_table[former_dfer],
  test_loaded_tensors_sit_where_the_hand_table_says[former_dfer], test_former_dfer_matches_the_reference_forward.
- ``map_ir``: ``res_layer.1`` and ``res_layer.3`` (the unit's two 3x3 convs) exchanged, or ``res_layer.0``
  and ``res_layer.4`` (its two BNs) -> the table tests [poster_ir50] / [insightface_ir] and
  test_ir50_matches_the_reference_forward.
- ``map_tramp_skateformer``: ``norm_1`` and ``norm_2`` exchanged, or the block index off by one
  (downsample not counted) -> the table tests [tramp_skateformer].
"""

import math

import pytest
import torch
import torch.nn.functional as F

from fexa.models import create_model
from fexa.models.checkpoints import MAPPERS, load_reference_weights
from fexa.models.synthetic_weights import random_tensors
from fexa.models.weights import reference_keys

SF = "s_former.spatial_transformer.layers.0"
TF = "t_former.temporal_transformer.layers"
SK = "stages.{}.blocks.{}.transformer."

TABLES: dict[str, list[tuple[str, str | None]]] = {
    # Former-DFER: ResNet-18 (its conv1/bn1 become fexa's stem Sequential), the lucidrains-style ViT
    # layers [PreNorm(Attention), PreNorm(FeedForward)] -> timm Block (norm1 attn, norm2 mlp);
    # FeedForward.net = (Linear 0, GELU 1, Dropout 2, Linear 3, Dropout 4).
    "former_dfer": [
        ("s_former.conv1.weight", "s_former.stem.0.weight"),
        ("s_former.bn1.running_var", "s_former.stem.1.running_var"),
        ("s_former.bn1.weight", "s_former.stem.1.weight"),
        ("s_former.layer1.0.bn1.weight", "s_former.layer1.0.bn1.weight"),
        ("s_former.layer1.0.bn2.weight", "s_former.layer1.0.bn2.weight"),
        ("s_former.layer1.1.conv2.weight", "s_former.layer1.1.conv2.weight"),
        ("s_former.layer2.0.downsample.0.weight", "s_former.layer2.0.downsample.0.weight"),
        ("s_former.layer2.0.downsample.1.running_mean", "s_former.layer2.0.downsample.1.running_mean"),
        ("s_former.layer4.1.bn2.bias", "s_former.layer4.1.bn2.bias"),
        ("s_former.pos_embedding", "s_former.pos_embedding"),
        (f"{SF}.0.fn.norm.weight", "s_former.transformer.0.norm1.weight"),
        (f"{SF}.0.fn.norm.bias", "s_former.transformer.0.norm1.bias"),
        (f"{SF}.0.fn.fn.to_qkv.weight", "s_former.transformer.0.attn.qkv.weight"),
        (f"{SF}.0.fn.fn.to_out.0.weight", "s_former.transformer.0.attn.proj.weight"),
        (f"{SF}.0.fn.fn.to_out.0.bias", "s_former.transformer.0.attn.proj.bias"),
        (f"{SF}.1.fn.norm.weight", "s_former.transformer.0.norm2.weight"),
        (f"{SF}.1.fn.norm.bias", "s_former.transformer.0.norm2.bias"),
        (f"{SF}.1.fn.fn.net.0.weight", "s_former.transformer.0.mlp.fc1.weight"),
        (f"{SF}.1.fn.fn.net.0.bias", "s_former.transformer.0.mlp.fc1.bias"),
        (f"{SF}.1.fn.fn.net.3.weight", "s_former.transformer.0.mlp.fc2.weight"),
        (f"{SF}.1.fn.fn.net.3.bias", "s_former.transformer.0.mlp.fc2.bias"),
        ("t_former.cls_token", "t_former.cls_token"),
        ("t_former.pos_embedding", "t_former.pos_embedding"),
        (f"{TF}.0.0.fn.norm.weight", "t_former.temporal_transformer.0.norm1.weight"),
        (f"{TF}.0.1.fn.norm.weight", "t_former.temporal_transformer.0.norm2.weight"),
        (f"{TF}.1.0.fn.fn.to_qkv.weight", "t_former.temporal_transformer.1.attn.qkv.weight"),
        (f"{TF}.1.1.fn.fn.net.0.bias", "t_former.temporal_transformer.1.mlp.fc1.bias"),
        (f"{TF}.2.0.fn.norm.bias", "t_former.temporal_transformer.2.norm1.bias"),
        (f"{TF}.2.0.fn.fn.to_out.0.weight", "t_former.temporal_transformer.2.attn.proj.weight"),
        (f"{TF}.2.1.fn.norm.bias", "t_former.temporal_transformer.2.norm2.bias"),
        (f"{TF}.2.1.fn.fn.net.3.weight", "t_former.temporal_transformer.2.mlp.fc2.weight"),
        # the DFEW files name the T-Former 'spatial_transformer' and carry the 7-class fc
        ("t_former.spatial_transformer.layers.1.0.fn.norm.weight", "t_former.temporal_transformer.1.norm1.weight"),
        ("t_former.spatial_transformer.layers.1.1.fn.norm.weight", "t_former.temporal_transformer.1.norm2.weight"),
        ("fc.weight", None),
        ("fc.bias", None),
    ],
    "former_dfer_classifier": [
        ("fc.weight", "head.weight"),
        ("fc.bias", "head.bias"),
        ("s_former.conv1.weight", "s_former.stem.0.weight"),
        ("t_former.spatial_transformer.layers.0.0.fn.norm.weight", "t_former.temporal_transformer.0.norm1.weight"),
        ("t_former.spatial_transformer.layers.0.1.fn.norm.weight", "t_former.temporal_transformer.0.norm2.weight"),
    ],
    # pyskl ConvModule (conv, bn[, activate]) -> fexa Sequential(0 conv, 1 bn, 2 relu); layerN -> layers.N-1.
    "pyskl_slowonly": [
        ("restnet3d.conv1.conv.weight", "conv1.0.weight"),
        ("restnet3d.conv1.bn.running_var", "conv1.1.running_var"),
        ("restnet3d.layer1.0.conv1.conv.weight", "layers.0.0.conv1.0.weight"),
        ("restnet3d.layer1.0.conv1.bn.weight", "layers.0.0.conv1.1.weight"),
        ("restnet3d.layer1.0.conv2.bn.weight", "layers.0.0.conv2.1.weight"),
        ("restnet3d.layer1.0.conv3.conv.weight", "layers.0.0.conv3.0.weight"),
        ("restnet3d.layer1.0.conv3.bn.bias", "layers.0.0.conv3.1.bias"),
        ("restnet3d.layer1.0.downsample.conv.weight", "layers.0.0.downsample.0.weight"),
        ("restnet3d.layer1.0.downsample.bn.running_mean", "layers.0.0.downsample.1.running_mean"),
        ("restnet3d.layer1.3.conv2.conv.weight", "layers.0.3.conv2.0.weight"),
        ("restnet3d.layer2.0.conv1.bn.weight", "layers.1.0.conv1.1.weight"),
        ("restnet3d.layer2.5.conv1.conv.weight", "layers.1.5.conv1.0.weight"),
        ("restnet3d.layer3.0.downsample.conv.weight", "layers.2.0.downsample.0.weight"),
        ("restnet3d.layer3.2.conv2.bn.weight", "layers.2.2.conv2.1.weight"),
        ("restnet3d.layer3.2.conv3.bn.bias", "layers.2.2.conv3.1.bias"),
        ("backbone.layer3.0.conv2.conv.weight", "layers.2.0.conv2.0.weight"),  # pose_only.pth's prefix
        ("cls_head.fc_cls.weight", None),
        ("cls_head.fc_cls.bias", None),
    ],
    # face.evoLVe bottleneck_IR: res_layer = (0 BN, 1 conv3x3, 2 PReLU, 3 conv3x3 stride, 4 BN), shortcut
    # (0 conv1x1, 1 BN); IR-50 units per stage 3, 4, 14, 3: flat 0-2 | 3-6 | 7-20 | 21-23.
    "poster_ir50": [
        ("input_layer.0.weight", "input_layer.0.weight"),
        ("input_layer.1.running_var", "input_layer.1.running_var"),
        ("input_layer.2.weight", "input_layer.2.weight"),
        ("body.0.res_layer.0.weight", "body.0.0.res_layer.0.weight"),
        ("body.0.res_layer.1.weight", "body.0.0.res_layer.1.weight"),
        ("body.0.res_layer.2.weight", "body.0.0.res_layer.2.weight"),
        ("body.0.res_layer.3.weight", "body.0.0.res_layer.3.weight"),
        ("body.0.res_layer.4.weight", "body.0.0.res_layer.4.weight"),
        ("body.2.res_layer.4.running_var", "body.0.2.res_layer.4.running_var"),
        ("body.3.shortcut_layer.0.weight", "body.1.0.shortcut_layer.0.weight"),
        ("body.3.shortcut_layer.1.running_mean", "body.1.0.shortcut_layer.1.running_mean"),
        ("body.4.res_layer.1.weight", "body.1.1.res_layer.1.weight"),
        ("body.4.res_layer.3.weight", "body.1.1.res_layer.3.weight"),
        ("body.6.res_layer.0.bias", "body.1.3.res_layer.0.bias"),
        ("body.7.res_layer.2.weight", "body.2.0.res_layer.2.weight"),
        ("body.7.shortcut_layer.0.weight", "body.2.0.shortcut_layer.0.weight"),
        ("body.20.res_layer.1.weight", "body.2.13.res_layer.1.weight"),
        ("body.20.res_layer.4.bias", "body.2.13.res_layer.4.bias"),
        ("body.21.res_layer.1.weight", None),  # stage 4: beyond PCDA's 3 stages
        ("output_layer.3.weight", None),
    ],
    # IR-152: 3, 8, 36, 3 units: flat 0-2 | 3-10 | 11-46 | 47-49; all four stages kept.
    "insightface_ir": [
        ("input_layer.0.weight", "input_layer.0.weight"),
        ("body.0.res_layer.1.weight", "body.0.0.res_layer.1.weight"),
        ("body.0.res_layer.3.weight", "body.0.0.res_layer.3.weight"),
        ("body.3.shortcut_layer.0.weight", "body.1.0.shortcut_layer.0.weight"),
        ("body.10.res_layer.4.weight", "body.1.7.res_layer.4.weight"),
        ("body.11.shortcut_layer.1.weight", "body.2.0.shortcut_layer.1.weight"),
        ("body.46.res_layer.0.running_mean", "body.2.35.res_layer.0.running_mean"),
        ("body.47.shortcut_layer.0.weight", "body.3.0.shortcut_layer.0.weight"),
        ("body.49.res_layer.3.weight", "body.3.2.res_layer.3.weight"),
        ("output_layer.0.weight", None),
        ("output_layer.3.weight", None),
    ],
    # POSTER's MobileFaceNet: Conv_block (conv, bn, prelu) -> Sequential(0, 1, 2), Linear_block (conv, bn)
    # -> (0, 1); Residual.model.N -> conv_3.N; output_layer = (conv_6_dw, flatten, linear, bn).
    "poster_mobilefacenet": [
        ("conv1.conv.weight", "conv1.0.weight"),
        ("conv1.bn.running_var", "conv1.1.running_var"),
        ("conv1.prelu.weight", "conv1.2.weight"),
        ("conv2_dw.conv.weight", "conv2_dw.0.weight"),
        ("conv2_dw.prelu.weight", "conv2_dw.2.weight"),
        ("conv_23.conv.conv.weight", "conv_23.conv.0.weight"),
        ("conv_23.conv_dw.bn.weight", "conv_23.conv_dw.1.weight"),
        ("conv_23.project.bn.bias", "conv_23.project.1.bias"),
        ("conv_3.model.0.conv.prelu.weight", "conv_3.0.conv.2.weight"),
        ("conv_3.model.3.conv_dw.conv.weight", "conv_3.3.conv_dw.0.weight"),
        ("conv_3.model.3.conv_dw.bn.weight", "conv_3.3.conv_dw.1.weight"),
        ("conv_34.project.conv.weight", "conv_34.project.0.weight"),
        ("conv_4.model.0.conv.bn.weight", "conv_4.0.conv.1.weight"),
        ("conv_4.model.5.project.conv.weight", "conv_4.5.project.0.weight"),
        ("conv_45.conv_dw.bn.running_mean", "conv_45.conv_dw.1.running_mean"),
        ("conv_5.model.1.project.bn.weight", "conv_5.1.project.1.weight"),
        ("conv_6_sep.conv.weight", "conv_6_sep.0.weight"),
        ("conv_6_sep.prelu.weight", "conv_6_sep.2.weight"),
        ("output_layer.conv_6_dw.conv.weight", "conv_6_dw.0.weight"),
        ("output_layer.conv_6_dw.bn.running_var", "conv_6_dw.1.running_var"),
        ("output_layer.linear.weight", "linear.weight"),
        ("output_layer.bn.weight", "bn.weight"),
        ("output_layer.bn.running_mean", "bn.running_mean"),
    ],
    # SkateFormer: stages.S.blocks.B.{downsample, transformer}; fexa's stage Sequential holds the
    # downsample at 0 (stages 1-3), so block B is at B (stage 0) or B + 1.
    "tramp_skateformer": [
        ("joint_person_embedding", "joint_embedding"),
        ("stem.0.weight", "stem.0.weight"),
        ("stem.4.bias", "stem.4.bias"),
        (SK.format(0, 0) + "norm_1.weight", "stages.0.0.norm_1.weight"),
        (SK.format(0, 0) + "norm_2.weight", "stages.0.0.norm_2.weight"),
        (SK.format(0, 0) + "mapping.weight", "stages.0.0.mapping.weight"),
        (SK.format(0, 0) + "mlp.fc1.weight", "stages.0.0.mlp.fc1.weight"),
        (SK.format(0, 0) + "tconv.weight", "stages.0.0.tconv.weight"),
        (SK.format(0,
         0) + "attention.0.relative_position_bias_table", "stages.0.0.attention.0.relative_position_bias_table"),
        (SK.format(0,
         0) + "attention.2.relative_position_bias_table", "stages.0.0.attention.2.relative_position_bias_table"),
        (SK.format(0, 0) + "attention.1.relative_position_index", None),
        (SK.format(0, 1) + "gconv", "stages.0.1.gconv"),
        (SK.format(0, 1) + "norm_2.bias", "stages.0.1.norm_2.bias"),
        ("stages.1.blocks.0.downsample.reduction.weight", "stages.1.0.reduction.weight"),
        ("stages.1.blocks.0.downsample.bn.running_var", "stages.1.0.bn.running_var"),
        (SK.format(1, 0) + "norm_1.weight", "stages.1.1.norm_1.weight"),
        (SK.format(1,
         0) + "attention.3.relative_position_bias_table", "stages.1.1.attention.3.relative_position_bias_table"),
        (SK.format(1, 1) + "proj.weight", "stages.1.2.proj.weight"),
        (SK.format(2, 1) + "mapping.bias", "stages.2.2.mapping.bias"),
        ("stages.3.blocks.0.downsample.reduction.bias", "stages.3.0.reduction.bias"),
        (SK.format(3, 1) + "mlp.fc2.bias", "stages.3.2.mlp.fc2.bias"),
        (SK.format(3, 1) + "norm_1.bias", "stages.3.2.norm_1.bias"),
        ("head.weight", None),
        ("evaluator.head.weight", None),
    ],
    # torchvision ResNet-18 -> STT.cnn = Sequential(0 conv1, 1 bn1, 2 relu, 3 maxpool, 4 layer1, 5 layer2, 6 layer3)
    "torchvision_resnet18": [
        ("conv1.weight", "0.weight"),
        ("bn1.running_var", "1.running_var"),
        ("layer1.0.conv1.weight", "4.0.conv1.weight"),
        ("layer1.1.bn2.bias", "4.1.bn2.bias"),
        ("layer2.0.downsample.0.weight", "5.0.downsample.0.weight"),
        ("layer2.0.downsample.1.running_mean", "5.0.downsample.1.running_mean"),
        ("layer3.1.conv2.weight", "6.1.conv2.weight"),
        ("layer4.0.conv1.weight", None),
        ("fc.weight", None),
    ],
    "timm_face": [
        ("stem.conv_kxk.conv.weight", "stem.conv_kxk.conv.weight"),
        ("layers.2.blocks.17.attn.qkv.weight", "layers.2.blocks.17.attn.qkv.weight"),
        ("head.fc.weight", None),
        ("head.fc.bias", None),
        ("classifier.weight", None),
    ],
    # keys after the qkv split: attn.q -> the landmark query q_lm, attn.kv -> kv; blocks.N -> N.
    "timm_vit_pcda": [
        ("blocks.0.attn.q.weight", "0.q_lm.weight"),
        ("blocks.1.attn.kv.bias", "1.kv.bias"),
        ("blocks.0.attn.proj.weight", "0.proj.weight"),
        ("blocks.0.norm1.weight", "0.norm1.weight"),
        ("blocks.1.norm2.bias", "1.norm2.bias"),
        ("blocks.1.mlp.fc1.weight", "1.mlp.fc1.weight"),
        ("blocks.11.mlp.fc2.bias", "11.mlp.fc2.bias"),
        ("pos_embed", None),
        ("cls_token", None),
        ("patch_embed.proj.weight", None),
        ("norm.weight", None),
        ("head.weight", None),
    ],
}


def test_every_source_has_a_hand_table():
    assert set(TABLES) == set(MAPPERS)


@pytest.mark.parametrize("source", sorted(TABLES))
def test_mapper_follows_the_hand_table(source):
    got = [(ref, MAPPERS[source](ref)) for ref, _ in TABLES[source]]
    assert got == TABLES[source]


# the published layouts in reference_keys.json and the fexa module each loads into
LAYOUTS = {
    "former_dfer": ("former_dfer_qafe", lambda: create_model("former_dfer")),
    "pyskl_slowonly": ("slowonly_qafe", lambda: create_model("slowonly_r50_heatmap")),
    "poster_ir50": ("poster_ir50", lambda: create_model("ir50")),
    "poster_mobilefacenet": ("poster_mobilefacenet", lambda: create_model("mobilefacenet")),
    "tramp_skateformer": ("tramp_skateformer", lambda: create_model("skateformer_face", bias_layout="reference")),
}


def _published(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomised state dict of a published layout, scaled like trained weights (finite outputs)."""
    return random_tensors(reference_keys()[name], torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("source", sorted(LAYOUTS))
def test_loaded_tensors_sit_where_the_hand_table_says(source):
    name, make = LAYOUTS[source]
    sd = _published(name)
    model = make()
    report = load_reference_weights(model, sd, source)
    ours = model.state_dict()
    checked = 0
    for ref, fexa_key in TABLES[source]:
        if ref not in sd:
            continue  # a key of another file of the source (checked by the mapper table only)
        if fexa_key is None:
            assert ref in report.dropped, ref
        else:
            assert torch.equal(ours[fexa_key], sd[ref].to(ours[fexa_key].dtype)), (ref, fexa_key)
        checked += 1
    assert checked >= 10


def test_dfew_classifier_file_fills_the_head_from_fc():
    """A whole DFEW Former-DFER (112 px, T-Former named spatial_transformer, fc) into former_dfer_112."""
    sd = {k.replace("t_former.temporal_transformer", "t_former.spatial_transformer"): v
          for k, v in _published("former_dfer_qafe").items()}
    sd["s_former.pos_embedding"] = torch.randn(1, 49, 256)
    sd["fc.weight"], sd["fc.bias"] = torch.randn(7, 512), torch.randn(7)
    model = create_model("former_dfer_112")
    load_reference_weights(model, sd, "former_dfer_classifier")
    ours = model.state_dict()
    for ref, fexa_key in TABLES["former_dfer_classifier"]:
        assert torch.equal(ours[fexa_key], sd[ref]), (ref, fexa_key)


# -- the authors' forward passes, rebuilt from the spec on the reference key names ------------------
def _bn(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
                        training=False, eps=1e-5)


def _basic_block(x: torch.Tensor, sd: dict, p: str, stride: int) -> torch.Tensor:
    """torchvision's / Former-DFER's ResNet BasicBlock (stride on conv1 and the 1x1 downsample)."""
    out = F.relu(_bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
    out = _bn(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
    if f"{p}.downsample.0.weight" in sd:
        x = _bn(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
    return F.relu(out + x)


def _vit_layers(x: torch.Tensor, sd: dict, p: str, depth: int, heads: int) -> torch.Tensor:
    """Former-DFER's Transformer: per layer x += to_out(attn(to_qkv(LN(x)))) (PreNorm, qkv without
    bias, scale dim_head^-0.5), then x += net.3(GELU_tanh(net.0(LN(x))))."""
    b, n, d = x.shape
    for i in range(depth):
        a, f = f"{p}.layers.{i}.0.fn", f"{p}.layers.{i}.1.fn"
        h = F.layer_norm(x, (d,), sd[f"{a}.norm.weight"], sd[f"{a}.norm.bias"])
        q, k, v = (t.reshape(b, n, heads, -1).transpose(1, 2) for t in (h @ sd[f"{a}.fn.to_qkv.weight"].T).chunk(3, -1))
        att = ((q @ k.transpose(-1, -2)) * (d // heads) ** -0.5).softmax(-1) @ v
        x = x + F.linear(att.transpose(1, 2).reshape(b, n, d), sd[f"{a}.fn.to_out.0.weight"], sd[f"{a}.fn.to_out.0.bias"])
        h = F.layer_norm(x, (d,), sd[f"{f}.norm.weight"], sd[f"{f}.norm.bias"])
        h = F.gelu(F.linear(h, sd[f"{f}.fn.net.0.weight"], sd[f"{f}.fn.net.0.bias"]), approximate="tanh")
        x = x + F.linear(h, sd[f"{f}.fn.net.3.weight"], sd[f"{f}.fn.net.3.bias"])
    return x


def _reference_s_former(frames: torch.Tensor, sd: dict) -> torch.Tensor:
    """S-Former: 7x7/2 conv, BN, ReLU, 3x3/2 max-pool, layer1-3, tokens + pos_embedding, 1 layer
    (dim 256, 8 heads), back to the map, layer4, global average pool."""
    x = F.relu(_bn(F.conv2d(frames, sd["s_former.conv1.weight"], stride=2, padding=3), sd, "s_former.bn1"))
    x = F.max_pool2d(x, 3, 2, 1)
    for layer, stride in ((1, 1), (2, 2), (3, 2)):
        x = _basic_block(_basic_block(x, sd, f"s_former.layer{layer}.0", stride), sd, f"s_former.layer{layer}.1", 1)
    n, c, h, w = x.shape
    t = _vit_layers(x.reshape(n, c, h * w).permute(0, 2, 1) + sd["s_former.pos_embedding"], sd,
                    "s_former.spatial_transformer", 1, 8)
    x = t.permute(0, 2, 1).reshape(n, c, h, w)
    x = _basic_block(_basic_block(x, sd, "s_former.layer4.0", 2), sd, "s_former.layer4.1", 1)
    return x.mean(dim=(2, 3))


def _reference_t_former(feats: torch.Tensor, sd: dict) -> torch.Tensor:
    """T-Former: [CLS; 16 frame features] + pos_embedding, 3 layers (dim 512, 8 heads), the CLS output."""
    x = torch.cat([sd["t_former.cls_token"].expand(feats.shape[0], -1, -1), feats], 1) + sd["t_former.pos_embedding"]
    return _vit_layers(x, sd, "t_former.temporal_transformer", 3, 8)[:, 0]


def _assert_same(ours: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())


def test_former_dfer_matches_the_reference_forward():
    """fexa's S-Former and T-Former loaded from a published-layout state dict compute what the
    authors' modules compute from it (this is what catches norm1 and norm2 loaded the wrong way round)."""
    sd = _published("former_dfer_qafe")
    model = create_model("former_dfer").eval()
    load_reference_weights(model, sd, "former_dfer")
    g = torch.Generator().manual_seed(3)
    frames, feats = torch.randn(2, 3, 224, 224, generator=g), torch.randn(2, 16, 512, generator=g)
    with torch.no_grad():
        _assert_same(model.s_former(frames), _reference_s_former(frames, sd))
        _assert_same(model.t_former(feats), _reference_t_former(feats, sd))


def _reference_ir50(x: torch.Tensor, sd: dict) -> torch.Tensor:
    """POSTER's IR-50 (3 stages): input_layer (3x3 conv, BN, PReLU); 21 flat bottleneck_IR units,
    stride 2 in the first of each stage (flat 0, 3, 7); res = BN, conv3x3, PReLU, conv3x3 (stride),
    BN; shortcut = 1x1 conv + BN where the file has one, else MaxPool2d(1, stride)."""
    x = F.prelu(_bn(F.conv2d(x, sd["input_layer.0.weight"], padding=1), sd, "input_layer.1"), sd["input_layer.2.weight"])
    for u in range(21):
        p, stride = f"body.{u}", 2 if u in (0, 3, 7) else 1
        r = _bn(x, sd, f"{p}.res_layer.0")
        r = F.prelu(F.conv2d(r, sd[f"{p}.res_layer.1.weight"], padding=1), sd[f"{p}.res_layer.2.weight"])
        r = _bn(F.conv2d(r, sd[f"{p}.res_layer.3.weight"], stride=stride, padding=1), sd, f"{p}.res_layer.4")
        if f"{p}.shortcut_layer.0.weight" in sd:
            s = _bn(F.conv2d(x, sd[f"{p}.shortcut_layer.0.weight"], stride=stride), sd, f"{p}.shortcut_layer.1")
        else:
            s = x[:, :, ::stride, ::stride]
        x = r + s
    return x


def test_ir50_matches_the_reference_forward():
    sd = _published("poster_ir50")
    model = create_model("ir50").eval()
    load_reference_weights(model, sd, "poster_ir50")
    x = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ours, ref = model(x), _reference_ir50(x, sd)
    assert ref.shape == (2, 256, 14, 14)
    _assert_same(ours, ref)


# -- position sensitivity -------------------------------------------------------------------------
def _inputs(source: str) -> tuple:
    g = torch.Generator().manual_seed(5)
    return {
        "former_dfer": lambda: (torch.randn(1, 3, 224, 224, generator=g),),
        "pyskl_slowonly": lambda: (torch.randn(1, 3, 8, 56, 56, generator=g),),
        "poster_ir50": lambda: (torch.randn(1, 3, 112, 112, generator=g),),
        "poster_mobilefacenet": lambda: (torch.randn(2, 3, 112, 112, generator=g),),
        "tramp_skateformer": lambda: (torch.randn(1, 128, 63, 5, generator=g), torch.linspace(-1, 1, 128)[None]),
    }[source]()


EXCHANGES = {  # two same-shaped tensors of the published layout a wrong mapping could confuse
    "former_dfer": (f"{SF}.0.fn.norm.weight", f"{SF}.1.fn.norm.weight"),
    "pyskl_slowonly": ("restnet3d.layer2.0.conv1.bn.weight", "restnet3d.layer2.0.conv2.bn.weight"),
    "poster_ir50": ("body.4.res_layer.1.weight", "body.4.res_layer.3.weight"),
    "poster_mobilefacenet": ("conv_3.model.1.conv.bn.weight", "conv_3.model.1.conv_dw.bn.weight"),
    "tramp_skateformer": (SK.format(1, 0) + "norm_1.weight", SK.format(1, 0) + "norm_2.weight"),
}


@pytest.mark.parametrize("source", sorted(EXCHANGES))
def test_exchanging_two_same_shaped_tensors_changes_the_output(source):
    name, make = LAYOUTS[source]
    sd = _published(name)
    a, b = EXCHANGES[source]
    assert sd[a].shape == sd[b].shape and not torch.equal(sd[a], sd[b])
    swapped = {**sd, a: sd[b], b: sd[a]}
    inputs = _inputs(source)
    outs = []
    for state in (sd, swapped, sd):
        model = make().eval()
        load_reference_weights(model, state, source)
        run = model.s_former if source == "former_dfer" else model
        with torch.no_grad():
            outs.append(run(*inputs))
    assert torch.isfinite(outs[0]).all()
    torch.testing.assert_close(outs[2], outs[0])  # the same file loads to the same outputs
    change = (outs[1] - outs[0]).abs().max().item()
    assert change > 1e-3 * outs[0].abs().max().item() and not math.isclose(change, 0.0)
