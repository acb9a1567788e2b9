"""Fine-tuning on a fine scan of a second region, through the probe: how much scan it needs.

The pipeline stage (``fine_tuning.fine_scan``, :mod:`xrf_sr_kedro.training.fine_scan`)
with its knobs exposed: the fine scan's dwell per point (as a fraction of the coarse
scan's), how many of the region's projections are used for training, steps and
learning rate.  The region is simulated as ``simulation.fine_scan_region`` does (the
``battery_phantom`` with seed 7, 37 projections from 90 to -18 degrees, 30 nm and
7.5 nm steps, conf/base values); ``--frames N`` trains on N evenly spaced projections of
the 37 (one held-out projection per N / 4 for the keep-or-discard test).  Run after a default
``make run``, then score the result::

    PYTHONPATH=src .venv/bin/python benchmarks/fine_scan_2d.py --dwell 0.0625 \\
        --out data/06_models/recipe/fine_scan.pt
    PYTHONPATH=src .venv/bin/python benchmarks/network_2d.py \\
        --checkpoint data/06_models/recipe/fine_scan.pt

Ends with ``fine_scan_*: value`` lines (kept, held-out losses, wall seconds).
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import yaml

from xrf_sr_kedro.datasets import ProbeDataset
from xrf_sr_kedro.io.checkpoint import load_checkpoint, save_checkpoint
from xrf_sr_kedro.pipelines.simulation.nodes import FineTuneRegionParams, simulate_fine_tuning_scans
from xrf_sr_kedro.training.fine_scan import FineScanSettings, fine_tune_on_fine_scan
from xrf_sr_kedro.types import XRFStack


def _subset(stack: XRFStack, frames: list[int]) -> XRFStack:
    return XRFStack(data=stack.data[:, frames], pixel_size_nm=stack.pixel_size_nm, elements=stack.elements,
                    angles_deg=np.asarray(stack.angles_deg)[frames], units=stack.units)


def _frames(n: int, n_train: int, every: int) -> list[int]:
    """``n_train`` evenly spaced training projections of ``n``, in order, with one of
    the stage's held-out projections after every ``every - 1`` of them (the stage holds
    out every ``every``-th position)."""
    if n_train < every - 1:
        raise SystemExit(f"--frames must be at least {every - 1} (one held-out projection)")
    held = [k for k in range(n) if k % every == every - 1]
    train = [k for k in range(n) if k % every != every - 1]
    train = [train[round(i)] for i in np.linspace(0, len(train) - 1, n_train)]
    order, spare = [], iter(held)
    for k in train:
        order.append(k)
        if len(order) % every == every - 1:
            order.append(next(spare))
    return order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/06_models/pretrained_model.pt")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--dwell", type=float, default=None,
                    help="fine scan dwell / coarse dwell (default: conf/base's fine_dwell_fraction)")
    ap.add_argument("--frames", type=int, default=0,
                    help="training projections of the region (0: all; the held-out ones are kept)")
    ap.add_argument("--steps", type=int, default=500,
                    help="Adam steps (the default run's 500)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--out", default="data/06_models/recipe/fine_scan.pt")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    with open("conf/base/parameters_simulation.yml") as f:
        region = dict(yaml.safe_load(f)["simulation"]["fine_scan_region"])
    with open("conf/base/parameters_fine_tuning.yml") as f:
        tune = dict(yaml.safe_load(f)["fine_tuning"]["fine_scan"])
    if args.dwell is not None:
        region["fine_dwell_fraction"] = args.dwell
    tune["steps"] = args.steps
    if args.lr is not None:
        tune["learning_rate"] = args.lr
    settings = FineScanSettings(**tune)
    probe = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    coarse, fine = simulate_fine_tuning_scans(probe, FineTuneRegionParams(**region))
    if args.frames:
        coarse, fine = (_subset(s, _frames(coarse.n_frames, args.frames, settings.holdout_every))
                        for s in (coarse, fine))
    t0 = time.perf_counter()
    out, _ = fine_tune_on_fine_scan(load_checkpoint(args.checkpoint), coarse, fine, probe, settings)
    wall = time.perf_counter() - t0
    record = out["fine_scan"]
    out["training_data"] = (f"fine scan of the second region: dwell {region['fine_dwell_fraction']:g}, "
                            f"{coarse.n_frames} projections, {settings.steps} steps")
    save_checkpoint(args.out, out)
    print(f"fine_scan_projections: {coarse.n_frames}")
    print(f"fine_scan_dwell_fraction: {region['fine_dwell_fraction']:g}")
    print(f"fine_scan_held_out_loss_before: {record['held_out_loss_before']:.6f}")
    print(f"fine_scan_held_out_loss_after: {record['held_out_loss_after']:.6f}")
    print(f"fine_scan_kept: {int(record['kept'])}")
    print(f"fine_scan_wall_s: {wall:.0f}")


if __name__ == "__main__":
    main()
