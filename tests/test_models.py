"""Architectures: parameter counts against the reference code, and their equations on small inputs."""

import pytest
import torch

from fexa.models import count_parameters, create_model, get_entry, list_models
from fexa.models.blocks import CrossAttentionBlock, CrossFusionBlock
from fexa.models.cfc_sp import cascade, compose_probabilities, smooth_predicting, sp_gain
from fexa.models.skateformer import PartitionAttention, _partition, _reverse

torch.manual_seed(0)


@pytest.mark.parametrize("name", [n for n in list_models() if get_entry(n).reference_params])
def test_parameter_counts_match_the_reference(name):
    e = get_entry(name)
    n = count_parameters(create_model(name))
    expected = e.reference_params + e.param_difference
    assert abs(n - expected) <= 0.005 * e.reference_params, (name, n, expected)
    if e.param_difference:
        assert e.param_note  # a deliberate difference is explained
    if e.reference_params % 1000:  # exact counts measured on the reference code: match exactly
        assert n == expected


def test_unknown_options_and_models_are_errors():
    with pytest.raises(TypeError, match="no option"):
        create_model("qafe_net", fusion_type="sum")
    with pytest.raises(KeyError, match="unknown model"):
        create_model("qafe")
    with pytest.raises(ValueError, match="fusion must be one of"):
        create_model("tramp_former", fusion="magic")


def test_former_dfer_subclips_and_layout():
    m = create_model("former_dfer", img_size=112).eval()
    clip = torch.randn(2, 32, 3, 112, 112)
    with torch.no_grad():
        out = m(clip)
        assert out.shape == (2, 2, 512)
        # each subclip is encoded on its own: the second subclip's feature ignores the first's frames
        clip2 = clip.clone()
        clip2[:, :16] = 0
        out2 = m(clip2)
    assert torch.allclose(out[:, 1], out2[:, 1], atol=1e-5) and not torch.allclose(out[:, 0], out2[:, 0])
    with pytest.raises(ValueError, match="n x 16"):
        m(torch.randn(1, 20, 3, 112, 112))


def test_cross_fusion_block_uses_the_old_rgb_tokens_and_shared_weights():
    blk = CrossFusionBlock(dim=32, heads=4, mlp=128).eval()
    x1, x2 = torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    y1, y2 = blk(x1, x2)
    a = x2 + blk.attn(blk.norm_q(x2), blk.norm_kv(x1))  # x1, not y1
    torch.testing.assert_close(y2, a + blk.mlp(blk.norm(a)))
    b = x1 + blk.attn(blk.norm_q(x1), blk.norm_kv(x2))
    torch.testing.assert_close(y1, b + blk.mlp(blk.norm(b)))


def test_tramp_block_with_one_key_reduces_to_value_projection():
    blk = CrossAttentionBlock(dim=32, heads=4, mlp=64).eval()
    ef, ep = torch.randn(3, 1, 32), torch.randn(3, 1, 32)
    a = ef + blk.attn.proj(blk.attn.v(blk.norm_kv(ep)))  # softmax over one key is 1: q and k drop out
    torch.testing.assert_close(blk(ef, ep), a + blk.mlp(blk.norm(a)))


# QAFE-Net's parts by the spec's counts: Former-DFER 18,065,984 (224 px; 18,028,352 at 112), SlowOnly
# 1,972,128, one cross-fusion block 3,151,872, subclip position embedding n x 512, Conv1d(k, k, 1)
# k^2 + k, head 512-256-128-1 164,353 (+ 4 x 129 for 5 classes); the reference's unused LayerNorm
# (1,024) is left out, so the paper model is 29,661,775 - 1,024. Table 8 has Conv1d only in the full
# method (concatenated streams + Conv1d); Table 5's sum / concat fusions keep it.
ENCODERS = 18_065_984 + 1_972_128
QAFE_VARIANT_PARAMS = [
    ({}, ENCODERS + 3 * 3_151_872 + 5 * 512 + 110 + 164_353),  # = 29,660,751
    ({"num_blocks": 1}, ENCODERS + 1 * 3_151_872 + 5 * 512 + 110 + 164_353),
    ({"num_blocks": 5}, ENCODERS + 5 * 3_151_872 + 5 * 512 + 110 + 164_353),
    ({"fusion": "sum"}, ENCODERS + 30 + 164_353),  # no blocks, no position embedding, 5 tokens
    ({"fusion": "concat"}, ENCODERS + 110 + 164_353),
    ({"output": "heatmap"}, ENCODERS + 3 * 3_151_872 + 5 * 512 + 164_353),  # Table 8: one stream, no Conv1d
    ({"output": "concat"}, ENCODERS + 3 * 3_151_872 + 5 * 512 + 164_353),  # no Conv1d
    ({"num_classes": 5}, ENCODERS + 3 * 3_151_872 + 5 * 512 + 110 + 164_353 + 4 * 129),
    ({"num_subclips": 9}, ENCODERS + 3 * 3_151_872 + 9 * 512 + 18 * 18 + 18 + 164_353),  # UNBC: 144 frames
    ({"img_size": 112}, 18_028_352 + 1_972_128 + 3 * 3_151_872 + 5 * 512 + 110 + 164_353),
]


