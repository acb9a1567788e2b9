"""``PyXRFDataset``: PyXRF fitted maps (read-only) as an XRFStack."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.io.pyxrf import read_pyxrf, read_pyxrf_series
from xrf_sr_kedro.types import XRFStack


class PyXRFDataset(AbstractDataset[None, XRFStack]):
    """Selected element lines of a PyXRF file (or of a series of files) as an XRFStack.

    ``filepath`` names one file, or a glob pattern (``scan2D_*.h5``) of one file per
    rotation angle: the frames are then sorted by ``param_theta`` (millidegrees).
    Read-only: beamline files enter the catalog without conversion.

    Examples
    --------
    ::

        hxn_maps:
          type: xrf_sr_kedro.datasets.PyXRFDataset
          filepath: data/01_raw/pyxrf/scan2D_123456.h5
          elements: [Zn_K, Mn_K]
          pixel_size_nm: 100.0     # optional: else from xrfmap/positions
    """

    #: Measured data: never a node's output (see :mod:`xrf_sr_kedro.guards`).
    read_only = True

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        elements: list[str],
        pixel_size_nm: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Parameters: ``filepath`` (file or glob), ``elements`` (``["Zn_K"]``),
        ``pixel_size_nm`` (optional), ``metadata`` (ignored by Kedro)."""
        if isinstance(elements, str):
            elements = [elements]
        if not elements:
            raise DatasetError("PyXRFDataset: elements must list at least one line, e.g. [Zn_K]")
        self._filepath = str(filepath)
        self._elements = list(elements)
        self._pixel_size_nm = pixel_size_nm
        self.metadata = metadata

    def _is_pattern(self) -> bool:
        return glob.has_magic(self._filepath)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "elements": self._elements,
            "pixel_size_nm": self._pixel_size_nm,
        }

    def load(self) -> XRFStack:
        if self._is_pattern():
            paths = sorted(glob.glob(self._filepath))
            if not paths:
                raise FileNotFoundError(f"{self._filepath}: no PyXRF files match the pattern")
            return read_pyxrf_series(paths, self._elements, self._pixel_size_nm)
        return read_pyxrf(self._filepath, self._elements, self._pixel_size_nm)

    def save(self, data: XRFStack) -> None:
        raise DatasetError("PyXRFDataset is read-only; save results with XRFHDF5Dataset")

    def _exists(self) -> bool:
        if self._is_pattern():
            return bool(glob.glob(self._filepath))
        return Path(self._filepath).is_file()
