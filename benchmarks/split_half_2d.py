"""2-D split-half FRC of a network: two independent binomial halves of the measured counts, each enhanced.

Run after a default ``make run`` (paths are the catalog's defaults)::

    PYTHONPATH=src .venv/bin/python benchmarks/split_half_2d.py \\
        --checkpoint data/06_models/pretrained_model.pt data/06_models/selected_model.pt

Binomial thinning of Poisson counts with p = 0.5 gives two independent half-dose
measurements; the FRC between their enhanced maps (one-bit threshold, apodised, median
over every 13th projection) is what the network reproduces from independent data.  A
figure near 2 fine pixels (15 nm) would mean the network adds a pattern of its own.
Ends with ``split_half_2d_nm_<n>: value`` lines, one per checkpoint in order.
"""

from __future__ import annotations

import argparse

import numpy as np

from xrf_sr_kedro.datasets import XRFHDF5Dataset
from xrf_sr_kedro.inference import enhance_maps
from xrf_sr_kedro.io.checkpoint import load_checkpoint, model_from_checkpoint
from xrf_sr_kedro.metrics.fsc import fourier_ring_correlation, resolution_nm
from xrf_sr_kedro.training.self_supervised import thin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", nargs="+", default=["data/06_models/selected_model.pt"])
    ap.add_argument("--raw", default="data/01_raw/simulated_xrf_projections.h5")
    ap.add_argument("--element", default="Zn_K")
    ap.add_argument("--every", type=int, default=13, help="use every n-th projection")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    stack = XRFHDF5Dataset(filepath=args.raw).load()
    data = stack.data[list(stack.elements).index(args.element)][:: args.every]
    a, b = thin(np.rint(np.clip(data, 0, None)).astype(np.int64), 0.5, np.random.default_rng(args.seed))
    fine_nm = stack.pixel_size_nm / 4
    results = []
    for path in args.checkpoint:
        model = model_from_checkpoint(load_checkpoint(path)).eval()
        ea = enhance_maps(model, a.astype(np.float32), 4, progress=False).data
        eb = enhance_maps(model, b.astype(np.float32), 4, progress=False).data
        res = [resolution_nm(fourier_ring_correlation(ea[k], eb[k], fine_nm, apodize=True))
               for k in range(len(a))]
        print(f"{path}: per projection {np.round(res, 1).tolist()}")
        results.append(float(np.median(res)))
    for k, value in enumerate(results):
        print(f"split_half_2d_nm_{k}: {value:.1f}")


if __name__ == "__main__":
    main()
