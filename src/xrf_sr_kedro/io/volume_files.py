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
from xrf_sr_kedro.io.chunked import ChunkedVolume, open_volume, slab_ranges, volume_writer
from xrf_sr_kedro.io.hdf5 import KIND_ATTR, decode_str, load_h5
from xrf_sr_kedro.types import Volume

logger = logging.getLogger(__name__)

__all__ = ["OUT_OF_CORE_MIN_VOXELS", "save_volume", "load_volume_file", "element_arrays"]


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


def _move_scratch(volume: ChunkedVolume, path: Path) -> bool:
    """Rename a scratch volume file onto ``path``; False when they sit on different file systems."""
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
    logger.info("moved the streamed volume %s to %s", volume.path, path)
    return True


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
        volume.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            volume.path.parent.rmdir()
    return open_volume(path)


def _volume_voxels(path: Path) -> int | None:
    """Voxels of a ``Volume`` file's ``/volume/data`` (all elements); None for other kinds."""
    with h5py.File(path, "r") as f:
        if decode_str(f.attrs.get(KIND_ATTR, "")) != "Volume" or "volume/data" not in f:
            return None
        return int(np.prod(f["volume/data"].shape, dtype=np.int64))


def load_volume_file(
    path: str | os.PathLike, lazy_min_voxels: int = OUT_OF_CORE_MIN_VOXELS,
    load: Callable[[Path], Any] | None = None,
) -> Any:
    """A ``Volume`` file of more than ``lazy_min_voxels`` voxels as a lazy :class:`ChunkedVolume`.

    Any other file (a smaller volume, a stack, patch pairs) is read whole by
    ``load`` (default :func:`xrf_sr_kedro.io.hdf5.load_h5`).
    """
    if int(lazy_min_voxels) != lazy_min_voxels or lazy_min_voxels < 0:
        raise ValueError(f"lazy_min_voxels must be a count >= 0, got {lazy_min_voxels!r}")
    p = Path(path)
    try:
        voxels = _volume_voxels(p) if p.is_file() else None
    except OSError:  # not HDF5: the reader names the problem
        voxels = None
    if voxels is not None and voxels > lazy_min_voxels:
        return open_volume(p)
    return (load or load_h5)(p)  # a missing file: the reader's own message
