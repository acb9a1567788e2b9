"""3-D controls and independent split halves, all on one shared slab of rows.

Every 3-D row of the 270-reprojection experiment is computed on the same inputs as the
network (the measured ``raw_xrf`` or the chain's ``raw_reprojections``) and scored on
the same slab of rows (``slab_nm``, nm from the top of the volume), so the rows are
comparable and the extra fine-grid reconstructions stay cheap:

* :func:`split_measured` - even / odd *measured* projections (disjoint frames) for the
  independent-chain split halves (each half then runs through the whole chain);
* :func:`bicubic_reprojections_volume` - the reprojections upsampled bicubically and
  reconstructed at the fine voxel size (the chain without a network);
* :func:`fine_stack_volume` - any fine stack (the measured maps enhanced directly)
  reconstructed on the slab;
* :func:`tv_deconvolution_volume` - each measured map TV-deconvolved through the fly-scan
  operator, reconstructed at the fine voxel size;
* :func:`tune_raw_reconstruction` / :func:`raw_reconstruction_sweep` - OSPML iterations
  and ``reg_par`` chosen on another simulated sample at the evaluation geometry (never the
  evaluation truth); the same sweep against the evaluation truth is the *oracle*, for the
  report only;
* :func:`slab_view` - a full volume cropped to the slab, or a slab volume labelled as such.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from xrf_sr_kedro.baselines import bicubic_upsample, trilinear_upsample, tv_deconvolution_sr
from xrf_sr_kedro.evaluation.scoring import MetricSettings, score_against_truth
from xrf_sr_kedro.evaluation.volumes import support_mask, truth_slab
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack, select_slab
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)

__all__ = [
    "VolumeSettings",
    "split_measured",
    "slab_stack",
    "slab_view",
    "bicubic_reprojections_volume",
    "fine_stack_volume",
    "tv_deconvolution_volume",
    "raw_reconstruction_sweep",
    "simulated_tuning_sample",
    "tune_raw_reconstruction",
    "best_raw_volume",
]


@dataclass(frozen=True)
class VolumeSettings:
    """The 3-D evaluation: the shared slab and the raw-reconstruction sweep.

    ``slab_nm``: ``[top, bottom]`` in nm from the top of the volume (``None``: every row);
    multiples of the measured pixel size.  ``n_iter`` / ``reg_par``: the OSPML sweep of
    ``raw_best_iterations``; ``criterion``: the score it minimises (an ``..._nm``
    resolution) or maximises (``psnr_db``, ``ssim``); ``seed_offset``: the tuning sample's
    seed is the evaluated sample's + this.
    """

    slab_nm: tuple[float, float] | None = None
    n_iter: tuple[int, ...] = (3, 5, 10)
    reg_par: tuple[float, ...] = (1.5, 15.0)
    criterion: str = "fsc_vs_truth_nm"
    seed_offset: int = 2000


def split_measured(stack: XRFStack) -> tuple[XRFStack, XRFStack]:
    """Even- and odd-numbered measured projections: disjoint frames, independent noise.

    Each half records the indices of its frames in the input (``metadata["frames"]``).
    """
    halves = []
    for start, name in ((0, "even"), (1, "odd")):
        frames = list(range(start, stack.n_frames, 2))
        half = stack.select_frames(frames)
        halves.append(replace(half, metadata={**stack.metadata, "kind": f"{name} measured projections",
                                              "frames": frames}))
    return halves[0], halves[1]


def slab_stack(stack: XRFStack, slab_nm: tuple[float, float] | None) -> XRFStack:
    """The rows of ``stack`` in the slab (``metadata["slab_nm"]`` records it)."""
    return select_slab(stack, None if slab_nm is None else tuple(slab_nm))


def slab_view(volume: Volume, slab_nm: tuple[float, float] | None, height_nm: float) -> Volume:
    """``volume`` on the slab: a full-height volume is cropped, a volume that already has
    the slab's height is labelled with it (``metadata["slab_nm"]``)."""
    if slab_nm is None:
        return volume
    top, bottom = (float(v) for v in slab_nm)
    own_nm = volume.data.shape[1] * volume.voxel_size_nm
    meta = {**volume.metadata, "slab_nm": [top, bottom]}
    if abs(own_nm - (bottom - top)) < 0.5 * volume.voxel_size_nm:
        return replace(volume, metadata=meta)
    if abs(own_nm - height_nm) < 0.5 * volume.voxel_size_nm:
        start, stop = (int(round(v / volume.voxel_size_nm)) for v in (top, bottom))
        return replace(volume, data=volume.data[:, start:stop], metadata=meta)
    raise ValueError(
        f"a volume of height {own_nm:g} nm is neither the full {height_nm:g} nm nor the slab "
        f"evaluation.volumes.slab_nm={[top, bottom]}; re-run the tomography pipeline with this slab"
    )


