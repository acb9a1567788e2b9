"""Low/high-resolution training patch pairs: simulated (natural images) and experimental."""

from __future__ import annotations

import logging
import math

import numpy as np
from xrf_sr_kedro.progress import progress

from xrf_sr_kedro.normalisation import minmax_range, normalise
from xrf_sr_kedro.physics.flyscan import FastAxis, flyscan, flyscan_kernel
from xrf_sr_kedro.physics.natural_images import load_image_as_gray
from xrf_sr_kedro.physics.measurement import detector_counts
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, XRFStack
from xrf_sr_kedro.validation import positive_int

logger = logging.getLogger(__name__)


def make_patch_pairs(
    images: list[np.ndarray],
    probe: ProbeIntensity,
    step_px: int = 4,
    lr_patch_px: int = 64,
    patches_per_image: int = 8,
    mean_counts: float | None = 100.0,
    background_counts: float = 0.0,
    readout_sigma_counts: float = 0.0,
    fast_axis: FastAxis = "x",
    seed: int = 0,
    mode: str = "fly",
    n_substeps: int | None = None,
) -> PatchPairs:
    """Simulated fly-scan training pairs from HR images (the paper's pre-training data).

    Each image (converted with :func:`load_image_as_gray` to [0, 1]) is fly-scanned
    whole with ``probe`` at ``step_px``; if ``mean_counts`` is given, Poisson counting
    noise (:func:`~xrf_sr_kedro.physics.noise.simulate_counts`, the image's mean
    signal scaled to ``mean_counts`` counts) is added and the counts are converted back
    to the intensity scale of the HR image, so LR and HR share one scale.  LR values
    are clipped to [0, 1].  Patches are then cropped at random aligned positions: LR
    patch rows ``i0 .. i0 + P - 1`` pair with HR rows ``i0*s .. (i0 + P)*s - 1``
    (see :mod:`~xrf_sr_kedro.physics.flyscan`).  Positions are kept at least half a
    kernel away from the image border where the field of view allows, so the zero
    padding of the forward model does not darken the patches.

    Parameters
    ----------
    images : list of ndarray
        HR images (any of the layouts :func:`load_image_as_gray` accepts).
    probe : ProbeIntensity
        Probe at the HR pixel size.
    step_px : int
        Scan step = scale factor.
    lr_patch_px : int
        LR patch side; the HR patch side is ``lr_patch_px * step_px``.
    patches_per_image : int
    mean_counts : float or None
        Mean signal counts per LR pixel; ``None`` for noise-free pairs.
    background_counts, readout_sigma_counts : float
        See :func:`~xrf_sr_kedro.physics.noise.simulate_counts`.
    fast_axis : {"x", "y"}
    seed : int
        Seeds the noise and the patch positions.
    mode, n_substeps
        As for :func:`~xrf_sr_kedro.physics.flyscan.flyscan`.

    Returns
    -------
    PatchPairs
        ``lr_pixel_size_nm = probe.pixel_size_nm * step_px``, ``hr_pixel_size_nm =
        probe.pixel_size_nm``; metadata records the probe, scan and noise settings
        and, for every patch, ``[image_index, lr_row, lr_col]``.
    """
    if not isinstance(probe, ProbeIntensity):
        raise TypeError(f"probe must be a ProbeIntensity, got {type(probe).__name__}")
    s = positive_int("step_px", step_px)
    p_lr = positive_int("lr_patch_px", lr_patch_px)
    n_per = positive_int("patches_per_image", patches_per_image)
    if len(images) == 0:
        raise ValueError("images must be a non-empty list")
    rng = np.random.default_rng(seed)
    kern = flyscan_kernel(probe.intensity, s, fast_axis, mode, n_substeps)
    margin_lr = int(math.ceil(max(kern.shape) / 2 / s))
    lr_out, hr_out, where = [], [], []
    skipped = 0
    for idx, img in enumerate(progress(images, "fly-scan pairs", unit="map", quiet=True)):
        hr = load_image_as_gray(img)
        lr = flyscan(hr, probe.intensity, s, fast_axis, mode, n_substeps)
        h, w = lr.shape
        if h < p_lr or w < p_lr:
            skipped += 1
            logger.warning(
                "image %d (%dx%d) is smaller than one HR patch (%d px); skipped",
                idx, *hr.shape, p_lr * s,
            )
            continue
        if mean_counts is not None and lr.mean() > 0:
            # counts clipped at 0 by the detector; below-background values end at 0
            # after the clip to [0, 1] below either way
            counts = detector_counts(lr, mean_counts, background_counts, readout_sigma_counts, rng)
            lr = (counts - background_counts) * (float(lr.mean()) / float(mean_counts))
        lr = np.clip(lr, 0.0, 1.0).astype(np.float32)
        m_y = min(margin_lr, (h - p_lr) // 2)
        m_x = min(margin_lr, (w - p_lr) // 2)
        rows = rng.integers(m_y, h - p_lr - m_y + 1, n_per)
        cols = rng.integers(m_x, w - p_lr - m_x + 1, n_per)
        for i0, j0 in zip(rows, cols):
            lr_out.append(lr[i0 : i0 + p_lr, j0 : j0 + p_lr])
            hr_out.append(hr[i0 * s : (i0 + p_lr) * s, j0 * s : (j0 + p_lr) * s])
            where.append([idx, int(i0), int(j0)])
    if not lr_out:
        raise ValueError(
            f"no image is large enough for a {p_lr * s} px HR patch ({skipped} skipped)"
        )
    return PatchPairs(
        lr=np.stack(lr_out)[:, None],
        hr=np.stack(hr_out)[:, None],
        lr_pixel_size_nm=probe.pixel_size_nm * s,
        hr_pixel_size_nm=probe.pixel_size_nm,
        metadata={
            "source": "simulated_flyscan",
            "probe": dict(probe.metadata, pixel_size_nm=probe.pixel_size_nm),
            "step_px": s,
            "fast_axis": fast_axis,
            "mode": mode,
            "n_substeps": n_substeps,
            "mean_counts": mean_counts,
            "background_counts": background_counts,
            "readout_sigma_counts": readout_sigma_counts,
            "seed": int(seed),
            "n_images": len(images),
            "n_images_skipped": skipped,
            "lr_clipped_to_unit_range": True,
            "patch_origin_lr": where,
        },
    )


def pairs_from_maps(
    lr_maps: np.ndarray,
    hr_maps: np.ndarray,
    lr_patch_px: int,
    lr_pixel_size_nm: float,
    hr_pixel_size_nm: float,
    stride_px: int | None = None,
) -> PatchPairs:
    """Patch pairs from co-registered experimental maps (the fine-tuning data).

    Each pair is normalised with its LR map's minimum and maximum
    (:mod:`xrf_sr_kedro.normalisation`), applied to both maps, and cut into patches
    on matching grids: LR patch at ``(i0, j0)`` pairs with HR rows ``i0*s ..
    (i0 + P)*s - 1`` and columns likewise, with ``i0, j0`` stepping by ``stride_px``.

    Parameters
    ----------
    lr_maps : ndarray (n, h, w)
    hr_maps : ndarray (n, h*s, w*s)
    lr_patch_px : int
    lr_pixel_size_nm, hr_pixel_size_nm : float
    stride_px : int, optional
        LR stride between patches; default ``lr_patch_px`` (no overlap).

    Returns
    -------
    PatchPairs
        HR values may leave [0, 1] where the HR map exceeds its LR partner's range.
        ``metadata["lo"]``, ``["hi"]`` hold each map's scale factors and
        ``["patch_origin_lr"]`` the ``[map_index, lr_row, lr_col]`` of each patch.
    """
    lr = np.asarray(lr_maps, dtype=np.float32)
    hr = np.asarray(hr_maps, dtype=np.float32)
    if lr.ndim != 3 or hr.ndim != 3:
        raise ValueError(
            f"lr_maps and hr_maps must be 3-D (n, h, w), got {lr.shape} and {hr.shape}"
        )
    if lr.shape[0] != hr.shape[0]:
        raise ValueError(f"lr_maps has {lr.shape[0]} maps but hr_maps has {hr.shape[0]}")
    n, h, w = lr.shape
    if hr.shape[1] % h or hr.shape[2] % w or hr.shape[1] // h != hr.shape[2] // w:
        raise ValueError(
            f"hr_maps {hr.shape[1:]} must be an integer multiple s of lr_maps {lr.shape[1:]}"
        )
    s = hr.shape[1] // h
    p = positive_int("lr_patch_px", lr_patch_px)
    stride = p if stride_px is None else positive_int("stride_px", stride_px)
    if p > h or p > w:
        raise ValueError(f"lr_patch_px={p} exceeds the LR map size {h}x{w}")
    ratio = float(lr_pixel_size_nm) / float(hr_pixel_size_nm)
    if not math.isclose(ratio, s, rel_tol=0.02):
        logger.warning(
            "pixel sizes %.3g / %.3g nm give a ratio %.3f but the maps differ by %d",
            lr_pixel_size_nm, hr_pixel_size_nm, ratio, s,
        )
    lo, hi = minmax_range(lr)
    lr_n = normalise(lr, lo, hi)
    hr_n = normalise(hr, lo, hi)
    lr_out, hr_out, where = [], [], []
    for k in range(n):
        for i0 in range(0, h - p + 1, stride):
            for j0 in range(0, w - p + 1, stride):
                lr_out.append(lr_n[k, i0 : i0 + p, j0 : j0 + p])
                hr_out.append(hr_n[k, i0 * s : (i0 + p) * s, j0 * s : (j0 + p) * s])
                where.append([k, i0, j0])
    return PatchPairs(
        lr=np.stack(lr_out)[:, None],
        hr=np.stack(hr_out)[:, None],
        lr_pixel_size_nm=lr_pixel_size_nm,
        hr_pixel_size_nm=hr_pixel_size_nm,
        metadata={
            "source": "experimental_maps",
            "normalisation": "lr_minmax",
            "lo": lo.reshape(-1).tolist(),
            "hi": hi.reshape(-1).tolist(),
            "stride_px": stride,
            "patch_origin_lr": where,
        },
    )


def pairs_from_scans(
    coarse: XRFStack,
    fine: XRFStack,
    *,
    lr_patch_px: int,
    stride_px: int,
    validation_every: int,
) -> tuple[PatchPairs, PatchPairs]:
    """Normalised (coarse, fine) patch pairs of two scans, split by frame into training and validation.

    Parameters
    ----------
    coarse, fine : XRFStack
        The same elements and frames scanned at two steps; ``fine`` must be an
        integer zoom of ``coarse`` (its maps ``s`` times larger, pixels ``s`` times smaller).
    lr_patch_px, stride_px : int
        As for :func:`pairs_from_maps` (coarse pixels).
    validation_every : int
        Every ``validation_every``-th frame (e.g. every 5th projection) is held out.

    Returns
    -------
    (PatchPairs, PatchPairs)
        Training pairs from the kept frames, validation pairs from the held-out ones.
    """
    scale = coarse.pixel_size_nm / fine.pixel_size_nm
    if coarse.data.shape[:2] != fine.data.shape[:2]:
        raise ValueError(
            f"coarse scan has (elements, frames) {coarse.data.shape[:2]} but the fine scan "
            f"has {fine.data.shape[:2]}: they must cover the same frames"
        )
    if abs(scale - round(scale)) > 1e-3 or fine.shape_hw != tuple(round(scale) * n for n in coarse.shape_hw):
        raise ValueError(
            f"fine scan {fine.shape_hw} at {fine.pixel_size_nm} nm is not an integer zoom of the "
            f"coarse scan {coarse.shape_hw} at {coarse.pixel_size_nm} nm"
        )
    frames = coarse.n_frames
    held_out = [f for f in range(frames) if f % validation_every == validation_every - 1]
    kept = [f for f in range(frames) if f not in held_out]

    def build(index: list[int]) -> PatchPairs:
        low_res = coarse.data[:, index].reshape(-1, *coarse.shape_hw)
        high_res = fine.data[:, index].reshape(-1, *fine.shape_hw)
        return pairs_from_maps(
            low_res, high_res, lr_patch_px, coarse.pixel_size_nm, fine.pixel_size_nm,
            stride_px=stride_px,
        )

    return build(kept), build(held_out)
