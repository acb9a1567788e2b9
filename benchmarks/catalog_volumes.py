"""Memory and time of the nodes downstream of a reconstruction: a lazy volume against a whole one.

Run: ``PYTHONPATH=src python benchmarks/catalog_volumes.py [--slices 128] [--width 512]
[--angles 90]``

Writes one volume file of ``1 x slices x width x width`` float32 (the layout the
streamed reconstruction writes), then, in two fresh processes, loads it through
``XRFHDF5Dataset`` (``lazy_min_voxels`` above its size: the whole ``Volume``; 0:
the lazy ``ChunkedVolume``) and runs what the tomography pipeline does after the
reconstruction: the reprojection node (``--angles`` angles), the central-slice
figures and the TIFF export.  Each process reports its peak resident memory
(``ru_maxrss``) and the wall time of those steps, measured in this one run.  Ends
with ``name: value`` lines: ``catalog_volume_mb``, ``catalog_whole_peak_mb``,
``catalog_lazy_peak_mb``, ``catalog_lazy_peak_saving_mb`` and
``catalog_lazy_time_ratio`` (lazy over whole).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from xrf_sr_kedro.datasets import TiffVolumeDataset, XRFHDF5Dataset
from xrf_sr_kedro.pipelines.tomography.nodes import (
    ReprojectionParams, reproject_volume, slice_figures)
path, out, lazy_min, n_angles = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
volume = XRFHDF5Dataset(filepath=path, lazy_min_voxels=lazy_min).load()
stack = reproject_volume(volume, ReprojectionParams(n_angles=n_angles))
figures = slice_figures(raw_volume=volume)
TiffVolumeDataset(filepath=str(out / "volume.tif")).save(volume)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kind": type(volume).__name__, "seconds": seconds,
                  "peak_mb": peak / 1024, "after_imports_mb": base / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=128)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--angles", type=int, default=90)
    args = parser.parse_args()

    from xrf_sr_kedro.io.chunked import slab_ranges, volume_writer

    shape = (1, args.slices, args.width, args.width)
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory(prefix="catalog_volumes_") as tmp:
        path = Path(tmp) / "volume.h5"
        with volume_writer(path, shape, 30.0, ["Zn_K"], metadata={"center_offset_nm": 0.0}) as w:
            for s0, s1 in slab_ranges(args.slices, 16):
                w[0, s0:s1] = rng.random((s1 - s0, args.width, args.width), dtype=np.float32)
        env = {**os.environ, "MPLBACKEND": "Agg"}
        for name, lazy_min in (("whole", 2**62), ("lazy", 0)):
            out = Path(tmp) / name
            out.mkdir()
            run = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(out), str(lazy_min), str(args.angles)],
                capture_output=True, text=True, env=env, check=True,
            )
            results[name] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{name}: {results[name]}")
    volume_mb = np.prod(shape) * 4 / 2**20
    whole, lazy = results["whole"], results["lazy"]
    print(f"catalog_volume_mb: {volume_mb:.1f}")
    print(f"catalog_whole_peak_mb: {whole['peak_mb']:.1f}")
    print(f"catalog_lazy_peak_mb: {lazy['peak_mb']:.1f}")
    print(f"catalog_lazy_peak_saving_mb: {whole['peak_mb'] - lazy['peak_mb']:.1f}")
    print(f"catalog_lazy_time_ratio: {lazy['seconds'] / whole['seconds']:.2f}")


if __name__ == "__main__":
    main()
