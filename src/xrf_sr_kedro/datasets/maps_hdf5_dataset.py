"""``MapsHDF5Dataset``: MAPS-style HDF5 files (APS 2-ID-E, ...) as an XRFStack (read-only)."""

from __future__ import annotations

import os
from typing import Any

from xrf_sr_kedro.io.maps import check_maps_elements, read_maps_h5
from xrf_sr_kedro.types import XRFStack

from ._beamline import BeamlineFilesDataset, describe


class MapsHDF5Dataset(BeamlineFilesDataset):
    """Fitted (``source: fits``) or ROI (``source: roi``) maps from MAPS HDF5 files.

    One file per angle (a glob pattern or a list) or one file. The elements are
    checked against ``/MAPS/channel_names`` of the first file before any work; I0
    normalisation by the scaler ``i0_scaler`` (a warning without one); angles from
    ``/MAPS/extra_pvs`` (``theta_pv``), ``/MAPS@theta_deg`` or ``angles_deg``.

    Examples
    --------
    ::

        raw_xrf:
          type: xrf_sr_kedro.datasets.MapsHDF5Dataset
          filepath: /beamtime/2ide/img.dat/2xfm_*.h5
          elements: [W_L, Fe_K]
          i0_scaler: US_IC
          theta_pv: "2xfm:m58.VAL"
    """

    _what = "MAPS HDF5 file"

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike | list[str],
        elements: list[str],
        i0_scaler: str | None = None,
        source: str = "fits",
        theta_pv: str | None = None,
        angles_deg: list[float] | None = None,
        pixel_size_nm: float | list[float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring; the arguments are those of :func:`read_maps_h5`."""
        super().__init__(filepath, elements, metadata)
        self._kw = dict(i0_scaler=i0_scaler, source=source, theta_pv=theta_pv,
                        angles_deg=angles_deg, pixel_size_nm=pixel_size_nm)

    def _describe(self) -> dict[str, Any]:
        return describe(self, **self._kw)

    def _check(self, path: str) -> None:
        check_maps_elements(path, self._elements)

    def _read(self, paths: list[str]) -> XRFStack:
        return read_maps_h5(paths, self._elements, **self._kw)
