"""``XRFHDF5Dataset``: XRFStack / Volume / PatchPairs in HDF5 (Data Exchange layout).

Volumes larger than memory go through the same entries: a ``ChunkedVolume`` is
saved slab by slab (or its scratch file moved into place) and a volume file above
``lazy_min_voxels`` loads as a lazy ``ChunkedVolume`` (:mod:`xrf_sr_kedro.io.volume_files`).
Stacks likewise: a lazy ``ChunkedStack`` (the streamed enhancement's output) is
moved into place or copied frame slab by frame slab, and an entry with
``lazy_stacks: true`` loads a stack file above ``lazy_min_voxels`` values lazily.
"""

from __future__ import annotations

import os
from copy import deepcopy
from functools import partial
from typing import Any

from kedro.io.core import Version

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.chunked import ChunkedStack, ChunkedVolume
from xrf_sr_kedro.io.hdf5 import load_h5, save_h5
from xrf_sr_kedro.io.provenance import read_only_error, refuse_foreign_overwrite
from xrf_sr_kedro.io.volume_files import (
    OUT_OF_CORE_MIN_VOXELS,
    load_volume_file,
    save_stack,
    save_volume,
)
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

Data = XRFStack | Volume | PatchPairs | ChunkedVolume | ChunkedStack


class XRFHDF5Dataset(FileDataset[Data]):
    """Loads and saves an :class:`XRFStack`, :class:`Volume` or :class:`PatchPairs`.

    The file layout (see ``docs/data_formats.md``) stores the arrays with their
    pixel size (nm), angles (degrees), element names, units and metadata; stacks
    use ``/exchange/data`` and ``/exchange/theta`` so TomoPy/dxchange open them.
    Saves are atomic.  Measured data is protected twice: ``read_only: true``
    refuses every save, and a save never replaces an existing file that this
    project did not write (root attribute ``creator``, see
    :mod:`xrf_sr_kedro.io.provenance`).  A plain Data Exchange file from another program loads as an
    XRFStack when ``load_args`` give ``pixel_size_nm`` and ``elements``.

    Volumes larger than memory: ``save`` also takes a lazy
    :class:`~xrf_sr_kedro.io.chunked.ChunkedVolume` (the streamed reconstruction's
    output) and writes it chunked, one slice per chunk, without reading it whole;
    the streamed reconstruction's scratch file is moved into place, not copied.  A
    local volume file of more than ``lazy_min_voxels`` voxels loads as a
    ``ChunkedVolume`` (slabs read on demand); smaller ones load whole as before.
    Stacks larger than memory: ``save`` takes a lazy
    :class:`~xrf_sr_kedro.io.chunked.ChunkedStack` (the streamed enhancement's
    output, whose scratch file is moved into place), and with ``lazy_stacks: true``
    a local stack file of more than ``lazy_min_voxels`` values loads as a
    ``ChunkedStack``; without it every stack loads whole, as before.

    Examples
    --------
    In ``conf/base/catalog.yml``::

        raw_projections:
          type: xrf_sr_kedro.datasets.XRFHDF5Dataset
          filepath: data/01_raw/projections.h5
          versioned: true

        tooth_projections:
          type: xrf_sr_kedro.datasets.XRFHDF5Dataset
          filepath: data/01_raw/foreign_dxchange.h5
          read_only: true
          load_args:
            pixel_size_nm: 1000.0
            elements: [Fe_K]
            units: counts

    Python:

    >>> ds = XRFHDF5Dataset(filepath=tmp_path / "stack.h5")  # doctest: +SKIP
    >>> ds.save(stack); ds.load().elements  # doctest: +SKIP
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        read_only: bool = False,
        lazy_min_voxels: int = OUT_OF_CORE_MIN_VOXELS,
        lazy_stacks: bool = False,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one HDF5 file.

        Parameters
        ----------
        filepath : str or path
            Local path or fsspec URL (``s3://...``).
        load_args : dict, optional
            Passed to :func:`xrf_sr_kedro.io.hdf5.load_h5`: ``elements``,
            ``pixel_size_nm``, ``units`` (used only for foreign Data Exchange files).
        read_only : bool
            Measured data: ``save`` always raises
            :class:`~xrf_sr_kedro.io.provenance.ProtectedDataError`.
        lazy_min_voxels : int
            A volume file of more voxels (all elements) loads as a lazy
            ``ChunkedVolume`` (default 2**28, 1 GiB of float32: the streamed
            reconstruction's threshold); 0 loads every volume lazily.  Local files only.
        lazy_stacks : bool
            Also load a stack file of more than ``lazy_min_voxels`` values (all
            elements and frames) as a lazy ``ChunkedStack``: only for entries whose
            consumers take one (the enhanced reprojections).
        version : kedro.io.core.Version, optional
            Set by ``versioned: true`` in the catalog.
        credentials, fs_args : dict, optional
            For the fsspec file system.
        metadata : dict, optional
            Ignored by Kedro (for plugins).
        """
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **deepcopy(load_args or {})}
        self.read_only = bool(read_only)
        if int(lazy_min_voxels) != lazy_min_voxels or lazy_min_voxels < 0:
            raise ValueError(
                f"XRFHDF5Dataset {filepath}: lazy_min_voxels must be a count >= 0, "
                f"got {lazy_min_voxels!r}"
            )
        self._lazy_min_voxels = int(lazy_min_voxels)
        self._lazy_stacks = bool(lazy_stacks)

    def _describe(self) -> dict[str, Any]:
        return {**self._base_describe(), "load_args": self._load_args,
                "read_only": self.read_only, "lazy_min_voxels": self._lazy_min_voxels,
                "lazy_stacks": self._lazy_stacks}

    def load(self) -> Data:
        whole = partial(load_h5, **self._load_args)
        if self._protocol != "file":  # a copied remote file cannot be read lazily
            return self._load_with(whole)
        return self._load_with(
            partial(load_volume_file, lazy_min_voxels=self._lazy_min_voxels, load=whole,
                    lazy_stacks=self._lazy_stacks)
        )

    def save(self, data: Data) -> None:
        if self.read_only:
            raise read_only_error(type(self).__name__, self._filepath)
        self._save_with(partial(_save_unless_foreign, data=data))


def _save_unless_foreign(path: str, data: Data) -> None:
    refuse_foreign_overwrite(path)
    if isinstance(data, ChunkedVolume):
        save_volume(path, data)
    elif isinstance(data, ChunkedStack):
        save_stack(path, data)
    else:
        save_h5(path, data)
