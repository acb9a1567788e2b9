"""Tomography benchmark: project FBP/SIRT/OSPML vs ASTRA (CPU) and scikit-image.

One 128x128 Shepp-Logan slice, 90 angles over 180 degrees, data simulated on a
2x finer grid (no inverse crime) with Poisson noise (peak ~2000 counts a ray).
Every method gets the same sinogram, mapped to its own angle/detector
convention (found by matching its forward projection of the truth).  Prints a
table (time, RMSE against the truth) and the headline lines.

Run: PYTHONPATH=src python benchmarks/tomography.py  (ASTRA rows need
astra-toolbox; they are skipped with a message when it is not importable).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, iradon_sart, radon, resize

from xrf_sr_kedro.tomo import ParallelBeamProjector, fbp, ospml_quad, sirt

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


def main() -> None:
    angles, truth, sino = make_problem()
    rows = []
    dev = "cpu"
    sino_t = torch.from_numpy(sino[None].astype(np.float32))

    # --- project
    proj = ParallelBeamProjector(N, angles, device=dev)
    _, t_build = timed(proj._get_blocks)
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
        import astra
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


if __name__ == "__main__":
    main()
