"""Tomography benchmark: project FBP/SIRT/OSPML vs ASTRA (CPU) and scikit-image.

One 128x128 Shepp-Logan slice, 90 angles over 180 degrees, data simulated on a
2x finer grid (no inverse crime) with Poisson noise (peak ~2000 counts a ray).
Every method gets the same sinogram, mapped to its own angle/detector
convention (found by matching its forward projection of the truth).  Prints a
table (time, RMSE against the truth) and the headline lines.

Then, at 128, 512 and 2048 px (36 angles, 10 subsets), one OSPML iteration of
``ospml_quad`` on a batch of slices with the project's projector (``method="auto"``:
the sparse matrix where it fits, matrix-free above) against the *same* iteration
with ASTRA's CPU ``linear`` (Joseph) projector plugged in as the projector (ASTRA
works one slice at a time and single-threaded); time per slice-iteration and
peak memory (RSS growth of a fresh process per case, inputs included).  Last, a
1750 px, 36-angle, 8-slice timed iteration projects the time of the real-size case
(51 slices, 10 iterations) from it.

The last lines are ``ospml_2048px_time_ratio_vs_astra: <x>`` (ours over ASTRA's,
per slice and iteration; goal <= 2) and ``ospml_2048px_peak_gb_per_8_slices: <x>``
(goal < 1).

Run: PYTHONPATH=src python benchmarks/tomography.py [--skip-scale]
(ASTRA rows need astra-toolbox, the ``bench`` extra; they are skipped with a
message when it is not importable; ``_astra_cpu`` stands in for the CUDA runtime
its wheel links even for the CPU code).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, iradon_sart, radon, resize

from xrf_sr_kedro.tomo import ParallelBeamProjector, fbp, ospml_quad, sirt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _astra_cpu import import_astra  # noqa: E402

N, N_ANGLES, N_ITER_SIRT, REG_PAR, N_SUBSETS = 128, 90, 100, 0.1, 10
torch.set_num_threads(max(1, torch.get_num_threads()))


def rmse(rec, truth):
    return float(np.sqrt(np.mean((np.asarray(rec, dtype=np.float64) - truth) ** 2)))


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def make_problem():
    angles = np.linspace(0.0, 180.0, N_ANGLES, endpoint=False)
    fine = resize(shepp_logan_phantom(), (2 * N, 2 * N), anti_aliasing=True)
    truth = resize(shepp_logan_phantom(), (N, N), anti_aliasing=True)
    pf = ParallelBeamProjector(2 * N, angles, device="cpu", dtype=torch.float64)
    s = pf.forward(torch.from_numpy(fine)[None])
    clean = (0.25 * (s[..., 0::2] + s[..., 1::2]))[0].numpy()  # (n_angles, n_det)
    scale = 2000.0 / clean.max()
    rng = np.random.default_rng(0)
    noisy = rng.poisson(clean * scale) / scale
    return angles, truth, noisy


def best_mapping(forward, truth, sino, angles_deg):
    """Pick the angle transform / detector flip that makes `forward` match our data."""
    best = None
    for sign in (1, -1):
        for shift in (0.0, 90.0, -90.0, 180.0):
            for flip in (False, True):
                a = sign * angles_deg + shift
                fp = forward(truth, a)
                fp = fp[:, ::-1] if flip else fp
                err = np.linalg.norm(fp - sino) / np.linalg.norm(sino)
                if best is None or err < best[0]:
                    best = (err, a, flip)
    return best


def small_problem() -> None:
    angles, truth, sino = make_problem()
    rows = []
    dev = "cpu"
    sino_t = torch.from_numpy(sino[None].astype(np.float32))

    # --- project
    proj = ParallelBeamProjector(N, angles, device=dev)
    _, t_build = timed(proj._get_blocks)  # the matrix path: it fits at 128 px
    rec, t = timed(fbp, sino_t, angles, projector=proj)
    rows.append(("project FBP (ramp)", t, rmse(rec[0], truth), ""))
    rec, t_sirt = timed(sirt, sino_t, proj, N_ITER_SIRT, progress=False)
    sirt_rmse = rmse(rec[0], truth)
    rows.append((f"project SIRT x{N_ITER_SIRT}", t_sirt, sirt_rmse, f"build {t_build:.2f}s"))
    # OSPML: as many iterations as fit in SIRT's time.
    ospml_quad(sino_t, proj, 1, N_SUBSETS, REG_PAR, progress=False)  # builds subset matrices
    _, t_one = timed(ospml_quad, sino_t, proj, 2, N_SUBSETS, REG_PAR, progress=False)
    n_os = max(1, int(t_sirt / (t_one / 2)))
    rec, t = timed(ospml_quad, sino_t, proj, n_os, N_SUBSETS, REG_PAR, progress=False)
    ospml_rmse = rmse(rec[0], truth)
    rows.append((f"project OSPML x{n_os} ({N_SUBSETS} subsets, b={REG_PAR})", t, ospml_rmse, ""))

    # --- scikit-image (theta in degrees, sinogram (n_det, n_angles))
    def _sk_fp(img, a):
        return radon(img, theta=a, circle=True).T  # (n_angles, N)

    err, a_sk, flip_sk = best_mapping(_sk_fp, truth, sino, angles)
    sk_sino = (sino[:, ::-1] if flip_sk else sino).T
    rec, t = timed(iradon, sk_sino, theta=a_sk, filter_name="ramp", circle=True)
    rows.append(("skimage iradon (ramp)", t, rmse(rec, truth), f"fp mismatch {err:.3f}"))
    rec, t = timed(iradon_sart, sk_sino, theta=a_sk)
    rec2, t2 = timed(iradon_sart, sk_sino, theta=a_sk, image=rec)
    rows.append(("skimage iradon_sart x2", t + t2, rmse(rec2, truth), ""))

    # --- ASTRA CPU
    astra_sirt_rmse = float("nan")
    t_astra_sirt = float("nan")
    try:
        astra = import_astra()
    except ImportError as exc:
        print(f"astra-toolbox not importable ({exc}); skipping ASTRA rows")
        astra = None
    if astra is not None:
        vol_geom = astra.create_vol_geom(N, N)

        def astra_fp(img, a):
            pg = astra.create_proj_geom("parallel", 1.0, N, np.deg2rad(a))
            pid = astra.create_projector("linear", pg, vol_geom)
            sid, fp = astra.create_sino(img, pid)
            astra.data2d.delete(sid)
            astra.projector.delete(pid)
            return fp

        err, a_as, flip_as = best_mapping(astra_fp, truth, sino, angles)
        as_sino = np.ascontiguousarray(sino[:, ::-1] if flip_as else sino)
        pg = astra.create_proj_geom("parallel", 1.0, N, np.deg2rad(a_as))
        pid = astra.create_projector("linear", pg, vol_geom)

        def run_astra(alg, iters):
            sid = astra.data2d.create("-sino", pg, as_sino)
            rid = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict(alg)
            cfg["ProjectorId"] = pid
            cfg["ProjectionDataId"] = sid
            cfg["ReconstructionDataId"] = rid
            if alg == "SIRT":
                cfg["option"] = {"MinConstraint": 0.0}
            aid = astra.algorithm.create(cfg)
            t0 = time.perf_counter()
            astra.algorithm.run(aid, iters)
            dt = time.perf_counter() - t0
            out = astra.data2d.get(rid)
            for f, i in ((astra.algorithm.delete, aid), (astra.data2d.delete, rid),
                         (astra.data2d.delete, sid)):
                f(i)
            return out, dt

        rec, t = run_astra("FBP", 1)
        rows.append(("ASTRA CPU FBP (ram-lak)", t, rmse(rec, truth), f"fp mismatch {err:.3f}"))
        rec, t_astra_sirt = run_astra("SIRT", N_ITER_SIRT)
        astra_sirt_rmse = rmse(rec, truth)
        rows.append((f"ASTRA CPU SIRT x{N_ITER_SIRT}", t_astra_sirt, astra_sirt_rmse, ""))

    print(f"\n{N}x{N} Shepp-Logan, {N_ANGLES} angles, Poisson noise, {torch.get_num_threads()} "
          "torch threads, CPU")
    print(f"{'method':48s} {'time_s':>8s} {'rmse':>8s}  note")
    for name, t, e, note in rows:
        print(f"{name:48s} {t:8.3f} {e:8.4f}  {note}")
    ratio = (t_sirt / N_ITER_SIRT) / (t_astra_sirt / N_ITER_SIRT)
    print(f"sirt_time_per_iter_ratio_vs_astra: {ratio:.3f}")
    print(f"sirt_rmse: {sirt_rmse:.5f}")
    print(f"astra_sirt_rmse: {astra_sirt_rmse:.5f}")
    print(f"ospml_rmse_at_sirt_time: {ospml_rmse:.5f}")


# ----------------------------------------------------------------- scale comparison
SCALE_ANGLES, SCALE_SUBSETS = 36, 10


class AstraProjector:
    """ASTRA's CPU ``linear`` projector behind the ``ParallelBeamProjector`` interface."""

    def __init__(self, n: int, angles_deg: np.ndarray) -> None:
        self.astra = import_astra()
        self.n, self.n_det, self.angles_deg = n, n, np.asarray(angles_deg, dtype=float)
        self.device, self.dtype = torch.device("cpu"), torch.float32
        vg = self.astra.create_vol_geom(n, n)
        pg = self.astra.create_proj_geom("parallel", 1.0, n, np.deg2rad(self.angles_deg))
        self.pid = self.astra.create_projector("linear", pg, vg)

    n_angles = property(lambda self: len(self.angles_deg))
    sino_shape = property(lambda self: (self.n_angles, self.n_det))

    def subset(self, index):
        return AstraProjector(self.n, self.angles_deg[index])

    def forward(self, vol):
        out = []
        for img in np.asarray(vol, dtype=np.float32):
            sid, s = self.astra.create_sino(img, self.pid)
            self.astra.data2d.delete(sid)
            out.append(s)
        return torch.from_numpy(np.stack(out))

    def adjoint(self, sino):
        out = []
        for s in np.asarray(sino, dtype=np.float32):
            bid, b = self.astra.create_backprojection(np.ascontiguousarray(s), self.pid)
            self.astra.data2d.delete(bid)
            out.append(b)
        return torch.from_numpy(np.stack(out))


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(which: str, n: int, n_slices: int, n_iter: int) -> dict:
    """One OSPML run in this (fresh) process: seconds per iteration, peak RSS growth."""
    base = _peak_bytes()
    angles = np.linspace(0.0, 180.0, SCALE_ANGLES, endpoint=False)
    disk = torch.zeros((1, n, n))
    yy, xx = torch.meshgrid(torch.arange(n) - n / 2 + 0.5, torch.arange(n) - n / 2 + 0.5,
                            indexing="ij")
    disk[0][(yy**2 + xx**2) < (0.4 * n) ** 2] = 1.0
    ours = ParallelBeamProjector(n, angles, device="cpu")
    sino = ours.forward(disk).expand(n_slices, -1, -1).contiguous() * 100.0
    proj = ours if which == "ours" else AstraProjector(n, angles)
    del disk
    t0 = time.perf_counter()
    ospml_quad(sino, proj, n_iter, SCALE_SUBSETS, REG_PAR, progress=False)
    dt = (time.perf_counter() - t0) / n_iter
    method = ("matrix" if ours.uses_matrix else "matrix-free") if which == "ours" else "astra"
    return {"s_per_iter": dt, "peak_gb": (_peak_bytes() - base) / 1e9, "method": method,
            "threads": torch.get_num_threads() if which == "ours" else 1}


