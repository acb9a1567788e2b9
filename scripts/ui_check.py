"""Screenshot kedro-viz and the MLflow UI in headless Chromium and check what they show.

Usage::

    python scripts/ui_check.py [--out benchmarks/out/ui] [--project DIR] [--pipelines a,b]

Without ``--project`` it copies the project (``pyproject.toml``, ``conf/``, ``src/``,
``data/01_raw/embedded``) into a temporary folder and runs ``kedro run --env tiny``
there, so MLflow has runs and the repository's ``data/`` stays untouched.  Then:

(a) starts ``kedro viz run`` on a free loopback port, screenshots the pipeline graph
    and checks that it is drawn (node names in the rendered DOM, and a PNG that is not
    blank);
(b) starts ``mlflow ui`` on the copy's ``mlflow.db``, opens the page of the run with the
    most metrics and checks that the page lists its metrics, and that its artifacts tab
    lists the checkpoints / report.

Every server and browser runs in its own session (process group); the group is
killed afterwards (kedro viz leaves a uvicorn worker behind) and the script checks
that no process of it remains.  Prints the screenshot paths; exits non-zero when a
check fails.  Needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
    "--window-size=1600,1000",
]
#: Node names that a drawn kedro-viz graph of the default pipeline shows.
VIZ_NODE_NAMES = ("simulate_raw_flyscan_xrf", "pretrain_dual_branch_network", "enhance_raw_xrf")
#: Artifacts of which at least one is listed on a run's artifacts tab after a tiny run.
ARTIFACT_NAMES = ("pretrained_model.pt", "fine_tuned_model.pt", "report.html", "results.csv")


class CheckFailed(RuntimeError):
    """A UI did not show what it should."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(KEDRO_DISABLE_TELEMETRY="1", DO_NOT_TRACK="1", MPLBACKEND="Agg")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def free_port(low: int = 20000, high: int = 45000) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now.

    Drawn from ``[low, high)``: kedro-viz refuses ports above 49151 (the kernel's
    ephemeral range starts there, so ``bind(0)`` would not do).
    """
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise CheckFailed(f"no free TCP port in [{low}, {high}) on 127.0.0.1")


def copy_project(dest: Path) -> Path:
    """Copy the parts of the project a run needs into ``dest / "project"``."""
    root = dest / "project"
    root.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(PROJECT_ROOT / "src", root / "src", ignore=ignore)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    embedded = PROJECT_ROOT / "data" / "01_raw" / "embedded"
    shutil.copytree(embedded, root / "data" / "01_raw" / "embedded")
    return root


def _session_members(sid: int) -> list[int]:
    """Ids of live processes in session ``sid`` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the ")" that closes the command name: state ppid pgrp session ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def stop_session(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Kill every process of ``proc``'s session (TERM, then KILL) and verify none is left."""
    sid = proc.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _session_members(sid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
            if not _session_members(sid):
                return
            time.sleep(0.2)
    left = _session_members(sid)
    if left:
        raise CheckFailed(f"processes {left} of session {sid} survived SIGKILL")


@contextlib.contextmanager
def server(cmd: list[str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """Run ``cmd`` in its own session; on exit kill the whole session."""
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=_env(), stdout=fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop_session(proc)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180.0) -> bytes:
    """Poll ``url`` until it answers 200; fail early when the server exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"{proc.args[0]} exited ({proc.returncode}); log:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return resp.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(1.0)
    raise CheckFailed(f"{url} did not answer within {timeout_s:.0f} s; log:\n{log.read_text()[-3000:]}")


def chromium(browser: str, url: str, work: Path, *, screenshot: Path | None = None) -> str:
    """Open ``url`` in headless Chromium: write a screenshot, or return the rendered DOM."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=work))
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    cmd += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.Popen(
        [*cmd, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"chromium did not finish loading {url} in 120 s") from exc
    finally:
        stop_session(proc)
        shutil.rmtree(profile, ignore_errors=True)
    if screenshot is not None and not screenshot.is_file():
        raise CheckFailed(f"chromium wrote no screenshot of {url}: {err.decode()[-2000:]}")
    return out.decode("utf-8", "replace")


def drawn_fraction(png: Path) -> float:
    """Fraction of pixels that differ from the most common (background) colour."""
    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(png).convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    differs = np.abs(rgb.astype(int) - background.astype(int)).sum(axis=1) > 24
    return float(differs.mean())


def check_viz(project: Path, out: Path, browser: str, work: Path) -> Path:
    """Start kedro viz, screenshot the graph, check node names are drawn."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = work / "kedro_viz.log"
    cmd = [str(BIN / "kedro"), "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    with server(cmd, project, log) as proc:
        wait_http(url, proc, log)
        api = wait_http(url + "api/main", proc, log).decode()
        missing = [n for n in VIZ_NODE_NAMES if n not in api]
        if missing:
            raise CheckFailed(f"kedro-viz API lacks nodes {missing}")
        png = out / "kedro_viz.png"
        png.unlink(missing_ok=True)
        chromium(browser, url, work, screenshot=png)
        dom = chromium(browser, url, work)
    shown = [n for n in VIZ_NODE_NAMES if n in dom or n.replace("_", " ").lower() in dom.lower()]
    fraction = drawn_fraction(png)
    print(f"kedro-viz: {len(shown)}/{len(VIZ_NODE_NAMES)} node names in the DOM, "
          f"{fraction:.1%} of the screenshot drawn")
    if not shown:
        raise CheckFailed("kedro-viz page shows none of the node names " f"{VIZ_NODE_NAMES}")
    if fraction < 0.02:
        raise CheckFailed(f"kedro-viz screenshot {png} is nearly blank ({fraction:.1%} drawn)")
    return png


def pick_run(tracking_uri: str) -> tuple[str, str, list[str]]:
    """(experiment id, run id, metric names) of the finished run with the most metrics."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(search_all_experiments=True)
    if runs.empty:
        raise CheckFailed(f"no MLflow runs in {tracking_uri}")
    metric_cols = [c for c in runs.columns if c.startswith("metrics.")]
    counts = runs[metric_cols].notna().sum(axis=1) if metric_cols else runs["run_id"].map(lambda _: 0)
    best = runs.loc[counts.idxmax()]
    names = [c[len("metrics."):] for c in metric_cols if best[c] == best[c]]  # not NaN
    if not names:
        raise CheckFailed(f"no MLflow run in {tracking_uri} has metrics")
    return str(best["experiment_id"]), str(best["run_id"]), names


def check_mlflow(project: Path, out: Path, browser: str, work: Path) -> tuple[Path, Path]:
    """Start the MLflow UI, screenshot the page of a run, check its metrics are listed."""
    db = project / "mlflow.db"
    if not db.is_file():
        raise CheckFailed(f"{db} does not exist: run `kedro run` in {project} first")
    tracking_uri = f"sqlite:///{db}"
    exp_id, run_id, metrics = pick_run(tracking_uri)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "mlflow_ui.log"
    cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", tracking_uri,
           "--host", "127.0.0.1", "--port", str(port)]
    url = f"{base}/#/experiments/{exp_id}/runs/{run_id}"
    with server(cmd, project, log) as proc:
        wait_http(base + "/health", proc, log)
        png = out / "mlflow_run.png"
        artifacts_png = out / "mlflow_run_artifacts.png"
        for shot in (png, artifacts_png):
            shot.unlink(missing_ok=True)
        chromium(browser, url, work, screenshot=png)
        dom = chromium(browser, url, work)
        chromium(browser, url + "/artifacts", work, screenshot=artifacts_png)
        artifacts_dom = chromium(browser, url + "/artifacts", work)
    shown = [m for m in metrics if m in dom]
    fraction = drawn_fraction(png)
    print(f"MLflow run {run_id} (experiment {exp_id}): {len(shown)}/{len(metrics)} metric "
          f"names on the page, {fraction:.1%} of the screenshot drawn")
    if not shown:
        raise CheckFailed(f"MLflow run page {url} shows none of the metrics {metrics}")
    if fraction < 0.02:
        raise CheckFailed(f"MLflow screenshot {png} is nearly blank ({fraction:.1%} drawn)")
    listed = [a for a in ARTIFACT_NAMES if a in artifacts_dom]
    print(f"MLflow artifacts tab lists {listed}")
    if not listed:
        raise CheckFailed(f"MLflow artifacts tab {url}/artifacts lists none of {ARTIFACT_NAMES}")
    return png, artifacts_png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "benchmarks" / "out" / "ui",
                        help="folder for the screenshots (default benchmarks/out/ui)")
    parser.add_argument("--project", type=Path, default=None,
                        help="an already-run project folder (default: a fresh copy, run on tiny)")
    parser.add_argument("--pipelines", default=None,
                        help="pipelines of the tiny run, e.g. simulation,pretraining (default: all)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)

    if not Path(args.chromium).is_file():
        print(f"chromium not found at {args.chromium}: apt-get install chromium "
              "(or `make viz-check`)", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ui_check-") as tmp:
        work = Path(tmp)
        if args.project is None:
            project = copy_project(work)
            cmd = [str(BIN / "kedro"), "run", "--env", "tiny"]
            if args.pipelines:
                cmd += ["--pipelines", args.pipelines]
            print(f"running {' '.join(cmd[1:])} in {project} ...", flush=True)
            done = subprocess.run(cmd, cwd=project, env=_env(), capture_output=True, text=True)
            if done.returncode:
                print(done.stdout[-4000:], done.stderr[-4000:], file=sys.stderr)
                return 1
        else:
            project = args.project.resolve()
        try:
            shots = [check_viz(project, out, args.chromium, work),
                     *check_mlflow(project, out, args.chromium, work)]
        except CheckFailed as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    for shot in shots:
        print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
