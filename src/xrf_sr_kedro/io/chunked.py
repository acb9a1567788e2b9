"""Volumes and projection stacks larger than memory: chunked HDF5, slab by slab.

The files have the layouts of :mod:`xrf_sr_kedro.io.hdf5` (``load_h5`` still reads
them whole), but are chunked along the slab axis and are written and read one slab
at a time:

* a volume: ``/volume/data`` of shape ``(n_elements, n_slices, N, N)``, chunks of
  ``(1, chunk_slices, N, N)`` (large slices are cut into 1024 px tiles);
* a projection stack: ``/exchange/data`` of shape ``(n_elements, n_angles, H, W)``
  (axes ``element:theta:y:x``), chunks of ``(1, 1, chunk_rows, W)`` so that the
  rows of one slab, at every angle, are read without touching the other rows.

Writers (:class:`ChunkedWriter`, :func:`volume_writer`, :func:`stack_writer`) build
the file under a temporary name in the target's folder and ``os.replace`` it over
the target only when every slab was written; the file gets the permissions the
umask allows (``0o666 & ~umask``), as a plain ``open`` would.  Readers
(:class:`ChunkedVolume`, :class:`ChunkedStack`) keep only the path and the small
metadata, open the file for each read (so they pickle to Dask workers), and read
what is asked for.

How such volumes go through the catalog (save, move, load lazily above a size):
:mod:`xrf_sr_kedro.io.volume_files`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from xrf_sr_kedro.io.atomic import atomic_path
from xrf_sr_kedro.io.hdf5 import (
    FORMAT_VERSION,
    KIND_ATTR,
    METADATA_ATTR,
    DataFormatError,
    check_pixel_size,
    decode_metadata,
    decode_names,
    encode_metadata,
    require_file,
)
from xrf_sr_kedro.types import XRFStack

logger = logging.getLogger(__name__)

__all__ = [
    "ChunkedWriter",
    "ChunkedVolume",
    "ChunkedStack",
    "volume_writer",
    "stack_writer",
    "open_volume",
    "open_stack",
    "slab_ranges",
    "LazyElement",
]

_MAX_CHUNK_BYTES = 32 << 20
_TILE_PX = 1024
_STR = h5py.string_dtype("utf-8")


def slab_ranges(n: int, slab: int) -> list[tuple[int, int]]:
    """``[(0, slab), (slab, 2 slab), ..., (.., n)]``: ``n`` items cut into slabs."""
    if int(slab) != slab or slab < 1:
        raise ValueError(f"slab size must be a positive integer, got {slab!r}")
    return [(s, min(s + int(slab), int(n))) for s in range(0, int(n), int(slab))]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _chunks(shape: tuple[int, ...], slab_axis: int, per_chunk: int) -> tuple[int, ...]:
    chunk = [1] * len(shape)
    chunk[slab_axis] = max(1, min(per_chunk, shape[slab_axis]))
    for ax in range(slab_axis + 1, len(shape)):
        chunk[ax] = shape[ax]
    while np.prod(chunk) * 4 > _MAX_CHUNK_BYTES and chunk[-1] > _TILE_PX:
        chunk[-1] = _TILE_PX
        if len(chunk) - 2 > slab_axis:
            chunk[-2] = min(chunk[-2], _TILE_PX)
    return tuple(int(c) for c in chunk)


class ChunkedWriter:
    """Write one chunked HDF5 dataset slab by slab; atomic and umask-honouring.

    Use as a context manager; assign blocks with ``writer[index] = block`` (NumPy
    indexing into the dataset).  On a clean exit every position along the axes up
    to ``slab_axis`` must have been written, else nothing replaces the target.

    Parameters
    ----------
    path : path-like
        Target file.
    key : str
        Dataset path inside the file (``"volume/data"``).
    shape : tuple of int
    slab_axis : int
        Axis along which slabs are written; chunks are thin along it.
    chunk_len : int
        Length of one chunk along ``slab_axis``.
    dtype : numpy dtype
    prepare : callable, optional
        ``prepare(h5py.File)`` writes attributes and small datasets first.
    dataset_attrs : dict, optional
        Attributes of the dataset (units, axes).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        key: str,
        shape: Sequence[int],
        slab_axis: int = 0,
        chunk_len: int = 1,
        dtype: Any = np.float32,
        prepare: Callable[[h5py.File], None] | None = None,
        dataset_attrs: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.shape = tuple(int(s) for s in shape)
        if any(s < 1 for s in self.shape) or not 0 <= slab_axis < len(self.shape):
            raise ValueError(f"bad shape {self.shape} or slab_axis {slab_axis} for {self.path}")
        self.slab_axis = slab_axis
        self.chunks = _chunks(self.shape, slab_axis, chunk_len)
        self.dtype = np.dtype(dtype)
        self._prepare = prepare
        self._dattrs = dataset_attrs or {}
        self._written = np.zeros(self.shape[: slab_axis + 1], dtype=bool)
        self._ctx: Any = None
        self._file: h5py.File | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> ChunkedWriter:
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            self._file = h5py.File(self._tmp, "w")
            if self._prepare is not None:
                self._prepare(self._file)
            self._ds = self._file.create_dataset(
                self.key, shape=self.shape, dtype=self.dtype, chunks=self.chunks
            )
            for name, value in self._dattrs.items():
                self._ds.attrs[name] = value
        except BaseException as exc:  # no temporary file left behind
            if self._file is not None:
                self._file.close()
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __setitem__(self, index: Any, block: np.ndarray) -> None:
        block = np.asarray(block)
        if not np.all(np.isfinite(block)):
            raise ValueError(f"block for {self.path}:{self.key}[{index}] contains NaN/inf")
        self._ds[index] = block.astype(self.dtype, copy=False)
        idx = index if isinstance(index, tuple) else (index,)
        self._written[idx[: self.slab_axis + 1]] = True

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the file's metadata before it is saved (a record known only once every
        slab was written, e.g. the enhancement's per-map normalisation)."""
        if self._file is None:
            raise RuntimeError(f"{self.path}: set_metadata outside the writer's context")
        self._file.attrs[METADATA_ATTR] = encode_metadata(metadata)

    def missing(self) -> int:
        """Positions (along the axes up to ``slab_axis``) not yet written."""
        return int((~self._written).sum())

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._file is not None and self._tmp is not None
        self._file.close()
        if exc_type is None and self.missing():
            exc = ValueError(
                f"{self.path}: {self.missing()} of {self._written.size} slab positions of "
                f"{self.key} were never written; the file was not saved"
            )
            self._ctx.__exit__(type(exc), exc, None)
            raise exc
        if exc_type is None:
            os.chmod(self._tmp, 0o666 & ~_umask())
        self._ctx.__exit__(exc_type, exc, tb)


