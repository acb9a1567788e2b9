"""Reprojection of a reconstructed volume at new angles (angular upsampling)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from xrf_sr_kedro.progress import progress as _progress

from xrf_sr_kedro.device import default_device
from xrf_sr_kedro.io.chunked import ChunkedVolume
from xrf_sr_kedro.types import Volume, XRFStack
from xrf_sr_kedro.validation import positive_int

from .angles import as_angles_deg
from .centre import center_metadata, center_offset_px_for
from .projector import ParallelBeamProjector

__all__ = ["reproject", "even_angles_deg", "project_volume", "reproject_volume_stack"]


def even_angles_deg(n: int, start: float = -90.0, stop: float = 90.0) -> np.ndarray:
    """``n`` evenly spaced angles in degrees from ``start`` to ``stop``, both included.

    The paper's 91 projections every 2 degrees from -90 to 90 include both ends
    (``even_angles_deg(91)``), and its 270 reprojections are spread the same way
    (step 180/269 degrees).  The two end angles are the same line set mirrored,
    which costs one redundant projection and keeps the measured ends.
    """
    n = positive_int("n", n)
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise ValueError(f"start and stop must be finite, got {start!r}, {stop!r}")
    if n == 1:
        return np.array([float(start)])
    return np.linspace(float(start), float(stop), int(n), endpoint=True)


def reproject(
    volume: np.ndarray,
    angles_deg: Any,
    n_det: int | None = None,
    slice_batch: int = 32,
    device: str | torch.device | None = None,
    center_offset_px: float = 0.0,
    progress: bool = True,
) -> np.ndarray:
    """Project a volume at ``angles_deg``; projections in Data Exchange order.

    Parameters
    ----------
    volume : ndarray, shape (n_slices, N, N)
        Slices along the rotation axis (as returned by ``reconstruct``).
    angles_deg : array_like, shape (n_angles,)
        Angles in degrees (convention in :mod:`.projector`).
    n_det : int, optional
        Detector pixels (default ``N``).
    slice_batch : int
        Slices projected together; bounds memory.
    device : optional
        Default ``cuda`` if available else ``cpu``.
    center_offset_px : float
        Rotation axis offset from the detector centre, pixels.

    Returns
    -------
    ndarray, shape (n_angles, n_slices, n_det), float32
    """
    vol = np.asarray(volume)
    if vol.ndim != 3 or vol.shape[1] != vol.shape[2]:
        raise ValueError(f"volume must have shape (n_slices, N, N), got {vol.shape}")
    slice_batch = positive_int("slice_batch", slice_batch)
    angles = as_angles_deg(angles_deg)
    n_slices, n = vol.shape[0], vol.shape[1]
    proj = ParallelBeamProjector(
        n, angles, n_det=n_det, center_offset_px=center_offset_px,
        device=device if device is not None else default_device(),
    )
    out = np.empty((angles.shape[0], n_slices, proj.n_det), dtype=np.float32)
    for s0 in _progress(
        range(0, n_slices, int(slice_batch)), "reproject", unit="batch", enabled=progress,
        quiet=True,
    ):
        s1 = min(s0 + int(slice_batch), n_slices)
        batch = torch.from_numpy(np.ascontiguousarray(vol[s0:s1], dtype=np.float32))
        out[:, s0:s1, :] = proj.forward(batch).cpu().numpy().transpose(1, 0, 2)
    return out


def project_volume(
    volume: Volume | ChunkedVolume,
    angles_deg: Any,
    *,
    units: str | None = None,
    metadata: dict[str, Any] | None = None,
    clip_negative: bool = False,
) -> XRFStack:
    """Parallel-beam projections of every element of ``volume``, in Data Exchange order.

    The one projection call of the pipelines: truth projections of the simulated
    phantom and reprojections of a reconstruction both come from here.

    Parameters
    ----------
    volume : Volume or ChunkedVolume
        Element volumes ``(n_elements, n_slices, N, N)`` with voxels of
        ``volume.voxel_size_nm``; a lazy volume file is read slab by slab
        (:func:`.slabs.project_slabs`), the projections are returned in memory.
    angles_deg : array_like, shape (n_angles,)
        Projection angles in degrees.
    units : str, optional
        Units of the projections (default ``volume.units``).
    metadata : dict, optional
        Metadata of the returned stack.
    clip_negative : bool
        Clip negative line integrals (projector round-off of a reconstruction) to 0.

    Returns
    -------
    XRFStack
        Line integrals in signal x nm (voxel sums times ``voxel_size_nm``), pixel
        size ``volume.voxel_size_nm``, ``angles_deg`` as given.
    """
    angles = as_angles_deg(angles_deg)
    # a reconstruction carries its rotation centre (tomo.centre): project with it, so the
    # projections sit where the measured ones did, and pass it on (in nm, so a finer grid
    # downstream scales it)
    offset = center_offset_px_for(volume.metadata, volume.voxel_size_nm)
    if isinstance(volume, ChunkedVolume):  # larger than memory: read slab by slab
        from .slabs import project_slabs

        data = project_slabs(volume, angles, center_offset_px=offset) * volume.voxel_size_nm
    else:
        data = np.stack(
            [reproject(v, angles, center_offset_px=offset) for v in volume.data]
        ) * volume.voxel_size_nm
    metadata = {} if metadata is None else dict(metadata)
    if "center_offset_nm" in volume.metadata:
        method = volume.metadata.get("center_method", "reconstruction parameter")
        metadata.update(center_metadata(offset, volume.voxel_size_nm, method))
    return XRFStack(
        data=np.clip(data, 0, None) if clip_negative else data,
        pixel_size_nm=volume.voxel_size_nm,
        elements=volume.elements,
        angles_deg=angles_deg,
        units=volume.units if units is None else units,
        metadata=metadata,
    )


def reproject_volume_stack(
    volume: Volume | ChunkedVolume, angles_deg: Any, kind: str = "reprojection"
) -> XRFStack:
    """Reprojections of a reconstruction (clipped at 0), carrying its rotation centre.

    The pipelines' reprojection: :func:`project_volume` with ``clip_negative=True``
    and metadata ``{"kind": kind, "reconstruction": volume.metadata}`` plus the
    centre keys of :func:`.centre.center_metadata`.
    """
    return project_volume(
        volume, angles_deg, clip_negative=True,
        metadata={"kind": kind, "reconstruction": volume.metadata},
    )
