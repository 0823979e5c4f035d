"""The authors' published weight files: listed with where to get them, checked strictly, named by
configs through one weights folder (missing files refused before any data is prepared), and a
published trained model imported as a run. Files are built from the reference key names and shapes."""

import os
import subprocess
import sys

import pytest
import torch

from conftest import DEMO, REPO
from fexa.errors import FexaError
from fexa.models.weights import PUBLISHED, Published

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def write_published(p: Published, folder, seed: int = 0, **changes) -> dict[str, torch.Tensor]:
    """A file shaped as its authors publish it (wrapped, DataParallel 'module.' keys); ``changes``
    replace (a shape) or, with None, delete keys. Returns its tensors without the prefix."""
    g = torch.Generator().manual_seed(seed)
    shapes = {**p.expected(), **{k.replace("__", "."): v for k, v in changes.items()}}
    sd = {k: (torch.randn(s, generator=g) if s else torch.tensor(7)) for k, s in shapes.items() if s is not None}
    wrapper = "model" if p.source == "tramp_skateformer" else "state_dict"
    extra = {"module.evaluator.head.weight": torch.randn(7, 256)} if p.source == "tramp_skateformer" else {}
    torch.save({wrapper: {"module." + k: v for k, v in sd.items()} | extra, "epoch": 99}, folder / p.filename)
    return sd


def fexa(*args: str, env=ENV) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fexa", *args], capture_output=True, text=True, env=env, cwd=REPO)


def test_every_published_file_is_listed_with_where_its_authors_publish_it_and_who_uses_it(capsys):
    from fexa.cli.main import main

    r = fexa("weights")
    assert r.returncode == 0, r.stderr
    assert main(["weights", "list"]) == 0 and capsys.readouterr().out == r.stdout  # the verb lists the same
    for p in PUBLISHED.values():
        assert p.filename in r.stdout and p.where.split()[0] in r.stdout
    block = r.stdout[r.stdout.index("poster_ir50"):r.stdout.index("poster_mobilefacenet")]
    assert "https://github.com/zczcwh/POSTER" in block and "configs/pcda/rafdb.yaml" in block
    assert "STT's ResNet-18" in r.stdout  # said to be unpublished, not silently skipped
    block = r.stdout[r.stdout.index("msceleb_resnet18"):r.stdout.index("msceleb_ir152")]
    assert "resnet18_msceleb.pth" in block and "not released by STT's authors" in block
    assert "fexa model 'stt', its 'cnn'" in block and "configs/stt/dfew.yaml" in block
    shown = fexa("weights", "show", "pyskl_pose_only").stdout
    assert "backbone.conv1.conv.weight\t[32, 17, 1, 7, 7]" in shown and "cls_head.fc_cls.weight\t[60, 512]" in shown


def test_weights_check_accepts_the_published_layout_and_names_every_surprise(tmp_path):
    good = ["qafe_former_dfer", "pyskl_pose_only", "tramp_skateformer", "poster_ir50"]
    for name in good:
        write_published(PUBLISHED[name], tmp_path)
    r = fexa("weights", "check", str(tmp_path))
    assert r.returncode == 1 and not r.stderr  # the others are absent
    lines = {line.split()[1]: line for line in r.stdout.splitlines()}
    assert all(lines[PUBLISHED[n].filename].startswith("ok") for n in good)
    absent = lines["mobilefacenet_model_best.pth.tar"]
    assert absent.startswith("absent") and "https://github.com/zczcwh/POSTER" in absent
    # a wrong shape, a missing tensor and an unexpected tensor are each refused, with the key
    write_published(PUBLISHED["poster_ir50"], tmp_path, **{"body__3__res_layer__1__weight": (7,)})
    write_published(PUBLISHED["pyskl_pose_only"], tmp_path, **{"backbone__layer2__0__conv1__bn__bias": None})
    write_published(PUBLISHED["tramp_skateformer"], tmp_path, **{"stages__0__blocks__0__extra": (3,)})
    r = fexa("weights", "check", str(tmp_path))
    assert r.returncode == 1
    assert "ir50.pth" in r.stderr and "1 of another shape (e.g. body.3.res_layer.1.weight (7,)" in r.stderr
    assert "pose_only.pth" in r.stderr and "1 missing (e.g. backbone.layer2.0.conv1.bn.bias)" in r.stderr
    assert "SkateFormer_256_rgb1x1.pth" in r.stderr and "1 unexpected (e.g. stages.0.blocks.0.extra)" in r.stderr
    assert "FormerDFER-DFEWset1-model_best.pth" in r.stdout  # the good one still passes


