"""Volumes larger than memory through the catalog: saved slab by slab, loaded lazily.

Volumes above :data:`OUT_OF_CORE_MIN_VOXELS` stay out of memory.  The streamed
reconstruction (:mod:`xrf_sr_kedro.tomo.streamed`) writes them slab by slab into a
scratch file (a :class:`~xrf_sr_kedro.io.chunked.ChunkedVolume` with
``scratch=True``); :func:`save_volume` moves that file onto the catalog's path (an
atomic rename, or one slab-by-slab copy across file systems), writes an in-memory
``Volume`` or copies another file slab by slab; :func:`load_volume_file` gives a
lazy handle back above the size and the whole ``Volume`` (or stack) below it, so
small volumes keep their in-memory path.  :func:`element_arrays` lets code that
walks the elements of a volume take either kind.

Projection stacks larger than memory (the streamed enhancement's output,
:func:`xrf_sr_kedro.inference.stack.enhance_or_stream`) go the same way:
:func:`save_stack` moves a scratch :class:`~xrf_sr_kedro.io.chunked.ChunkedStack`
into place or copies one frame slab at a time, and :func:`load_volume_file` with
``lazy_stacks`` opens a stack file above the size lazily.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.atomic import current_umask
from xrf_sr_kedro.io.chunked import (
    ChunkedStack,
    ChunkedVolume,
    open_stack,
    open_volume,
    slab_ranges,
    stack_writer,
    volume_writer,
)
from xrf_sr_kedro.io.hdf5 import KIND_ATTR, decode_str, load_h5
from xrf_sr_kedro.types import Volume

logger = logging.getLogger(__name__)

__all__ = [
    "OUT_OF_CORE_MIN_VOXELS", "save_volume", "save_stack", "load_volume_file", "element_arrays",
]


#: Volumes of more voxels than this (all elements) are kept out of memory: the
#: streamed reconstruction's default threshold (``tomography.recon.streaming_min_voxels``)
#: and the size above which ``XRFHDF5Dataset`` loads a volume lazily.  2**28 voxels
#: are 1 GiB of float32.
OUT_OF_CORE_MIN_VOXELS = 2**28


def element_arrays(volume: Volume | ChunkedVolume) -> list[tuple[str, Any]]:
    """``(element, (n_slices, N, N) array)`` pairs: arrays in memory, lazy views of a file."""
    if isinstance(volume, ChunkedVolume):
        return [(name, volume.element(k)) for k, name in enumerate(volume.elements)]
    return list(zip(volume.elements, volume.data))


def _move_scratch(volume: ChunkedVolume | ChunkedStack, path: Path) -> bool:
    """Rename a scratch file onto ``path``; False when they sit on different file systems."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(volume.path, 0o666 & ~current_umask())
    try:
        os.replace(volume.path, path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # another file system: copy instead
            raise
        return False
    with contextlib.suppress(OSError):  # the streamed path's own folder, now empty
        volume.path.parent.rmdir()
    logger.info("moved the streamed file %s to %s", volume.path, path)
    return True


def _drop_scratch(handle: ChunkedVolume | ChunkedStack) -> None:
    """Delete a scratch file once copied, and its folder when that is empty."""
    handle.path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        handle.path.parent.rmdir()


def save_volume(
    path: str | os.PathLike, volume: Volume | ChunkedVolume, slab_slices: int = 64
) -> ChunkedVolume:
    """Write an in-memory ``Volume`` or copy a volume file into a chunked file, slab by slab.

    Copying a :class:`ChunkedVolume` onto its own path does nothing; a scratch one
    (``scratch=True``, the streamed reconstruction's file) is moved, not copied,
    when ``path`` is on the same file system (an atomic rename), and copied slab by
    slab then deleted otherwise.  At most ``slab_slices`` slices are in memory.
    Returns the lazy handle on ``path``.
    """
    if isinstance(volume, ChunkedVolume) and Path(path).resolve() == volume.path.resolve():
        return volume
    if not isinstance(volume, (Volume, ChunkedVolume)):
        raise TypeError(
            f"save_volume expects a Volume or ChunkedVolume, got {type(volume).__name__}"
        )
    in_memory = isinstance(volume, Volume)
    if not in_memory and volume.scratch and _move_scratch(volume, Path(path)):
        return open_volume(path)
    shape = volume.data.shape if in_memory else volume.shape
    with volume_writer(
        path, shape, volume.voxel_size_nm, volume.elements, units=volume.units,
        metadata=volume.metadata,
    ) as w:
        for e in range(shape[0]):
            for s0, s1 in slab_ranges(shape[1], slab_slices):
                w[e, s0:s1] = volume.data[e, s0:s1] if in_memory else volume.read(e, s0, s1)
    if not in_memory and volume.scratch:
        _drop_scratch(volume)
    return open_volume(path)


def save_stack(path: str | os.PathLike, stack: ChunkedStack, slab_frames: int = 8) -> ChunkedStack:
    """Copy a lazy projection stack into a row-chunked stack file, ``slab_frames`` frames at a time.

    As :func:`save_volume`: onto its own path it does nothing, and a scratch stack
    (the streamed enhancement's file) is moved, not copied, when ``path`` is on the
    same file system, else copied and deleted.  Returns the lazy handle on ``path``.
    """
    if not isinstance(stack, ChunkedStack):
        raise TypeError(f"save_stack expects a ChunkedStack, got {type(stack).__name__}")
    if Path(path).resolve() == stack.path.resolve():
        return stack
    if stack.scratch and _move_scratch(stack, Path(path)):
        return open_stack(path)
    n_el, n_frames, rows, _ = stack.shape
    with stack_writer(
        path, stack.shape, stack.pixel_size_nm, stack.elements, stack.angles_deg,
        units=stack.units, metadata=stack.metadata, chunk_rows=min(64, rows),
    ) as w:
        for e in range(n_el):
            for a0, a1 in slab_ranges(n_frames, slab_frames):
                w[e, a0:a1] = stack.read_frames(e, a0, a1)
    if stack.scratch:
        _drop_scratch(stack)
    return open_stack(path)


def _lazy_kind(path: Path) -> tuple[str, int] | None:
    """``("Volume" | "XRFStack", values of the data set)`` of one of our files; None otherwise."""
    with h5py.File(path, "r") as f:
        kind = decode_str(f.attrs.get(KIND_ATTR, ""))
        key = {"Volume": "volume/data", "XRFStack": "exchange/data"}.get(kind)
        if key is None or key not in f:
            return None
        return kind, int(np.prod(f[key].shape, dtype=np.int64))


def load_volume_file(
    path: str | os.PathLike, lazy_min_voxels: int = OUT_OF_CORE_MIN_VOXELS,
    load: Callable[[Path], Any] | None = None, lazy_stacks: bool = False,
) -> Any:
    """A ``Volume`` file of more than ``lazy_min_voxels`` voxels as a lazy :class:`ChunkedVolume`.

    With ``lazy_stacks`` also an ``XRFStack`` file of more values than that (all
    elements and frames) as a lazy :class:`ChunkedStack` (for entries whose
    consumers read stacks by slabs: the enhanced reprojections).  Any other file (a
    smaller volume or stack, patch pairs) is read whole by ``load`` (default
    :func:`xrf_sr_kedro.io.hdf5.load_h5`).
    """
    if int(lazy_min_voxels) != lazy_min_voxels or lazy_min_voxels < 0:
        raise ValueError(f"lazy_min_voxels must be a count >= 0, got {lazy_min_voxels!r}")
    p = Path(path)
    try:
        found = _lazy_kind(p) if p.is_file() else None
    except OSError:  # not HDF5: the reader names the problem
        found = None
    if found is not None and found[1] > lazy_min_voxels:
        if found[0] == "Volume":
            return open_volume(p)
        if lazy_stacks:
            return open_stack(p)
    return (load or load_h5)(p)  # a missing file: the reader's own message
