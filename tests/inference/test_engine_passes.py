"""The engine's CPU plan: small passes on several single-threaded workers, same output."""

from __future__ import annotations

import threading
import time

import numpy as np
import torch
from scipy import ndimage

from xrf_sr_kedro.inference import enhance_maps
from xrf_sr_kedro.inference.passes import (
    CPU_PASS_PIXELS,
    default_workers,
    ordered_map,
    tiles_per_pass,
)
from xrf_sr_kedro.models.dual_branch import DualBranchConfig, build_model


def _maps(n: int, size: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, size, size))
    return (100.0 * ndimage.gaussian_filter(x, sigma=(0, 2, 2)) + 5.0).astype(np.float32)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(DualBranchConfig(channels=8, n_msrb=1, n_groups=1, n_rcab=1,
                                        reduction=4)).eval()


def test_pass_sizes_cpu_small_gpu_large():
    assert tiles_per_pass(8, 64 * 64, "cpu") == CPU_PASS_PIXELS // (64 * 64) == 4
    assert tiles_per_pass(8, 64 * 64, "cuda") == 8
    assert tiles_per_pass(8, 192 * 192, "cpu") == 1 and tiles_per_pass(8, 192 * 192, "cuda") == 3
    assert default_workers("cuda", 50) == 1 and default_workers("cpu", 1) == 1


def test_ordered_map_keeps_order_and_bounds_work_in_flight():
    running, peak, lock = [0], [0], threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01 * (i % 3))
        with lock:
            running[0] -= 1
        return i * i

    assert list(ordered_map(work, range(20), workers=3, max_in_flight=4)) == [
        i * i for i in range(20)]
    assert 1 <= peak[0] <= 3
    assert list(ordered_map(work, range(5), workers=1)) == [0, 1, 4, 9, 16]


def test_workers_do_not_change_the_output_and_match_per_map_forward():
    model, maps = _model(), _maps(7, 40)
    kw = dict(precision="float32", num_threads=1, progress=False, device="cpu",
              conserve_total_signal=False, self_ensemble=False)
    one = enhance_maps(model, maps, 4, workers=1, **kw).data
    two = enhance_maps(model, maps, 4, workers=2, **kw).data
    np.testing.assert_array_equal(one, two)
    # reference: the plain model on each [0, 1]-normalised map, one at a time
    with torch.inference_mode():
        for m, got in zip(maps, two):
            lo, hi = float(m.min()), float(m.max())
            ref = model(torch.from_numpy((m - lo) / (hi - lo))[None, None])[0, 0].numpy()
            ref = np.clip(ref * (hi - lo) + lo, 0, None)
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * hi)
