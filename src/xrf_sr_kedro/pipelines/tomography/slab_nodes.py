"""Nodes of the evaluation chains: the shared slab of rows and the even / odd halves of
the measured projections (each one call into :mod:`xrf_sr_kedro.evaluation.controls`)."""

from __future__ import annotations

from xrf_sr_kedro.evaluation.controls import VolumeSettings, slab_stack, split_measured
from xrf_sr_kedro.pipelines._params import validated
from xrf_sr_kedro.types import XRFStack

VolumeParams = validated(VolumeSettings)


def select_evaluation_slab(stack: XRFStack, volumes: VolumeParams) -> XRFStack:
    """The rows of the evaluation slab (``evaluation.volumes.slab_nm``; all when null)."""
    return slab_stack(stack, volumes.slab_nm)


def split_even_odd(stack: XRFStack) -> tuple[XRFStack, XRFStack]:
    """Even- and odd-numbered measured projections: disjoint frames, independent noise."""
    return split_measured(stack)
