"""The long loops report progress in a redirected log (no terminal), not only on a tty."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xrf_sr_kedro.progress import LOG_EVERY_ENV, Progress, default_log_every_s

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, sys
import numpy as np
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
from xrf_sr_kedro.tomo.recon import reconstruct
from xrf_sr_kedro.inference import enhance_maps
from xrf_sr_kedro.models.dual_branch import build_model
rng = np.random.default_rng(0)
proj = rng.random((12, 4, 16)).astype(np.float32)
reconstruct(proj, np.linspace(0, 180, 12, endpoint=False), algorithm="sirt", n_iter=3,
            slice_batch=2, device="cpu")
enhance_maps(build_model("small").eval(), rng.random((3, 32, 32)).astype(np.float32), 4,
             precision="float32", device="cpu")
"""


def test_reconstruction_and_enhancement_progress_reach_a_redirected_log(tmp_path):
    log = tmp_path / "run.log"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), LOG_EVERY_ENV: "0",
           "OMP_NUM_THREADS": "1"}
    with open(log, "w") as err:
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=err, stdout=subprocess.DEVNULL,
                       env=env, check=True, timeout=300)
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("xrf_sr_kedro.progress")]
    text = "\n".join(lines)
    # the slice-batch loop (2 batches) and each batch's iterations (3) report with the time left
    assert "sirt slice batches: 1/2 (50 %)" in text and "left" in text
    assert "sirt slice batches: 2/2 (100 %)" in text
    assert "SIRT: 1/3 (33 %)" in text
    # the enhancement engine reports maps
    assert "enhancing maps: 3/3 (100 %)" in text
    assert "\r" not in log.read_text()  # no terminal bar in a file


def test_quiet_inner_loop_logs_nothing_when_short_and_reports_when_long(caplog):
    caplog.set_level(logging.INFO, logger="xrf_sr_kedro.progress")
    t = [0.0]
    with Progress(3, "inner", log_every_s=30.0, bar=False, quiet=True, clock=lambda: t[0]) as p:
        for _ in range(3):
            t[0] += 1.0
            p.update()
    assert caplog.records == []
    with Progress(3, "long", log_every_s=30.0, bar=False, quiet=True, clock=lambda: t[0]) as p:
        for _ in range(3):
            t[0] += 20.0
            p.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["long: 2/3 (67 %), 0:00:40 elapsed, about 20 s left",
                     "long: 3/3 (100 %), 0:01:00 elapsed, done"]


def test_log_interval_from_environment(monkeypatch):
    monkeypatch.setenv(LOG_EVERY_ENV, "120")
    assert default_log_every_s() == 120.0
    monkeypatch.setenv(LOG_EVERY_ENV, "soon")
    with pytest.raises(ValueError, match=LOG_EVERY_ENV):
        default_log_every_s()
    monkeypatch.delenv(LOG_EVERY_ENV)
    assert default_log_every_s() == 30.0
