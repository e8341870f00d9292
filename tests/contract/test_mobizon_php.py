"""Contract: the official Mobizon PHP client (mobizon-php, MIT) runs a complete flow against the sandbox.

The client is a reference the project did not write: it is used from
``/work/shared/reference/clients/mobizon-php`` (``MOBIZON_PHP_SRC`` overrides), never copied
here. ``make test`` installs PHP from the distribution's packages when it is missing
(``scripts/ensure_php.sh``); without PHP the tests skip with the reason, and fail under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY, SandboxServer

FLOW = Path(__file__).with_name("mobizon_flow.php")
CLIENT_SRC = Path(os.environ.get("MOBIZON_PHP_SRC", "/work/shared/reference/clients/mobizon-php/src"))
NEEDED_EXTENSIONS = ("curl", "json", "SimpleXML")  # composer.json "require" of mobizon-php


def _missing() -> str | None:
    """Why the contract cannot run here, or None."""
    php = shutil.which("php")
    if php is None:
        return "php is not installed (make test installs php-cli php-curl php-xml)"
    if not (CLIENT_SRC / "MobizonApi.php").is_file():
        return f"the mobizon-php client is not at {CLIENT_SRC} (set MOBIZON_PHP_SRC)"
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout.split()
    absent = [ext for ext in NEEDED_EXTENSIONS if ext not in modules]
    return f"php lacks the extensions {absent} (php-curl, php-xml)" if absent else None


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PHP contract test: {reason}")
        pytest.skip(reason)
    # A frozen clock: both output modes see the same times, so their results can be compared.
    with SandboxServer(clock_speed=0) as srv:
        yield srv


def run_flow(sandbox: SandboxServer, output: str) -> dict[str, Any]:
    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    # A reset restarts the frozen clock at the real time: one fixed instant makes two runs' timestamps equal.
    httpx.post(f"{sandbox.url}/_sandbox/clock", json={"to": "2031-01-02T03:04:05+00:00"}).raise_for_status()
    host_port = sandbox.url.split("://", 1)[1]
    proc = subprocess.run(
        ["php", str(FLOW), str(CLIENT_SRC), host_port, output, SANDBOX_MOBIZON_API_KEY],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return json.loads(proc.stdout)


@pytest.mark.parametrize("output", ["json", "xml"])
def test_official_php_client_runs_a_complete_flow(sandbox: SandboxServer, output: str) -> None:
    steps = run_flow(sandbox, output)
    failed = {name: step for name, step in steps.items() if name not in ("add_partial", "missing") and not step["ok"]}
    assert failed == {}
    assert steps["balance"]["data"] == {"balance": "1000.0000", "currency": "KZT"}
    assert steps["balance"]["currency"] == "KZT"  # the client's getData('currency')
    campaign_id = steps["create"]["data"]
    assert campaign_id.isdigit()
    assert [row["code"] for row in steps["add"]["data"]] == ["0", "0"]
    assert steps["add_partial"]["code"] == 98 and [r["code"] for r in steps["add_partial"]["data"]] == ["5", "0"]
    assert steps["send"]["data"] == "2"
    assert steps["get"]["data"]["id"] == campaign_id and steps["get"]["data"]["from"] == "Shop"
    assert steps["info"]["data"]["counters"]["totalMsgNum"] == "3"
    assert [row["status"] for row in steps["status"]["data"]] == ["ENQUEUD"] * 3
    assert steps["messages"]["data"]["totalItemCount"] == "3"
    assert {item["to"] for item in steps["messages"]["data"]["items"]} == {"77011234567", "77011234568", "77011234569"}
    assert [item["id"] for item in steps["campaigns"]["data"]["items"]] == [campaign_id]
    assert steps["single"]["data"]["status"] == "2"
    assert steps["add_group"]["code"] == 100 and steps["add_group"]["data"].isdigit()
    assert steps["task"]["data"]["status"] in ("0", "1", "2")
    assert steps["delete"]["code"] == 0
    assert steps["missing"] == {"ok": False, "code": 2, "data": ""}


def test_json_and_xml_modes_give_the_same_answers(sandbox: SandboxServer) -> None:
    assert run_flow(sandbox, "xml") == run_flow(sandbox, "json")
