"""Per-iteration progress of a slab on a Dask worker reaches the driver's redirected log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xrf_sr_kedro.progress import LOG_EVERY_ENV

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, sys, tempfile
import numpy as np
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
from xrf_sr_kedro.tomo.recon import reconstruct_stack
from xrf_sr_kedro.types import XRFStack
rng = np.random.default_rng(0)
angles = np.linspace(0.0, 180.0, 12, endpoint=False)
stack = XRFStack(data=rng.random((1, 12, 4, 16)).astype(np.float32), pixel_size_nm=100.0,
                 elements=("Zn_K",), angles_deg=angles, units="counts")
with tempfile.TemporaryDirectory() as tmp:
    vol = reconstruct_stack(stack, algorithm="ospml_quad", n_iter=2, n_subsets=3,
                            streaming="on", slab_slices=2, streaming_dir=tmp,
                            parallel={"mode": "local", "n_workers": 1,
                                      "threads_per_worker": 1, "dashboard_address": ":0"})
    assert np.isfinite(vol.read(0, 0, 4)).all()
"""


def test_iterations_on_a_worker_reach_the_redirected_driver_log(tmp_path):
    log = tmp_path / "run.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), LOG_EVERY_ENV: "0",
           "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=err, stdout=subprocess.DEVNULL,
                       env=env, check=True, timeout=300)
    text = log.read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("xrf_sr_kedro.progress")]
    # two slabs of 2 rows, each with its 2 iterations of 3 subsets, reported subset by
    # subset: forwarded from the worker process
    desc = "OSPML, 2 slice(s) of 16 px, 2 iteration(s) x 3 subset(s): "
    steps = [ln for ln in lines if desc in ln]
    assert sum("1/6 (17 %)" in ln and "left" in ln for ln in steps) == 2, text
    assert sum("6/6 (100 %)" in ln and "done" in ln for ln in steps) == 2, text
    assert "ospml_quad slabs: 2/2 (100 %)" in "\n".join(lines)
    assert "\r" not in text  # lines, not a bar
