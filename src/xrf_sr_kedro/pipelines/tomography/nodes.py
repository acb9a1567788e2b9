"""Tomography nodes: reconstruction, angular upsampling by reprojection, and figures.

A volume is a :class:`~xrf_sr_kedro.types.Volume` in memory or, above the
streaming size, a lazy :class:`~xrf_sr_kedro.io.chunked.ChunkedVolume` (the
streamed reconstruction, or a large file the catalog loads lazily): every node
that takes a volume takes either (docs/scale.md).  Likewise the enhanced
reprojections: an ``XRFStack`` or, above ``enhancement.engine.streaming_min_pixels``,
a lazy :class:`~xrf_sr_kedro.io.chunked.ChunkedStack` that the reconstruction reads
by row slabs.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from xrf_sr_kedro.inference.stack import EngineSettings, enhance_or_stream
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume
from xrf_sr_kedro.io.volume_files import element_arrays
from xrf_sr_kedro.metrics.plots import plot_orthogonal_slices
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.tomo.recon import ReconSettings, reconstruct_stack
from xrf_sr_kedro.tomo.reproject import even_angles_deg, project_volume
from xrf_sr_kedro.types import ProbeIntensity, Volume, XRFStack

logger = logging.getLogger(__name__)


ReconParams = validated(ReconSettings)
EngineParams = validated(EngineSettings)


@validated
class ReprojectionParams:
    """Angles of the reprojected stack: ``n_angles`` evenly from ``start_deg`` to ``stop_deg``."""

    n_angles: int = 270
    start_deg: float = -90.0
    stop_deg: float = 90.0


AnyVolume = Volume | ChunkedVolume
AnyStack = XRFStack | ChunkedStack


def reconstruct_volume(stack: AnyStack, recon: ReconParams) -> AnyVolume:
    """Reconstruct every element of a projection stack (voxel = projection pixel).

    Above ``recon.streaming_min_voxels`` (or with ``streaming: on``) slab by slab
    into a chunked file: a lazy ``ChunkedVolume`` the catalog moves into place.  A
    lazy ``ChunkedStack`` (large enhanced reprojections) is read by row slabs.
    """
    return reconstruct_stack(stack, **asdict(recon))


def _reproject(volume: AnyVolume, angles_deg: np.ndarray, kind: str) -> XRFStack:
    return project_volume(
        volume, angles_deg, clip_negative=True,
        metadata={"kind": kind, "n_angles": int(len(angles_deg)),
                  "reconstruction": volume.metadata},
    )


def reproject_volume(volume: AnyVolume, reprojection: ReprojectionParams) -> XRFStack:
    """Project a reconstruction at ``reprojection.n_angles`` new angles (angular upsampling,
    e.g. 91 -> 270); the stack records the real count (``metadata["n_angles"]``)."""
    angles = even_angles_deg(reprojection.n_angles, reprojection.start_deg, reprojection.stop_deg)
    return _reproject(volume, angles, f"reprojection at {reprojection.n_angles} angles")


def reproject_to_measured_angles(volume: AnyVolume, measured: XRFStack) -> XRFStack:
    """Project a reconstruction at the angles of a measured stack."""
    return _reproject(volume, measured.angles_deg, f"reprojection at {measured.n_frames} measured angles")


def enhance_reprojections(
    reprojections: XRFStack,
    checkpoint: dict[str, Any],
    probe_intensity: ProbeIntensity,
    engine: EngineParams,
) -> AnyStack:
    """Enhance the reprojected maps with the fine-tuned network (total signal conserved):
    in memory, or above ``engine.streaming_min_pixels`` slab by slab into a lazy stack
    the catalog moves into place."""
    return enhance_or_stream(reprojections, checkpoint, probe_intensity, engine)


def every_second_projection(stack: XRFStack) -> XRFStack:
    """Keep projections 0, 2, 4, ... (45 of 91): the limited-projection experiment."""
    half = stack.select_frames(slice(0, None, 2))
    return replace(half, metadata={**stack.metadata, "kind": "every second projection"})


def slice_figures(**volumes: AnyVolume) -> dict[str, Figure]:
    """Central slices in three directions of each volume, one figure per volume and element,
    titled with the real number of projections reconstructed, coloured in the volume's unit.

    A lazy volume is read only at the three planes shown.
    """
    figures = {}
    for name, volume in volumes.items():
        n = volume.metadata.get("n_projections")
        angles = f", {n} projections" if n else ""
        for element, data in element_arrays(volume):
            figures[f"{name}_{element}.png"] = plot_orthogonal_slices(
                data, volume.voxel_size_nm, title=f"{name.replace('_', ' ')}: {element}{angles}",
                units=volume.units,
            )
    return figures


def volumes_for_fiji(
    raw_volume: AnyVolume, enhanced_volume: AnyVolume, limited_projection_volume: AnyVolume
) -> tuple[AnyVolume, AnyVolume, AnyVolume]:
    """The three reconstructions, handed to the catalog's ImageJ TIFF stacks (page by page)."""
    return raw_volume, enhanced_volume, limited_projection_volume


def volume_slices(
    raw_volume: AnyVolume,
    enhanced_volume: AnyVolume,
    limited_projection_volume: AnyVolume,
) -> dict[str, Figure]:
    """PNG slices of the three reconstructions the user looks at."""
    return slice_figures(
        raw_volume=raw_volume,
        enhanced_volume=enhanced_volume,
        limited_projection_volume=limited_projection_volume,
    )
