"""Tests for xrf_sr_kedro.metrics.image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from xrf_sr_kedro.metrics.image import bicubic_upsample, consistency_residual, psnr, ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    target = rng.random((40, 48))
    pred = np.clip(target + 0.1 * rng.standard_normal(target.shape), 0, 1)
    return pred, target


def test_psnr_matches_skimage(pair):
    pred, target = pair
    assert psnr(pred, target) == pytest.approx(
        peak_signal_noise_ratio(target, pred, data_range=1.0), abs=1e-9
    )


def test_psnr_known_value_and_torch():
    target = np.zeros((4, 4))
    pred = np.full((4, 4), 0.1)  # MSE = 0.01 -> 20 dB
    assert psnr(pred, target) == pytest.approx(20.0)
    assert psnr(torch.tensor(pred), torch.tensor(target)) == pytest.approx(20.0)
    assert psnr(pred * 2, target, data_range=2.0) == pytest.approx(20.0)
    assert psnr(target, target) == math.inf


def test_psnr_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros((3, 3)), np.zeros((3, 4)))


@pytest.mark.parametrize("data_range", [1.0, 3.0])
def test_ssim_matches_skimage_2d(pair, data_range):
    pred, target = pair
    pred, target = pred * data_range, target * data_range
    ref = structural_similarity(
        target, pred, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=data_range,
    )
    assert ssim(pred, target, data_range=data_range) == pytest.approx(ref, abs=1e-6)


def test_ssim_batched_and_torch_is_mean_of_images():
    rng = np.random.default_rng(1)
    target = rng.random((2, 3, 32, 32))
    pred = target + 0.05 * rng.standard_normal(target.shape)
    refs = [
        structural_similarity(
            target[i, c], pred[i, c], gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=1.0,
        )
        for i in range(2)
        for c in range(3)
    ]
    expected = float(np.mean(refs))
    assert ssim(pred, target) == pytest.approx(expected, abs=1e-6)
    assert ssim(torch.tensor(pred, dtype=torch.float32), torch.tensor(target)) == pytest.approx(
        expected, abs=1e-6
    )
    assert ssim(pred[0], target[0]) == pytest.approx(float(np.mean(refs[:3])), abs=1e-6)


def test_ssim_identity_is_one_and_noise_lowers_it(pair):
    pred, target = pair
    assert ssim(target, target) == pytest.approx(1.0, abs=1e-12)
    assert ssim(pred, target) < 0.99
    assert ssim(target + 0.3, target) < ssim(target + 0.1, target) < 1.0


def test_ssim_rejects_bad_input():
    with pytest.raises(ValueError, match="at least win_size"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        ssim(np.zeros((1, 1, 1, 16, 16)), np.zeros((1, 1, 1, 16, 16)))


def test_bicubic_upsample_shapes_types_and_constants():
    x = np.full((2, 3, 5, 7), 0.25, dtype=np.float32)
    up = bicubic_upsample(x, 4)
    assert isinstance(up, np.ndarray) and up.dtype == np.float32
    assert up.shape == (2, 3, 20, 28)
    np.testing.assert_allclose(up, 0.25, atol=1e-6)
    t = torch.rand(6, 8)
    ut = bicubic_upsample(t, 2)
    assert isinstance(ut, torch.Tensor) and ut.shape == (12, 16)
    expected = torch.nn.functional.interpolate(
        t[None, None], scale_factor=2, mode="bicubic", align_corners=False
    )[0, 0]
    torch.testing.assert_close(ut, expected)
    assert bicubic_upsample(x, 1).shape == x.shape
    with pytest.raises(ValueError, match="scale"):
        bicubic_upsample(x, 0)
    with pytest.raises(ValueError, match="at least 2"):
        bicubic_upsample(np.zeros(5), 2)


def test_bicubic_reproduces_smooth_signal():
    # A smooth, slowly-varying map is reproduced well by bicubic upsampling.
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    hr = 0.5 + 0.4 * np.sin(2 * np.pi * xx) * np.cos(2 * np.pi * yy)
    lr = hr.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    up = bicubic_upsample(lr, 4)
    assert psnr(up[8:-8, 8:-8], hr[8:-8, 8:-8]) > 30


def test_consistency_residual_values():
    measured = np.array([[1.0, 2.0], [3.0, 4.0]])
    redegraded = measured * 1.1
    residual, rel_l2, rel_sum = consistency_residual(measured, redegraded)
    np.testing.assert_allclose(residual, 0.1 * measured)
    assert rel_l2 == pytest.approx(0.1)
    assert rel_sum == pytest.approx(0.1)
    _, rel_l2, rel_sum = consistency_residual(measured, measured)
    assert rel_l2 == 0.0 and rel_sum == 0.0
    # Moving counts around preserves the total but not the map.
    _, rel_l2, rel_sum = consistency_residual(measured, measured[::-1])
    assert rel_sum == pytest.approx(0.0) and rel_l2 > 0.5
    with pytest.raises(ValueError, match="same shape"):
        consistency_residual(measured, np.zeros((3, 2)))


def test_scaled_relative_error_ignores_the_gain_and_sees_the_error():
    from xrf_sr_kedro.metrics.image import scaled_relative_error

    rng = np.random.default_rng(0)
    truth = rng.random((2, 8, 8, 8)) + 0.5
    assert scaled_relative_error(3.0 * truth, truth) == pytest.approx(0.0, abs=1e-12)
    noisy = truth + 0.1 * rng.standard_normal(truth.shape)
    naive = np.mean([np.linalg.norm(n - t) / np.linalg.norm(t) for n, t in zip(noisy, truth)])
    assert 0.0 < scaled_relative_error(5.0 * noisy, truth) <= naive + 1e-12
