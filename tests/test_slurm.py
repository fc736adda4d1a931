"""scripts/ray_slurm.sh, as far as a machine without SLURM can run it: `srun` and
`scontrol` stand-ins run each step on this machine, so the script starts a real Ray head
with `ray start`, runs the experiment's driver against it, and stops the cluster."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsafe.config import load_config
from capsafe.pipeline import STORE_FILE
from capsafe.store import Store
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SRUN = """#!/usr/bin/env bash
# srun stand-in: drop srun's options, run the command here.
while [ $# -gt 0 ]; do
  case "$1" in -w|--nodelist) shift 2 ;; -*) shift ;; *) break ;; esac
done
exec "$@"
"""
SCONTROL = """#!/usr/bin/env bash
[ "$1 $2" = "show hostnames" ] && tr ',' '\\n' <<< "$3"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_slurm_script_runs_the_experiment_on_the_cluster_it_starts(tmp_path, small_config):
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    venv_bin = Path(sys.executable).parent
    path = small_config("x", finetune=None, decoding={"max_new_tokens": 8})
    port = free_port()
    env = {
        "PATH": f"{fake}:{venv_bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_CPUS_PER_TASK": "2",
        "CAPSAFE_RAY_PORT": str(port),
        "CAPSAFE": str(venv_bin / "capsafe"),
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(["bash", str(REPO / "scripts" / "ray_slurm.sh"), str(path), "-q",
                           "--no-report"], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"head localhost (127.0.0.1:{port}), 1 node(s), 2 CPU(s)" in proc.stderr
    assert "generated 32, judged 20, scored 12" in proc.stdout
    out = load_config(path).output_dir
    with Store(out / STORE_FILE) as store:
        assert store.count("generations") == 32
    # The cluster the script started is gone with it: nothing listens on its GCS port.
    # (`ray status` on a dead address waits out the GCS connect timeout: tens of seconds.)
    assert gcs_gone(port), f"the Ray head still listens on 127.0.0.1:{port}"


def gcs_gone(port: int, within: float = 30.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return True
        time.sleep(0.2)
    return False
