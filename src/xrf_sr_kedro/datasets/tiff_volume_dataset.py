"""``TiffVolumeDataset``: a Volume as ImageJ/Fiji TIFF stacks, one per element."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io.core import AbstractDataset, DatasetError

from xrf_sr_kedro.io.chunked import ChunkedVolume
from xrf_sr_kedro.io.tiff import (
    read_tiff_info,
    read_tiff_map,
    read_tiff_voxel_size_nm,
    write_tiff_stack,
)
from xrf_sr_kedro.types import Volume


class TiffVolumeDataset(AbstractDataset[Volume | ChunkedVolume, Volume]):
    """Export a :class:`Volume` for Fiji: ``{stem}_{element}.tif`` beside ``filepath``.

    Each file is an ImageJ hyperstack (``Z, Y, X``, float32) with the voxel size
    in nm as its calibration, written atomically.  ``load`` reads the files back
    (elements from the file names, in sorted order, or ``elements`` if given).
    Not versioned: it is a reporting export; keep the HDF5 copy for provenance.

    Examples
    --------
    ::

        reconstruction_tiff:
          type: xrf_sr_kedro.datasets.TiffVolumeDataset
          filepath: data/08_reporting/reconstruction.tif
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        elements: list[str] | None = None,
        units: str = "a.u.",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``filepath`` gives folder and stem; ``elements`` restricts/orders loading."""
        p = Path(filepath)
        self._filepath = p
        self._suffix = p.suffix if p.suffix.lower() in (".tif", ".tiff") else ".tif"
        self._stem = p.stem if p.suffix else p.name
        self._elements = None if elements is None else list(elements)
        self._units = units
        self.metadata = metadata

    def element_path(self, element: str) -> Path:
        """File written for ``element``."""
        return self._filepath.parent / f"{self._stem}_{element}{self._suffix}"

    def _found(self) -> dict[str, Path]:
        prefix = f"{self._stem}_"
        files = sorted(self._filepath.parent.glob(f"{prefix}*{self._suffix}"))
        return {p.stem[len(prefix):]: p for p in files}

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "elements": self._elements, "units": self._units}

    def save(self, data: Volume | ChunkedVolume) -> None:
        """One TIFF per element; a lazy ``ChunkedVolume`` is written slice by slice."""
        if not isinstance(data, (Volume, ChunkedVolume)):
            raise DatasetError(
                f"TiffVolumeDataset saves a Volume or ChunkedVolume, got {type(data).__name__}"
            )
        for element in data.elements:
            write_tiff_stack(self.element_path(element), data, element=element)

    def load(self) -> Volume:
        found = self._found()
        elements = self._elements or sorted(found)
        if not elements:
            raise FileNotFoundError(
                f"{self._filepath.parent}: no {self._stem}_<element>{self._suffix} files"
            )
        missing = [e for e in elements if e not in found]
        if missing:
            raise FileNotFoundError(
                f"{self.element_path(missing[0])}: file not found (elements {missing}; "
                f"found {sorted(found)})"
            )
        stacks = [read_tiff_map(found[e], units=self._units) for e in elements]
        voxel = read_tiff_voxel_size_nm(found[elements[0]])
        if voxel is None:
            raise DatasetError(f"{found[elements[0]]}: no voxel size in nm in the ImageJ metadata")
        info = read_tiff_info(found[elements[0]])
        return Volume(
            data=np.stack(stacks),
            voxel_size_nm=voxel,
            elements=tuple(elements),
            units=info.get("units", self._units),
            metadata=info.get("metadata", {}),
        )

    def _exists(self) -> bool:
        found = self._found()
        if self._elements:
            return all(e in found for e in self._elements)
        return bool(found)
