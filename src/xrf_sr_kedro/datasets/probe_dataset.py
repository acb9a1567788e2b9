"""``ProbeDataset``: a ptychography probe loaded as a normalised intensity."""

from __future__ import annotations

import logging
import os
from typing import Any

from kedro.io.core import DatasetError, Version

from xrf_sr_kedro.datasets._base import FileDataset
from xrf_sr_kedro.io.probe import (
    is_probe_intensity_file,
    load_probe_intensity,
    probe_intensity_from_modes,
    read_probe,
    save_probe,
)
from xrf_sr_kedro.types import ProbeIntensity

logger = logging.getLogger(__name__)


def _intensity_from_modes(
    modes: Any,
    pixel_size_nm: float,
    target_pixel_size_nm: float | None,
    size_px: int | None,
    source: str,
) -> ProbeIntensity:
    """Use physics.probe.probe_from_modes when present (it resamples), else no resampling."""
    try:
        from xrf_sr_kedro.physics.probe import probe_from_modes
    except ImportError:
        probe_from_modes = None
    if probe_from_modes is not None:
        probe = probe_from_modes(
            modes, pixel_size_nm, target_pixel_size_nm=target_pixel_size_nm, size_px=size_px
        )
        md = {**probe.metadata, "source_file": source, "n_modes": int(modes.shape[0])}
        return ProbeIntensity(probe.intensity, probe.pixel_size_nm, md)
    if target_pixel_size_nm is not None or size_px is not None:
        logger.warning(
            "physics.probe.probe_from_modes is unavailable: %s is not resampled to "
            "target_pixel_size_nm=%s / size_px=%s",
            source,
            target_pixel_size_nm,
            size_px,
        )
    return ProbeIntensity(
        probe_intensity_from_modes(modes),
        pixel_size_nm,
        {"source_file": source, "n_modes": int(modes.shape[0])},
    )


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
            # a (real, non-negative) intensity is one mode with amplitude sqrt(I)
            modes = (probe.intensity.astype("float64") ** 0.5)[None].astype("complex64")
            return _intensity_from_modes(
                modes, probe.pixel_size_nm, self._target_pixel_size_nm, self._size_px, path
            )
        modes, pixel = read_probe(path, pixel_size_nm=self._pixel_size_nm, key=self._key)
        return _intensity_from_modes(
            modes, pixel, self._target_pixel_size_nm, self._size_px, str(path)
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
