"""``XRFHDF5Dataset``: XRFStack / Volume / PatchPairs in HDF5 (Data Exchange layout)."""

from __future__ import annotations

import os
from copy import deepcopy
from functools import partial
from typing import Any

from kedro.io.core import Version

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.hdf5 import load_h5, save_h5
from xrf_sr_kedro.io.provenance import read_only_error, refuse_foreign_overwrite
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

Data = XRFStack | Volume | PatchPairs


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

    def _describe(self) -> dict[str, Any]:
        return {**self._base_describe(), "load_args": self._load_args,
                "read_only": self.read_only}

    def load(self) -> Data:
        return self._load_with(partial(load_h5, **self._load_args))

    def save(self, data: Data) -> None:
        if self.read_only:
            raise read_only_error(type(self).__name__, self._filepath)
        self._save_with(partial(_save_unless_foreign, data=data))


def _save_unless_foreign(path: str, data: Data) -> None:
    refuse_foreign_overwrite(path)
    save_h5(path, data)
