"""Building blocks of the dual-branch super-resolution network.

Each block is a few lines of ``torch.nn`` and keeps its input shape
``(N, channels, H, W)``.

References
----------
J. Li, F. Fang, K. Mei, G. Zhang (2018), "Multi-scale residual network for image
super-resolution", ECCV, pp. 527-542 (MSRB).

Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu (2018), "Image super-resolution
using very deep residual channel attention networks", ECCV, pp. 294-310 (channel
attention, RCAB, residual group).
"""

from __future__ import annotations

import torch
from torch import nn


def conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """A same-padded 2-D convolution with bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class MSRB(nn.Module):
    """Multi-scale residual block (two bypasses of 3x3 and 5x5 convolutions).

    ``S1 = relu(conv3(x))``, ``P1 = relu(conv5(x))``,
    ``S2 = relu(conv3'([S1, P1]))``, ``P2 = relu(conv5'([P1, S1]))``,
    ``out = conv1x1([S2, P2]) + x``.  The second-stage convolutions map
    ``2 * channels`` to ``2 * channels`` as in MSRN.

    Parameters
    ----------
    channels : int
        Number of feature channels in and out.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv3_1 = conv(channels, channels, 3)
        self.conv5_1 = conv(channels, channels, 5)
        self.conv3_2 = conv(2 * channels, 2 * channels, 3)
        self.conv5_2 = conv(2 * channels, 2 * channels, 5)
        self.fuse = conv(4 * channels, channels, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.act(self.conv3_1(x))
        p1 = self.act(self.conv5_1(x))
        s2 = self.act(self.conv3_2(torch.cat([s1, p1], dim=1)))
        p2 = self.act(self.conv5_2(torch.cat([p1, s1], dim=1)))
        return self.fuse(torch.cat([s2, p2], dim=1)) + x


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention.

    Global average pooling, a 1x1 convolution down to ``channels // reduction``
    channels, ReLU, a 1x1 convolution back up, sigmoid; the input is rescaled
    channel by channel with the result.

    Parameters
    ----------
    channels : int
    reduction : int
        Squeeze ratio (16 in the paper); at least one squeezed channel is kept.
    """

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        squeezed = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(channels, squeezed, 1)
        self.excite = nn.Conv2d(squeezed, channels, 1)
        self.act = nn.ReLU(inplace=True)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-channel attention weights in (0, 1), shape ``(N, channels, 1, 1)``."""
        return torch.sigmoid(self.excite(self.act(self.squeeze(self.pool(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(x)


class RCAB(nn.Module):
    """Residual channel attention block: ``x + CA(conv(relu(conv(x))))``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3),
            nn.ReLU(inplace=True),
            conv(channels, channels, 3),
            ChannelAttention(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ResidualGroup(nn.Module):
    """``n_rcab`` RCABs followed by a 3x3 convolution, with a short skip connection."""

    def __init__(self, channels: int, n_rcab: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *[RCAB(channels, reduction) for _ in range(n_rcab)],
            conv(channels, channels, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling by ``scale``: (conv to ``r^2 * channels`` + PixelShuffle(r)) stages.

    Scale 4 (and any power of two) uses stages of r = 2, scale 3 one stage of r = 3.
    """

    def __init__(self, channels: int, scale: int) -> None:
        if scale == 3:
            factors = [3]
        elif scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * (scale.bit_length() - 1)
        else:
            raise ValueError(f"scale must be 2, 3 or a power of two, got {scale}")
        layers: list[nn.Module] = []
        for r in factors:
            layers += [conv(channels, r * r * channels, 3), nn.PixelShuffle(r)]
        super().__init__(*layers)
        self.factors = tuple(factors)
