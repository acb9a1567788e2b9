"""``SpectraDataset``: per-pixel fluorescence spectra (HDF5 / .npz / .npy) as element maps."""

from __future__ import annotations

import os
from typing import Any

from xrf_sr_kedro.io.spectra import EnergyCalibration, check_spectra_lines, read_spectra
from xrf_sr_kedro.types import XRFStack

from ._beamline import BeamlineFilesDataset, describe


class SpectraDataset(BeamlineFilesDataset):
    """Element maps fitted (``method: fit``) or windowed from per-pixel spectra (read-only).

    The lines (``Mn_K``, ``W_L``) are checked against xraylib and the calibrated
    energy range of the first file before any work; ``calibration``
    (``{offset_kev, slope_kev, quadratic_kev}``) overrides the file's;
    ``i0_scaler`` names the flux scaler to normalise by (a warning without one).

    Examples
    --------
    ::

        raw_xrf:
          type: xrf_sr_kedro.datasets.SpectraDataset
          filepath: data/01_raw/real_like/scan_*.h5
          elements: [Mn_K, Fe_K]
          i0_scaler: US_IC
    """

    _what = "spectra file (.h5, .npz or .npy)"

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike | list[str],
        elements: list[str],
        i0_scaler: str | None = None,
        method: str = "fit",
        fwhm_ev: float = 150.0,
        calibration: dict[str, float] | None = None,
        angles_deg: list[float] | None = None,
        pixel_size_nm: float | list[float] | None = None,
        key: str = "spectra",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring; the arguments are those of :func:`read_spectra`."""
        super().__init__(filepath, elements, metadata)
        self._calibration = None if calibration is None else EnergyCalibration(**calibration)
        self._key = key
        self._kw = dict(i0_scaler=i0_scaler, method=method, fwhm_ev=fwhm_ev,
                        angles_deg=angles_deg, pixel_size_nm=pixel_size_nm, key=key)

    def _describe(self) -> dict[str, Any]:
        return describe(self, calibration=self._calibration, **self._kw)

    def _check(self, path: str) -> None:
        check_spectra_lines(path, self._elements, self._calibration, self._key)

    def _read(self, paths: list[str]) -> XRFStack:
        return read_spectra(paths, self._elements, calibration=self._calibration, **self._kw)
