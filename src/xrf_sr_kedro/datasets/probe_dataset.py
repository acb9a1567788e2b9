"""``ProbeDataset``: a ptychography probe loaded as a normalised intensity."""

from __future__ import annotations

import logging
import os

import numpy as np
from typing import Any

from kedro.io.core import DatasetError, Version

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.probe import (
    is_probe_intensity_file,
    load_probe_intensity,
    read_probe,
    save_probe,
)
from xrf_sr_kedro.physics.probe import probe_from_modes
from xrf_sr_kedro.types import ProbeIntensity

logger = logging.getLogger(__name__)


class ProbeDataset(FileDataset[ProbeIntensity]):
    """Probe intensity ``sum_k |P_k|^2`` (sum 1) with its pixel size in nm.

    Loads a complex probe (``(h, w)`` or modes ``(k, h, w)``) from ``.npy`` (give
    ``pixel_size_nm``) or ``.h5`` (``key``; pixel size from the ``pixel_size_nm``
    attribute unless given), optionally resampled to ``target_pixel_size_nm`` and
    cropped/padded to ``size_px`` by :func:`xrf_sr_kedro.physics.probe.probe_from_modes`.
    Also loads intensities written by its own ``save`` (``.h5`` with
    ``/probe/intensity``).  Saves are atomic and versionable; save needs ``.h5``.

    Examples
    --------
    ::

        ptycho_probe:
          type: xrf_sr_kedro.datasets.ProbeDataset
          filepath: data/01_raw/probe_modes.npy
          pixel_size_nm: 8.9
          target_pixel_size_nm: 25.0
          size_px: 65

        probe_intensity:
          type: xrf_sr_kedro.datasets.ProbeDataset
          filepath: data/03_primary/probe_intensity.h5
          versioned: true
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        pixel_size_nm: float | None = None,
        key: str | None = None,
        target_pixel_size_nm: float | None = None,
        size_px: int | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring."""
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )
        self._pixel_size_nm = pixel_size_nm
        self._key = key
        self._target_pixel_size_nm = target_pixel_size_nm
        self._size_px = size_px

    def _describe(self) -> dict[str, Any]:
        return {
            **self._base_describe(),
            "pixel_size_nm": self._pixel_size_nm,
            "key": self._key,
            "target_pixel_size_nm": self._target_pixel_size_nm,
            "size_px": self._size_px,
        }

    def _read(self, path: str) -> ProbeIntensity:
        if is_probe_intensity_file(path):
            probe = load_probe_intensity(path)
            if self._target_pixel_size_nm is None and self._size_px is None:
                return probe
            # an intensity is one mode of amplitude sqrt(I)
            modes, pixel = np.sqrt(probe.intensity)[None], probe.pixel_size_nm
        else:
            modes, pixel = read_probe(path, pixel_size_nm=self._pixel_size_nm, key=self._key)
        probe = probe_from_modes(
            modes, pixel, target_pixel_size_nm=self._target_pixel_size_nm, size_px=self._size_px
        )
        return ProbeIntensity(
            probe.intensity, probe.pixel_size_nm, {**probe.metadata, "source_file": str(path)}
        )

    def load(self) -> ProbeIntensity:
        return self._load_with(self._read)

    def save(self, data: ProbeIntensity) -> None:
        if self._filepath.suffix.lower() not in (".h5", ".hdf5"):
            raise DatasetError(
                f"ProbeDataset saves HDF5 only; filepath {self._filepath} must end in .h5"
            )
        if not isinstance(data, ProbeIntensity):
            raise DatasetError(f"ProbeDataset saves a ProbeIntensity, got {type(data).__name__}")
        self._save_with(lambda path: save_probe(path, data))
