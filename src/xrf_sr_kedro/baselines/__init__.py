"""Every classical control in one place: interpolation (nearest, bicubic, trilinear),
Richardson-Lucy and total-variation deconvolution through the fly-scan operator."""

from xrf_sr_kedro.baselines.richardson_lucy import richardson_lucy_sr
from xrf_sr_kedro.baselines.tv import tune_tv_weight, tv_deconvolution_sr
from xrf_sr_kedro.baselines.upsampling import bicubic_upsample, nearest_upsample, trilinear_upsample

__all__ = [
    "bicubic_upsample",
    "nearest_upsample",
    "trilinear_upsample",
    "richardson_lucy_sr",
    "tv_deconvolution_sr",
    "tune_tv_weight",
]
