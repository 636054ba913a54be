"""The private PostgreSQL/PostGIS cluster that lives inside the checkout.

Used by ``scripts/bootstrap`` and by ``chacra db status|start|stop``. Only the
standard library is imported here, so it also works before Django is
configured. When ``DATABASE_URL`` is set, none of this is used: the project talks
to whatever database that URL names.

Layout (all inside the checkout, ignored by git)::

    .pgdata/        the cluster (initdb), owned by an unprivileged OS user
    .pgrun/         its Unix socket; no TCP listener at all
    .pgdata.log     the server log
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "chacra"
DB_USER = "chacra"
PORT = 5432
# When bootstrap runs as root the cluster belongs to this OS user: PostgreSQL
# refuses to run as root. Debian's postgresql package creates it.
SERVICE_USER = "postgres"


class ClusterError(Exception):
    """A problem with the private cluster, told in words a person can act on."""


@dataclass(frozen=True)
class Cluster:
    root: Path

    @property
    def datadir(self) -> Path:
        return self.root / ".pgdata"

    @property
    def logfile(self) -> Path:
        return self.root / ".pgdata.log"

    @property
    def socket_dir(self) -> Path:
        # A Unix socket path is limited to ~107 bytes. Deep checkouts fall back
        # to a short, per-checkout directory under /tmp.
        local = self.root / ".pgrun"
        if len(str(local / f".s.PGSQL.{PORT}")) < 100:
            return local
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:10]
        return Path("/tmp") / f"chacra-pg-{digest}"

    @property
    def database_url(self) -> str:
        from urllib.parse import quote

        return f"postgres://{DB_USER}@{quote(str(self.socket_dir), safe='')}/{DB_NAME}"


def cluster() -> Cluster:
    return Cluster(ROOT)


def pg_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ClusterError(
        "No PostgreSQL server found (no initdb). Run ./scripts/bootstrap as root to "
        "install it, or install the postgresql and postgresql-NN-postgis-3 packages."
    )


def _as_service_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", SERVICE_USER, "--", *cmd]


def _run(cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ClusterError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )
    return proc


def _pg(c: Cluster, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(_as_service_user([str(pg_bindir() / tool), *args]), check=check)


def _prepare_dirs(c: Cluster) -> None:
    for d in (c.datadir, c.socket_dir):
        d.mkdir(mode=0o700, exist_ok=True)
    c.logfile.touch(exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        for p in (c.datadir, c.socket_dir, c.logfile):
            os.chown(p, user.pw_uid, user.pw_gid)
        # The service user must be able to reach the checkout to open its files.
        probe = _run(["runuser", "-u", SERVICE_USER, "--", "test", "-w", str(c.datadir)], check=False)
        if probe.returncode != 0:
            raise ClusterError(
                f"The OS user '{SERVICE_USER}' cannot reach {c.datadir}: a parent folder of "
                f"the checkout is not searchable by other users (try chmod o+x on each), or "
                f"set DATABASE_URL to use an existing PostGIS."
            )


def is_initialised(c: Cluster) -> bool:
    return (c.datadir / "PG_VERSION").exists()


def init(c: Cluster) -> bool:
    """Create the cluster if it does not exist. Returns True when it was created."""
    if is_initialised(c):
        return False
    _prepare_dirs(c)
    # Trust on the Unix socket only: the socket directory is private (0700) and
    # there is no TCP listener, so only this OS user (and root) can connect.
    _pg(c, "initdb", "-D", str(c.datadir), "-U", DB_USER, "--auth=trust",
        "--encoding=UTF8", "--locale=C.UTF-8")
    with open(c.datadir / "postgresql.auto.conf", "a") as conf:
        conf.write(
            "# written by chacra/pgcluster.py\n"
            "listen_addresses = ''\n"
            f"unix_socket_directories = '{c.socket_dir}'\n"
            "unix_socket_permissions = 0700\n"
            f"port = {PORT}\n"
            # A development cluster: no fsync (safe against a killed server, not
            # against power loss); commits stay synchronous so a kill loses nothing.
            "fsync = off\n"
            "full_page_writes = off\n"
            "shared_buffers = 512MB\n"
            "work_mem = 64MB\n"
            "maintenance_work_mem = 256MB\n"
            "max_connections = 60\n"
        )
    return True


def _postmaster_pid(c: Cluster) -> int | None:
    pidfile = c.datadir / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _process_is_our_postmaster(c: Cluster, pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    exe = os.path.basename(cmdline[0].decode(errors="replace")) if cmdline else ""
    return exe in ("postgres", "postmaster") and str(c.datadir).encode() in b" ".join(cmdline)


def is_running(c: Cluster) -> bool:
    pid = _postmaster_pid(c)
    return pid is not None and _process_is_our_postmaster(c, pid)


def recover_stale(c: Cluster) -> bool:
    """Remove a pid file (and socket lock) left by a server that is gone.

    A killed server leaves ``postmaster.pid`` behind; after a restart its PID may
    belong to an unrelated process, and PostgreSQL then refuses to start.
    """
    pid = _postmaster_pid(c)
    if pid is None or _process_is_our_postmaster(c, pid):
        return False
    (c.datadir / "postmaster.pid").unlink(missing_ok=True)
    for lock in c.socket_dir.glob(".s.PGSQL.*"):
        lock.unlink(missing_ok=True)
    return True


def start(c: Cluster) -> str:
    if not is_initialised(c):
        init(c)
    if is_running(c):
        return "already running"
    recovered = recover_stale(c)
    _prepare_dirs(c)
    _pg(c, "pg_ctl", "-D", str(c.datadir), "-l", str(c.logfile), "-w", "-t", "60", "start")
    return "started (recovered a stale pid file)" if recovered else "started"


def stop(c: Cluster) -> str:
    if not is_running(c):
        recover_stale(c)
        return "not running"
    _pg(c, "pg_ctl", "-D", str(c.datadir), "-m", "fast", "-w", "stop")
    return "stopped"


def psql(c: Cluster, sql: str, db: str = "postgres") -> str:
    proc = _run([str(pg_bindir() / "psql"), "-h", str(c.socket_dir), "-p", str(PORT),
                 "-U", DB_USER, "-d", db, "-tAc", sql])
    return proc.stdout.strip()


def ensure_database(c: Cluster) -> None:
    for _ in range(50):
        if _pg(c, "pg_isready", "-h", str(c.socket_dir), "-p", str(PORT), check=False).returncode == 0:
            break
        time.sleep(0.2)
    if psql(c, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        psql(c, f"CREATE DATABASE {DB_NAME}")
    psql(c, "CREATE EXTENSION IF NOT EXISTS postgis", db=DB_NAME)


def status(c: Cluster) -> str:
    if not is_initialised(c):
        return f"no private cluster in {c.datadir}"
    state = "running" if is_running(c) else "stopped"
    lines = [f"private cluster: {state}", f"  data:   {c.datadir}", f"  socket: {c.socket_dir}",
             f"  log:    {c.logfile}", f"  url:    {c.database_url}"]
    if state == "running":
        lines.append(f"  server: {psql(c, 'SHOW server_version')}, "
                     f"PostGIS {psql(c, 'SELECT postgis_lib_version()', db=DB_NAME)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chacra db",
        description="Manage the private PostgreSQL/PostGIS cluster in the checkout "
        "(.pgdata/, socket in .pgrun/). Not used when DATABASE_URL is set.",
    )
    parser.add_argument("action", choices=["status", "start", "stop", "url"],
                        help="status: show state; start: init if needed, start, create the "
                        "database; stop: fast shutdown; url: print the DATABASE_URL to use")
    args = parser.parse_args(argv)
    if os.environ.get("DATABASE_URL") and args.action != "status":
        print("DATABASE_URL is set: the private cluster is not in use.", file=sys.stderr)
    c = cluster()
    try:
        if args.action == "status":
            print(status(c))
        elif args.action == "start":
            print(f"private cluster {start(c)}")
            ensure_database(c)
        elif args.action == "stop":
            print(f"private cluster {stop(c)}")
        else:
            print(c.database_url)
    except ClusterError as exc:
        print(f"chacra db: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
