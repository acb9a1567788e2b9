"""A volume larger than a memory cap goes through the catalog and the nodes downstream of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from xrf_sr_kedro.io.chunked import slab_ranges, volume_writer
from xrf_sr_kedro.io.hdf5 import load_h5
from xrf_sr_kedro.tomo.reproject import project_volume
from xrf_sr_kedro.types import Volume

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
HEADROOM_MB = 24


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux")
def test_lazy_volume_larger_than_the_cap_goes_downstream(tmp_path):
    # 1 element x 2560 slices x 64 x 64: a 40 MiB volume, above the 24 MiB the capped
    # process may add; its reprojections at 8 angles (5 MiB) stay in memory
    rng = np.random.default_rng(0)
    path, out = tmp_path / "raw_volume.h5", tmp_path / "out"
    out.mkdir()
    first = last = None
    with volume_writer(path, (1, 2560, 64, 64), 30.0, ["Zn_K"],
                       metadata={"center_offset_nm": 30.0, "center_method": "test"}) as w:
        for s0, s1 in slab_ranges(2560, 256):
            block = rng.random((s1 - s0, 64, 64), dtype=np.float32)
            w[0, s0:s1] = block
            first = block[:16] if first is None else first
            last = block[-16:]
    assert 2560 * 64 * 64 * 4 > HEADROOM_MB * 2**20
    env_path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": env_path, "MPLBACKEND": "Agg"}
    run = subprocess.run(
        [sys.executable, str(HERE / "capped_catalog.py"), str(path), str(out), str(HEADROOM_MB)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cap_bites: True" in run.stdout
    assert "downstream_ok" in run.stdout
    # what came out equals the in-memory path on the first and the last slices
    stack = load_h5(out / "reprojections.h5")
    assert stack.data.shape == (1, 8, 2560, 64)
    angles = np.linspace(-90.0, 90.0, 8)
    for block, rows in ((first, slice(0, 16)), (last, slice(2544, 2560))):
        ref = project_volume(Volume(block[None], 30.0, ("Zn_K",),
                                    metadata={"center_offset_nm": 30.0}), angles,
                             clip_negative=True)
        np.testing.assert_allclose(stack.data[:, :, rows], ref.data, rtol=1e-5,
                                   atol=1e-5 * ref.data.max())
        np.testing.assert_array_equal(load_h5(out / "copy.h5").data[0, rows], block)
    tif = tifffile.imread(out / "volume_Zn_K.tif")
    assert tif.shape == (2560, 64, 64)
    np.testing.assert_array_equal(tif[-16:], last)
    assert stack.metadata["center_offset_nm"] == pytest.approx(30.0)