@pytest.mark.parametrize("kw, params", QAFE_VARIANT_PARAMS, ids=[str(k) for k, _ in QAFE_VARIANT_PARAMS])
def test_qafe_net_variant_parameter_counts(kw, params):
    assert QAFE_VARIANT_PARAMS[0][1] == 29_661_775 - 1_024
    assert count_parameters(create_model("qafe_net", **kw)) == params


def _hand_fuse(m, ev: torch.Tensor, eh: torch.Tensor) -> torch.Tensor:
    """QAFE-Net's fusion from its description (spec section 1 and Tables 5, 8): cross fusion with the
    old x1 in x2's update and one set of weights, then the chosen tokens, then Conv1d over tokens."""
    cfg = m.cfg
    if cfg.fusion == "sum":
        x = ev + eh
    elif cfg.fusion == "concat":
        x = torch.cat([ev, eh], 1)
    else:
        x1, x2 = (ev + m.subclip_pos, eh) if cfg.spe_on == "rgb" else (ev, eh + m.subclip_pos)

        def update(blk, a, b):
            a = a + blk.attn(blk.norm_q(a), blk.norm_kv(b))
            return a + blk.mlp(blk.norm(a))

        for blk in m.blocks:
            x1, x2 = update(blk, x1, x2), update(blk, x2, x1)
        x = {"rgb": x1, "heatmap": x2}.get(cfg.output, torch.cat([x1, x2], 1))
    if cfg.output != "concat_conv1d":
        assert m.mix is None
        return x
    w, b = m.mix.weight[:, :, 0], m.mix.bias  # Conv1d(k, k, 1): each output token mixes all k tokens
    assert w.shape == (x.shape[1], x.shape[1])
    return torch.einsum("ij,bjc->bic", w, x) + b[None, :, None]


QAFE_FUSIONS = [{}, {"spe_on": "heatmap"}, {"output": "rgb"}, {"output": "heatmap"}, {"output": "concat"},
                {"fusion": "sum"}, {"fusion": "concat"}, {"num_classes": 5, "num_blocks": 1}]


@pytest.mark.parametrize("kw", QAFE_FUSIONS, ids=[str(k) for k in QAFE_FUSIONS])
def test_qafe_net_fusion_variants_follow_their_equations(kw):
    """Each variant's fused tokens against _hand_fuse; the score depends on both streams' features,
    and every fusion and head parameter gets a gradient. Mutants killed: fexa/models/qafe_net.py
    QAFENet.fuse with the position embedding always on the RGB tokens, output='heatmap' returning the
    RGB stream, the streams' order exchanged in the blocks, sum and concat exchanged, or mix skipped."""
    m = create_model("qafe_net", num_subclips=2, **kw).eval()
    g = torch.Generator().manual_seed(1)
    ev, eh = torch.randn(2, 2, 512, generator=g), torch.randn(2, 2, 512, generator=g)
    tokens = m.fuse(ev, eh)
    torch.testing.assert_close(tokens, _hand_fuse(m, ev, eh))
    expect_tokens = 2 if kw.get("fusion") == "sum" or kw.get("output") in ("rgb", "heatmap") else 4
    assert tokens.shape == (2, expect_tokens, 512)
    score = lambda a, b: m.head(m.fuse(a, b)).mean(1)  # noqa: E731 - forward after the encoders
    out = score(ev, eh)
    assert out.shape == (2, kw.get("num_classes", 1))
    d = 0.5 * torch.randn(2, 2, 512, generator=g)  # not a constant shift: LayerNorm would remove that
    with torch.no_grad():
        assert not torch.allclose(score(ev + d, eh), out) and not torch.allclose(score(ev, eh + d), out)
    out.sum().backward()
    fusion_params = {n: p for n, p in m.named_parameters() if not n.startswith(("rgb.", "heatmap."))}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion_params.values()), \
        [n for n, p in fusion_params.items() if p.grad is None]
    has_blocks = kw.get("fusion", "cross") == "cross"
    assert any(n.startswith("blocks.") for n in fusion_params) == has_blocks
    assert ("subclip_pos" in fusion_params) == has_blocks


