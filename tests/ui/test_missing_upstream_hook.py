"""A run whose upstream outputs are missing stops at once and says what to run first."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from xrf_sr_kedro.hooks import MissingUpstreamHook, MissingUpstreamOutputError, producing_pipelines


def _session(root: Path, env: str = "tiny") -> KedroSession:
    bootstrap_project(root)
    return KedroSession.create(project_path=root, env=env)


def test_producing_pipelines_finds_the_stage_that_writes_a_dataset():
    assert producing_pipelines("simulated_xrf") == ["simulation"]
    assert producing_pipelines("raw_xrf") == []  # measured data: no node writes it
    assert producing_pipelines("pretrained_model") == ["pretraining"]
    assert producing_pipelines("fine_tuned_model") == ["fine_tuning"]
    assert producing_pipelines("selected_model") == ["fine_tuning"]
    assert producing_pipelines("enhanced_reprojections") == ["tomography"]
    assert producing_pipelines("probe_intensity") == []


def test_tomography_before_anything_names_the_pipelines_to_run(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    with _session(project_copy) as session:
        with pytest.raises(MissingUpstreamOutputError) as info:
            session.run(pipeline_names=["tomography"])
    message = str(info.value)
    assert "raw_xrf" in message and "simulated_xrf_projections.h5" in message
    assert "run `kedro run --pipeline simulation --env tiny` first" in message
    assert "selected_model" in message  # the network the 3-D chain uses
    assert "`kedro run --pipeline fine_tuning --env tiny`" in message
    # refused before any node ran: nothing was written
    assert not list((project_copy / "data").glob("0[2-8]_*/**/*.h5"))


def test_existing_inputs_and_parameters_pass(project_copy, monkeypatch):
    """simulation's free inputs (the embedded probe, the bundled images) exist."""
    monkeypatch.chdir(project_copy)
    with _session(project_copy) as session:
        context = session.load_context()
        from kedro.framework.project import find_pipelines

        pipeline = find_pipelines(pipelines_to_find=["simulation"])["simulation"]
        assert any(name.startswith("params:") for name in pipeline.inputs())
        MissingUpstreamHook().before_pipeline_run({"env": "tiny"}, pipeline, context.catalog)


def test_fallback_checkpoint_counts_as_present(project_copy, monkeypatch):
    """enhancement runs with the pretrained model when no selected or fine-tuned one exists."""
    monkeypatch.chdir(project_copy)
    models = project_copy / "data" / "06_models"
    models.mkdir(parents=True)
    (models / "pretrained_model.pt").write_bytes(b"placeholder")
    with _session(project_copy) as session:
        context = session.load_context()
        from kedro.framework.project import find_pipelines

        pipeline = find_pipelines(pipelines_to_find=["enhancement"])["enhancement"]
        with pytest.raises(MissingUpstreamOutputError) as info:
            MissingUpstreamHook().before_pipeline_run({"env": "local"}, pipeline, context.catalog)
    message = str(info.value)
    assert "selected_model" not in message and "fine_tuned_model" not in message
    assert "raw_xrf" in message and "`kedro run --pipeline simulation`" in message


def test_command_line_prints_the_message_without_a_traceback(project_copy):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "run", "--pipeline", "tomography"],
        cwd=project_copy, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert "Error: Upstream output missing:" in out
    assert "Traceback" not in out and "╭" not in out
    # in run order: the simulation's output first
    first = out.index("raw_xrf (")
    assert first < out.index("selected_model (")
    assert "run `kedro run --pipeline simulation` first" in out
