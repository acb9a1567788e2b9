"""Oracle bound for issue 13: the ``small`` network trained on the evaluation phantom's own generator.

The default network never sees the evaluation sample's generator (``battery_phantom``):
it trains on projected particle packings and natural images.  This script trains the
same network, with the default recipe and budget, on projections of *other* samples of
the evaluation generator (``--seeds``, never the evaluated seed 0), fly-scanned at the
default run's dose, noise and probe.  Its 2-D score on the default run's projections
(``benchmarks/network_2d.py --checkpoint data/06_models/recipe/oracle_generator.pt``) is
an *oracle*: the best this network and budget can do with training data from the
evaluation sample's own distribution.  It tells whether a 2-D target is out of reach
of the data the network may train on, or of the measurement itself.

Run (after ``kedro run --pipeline simulation``)::

    OMP_NUM_THREADS=1 PYTHONPATH=src nice .venv/bin/python benchmarks/oracle_generator_2d.py

Ends with ``oracle_*: value`` lines (validation-region PSNR, epochs, CPU seconds).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from xrf_sr_kedro.datasets import ProbeDataset, XRFHDF5Dataset
from xrf_sr_kedro.io.checkpoint import load_checkpoint
from xrf_sr_kedro.models.dual_branch import build_model, config_from_name
from xrf_sr_kedro.physics.application_pairs import concat_pairs
from xrf_sr_kedro.physics.measurement import measure_stack
from xrf_sr_kedro.physics.pairs import pairs_from_maps
from xrf_sr_kedro.physics.phantom import battery_phantom
from xrf_sr_kedro.tomo.reproject import reproject
from xrf_sr_kedro.training.loop import TrainConfig, fit
from xrf_sr_kedro.types import XRFStack

#: The default run's scan (conf/base/parameters_simulation.yml, simulation.scan).
MEAN_COUNTS = {"Zn_K": 150.0, "Mn_K": 300.0}
BACKGROUND_COUNTS, READOUT_SIGMA_COUNTS, STEP_PX = 2.0, 0.5, 4


def generator_pairs(seeds: list[int], angles_per_volume: int, size_vox: int, probe, lr_patch_px: int,
                    stride_px: int):
    """LR/HR patch pairs from fly-scanned projections of ``battery_phantom`` at ``seeds``."""
    parts = []
    for seed in seeds:
        vol = battery_phantom(size_vox, 7.5, seed=seed)
        angles = np.random.default_rng(seed).uniform(-90.0, 90.0, angles_per_volume)
        proj = np.stack([reproject(v, angles, progress=False) for v in vol.data])
        truth = XRFStack(proj.astype(np.float32), 7.5, vol.elements, angles)
        raw = measure_stack(truth, probe, STEP_PX, mean_counts=MEAN_COUNTS, background_counts=BACKGROUND_COUNTS,
                            readout_sigma_counts=READOUT_SIGMA_COUNTS, seed=10_000 + seed)
        for k, element in enumerate(vol.elements):
            g = MEAN_COUNTS[element] / float(np.clip(proj[k], 0, None).mean())  # measure_stack's gain
            hr = g * np.clip(proj[k], 0, None) + BACKGROUND_COUNTS
            parts.append(pairs_from_maps(raw.data[k], hr, lr_patch_px, 30.0, 7.5, stride_px))
        print(f"seed {seed}: {sum(len(p) for p in parts)} pairs so far", flush=True)
    return concat_pairs(parts)


def renormalise_per_patch(pairs):
    """Each pair rescaled so its LR patch spans [0, 1] (the HR patch with the same map)."""
    from dataclasses import replace

    lo = pairs.lr.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(pairs.lr.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-6)
    return replace(pairs, lr=(pairs.lr - lo) / span, hr=(pairs.hr - lo) / span)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="101,102,103")
    ap.add_argument("--angles-per-volume", type=int, default=30)
    ap.add_argument("--size-vox", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=299, help="Adam steps (batches of 8) per epoch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--validation", default="data/05_model_input/validation_region_pairs.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--out", default="data/06_models/recipe/oracle_generator.pt")
    ap.add_argument("--per-patch-norm", action="store_true",
                    help="normalise each patch by its own LR min/max (as the application pairs) "
                    "instead of by its whole projection's (as the engine at inference)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    if 0 in seeds:
        raise SystemExit("--seeds must not contain 0, the evaluated phantom's seed")
    probe = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    t0 = time.perf_counter()
    train = generator_pairs(seeds, args.angles_per_volume, args.size_vox, probe, 32, 8)
    if args.per_patch_norm:
        train = renormalise_per_patch(train)
    print(f"{len(train)} oracle pairs built in {time.perf_counter() - t0:.0f} s", flush=True)
    val = XRFHDF5Dataset(filepath=args.validation).load()
    cfg = TrainConfig(epochs=args.epochs, batch_size=8, learning_rate=2e-3,
                      lr_first_decay_epoch=max(1, round(args.epochs * 11 / 16)),
                      lr_decay_every=max(1, round(args.epochs * 2 / 16)), lr_gamma=0.5, val_every=1, seed=0,
                      max_train_batches_per_epoch=args.steps, num_threads=args.threads,
                      augmentation="flips", loss="l2")
    torch.manual_seed(0)
    model = build_model(config_from_name("small"))
    c0, t0 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        last = fit(model, train, val, cfg, d, device="cpu", training_data="oracle: battery_phantom seeds " + args.seeds)
        # the last epoch, not the best on the packings: the oracle's data are the phantom's
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(d) / "last.pt" if (Path(d) / "last.pt").exists() else Path(d) / "best.pt", args.out)
    print(f"oracle_val_psnr_db: {last['metrics']['val_psnr']:.3f}")
    print(f"oracle_train_cpu_s: {time.process_time() - c0:.0f}")
    print(f"oracle_train_wall_s: {time.perf_counter() - t0:.0f}")
    print(f"oracle_checkpoint: {args.out} ({load_checkpoint(args.out)['epoch']})")


if __name__ == "__main__":
    main()
