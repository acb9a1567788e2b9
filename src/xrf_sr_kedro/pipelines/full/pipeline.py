"""``full``: the whole chain on the simulated sample, pretraining included.

``kedro run`` fine-tunes the pretrained network shipped with the project;
``kedro run --pipeline full`` pretrains it first (~14 min on 2 AVX2 cores, ~7 min
with native bf16) and uses that one: for another ``pretraining.model.preset``
(``--env paper``, ``--env tiny``), or to reproduce the shipped file.  Built by
:func:`xrf_sr_kedro.pipeline_registry.full_chain`.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from xrf_sr_kedro.pipeline_registry import full_chain


def create_pipeline(**kwargs) -> Pipeline:
    return full_chain()
