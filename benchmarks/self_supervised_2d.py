"""Self-supervised fine-tuning on the measured projections themselves (issue 13 experiment).

No truth and no simulated pairs: the network is adapted to the user's own sample
through the exact fly-scan operator, with the measured counts split by binomial
thinning.  For Poisson counts ``y``, ``y1 ~ Binomial(y, p)`` and ``y2 = y - y1`` are
independent Poisson counts with means ``p * A x`` and ``(1 - p) * A x`` (``A`` the
fly-scan operator, ``x`` the fine map).  The network enhances ``y1 / p``; its output,
fly-scanned again, is compared with ``y2 / (1 - p)``:

    E || A f(y1 / p) - y2 / (1 - p) ||^2 = || A f(y1 / p) - A x ||^2 + const,

an unbiased loss for what the measurement determines, learnt on the sample's own
statistics.  A fresh split every step gives an endless supply of pairs from one scan.
The loss and the loop live in :mod:`xrf_sr_kedro.training.self_supervised`.  Run after
a default ``make run``::

    PYTHONPATH=src .venv/bin/python benchmarks/self_supervised_2d.py \\
        --checkpoint data/06_models/pretrained_model.pt --out data/06_models/recipe/self_supervised.pt
    PYTHONPATH=src .venv/bin/python benchmarks/network_2d.py \\
        --checkpoint data/06_models/recipe/self_supervised.pt

Ends with ``self_supervised_*: value`` lines (steps, final loss, wall seconds).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from xrf_sr_kedro.datasets import ProbeDataset, XRFHDF5Dataset
from xrf_sr_kedro.io.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.training.self_supervised import SelfSupervisedSettings, fine_tune_on_counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/06_models/pretrained_model.pt")
    ap.add_argument("--raw", default="data/01_raw/simulated_xrf_projections.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--element", default="Zn_K")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32, help="LR crop side (px)")
    ap.add_argument("--margin", type=int, default=4, help="LR px at the crop border left out of the loss")
    ap.add_argument("--p", type=float, default=0.8, help="fraction of the counts given to the input")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--equivariance", type=float, default=0.0,
                    help="weight of the scale-equivariance loss (0: thinning only)")
    ap.add_argument("--factor", type=int, default=2, help="zoom-out factor of the equivariance loss")
    ap.add_argument("--out", default="data/06_models/recipe/self_supervised.pt")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    stack = XRFHDF5Dataset(filepath=args.raw).load()
    counts = stack.data[list(stack.elements).index(args.element)]
    scale = 4
    probe_ds = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    probe = torch.from_numpy(resample_probe(probe_ds, stack.pixel_size_nm / scale).intensity.astype(np.float32))
    ckpt = load_checkpoint(args.checkpoint)
    settings = SelfSupervisedSettings(steps=args.steps, batch=args.batch, crop_px=args.crop,
                                      margin_px=args.margin, p=args.p, learning_rate=args.lr, seed=args.seed,
                                      equivariance_weight=args.equivariance,
                                      equivariance_factor=args.factor)
    t0 = time.perf_counter()
    tuned, losses = fine_tune_on_counts(model_from_checkpoint(ckpt), counts, probe, scale, settings)
    wall = time.perf_counter() - t0
    ckpt = dict(ckpt)
    ckpt["model_state"] = {k: v.detach().clone().contiguous() for k, v in tuned.state_dict().items()}
    ckpt["training_data"] = f"self-supervised on {args.raw} ({args.element}), p={args.p}, {args.steps} steps"
    save_checkpoint(args.out, ckpt)
    print(f"self_supervised_steps: {args.steps}")
    print(f"self_supervised_final_loss: {np.mean(losses[-100:]):.5f}")
    print(f"self_supervised_wall_s: {wall:.0f}")


if __name__ == "__main__":
    main()
