"""Building blocks of the network in plain torch: a ResNet-style backbone, an FPN and sine
position encodings (shared by ``network.py`` and the object decoder in ``objects.py``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block; a strided 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(cin, cout, stride)
        self.conv2 = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.skip(x))


class Backbone(nn.Module):
    """ResNet-style CNN. Returns features at strides 4, 8, 16, 32."""

    def __init__(self, in_channels: int, widths: tuple, blocks: tuple) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, widths[0], stride=2)
        stages, cin = [], widths[0]
        for cout, n in zip(widths[1:], blocks):
            layers = [BasicBlock(cin, cout, 2)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor, with_stem: bool = False) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = [x] if with_stem else []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class FPN(nn.Module):
    """Top-down feature pyramid over C3..C5 -> P3..P5, all with ``dim`` channels."""

    def __init__(self, in_channels: tuple, dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn(dim, dim) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [layer(f) for layer, f in zip(self.lateral, feats)]
        outs = [lat[-1]]
        for f in reversed(lat[:-1]):
            outs.insert(0, f + F.interpolate(outs[0], size=f.shape[-2:], mode='nearest'))
        return [s(o) for s, o in zip(self.smooth, outs)]


def sine_position_encoding(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2D sine/cosine encoding (1, height*width, dim) over normalised pixel coordinates."""
    return point_position_encoding(*torch.meshgrid(
        (torch.arange(height, dtype=torch.float32) + 0.5) / height,
        (torch.arange(width, dtype=torch.float32) + 0.5) / width, indexing='ij'), dim=dim
    ).reshape(1, height * width, dim)


def point_position_encoding(y: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sine encoding of normalised coordinates in [0, 1]: (...,) x2 -> (..., dim)."""
    quarter = dim // 4
    freq = torch.exp(torch.arange(quarter, dtype=torch.float32) * (-math.log(1000.0) / quarter))
    ang_y = y.unsqueeze(-1) * 2 * math.pi * freq * 8
    ang_x = x.unsqueeze(-1) * 2 * math.pi * freq * 8
    return torch.cat([ang_y.sin(), ang_y.cos(), ang_x.sin(), ang_x.cos()], dim=-1)
