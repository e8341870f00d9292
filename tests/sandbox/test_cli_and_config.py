"""What ``make sandbox`` prints and serves, and the config endpoint after the clock moved."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_sms_provider.sandbox.server import CLI_DEFAULTS, connection_lines, report_db_line


def test_config_reports_the_clock_speed_in_force(admin: httpx.Client) -> None:
    admin.post("/_sandbox/clock", json={"speed": 7}).raise_for_status()
    assert admin.get("/_sandbox/config").json()["clock_speed"] == 7
    # A config write answers the whole config, with the clock's speed too.
    assert admin.post("/_sandbox/config", json={"delivery_delay": 2}).json()["clock_speed"] == 7
    admin.post("/_sandbox/config", json={"clock_speed": 3}).raise_for_status()
    assert admin.get("/_sandbox/config").json()["clock_speed"] == admin.get("/_sandbox/clock").json()["speed"] == 3


def test_connection_lines_are_valid_shell_and_connections() -> None:
    from airflow.models.connection import Connection

    lines = connection_lines("http://127.0.0.1:8765")
    assert [line.split("=", 1)[0] for line in lines] == [
        "export AIRFLOW_CONN_MOBIZON_DEFAULT", "export AIRFLOW_CONN_BSG_DEFAULT", "export AIRFLOW_CONN_OGANGI_DEFAULT"]
    for line in lines:
        value = shlex.split(line)[1].split("=", 1)[1]  # what the shell puts into the variable
        conn = Connection.from_json(value, conn_id="x")
        assert conn.conn_type in ("mobizon", "bsg", "ogangi") and conn.password
    ogangi = json.loads(shlex.split(lines[2])[1].split("=", 1)[1])
    assert ogangi["host"] == "http://127.0.0.1:8765/mmc" and set(ogangi["extra"]) == {"instance_id", "public_key"}


@pytest.fixture
def cli_sandbox() -> Iterator[tuple[str, list[str]]]:
    """``airflow-sms-sandbox`` with its defaults on a free port: its URL and the lines it printed."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = "from airflow_sms_provider.sandbox.server import main; main(['--port', '0'])"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)  # fmt: skip
    try:
        lines: list[str] = []
        while sum("export AIRFLOW_CONN_" in line for line in lines) < 4 and len(lines) < 20:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line, "the CLI sandbox stopped before printing its connections"
            lines.append(line)
        url = lines[0].split()[3]
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{url}/_sandbox/health").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the CLI sandbox did not answer"
                time.sleep(0.05)
        yield url, lines
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_report_db_line_is_the_example_dags_sqlite_connection(tmp_path: Path) -> None:
    from airflow.models.connection import Connection

    example = Path(__file__).resolve().parents[2] / "example_dags" / "example_delivery_report.py"
    assert 'SQL_CONN_ID = "sms_reports_db"' in example.read_text(encoding="utf-8")
    conn_id = "sms_reports_db"
    line = report_db_line(str(tmp_path))
    name, value = shlex.split(line)[1].split("=", 1)
    assert name == f"AIRFLOW_CONN_{conn_id.upper()}"
    conn = Connection.from_json(value, conn_id=conn_id)
    assert conn.conn_type == "sqlite" and conn.host == str(tmp_path / "sms-reports.db")


def test_cli_prints_paste_ready_connections_and_runs_on_the_wall_clock(cli_sandbox: tuple[str, list[str]]) -> None:
    url, lines = cli_sandbox
    exports = [line.strip() for line in lines if line.strip().startswith("export AIRFLOW_CONN_")]
    assert exports == [*connection_lines(url), report_db_line()]
    config = httpx.get(f"{url}/_sandbox/config").json()
    # Speed 1: dates a DAG computes from its own clock (Ogangi's scheduled start) mean the same here.
    assert config["clock_speed"] == 1
    assert {k: config[k] for k in CLI_DEFAULTS} == CLI_DEFAULTS