def test_qafe_net_forward_scores_both_streams_per_subclip():
    """forward = mean over tokens of head(fuse(RGB features, heatmap features)), the heatmap clip
    [B, n x 16, C, H, W] cut into 16-frame subclips each read as [C, 16, H, W] by SlowOnly; every
    parameter of both encoders is trained end to end (gets a gradient). Small frames keep it fast."""
    g = torch.Generator().manual_seed(2)
    clip, heat = torch.randn(1, 32, 3, 32, 32, generator=g), torch.rand(1, 32, 3, 16, 16, generator=g)
    for kw in ({}, {"num_classes": 5, "num_blocks": 1}):
        m = create_model("qafe_net", num_subclips=2, img_size=32, **kw).eval()
        out = m(clip, heat)
        eh = torch.stack([m.heatmap(heat[:, 16 * k:16 * (k + 1)].permute(0, 2, 1, 3, 4)) for k in range(2)], 1)
        hand = m.head(_hand_fuse(m, m.rgb.encode(clip), eh)).mean(1)
        torch.testing.assert_close(out, hand if kw else hand[:, 0])
        assert out.shape == ((1, 5) if kw else (1,))
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def _point_ids(t: int, v: int) -> torch.Tensor:
    """[1, 2, T, V]: channel 0 holds the frame index, channel 1 the point index."""
    tt, vv = torch.meshgrid(torch.arange(t), torch.arange(v), indexing="ij")
    return torch.stack([tt, vv]).float()[None]


