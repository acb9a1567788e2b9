"""Run by test_scale_catalog_memory_cap.py in a subprocess: the catalog's lazy volume under a cap.

Usage: ``python capped_catalog.py VOLUME OUT_FOLDER HEADROOM_MB``

Loads ``VOLUME`` through ``XRFHDF5Dataset`` (lazily: ``lazy_min_voxels`` below its
size), warms up (one slab reprojected, one figure drawn: imports, thread pools and
matplotlib cost the same for any volume), caps the data segment at its current size
plus ``HEADROOM_MB``, checks the cap bites (the whole volume cannot be allocated),
then does what the tomography pipeline does downstream of a reconstruction: the
reprojection (slab by slab, projections in memory), the figure of the central
planes, the TIFF export and a copy into another catalog entry.  Prints
``cap_bites`` and ``downstream_ok``; any failure exits non-zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from xrf_sr_kedro.datasets import TiffVolumeDataset, XRFHDF5Dataset
from xrf_sr_kedro.io.chunked import ChunkedVolume
from xrf_sr_kedro.pipelines.tomography.nodes import (
    ReprojectionParams,
    reproject_volume,
    slice_figures,
)
from xrf_sr_kedro.tomo.reproject import reproject

from memory_cap import cap_data, require_cap_bites  # sibling module (the script's folder is on sys.path)

N_ANGLES = 8


def main(volume_path: str, out: str, headroom_mb: float) -> None:
    volume = XRFHDF5Dataset(filepath=volume_path, lazy_min_voxels=2**16).load()
    assert isinstance(volume, ChunkedVolume), type(volume)
    n_el, n_slices, n, _ = volume.shape
    angles = np.linspace(-90.0, 90.0, N_ANGLES)
    reproject(volume.read(0, 0, 64), angles, slice_batch=64, progress=False)  # warm-up
    slice_figures(warm_up=volume)
    cap_data(headroom_mb)
    require_cap_bites((n_el, n_slices, n, n))
    stack = reproject_volume(volume, ReprojectionParams(n_angles=N_ANGLES))
    XRFHDF5Dataset(filepath=str(Path(out) / "reprojections.h5")).save(stack)
    figures = slice_figures(raw_volume=volume)
    TiffVolumeDataset(filepath=str(Path(out) / "volume.tif")).save(volume)
    XRFHDF5Dataset(filepath=str(Path(out) / "copy.h5")).save(volume)
    print(f"downstream_ok: {len(figures)} figure(s), reprojections {stack.data.shape}, "
          f"volume {n_el * n_slices * n * n * 4 / 2**20:.1f} MiB under {headroom_mb} MiB headroom")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
