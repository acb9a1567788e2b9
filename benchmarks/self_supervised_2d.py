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
The part of the output the operator does not see (its null space) is held near the
starting network by an anchor term.  Run after a default ``make run``::

    PYTHONPATH=src .venv/bin/python benchmarks/self_supervised_2d.py \\
        --checkpoint data/06_models/pretrained_model.pt --out data/06_models/recipe/self_supervised.pt
    PYTHONPATH=src .venv/bin/python benchmarks/network_2d.py \\
        --checkpoint data/06_models/recipe/self_supervised.pt

Ends with ``self_supervised_*: value`` lines (steps, final loss, wall seconds).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from xrf_sr_kedro.datasets import ProbeDataset, XRFHDF5Dataset
from xrf_sr_kedro.io.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from xrf_sr_kedro.physics.flyscan import flyscan
from xrf_sr_kedro.physics.probe import resample_probe
from xrf_sr_kedro.training.precision import training_autocast


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="data/06_models/pretrained_model.pt")
    ap.add_argument("--raw", default="data/01_raw/simulated_xrf_projections.h5")
    ap.add_argument("--probe", default="data/01_raw/embedded/hxn_zone_plate_probe.npy")
    ap.add_argument("--element", default="Zn_K")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32, help="LR crop side (px)")
    ap.add_argument("--margin", type=int, default=4, help="LR px at the crop border left out of the loss")
    ap.add_argument("--p", type=float, default=0.8, help="fraction of the counts given to the input")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--anchor", type=float, default=0.0, help="weight of ||f - f_start||^2 (normalised units)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="data/06_models/recipe/self_supervised.pt")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    stack = XRFHDF5Dataset(filepath=args.raw).load()
    maps = np.rint(np.clip(stack.data[list(stack.elements).index(args.element)], 0, None)).astype(np.int64)
    scale = 4
    probe_ds = ProbeDataset(filepath=args.probe, pixel_size_nm=7.5, target_pixel_size_nm=7.5).load()
    probe = torch.from_numpy(resample_probe(probe_ds, stack.pixel_size_nm / scale).intensity.astype(np.float32))
    ckpt = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(ckpt).train()
    start = copy.deepcopy(model).eval()
    dev = torch.device("cpu")
    autocast_dtype, _ = training_autocast(True, dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n, h, w = maps.shape
    c, m = args.crop, args.margin
    t0 = time.perf_counter()
    losses = []
    for step in range(args.steps):
        idx = rng.integers(0, n, args.batch)
        ys, xs = rng.integers(0, h - c + 1, args.batch), rng.integers(0, w - c + 1, args.batch)
        y = np.stack([maps[i, a:a + c, b:b + c] for i, a, b in zip(idx, ys, xs)])
        flip = rng.random(args.batch) < 0.5  # flips along y commute with the x fly-scan
        y = np.where(flip[:, None, None], y[:, ::-1, :], y)
        y1 = rng.binomial(y, args.p)
        y2 = y - y1
        inp = y1 / args.p
        lo = inp.min(axis=(1, 2), keepdims=True)
        hi = np.maximum(inp.max(axis=(1, 2), keepdims=True), lo + 1.0)
        x = torch.from_numpy(((inp - lo) / (hi - lo)).astype(np.float32))[:, None]
        lo_t = torch.from_numpy(lo.astype(np.float32))[:, None]
        rng_t = torch.from_numpy((hi - lo).astype(np.float32))[:, None]
        target = torch.from_numpy((y2 / (1 - args.p)).astype(np.float32))[:, None]
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            out = model(x)
        out = out.float()
        pred = flyscan(out * rng_t + lo_t, probe, scale)
        inner = (slice(None), slice(None), slice(m, c - m), slice(m, c - m))
        loss = (((pred - target) / rng_t)[inner] ** 2).mean()
        if args.anchor > 0:
            with torch.no_grad():
                ref = start(x)
            loss = loss + args.anchor * ((out - ref) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if (step + 1) % 100 == 0:
            print(f"step {step + 1}: loss {np.mean(losses[-100:]):.5f}", flush=True)
    wall = time.perf_counter() - t0
    model.eval()
    ckpt = dict(ckpt)
    ckpt["model_state"] = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    ckpt["training_data"] = f"self-supervised on {args.raw} ({args.element}), p={args.p}, {args.steps} steps"
    save_checkpoint(args.out, ckpt)
    print(f"self_supervised_steps: {args.steps}")
    print(f"self_supervised_final_loss: {np.mean(losses[-100:]):.5f}")
    print(f"self_supervised_wall_s: {wall:.0f}")


if __name__ == "__main__":
    main()