def test_skateformer_partitions_group_the_right_tokens():
    x = _point_ids(32, 63)
    # type 1: 8 contiguous frames x the 9 points of one region
    w, info = _partition(x, (4, 8), (7, 9), False, False)
    assert w.shape == (4 * 7, 72, 2)
    assert set(w[0, :, 0].tolist()) == set(range(8)) and set(w[0, :, 1].tolist()) == set(range(9))
    # type 2: one point from each region (stride 9)
    w2, info2 = _partition(x, (4, 8), (7, 9), False, True)
    assert set(w2[0, :, 1].tolist()) == {0, 9, 18, 27, 36, 45, 54}
    # type 3: 16 frames at stride T/16 = 2
    w3, info3 = _partition(x, (16, 2), (7, 9), True, False)
    assert sorted(set(w3[0, :, 0].tolist())) == list(range(0, 32, 2))
    for win, inf in ((w, info), (w2, info2), (w3, info3)):
        torch.testing.assert_close(_reverse(win, inf), x)  # partition then reverse is the identity
    # tokens are time-major: token k is frame k // points
    assert w[0, :, 0].tolist() == [k // 9 for k in range(72)]


@pytest.mark.parametrize("frames", [64, 128, 256])
def test_global_partitions_follow_tp_equals_g_times_l(frames):
    """T_p = G x L with L = 8: G = 8, 16, 32 global frames at stride 8 on the input, stride 1 at the last stage."""
    g = {64: 8, 128: 16, 256: 32}[frames]
    m = create_model("skateformer_face", num_frames=frames, depths=(1, 1, 1, 1))
    first, last = m.stages[0][0], m.stages[3][1]
    assert first._windows(frames)[2][0] == (g, 8) and last._windows(frames // 8)[2][0] == (g, 1)
    assert first.attention[2].tt == first.attention[3].tt == g
    w, _ = _partition(_point_ids(frames, 63), (g, 8), (7, 9), True, False)
    # windows run over (offset l, region): window 3 x 7 + 2 is frames 3, 11, ..., 3 + 8 (G - 1) x region 2's points
    assert w[23, :, 0].tolist()[::9] == list(range(3, frames, 8)) and w[23, :9, 1].tolist() == list(range(18, 27))
    with torch.no_grad():
        out = m.eval()(torch.randn(1, frames, 63, 5), torch.zeros(1, frames))
    assert out.shape == (1, 256)
    with pytest.raises(ValueError, match="multiple of 2"):
        create_model("skateformer_face", num_frames=256, depths=(1,) * 5, channels=(128,) + (256,) * 4)


def test_relative_time_bias_layouts():
    att = PartitionAttention(heads=1, time_tokens=2, point_tokens=3, table_frames=2, per_point_bias=False, attn_drop=0)
    with torch.no_grad():
        att.relative_position_bias_table.copy_(torch.tensor([[10.0], [20.0], [30.0]]))  # offsets -1, 0, +1
    b = att.bias()[0]
    # token r = (t, p) with t = r // 3: bias = table[t_row - t_col + 1]
    assert b[0, 0] == 20 and b[0, 3] == 10 and b[3, 0] == 30 and b[2, 4] == 10
    att.reference_layout = True  # SkateFormer's tiling: frame = r mod 2
    b = att.bias()[0]
    assert b[0, 1] == 10 and b[1, 0] == 30 and b[0, 3] == 10 and b[1, 3] == 20


def test_skate_embedding_at_time_zero_is_the_cosine_half():
    s = create_model("skateformer_face", num_frames=64)
    e = s.skate_embedding(torch.zeros(1, 64))
    torch.testing.assert_close(e[0, 0::2], torch.zeros_like(e[0, 0::2]))  # sin(0)
    torch.testing.assert_close(e[0, 1::2, 5], s.joint_embedding[1::2])  # cos(0) = 1


def test_trajectory_stream_learns():
    """A few steps on two trajectories with different targets: the loss must fall."""
    torch.manual_seed(0)
    m = create_model("tramp_trajectory", traj_frames=32, traj_channels=2, dim=64,
                     traj_encoder={"embed_dim": 64, "depths": (1, 1), "channels": (64, 64), "attn_drop": 0.0})
    x = torch.randn(2, 32, 63, 2)
    ti = torch.linspace(-1, 1, 32).expand(2, 32)
    y = torch.tensor([0.0, 4.0])
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(m(None, x, ti), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_smooth_predicting_by_hand():
    """Eq. 1 with w = 2: x_i + (x_{i-1} + x_i + x_{i+1}) / 2; at the ends and around a faceless frame
    the frames present are averaged and scaled to the window's 3 frames (x 3/2)."""
    x = torch.tensor([[0.0], [3.0], [6.0], [9.0]])
    out = smooth_predicting(x, window=2)
    torch.testing.assert_close(out[:, 0], torch.tensor([0 + 1.5 * 1.5, 3 + 9 / 2, 6 + 18 / 2, 9 + 1.5 * 7.5]))
    valid = torch.tensor([True, False, True, True])
    out = smooth_predicting(x, window=2, valid=valid)
    torch.testing.assert_close(out[:, 0], torch.tensor([0 + 0.0, 3.0, 6 + 1.5 * 7.5, 9 + 1.5 * 7.5]))
    torch.testing.assert_close(smooth_predicting(x, 0), x)
    assert sp_gain(256) == 257 / 256 and sp_gain(0) == 0


def test_smooth_predicting_acts_on_logits_as_the_paper_says():
    """A member whose classifier outputs only its bias b: SP on logits gives b + (5/4) b with w = 4
    (the bias is part of the smoothed logits); smoothing features before the classifier gave b."""
    from fexa.models.cfc_sp import _Member

    m = _Member("ir50", 5).eval()
    with torch.no_grad():
        m.classifier.weight.zero_()
        m.classifier.bias.copy_(torch.arange(5.0))
        out = m(torch.randn(6, 3, 112, 112), window=4)
    torch.testing.assert_close(out, torch.arange(5.0).expand(6, 5) * (1 + 5 / 4))


def test_cascade_maps_back_to_eight_classes():
    coarse = torch.tensor([[9, 0, 0, 0, 0], [0, 9, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 0, 9, 0], [0, 0, 0, 0, 9.0]])
    negative = torch.tensor([[0, 0, 0, 9.0]] * 5)
    # Neutral 0, Happiness 4, Surprise 6, Other 7, Negative -> Sadness 5
    assert cascade(coarse, negative).tolist() == [0, 4, 6, 7, 5]
    # coarse (Neutral .1, Happy .2, Surprise .05, Other .05, Negative .6), negative (.5, .25, .125, .125)
    p8 = compose_probabilities(torch.tensor([[0.1, 0.2, 0.05, 0.05, 0.6]]), torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    # Aff-Wild2 order: Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other
    torch.testing.assert_close(p8, torch.tensor([[0.1, 0.3, 0.15, 0.075, 0.2, 0.075, 0.05, 0.05]]))


def test_pcda_attention_and_gaussian_trunk():
    m = create_model("pcda_gaussian", num_landmarks=2, depth=1).eval()
    lm = torch.tensor([[[4.0, 4.0], [60.0, 108.0]]])  # cell (0, 0) centre and cell (13, 7) centre
    maps = m.landmarks.maps(lm)
    assert maps.shape == (1, 2, 14, 14)
    assert maps[0, 0, 0, 0] == pytest.approx(1.0) and maps[0, 1, 13, 7] == pytest.approx(1.0)
    f = torch.tensor([[[[1.0, -3.0]], [[2.0, 1.0]]]])  # [1, 2 channels, 1, 2]
    for red, expect in (("max", [2.0, 1.0]), ("sum", [3.0, -2.0]), ("abs_sum", [3.0, 4.0])):
        mm = create_model("pcda_gaussian", num_landmarks=2, depth=1, reduction=red)
        assert mm.attention_map(f).flatten().tolist() == expect
    with torch.no_grad():
        logits, feats = m(torch.randn(1, 3, 112, 112), lm)
    assert logits.shape == (1, 7) and feats.shape == (1, 768)


def test_pcda_conv_attention_maps_the_landmark_channels_to_one_map_per_image_channel():
    """Table 4's Conv: H = W f_lm + b with W [256, 128] (here [3, 2]), f_fusion = H * f_img channel by channel."""
    m = create_model("pcda_gaussian", num_landmarks=2, depth=1, reduction="conv", landmark_channels=2,
                     ir_units=(1, 1, 1), ir_channels=(4, 4, 3)).eval()
    assert m.reduce_conv.weight.shape == (3, 2, 1, 1)
    with torch.no_grad():
        m.reduce_conv.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]])[..., None, None])
        m.reduce_conv.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    f_lm = torch.tensor([[[[1.0, -3.0]], [[2.0, 1.0]]]])  # [1, 2 channels, 1, 2]
    h = m.attention_map(f_lm)
    torch.testing.assert_close(h[0, :, 0], torch.tensor([[1.0, -3.0], [4.0, 2.0], [-0.5, -3.5]]))
    seen = {}
    m.embed_f.register_forward_hook(lambda mod, inp, out: seen.update(fusion=inp[0]))
    m.landmarks.register_forward_hook(lambda mod, inp, out: seen.update(f_lm=out))
    m.image.register_forward_hook(lambda mod, inp, out: seen.update(f_img=out))
    with torch.no_grad():
        m(torch.randn(1, 3, 112, 112), torch.tensor([[[4.0, 4.0], [60.0, 108.0]]]))
    w, b = m.reduce_conv.weight[:, :, 0, 0], m.reduce_conv.bias
    hand = (torch.einsum("ck,bkhw->bchw", w, seen["f_lm"]) + b[:, None, None]) * seen["f_img"]
    torch.testing.assert_close(seen["fusion"], hand.flatten(2).transpose(1, 2))


