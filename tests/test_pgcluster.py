"""The private cluster: created, started, recovered after a kill, stopped — for real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from chacra import pgcluster


@pytest.fixture
def scratch_cluster():
    # Not pytest's tmp_path: as root the cluster runs as 'postgres', which must be
    # able to reach the folder.
    root = Path(tempfile.mkdtemp(prefix="chacra-pgtest-"))
    root.chmod(0o755)
    cluster = pgcluster.Cluster(root)
    yield cluster
    try:
        pgcluster.stop(cluster)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_it_starts_recovers_a_stale_pid_file_and_stops(scratch_cluster):
    c = scratch_cluster
    assert pgcluster.start(c) == "started"
    assert pgcluster.start(c) == "already running"
    pgcluster.ensure_database(c)
    pgcluster.ensure_database(c)  # idempotent
    assert pgcluster.psql(c, "SELECT extname FROM pg_extension WHERE extname = 'postgis'", db="chacra") == "postgis"
    # Kill the postmaster the hard way, then make its pid file point at a live,
    # unrelated process (this test) — what a reboot with PID reuse looks like.
    pid = int((c.datadir / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    lines = (c.datadir / "postmaster.pid").read_text().splitlines()
    lines[0] = str(os.getpid())
    (c.datadir / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert not pgcluster.is_running(c)
    assert pgcluster.start(c) == "started (recovered a stale pid file)"
    assert pgcluster.psql(c, "SELECT 1", db="chacra") == "1"
    assert "running" in pgcluster.status(c)
    assert pgcluster.stop(c) == "stopped"
    assert pgcluster.stop(c) == "not running"
    assert "stopped" in pgcluster.status(c)


def test_the_db_command_reports_the_running_cluster():
    out = subprocess.run([sys.executable, "-m", "chacra.cli", "db", "status"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    assert out.returncode == 0
    if os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is set: the private cluster is not in use")
    assert "private cluster: running" in out.stdout and "PostGIS 3" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "chacra.cli", "db", "explode"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
