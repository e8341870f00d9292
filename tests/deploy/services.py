"""PostgreSQL, Redis and a whole Airflow as processes on 127.0.0.1: the deployment test's harness.

Every service is a throwaway: its own data directory under a temporary folder, a free
loopback port, and a ``stop()`` that ends it (and everything it started) whatever happened.
The binaries come from Debian's packages (scripts/install-deploy-services.sh).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx

from tests.worker_kill import wait_until

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240.0  # a cold Airflow import on 2 loaded cores takes tens of seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgreSQL:
    """A PostgreSQL cluster in ``workdir`` on a free port; initdb refuses root, so it runs as ``postgres``."""

    def __init__(self, workdir: Path) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed: run scripts/install-deploy-services.sh")
        self.bin = Path(found[-1]).parent
        self.datadir = workdir / "pgdata"
        self.port = free_port()
        self.log = workdir / "postgresql.log"
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
            self.user = "postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgreSQL:
        self.datadir.mkdir()
        for path in (self.datadir, self.log.parent):
            if self.user:
                shutil.chown(path, self.user)
        self.log.touch()
        if self.user:
            shutil.chown(self.log, self.user)
        # trust on loopback only: a throwaway cluster nobody else can reach.
        self._run("initdb", "-D", str(self.datadir), "-U", "airflow", "-A", "trust", "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.datadir} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://airflow@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)


class Redis:
    """redis-server on a free loopback port, no persistence (a broker for one test)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        with (self.workdir / "redis.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir), "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    return sock.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(ready, 30, "redis-server", 0.1)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Airflow:
    """An Airflow deployment: one process per component, all sharing one configuration (``env``)."""

    def __init__(self, home: Path, database_url: str, dags_folder: Path, executor: str,
                 extra_env: dict[str, str]) -> None:  # fmt: skip
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = home / "logs"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._files: list[IO[bytes]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # One secret for every component: the api-server checks the tokens the scheduler signs.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "deploy:admin",
            # New DAG files and runs are picked up in seconds, not the production minutes.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        env.update(extra_env)
        self.env = env

    def airflow(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        if done.returncode:
            raise AssertionError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``airflow ARGS`` as component ``name``, its output in ``HOME/name.log``."""
        out = (self.home / f"{name}.log").open("ab")
        self._files.append(out)
        proc = subprocess.Popen([sys.executable, "-m", "airflow", *args], env={**self.env, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, cwd=self.home,
                                start_new_session=True)  # its own group: stop() ends its children too
        self.procs[name] = proc
        return proc

    def start_api_server(self) -> None:
        self.start("api-server", "api-server", "-H", "127.0.0.1", "-p", str(self.port))

        def up() -> bool:
            self.check_alive()
            try:
                return httpx.get(f"{self.url}/api/v2/version", timeout=5).status_code in (200, 401, 403)
            except httpx.HTTPError:
                return False

        wait_until(up, START_TIMEOUT, "the api-server", 1)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None and not name.startswith("stopped"):
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.component_log(name)[-4000:]}")

    def component_log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def token(self) -> str:
        """A JWT of the simple auth manager's ``deploy`` user (its password file is written at start)."""
        import json

        passwords = json.loads(next(self.home.glob("simple_auth_manager_passwords.json*")).read_text())
        answer = httpx.post(f"{self.url}/auth/token", json={"username": "deploy", "password": passwords["deploy"]},
                            timeout=30)  # fmt: skip
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def stop_component(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it started and left behind
        proc.wait(timeout=10)
        self.procs[f"stopped {name}"] = proc

    def stop(self) -> None:
        for name in [n for n in self.procs if not n.startswith("stopped")]:
            self.stop_component(name, timeout=20)
        for out in self._files:
            out.close()