def _root(kind: str, metadata: dict[str, Any], **attrs: Any) -> Callable[[h5py.File], None]:
    def write(f: h5py.File) -> None:
        f.attrs[KIND_ATTR] = kind
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs[METADATA_ATTR] = encode_metadata(metadata)
        f.attrs["creator"] = "xrf_sr_kedro"
        for name, value in attrs.items():
            f.attrs[name] = value

    return write


def volume_writer(
    path: str | os.PathLike,
    shape: Sequence[int],
    voxel_size_nm: float,
    elements: Sequence[str],
    units: str = "a.u.",
    metadata: dict[str, Any] | None = None,
    chunk_slices: int = 1,
) -> ChunkedWriter:
    """A writer of a ``Volume`` file of ``shape = (n_elements, n_slices, N, N)``.

    Write slabs with ``w[e, s0:s1] = block`` (block ``(s1 - s0, N, N)``).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4 or len(elements) != shape[0]:
        raise ValueError(
            f"volume shape must be (n_elements, n_slices, N, N) with one name per element, "
            f"got {shape} and {list(elements)}"
        )
    voxel = check_pixel_size(voxel_size_nm, path=path, key="voxel_size_nm")
    names = np.array(list(elements), dtype=object)

    def prepare(f: h5py.File) -> None:
        _root("Volume", metadata or {}, voxel_size_nm=voxel, units=units)(f)
        f.create_group("volume").create_dataset("elements", data=names, dtype=_STR)

    return ChunkedWriter(
        path, "volume/data", shape, slab_axis=1, chunk_len=chunk_slices, prepare=prepare,
        dataset_attrs={"units": units, "voxel_size_nm": voxel, "axes": "element:z:y:x"},
    )


def stack_writer(
    path: str | os.PathLike,
    shape: Sequence[int],
    pixel_size_nm: float,
    elements: Sequence[str],
    angles_deg: Any,
    units: str = "counts",
    metadata: dict[str, Any] | None = None,
    chunk_rows: int = 1,
) -> ChunkedWriter:
    """A writer of an ``XRFStack`` file of ``shape = (n_elements, n_angles, H, W)``.

    Chunked by rows (``(1, 1, chunk_rows, W)``); write either row slabs
    (``w[e, :, r0:r1] = block``) or frames (``w[e, a0:a1] = block``).
    """
    shape = tuple(int(s) for s in shape)
    angles = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    if len(shape) != 4 or len(elements) != shape[0] or angles.shape[0] != shape[1]:
        raise ValueError(
            f"stack shape must be (n_elements, n_angles, H, W) with one name per element and "
            f"one angle per frame, got {shape}, {list(elements)} and {angles.shape[0]} angles"
        )
    pixel = check_pixel_size(pixel_size_nm, path=path, key="pixel_size_nm")
    names = np.array(list(elements), dtype=object)

    def prepare(f: h5py.File) -> None:
        _root("XRFStack", metadata or {}, pixel_size_nm=pixel, units=units)(f)
        ex = f.create_group("exchange")
        ex.create_dataset("elements", data=names, dtype=_STR)
        ex.create_dataset("theta", data=angles).attrs["units"] = "deg"

    # Slab axis 2 (rows): chunks thin along rows, and both row slabs and whole
    # frames mark what they cover.
    return ChunkedWriter(
        path, "exchange/data", shape, slab_axis=2, chunk_len=chunk_rows, prepare=prepare,
        dataset_attrs={"units": units, "pixel_size_nm": pixel, "axes": "element:theta:y:x"},
    )


@dataclass(frozen=True)
class ChunkedVolume:
    """A volume file read lazily: ``read(e, s0, s1)`` returns slices ``s0:s1`` of element ``e``.

    ``scratch=True`` marks a file that belongs to this handle alone (the streamed
    reconstruction's output in its temporary folder): :func:`save_volume` moves it
    onto the target instead of copying it, after which this handle no longer reads.
    """

    path: Path
    shape: tuple[int, int, int, int]
    voxel_size_nm: float
    elements: tuple[str, ...]
    units: str = "a.u."
    metadata: dict[str, Any] = field(default_factory=dict)
    scratch: bool = False

    def read(self, element: int, start: int, stop: int) -> np.ndarray:
        """Slices ``start:stop`` of element ``element``: ``(stop - start, N, N)``, float32."""
        with h5py.File(self.path, "r") as f:
            return np.asarray(f["volume/data"][element, start:stop], dtype=np.float32)

    def element(self, element: int) -> LazyElement:
        """A lazy ``(n_slices, N, N)`` view of one element: indexing reads only what it selects."""
        return LazyElement(self.path, int(element), self.shape[1:])


@dataclass(frozen=True)
class LazyElement:
    """One element of a volume file as a read-on-index 3-D array (float32).

    ``view[z]``, ``view[:, y, :]``, ``view[:, :, x]`` read one plane from the file
    (h5py selections), so a figure of the central planes or a TIFF written page by
    page never holds the whole volume.
    """

    path: Path
    index: int
    shape: tuple[int, int, int]
    ndim: int = 3
    dtype: Any = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        with h5py.File(self.path, "r") as f:
            return np.asarray(f["volume/data"][(self.index, *key)], dtype=np.float32)


@dataclass(frozen=True)
class ChunkedStack:
    """A projection stack read lazily by detector rows or by frames.

    ``scratch=True`` marks a file that belongs to this handle alone (the streamed
    enhancement's output in its temporary folder): the catalog's save
    (:func:`xrf_sr_kedro.io.volume_files.save_stack`) moves it onto the target
    instead of copying it, after which this handle no longer reads.
    """

    path: Path
    key: str
    shape: tuple[int, int, int, int]
    pixel_size_nm: float
    elements: tuple[str, ...]
    angles_deg: np.ndarray
    units: str = "counts"
    metadata: dict[str, Any] = field(default_factory=dict)
    scratch: bool = False

    @property
    def n_frames(self) -> int:
        """Number of frames (angles)."""
        return self.shape[1]

    @property
    def shape_hw(self) -> tuple[int, int]:
        """Rows and columns of one map."""
        return self.shape[2], self.shape[3]

    def element_index(self, elements: Sequence[str] | None) -> list[int]:
        """Indices of ``elements`` in the file (all when ``None``); KeyError names a missing one."""
        if not elements:
            return list(range(self.shape[0]))
        missing = [e for e in elements if e not in self.elements]
        if missing:
            raise KeyError(
                f"element(s) {missing} not in {self.path}; available: {list(self.elements)}"
            )
        return [self.elements.index(e) for e in elements]

    def to_stack(self, start: int = 0, stop: int | None = None) -> XRFStack:
        """Frames ``start:stop`` (default all) of every element as an in-memory ``XRFStack``."""
        stop = self.shape[1] if stop is None else int(stop)
        data = np.stack([self.read_frames(e, start, stop) for e in range(self.shape[0])])
        return XRFStack(
            data=data, pixel_size_nm=self.pixel_size_nm, elements=tuple(self.elements),
            angles_deg=np.asarray(self.angles_deg[start:stop], dtype=np.float64),
            units=self.units, metadata=dict(self.metadata),
        )

    def _read(self, element: int, index: tuple[slice, ...]) -> np.ndarray:
        with h5py.File(self.path, "r") as f:
            ds = f[self.key]
            sel = index if ds.ndim == 3 else (element, *index)
            return np.asarray(ds[sel], dtype=np.float32)

    def read_rows(self, element: int, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` at every angle: shape ``(n_angles, stop - start, W)``, float32."""
        return self._read(element, (slice(None), slice(start, stop)))

    def read_frames(self, element: int, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop``: shape ``(stop - start, H, W)``, float32."""
        return self._read(element, (slice(start, stop),))


def _attr_str(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def open_volume(path: str | os.PathLike) -> ChunkedVolume:
    """Open a ``Volume`` HDF5 file (chunked or not) for lazy slab reads."""
    p = require_file(path, "a Volume HDF5 file")
    with h5py.File(p, "r") as f:
        if _attr_str(f.attrs.get(KIND_ATTR), "") != "Volume" or "volume/data" not in f:
            raise DataFormatError(p, "/volume/data", "missing; expected a Volume file (save_h5)")
        ds = f["volume/data"]
        if ds.ndim != 4:
            raise DataFormatError(p, "/volume/data", f"has shape {ds.shape}; expected 4-D")
        return ChunkedVolume(
            path=p,
            shape=tuple(int(s) for s in ds.shape),  # type: ignore[arg-type]
            voxel_size_nm=check_pixel_size(
                f.attrs.get("voxel_size_nm"), path=p, key="/@voxel_size_nm"
            ),
            elements=tuple(decode_names(f["volume/elements"][()])),
            units=_attr_str(f.attrs.get("units"), "a.u."),
            metadata=decode_metadata(f.attrs.get(METADATA_ATTR), path=p),
        )


def open_stack(
    path: str | os.PathLike,
    elements: Sequence[str] | None = None,
    pixel_size_nm: float | None = None,
) -> ChunkedStack:
    """Open a projection stack (ours, or a plain Data Exchange file) for lazy reads.

    ``elements`` and ``pixel_size_nm`` name a foreign file's channels and pixel
    size when the file does not.  ``/exchange/theta`` (degrees) is required.
    """
    p = require_file(path, "a projection stack HDF5 file (Data Exchange layout)")
    with h5py.File(p, "r") as f:
        if "exchange/data" not in f:
            raise DataFormatError(p, "/exchange/data", "missing; expected projections")
        ds = f["exchange/data"]
        if ds.ndim not in (3, 4):
            raise DataFormatError(p, "/exchange/data", f"has shape {ds.shape}; expected 3-D or 4-D")
        shape = tuple(int(s) for s in ds.shape)
        shape4 = shape if ds.ndim == 4 else (1, *shape)
        if "exchange/elements" in f:
            names = tuple(decode_names(f["exchange/elements"][()]))
        else:
            names = tuple(elements) if elements else tuple(f"channel_{i}" for i in range(shape4[0]))
        if len(names) != shape4[0]:
            raise DataFormatError(
                p, "/exchange/elements", f"{len(names)} names for {shape4[0]} channel(s)"
            )
        if "exchange/theta" not in f:
            raise DataFormatError(p, "/exchange/theta", "missing; angles in degrees are needed")
        theta = np.asarray(f["exchange/theta"][()], dtype=np.float64).reshape(-1)
        if _attr_str(f["exchange/theta"].attrs.get("units"), "deg").lower().startswith("rad"):
            theta = np.degrees(theta)
        if theta.shape[0] != shape4[1]:
            raise DataFormatError(
                p, "/exchange/theta", f"{theta.shape[0]} angles for {shape4[1]} frames"
            )
        pixel = f.attrs.get("pixel_size_nm", pixel_size_nm)
        return ChunkedStack(
            path=p,
            key="exchange/data",
            shape=shape4,  # type: ignore[arg-type]
            pixel_size_nm=check_pixel_size(pixel, path=p, key="/@pixel_size_nm"),
            elements=names,
            angles_deg=theta,
            units=_attr_str(f.attrs.get("units"), "counts"),
            metadata=decode_metadata(f.attrs.get(METADATA_ATTR), path=p),
        )
