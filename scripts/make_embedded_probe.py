"""Write the embedded default probe, data/01_raw/embedded/hxn_zone_plate_probe.npy.

The paper uses the probe reconstructed by ptychography at HXN (not public).  The
embedded default stands in for it: the focus of the paper's zone plate (30 nm
outermost zone, 250 um diameter, 10 keV) computed by
:func:`xrf_sr_kedro.physics.probe.zone_plate_probe`, stored the way a ptychography
probe file is read (an amplitude |P| = sqrt(I), one mode, 64 x 64 at 7.5 nm).
Replace it by your own probe through conf/local/catalog.yml (docs/real_data.md).

Run: python scripts/make_embedded_probe.py
"""

from pathlib import Path

import numpy as np

from xrf_sr_kedro.physics.probe import probe_fwhm_nm, zone_plate_probe

OUT = Path(__file__).resolve().parents[1] / "data" / "01_raw" / "embedded" / "hxn_zone_plate_probe.npy"

if __name__ == "__main__":
    probe = zone_plate_probe(pixel_size_nm=7.5, size_px=64)
    amplitude = np.sqrt(probe.intensity).astype(np.complex64)[None]  # (modes, h, w)
    np.save(OUT, amplitude)
    print(f"wrote {OUT} {amplitude.shape}, FWHM {probe_fwhm_nm(probe):.1f} nm")
