"""``XRFHDF5Dataset``: XRFStack / Volume / PatchPairs in HDF5 (Data Exchange layout)."""

from __future__ import annotations

import os
from copy import deepcopy
from functools import partial
from typing import Any

from kedro.io.core import Version

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.hdf5 import load_h5, save_h5
from xrf_sr_kedro.types import PatchPairs, Volume, XRFStack

Data = XRFStack | Volume | PatchPairs


class XRFHDF5Dataset(FileDataset[Data]):
    """Loads and saves an :class:`XRFStack`, :class:`Volume` or :class:`PatchPairs`.

    The file layout (see ``docs/data_formats.md``) stores the arrays with their
    pixel size (nm), angles (degrees), element names, units and metadata; stacks
    use ``/exchange/data`` and ``/exchange/theta`` so TomoPy/dxchange open them.
    Saves are atomic.  A plain Data Exchange file from another program loads as an
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

    def _describe(self) -> dict[str, Any]:
        return {**self._base_describe(), "load_args": self._load_args}

    def load(self) -> Data:
        return self._load_with(partial(load_h5, **self._load_args))

    def save(self, data: Data) -> None:
        self._save_with(lambda path: save_h5(path, data))
