"""``MatMapsDataset``: element maps in MATLAB ``.mat`` files (v5 or v7.3) as an XRFStack."""

from __future__ import annotations

import os
from typing import Any

from xrf_sr_kedro.io.matlab import check_mat_elements, read_mat_maps
from xrf_sr_kedro.types import XRFStack

from ._beamline import BeamlineFilesDataset, describe


class MatMapsDataset(BeamlineFilesDataset):
    """Maps from ``.mat`` files (read-only): ``data_key`` ``(n_el, H, W)`` or
    ``(n_el, n_angles, H, W)``, names in ``names_key``, angles in ``angles_key``
    (or ``angles_deg``), I0 in ``i0_key`` (a warning without one).

    The elements are checked against ``names_key`` of the first file before any work.

    Examples
    --------
    ::

        raw_xrf:
          type: xrf_sr_kedro.datasets.MatMapsDataset
          filepath: data/01_raw/tomo_maps.mat
          elements: [Fe_K]
          i0_key: I0
    """

    _what = "MATLAB .mat file"

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike | list[str],
        elements: list[str],
        data_key: str = "maps",
        names_key: str = "elements",
        angles_key: str | None = "theta_deg",
        i0_key: str | None = None,
        pixel_size_key: str | None = "pixel_size_nm",
        angles_deg: list[float] | None = None,
        pixel_size_nm: float | list[float] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See the class docstring; the arguments are those of :func:`read_mat_maps`."""
        super().__init__(filepath, elements, metadata)
        self._names_key = names_key
        self._kw = dict(data_key=data_key, names_key=names_key, angles_key=angles_key,
                        i0_key=i0_key, pixel_size_key=pixel_size_key, angles_deg=angles_deg,
                        pixel_size_nm=pixel_size_nm)

    def _describe(self) -> dict[str, Any]:
        return describe(self, **self._kw)

    def _check(self, path: str) -> None:
        check_mat_elements(path, self._elements, self._names_key)

    def _read(self, paths: list[str]) -> XRFStack:
        return read_mat_maps(paths, self._elements, **self._kw)