def test_pcda_mobilefacenet_trunk_is_frozen():
    m = create_model("pcda", depth=1)
    assert not any(p.requires_grad for p in m.landmarks.parameters())
    m.train()
    assert not m.landmarks.training


def test_stt_and_cfc_sp_run():
    with torch.no_grad():
        assert create_model("stt", depth=1).eval()(torch.randn(1, 16, 3, 112, 112)).shape == (1, 7)
        c = create_model("cfc_sp", coarse_backbones=("ir50",), negative_backbone="ir50", window=4).eval()
        out = c(torch.randn(5, 3, 112, 112))
    assert out["coarse"].shape == (5, 5) and out["negative"].shape == (5, 4) and out["prediction"].shape == (5,)
    torch.testing.assert_close(out["coarse"].sum(1), torch.ones(5))


@pytest.mark.slow
def test_torch_compile_does_not_break_the_models():
    for name, args in (("skateformer_face", (torch.randn(1, 64, 63, 5), torch.zeros(1, 64))),
                       ("former_dfer", (torch.randn(1, 16, 3, 112, 112),))):
        kw = {"num_frames": 64} if name == "skateformer_face" else {"img_size": 112}
        m = create_model(name, **kw).eval()
        with torch.no_grad():
            torch.testing.assert_close(torch.compile(m)(*args), m(*args), atol=1e-4, rtol=1e-4)


