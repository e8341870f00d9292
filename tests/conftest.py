"""Test-wide setup: an isolated AIRFLOW_HOME with SQLite, and one sandbox server per session."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_HOME = Path(tempfile.mkdtemp(prefix="airflow-sms-test-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "example_dags")

import httpx  # noqa: E402
import pytest  # noqa: E402

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox import SandboxServer



def mobizon_conn_uri(url: str, api_key: str | None = None, **extra: object) -> str:
    """The AIRFLOW_CONN_* value (JSON form) of a mobizon connection to ``url``."""
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY

    api_key = api_key or SANDBOX_MOBIZON_API_KEY
    extras = {"retry_base_delay": 0.01, **extra}
    return json.dumps({"conn_type": "mobizon", "host": url, "password": api_key, "extra": extras})


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    """The sandbox on 127.0.0.1, a free port; stops when the session ends."""
    from airflow_sms_provider.sandbox import SandboxServer

    with SandboxServer(taskqueue_min_interval=0) as server:
        yield server


@pytest.fixture
def sandbox_url(sandbox: SandboxServer) -> Iterator[str]:
    """A clean sandbox for one test: state, faults and clock reset before it."""
    # A reset waits for the server's loop, which a previous test's large campaign may still be settling:
    # 5 s (httpx's default) timed out on a loaded machine.
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=60).raise_for_status()
    yield sandbox.url


@pytest.fixture
def mobizon_conn(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection id ``mobizon_default`` pointing at the sandbox."""
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url))
    return "mobizon_default"


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """Create the SQLite metadata database once, for tests that run DAGs."""
    from airflow.utils.db import resetdb

    resetdb(skip_init=False)
    yield
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def bsg_conn(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection id ``bsg_default`` pointing at the sandbox's BSG emulation."""
    from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY

    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01}}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    return "bsg_default"


@pytest.fixture
def ogangi_conn(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Connection id ``ogangi_default`` pointing at the sandbox's Ogangi emulation (base path /mmc)."""
    from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi

    conn = {
        "conn_type": "ogangi",
        "host": f"{sandbox_url}/mmc",
        "login": sandbox_ogangi.SANDBOX_OGANGI_USER,
        "password": sandbox_ogangi.SANDBOX_OGANGI_PRIVATE_KEY,
        "extra": {
            "instance_id": sandbox_ogangi.SANDBOX_OGANGI_INSTANCE_ID,
            "public_key": sandbox_ogangi.SANDBOX_OGANGI_PUBLIC_KEY,
            "retry_base_delay": 0.01,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_DEFAULT", json.dumps(conn))
    return "ogangi_default"