def _reconstruct(stack: XRFStack, recon: ReconSettings, element: str, kind: str) -> Volume:
    settings = {**asdict(recon), "elements": [element], "slab_nm": None}
    volume = reconstruct_stack(replace(stack, metadata={**stack.metadata, "kind": kind}), **settings)
    return replace(volume, metadata={**volume.metadata, "slab_nm": stack.metadata.get("slab_nm")})


def _fine_stack(stack: XRFStack, data: np.ndarray, scale: int, kind: str) -> XRFStack:
    """Fine maps as a stack; clipped at 0 (bicubic overshoot; OSPML needs counts >= 0)."""
    return replace(stack, data=np.ascontiguousarray(np.clip(data, 0, None), dtype=np.float32),
                   pixel_size_nm=stack.pixel_size_nm / scale,
                   metadata={**stack.metadata, "kind": kind})


def bicubic_reprojections_volume(
    reprojections: XRFStack, slab_nm: tuple[float, float] | None, scale: int, element: str,
    recon: ReconSettings,
) -> Volume:
    """The chain without a network: reprojections (slab rows) upsampled bicubically by
    ``scale`` and reconstructed at the fine voxel size."""
    stack = slab_stack(reprojections.select_elements([element]), slab_nm)
    fine = np.stack([bicubic_upsample(m, scale) for m in stack.data[0]])[None]
    kind = "bicubic-upsampled reprojections"
    return _reconstruct(_fine_stack(stack, fine, scale, kind), recon, element, kind)


def fine_stack_volume(stack: XRFStack, slab_nm: tuple[float, float] | None, element: str,
                      recon: ReconSettings) -> Volume:
    """Reconstruct the slab rows of a (fine) stack, e.g. the measured maps enhanced directly."""
    stack = slab_stack(stack.select_elements([element]), slab_nm)
    return _reconstruct(stack, recon, element, stack.metadata.get("kind", "stack"))


def tv_deconvolution_volume(
    measured: XRFStack, probe_intensity: ProbeIntensity, weight: float, slab_nm: tuple[float, float] | None,
    scale: int, element: str, n_iter: int, fast_axis: str, recon: ReconSettings,
) -> Volume:
    """Each measured map (slab rows) TV-deconvolved through the fly-scan operator with
    ``weight`` (chosen on a disjoint region), reconstructed at the fine voxel size."""
    stack = slab_stack(measured.select_elements([element]), slab_nm)
    probe = resample_probe(probe_intensity, stack.pixel_size_nm / scale).intensity
    step = int(stack.metadata.get("step_px", scale))
    # one batched solve: every map independently, as a loop over maps would (bit for bit),
    # without a Python loop and an operator-norm estimate per map (1.4x faster)
    fine = tv_deconvolution_sr(np.clip(stack.data[0], 0, None), probe, step, weight, n_iter=n_iter,
                               fast_axis=fast_axis)[None]
    kind = f"TV-deconvolved measured projections (weight {weight:g})"
    return _reconstruct(_fine_stack(stack, fine, scale, kind), recon, element, kind)


def raw_reconstruction_sweep(
    measured: XRFStack, truth: np.ndarray, truth_voxel_nm: float, element: str, recon: ReconSettings,
    volumes: VolumeSettings, metrics: MetricSettings, mask: np.ndarray | None = None,
) -> pd.DataFrame:
    """Score OSPML at every ``(n_iter, reg_par)`` of the sweep against ``truth``.

    ``measured`` and ``truth`` cover the same rows (the slab); the reconstruction is
    upsampled trilinearly onto the truth's grid and scored as every 3-D row.
    """
    rows = []
    for reg_par in volumes.reg_par:
        for n_iter in volumes.n_iter:
            settings = replace(recon, n_iter=int(n_iter), reg_par=float(reg_par))
            data = _reconstruct(measured, settings, element, "sweep").data[0]
            factor = int(round(measured.pixel_size_nm / truth_voxel_nm))
            estimate = trilinear_upsample(data, factor)[: truth.shape[0]]
            ref = truth[: estimate.shape[0]]
            values, _ = score_against_truth(estimate, ref, truth_voxel_nm, metrics,
                                            None if mask is None else mask[: ref.shape[0]])
            rows.append({"n_iter": int(n_iter), "reg_par": float(reg_par), **values})
    return pd.DataFrame(rows)


def _best(table: pd.DataFrame, criterion: str) -> pd.Series:
    if criterion not in table:
        raise ValueError(f"evaluation.volumes.criterion {criterion!r} is not one of {list(table.columns[2:])}")
    column = table[criterion].astype(float)
    index = column.idxmin() if criterion.endswith("_nm") else column.idxmax()
    return table.loc[index]


