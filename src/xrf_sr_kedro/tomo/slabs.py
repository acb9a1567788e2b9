"""Slab-streamed reconstruction and reprojection: peak memory independent of the slice count.

Slices of a parallel-beam stack are independent.  :func:`reconstruct_slabs` reads
the detector rows of one slab (``slab_slices`` rows, at every angle) from a
projection stack file, reconstructs them with
:func:`xrf_sr_kedro.tomo.recon.reconstruct`, and writes the slices into a
chunked volume file (:mod:`xrf_sr_kedro.io.chunked`) before the next slab is
taken.  :func:`reproject_slabs` is the same pattern from a volume file to a
stack file.  Slabs run in this process or on Dask workers
(:mod:`xrf_sr_kedro.parallel`); each task reads its own rows from the file (which
must then be on a file system the workers share) and only its result travels
back.  At most ``max_in_flight`` slab results are held at once.

Memory of one slab, float32: ``n_angles * slab_slices * W`` (projections) plus a
few times ``slab_slices * N * N`` (estimate and work arrays) plus the projector;
nothing grows with the number of slices.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from xrf_sr_kedro.io.chunked import (
    ChunkedStack,
    ChunkedVolume,
    open_stack,
    open_volume,
    slab_ranges,
    stack_writer,
    volume_writer,
)
from xrf_sr_kedro.parallel import ParallelConfig, client_for, map_slabs, task_setup
from xrf_sr_kedro.progress import progress as _progress

from .centre import center_metadata, center_offset_px_for
from .recon import DEFAULT_REG_PAR, reconstruct
from .reproject import reproject

logger = logging.getLogger(__name__)

__all__ = [
    "reconstruct_slabs", "reproject_slabs", "project_slabs", "DEFAULT_SLAB_SLICES",
    "PROJECT_SLAB_BYTES",
]

#: Slices per slab: 64 slices of 2048 x 2048 are 1 GiB of float32 per array.
DEFAULT_SLAB_SLICES = 64
#: At most this many bytes of volume a slab in :func:`project_slabs` (the pipeline's
#: reprojection, which has no slab parameter): 256 MiB, 21 slices of 1750 px.
PROJECT_SLAB_BYTES = 256 << 20


def _element_indices(names: tuple[str, ...], elements: Any, path: Any) -> list[int]:
    if elements is None:
        return list(range(len(names)))
    wanted = [elements] if isinstance(elements, str) else list(elements)
    missing = [e for e in wanted if e not in names]
    if missing:
        raise ValueError(f"{path}: elements {missing} not in the file; it has {list(names)}")
    return [names.index(e) for e in wanted]


def _check_on_one_row(stack: ChunkedStack, element: int, recon: dict[str, Any]) -> None:
    """Validate the parameters on one detector row before any heavy work or cluster start."""
    quick = {**recon, "n_iter": 0} if recon["algorithm"] != "fbp" else recon
    reconstruct(stack.read_rows(element, 0, 1), stack.angles_deg, progress=False, **quick)


def _reconstruct_slab(
    slab: tuple[int, int, int, int],
    *,
    stack: ChunkedStack,
    recon: dict[str, Any],
    scales: dict[int, float],
    device: str,
    threads: int,
    output_scale: float = 1.0,
    slab_progress: bool = False,
) -> np.ndarray:
    """One task: read rows ``r0:r1`` of element ``e`` and reconstruct them.

    With ``slab_progress`` the iterations of a slab that runs over the progress
    interval report with the time left (on a worker, forwarded to the driver's log).
    """
    _, e, r0, r1 = slab
    dev = task_setup(device, threads)
    rows = stack.read_rows(e, r0, r1)
    rec = reconstruct(rows, stack.angles_deg, device=dev, progress=slab_progress,
                      reg_scale=scales[e], **recon)
    if output_scale != 1.0:
        rec *= np.float32(output_scale)
    return rec


def _penalty_scales(stack: ChunkedStack, idx: list[int], ranges: list) -> dict[int, float]:
    """The mean of the positive values of each element, read slab by slab (tomo.recon)."""
    scales = {}
    for e in idx:
        total, count = 0.0, 0
        for r0, r1 in ranges:
            rows = stack.read_rows(e, r0, r1)
            total += float(rows[rows > 0].sum(dtype=np.float64))
            count += int((rows > 0).sum())
        scales[e] = total / count if count else 1.0
    return scales


def reconstruct_slabs(
    stack_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    elements: str | list[str] | None = None,
    algorithm: str = "ospml_quad",
    n_iter: int | None = None,
    n_subsets: int | None = None,
    reg_par: float = DEFAULT_REG_PAR,
    center_offset_px: float = 0.0,
    slice_batch: int = 32,
    clip_negative: bool = False,
    slab_slices: int = DEFAULT_SLAB_SLICES,
    parallel: ParallelConfig | None = None,
    client: Any = None,
    max_in_flight: int | None = None,
    progress: bool = True,
    output_scale: float = 1.0,
    units: str = "a.u.",
    metadata: dict[str, Any] | None = None,
) -> ChunkedVolume:
    """Reconstruct a projection stack file slab by slab into a chunked volume file.

    Parameters
    ----------
    stack_path : path-like
        Projection stack (``XRFStack`` HDF5 file, or Data Exchange with
        ``/exchange/theta`` in degrees); best written by
        :func:`xrf_sr_kedro.io.chunked.stack_writer` (chunked by rows).
    out_path : path-like
        Volume file to write (atomically, when every slab is done).
    elements : str or list of str, optional
        Element channels to reconstruct (default all).
    algorithm, n_iter, n_subsets, reg_par, center_offset_px, slice_batch, clip_negative
        As in :func:`xrf_sr_kedro.tomo.recon.reconstruct`; a stack whose metadata
        carries a centre (``center_offset_nm``, see :func:`.centre.center_offset_px_for`)
        is reconstructed with that one, and the volume's metadata records it.
    slab_slices : int
        Detector rows (volume slices) per slab: the unit of work and of memory.
    parallel : ParallelConfig, optional
        Where slabs run (default ``auto``); ignored when ``client`` is given.
    client : distributed.Client, optional
        An open client to reuse.
    max_in_flight : int, optional
        Slab results held at once (default twice the workers).
    progress : bool
        Report per-slab progress with the time left.
    output_scale : float
        Factor applied to every reconstructed slab before it is written (e.g.
        ``1 / pixel_size_nm`` for signal per voxel from line integrals).
    units : str
        Units recorded in the volume file.
    metadata : dict, optional
        Extra entries for the volume's metadata.

    Returns
    -------
    ChunkedVolume
        Lazy handle on ``out_path``: shape ``(n_elements, n_rows, W, W)``, voxel
        size the stack's pixel size (nm).
    """
    stack = open_stack(stack_path)
    idx = _element_indices(stack.elements, elements, stack_path)
    n_el, _, n_rows, width = len(idx), *stack.shape[1:]
    # a stack that carries its centre (prepared, reprojected, enhanced) wins over the
    # argument, scaled to this stack's pixel size, as in tomo.recon.reconstruct_stack
    center_offset_px = center_offset_px_for(stack.metadata, stack.pixel_size_nm, center_offset_px)
    ranges = slab_ranges(n_rows, slab_slices)
    slabs = [(k, e, r0, r1) for k, e in enumerate(idx) for r0, r1 in ranges]
    recon = dict(
        algorithm=algorithm, n_iter=n_iter, n_subsets=n_subsets, reg_par=reg_par,
        center_offset_px=center_offset_px, slice_batch=slice_batch, clip_negative=clip_negative,
    )
    _check_on_one_row(stack, idx[0], recon)
    # ospml_quad's reg_par is relative to each element's whole stack, not to a slab's rows
    ml = algorithm == "ospml_quad"
    scales = _penalty_scales(stack, idx, ranges) if ml else dict.fromkeys(idx, 1.0)
    cfg = parallel or ParallelConfig()
    meta = {
        **stack.metadata,
        "source": str(stack_path),
        "slab_slices": int(slab_slices),
        "reconstruction": {k: v for k, v in recon.items() if v is not None},
        "reg_scale": [scales[e] for e in idx],
        **center_metadata(
            center_offset_px, stack.pixel_size_nm, stack.metadata.get("center_method", "parameter")
        ),
        **(metadata or {}),
    }
    logger.info(
        "reconstructing %d element(s) x %d slices of %dx%d in %d slab(s) of %d slices",
        n_el, n_rows, width, width, len(slabs), slab_slices,
    )
    names = [stack.elements[e] for e in idx]
    with volume_writer(
        out_path, (n_el, n_rows, width, width), stack.pixel_size_nm, names,
        units=units, metadata=meta, chunk_slices=1,
    ) as out, client_for(cfg, len(slabs), client) as cl:

        def write(i: int, block: np.ndarray) -> None:
            k, _, r0, r1 = slabs[i]
            out[k, r0:r1] = block

        map_slabs(
            _reconstruct_slab, slabs, client=cl, on_result=write, max_in_flight=max_in_flight,
            desc=f"{algorithm} slabs", progress=progress, stack=stack, recon=recon, scales=scales,
            device=cfg.device, threads=cfg.threads_per_worker, output_scale=float(output_scale),
            slab_progress=progress,
        )
    return open_volume(out_path)


def _reproject_slab(
    slab: tuple[int, int, int, int],
    *,
    volume: ChunkedVolume,
    angles_deg: np.ndarray,
    n_det: int | None,
    center_offset_px: float,
    device: str,
    threads: int,
) -> np.ndarray:
    _, e, s0, s1 = slab
    dev = task_setup(device, threads)
    vol = volume.read(e, s0, s1)
    return reproject(
        vol, angles_deg, n_det=n_det, slice_batch=max(s1 - s0, 1), device=dev,
        center_offset_px=center_offset_px, progress=False,
    )


def project_slabs(
    volume: ChunkedVolume,
    angles_deg: Any,
    *,
    center_offset_px: float = 0.0,
    slab_slices: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Projections of every element of a volume file, read ``slab_slices`` slices at a time.

    The in-memory counterpart of :func:`reproject_slabs` for
    :func:`xrf_sr_kedro.tomo.reproject.project_volume`: the projections (``n_angles /
    N`` times the volume's size) are returned in memory, the volume is never whole.
    ``slab_slices`` defaults to :data:`DEFAULT_SLAB_SLICES`, fewer when a slab would
    exceed :data:`PROJECT_SLAB_BYTES` (wide slices: 1 slice of 7000 x 7000 px).

    Returns
    -------
    ndarray, shape (n_elements, n_angles, n_slices, N), float32
        Voxel sums along each ray (as :func:`xrf_sr_kedro.tomo.reproject.reproject`).
    """
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    n_el, n_slices, n, _ = volume.shape
    if slab_slices is None:
        slab_slices = max(1, min(DEFAULT_SLAB_SLICES, PROJECT_SLAB_BYTES // (4 * n * n)))
    out = np.empty((n_el, angles.shape[0], n_slices, n), dtype=np.float32)
    slabs = [(e, s0, s1) for e in range(n_el) for s0, s1 in slab_ranges(n_slices, slab_slices)]
    for e, s0, s1 in _progress(slabs, "reproject slabs", unit="slab", enabled=progress):
        out[e, :, s0:s1] = reproject(
            volume.read(e, s0, s1), angles, slice_batch=s1 - s0,
            center_offset_px=center_offset_px, progress=False,
        )
    return out


def reproject_slabs(
    volume_path: str | os.PathLike,
    out_path: str | os.PathLike,
    angles_deg: Any,
    *,
    elements: str | list[str] | None = None,
    n_det: int | None = None,
    center_offset_px: float = 0.0,
    slab_slices: int = DEFAULT_SLAB_SLICES,
    parallel: ParallelConfig | None = None,
    client: Any = None,
    max_in_flight: int | None = None,
    progress: bool = True,
) -> ChunkedStack:
    """Project a volume file at ``angles_deg`` slab by slab into a stack file.

    Parameters
    ----------
    volume_path : path-like
        A ``Volume`` file (e.g. from :func:`reconstruct_slabs`).
    out_path : path-like
        Projection stack file to write, chunked by rows.
    angles_deg : array_like
        Projection angles in degrees.
    n_det, center_offset_px
        As in :func:`xrf_sr_kedro.tomo.reproject.reproject`; a volume that carries its
        centre in its metadata is projected with it, and the stack carries it on.
    slab_slices, parallel, client, max_in_flight, progress
        As in :func:`reconstruct_slabs`.

    Returns
    -------
    ChunkedStack
        Lazy handle: shape ``(n_elements, n_angles, n_slices, n_det)``, pixel size
        the voxel size (nm).
    """
    volume = open_volume(volume_path)
    voxel_nm = volume.voxel_size_nm
    center_offset_px = center_offset_px_for(volume.metadata, voxel_nm, center_offset_px)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    idx = _element_indices(volume.elements, elements, volume_path)
    _, n_slices, n, _ = volume.shape
    det = n if n_det is None else int(n_det)
    ranges = slab_ranges(n_slices, slab_slices)
    slabs = [(k, e, s0, s1) for k, e in enumerate(idx) for s0, s1 in ranges]
    cfg = parallel or ParallelConfig()
    names = [volume.elements[e] for e in idx]
    meta = {
        **volume.metadata, "source": str(volume_path), "reprojected": True,
        **center_metadata(
            center_offset_px, voxel_nm, volume.metadata.get("center_method", "parameter")
        ),
    }
    with stack_writer(
        out_path, (len(idx), angles.shape[0], n_slices, det), volume.voxel_size_nm, names,
        angles, units=volume.units, metadata=meta, chunk_rows=min(slab_slices, n_slices),
    ) as out, client_for(cfg, len(slabs), client) as cl:

        def write(i: int, block: np.ndarray) -> None:
            k, _, s0, s1 = slabs[i]
            out[k, :, s0:s1] = block

        map_slabs(
            _reproject_slab, slabs, client=cl, on_result=write, max_in_flight=max_in_flight,
            desc="reproject slabs", progress=progress, volume=volume, angles_deg=angles,
            n_det=n_det, center_offset_px=center_offset_px, device=cfg.device,
            threads=cfg.threads_per_worker,
        )
    return open_stack(out_path)
