"""Grayscale natural images for pre-training, available offline.

The paper pre-trains on DIV2K.  Without a download we use the photographs that ship
inside the scikit-image wheel (checked to load with the network disabled) plus
seeded procedural textures (fractal noise, grains, particles, crack networks), so
that there are enough distinct images for a train/validation split.  A real DIV2K
folder enters through the catalog (e.g. a PartitionedDataset of PNGs) and each image
goes through :func:`load_image_as_gray`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

# skimage.data loaders whose files ship in the wheel (no pooch download needed) and
# that are photographs / micrographs rather than synthetic test patterns.
SKIMAGE_BUNDLED = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)

_LUMA = np.array([0.2125, 0.7154, 0.0721])  # ITU-R BT.709, as skimage.color.rgb2gray


def load_image_as_gray(image: Any) -> np.ndarray:
    """Convert an image (PIL image or array) to a float32 grayscale array in [0, 1].

    Parameters
    ----------
    image : PIL.Image.Image or ndarray
        ``(H, W)``, ``(H, W, 1)``, RGB ``(H, W, 3)`` or RGBA ``(H, W, 4)``; bool,
        uint8, uint16 (or other integer types, scaled by their maximum), or float
        (assumed in [0, 1] and clipped; other ranges are min-max scaled).  Alpha is
        dropped; RGB is converted with BT.709 luminance weights.

    Returns
    -------
    gray : ndarray (H, W), float32, values in [0, 1]
    """
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL image
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L"):
            arr = np.asarray(image, dtype=np.uint16)
        elif mode in ("I", "F"):
            arr = np.asarray(image)
        elif mode in ("L", "RGB", "RGBA"):
            arr = np.asarray(image)
        elif mode in ("1",):
            arr = np.asarray(image.convert("L"))
        else:  # P, LA, CMYK, YCbCr, ...
            arr = np.asarray(image.convert("RGB"))
    else:
        arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        scaled = _to_unit(rgb)
        gray = scaled @ _LUMA
    elif arr.ndim == 2:
        gray = _to_unit(arr)
    else:
        raise ValueError(
            f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {arr.shape}"
        )
    return np.clip(gray, 0.0, 1.0).astype(np.float32)


def _to_unit(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == bool:
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        if info.min < 0:
            a = arr.astype(np.float64)
            return (a - info.min) / (info.max - info.min)
        return arr.astype(np.float64) / info.max
    a = arr.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("image contains NaN or inf")
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        return a
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


# --------------------------------------------------------------------------- textures


def _percentile_stretch(a: np.ndarray) -> np.ndarray:
    """``a`` mapped to [0, 1] by its 0.5th and 99.5th percentiles (clipped)."""
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)


def _fractal_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    beta = rng.uniform(1.6, 3.2)
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1.0
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** (beta / 2)
    spec[0, 0] = 0
    return _percentile_stretch(np.fft.irfft2(spec, s=(n, n)))


def _grains(rng: np.random.Generator, n: int) -> np.ndarray:
    k = int(rng.integers(30, 160))
    seeds = rng.uniform(0, n, (k, 2))
    levels = rng.uniform(0.1, 1.0, k)
    yy, xx = np.mgrid[:n, :n]
    labels = np.zeros((n, n), dtype=np.int64)
    best = np.full((n, n), np.inf)
    for i, (sy, sx) in enumerate(seeds):
        d = (yy - sy) ** 2 + (xx - sx) ** 2
        closer = d < best
        best[closer] = d[closer]
        labels[closer] = i
    img = levels[labels]
    edges = ndimage.morphological_gradient(labels, size=2) > 0
    img[edges] *= rng.uniform(0.0, 0.5)
    return _percentile_stretch(ndimage.gaussian_filter(img, rng.uniform(0.3, 1.2)))


def _particles(rng: np.random.Generator, n: int) -> np.ndarray:
    img = np.full((n, n), rng.uniform(0.0, 0.3))
    yy, xx = np.mgrid[:n, :n]
    for _ in range(int(rng.integers(20, 120))):
        cy, cx = rng.uniform(0, n, 2)
        a, b = rng.uniform(2, n / 8, 2)
        th = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dy * np.cos(th) + dx * np.sin(th)
        v = -dy * np.sin(th) + dx * np.cos(th)
        inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        img[inside] = rng.uniform(0.2, 1.0) * (1 + 0.3 * (u[inside] / a))
    img = img + 0.05 * _fractal_noise(rng, n)
    return _percentile_stretch(ndimage.gaussian_filter(img, rng.uniform(0.3, 1.0)))


def _cracks(rng: np.random.Generator, n: int) -> np.ndarray:
    img = 0.4 + 0.6 * _fractal_noise(rng, n)
    mask = np.zeros((n, n), dtype=bool)
    for _ in range(int(rng.integers(5, 25))):
        y, x = rng.uniform(0, n, 2)
        ang = rng.uniform(0, 2 * np.pi)
        width = int(rng.integers(1, 4))
        for _ in range(int(rng.integers(n // 4, n))):
            ang += rng.normal(0, 0.15)
            y, x = y + np.sin(ang), x + np.cos(ang)
            iy, ix = int(y), int(x)
            if not (0 <= iy < n and 0 <= ix < n):
                break
            y0, x0 = max(iy - width // 2, 0), max(ix - width // 2, 0)
            mask[y0 : iy + (width + 1) // 2, x0 : ix + (width + 1) // 2] = True
    img[mask] *= rng.uniform(0.0, 0.3)
    return _percentile_stretch(img)


_TEXTURES = (_fractal_noise, _grains, _particles, _cracks)


def procedural_textures(n_images: int = 16, size_px: int = 512, seed: int = 0
                        ) -> list[np.ndarray]:
    """Seeded synthetic textures (fractal noise, grains, particles, crack networks).

    Returns
    -------
    list of ndarray (size_px, size_px), float32 in [0, 1]
    """
    if int(n_images) != n_images or n_images < 0:
        raise ValueError(f"n_images must be a non-negative integer, got {n_images!r}")
    if int(size_px) != size_px or size_px < 16:
        raise ValueError(f"size_px must be an integer >= 16, got {size_px!r}")
    out = []
    for i in range(int(n_images)):
        rng = np.random.default_rng([int(seed), i])
        img = _TEXTURES[i % len(_TEXTURES)](rng, int(size_px))
        out.append(img.astype(np.float32))
    return out


def bundled_natural_images_named(
    min_size_px: int = 256, n_procedural: int = 16, procedural_size_px: int = 512, seed: int = 0
) -> dict[str, np.ndarray]:
    """Like :func:`bundled_natural_images`, keyed by a source name
    (``"skimage:camera"``, ``"procedural:003"``)."""
    import skimage.data

    images: dict[str, np.ndarray] = {}
    for name in SKIMAGE_BUNDLED:
        try:
            arr = getattr(skimage.data, name)()
        except Exception as exc:  # missing optional file, no network, ...
            logger.warning("skipping skimage.data.%s: %s", name, exc)
            continue
        gray = load_image_as_gray(arr)
        if min(gray.shape) >= min_size_px:
            images[f"skimage:{name}"] = gray
    if procedural_size_px >= min_size_px:
        for i, tex in enumerate(procedural_textures(n_procedural, procedural_size_px, seed)):
            images[f"procedural:{i:03d}"] = tex
    return images


def bundled_natural_images(
    min_size_px: int = 256, n_procedural: int = 16, procedural_size_px: int = 512, seed: int = 0
) -> list[np.ndarray]:
    """Offline grayscale training images: scikit-image photographs + procedural textures.

    Parameters
    ----------
    min_size_px : int
        Keep only images whose shorter side is at least this many pixels.
    n_procedural : int
        Number of procedural textures appended after the photographs.
    procedural_size_px : int
        Side of the procedural textures.
    seed : int
        Seed of the procedural textures.

    Returns
    -------
    list of ndarray (H, W), float32 in [0, 1]
        The scikit-image photographs in :data:`SKIMAGE_BUNDLED` order, then the textures.
    """
    return list(
        bundled_natural_images_named(min_size_px, n_procedural, procedural_size_px, seed).values()
    )


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def split_training_images(
    images: dict[str, Callable[[], Any]],
    *,
    min_size_px: int,
    n_validation_images: int,
    n_textures: int,
    texture_size_px: int,
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Grayscale [0, 1] images from a PNG/JPEG folder plus procedural textures, split by image.

    Parameters
    ----------
    images : dict of str to callable
        File name -> loader (a Kedro ``PartitionedDataset``); files without an image
        suffix are ignored and unreadable ones skipped with a warning.
    min_size_px : int
        Images whose shorter side is below this are dropped.
    n_validation_images : int
        Images held out for validation, never cut into training patches.
    n_textures, texture_size_px : int
        Procedural textures added (:func:`procedural_textures`).
    seed : int
        Seeds the textures and the split.

    Returns
    -------
    (train_images, validation_images) : lists of 2-D float arrays
    """
    loaded = []
    for name in sorted(images):
        if PurePath(name).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            gray = load_image_as_gray(np.asarray(images[name]()))
        except Exception as exc:  # a corrupt or exotic file must not stop the run
            logger.warning("Skipping image %s: %s", name, exc)
            continue
        if min(gray.shape) >= min_size_px:
            loaded.append(gray)
    loaded += procedural_textures(n_textures, texture_size_px, seed=seed)
    if len(loaded) <= n_validation_images:
        raise ValueError(
            f"only {len(loaded)} usable images (>= {min_size_px} px) found; need more "
            f"than simulation.training_images.n_validation_images={n_validation_images}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(loaded))
    train = [loaded[i] for i in order[n_validation_images:]]
    val = [loaded[i] for i in order[:n_validation_images]]
    logger.info("Training images: %d for training, %d held out", len(train), len(val))
    return train, val