def test_a_missing_weights_file_is_refused_before_any_data_is_prepared(tmp_path, monkeypatch):
    from fexa.train.config import load_config
    from fexa.train.trainer import train

    monkeypatch.delenv("FEXA_WEIGHTS", raising=False)
    cfg = load_config(REPO / "configs/pcda/rafdb.yaml", [f"out={tmp_path}", f"data.cache={tmp_path / 'cache'}",
                                                         f"data.root={tmp_path}"])
    with pytest.raises(FexaError, match=r"poster_ir50 \(ir50.pth\) but no weights folder is set.*FEXA_WEIGHTS"):
        train(cfg, progress=False)
    monkeypatch.setenv("FEXA_WEIGHTS", str(tmp_path))
    with pytest.raises(FexaError) as err:
        train(cfg, progress=False)
    assert "ir50.pth (PCDA's image backbone" in str(err.value) and f"not in the weights folder {tmp_path}" in str(err.value)
    assert "https://github.com/zczcwh/POSTER" in str(err.value) and "model.pretrained=none" in str(err.value)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "pcda_rafdb").exists()


@pytest.mark.parametrize("config, checks", [
    ("qafe_net/pfed5_smile.yaml", {"rgb.s_former.pos_embedding": ("qafe_former_dfer", "s_former.pos_embedding"),
                                   "heatmap.layers.2.0.conv2.0.weight": ("pyskl_pose_only",
                                                                         "backbone.layer3.0.conv2.conv.weight")}),
    ("tramp_former/pfed5_smile.yaml", {"trajectory.joint_embedding": ("tramp_skateformer", "joint_person_embedding"),
                                       "rgb.t_former.cls_token": ("tramp_former_dfer", "t_former.cls_token")}),
    ("pcda/rafdb.yaml", {"image.body.0.0.res_layer.1.weight": ("poster_ir50", "body.0.res_layer.1.weight"),
                         "landmarks.linear.weight": ("poster_mobilefacenet", "output_layer.linear.weight")}),
], ids=["qafe_net", "tramp_former", "pcda"])
def test_configs_load_the_published_files_from_the_weights_folder(tmp_path, monkeypatch, config, checks):
    from fexa.train.config import load_config
    from fexa.train.build import build_model

    names = sorted({n for n, _ in checks.values()})
    files = {name: write_published(PUBLISHED[name], tmp_path, seed=i) for i, name in enumerate(names)}
    monkeypatch.setenv("FEXA_WEIGHTS", str(tmp_path))
    report: list[str] = []
    model = build_model(load_config(REPO / "configs" / config), 7 if config.startswith("pcda") else 0, report)
    ours = model.state_dict()
    for key, (name, theirs) in checks.items():  # QAFE's 224-px position embedding as published: 196 tokens
        torch.testing.assert_close(ours[key], files[name][theirs].to(ours[key].dtype))
    assert len(report) == 2 and all(str(tmp_path) in line for line in report)


