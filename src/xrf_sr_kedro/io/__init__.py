"""Framework-free readers and writers (no Kedro imports).

* :mod:`~xrf_sr_kedro.io.hdf5`: our HDF5 layouts (Data Exchange for projection
  stacks) for XRFStack, Volume and PatchPairs, plus foreign Data Exchange files.
* :mod:`~xrf_sr_kedro.io.pyxrf`: PyXRF fitted-map files.
* :mod:`~xrf_sr_kedro.io.tiff`: TIFF maps in, ImageJ TIFF stacks out.
* :mod:`~xrf_sr_kedro.io.probe`: ptychography probes in, probe intensities out.
* :mod:`~xrf_sr_kedro.io.checkpoint`, :mod:`~xrf_sr_kedro.io.dxchange`,
  :mod:`~xrf_sr_kedro.io.atomic`: see those modules.

All writers are atomic (:func:`~xrf_sr_kedro.io.atomic.atomic_path`).  Readers
raise ``FileNotFoundError`` or :class:`DataFormatError` naming the file, the key
and what was expected.
"""

from xrf_sr_kedro.io.hdf5 import DataFormatError, load_h5, save_h5
from xrf_sr_kedro.io.probe import (
    load_probe_intensity,
    read_probe,
    save_probe,
)
from xrf_sr_kedro.io.pyxrf import read_pyxrf, read_pyxrf_series
from xrf_sr_kedro.io.tiff import read_tiff_maps, write_tiff_stack

__all__ = [
    "DataFormatError",
    "load_h5",
    "load_probe_intensity",
    "read_probe",
    "read_pyxrf",
    "read_pyxrf_series",
    "read_tiff_maps",
    "save_h5",
    "save_probe",
    "write_tiff_stack",
]
