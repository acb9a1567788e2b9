"""Simulation nodes: a ground-truth XRF sample, its fly-scans, and training pairs.

Each node unpacks typed parameters and calls the framework-free domain code in
:mod:`xrf_sr_kedro.physics` and :mod:`xrf_sr_kedro.tomo`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from xrf_sr_kedro.physics.application_pairs import (
    DEFAULT_BACKGROUND_COUNTS,
    DEFAULT_READOUT_SIGMA_COUNTS,
    ApplicationPairsSettings,
    application_training_pairs,
    validation_region_pairs,
)
from xrf_sr_kedro.physics.particle_packings import DEFAULT_ANGLES_PER_VOLUME
from xrf_sr_kedro.physics.measurement import measure_stack
from xrf_sr_kedro.physics.natural_images import split_training_images
from xrf_sr_kedro.physics.pairs import make_patch_pairs
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.reproject import even_angles_deg, project_volume
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)


@validated
class SampleParams:
    """Ground-truth phantom: ``size_vox``^3 voxels of ``voxel_size_nm``."""

    size_vox: int = 256
    voxel_size_nm: float = 7.5
    seed: int = 0


@validated
class ScanParams:
    """A tomographic fly-scan of the sample.

    ``step_px`` truth voxels per scan step (30 nm / 7.5 nm = 4 in the paper);
    ``mean_counts`` is the mean photon count per scan point of each element line
    (dwell time x flux x cross-section folded into one number).
    """

    n_angles: int = 91
    start_deg: float = -90.0
    stop_deg: float = 90.0
    step_px: int = 4
    fast_axis: Literal["x", "y"] = "x"
    mode: Literal["fly", "step"] = "fly"
    n_substeps: int | None = None
    mean_counts: dict[str, float] | None = None
    background_counts: float = 2.0
    readout_sigma_counts: float = 0.5
    seed: int = 1


@validated
class FineTuneRegionParams:
    """A second region of the sample scanned at two steps (paper: 50 nm and 200 nm).

    The region is simulated at ``voxel_size_nm`` so that both steps are whole
    numbers of voxels (50 nm = 4 x 12.5 nm, 200 nm = 16 x 12.5 nm).  The fine scan
    dwells ``fine_dwell_fraction`` of the coarse scan's time per point: its mean and
    background counts per point are scaled by it (readout noise is not).
    """

    size_vox: int = 320
    voxel_size_nm: float = 12.5
    seed: int = 7
    n_angles: int = 37
    start_deg: float = 90.0
    stop_deg: float = -18.0
    fine_step_px: int = 4
    coarse_step_px: int = 16
    fast_axis: Literal["x", "y"] = "x"
    mean_counts: dict[str, float] | None = None
    background_counts: float = 2.0
    readout_sigma_counts: float = 0.5
    noise_seed: int = 11
    fine_dwell_fraction: float = 1.0


@validated
class TrainingImagesParams:
    """Natural images for pretraining.

    ``source`` names the image folder for the run name (``skimage-bundled`` by
    default; ``div2k`` once the catalog points at a DIV2K download).  Images are
    split into training and validation sets by image, never by patch.
    ``n_textures`` procedurally generated textures are added to the bundled images.
    """

    source: str = "skimage-bundled"
    min_size_px: int = 256
    n_validation_images: int = 3
    n_textures: int = 8
    texture_size_px: int = 512
    seed: int = 0


@validated
class PairsParams:
    """Patch pairs: ``lr_patch_px`` LR pixels, HR patches ``step_px`` times larger."""

    step_px: int = 4
    lr_patch_px: int = 64
    patches_per_image: int = 16
    mean_counts: float | None = 200.0
    background_counts: float = 0.0
    readout_sigma_counts: float = 0.0
    fast_axis: Literal["x", "y"] = "x"
    seed: int = 0


ApplicationPairsParams = validated(ApplicationPairsSettings)


@validated
class ValidationRegionParams:
    """The held-out simulated region that picks checkpoints and the 3-D chain's network.

    Microstructures or projected 3-D particle packings (``source``; never the
    evaluation phantom) with their own ``seed`` at one dose, ``mean_counts`` per scan
    point (the default run's Zn dose).  With ``particle_packings``, ``n_samples``
    volumes give ``angles_per_volume`` maps each per element.
    """

    n_samples: int = 12
    size_px: int = 256
    seed: int = 2
    mean_counts: float = 150.0
    background_counts: float = DEFAULT_BACKGROUND_COUNTS
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS
    projected_fraction: float = 0.5
    step_px: int = 4
    fast_axis: Literal["x", "y"] = "x"
    source: Literal["microstructures", "particle_packings"] = "microstructures"
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME
    volume_size_vox: int | None = None


def _truth_projections(volume: Volume, angles_deg: np.ndarray) -> XRFStack:
    """Line integrals (concentration x nm) of every element of the phantom."""
    return project_volume(
        volume, angles_deg, units="concentration*nm",
        metadata={"kind": "truth projections", "source": "simulated phantom"},
    )


def simulate_sample(sample: SampleParams) -> Volume:
    """The ground-truth Zn/Mn battery-cathode phantom."""
    logger.info(
        "Simulating a %d^3 phantom at %.2f nm voxels", sample.size_vox, sample.voxel_size_nm
    )
    return battery_phantom(sample.size_vox, sample.voxel_size_nm, seed=sample.seed)


def project_truth(truth_volume: Volume, scan: ScanParams) -> XRFStack:
    """Truth projections at the fine (voxel) pixel size, at the scan angles."""
    angles = even_angles_deg(scan.n_angles, scan.start_deg, scan.stop_deg)
    return _truth_projections(truth_volume, angles)


def simulate_raw_xrf(
    truth_projections: XRFStack, probe_intensity: ProbeIntensity, scan: ScanParams
) -> XRFStack:
    """Fly-scan every truth projection at the configured step: the raw XRF to enhance."""
    return measure_stack(
        truth_projections, probe_intensity, scan.step_px, fast_axis=scan.fast_axis,
        mode=scan.mode, n_substeps=scan.n_substeps, mean_counts=scan.mean_counts,
        background_counts=scan.background_counts,
        readout_sigma_counts=scan.readout_sigma_counts, seed=scan.seed,
    )


def simulate_fine_tuning_scans(
    probe_intensity: ProbeIntensity, region: FineTuneRegionParams
) -> tuple[XRFStack, XRFStack]:
    """A second region scanned at a coarse and a fine step (paper: 200 nm and 50 nm;
    the fine-scan stage: 30 nm and 7.5 nm)."""
    if not 0.0 < region.fine_dwell_fraction <= 1.0:
        raise ValueError(f"fine_dwell_fraction must be in (0, 1], got {region.fine_dwell_fraction!r}")
    volume = battery_phantom(region.size_vox, region.voxel_size_nm, seed=region.seed)
    truth = _truth_projections(volume, np.linspace(region.start_deg, region.stop_deg, region.n_angles))
    dwell = (1.0, region.fine_dwell_fraction)
    scans = [
        measure_stack(
            truth, probe_intensity, step, fast_axis=region.fast_axis,
            mean_counts=None if region.mean_counts is None
            else {k: v * dwell[i] for k, v in region.mean_counts.items()},
            background_counts=region.background_counts * dwell[i],
            readout_sigma_counts=region.readout_sigma_counts, seed=region.noise_seed + i,
        )
        for i, step in enumerate((region.coarse_step_px, region.fine_step_px))
    ]
    return scans[0], scans[1]


def collect_training_images(
    natural_images: dict[str, Callable[[], Any]], images: TrainingImagesParams
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Grayscale [0, 1] images from a PNG/JPEG folder plus procedural textures.

    Returns ``(train_images, validation_images)``, split by image, never by patch.
    """
    return split_training_images(
        natural_images, min_size_px=images.min_size_px,
        n_validation_images=images.n_validation_images, n_textures=images.n_textures,
        texture_size_px=images.texture_size_px, seed=images.seed,
    )


def make_pretraining_pairs(
    images: list[np.ndarray], probe_intensity: ProbeIntensity, pairs: PairsParams
) -> PatchPairs:
    """Fly-scan natural images and cut LR/HR patch pairs."""
    return make_patch_pairs(
        images,
        probe_intensity,
        step_px=pairs.step_px,
        lr_patch_px=pairs.lr_patch_px,
        patches_per_image=pairs.patches_per_image,
        mean_counts=pairs.mean_counts,
        background_counts=pairs.background_counts,
        readout_sigma_counts=pairs.readout_sigma_counts,
        fast_axis=pairs.fast_axis,
        seed=pairs.seed,
    )


def make_validation_pairs(
    images: list[np.ndarray], probe_intensity: ProbeIntensity, pairs: PairsParams
) -> PatchPairs:
    """Validation pairs from the held-out images (a different noise seed)."""
    return make_pretraining_pairs(images, probe_intensity, replace(pairs, seed=pairs.seed + 1000))


def make_application_training_pairs(
    natural_pairs: PatchPairs, probe_intensity: ProbeIntensity, pairs: ApplicationPairsParams
) -> PatchPairs:
    """Microstructure pairs at the application scale and dose, mixed with natural pairs."""
    return application_training_pairs(pairs, probe_intensity, natural_pairs)


def make_validation_region_pairs(
    probe_intensity: ProbeIntensity, region: ValidationRegionParams
) -> PatchPairs:
    """The held-out microstructure region (its own seed) at the application dose."""
    return validation_region_pairs(
        probe_intensity, region.n_samples, region.size_px, region.seed, region.mean_counts,
        region.background_counts, region.readout_sigma_counts, region.projected_fraction,
        region.step_px, region.fast_axis, region.source, region.angles_per_volume,
        region.volume_size_vox,
    )


__all__ = [
    "simulate_sample",
    "project_truth",
    "simulate_raw_xrf",
    "simulate_fine_tuning_scans",
    "collect_training_images",
    "make_pretraining_pairs",
    "make_validation_pairs",
    "make_application_training_pairs",
    "make_validation_region_pairs",
]