def test_a_published_former_dfer_fold_model_becomes_a_run_analyze_uses(tmp_path):
    from fexa.analysis.analyzer import Analyzer
    from fexa.analysis.predict import TrainedModel
    from fexa.data.adapters import DFEW_CLASSES

    sd = write_published(PUBLISHED["former_dfer_dfew_fold1"], tmp_path)
    file = tmp_path / PUBLISHED["former_dfer_dfew_fold1"].filename
    r = fexa("weights", "import", str(file), "--as", "former_dfer_dfew", "--out", str(tmp_path / "runs" / "fdfer"))
    assert r.returncode == 0, r.stderr
    trained = TrainedModel(tmp_path / "runs" / "fdfer")
    assert trained.classes == DFEW_CLASSES and trained.kind == "classification"
    assert trained.cfg.data.samples.clip_size == 112 and trained.cfg.data.samples.clip_test == "resize"
    torch.testing.assert_close(trained.model.head.weight, sd["fc.weight"])  # the classifier is kept, in DFEW's order
    torch.testing.assert_close(trained.model.t_former.temporal_transformer[2].mlp.fc2.bias,
                               sd["t_former.spatial_transformer.layers.2.1.fn.fn.net.3.bias"])
    res = Analyzer(cache=tmp_path / "cache", models=[tmp_path / "runs" / "fdfer"]).analyze(DEMO)
    p = res.predictions
    assert p.loc[0, "model"] == "fdfer" and p.loc[0, "prediction"] in DFEW_CLASSES
    assert sorted(c for c in p.columns if c.startswith("p_")) == sorted(f"p_{c}" for c in DFEW_CLASSES)
    bad = fexa("weights", "import", str(tmp_path / "nope.pth"), "--as", "former_dfer_dfew", "--out", str(tmp_path / "x"))
    assert bad.returncode == 1 and "no checkpoint file at" in bad.stderr and not (tmp_path / "x").exists()


def test_timm_backbones_load_a_local_file_through_timms_own_loader(tmp_path):
    """A CFC-SP timm member (here with timm's small resnet10t, same code path) starts from a file the
    user downloaded, read by timm's load_pretrained (never a hub): backbone weights loaded as saved,
    the 1000-class ImageNet classifier dropped for the config's 4 classes, and the run says so."""
    import timm

    from fexa.train.config import load_config
    from fexa.train.build import build_model

    src = timm.create_model("resnet10t", pretrained=False)
    with torch.no_grad():
        src.conv1[0].weight.fill_(0.25)
    torch.save(src.state_dict(), tmp_path / "resnet10t_imagenet.pth")
    cfg = load_config(REPO / "configs/cfc_sp/affwild2_negative_repvgg.yaml",
                      ["model.options={timm_name: resnet10t}",
                       f"model.pretrained={{'': {{source: timm, path: '{tmp_path / 'resnet10t_imagenet.pth'}'}}}}"])
    report: list[str] = []
    model = build_model(cfg, 4, report)
    assert torch.equal(model.conv1[0].weight, torch.full_like(model.conv1[0].weight, 0.25))
    assert torch.equal(model.layer4[0].conv1.weight, src.layer4[0].conv1.weight)
    assert model.fc.out_features == 4  # the ImageNet classifier (1000) is not forced into 4 classes
    assert report == [f"whole model: timm weights from {tmp_path / 'resnet10t_imagenet.pth'}"]


def test_synthetic_files_are_laid_out_as_released_and_pass_the_strict_check(tmp_path):
    """fexa.models.synthetic_weights writes each file wrapped as its source saves it; those of this
    test (the small ones; every file: the slow test below) load through load_published."""
    from fexa.models.checkpoints import read_checkpoint
    from fexa.models.synthetic_weights import synthetic_file, write_synthetic
    from fexa.models.weights import load_published

    for name in ("pyskl_pose_only", "poster_mobilefacenet", "tramp_skateformer", "msceleb_resnet18"):
        path = write_synthetic(name, tmp_path)
        assert path.name == PUBLISHED[name].filename
        model, report = load_published(PUBLISHED[name], path)
        assert report.loaded and not report.adapted
    tramp = read_checkpoint(tmp_path / "SkateFormer_256_rgb1x1.pth")
    assert {"epoch", "model", "optimizer", "scheduler", "recorder"} <= set(tramp)
    assert type(tramp["recorder"]).__qualname__ == "utils.vis_tools.RecorderMeter"
    assert all(k.startswith("module.") for k in tramp["model"]) and "module.evaluator.head.weight" in tramp["model"]
    assert set(read_checkpoint(tmp_path / "pose_only.pth")) == {"meta", "state_dict"}
    former, sd = synthetic_file("former_dfer_dfew_fold2", seed=3)
    assert type(former["recorder"]).pickled_as == ("__main__", "RecorderMeter")  # read back as a placeholder
    assert former["state_dict"]["module.fc.weight"] is sd["fc.weight"] and sd["fc.weight"].shape == (7, 512)


