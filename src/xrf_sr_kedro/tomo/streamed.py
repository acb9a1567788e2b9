"""The streamed path of :func:`xrf_sr_kedro.tomo.recon.reconstruct_stack`: slabs to a chunked file.

A reconstructed volume holds ``n_elements * n_rows * W * W`` voxels: for 51 rows of
a 1750 px wide stack that is 0.6 GB per element, for an enhanced 2048-row stack
(8192 px) 2 TiB.  The projections themselves are ``W / n_angles`` times smaller per
row, so the measured ones and the reprojections are kept in memory by the catalog;
the enhanced reprojections, 16x larger, may come as a lazy
:class:`~xrf_sr_kedro.io.chunked.ChunkedStack` (the streamed enhancement), which is
read here one row slab at a time.

:func:`use_streaming` decides (``streaming: auto`` streams above
``streaming_min_voxels`` voxels); :func:`reconstruct_stack_streamed` writes the stack
into a row-chunked file, reconstructs it slab by slab with
:func:`xrf_sr_kedro.tomo.slabs.reconstruct_slabs` (serially, or on Dask workers as
:class:`~xrf_sr_kedro.parallel.ParallelConfig` says) into a chunked volume file,
and returns the lazy :class:`~xrf_sr_kedro.io.chunked.ChunkedVolume`.  Peak memory
is that of one slab (times the workers), whatever the number of rows.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from xrf_sr_kedro.io.atomic import scratch_folder
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume, slab_ranges, stack_writer
from xrf_sr_kedro.io.volume_files import OUT_OF_CORE_MIN_VOXELS
from xrf_sr_kedro.parallel import ParallelConfig
from xrf_sr_kedro.streaming import STREAMING, Streaming, streams
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = [
    "STREAMING",
    "DEFAULT_STREAMING_MIN_VOXELS",
    "use_streaming",
    "reconstruct_stack_streamed",
]


#: ``streaming: auto`` streams volumes above this many voxels (all elements):
#: 2**28 voxels are 1 GiB of float32, several times the default run's volume and
#: a quarter of a 4 GB budget.  The same size above which the catalog's
#: ``XRFHDF5Dataset`` loads a volume lazily (one constant, :mod:`xrf_sr_kedro.io.volume_files`).
DEFAULT_STREAMING_MIN_VOXELS = OUT_OF_CORE_MIN_VOXELS


def use_streaming(
    n_voxels: int, streaming: Streaming = "auto", min_voxels: int = DEFAULT_STREAMING_MIN_VOXELS
) -> bool:
    """Whether a reconstruction of ``n_voxels`` voxels (all elements) streams slabs.

    ``"on"`` / ``"off"`` force the choice; ``"auto"`` streams above ``min_voxels``
    (:func:`xrf_sr_kedro.streaming.streams`).
    """
    return streams(n_voxels, streaming, min_voxels, "tomography", "streaming_min_voxels")


def _parallel_config(parallel: ParallelConfig | Mapping[str, Any] | None) -> ParallelConfig:
    if parallel is None:
        return ParallelConfig()
    if isinstance(parallel, ParallelConfig):
        return parallel
    return ParallelConfig(**dict(parallel))


def reconstruct_stack_streamed(
    stack: XRFStack | ChunkedStack,
    recon: dict[str, Any],
    *,
    output_scale: float,
    metadata: dict[str, Any],
    slab_slices: int | None = None,
    streaming_dir: str | os.PathLike | None = None,
    parallel: ParallelConfig | Mapping[str, Any] | None = None,
    element_index: list[int] | None = None,
    row_range: tuple[int, int] | None = None,
) -> ChunkedVolume:
    """Reconstruct ``stack`` slab by slab into a chunked volume file.

    Parameters
    ----------
    stack : XRFStack or ChunkedStack
        Projections with angles (degrees): in memory, the elements and rows to
        reconstruct; lazy, read one row slab at a time (never whole), the elements
        ``element_index`` and rows ``row_range`` of it.
    recon : dict
        Keyword arguments of :func:`~xrf_sr_kedro.tomo.recon.reconstruct`
        (``algorithm``, ``n_iter``, ``n_subsets``, ``reg_par``, ``center_offset_px``,
        ``slice_batch``).
    output_scale : float
        Factor on every slab (``1 / pixel_size_nm``: line integrals to signal per voxel).
    metadata : dict
        Metadata of the volume (as the in-memory path records it).
    slab_slices : int, optional
        Rows per slab (default :data:`xrf_sr_kedro.tomo.slabs.DEFAULT_SLAB_SLICES`).
    streaming_dir : path-like, optional
        Folder in which each call makes a new ``xrf_sr_recon_*`` folder for the
        row-chunked stack (deleted afterwards) and the volume file ``volume.h5``
        (the result reads from it until the catalog moves it); default the system's temporary folder.
        On a cluster it must be on a file system every worker sees.
    parallel : ParallelConfig or mapping, optional
        Where slabs run (``params:parallel``); default ``mode: auto``.
    element_index, row_range : optional
        Of a lazy ``stack``: indices of its elements and ``(start, stop)`` of its rows
        to reconstruct (default all).

    Returns
    -------
    ChunkedVolume
        Lazy handle on ``<streaming_dir>/xrf_sr_recon_*/volume.h5``, marked
        ``scratch``: the catalog's save (:func:`xrf_sr_kedro.io.volume_files.save_volume`)
        moves the file onto the dataset's path (a rename when ``streaming_dir`` is on
        the same file system) and removes the folder, so the volume is written once.
    """
    from .slabs import DEFAULT_SLAB_SLICES, reconstruct_slabs

    slab_slices = DEFAULT_SLAB_SLICES if slab_slices is None else int(slab_slices)
    if slab_slices < 1:
        raise ValueError(f"parameter tomography slab_slices must be >= 1, got {slab_slices!r}")
    cfg = _parallel_config(parallel)
    # a new folder per call: two reconstructions (e.g. the evaluation's two halves)
    # never write into the file the other's lazy handle reads
    folder = scratch_folder("recon", streaming_dir)
    stack_path, volume_path = folder / "stack_rows.h5", folder / "volume.h5"
    lazy = isinstance(stack, ChunkedStack)
    index = list(range(len(stack.elements))) if element_index is None else list(element_index)
    first, stop = (0, stack.shape_hw[0]) if row_range is None else row_range
    n_rows = stop - first
    logger.info(
        "streaming the reconstruction slab by slab (%d rows a slab) into %s", slab_slices,
        volume_path,
    )
    try:
        # the rows of each slab, read from memory or from the lazy stack one slab at a time
        with stack_writer(
            stack_path, (len(index), len(stack.angles_deg), n_rows, stack.shape_hw[1]),
            stack.pixel_size_nm, [stack.elements[e] for e in index], stack.angles_deg,
            units=stack.units, chunk_rows=min(slab_slices, n_rows),
        ) as w:
            for k, e in enumerate(index):
                for r0, r1 in slab_ranges(n_rows, slab_slices):
                    w[k, :, r0:r1] = (stack.read_rows(e, first + r0, first + r1) if lazy
                                      else stack.data[e, :, first + r0:first + r1])
        volume = reconstruct_slabs(
            stack_path, volume_path, **recon, slab_slices=slab_slices, parallel=cfg,
            output_scale=output_scale, units=stack.units, metadata=metadata,
        )
        return replace(volume, scratch=True)
    except BaseException:
        # a failed or interrupted reconstruction leaves no debris: its folder goes too
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        stack_path.unlink(missing_ok=True)
