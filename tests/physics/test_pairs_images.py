import numpy as np
import pytest

from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.natural_images import (
    SKIMAGE_BUNDLED,
    bundled_natural_images_named,
    load_image_as_gray,
    procedural_textures,
)
from xrf_sr_kedro.physics.pairs import make_patch_pairs, pairs_from_maps
from xrf_sr_kedro.physics.probe import gaussian_probe


def test_load_image_as_gray_handles_dtypes_and_channels():
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    g = load_image_as_gray(rgb)
    assert g.shape == (4, 5) and g.dtype == np.float32
    np.testing.assert_allclose(g, 0.7154, atol=1e-4)
    rgba = np.concatenate([rgb, np.zeros((4, 5, 1), np.uint8)], axis=-1)
    np.testing.assert_allclose(load_image_as_gray(rgba), g)
    u16 = np.full((3, 3), 65535, dtype=np.uint16)
    np.testing.assert_allclose(load_image_as_gray(u16), 1.0)
    np.testing.assert_allclose(load_image_as_gray(np.full((3, 3, 1), 128, np.uint8)), 128 / 255)
    from PIL import Image

    pil = Image.fromarray(rgb)
    np.testing.assert_allclose(load_image_as_gray(pil), g, atol=1e-6)
    np.testing.assert_allclose(load_image_as_gray(pil.convert("P")), g, atol=2e-2)
    with pytest.raises(ValueError, match="image must be"):
        load_image_as_gray(np.zeros((2, 2, 2, 2)))


def test_bundled_images_offline_and_in_range(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    named = bundled_natural_images_named(min_size_px=256, n_procedural=2, procedural_size_px=256)
    photos = [k for k in named if k.startswith("skimage:")]
    assert len(photos) >= 10
    assert {"skimage:camera", "skimage:astronaut"} <= set(photos)
    assert set(k.split(":")[1] for k in photos) <= set(SKIMAGE_BUNDLED)
    for img in named.values():
        assert img.dtype == np.float32 and img.ndim == 2 and min(img.shape) >= 256
        assert img.min() >= 0 and img.max() <= 1


def test_procedural_textures_seeded():
    a = procedural_textures(4, 64, seed=2)
    b = procedural_textures(4, 64, seed=2)
    assert len(a) == 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
        assert x.std() > 0.05
    assert not np.allclose(a[0], procedural_textures(1, 64, seed=3)[0])


def test_make_patch_pairs_noise_free_matches_flyscan():
    probe = gaussian_probe(40.0, 7.5, size_px=16)
    rng = np.random.default_rng(0)
    images = [rng.random((96, 112)), rng.random((80, 80))]
    pairs = make_patch_pairs(images, probe, step_px=4, lr_patch_px=8, patches_per_image=3,
                             mean_counts=None, seed=1)
    assert pairs.lr.shape == (6, 1, 8, 8) and pairs.hr.shape == (6, 1, 32, 32)
    assert pairs.lr_pixel_size_nm == 30.0 and pairs.hr_pixel_size_nm == 7.5
    for k, (idx, i0, j0) in enumerate(pairs.metadata["patch_origin_lr"]):
        img = images[idx].astype(np.float32)
        lr_full = flyscan(img, probe.intensity, 4)
        np.testing.assert_allclose(pairs.lr[k, 0], lr_full[i0 : i0 + 8, j0 : j0 + 8], atol=1e-6)
        np.testing.assert_allclose(pairs.hr[k, 0], img[i0 * 4 : i0 * 4 + 32, j0 * 4 : j0 * 4 + 32])
        # away from the border: the kernel half-width (16 + 4 px) / 4 = 3 LR px
        assert i0 >= 2 and j0 >= 2


def test_make_patch_pairs_noise_keeps_scale():
    probe = gaussian_probe(40.0, 7.5, size_px=16)
    img = np.full((128, 128), 0.5)
    pairs = make_patch_pairs([img], probe, step_px=4, lr_patch_px=8, patches_per_image=20,
                             mean_counts=400.0, seed=0)
    assert pairs.lr.mean() == pytest.approx(0.5, rel=0.02)
    # Poisson at 400 counts: relative std 1/20
    assert pairs.lr.std() == pytest.approx(0.5 / 20, rel=0.2)
    np.testing.assert_allclose(pairs.hr, 0.5)


def test_pairs_from_maps_normalises_with_lr_range():
    rng = np.random.default_rng(0)
    hr = rng.random((2, 48, 64)) * 100 + 10
    lr = hr.reshape(2, 12, 4, 16, 4).mean(axis=(2, 4))
    pairs = pairs_from_maps(lr, hr, lr_patch_px=6, lr_pixel_size_nm=200.0, hr_pixel_size_nm=50.0,
                            stride_px=3)
    assert pairs.scale == 4
    assert len(pairs) == 2 * 3 * 4
    lo, hi = pairs.metadata["lo"], pairs.metadata["hi"]
    assert lo[0] == pytest.approx(lr[0].min()) and hi[1] == pytest.approx(lr[1].max())
    k, i0, j0 = pairs.metadata["patch_origin_lr"][5]
    expect = (hr[k, i0 * 4 : i0 * 4 + 24, j0 * 4 : j0 * 4 + 24] - lo[k]) / (hi[k] - lo[k])
    np.testing.assert_allclose(pairs.hr[5, 0], expect, rtol=1e-5, atol=1e-6)
    # block means of normalised HR equal normalised LR (same scale)
    np.testing.assert_allclose(
        pairs.hr[5, 0].reshape(6, 4, 6, 4).mean(axis=(1, 3)), pairs.lr[5, 0], atol=1e-5
    )
    with pytest.raises(ValueError, match="integer multiple"):
        pairs_from_maps(lr, hr[:, :47], 6, 200.0, 50.0)