def run_worker(which: str, n: int, n_slices: int, n_iter: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", which, str(n), str(n_slices), str(n_iter)],
        capture_output=True, text=True, env=os.environ.copy(), check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def scale_comparison() -> None:
    # (n, slices for ours, slices for ASTRA, iterations); ASTRA runs slice by slice,
    # so its time per slice does not depend on the batch: fewer slices at 2048 px.
    cases = [(128, 8, 8, 3), (512, 8, 4, 1), (2048, 8, 1, 1)]
    try:
        import_astra()
        have_astra = True
    except ImportError as exc:
        print(f"astra-toolbox not importable ({exc}); ASTRA columns are nan")
        have_astra = False
    print(f"\nOSPML ({SCALE_ANGLES} angles, {SCALE_SUBSETS} subsets), CPU; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'px':>5s} {'method':>12s} {'thr':>3s} {'slices':>6s} {'s/slice-iter':>12s} "
          f"{'peak GB':>8s} {'GB/8 slices':>11s} {'ASTRA s/slice-iter':>18s} {'ratio':>6s}")
    last = {}
    for n, n_ours, n_astra, n_iter in cases:
        r = run_worker("ours", n, n_ours, n_iter)
        a = run_worker("astra", n, n_astra, n_iter) if have_astra else None
        per_slice = r["s_per_iter"] / n_ours
        a_slice = a["s_per_iter"] / n_astra if a else float("nan")
        gb8 = r["peak_gb"] * 8 / n_ours
        print(f"{n:5d} {r['method']:>12s} {r['threads']:3d} {n_ours:6d} {per_slice:12.3f} "
              f"{r['peak_gb']:8.3f} {gb8:11.3f} {a_slice:18.3f} {per_slice / a_slice:6.2f}"
              + (f"  (ASTRA peak {a['peak_gb']:.3f} GB for {n_astra})" if a else ""))
        last = {"ratio": per_slice / a_slice, "gb8": gb8}
    # The real-size case, projected from a timed subset.
    n_real, slices_real, iters_real, slab = 1750, 51, 10, 8
    r = run_worker("ours", n_real, slab, 1)
    n_slabs = -(-slices_real // slab)
    total_min = r["s_per_iter"] * iters_real * n_slabs / 60.0
    print(f"\n{n_real} px, {SCALE_ANGLES} angles, {slab} slices, 1 OSPML iteration: "
          f"{r['s_per_iter']:.1f} s, peak {r['peak_gb']:.2f} GB ({r['method']})")
    print(f"projected {slices_real} slices x {iters_real} iterations in slabs of {slab}: "
          f"{total_min:.1f} min at peak {r['peak_gb']:.2f} GB (goal < 15 min, < 4 GB)")
    print(f"ospml_1750px_51_slices_10_iter_projected_min: {total_min:.1f}")
    print(f"ospml_2048px_time_ratio_vs_astra: {last['ratio']:.2f}")
    print(f"ospml_2048px_peak_gb_per_8_slices: {last['gb8']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scale", action="store_true",
                        help="only the 128 px quality table")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the project's runs (default: torch's "
                        "choice); on a busy shared machine 1 thread is often faster")
    parser.add_argument("--worker", nargs=4, metavar=("WHICH", "N", "SLICES", "ITERS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # for the worker processes
        torch.set_num_threads(args.threads)
    if args.worker:
        which, n, n_slices, n_iter = args.worker
        print(json.dumps(worker(which, int(n), int(n_slices), int(n_iter))))
        return
    small_problem()
    if not args.skip_scale:
        scale_comparison()


if __name__ == "__main__":
    main()
