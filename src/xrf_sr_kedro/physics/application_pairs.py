"""Training pairs at the application scale: 7.5 nm maps fly-scanned at a 30 nm step.

Each fine map (one HR patch, e.g. 256 x 256 px at 7.5 nm) is fly-scanned whole with
the project's probe (:func:`~xrf_sr_kedro.physics.flyscan.flyscan`; zero outside the
map, as around a projection of a sample in air), given counting noise at a dose
drawn log-uniformly in ``counts_range`` (:func:`~xrf_sr_kedro.physics.noise.simulate_counts`
with background and readout noise), recorded as the simulation pipeline records
counts (background included, clipped at zero), and then normalised with the LR
map's own minimum and maximum
(:mod:`xrf_sr_kedro.normalisation`), the HR map with the same ``lo, hi``: exactly
what :func:`xrf_sr_kedro.inference.engine.enhance_maps` does to a measured map, so
the network sees at training what it meets at inference.

Reprojection noise
------------------
The 3-D chain enhances reprojections of a reconstruction, whose noise is much
weaker at high frequencies than a measured map's (about 8x at Nyquist in the
default run).  With ``reprojection_fraction > 0`` that fraction of the pairs gets its
noise (LR minus noise-free LR) low-pass filtered so that its amplitude gain falls
from 1 at zero frequency to ``hf_noise_gain`` at Nyquist (a Gaussian transfer
function), keeping the same low-frequency noise.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from xrf_sr_kedro.normalisation import minmax_range, normalise
from xrf_sr_kedro.physics.flyscan import FastAxis, flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.particle_packings import DEFAULT_ANGLES_PER_VOLUME, packing_projection_maps
from xrf_sr_kedro.validation import positive_int
from xrf_sr_kedro.types import PatchPairs, ProbeIntensity

#: Defaults of the application-scale pairs, shared by the functions below and the
#: simulation pipeline's parameter classes (one source each).
DEFAULT_COUNTS_RANGE = (20.0, 2000.0)   # counts per scan point, drawn log-uniformly
DEFAULT_BACKGROUND_COUNTS = 2.0         # counts per scan point
DEFAULT_READOUT_SIGMA_COUNTS = 0.5      # counts per scan point
DEFAULT_HF_NOISE_GAIN = 0.125           # reprojection-like noise gain at Nyquist

logger = logging.getLogger(__name__)


def lowpass_noise(noise: np.ndarray, hf_noise_gain: float) -> np.ndarray:
    """Filter ``noise`` (..., h, w) with a Gaussian transfer function.

    The amplitude gain is 1 at zero frequency and ``hf_noise_gain`` at Nyquist
    (0.5 cycles/pixel) along each axis; ``hf_noise_gain = 1`` returns the noise.
    """
    g = float(hf_noise_gain)
    if not 0 < g <= 1:
        raise ValueError(f"hf_noise_gain must be in (0, 1], got {hf_noise_gain!r}")
    if g == 1:
        return noise
    h, w = noise.shape[-2:]
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    # exp(-f^2 / (2 s^2)) = g at f = 0.5  ->  1 / (2 s^2) = -ln(g) / 0.25
    tf = np.exp((fy**2 + fx**2) * math.log(g) / 0.25)
    return np.fft.irfft2(np.fft.rfft2(noise) * tf, s=(h, w)).astype(np.float32)


def noisy_counts(
    hr: np.ndarray,
    probe: ProbeIntensity,
    step_px: int,
    mean_counts: float,
    background_counts: float,
    readout_sigma_counts: float,
    rng: np.random.Generator,
    hf_noise_gain: float = 1.0,
    fast_axis: FastAxis = "x",
) -> tuple[np.ndarray, float]:
    """Fly-scan ``hr`` and record counts as the simulation pipeline does.

    Returns ``(counts, counts_per_unit)``: the counts per scan point (background
    included, clipped at zero as a detector reports them, like
    ``pipelines.simulation``'s raw maps) and the gain ``g`` with
    ``E[counts] = g * flyscan(hr) + background``.  With ``hf_noise_gain < 1`` the
    noise (counts minus their expectation) is low-pass filtered first
    (:func:`lowpass_noise`).
    """
    clean = np.clip(flyscan(hr, probe.intensity, step_px, fast_axis), 0, None)
    if clean.mean() <= 0:
        return np.full(clean.shape, float(background_counts), np.float32), 1.0
    g = float(mean_counts) / float(clean.mean())
    counts = simulate_counts(clean, mean_counts, background_counts, readout_sigma_counts, rng)
    if hf_noise_gain != 1.0:
        expected = g * clean + background_counts
        counts = expected + lowpass_noise(counts - expected, hf_noise_gain)
    return np.clip(counts, 0, None).astype(np.float32), g


def make_application_pairs(
    maps: list[np.ndarray],
    probe: ProbeIntensity,
    step_px: int = 4,
    counts_range: tuple[float, float] = DEFAULT_COUNTS_RANGE,
    background_counts: float = DEFAULT_BACKGROUND_COUNTS,
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS,
    reprojection_fraction: float = 0.0,
    hf_noise_gain: float = DEFAULT_HF_NOISE_GAIN,
    fast_axis: FastAxis = "x",
    seed: int = 0,
) -> PatchPairs:
    """One normalised LR/HR pair per fine map, at a random dose each.

    Parameters
    ----------
    maps : list of ndarray (H, W)
        Non-negative fine maps on the probe's grid, ``H`` and ``W`` multiples of
        ``step_px`` and all the same shape (e.g. :func:`~xrf_sr_kedro.physics.
        microstructures.microstructure_maps`).
    probe : ProbeIntensity
        Probe at the maps' pixel size (unit sum).
    step_px : int
        Scan step in fine pixels (4: 30 nm at 7.5 nm).
    counts_range : (float, float)
        Mean signal counts per scan point, drawn log-uniformly per map.
    background_counts, readout_sigma_counts : float
        Detector background (counts per point) and readout noise (counts).
    reprojection_fraction : float
        Fraction of pairs with reprojection-like (low-pass) noise, see the module
        docstring.
    hf_noise_gain : float
        Noise amplitude gain at Nyquist for those pairs.
    fast_axis : {"x", "y"}
    seed : int
        Seeds doses and noise.

    Returns
    -------
    PatchPairs
        ``lr`` (n, 1, H/s, W/s) in [0, 1], ``hr`` (n, 1, H, W) on the same scale
        (it may leave [0, 1]); metadata records per-pair ``mean_counts`` and
        ``reprojection_noise`` flags.
    """
    if not isinstance(probe, ProbeIntensity):
        raise TypeError(f"probe must be a ProbeIntensity, got {type(probe).__name__}")
    s = positive_int("step_px", step_px)
    lo_c, hi_c = (float(c) for c in counts_range)
    if not 0 < lo_c <= hi_c:
        raise ValueError(f"counts_range must be 0 < low <= high, got {counts_range!r}")
    if not 0 <= reprojection_fraction <= 1:
        raise ValueError(f"reprojection_fraction must be in [0, 1], got {reprojection_fraction!r}")
    if len(maps) == 0:
        raise ValueError("maps must be a non-empty list")
    shape = np.shape(maps[0])
    if len(shape) != 2 or shape[0] % s or shape[1] % s:
        raise ValueError(f"maps must be 2-D with sides that are multiples of {s}, got {shape}")
    rng = np.random.default_rng([int(seed), 0x0A])
    lr_out, hr_out, doses, reproj = [], [], [], []
    for m in maps:
        hr = np.asarray(m, dtype=np.float32)
        if hr.shape != shape:
            raise ValueError(f"all maps must have shape {shape}, got {hr.shape}")
        if np.any(hr < 0) or not np.isfinite(hr).all():
            raise ValueError("maps must be finite and non-negative")
        dose = float(np.exp(rng.uniform(np.log(lo_c), np.log(hi_c))))
        is_rp = bool(rng.random() < reprojection_fraction)
        lr, g = noisy_counts(
            hr, probe, s, dose, background_counts, readout_sigma_counts, rng,
            hf_noise_gain if is_rp else 1.0, fast_axis,
        )
        lo, hi = minmax_range(lr)
        lr_out.append(normalise(lr, lo, hi))
        # the target on the counts scale of its LR map: g * truth + background
        hr_out.append(normalise(g * hr + background_counts, lo, hi))
        doses.append(dose)
        reproj.append(is_rp)
    return PatchPairs(
        lr=np.stack(lr_out)[:, None],
        hr=np.stack(hr_out)[:, None],
        lr_pixel_size_nm=probe.pixel_size_nm * s,
        hr_pixel_size_nm=probe.pixel_size_nm,
        metadata={
            "source": "application_flyscan",
            "normalisation": "lr_minmax",
            "step_px": s,
            "fast_axis": fast_axis,
            "counts_range": [lo_c, hi_c],
            "background_counts": float(background_counts),
            "readout_sigma_counts": float(readout_sigma_counts),
            "reprojection_fraction": float(reprojection_fraction),
            "hf_noise_gain": float(hf_noise_gain),
            "seed": int(seed),
            "mean_counts": doses,
            "reprojection_noise": reproj,
        },
    )


def concat_pairs(parts: list[PatchPairs]) -> PatchPairs:
    """Stack pair sets with the same patch shapes and pixel sizes (a training mix)."""
    if not parts:
        raise ValueError("parts must be non-empty")
    first = parts[0]
    for p in parts[1:]:
        if p.lr.shape[1:] != first.lr.shape[1:] or p.hr.shape[1:] != first.hr.shape[1:]:
            raise ValueError(
                f"pair sets differ in patch shape: {p.lr.shape[1:]} vs {first.lr.shape[1:]}"
            )
    return PatchPairs(
        lr=np.concatenate([p.lr for p in parts]),
        hr=np.concatenate([p.hr for p in parts]),
        lr_pixel_size_nm=first.lr_pixel_size_nm,
        hr_pixel_size_nm=first.hr_pixel_size_nm,
        metadata={"source": "mix", "parts": [p.metadata.get("source") for p in parts],
                  "counts": [len(p) for p in parts]},
    )


def training_pairs(
    probe: ProbeIntensity,
    natural_pairs: PatchPairs | None = None,
    natural_fraction: float = 0.5,
    n_samples: int = 300,
    size_px: int = 256,
    n_elements: int = 2,
    seed: int = 1,
    validation_seed: int = 2,
    projected_fraction: float = 0.5,
    step_px: int = 4,
    counts_range: tuple[float, float] = DEFAULT_COUNTS_RANGE,
    background_counts: float = DEFAULT_BACKGROUND_COUNTS,
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS,
    reprojection_fraction: float = 0.0,
    hf_noise_gain: float = DEFAULT_HF_NOISE_GAIN,
    fast_axis: FastAxis = "x",
    n_volumes: int = 0,
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME,
    volume_size_vox: int | None = None,
) -> PatchPairs:
    """The application-scale training set (one call for a pipeline node).

    ``n_samples`` microstructures (:func:`~xrf_sr_kedro.physics.microstructures.
    microstructure_maps`, ``seed``; ``validation_seed`` is refused) and
    ``n_volumes`` projected 3-D particle packings (:func:`~xrf_sr_kedro.physics.
    particle_packings.packing_projection_maps`, ``angles_per_volume`` projections
    each, same ``seed`` and guard; 0: none) made into pairs by
    :func:`make_application_pairs`, mixed with a random subset of
    ``natural_pairs`` so that natural pairs are ``natural_fraction`` of the result
    (``natural_pairs=None`` or ``natural_fraction=0``: simulated maps only).  The
    natural pairs must have the same patch shape (``size_px = lr_patch_px *
    step_px``).
    """
    from xrf_sr_kedro.physics.microstructures import microstructure_maps

    if not 0 <= natural_fraction < 1:
        raise ValueError(f"natural_fraction must be in [0, 1), got {natural_fraction!r}")
    maps = microstructure_maps(
        n_samples, size_px, probe.pixel_size_nm, n_elements, seed,
        forbidden_seeds=[validation_seed], projected_fraction=projected_fraction,
    ) if n_samples > 0 else []
    if n_volumes > 0:
        maps += packing_projection_maps(
            n_volumes, angles_per_volume, size_px, volume_size_vox, probe.pixel_size_nm,
            n_elements, seed, forbidden_seeds=[validation_seed],
        )
    mic = make_application_pairs(
        maps, probe, step_px, counts_range, background_counts, readout_sigma_counts,
        reprojection_fraction, hf_noise_gain, fast_axis, seed,
    )
    if natural_pairs is None or natural_fraction == 0:
        return mic
    n_nat = min(len(natural_pairs), int(round(len(mic) * natural_fraction / (1 - natural_fraction))))
    pick = np.sort(np.random.default_rng([int(seed), 0x4E]).permutation(len(natural_pairs))[:n_nat])
    nat = PatchPairs(natural_pairs.lr[pick], natural_pairs.hr[pick],
                     natural_pairs.lr_pixel_size_nm, natural_pairs.hr_pixel_size_nm,
                     natural_pairs.metadata)
    logger.info("training mix: %d simulated + %d natural pairs", len(mic), n_nat)
    return concat_pairs([mic, nat])


@dataclass(frozen=True)
class ApplicationPairsSettings:
    """The pretraining set at the application scale (``simulation.application_pairs``;
    docs/models.md, the recommended recipe).

    ``n_samples`` procedural microstructures of ``size_px``^2 fine pixels (one HR
    patch; ``size_px / step_px`` LR pixels, the natural pairs' ``lr_patch_px``) and
    ``n_volumes`` random 3-D particle packings projected at ``angles_per_volume``
    random angles (``volume_size_vox`` voxels across, default 1.5 ``size_px``),
    fly-scanned at doses log-uniform in ``counts_range`` (counts per point),
    ``reprojection_fraction`` of them with reprojection-like noise, mixed with
    natural pairs so that those are ``natural_fraction`` of the set.
    ``validation_seed`` (the validation region's) is refused for training.
    """

    natural_fraction: float = 0.5
    n_samples: int = 300
    size_px: int = 128
    n_elements: int = 2
    seed: int = 1
    validation_seed: int = 2
    projected_fraction: float = 0.5
    step_px: int = 4
    counts_range: tuple[float, float] = DEFAULT_COUNTS_RANGE
    background_counts: float = DEFAULT_BACKGROUND_COUNTS
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS
    reprojection_fraction: float = 0.5
    hf_noise_gain: float = DEFAULT_HF_NOISE_GAIN
    fast_axis: FastAxis = "x"
    n_volumes: int = 0
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME
    volume_size_vox: int | None = None


def application_training_pairs(
    settings: ApplicationPairsSettings, probe: ProbeIntensity, natural_pairs: PatchPairs | None
) -> PatchPairs:
    """:func:`training_pairs` with ``settings``: the one call of the pretraining's
    simulation node and of fine-tuning's ``fine_tuning.data: application_pairs``."""
    s = settings
    return training_pairs(
        probe, natural_pairs, s.natural_fraction, s.n_samples, s.size_px, s.n_elements,
        s.seed, s.validation_seed, s.projected_fraction, s.step_px, tuple(s.counts_range),
        s.background_counts, s.readout_sigma_counts, s.reprojection_fraction,
        s.hf_noise_gain, s.fast_axis, s.n_volumes, s.angles_per_volume, s.volume_size_vox,
    )


def validation_region_pairs(
    probe: ProbeIntensity,
    n_samples: int = 12,
    size_px: int = 256,
    seed: int = 2,
    mean_counts: float = 150.0,
    background_counts: float = DEFAULT_BACKGROUND_COUNTS,
    readout_sigma_counts: float = DEFAULT_READOUT_SIGMA_COUNTS,
    projected_fraction: float = 0.5,
    step_px: int = 4,
    fast_axis: FastAxis = "x",
    source: str = "microstructures",
    angles_per_volume: int = DEFAULT_ANGLES_PER_VOLUME,
    volume_size_vox: int | None = None,
) -> PatchPairs:
    """The simulated validation region that picks checkpoints and settings.

    Maps with the held-out ``seed`` at the application dose (one dose,
    ``mean_counts``); never the evaluation phantom.  ``source="microstructures"``:
    ``n_samples`` microstructures of ``size_px``; ``"particle_packings"``:
    ``n_samples`` 3-D packings, ``angles_per_volume`` projections each cropped to
    ``size_px`` (:func:`~xrf_sr_kedro.physics.particle_packings.packing_projection_maps`).
    """
    if source == "particle_packings":
    
        maps = packing_projection_maps(n_samples, angles_per_volume, size_px, volume_size_vox,
                                       probe.pixel_size_nm, 2, seed)
    elif source == "microstructures":
        from xrf_sr_kedro.physics.microstructures import microstructure_maps

        maps = microstructure_maps(n_samples, size_px, probe.pixel_size_nm, 2, seed,
                                   projected_fraction=projected_fraction)
    else:
        raise ValueError(f"source must be 'microstructures' or 'particle_packings', got {source!r}")
    return make_application_pairs(
        maps, probe, step_px, (mean_counts, mean_counts), background_counts,
        readout_sigma_counts, 0.0, 1.0, fast_axis, seed + 1000,
    )
