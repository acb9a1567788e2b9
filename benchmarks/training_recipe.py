"""Which training recipe for the default run? (issue 13)

Trains the ``small`` preset with :func:`xrf_sr_kedro.training.loop.fit` on a fixed
budget of Adam steps for several recipes (training data, learning rate, global
residual, patch size, reprojection-noise fraction) and scores each on:

* ``micro_val``: a validation region of procedural microstructures with a held-out
  seed, fly-scanned at the default run's dose (150 counts, background 2, readout
  0.5), enhanced exactly as the engine does (LR min/max normalisation, network,
  denormalisation), PSNR after :func:`~xrf_sr_kedro.metrics.image.match_intensity`
  (the evaluation pipeline's definition), median over maps;
* ``micro_val_rp``: the same maps with reprojection-like noise (8x weaker at Nyquist);
* ``natural``: held-out bundled images degraded at the pretraining dose (200
  counts), ``evaluate`` of the training loop (its PSNR gain over bicubic);
* ``phantom``: Zn projections of the evaluation phantom (test only: never used to
  choose anything) at the default run's dose, PSNR and FRC (one-bit) vs truth;
  bicubic and the best of a few Richardson-Lucy iteration counts as anchors; the
  Poisson refinement (:mod:`xrf_sr_kedro.inference.refine`) on and off.

Usage::

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/training_recipe.py \
        [--steps 300] [--runs natural,micro,mix] [--threads 1]

Ends with ``name: value`` lines (one per run and score).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace

import numpy as np
import torch

from xrf_sr_kedro.inference.refine import refine_poisson
from xrf_sr_kedro.metrics.fsc import fourier_ring_correlation, resolution_nm
from xrf_sr_kedro.metrics.image import bicubic_upsample, match_intensity, psnr
from xrf_sr_kedro.models.dual_branch import SMALL, build_model
from xrf_sr_kedro.normalisation import denormalise, minmax_range, normalise
from xrf_sr_kedro.physics.application_pairs import (
    concat_pairs,
    make_application_pairs,
    noisy_counts,
)
from xrf_sr_kedro.physics.deconvolution import richardson_lucy_sr
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.microstructures import microstructure_maps
from xrf_sr_kedro.physics.natural_images import bundled_natural_images
from xrf_sr_kedro.physics.pairs import make_patch_pairs
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.physics.probe import probe_from_modes
from xrf_sr_kedro.tomo.reproject import even_angles_deg, reproject
from xrf_sr_kedro.training.loop import TrainConfig, evaluate, fit

S = 4
TRAIN_SEED, VAL_SEED = 1, 2  # microstructure sets; the phantom is never a training source
DOSE, BG, READOUT = 150.0, 2.0, 0.5  # default run, Zn_K

PROJECTED_FRACTION = 0.5  # thick pillar projections among the training microstructures

RUNS = {  # name: (data, lr, global residual, LR patch px, reprojection fraction)
    "natural": ("natural", 1e-3, "bicubic", 32, 0.0),
    "micro": ("micro", 1e-3, "bicubic", 32, 0.0),
    "mix": ("mix", 1e-3, "bicubic", 32, 0.0),
    "micro_rp50": ("micro", 1e-3, "bicubic", 32, 0.5),
    "micro_lr2e-3": ("micro", 2e-3, "bicubic", 32, 0.0),
    "micro_lr5e-4": ("micro", 5e-4, "bicubic", 32, 0.0),
    "micro_nores": ("micro", 1e-3, "none", 32, 0.0),
    "micro_p48": ("micro", 1e-3, "bicubic", 48, 0.0),
    "mix_rp50": ("mix", 1e-3, "bicubic", 32, 0.5),
    "mix_lr2e-3": ("mix", 2e-3, "bicubic", 32, 0.0),
    "mix_nores": ("mix", 1e-3, "none", 32, 0.0),
    "mix_p48": ("mix", 1e-3, "bicubic", 48, 0.0),
    "mix_lr3e-3": ("mix", 3e-3, "bicubic", 32, 0.0),
    "recommended": ("mix", 2e-3, "bicubic", 32, 0.5),
    # the default run's budget: 64x64 LR patches, 1560 steps of 8 (--steps 6240)
    "natural_p64": ("natural", 1e-3, "bicubic", 64, 0.0),
    "micro_p64": ("micro", 1e-3, "bicubic", 64, 0.0),
    "mix_p64": ("mix", 1e-3, "bicubic", 64, 0.0),
    "mix_rp50_p64": ("mix", 1e-3, "bicubic", 64, 0.5),
}


def project_probe():
    modes = np.load("data/01_raw/embedded/hxn_zone_plate_probe.npy")
    return probe_from_modes(modes, 7.5)


def simulate(truth: np.ndarray, probe, dose: float, rng, hf_gain: float = 1.0):
    """(counts as the simulation pipeline records them, counts per unit)."""
    return noisy_counts(truth, probe, S, dose, BG, READOUT, rng, hf_gain)


def enhance_units(model, counts: np.ndarray, g: float) -> np.ndarray:
    """The network's output on the map's scale (for the refinement)."""
    return (enhance(model, counts) - BG) / g


@torch.no_grad()
def enhance(model, lr: np.ndarray) -> np.ndarray:
    lo, hi = minmax_range(lr)
    x = torch.from_numpy(normalise(lr, lo, hi))[None, None]
    return denormalise(model(x)[0, 0].numpy(), lo, hi)


def score(est: np.ndarray, truth: np.ndarray, frc: bool = False) -> tuple[float, float]:
    m = match_intensity(est, truth)
    p = psnr(m, truth, data_range=float(truth.max() - truth.min()))
    r = resolution_nm(fourier_ring_correlation(m, truth, 7.5, apodize=True)) if frc else np.nan
    return p, r


def bicubic(lr: np.ndarray) -> np.ndarray:
    return bicubic_upsample(torch.from_numpy(lr)[None, None], S)[0, 0].numpy()


def natural_split():
    images = bundled_natural_images(256, n_procedural=8, procedural_size_px=512, seed=0)
    order = np.random.default_rng(0).permutation(len(images))
    return [images[i] for i in order[3:]], [images[i] for i in order[:3]]


def train_set(data: str, p_lr: int, frac: float, probe, nat_train, n_pairs: int):
    """Training pairs of one recipe (natural: today's pairs; micro; mix: half each)."""
    per = max(1, n_pairs // len(nat_train))
    nat = make_patch_pairs(nat_train, probe, S, p_lr, per, 200.0, seed=0)
    if data == "natural":
        return nat
    maps = microstructure_maps(n_pairs // 2, p_lr * S, seed=TRAIN_SEED, forbidden_seeds=[VAL_SEED],
                               projected_fraction=PROJECTED_FRACTION)
    mic = make_application_pairs(maps, probe, S, (20, 2000), BG, READOUT, frac, seed=0)
    if data == "micro":
        return mic
    half = len(mic) // 2
    return concat_pairs([
        replace(mic, lr=mic.lr[:half], hr=mic.hr[:half]),
        replace(nat, lr=nat.lr[: len(nat) // 2], hr=nat.hr[: len(nat) // 2]),
    ])


def eval_sets(probe, args, nat_val):
    nat_val_pairs = make_patch_pairs(nat_val, probe, S, 64, 8, 200.0, seed=1000)
    val_maps = microstructure_maps(args.n_val, 256, seed=VAL_SEED)
    vol = battery_phantom(256, 7.5, seed=0).data[0]
    angles = even_angles_deg(args.n_phantom, -90.0, 90.0)
    proj = reproject(vol, angles, progress=False) * 7.5  # (n_angles, z, det)
    return nat_val_pairs, val_maps, [proj[i] for i in range(proj.shape[0])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", default="natural,micro,mix")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-pairs", type=int, default=600)
    ap.add_argument("--n-val", type=int, default=12)
    ap.add_argument("--n-phantom", type=int, default=7)
    ap.add_argument("--anchors", default="inf,1,0.1")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    probe = project_probe()
    nat_train, nat_val_images = natural_split()
    nat_val, val_maps, phantom_maps = eval_sets(probe, args, nat_val_images)
    rng = np.random.default_rng(5)
    val_sim = [simulate(m, probe, DOSE, rng) for m in val_maps]
    val_sim_rp = [simulate(m, probe, DOSE, rng, 0.125) for m in val_maps]
    ph_sim = [simulate(m, probe, DOSE, rng) for m in phantom_maps]
    anchors = [float(a) for a in args.anchors.split(",")]

    lines = []
    # anchors: bicubic and the best RL iteration count (chosen on the phantom itself:
    # an optimistic baseline)
    for name, maps, sims in (("micro_val", val_maps, val_sim), ("phantom", phantom_maps, ph_sim)):
        b = [score(bicubic(lr), t, name == "phantom") for t, (lr, _) in zip(maps, sims)]
        lines.append((f"{name}_bicubic_psnr_db", np.median([x[0] for x in b])))
        if name == "phantom":
            lines.append(("phantom_bicubic_frc_nm", np.median([x[1] for x in b])))
            best = None
            for it in (3, 10, 30):
                r = [score(richardson_lucy_sr(lr, probe.intensity, S, it), t, True)
                     for t, (lr, _) in zip(maps, sims)]
                med = (np.median([x[0] for x in r]), np.median([x[1] for x in r]), it)
                best = med if best is None or med[0] > best[0] else best
            lines += [("phantom_rl_best_psnr_db", best[0]), ("phantom_rl_best_frc_nm", best[1]),
                      ("phantom_rl_best_iterations", best[2])]
    b_rp = [score(bicubic(lr), t)[0] for t, (lr, _) in zip(val_maps, val_sim_rp)]
    lines.append(("micro_val_rp_bicubic_psnr_db", np.median(b_rp)))
    for k, v in lines:
        print(f"{k}: {v:.2f}")

    for run in args.runs.split(","):
        data, lr, res, p_lr, frac = RUNS[run]
        train = train_set(data, p_lr, frac, probe, nat_train, args.n_pairs)
        steps = args.steps * 32 * 32 // (p_lr * p_lr)  # same pixels seen per run
        torch.manual_seed(0)
        model = build_model(replace(SMALL, global_residual=res))
        epochs = 6
        cfg = TrainConfig(
            epochs=epochs, batch_size=args.batch, learning_rate=lr, lr_first_decay_epoch=4,
            lr_decay_every=1, lr_gamma=0.5, val_every=epochs, seed=0,
            max_train_batches_per_epoch=max(1, steps // epochs), num_threads=args.threads,
        )
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            fit(model, train, None, cfg, d, device="cpu", training_data=run)
        train_s = time.perf_counter() - t0
        model.eval()
        out = {"train_s": train_s,
               "patches_per_s": steps // epochs * epochs * args.batch / train_s}
        nat = evaluate(model, nat_val, batch_size=8, device="cpu")
        out["natural_gain_db"] = nat["val_psnr"] - nat["bicubic_psnr"]
        out["micro_val_psnr_db"] = np.median(
            [score(enhance(model, lr), t)[0] for t, (lr, _) in zip(val_maps, val_sim)])
        out["micro_val_rp_psnr_db"] = np.median(
            [score(enhance(model, lr), t)[0] for t, (lr, _) in zip(val_maps, val_sim_rp)])
        for a in anchors:
            tag = "off" if np.isinf(a) else f"a{a:g}"
            v = [score(refine_poisson(enhance_units(model, c, g), c, probe.intensity, S, g, BG, a, 10), t)
                 [0] for t, (c, g) in zip(val_maps, val_sim)] if not np.isinf(a) else None
            if v is not None:
                out[f"micro_val_refine_{tag}_psnr_db"] = np.median(v)
            ph = [score(refine_poisson(enhance_units(model, c, g), c, probe.intensity, S, g, BG, a, 10),
                        t, True) for t, (c, g) in zip(phantom_maps, ph_sim)]
            out[f"phantom_refine_{tag}_psnr_db"] = np.median([x[0] for x in ph])
            out[f"phantom_refine_{tag}_frc_nm"] = np.median([x[1] for x in ph])
        for k, v in out.items():
            print(f"{run}_{k}: {v:.2f}", flush=True)


if __name__ == "__main__":
    main()
