"""Two gloo ranks under torchrun train the weights of one process with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model
from xrf_sr_kedro.training.loop import TrainConfig, fit

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = textwrap.dedent(
    """
    import os
    import sys
    import numpy as np
    import torch
    from xrf_sr_kedro.models.dual_branch import build_model
    from xrf_sr_kedro.training.loop import TrainConfig, fit
    from xrf_sr_kedro.types import PatchPairs

    data = np.load(sys.argv[1])
    train = PatchPairs(data["lr"], data["hr"], 120.0, 30.0)
    val = PatchPairs(data["lr"][:2], data["hr"][:2], 120.0, 30.0)
    torch.manual_seed(0)
    model = build_model("tiny")
    cfg = TrainConfig(epochs=2, batch_size=4, learning_rate=1e-3, seed=3,
                      max_train_batches_per_epoch=3, num_threads=1, amp=False)
    ckpt = fit(model, train, val, cfg, sys.argv[2], device="cpu")
    # every rank returns the same (broadcast) history
    rank = os.environ["RANK"]
    np.save(f"{sys.argv[2]}/val_psnr_rank{rank}.npy", np.asarray(ckpt["history"]["val_psnr"]))
    """
)


@pytest.mark.slow
def test_two_gloo_ranks_equal_single_process(pairs, tmp_path):
    # float32 (amp=False) on every CPU: bf16 rounding differs between a batch of 4 and
    # two halves of 2, far above the float32 tolerance this equivalence is checked to
    np.savez(tmp_path / "pairs.npz", lr=pairs.lr, hr=pairs.hr)
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), str(tmp_path / "pairs.npz"), str(ddp_dir)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    torch.manual_seed(0)
    model = build_model("tiny")
    cfg = TrainConfig(epochs=2, batch_size=4, learning_rate=1e-3, seed=3,
                      max_train_batches_per_epoch=3, num_threads=1, amp=False)
    single = fit(model, pairs, None, cfg, tmp_path / "single", device="cpu")

    ddp = load_checkpoint(ddp_dir / "last.pt")
    assert ddp["epoch"] == 2
    for k, v in single["model_state"].items():
        torch.testing.assert_close(ddp["model_state"][k], v, rtol=0, atol=1e-5, msg=k)
    np.testing.assert_allclose(ddp["history"]["train_l1"], single["history"]["train_l1"], atol=1e-6)
    # only rank 0 validated, yet both ranks hold its numbers
    r0, r1 = (np.load(ddp_dir / f"val_psnr_rank{r}.npy") for r in (0, 1))
    np.testing.assert_array_equal(r0, r1)
    assert np.all(np.isfinite(r0))
