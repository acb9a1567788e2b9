"""``TiffMapsDataset``: one TIFF per element line (read-only) as an XRFStack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.io.tiff import UNITS, read_tiff_maps, tiff_paths_in_folder
from xrf_sr_kedro.types import XRFStack


class TiffMapsDataset(AbstractDataset[None, XRFStack]):
    """Element maps exported as TIFF (PyXRF, MAPS, ImageJ), read in place.

    Give either ``filepaths`` (element -> file) or ``folder`` plus ``elements``
    (files ``<element>.tif[f]`` or ``*_<element>.tif[f]`` in the folder).  The
    pixel size is required: TIFF exports do not record it reliably.  Values are
    ``"fitted counts"`` by default (small negative fit values are clipped to 0 with
    a logged warning); ``units: counts`` refuses negatives.

    Examples
    --------
    ::

        hxn_maps:
          type: xrf_sr_kedro.datasets.TiffMapsDataset
          folder: ../shared/data/hxn_xrf_maps
          elements: [Fe_K, Cr_K]
          pixel_size_nm: 150.0
    """

    #: Measured data: never a node's output (see :mod:`xrf_sr_kedro.guards`).
    read_only = True

    def __init__(  # noqa: PLR0913
        self,
        *,
        pixel_size_nm: float,
        filepaths: dict[str, str] | None = None,
        folder: str | os.PathLike | None = None,
        elements: list[str] | None = None,
        units: str = UNITS,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring."""
        if (filepaths is None) == (folder is None):
            raise DatasetError("TiffMapsDataset: give exactly one of filepaths or folder")
        if folder is not None and not elements:
            raise DatasetError("TiffMapsDataset: folder needs elements, e.g. [Fe_K, Cr_K]")
        if filepaths is not None and elements:
            filepaths = {e: filepaths[e] for e in elements}
        self._filepaths = None if filepaths is None else {k: str(v) for k, v in filepaths.items()}
        self._folder = None if folder is None else str(folder)
        self._elements = None if elements is None else list(elements)
        self._pixel_size_nm = pixel_size_nm
        self._units = units
        self.metadata = metadata

    def _paths(self) -> dict[str, Any]:
        if self._filepaths is not None:
            return self._filepaths
        return tiff_paths_in_folder(self._folder, self._elements)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepaths": self._filepaths,
            "folder": self._folder,
            "elements": self._elements,
            "pixel_size_nm": self._pixel_size_nm,
            "units": self._units,
        }

    def load(self) -> XRFStack:
        return read_tiff_maps(self._paths(), self._pixel_size_nm, units=self._units)

    def save(self, data: XRFStack) -> None:
        raise DatasetError("TiffMapsDataset is read-only; save with XRFHDF5Dataset")

    def _exists(self) -> bool:
        return self.missing_reason() is None

    def missing_reason(self) -> str | None:
        """Why the maps cannot be read (missing folder, element or file), or None."""
        try:
            paths = self._paths()
        except (FileNotFoundError, ValueError) as exc:
            return str(exc)
        missing = {e: str(p) for e, p in paths.items() if not Path(p).is_file()}
        if missing:
            return "; ".join(f"{p}: file not found (element {e})" for e, p in missing.items())
        return None
