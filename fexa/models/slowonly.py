"""SlowOnly 3D ResNet (pyskl's ResNet3dSlowOnly, PoseC3D) for landmark heatmap volumes.

Bottleneck blocks (expansion 4) with '3x1x1' inflation: an inflated block's first 1x1 conv becomes
3x1x1 in time. QAFE-Net's setting: 3 input channels (RGB-weighted or JET heatmaps), base 32,
3 stages of (4, 6, 3) blocks, inflation (0, 1, 1), conv1 (1, 7, 7) stride 1, no pooling stride,
spatial strides (2, 2, 2), temporal strides (1, 1, 1): [B, 3, 16, 56, 56] -> [B, 512, 16, 7, 7].
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from fexa.models.registry import register_model


@dataclass(frozen=True)
class SlowOnlyConfig:
    in_channels: int = 3
    base_channels: int = 32
    stage_blocks: tuple[int, ...] = (4, 6, 3)
    inflate: tuple[int, ...] = (0, 1, 1)
    spatial_strides: tuple[int, ...] = (2, 2, 2)
    temporal_strides: tuple[int, ...] = (1, 1, 1)
    conv1_kernel: tuple[int, int, int] = (1, 7, 7)
    pool: bool = True  # global average pool to [B, 512]


def _conv_bn(cin: int, cout: int, kernel, stride=1, padding=0, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv3d(cin, cout, kernel, stride, padding, bias=False), nn.BatchNorm3d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Bottleneck3d(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, spatial_stride: int, temporal_stride: int, inflate: bool):
        super().__init__()
        cout = planes * self.expansion
        k1, p1 = ((3, 1, 1), (1, 0, 0)) if inflate else ((1, 1, 1), (0, 0, 0))
        self.conv1 = _conv_bn(cin, planes, k1, 1, p1)
        self.conv2 = _conv_bn(planes, planes, (1, 3, 3), (temporal_stride, spatial_stride, spatial_stride), (0, 1, 1))
        self.conv3 = _conv_bn(planes, cout, 1, relu=False)
        self.downsample = None
        if spatial_stride != 1 or temporal_stride != 1 or cin != cout:
            self.downsample = _conv_bn(cin, cout, 1, (temporal_stride, spatial_stride, spatial_stride), relu=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))  # the branch first: no shortcut output held meanwhile (pyskl's order)
        out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


class SlowOnly(nn.Module):
    """[B, C, T, H, W] -> [B, 512] (or the [B, 512, T, H/8, W/8] map with ``pool=False``)."""

    def __init__(self, cfg: SlowOnlyConfig = SlowOnlyConfig()):
        super().__init__()
        self.cfg = cfg
        k = cfg.conv1_kernel
        self.conv1 = _conv_bn(cfg.in_channels, cfg.base_channels, k, 1, tuple(s // 2 for s in k))
        self.maxpool = nn.MaxPool3d((1, 3, 3), stride=1, padding=(0, 1, 1))
        cin, stages = cfg.base_channels, []
        for i, n in enumerate(cfg.stage_blocks):
            planes = cfg.base_channels * 2**i
            blocks = []
            for j in range(n):
                first = j == 0
                blocks.append(Bottleneck3d(cin, planes, cfg.spatial_strides[i] if first else 1,
                                           cfg.temporal_strides[i] if first else 1, bool(cfg.inflate[i])))
                cin = planes * Bottleneck3d.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.out_channels = cin
        self.pool = nn.AdaptiveAvgPool3d(1) if cfg.pool else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        for block in (b for stage in self.layers for b in stage):  # rebinding x frees each block's input
            x = block(x)
        return x if self.pool is None else self.pool(x).flatten(1)


@register_model("slowonly_r50_heatmap", SlowOnlyConfig, "SlowOnly-R50 on 3-channel heatmap volumes [B,3,16,56,56]",
                reference_params=1_972_128, paper="qafe-net")
def slowonly_r50_heatmap(cfg: SlowOnlyConfig) -> SlowOnly:
    return SlowOnly(cfg)


@register_model("slowonly_r50_posec3d", SlowOnlyConfig, "PoseC3D SlowOnly-R50 joint model (17 keypoint channels)",
                paper="qafe-net", in_channels=17, temporal_strides=(1, 1, 2))
def slowonly_r50_posec3d(cfg: SlowOnlyConfig) -> SlowOnly:
    return SlowOnly(cfg)
