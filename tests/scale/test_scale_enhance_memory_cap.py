"""An enhanced stack larger than a memory cap goes through enhance -> save -> reconstruct."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scale_helpers import write_stack

from xrf_sr_kedro.inference.stack import enhance_with_checkpoint
from xrf_sr_kedro.io.checkpoint import config_as_dict
from xrf_sr_kedro.io.chunked import open_stack, open_volume
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.tomo.recon import reconstruct_stack

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
HEADROOM_MB = 24
sys.path.insert(0, str(HERE))
from capped_enhance import probe, settings  # noqa: E402


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc are Linux")
def test_enhanced_stack_larger_than_the_cap_is_enhanced_saved_and_reconstructed(tmp_path):
    # 1 element x 160 angles x 128 rows x 24 px reprojected (2 MiB); enhanced 4x: 160 x 512
    # x 96 px, 30 MiB, above the 24 MiB the capped process may add
    stack_path, out = tmp_path / "reprojections.h5", tmp_path / "out"
    out.mkdir()
    write_stack(stack_path, 1, 160, 128, 24, seed=5)
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    checkpoint = {"format_version": 1, "config": config_as_dict(model.config),
                  "model_state": model.state_dict(), "preset": "tiny"}
    torch.save(checkpoint, tmp_path / "tiny.pt")
    assert 160 * 512 * 96 * 4 > HEADROOM_MB * 2**20
    env_path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    # a fixed mmap threshold: glibc's dynamic one would otherwise serve a large block from
    # heap the warm-up freed, and the cap would measure the warm-up, not the pipeline
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": env_path, "MPLBACKEND": "Agg",
           "KEDRO_DISABLE_TELEMETRY": "1", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    run = subprocess.run(
        [sys.executable, str(HERE / "capped_enhance.py"), str(tmp_path / "tiny.pt"),
         str(stack_path), str(out), str(HEADROOM_MB)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    assert "cap_bites: True" in run.stdout
    assert "pipeline_ok" in run.stdout
    assert list((out / "scratch").iterdir()) == []  # moved into place, no debris
    # what came out equals the in-memory path: the enhanced maps and their reconstruction
    coarse = open_stack(stack_path).to_stack()
    engine, recon = settings(tmp_path / "unused")
    saved = open_stack(out / "enhanced_reprojections.h5")
    assert saved.shape == (1, 160, 512, 96)
    for frames in (slice(0, 8), slice(152, 160)):
        ref = enhance_with_checkpoint(coarse.select_frames(frames), checkpoint, probe(), engine)
        np.testing.assert_allclose(saved.read_frames(0, frames.start, frames.stop), ref.data[0],
                                   rtol=1e-6, atol=1e-6 * ref.data.max())
        assert saved.units == ref.units
    enhanced = saved.to_stack()
    assert enhanced.metadata["enhancement"]["fine_pixels_per_measured_pixel"] == 16
    volume = open_volume(out / "enhanced_volume.h5")
    ref_volume = reconstruct_stack(enhanced, algorithm="fbp", streaming="off")
    assert volume.shape == ref_volume.data.shape == (1, 512, 96, 96)
    np.testing.assert_allclose(volume.read(0, 0, 512), ref_volume.data[0], rtol=1e-5,
                               atol=1e-5 * np.abs(ref_volume.data).max())
