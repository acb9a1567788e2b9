"""The network rewritten for inference computes the same function as the trained one."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xrf_sr_kedro.models.dual_branch import DualBranchConfig, build_model
from xrf_sr_kedro.models.inference_form import inference_form, subpixel_conv


@pytest.mark.parametrize("k,r", [(3, 2), (3, 3), (5, 2), (1, 2), (3, 4)])
def test_a_conv_after_a_pixel_shuffle_is_a_conv_before_it(k, r):
    torch.manual_seed(k * 10 + r)
    conv = nn.Conv2d(6, 2, k, padding=k // 2)
    x = torch.randn(3, 6 * r * r, 7, 9, dtype=torch.float64)
    conv = conv.double()
    expected = conv(F.pixel_shuffle(x, r))  # the naive reference: shuffle, then convolve
    got = F.pixel_shuffle(subpixel_conv(conv, r)(x), r)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_convolutions_that_cannot_be_folded_are_refused():
    with pytest.raises(ValueError, match="cannot fold"):
        subpixel_conv(nn.Conv2d(4, 1, 3, padding=0), 2)
    with pytest.raises(ValueError, match="cannot fold"):
        subpixel_conv(nn.Conv2d(4, 1, 3, padding=1, padding_mode="reflect"), 2)


@pytest.mark.parametrize("config", ["tiny", "small",
                                    DualBranchConfig(channels=8, n_msrb=1, n_groups=1, n_rcab=1,
                                                     reduction=4, scale=3)])
def test_the_inference_form_matches_the_trained_network(config):
    torch.manual_seed(0)
    model = build_model(config).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = inference_form(model).eval()
    assert not any(isinstance(m, nn.PixelShuffle) and m.upscale_factor > 1
                   for m in folded.upsample[-1:]), "the last shuffle moved behind the output conv"
    x = torch.rand(2, 1, 13, 16)
    with torch.no_grad():
        a, b = model(x), folded(x)
    assert a.shape == b.shape
    torch.testing.assert_close(b, a, rtol=0, atol=2e-6 * float(a.abs().max()))
    for k, v in model.state_dict().items():  # the caller's network is untouched
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


def test_other_modules_come_back_as_unchanged_copies():
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1))
    copy = inference_form(net)
    assert copy is not net and isinstance(copy, nn.Sequential) and len(copy) == 1
