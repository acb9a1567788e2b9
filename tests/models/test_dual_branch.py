"""The dual-branch network: shapes, parameter counts, blocks, branches, receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from xrf_sr_kedro.models.blocks import MSRB, RCAB, ChannelAttention, ResidualGroup
from xrf_sr_kedro.models.dual_branch import (
    PRESETS,
    DualBranchConfig,
    DualBranchSR,
    build_model,
    config_from_name,
    count_parameters,
    preset_name,
    receptive_field_px,
)

# Also written in docs/models.md.
EXPECTED_PARAMETERS = {
    "paper": 11_712_209,
    "small": 143_865,
    "tiny": 18_395,
    "msrb_only": 3_862_401,
    "rcab_only": 8_146_449,
    "small_msrb_only": 108_177,
    "small_rcab_only": 54_553,
}


def test_paper_preset_is_the_published_architecture():
    cfg = config_from_name("paper")
    assert (cfg.channels, cfg.n_msrb, cfg.n_groups, cfg.n_rcab, cfg.reduction, cfg.scale) == (
        64, 5, 10, 10, 16, 4,
    )
    assert cfg.branches == "dual"


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMETERS))
def test_parameter_count_per_preset(name):
    assert count_parameters(build_model(name)) == EXPECTED_PARAMETERS[name]


def test_every_preset_has_a_documented_count():
    assert set(PRESETS) == set(EXPECTED_PARAMETERS)


@pytest.mark.parametrize("name", ["paper", "small", "tiny", "small_msrb_only", "small_rcab_only"])
def test_output_shape_x4(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 1, 4, 5))
    assert y.shape == (2, 1, 16, 20)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("scale", [2, 3, 8])
def test_other_scales(scale):
    cfg = DualBranchConfig(channels=4, n_msrb=1, n_groups=1, n_rcab=1, reduction=2, scale=scale,
                           in_channels=2)
    y = DualBranchSR(cfg)(torch.rand(1, 2, 5, 6))
    assert y.shape == (1, 2, 5 * scale, 6 * scale)


def test_wrong_input_channels_is_named():
    with pytest.raises(ValueError, match=r"\(N, 1, h, w\)"):
        build_model("tiny")(torch.rand(1, 3, 8, 8))


def test_unknown_preset_lists_presets():
    with pytest.raises(KeyError, match="available presets.*paper.*small.*tiny"):
        config_from_name("huge")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"channels": 0}, "channels"),
        ({"scale": 5}, "scale"),
        ({"branches": "both"}, "branches"),
        ({"n_msrb": 0}, "n_msrb"),
        ({"n_rcab": 0, "branches": "rcab_only"}, "n_rcab"),
    ],
)
def test_invalid_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DualBranchConfig(**kwargs)


def test_preset_name_round_trip():
    for name, cfg in PRESETS.items():
        assert preset_name(cfg) == name
    assert preset_name(DualBranchConfig(channels=12)) is None


def test_msrb_matches_the_two_bypass_formula():
    torch.manual_seed(1)
    block = MSRB(4)
    x = torch.randn(2, 4, 9, 9)

    def c(layer, inp):
        return F.conv2d(inp, layer.weight, layer.bias, padding=layer.kernel_size[0] // 2)

    s1 = F.relu(c(block.conv3_1, x))
    p1 = F.relu(c(block.conv5_1, x))
    s2 = F.relu(c(block.conv3_2, torch.cat([s1, p1], 1)))
    p2 = F.relu(c(block.conv5_2, torch.cat([p1, s1], 1)))
    expected = c(block.fuse, torch.cat([s2, p2], 1)) + x
    torch.testing.assert_close(block(x), expected)
    assert block.conv5_2.kernel_size == (5, 5) and block.fuse.kernel_size == (1, 1)


def test_channel_attention_rescales_channels_by_pooled_statistics():
    torch.manual_seed(2)
    ca = ChannelAttention(16, reduction=4)
    assert ca.squeeze.out_channels == 4 and ca.excite.out_channels == 16
    x = torch.rand(3, 16, 5, 5)
    w = ca.weights(x)
    assert w.shape == (3, 16, 1, 1)
    assert ((w > 0) & (w < 1)).all()
    torch.testing.assert_close(ca(x), x * w)
    # The weights depend only on the channel means: a spatial shuffle keeps them.
    perm = torch.randperm(25)
    shuffled = x.flatten(2)[..., perm].reshape_as(x)
    torch.testing.assert_close(ca.weights(shuffled), w)
    # Zero excitation gives sigmoid(0) = 0.5 everywhere.
    with torch.no_grad():
        ca.excite.weight.zero_()
        ca.excite.bias.zero_()
    torch.testing.assert_close(ca(x), 0.5 * x)


def test_rcab_and_group_are_residual():
    torch.manual_seed(3)
    rcab = RCAB(8, 4)
    group = ResidualGroup(8, 2, 4)
    for block, last_conv in ((rcab, rcab.body[2]), (group, group.body[-1])):
        with torch.no_grad():
            last_conv.weight.zero_()
            last_conv.bias.zero_()
        x = torch.randn(1, 8, 6, 6)
        torch.testing.assert_close(block(x), x)


def _grads(model, x):
    model.zero_grad()
    model(x).square().mean().backward()
    return {n: p.grad for n, p in model.named_parameters()}


def test_gradients_reach_both_branches_and_channel_attention():
    torch.manual_seed(4)
    model = build_model("tiny")
    grads = _grads(model, torch.rand(2, 1, 8, 8))
    assert all(g is not None for g in grads.values())
    for prefix in ("msrb_branch.", "rcab_branch.", "head.", "upsample.", "tail."):
        assert any(n.startswith(prefix) and g.abs().sum() > 0 for n, g in grads.items()), prefix
    ca = [n for n in grads if ".squeeze." in n or ".excite." in n]
    assert ca and all(grads[n].abs().sum() > 0 for n in ca)


@pytest.mark.parametrize("name, present, absent", [
    ("msrb_only", "msrb_branch", "rcab_branch"),
    ("rcab_only", "rcab_branch", "msrb_branch"),
    ("small_msrb_only", "msrb_branch", "rcab_branch"),
    ("small_rcab_only", "rcab_branch", "msrb_branch"),
])
def test_ablations_lack_the_other_branch(name, present, absent):
    model = build_model(name)
    assert getattr(model, absent) is None
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith(present) for n in names)
    assert not any(n.startswith(absent) for n in names)


def test_dual_output_is_the_sum_of_branches():
    torch.manual_seed(5)
    model = build_model("tiny").eval()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        f = model.head(x)
        expected = model.tail(model.upsample(model.msrb_branch(f) + model.rcab_branch(f)))
        torch.testing.assert_close(model(x), expected)


def test_receptive_field_bounds_the_impulse_response():
    # No channel attention in the MSRB-only network, so the response is local.
    cfg = PRESETS["small_msrb_only"]
    rf = receptive_field_px(cfg)
    assert rf % 2 == 1
    torch.manual_seed(6)
    model = DualBranchSR(cfg).double().eval()
    n, c = 48, 24
    x = torch.rand(1, 1, n, n, dtype=torch.float64)
    x2 = x.clone()
    x2[0, 0, c, c] += 1.0
    with torch.no_grad():
        diff = (model(x2) - model(x)).abs()[0, 0]
    rows = torch.nonzero(diff.sum(1) > 1e-12).flatten()
    extent_lr = (rows.max() - rows.min() + 1).item() / cfg.scale
    assert extent_lr <= rf
    assert extent_lr >= rf - 4  # the bound is nearly tight


def test_receptive_field_grows_with_depth():
    assert receptive_field_px(PRESETS["paper"]) > receptive_field_px(PRESETS["small"])
    assert receptive_field_px(PRESETS["small"]) > receptive_field_px(PRESETS["tiny"])


def test_bicubic_global_residual_starts_from_bicubic():
    from dataclasses import replace

    from xrf_sr_kedro.metrics.image import bicubic_upsample

    cfg = replace(PRESETS["tiny"], global_residual="bicubic")
    model = DualBranchSR(cfg).eval()
    assert count_parameters(model) == EXPECTED_PARAMETERS["tiny"]
    with torch.no_grad():
        model.tail.weight.zero_()
        model.tail.bias.zero_()
        x = torch.rand(2, 1, 6, 6)
        torch.testing.assert_close(model(x), bicubic_upsample(x, 4))
    with pytest.raises(ValueError, match="global_residual"):
        DualBranchConfig(global_residual="bilinear")