def test_stt_classifies_the_class_token_as_eq_13_says():
    """p = FC(z_(0,0)): no LayerNorm before the classifier unless asked (head_norm adds 2 x 512)."""
    paper, normed = create_model("stt", depth=1), create_model("stt", depth=1, head_norm=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert isinstance(paper.norm, torch.nn.Identity) and count(normed) - count(paper) == 2 * 512
    seen = {}
    paper.head.register_forward_hook(lambda mod, inp, out: seen.update(x=inp[0]))
    paper.blocks.register_forward_hook(lambda mod, inp, out: seen.update(z=out[:, 0, 0]))
    with torch.no_grad():
        paper.eval()(torch.randn(1, 16, 3, 112, 112))
    assert torch.equal(seen["x"], seen["z"])


def test_pcda_normalises_tokens_only_where_eqs_3_to_5_do():
    """Q_lm = t_lm W_q_lm and the class token goes to the FC as is; token_norms adds 3 x 2 x 768."""
    paper, normed = create_model("pcda"), create_model("pcda", token_norms=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(normed) - count(paper) == 3 * 2 * 768
    assert isinstance(paper.norm, torch.nn.Identity) and all(isinstance(b.norm_lm, torch.nn.Identity) for b in paper.blocks)


def test_slowonly_frees_each_activation_once_the_next_block_has_it():
    """Inference memory as pyskl's: the stem output is not held while the later stages run, and a
    block's shortcut is computed after its residual branch (so the two are not alive together)."""
    import weakref

    model = create_model("slowonly_r50_heatmap").eval()
    seen: dict = {}
    model.maxpool.register_forward_hook(lambda m, i, out: seen.update(stem=weakref.ref(out)))
    model.layers[1][0].register_forward_pre_hook(lambda m, i: seen.update(stem_alive=seen["stem"]() is not None))
    block = model.layers[1][0]
    order = []
    block.conv3.register_forward_hook(lambda m, i, o: order.append("branch"))
    block.downsample.register_forward_hook(lambda m, i, o: order.append("shortcut"))
    with torch.no_grad():
        model(torch.randn(1, 3, 16, 56, 56))
    assert seen["stem_alive"] is False and order == ["branch", "shortcut"]


def test_flops_are_counted_by_hand_on_the_meta_device():
    """2 FLOPs per multiply-add: Linear(3, 4) on 2 rows, Conv2d(2, 3, 3) on 5 x 5 (3 x 3 outputs per
    channel, 2 x 3 x 3 weights each), and the Former-DFER regressor's MLP head on 5 subclips."""
    from fexa.models.blocks import RegressionHead
    from fexa.models.flops import PAPER_INPUTS, count_flops, model_cost

    assert count_flops(torch.nn.Linear(3, 4), (torch.zeros(2, 3),)) == 2 * 2 * 3 * 4
    assert count_flops(torch.nn.Conv2d(2, 3, 3), (torch.zeros(1, 2, 5, 5),)) == 2 * (3 * 3 * 3) * (2 * 3 * 3)
    head = 2 * 5 * (512 * 256 + 256 * 128 + 128 * 1)
    assert count_flops(RegressionHead((512, 256, 128, 1)), (torch.zeros(1, 5, 512),)) == head
    (n0, f0), (n1, f1) = model_cost("former_dfer"), model_cost("former_dfer_regressor")
    assert f1 - f0 == head and n1 - n0 == 512 * 256 + 256 + 256 * 128 + 128 + 128 + 1
    assert set(PAPER_INPUTS) == set(list_models())  # every model has its paper's input size


def test_fexa_models_flops_prints_each_model_beside_the_papers_counts(capsys):
    from fexa.cli.main import main

    assert main(["models", "--flops", "ir50", "mobilefacenet"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("ir50 "))
    assert line.split()[1:4] == ["17,611,968", "10.94", "5.47"]  # IR-50 at 112 px: 5.47 G multiply-adds
    assert "pcda-neaa Table 8: image backbone" in out and "pcda-neaa Table 8: landmark backbone" in out
    assert main(["models", "nope"]) == 1 and "'nope' is not a fexa model" in capsys.readouterr().err
