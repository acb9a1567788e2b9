"""kedro-viz and the MLflow UI, screenshotted in headless Chromium by scripts/ui_check.py.

Skipped when Debian's chromium is not installed (``make viz-check`` installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="chromium is not installed (/usr/bin/chromium): `make viz-check` installs it and "
    "runs the kedro-viz / MLflow UI screenshot check",
)
def test_viz_and_mlflow_pages_show_graph_and_metrics(tmp_path: Path) -> None:
    out = tmp_path / "ui"
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    # simulation + pretraining is the shortest run that logs metrics and a checkpoint.
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "ui_check.py"), "--out", str(out),
         "--pipelines", "simulation,pretraining"],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    shots = [Path(line.split(": ", 1)[1]) for line in done.stdout.splitlines()
             if line.startswith("screenshot: ")]
    assert {p.name for p in shots} == {"kedro_viz.png", "mlflow_run.png", "mlflow_run_artifacts.png"}
    assert all(p.is_file() and p.stat().st_size > 10_000 for p in shots)
    assert "node names in the DOM" in done.stdout
    assert "pretrained_model.pt" in done.stdout  # listed on the artifacts tab