@pytest.mark.slow
def test_every_published_name_has_a_synthetic_file_that_fexa_weights_check_accepts(tmp_path):
    from fexa.models.synthetic_weights import write_all

    assert sorted(p.name for p in write_all(tmp_path)) == sorted(p.filename for p in PUBLISHED.values())
    r = fexa("weights", "check", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["ok"] * len(PUBLISHED)


def test_weights_check_fails_when_a_file_is_absent(tmp_path):
    from fexa.cli.main import main

    assert main(["weights", "check", str(tmp_path)]) == 1


@pytest.mark.parametrize("config, sets, classes, sub, check", [
    ("stt/dfew.yaml", [], 7, "cnn", ("msceleb_resnet18", "6.1.conv2.weight", "layer3.1.conv2.weight")),
    ("cfc_sp/affwild2_coarse_swin_s.yaml", ["model.name=ir152", "model.pretrained={'': msceleb_ir152}"], 5, "",
     ("msceleb_ir152", "body.2.5.res_layer.1.weight", "body.16.res_layer.1.weight")),
    ("pcda/rafdb.yaml", ["model.options.depth=6", "model.pretrained.blocks=vit_b16_imagenet"], 7, "blocks",
     ("vit_b16_imagenet", "5.mlp.fc1.weight", "blocks.5.mlp.fc1.weight")),
], ids=["stt_msceleb", "cfc_ir152", "pcda_vit"])
def test_the_papers_initialisations_load_from_their_files(tmp_path, monkeypatch, config, sets, classes, sub, check):
    """STT's MS-Celeb ResNet-18, CFC-SP's IR-152 row, PCDA Table 2's ViT row: the config names the file,
    build_model loads it strictly; without the file the error says how to train from scratch."""
    from fexa.models.synthetic_weights import synthetic_file, write_synthetic
    from fexa.train.build import build_model
    from fexa.train.config import load_config

    name, ours, theirs = check
    cfg = load_config(REPO / "configs" / config, sets)
    monkeypatch.setenv("FEXA_WEIGHTS", str(tmp_path))
    for other in cfg.model.pretrained.values():
        if other != name:
            write_synthetic(other, tmp_path)
    with pytest.raises(FexaError, match=rf"{PUBLISHED[name].filename} .* model.pretrained=none to train from scratch"):
        build_model(cfg, classes)
    write_synthetic(name, tmp_path)
    model = build_model(cfg, classes)
    torch.testing.assert_close(model.get_submodule(sub).state_dict()[ours] if sub else model.state_dict()[ours],
                               synthetic_file(name)[1][theirs])


def test_write_timm_makes_a_file_the_timm_source_loads(tmp_path):
    """A ``{source: timm, path}`` stand-in (here timm's small resnet10t): timm's own layout, loaded by
    timm's file loader into the config's model, its 1000-class classifier dropped for 4 classes."""
    from fexa.models.checkpoints import read_state_dict
    from fexa.models.synthetic_weights import write_timm
    from fexa.train.build import build_model
    from fexa.train.config import load_config

    path = write_timm("resnet10t", tmp_path / "resnet10t.pth", seed=2)
    sd = read_state_dict(path)
    assert sd["fc.weight"].shape == (1000, 512)
    cfg = load_config(REPO / "configs/cfc_sp/affwild2_negative_repvgg.yaml",
                      ["model.options={timm_name: resnet10t}", f"model.pretrained={{'': {{source: timm, path: '{path}'}}}}"])
    model = build_model(cfg, 4)
    assert torch.equal(model.layer3[0].conv2.weight, sd["layer3.0.conv2.weight"]) and model.fc.out_features == 4
