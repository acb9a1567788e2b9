"""Moved to :mod:`xrf_sr_kedro.baselines.richardson_lucy`; kept so old imports work."""

from xrf_sr_kedro.baselines.richardson_lucy import richardson_lucy_sr

__all__ = ["richardson_lucy_sr"]
