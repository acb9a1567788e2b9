"""The engine's flip self-ensemble (issue 13): what it averages and what it leaves alone."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xrf_sr_kedro.inference.engine import enhance_maps
from xrf_sr_kedro.inference.ensemble import DEFAULT_SELF_ENSEMBLE, ENSEMBLE_FLIPS, ensemble_forward
from xrf_sr_kedro.inference.stack import EngineSettings
from xrf_sr_kedro.physics.flyscan import flyscan


class SkewSR(nn.Module):
    """x4 model with deliberately asymmetric kernels (not flip-equivariant)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.PixelShuffle(4))
        self.in_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class BicubicSR(nn.Module):
    """x4 bicubic interpolation: commutes with flips along x and y."""

    in_channels = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)


def _maps(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((3, 24, 20)).astype(np.float32) * 50 + 5


def test_flips_are_the_ones_that_commute_with_the_flyscan():
    """Flipping the sample along x or y flips its fly-scan (symmetric probe, x fast axis);
    a transpose does not, so it must not be in the ensemble."""
    rng = np.random.default_rng(1)
    hr = rng.random((48, 64))
    r = np.arange(9) - 4.0
    probe = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / 4.0)  # mirror-symmetric
    probe /= probe.sum()
    lr = flyscan(hr, probe, 4, fast_axis="x")
    for dims in ENSEMBLE_FLIPS:
        axes = tuple(d - 2 for d in dims)  # (N, C, y, x) dims -> (y, x) axes
        flipped = flyscan(np.flip(hr, axes), probe, 4, fast_axis="x") if axes else lr
        np.testing.assert_allclose(flipped, np.flip(lr, axes) if axes else lr, atol=1e-10)
    square = rng.random((64, 64))
    assert not np.allclose(flyscan(square.T, probe, 4, fast_axis="x"),
                           flyscan(square, probe, 4, fast_axis="x").T, atol=1e-6)
    assert set(ENSEMBLE_FLIPS) == {(), (3,), (2,), (2, 3)}  # flips only, no transpose


def test_ensemble_of_flip_equivariant_model_is_plain_output():
    maps = _maps()
    plain = enhance_maps(BicubicSR(), maps, 4, device="cpu", precision="float32",
                         self_ensemble=False, min_size_px=1).data
    ens = enhance_maps(BicubicSR(), maps, 4, device="cpu", precision="float32",
                       self_ensemble=True, min_size_px=1).data
    np.testing.assert_allclose(ens, plain, rtol=1e-5, atol=1e-4)


def test_ensemble_is_mean_of_flipped_outputs():
    """Naive reference: flip the input, run, flip back, average the four."""
    net = SkewSR().eval()
    x = torch.from_numpy(np.random.default_rng(2).random((2, 1, 10, 12)).astype(np.float32))
    with torch.no_grad():
        ref = sum(torch.flip(net(torch.flip(x, d)), d) if d else net(x)
                  for d in ((), (3,), (2,), (2, 3))) / 4
        out = ensemble_forward(net, x, True)
        plain = ensemble_forward(net, x, False)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain, net(x))
    assert (out - plain).abs().max() > 1e-3  # the skewed model is not equivariant


def test_engine_applies_the_ensemble_and_tiles_agree():
    """Through the engine (with tiling) the ensemble differs from the plain output
    for a non-equivariant model, and is independent of the tile size."""
    maps = _maps(4)
    kw = dict(device="cpu", precision="float32", min_size_px=1, conserve_total_signal=False)
    plain = enhance_maps(SkewSR(), maps, 4, self_ensemble=False, **kw).data
    whole = enhance_maps(SkewSR(), maps, 4, self_ensemble=True, **kw).data
    tiled = enhance_maps(SkewSR(), maps, 4, self_ensemble=True, tile_px=12,
                         overlap_px=4, **kw).data
    assert np.abs(whole - plain).max() > 1e-2
    # a 3x3 conv has a 1-px receptive radius: tiles with discarded margins agree exactly
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-3)


def test_settings_default_is_the_engine_default():
    assert EngineSettings().self_ensemble is DEFAULT_SELF_ENSEMBLE
