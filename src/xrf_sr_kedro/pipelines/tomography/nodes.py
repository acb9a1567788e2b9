"""Tomography nodes: reconstruction, angular upsampling by reprojection, and figures."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from xrf_sr_kedro.metrics.plots import plot_orthogonal_slices
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.iterative import reconstruct
from xrf_sr_kedro.tomo.centre import center_metadata, center_offset_px_for
from xrf_sr_kedro.tomo.reproject import even_angles_deg, reproject_volume_stack
from xrf_sr_kedro.types import Volume, XRFStack

logger = logging.getLogger(__name__)


@validated
class ReconParams:
    """Reconstruction settings (TomoPy's ``ospml_quad`` by default).

    ``elements`` selects the element lines to reconstruct (``None``: all);
    ``slab_nm`` restricts the reconstruction to detector rows between two heights
    (nm from the top of the projections) to bound the time on small machines;
    ``None`` reconstructs every row.
    """

    elements: list[str] | None = None

    algorithm: Literal["fbp", "sirt", "osem", "ospml_quad"] = "ospml_quad"
    n_iter: int = 10
    n_subsets: int = 10
    reg_par: float = 0.01
    center_offset_px: float = 0.0
    slice_batch: int = 32
    slab_nm: tuple[float, float] | None = None


@validated
class ReprojectionParams:
    """Angles of the reprojected stack: ``n_angles`` evenly from ``start_deg`` to ``stop_deg``."""

    n_angles: int = 270
    start_deg: float = -90.0
    stop_deg: float = 90.0


def _slab(stack: XRFStack, slab_nm: tuple[float, float] | None) -> XRFStack:
    if slab_nm is None:
        return stack
    start, stop = (int(round(v / stack.pixel_size_nm)) for v in slab_nm)
    rows = stack.shape_hw[0]
    if not 0 <= start < stop <= rows:
        raise ValueError(
            f"parameter tomography slab_nm={list(slab_nm)} selects rows {start}:{stop}, outside "
            f"the {rows} rows ({rows * stack.pixel_size_nm:.0f} nm) of the projections"
        )
    return replace(
        stack, data=stack.data[:, :, start:stop], metadata={**stack.metadata, "slab_nm": list(slab_nm)}
    )


def reconstruct_stack(stack: XRFStack, recon: ReconParams) -> Volume:
    """Reconstruct every element of a projection stack (voxel = projection pixel)."""
    if stack.angles_deg is None:
        raise ValueError(
            "cannot reconstruct: the stack has no rotation angles (exchange/theta); "
            "it holds plain maps, not a tomographic series"
        )
    if recon.elements:
        stack = stack.select_elements(recon.elements)
    stack = _slab(stack, recon.slab_nm)
    # the centre travels in the stack's metadata (nm); the parameter is for measured stacks
    offset_px = center_offset_px_for(stack.metadata, stack.pixel_size_nm, recon.center_offset_px)
    volumes = []
    for element, projections in zip(stack.elements, stack.data):
        logger.info(
            "Reconstructing %s: %d projections of %dx%d px at %.2f nm (%s, %d iterations)",
            element, *projections.shape, stack.pixel_size_nm, recon.algorithm, recon.n_iter,
        )
        volumes.append(
            reconstruct(
                projections,
                stack.angles_deg,
                algorithm=recon.algorithm,
                n_iter=recon.n_iter,
                n_subsets=recon.n_subsets,
                reg_par=recon.reg_par,
                center_offset_px=offset_px,
                slice_batch=recon.slice_batch,
            )
            / stack.pixel_size_nm  # line integrals (signal x nm) back to signal per voxel
        )
    return Volume(
        data=np.stack(volumes),
        voxel_size_nm=stack.pixel_size_nm,
        elements=stack.elements,
        units=stack.units,
        metadata={
            "algorithm": recon.algorithm,
            "n_iter": recon.n_iter,
            "n_subsets": recon.n_subsets,
            "reg_par": recon.reg_par,
            "n_projections": stack.n_frames,
            "angles_deg_min": float(stack.angles_deg.min()),
            "angles_deg_max": float(stack.angles_deg.max()),
            "source": stack.metadata.get("kind", ""),
            "slab_nm": None if recon.slab_nm is None else list(recon.slab_nm),
            **center_metadata(
                offset_px, stack.pixel_size_nm, stack.metadata.get("center_method", "parameter")
            ),
        },
    )


def _reproject(volume: Volume, angles_deg: np.ndarray, kind: str) -> XRFStack:
    return reproject_volume_stack(volume, angles_deg, kind)  # carries the rotation centre


def reproject_volume(volume: Volume, reprojection: ReprojectionParams) -> XRFStack:
    """Project a reconstruction at new angles (angular upsampling, 91 -> 270)."""
    angles = even_angles_deg(reprojection.n_angles, reprojection.start_deg, reprojection.stop_deg)
    return _reproject(volume, angles, f"reprojection at {reprojection.n_angles} angles")


def reproject_to_measured_angles(volume: Volume, measured: XRFStack) -> XRFStack:
    """Project a reconstruction at the angles of a measured stack."""
    return _reproject(volume, measured.angles_deg, f"reprojection at {measured.n_frames} measured angles")


def every_second_projection(stack: XRFStack) -> XRFStack:
    """Keep projections 0, 2, 4, ... (45 of 91): the limited-projection experiment."""
    half = stack.select_frames(slice(0, None, 2))
    return replace(half, metadata={**stack.metadata, "kind": "every second projection"})


def slice_figures(**volumes: Volume) -> dict[str, Figure]:
    """Central slices in three directions of each volume, one figure per volume and element."""
    figures = {}
    for name, volume in volumes.items():
        for element, data in zip(volume.elements, volume.data):
            figures[f"{name}_{element}.png"] = plot_orthogonal_slices(
                data, volume.voxel_size_nm, title=f"{name.replace('_', ' ')}: {element}"
            )
    return figures


def volumes_for_fiji(
    raw_volume: Volume, enhanced_volume: Volume, limited_projection_volume: Volume
) -> tuple[Volume, Volume, Volume]:
    """The three reconstructions, handed to the catalog's ImageJ TIFF stacks."""
    return raw_volume, enhanced_volume, limited_projection_volume


def volume_slices(
    raw_volume: Volume,
    enhanced_volume: Volume,
    limited_projection_volume: Volume,
) -> dict[str, Figure]:
    """PNG slices of the three reconstructions the user looks at."""
    return slice_figures(
        raw_volume=raw_volume,
        enhanced_volume=enhanced_volume,
        limited_projection_volume=limited_projection_volume,
    )
