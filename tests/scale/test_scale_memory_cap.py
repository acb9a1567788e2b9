"""A stack larger than a memory cap reconstructs slab by slab (capped subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xrf_sr_kedro.io.chunked import open_volume
from xrf_sr_kedro.tomo.recon import reconstruct

from scale_helpers import write_stack

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
HEADROOM_MB = 24


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux")
def test_stack_larger_than_the_cap_reconstructs_slab_by_slab(tmp_path):
    # 60 angles x 2560 rows x 64 px: a 37.5 MiB stack and a 40 MiB volume, both above the
    # 24 MiB the capped process may add to what the interpreter, torch and one warm-up
    # slab already use.  An in-memory reconstruction cannot even hold the volume there.
    stack_path, out_path = tmp_path / "stack.h5", tmp_path / "vol.h5"
    data, angles = write_stack(stack_path, 1, 60, 2560, 64, chunk_rows=64)
    assert data.nbytes > HEADROOM_MB * 2**20
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    run = subprocess.run(
        [sys.executable, str(HERE / "capped_recon.py"), str(stack_path), str(out_path),
         str(HEADROOM_MB), "64"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cap_bites: True" in run.stdout
    assert "streamed_ok" in run.stdout
    vol = open_volume(out_path)
    assert vol.shape == (1, 2560, 64, 64)
    # The first and the last slab equal an uncapped in-memory reconstruction.
    for r0, r1 in ((0, 64), (2496, 2560)):
        ref = reconstruct(data[0, :, r0:r1], angles, algorithm="sirt", n_iter=2, progress=False)
        np.testing.assert_allclose(vol.read(0, r0, r1), ref, rtol=1e-5, atol=1e-6 * ref.max())
