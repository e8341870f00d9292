"""Start a real ``airflow api-server`` on 127.0.0.1 with its own home and SQLite database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path, **env_extra: str) -> dict[str, str]:
    """The environment of an Airflow process with its own home and SQLite database (``env_extra`` on top)."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        # One worker: four (the default) take minutes to start on a loaded 2-core machine.
        "AIRFLOW__API__WORKERS": "1",
        **env_extra,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


@contextmanager
def airflow_api_server(home: Path, **env_extra: str) -> Iterator[str]:
    """Its base URL while the ``with`` lasts; ``env_extra`` adds AIRFLOW__* settings, connections..."""
    env = airflow_env(home, **env_extra)
    airflow = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = Path(home) / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*airflow, "api-server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/api/v2/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"api-server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
