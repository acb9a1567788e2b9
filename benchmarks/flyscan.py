"""Fly-scan forward model: fast (folded FFT) vs a naive per-spot loop, and the
throughput of simulating DIV2K-sized grayscale images (fly-scan + counting noise).

Run: .venv/bin/python benchmarks/flyscan.py
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import torch

from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.noise import simulate_counts
from xrf_sr_kedro.physics.probe import zone_plate_probe


def naive_flyscan(x: np.ndarray, probe: np.ndarray, s: int, n: int) -> np.ndarray:
    """Per-spot loop of the documented convention (fast axis x): at every scan spot and
    sub-step, sum probe x sample over the probe window (fractional placements by
    linear interpolation, precomputed once per sub-step)."""
    H, W = x.shape
    ph, pw = probe.shape
    pad = max(ph, pw) + 2 * s
    xp = np.pad(x.astype(np.float64), pad)
    shifted = []  # (row offset, col offset, probe) per sub-step, relative to the window start
    for m in range(n):
        tx = (s - 1) / 2 - s / 2 + (m + 0.5) * s / n - (pw - 1) / 2
        ty = (s - 1) / 2 - (ph - 1) / 2
        x0, fx = math.floor(tx), tx - math.floor(tx)
        y0, fy = math.floor(ty), ty - math.floor(ty)
        p = np.zeros((ph + 1, pw + 1))
        p[:ph, :pw] += (1 - fy) * (1 - fx) * probe
        p[:ph, 1:] += (1 - fy) * fx * probe
        p[1:, :pw] += fy * (1 - fx) * probe
        p[1:, 1:] += fy * fx * probe
        shifted.append((y0, x0, p))
    out = np.zeros((H // s, W // s))
    for i in range(H // s):
        for j in range(W // s):
            acc = 0.0
            for y0, x0, p in shifted:
                r, c = i * s + y0 + pad, j * s + x0 + pad
                acc += float(np.sum(p * xp[r : r + ph + 1, c : c + pw + 1]))
            out[i, j] = acc / n
    return out


def best_of(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 2)))
    rng = np.random.default_rng(0)
    probe = zone_plate_probe()  # 64 x 64 px at 7.5 nm, FWHM ~40 nm
    p = probe.intensity
    s = 4
    x = rng.random((256, 256)).astype(np.float32)

    fast_out = flyscan(x, p, s)
    t_fast = best_of(lambda: flyscan(x, p, s), 20)
    t0 = time.perf_counter()
    naive_out = naive_flyscan(x, p, s, s)
    t_naive = time.perf_counter() - t0
    max_err = float(np.abs(fast_out - naive_out).max() / np.abs(naive_out).max())

    batch = torch.rand(16, 1, 256, 256)
    flyscan(batch, p, s)
    t_torch = best_of(lambda: flyscan(batch, p, s), 5)

    # DIV2K-sized images (2040 x 1356), smooth-ish content in [0, 1]
    n_img = 6
    imgs = []
    for k in range(n_img):
        base = rng.random((1356 // 8, 2040 // 8)).astype(np.float32)
        imgs.append(np.kron(base, np.ones((8, 8), np.float32)) * 0.8 + 0.1)
    def simulate(img: np.ndarray, k: int) -> np.ndarray:
        return simulate_counts(flyscan(img, p, s), 100.0, 2.0, 1.0, seed=k)

    simulate(imgs[0], 0)
    t0 = time.perf_counter()
    for k, img in enumerate(imgs):
        simulate(img, k)
    t_div2k = (time.perf_counter() - t0) / n_img

    print(f"cores available: {os.cpu_count()}, torch threads: {torch.get_num_threads()}")
    print(f"probe: zone plate {p.shape[0]}x{p.shape[1]} px at {probe.pixel_size_nm} nm, "
          f"FWHM {probe.metadata['fwhm_nm']:.1f} nm; step {s} px, fly scan along x")
    print(f"{'case':46s} {'time':>12s}")
    print(f"{'naive per-spot loop, 256x256 (numpy)':46s} {t_naive * 1e3:10.1f} ms")
    print(f"{'fast flyscan, 256x256 (numpy, best of 20)':46s} {t_fast * 1e3:10.3f} ms")
    print(f"{'fast flyscan, torch batch 16x1x256x256':46s} {t_torch * 1e3:10.1f} ms")
    print(f"{'DIV2K-sized 2040x1356: flyscan + noise':46s} {t_div2k * 1e3:10.1f} ms/image")
    print(f"max relative difference fast vs naive: {max_err:.2e}")
    print(f"speedup_vs_naive: {t_naive / t_fast:.1f}")
    print(f"div2k_images_per_s: {1.0 / t_div2k:.2f}")


if __name__ == "__main__":
    main()
