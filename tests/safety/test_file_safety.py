"""Issue 14, items 3 and 7: file modes follow the umask; a killed save leaves no litter."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xrf_sr_kedro.io.atomic import atomic_path, current_umask, remove_stale_temporaries
from xrf_sr_kedro.io.hdf5 import save_h5
from xrf_sr_kedro.io.tiff import write_tiff_stack
from xrf_sr_kedro.types import Volume, XRFStack


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_process_umask(umask_022):
    assert current_umask() == 0o022


def test_written_files_are_0644_under_umask_022(tmp_path, umask_022, tiny_checkpoint):
    stack = XRFStack(data=np.ones((1, 2, 4, 4), np.float32), pixel_size_nm=100.0,
                     elements=("Fe_K",), angles_deg=np.array([0.0, 90.0]))
    save_h5(tmp_path / "stack.h5", stack)
    vol = Volume(data=np.ones((1, 3, 4, 4), np.float32), voxel_size_nm=10.0, elements=("Fe_K",))
    write_tiff_stack(tmp_path / "vol.tif", vol)
    tiny_checkpoint(tmp_path / "model.pt")
    with atomic_path(tmp_path / "plain.bin") as tmp:
        tmp.write_bytes(b"x")
    for name in ("stack.h5", "vol.tif", "model.pt", "plain.bin"):
        assert _mode(tmp_path / name) == 0o644, name


def test_mode_follows_a_stricter_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with atomic_path(tmp_path / "private.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "private.bin") == 0o600


_KILLED_SAVE = """
import os, sys
from xrf_sr_kedro.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a file")
    os._exit(9)   # killed mid-save: no cleanup runs
"""


def test_next_save_removes_the_temporary_file_of_a_killed_save(tmp_path):
    target = tmp_path / "stack.h5"
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", _KILLED_SAVE, str(target)], env=env)
    assert done.returncode == 9
    left = list(tmp_path.glob(".stack.h5.*.tmp"))
    assert len(left) == 1 and not target.exists()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert not list(tmp_path.glob(".stack.h5.*.tmp"))


def test_a_live_process_temporary_file_is_kept(tmp_path):
    """A concurrent save (live pid) and files of other names are left alone."""
    target = tmp_path / "stack.h5"
    live = tmp_path / f".stack.h5.{os.getpid()}.abc.tmp"
    other = tmp_path / ".other.h5.999999999.abc.tmp"
    live.write_bytes(b"")
    other.write_bytes(b"")
    assert remove_stale_temporaries(target) == []
    assert live.exists() and other.exists()


_KILLED_STREAMING = """
import os, sys
from xrf_sr_kedro.io.atomic import scratch_folder
folder = scratch_folder("recon", sys.argv[1])
(folder / "volume.h5").write_bytes(b"half a volume")
os._exit(9)   # SIGKILL-like: no cleanup runs
"""


def test_next_streamed_step_removes_the_scratch_folder_of_a_killed_run(tmp_path):
    """A streamed reconstruction killed outright leaves its folder; the next one on this
    host removes it, and keeps folders of live processes, of other hosts and of other
    names."""
    from xrf_sr_kedro.io.atomic import _host_tag, scratch_folder

    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", _KILLED_STREAMING, str(tmp_path)], env=env)
    assert done.returncode == 9
    (left,) = tmp_path.glob("xrf_sr_recon_*")
    assert (left / "volume.h5").exists()
    live = tmp_path / f"xrf_sr_recon_{_host_tag()}_{os.getpid()}_abc"
    other_host = tmp_path / "xrf_sr_recon_otherhost_999999999_abc"
    other_kind = tmp_path / f"xrf_sr_enhance_{_host_tag()}_999999999_abc"
    for d in (live, other_host, other_kind):
        d.mkdir()
    mine = scratch_folder("recon", tmp_path)
    assert mine.is_dir() and mine.name.startswith(f"xrf_sr_recon_{_host_tag()}_{os.getpid()}_")
    assert not left.exists()
    assert live.exists() and other_host.exists() and other_kind.exists()


_FIRST_RUN = """
import sys
from xrf_sr_kedro.hooks import create_mlflow_store
create_mlflow_store(sys.argv[1])
"""


def test_two_first_runs_create_the_mlflow_store_once(tmp_path):
    """Both succeed (no ``duplicate column name: step``) and the store works."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    procs = [subprocess.Popen([sys.executable, "-c", _FIRST_RUN, uri], env=env,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    import mlflow

    assert mlflow.tracking.MlflowClient(tracking_uri=uri).search_experiments()
