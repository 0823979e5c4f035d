"""Face-recognition backbones timm does not have: IR-50/IR-152 (ArcFace "improved residual" nets)
and MobileFaceNet (the landmark network of POSTER and PCDA). Standard ImageNet backbones (Swin-S,
RepVGG, HRNet, ResNet) come from timm by name, built without weights: CFC-SP's MS-Celeb-1M
initialisations are files named in ``model.pretrained`` (``fexa weights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
from torch import Tensor, nn

from fexa.models.registry import register_model

IR_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
IR_CHANNELS = (64, 128, 256, 512)


class BottleneckIR(nn.Module):
    """BN -> conv3x3 -> PReLU -> conv3x3 (stride) -> BN, plus a max-pool or 1x1-conv shortcut."""

    def __init__(self, cin: int, depth: int, stride: int):
        super().__init__()
        self.shortcut_layer = (nn.MaxPool2d(1, stride) if cin == depth else
                               nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


@dataclass(frozen=True)
class IRConfig:
    depth: int = 50  # 50, 100 or 152
    num_stages: int = 3  # POSTER/PCDA keep 3 stages: 112 px -> 14 x 14 x 256
    num_classes: int = 0  # > 0: global pool + linear classifier on the last stage
    units: tuple[int, ...] = ()  # small configurations: units per stage instead of the depth's
    channels: tuple[int, ...] = IR_CHANNELS

    def __post_init__(self) -> None:
        if self.depth not in IR_UNITS:
            raise ValueError(f"IR depth must be one of {sorted(IR_UNITS)}, got {self.depth}")
        if not 1 <= self.num_stages <= 4:
            raise ValueError(f"IR num_stages must be 1-4, got {self.num_stages}")


class IResNet(nn.Module):
    """[B, 3, 112, 112] -> feature map [B, C, 112 / 2^stages, ...] (or logits with num_classes)."""

    def __init__(self, cfg: IRConfig = IRConfig()):
        super().__init__()
        self.cfg = cfg
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        stages, cin = [], 64
        for units, depth in zip((cfg.units or IR_UNITS[cfg.depth])[: cfg.num_stages], cfg.channels):
            stages.append(nn.Sequential(*[BottleneckIR(cin if i == 0 else depth, depth, 2 if i == 0 else 1)
                                          for i in range(units)]))
            cin = depth
        self.body = nn.Sequential(*stages)
        self.out_channels = cin
        self.head = (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, cfg.num_classes))
                     if cfg.num_classes else None)

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(self.input_layer(x))
        return x if self.head is None else self.head(x)


def _conv_block(cin: int, cout: int, k: int = 1, s: int = 1, p: int = 0, groups: int = 1, act: bool = True):
    layers = [nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class DepthWise(nn.Module):
    """1x1 expand -> depthwise 3x3 -> 1x1 project (linear), optionally residual."""

    def __init__(self, cin: int, cout: int, groups: int, stride: int = 1, residual: bool = False):
        super().__init__()
        self.conv = _conv_block(cin, groups)
        self.conv_dw = _conv_block(groups, groups, 3, stride, 1, groups=groups)
        self.project = _conv_block(groups, cout, act=False)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


@dataclass(frozen=True)
class MobileFaceNetConfig:
    num_outputs: int = 136  # 68 landmarks x (x, y)


class MobileFaceNet(nn.Module):
    """MobileFaceNet for 112 px faces. ``features(x)`` returns conv_4's 14 x 14 x 128 map (what
    PCDA attends with); ``forward`` the landmark regression output."""

    def __init__(self, cfg: MobileFaceNetConfig = MobileFaceNetConfig()):
        super().__init__()
        self.conv1 = _conv_block(3, 64, 3, 2, 1)
        self.conv2_dw = _conv_block(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = DepthWise(64, 64, 128, stride=2)
        self.conv_3 = nn.Sequential(*[DepthWise(64, 64, 128, residual=True) for _ in range(4)])
        self.conv_34 = DepthWise(64, 128, 256, stride=2)
        self.conv_4 = nn.Sequential(*[DepthWise(128, 128, 256, residual=True) for _ in range(6)])
        self.conv_45 = DepthWise(128, 128, 512, stride=2)
        self.conv_5 = nn.Sequential(*[DepthWise(128, 128, 256, residual=True) for _ in range(2)])
        self.conv_6_sep = _conv_block(128, 512)
        self.conv_6_dw = _conv_block(512, 512, 7, groups=512, act=False)
        self.linear = nn.Linear(512, cfg.num_outputs, bias=False)
        self.bn = nn.BatchNorm1d(cfg.num_outputs)

    def features(self, x: Tensor) -> Tensor:
        return self.conv_4(self.conv_34(self.conv_3(self.conv_23(self.conv2_dw(self.conv1(x))))))

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_6_dw(self.conv_6_sep(self.conv_5(self.conv_45(self.features(x)))))
        return self.bn(self.linear(x.flatten(1)))


@register_model("ir50", IRConfig, "IR-50 face backbone, 3 stages: 112 px -> 14 x 14 x 256 (POSTER/PCDA trunk)",
                reference_params=17_611_968, paper="pcda-neaa")
def ir50(cfg: IRConfig) -> IResNet:
    return IResNet(cfg)


@register_model("ir152", IRConfig, "IR-152 face backbone (CFC-SP coarse-net member; MS-Celeb-1M file: msceleb_ir152)", paper="cfc-sp",
                depth=152, num_stages=4)
def ir152(cfg: IRConfig) -> IResNet:
    return IResNet(cfg)


@register_model("mobilefacenet", MobileFaceNetConfig, "MobileFaceNet 68-landmark regressor (PCDA's landmark trunk)",
                reference_params=1_007_248, paper="pcda-neaa")
def mobilefacenet(cfg: MobileFaceNetConfig) -> MobileFaceNet:
    return MobileFaceNet(cfg)


@dataclass(frozen=True)
class TimmConfig:
    timm_name: str = "swin_small_patch4_window7_224"
    num_classes: int = 0
    img_size: int = 224


@register_model("swin_s", TimmConfig, "Swin-S from timm (CFC-SP coarse-net member; MS-Celeb-1M file: msceleb_swin_s)",
                reference_params=48_837_258, paper="cfc-sp")
def swin_s(cfg: TimmConfig) -> nn.Module:
    return timm.create_model(cfg.timm_name, pretrained=False, num_classes=cfg.num_classes)


@register_model("repvgg", TimmConfig, "RepVGG-A2 from timm (CFC-SP negative net; MS-Celeb-1M file: msceleb_repvgg)", paper="cfc-sp",
                timm_name="repvgg_a2", img_size=112)
def repvgg(cfg: TimmConfig) -> nn.Module:
    return timm.create_model(cfg.timm_name, pretrained=False, num_classes=cfg.num_classes)


@register_model("hrnet", TimmConfig, "HRNet-W18 from timm (CFC-SP coarse-net member; MS-Celeb-1M file: msceleb_hrnet)", paper="cfc-sp",
                timm_name="hrnet_w18", img_size=128)
def hrnet(cfg: TimmConfig) -> nn.Module:
    return timm.create_model(cfg.timm_name, pretrained=False, num_classes=cfg.num_classes)