def simulated_tuning_sample(
    truth: Volume, measured: XRFStack, probe_intensity: ProbeIntensity, element: str,
    slab_nm: tuple[float, float] | None, seed_offset: int,
) -> tuple[XRFStack, np.ndarray]:
    """Another sample from the simulator (seed + ``seed_offset``) measured like ``measured``
    (same angles, scan step, noise model from its metadata): its slab's fly-scanned
    projections and its truth slab.  Only the evaluated truth's size, voxel size and seed
    are read."""
    meta = measured.metadata
    missing = [k for k in ("step_px", "mean_counts", "background_counts", "readout_sigma_counts") if k not in meta]
    if missing:
        raise ValueError(f"raw_xrf has no simulated noise model ({missing} missing from its metadata): "
                         "raw_best_iterations needs the simulator's geometry")
    seed = int(truth.metadata.get("seed", 0)) + seed_offset
    sample = battery_phantom(truth.data.shape[-1], truth.voxel_size_nm, seed=seed)
    hr = sample.data[sample.elements.index(element)]
    if slab_nm is not None:
        hr = hr[int(round(slab_nm[0] / truth.voxel_size_nm)): int(round(slab_nm[1] / truth.voxel_size_nm))]
    ref = reproject(hr, measured.angles_deg, progress=False) * truth.voxel_size_nm
    probe = resample_probe(probe_intensity, truth.voxel_size_nm)
    counts = meta["mean_counts"]
    mean = counts.get(element, next(iter(counts.values()))) if isinstance(counts, dict) else counts
    lr = simulate_counts(
        np.clip(flyscan(ref, probe.intensity, int(meta["step_px"]), fast_axis=meta.get("fast_axis", "x")), 0, None),
        mean_counts=float(mean or 200.0), background_counts=float(meta["background_counts"]),
        readout_sigma_counts=float(meta["readout_sigma_counts"]), seed=seed,
    )
    stack = XRFStack(np.clip(lr, 0, None)[None].astype(np.float32), measured.pixel_size_nm, (element,),
                     np.asarray(measured.angles_deg), metadata={"kind": f"tuning sample (seed {seed})"})
    logger.info("raw OSPML tuning on a simulated sample (seed %d), %d projections", seed, stack.n_frames)
    return stack, hr


def tune_raw_reconstruction(
    truth: Volume, measured: XRFStack, probe_intensity: ProbeIntensity, element: str,
    recon: ReconSettings, volumes: VolumeSettings, metrics: MetricSettings,
) -> tuple[dict[str, float], pd.DataFrame]:
    """``n_iter`` and ``reg_par`` of ``raw_best_iterations``, chosen on another simulated
    sample (:func:`simulated_tuning_sample`), and the sweep table (``region`` column)."""
    stack, hr = simulated_tuning_sample(truth, measured, probe_intensity, element, volumes.slab_nm,
                                        volumes.seed_offset)
    table = raw_reconstruction_sweep(stack, hr, truth.voxel_size_nm, element, recon, volumes, metrics,
                                     support_mask(truth, hr.shape))
    best = _best(table, volumes.criterion)
    logger.info("raw OSPML chosen on the tuning sample: n_iter %d, reg_par %g (%s %.4g)",
                best["n_iter"], best["reg_par"], volumes.criterion, best[volumes.criterion])
    return {"n_iter": int(best["n_iter"]), "reg_par": float(best["reg_par"])}, table.assign(region="tuning sample")


def best_raw_volume(measured: XRFStack, best: dict[str, float], element: str, recon: ReconSettings,
                    slab_nm: tuple[float, float] | None) -> Volume:
    """Raw OSPML of the slab with the tuned ``n_iter`` and ``reg_par``."""
    settings = replace(recon, n_iter=int(best["n_iter"]), reg_par=float(best["reg_par"]))
    return _reconstruct(slab_stack(measured, slab_nm), settings, element,
                        f"raw OSPML, {best['n_iter']} iterations, reg_par {best['reg_par']:g}")


def oracle_raw_sweep(
    truth: Volume, measured: XRFStack, element: str, recon: ReconSettings, volumes: VolumeSettings,
    metrics: MetricSettings,
) -> pd.DataFrame:
    """The same sweep scored against the *evaluation truth*: an oracle, shown in the report
    beside the tuned choice and never used to choose anything."""
    stack = slab_stack(measured.select_elements([element]), volumes.slab_nm)
    probe_volume = Volume(np.zeros((1, stack.shape_hw[0], 1, 1)), stack.pixel_size_nm, (element,),
                          metadata={"slab_nm": stack.metadata.get("slab_nm")})
    ref = truth_slab(truth, probe_volume, element)
    table = raw_reconstruction_sweep(stack, ref, truth.voxel_size_nm, element, recon, volumes, metrics,
                                     support_mask(truth, ref.shape))
    return table.assign(region="oracle: the evaluation truth")
