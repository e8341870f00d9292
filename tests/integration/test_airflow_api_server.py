"""The real Airflow UI backend: Airflow's API server offers our connection types and tests them.

Starts ``airflow api-server`` on 127.0.0.1 with its own SQLite database and asks
it, over HTTP, what the connection form shows and what the Test button answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_sms_provider.ui import FORMS, REQUIRED
from tests.api_server import airflow_api_server

SECRET = "uiSecretKey0123456789abcdefghijklmnopqrs"  # 40 characters, never to be echoed back


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with airflow_api_server(tmp_path_factory.mktemp("api-server-home")) as url:
        yield url


def hook_meta(url: str, conn_type: str) -> dict:
    metas = httpx.get(f"{url}/ui/connections/hook_meta", timeout=30).json()
    found = [m for m in metas if m["connection_type"] == conn_type]
    assert found, f"{conn_type} is not offered by the connection form"
    return found[0]


REGISTERED = list(FORMS)


@pytest.mark.parametrize("conn_type", REGISTERED)
def test_connection_form_has_labeled_fields(api_server: str, conn_type: str) -> None:
    meta = hook_meta(api_server, conn_type)
    form = FORMS[conn_type]
    fields = meta["standard_fields"]
    for name, label in form["relabeling"].items():
        assert fields[name]["title"] == label and fields[name]["hidden"] is False
    for name in form["hidden"]:
        if name in fields:
            assert fields[name]["hidden"] is True
    for name, spec in form["extras"].items():
        title = meta["extra_fields"][name]["schema"]["title"]
        # Forms built from the hooks' widgets (Airflow < 3.2) say "(required)" in the label instead.
        assert title in (spec["label"], spec["label"] + (REQUIRED if spec.get("required") else ""))


def test_password_is_masked_by_the_api(api_server: str) -> None:
    body = {"connection_id": "mz_masked", "conn_type": "mobizon", "host": "api.mobizon.kz", "password": SECRET}
    created = httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30)
    assert created.status_code in (200, 201), created.text
    fetched = httpx.get(f"{api_server}/api/v2/connections/mz_masked", timeout=30)
    assert SECRET not in created.text and SECRET not in fetched.text
    assert fetched.json()["password"] == "***"


def test_connection_test_succeeds_against_the_sandbox(api_server: str, sandbox_url: str) -> None:
    from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY

    body = {"connection_id": "mz_ok", "conn_type": "mobizon", "host": sandbox_url,
            "password": SANDBOX_MOBIZON_API_KEY}
    answer = httpx.post(f"{api_server}/api/v2/connections/test", json=body, timeout=60).json()
    assert answer["status"] is True, answer
    assert "balance" in answer["message"]


def test_connection_test_fails_with_the_providers_reason(api_server: str, sandbox_url: str) -> None:
    body = {"connection_id": "mz_bad", "conn_type": "mobizon", "host": sandbox_url, "password": SECRET}
    answer = httpx.post(f"{api_server}/api/v2/connections/test", json=body, timeout=60).json()
    assert answer["status"] is False
    assert "code 8" in answer["message"]
    assert SECRET not in json.dumps(answer)


def sandbox_connection(conn_type: str, url: str) -> dict:
    """A connection to the sandbox as a user saves it in the form, Port filled in."""
    from airflow_sms_provider.sandbox.server import connection_lines

    (line,) = [line for line in connection_lines(url) if f"_{conn_type.upper()}_DEFAULT=" in line]
    conn = json.loads(line.split("=", 1)[1].strip("'"))
    extra = conn.pop("extra", None)
    return {**conn, "port": int(url.rsplit(":", 1)[1]), **({"extra": json.dumps(extra)} if extra else {})}


def as_the_list_sends_it(stored: dict) -> dict:
    """The body of the connection list's Test button (Airflow 3.3 UI): every field of the listed
    connection, ``Number(port)`` (0 when none is stored) and the masked password."""
    return {
        "conn_type": stored["conn_type"], "connection_id": stored["connection_id"],
        "description": stored.get("description") or "", "extra": stored.get("extra") or "{}",
        "host": stored.get("host") or "", "login": stored.get("login") or "",
        "password": stored.get("password") or "", "port": int(stored.get("port") or 0),
        "schema": stored.get("schema") or "",
    }  # fmt: skip


# The connection list's Test button sends the masked password back; Airflow < 3.2's API tests it as given.
LIST_TEST_BUTTON = pytest.mark.skipif(
    Version(airflow_version).release < (3, 2), reason="the connection list's Test button: Airflow 3.2 and later"
)


@LIST_TEST_BUTTON
@pytest.mark.parametrize("conn_type", REGISTERED)
def test_list_test_button_works_with_a_stored_port(api_server: str, sandbox_url: str, conn_type: str) -> None:
    conn_id = f"{conn_type}_ui_test"
    body = {"connection_id": conn_id, **sandbox_connection(conn_type, sandbox_url)}
    created = httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30)
    assert created.status_code in (200, 201), created.text
    listed = httpx.get(f"{api_server}/api/v2/connections/{conn_id}", timeout=30).json()
    assert listed["password"] == "***"  # what the UI has, and sends back

    answer = httpx.post(f"{api_server}/api/v2/connections/test", json=as_the_list_sends_it(listed), timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] is True, answer.json()


@LIST_TEST_BUTTON
def test_list_test_button_without_a_stored_port_is_refused_by_airflow(api_server: str, sandbox_url: str) -> None:
    """Why the form offers Port: Airflow >= 3.2 compares the UI's port 0 with the stored empty one."""
    body = {"connection_id": "mobizon_no_port", **sandbox_connection("mobizon", sandbox_url)}
    del body["port"]
    assert httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30).status_code in (200, 201)
    listed = httpx.get(f"{api_server}/api/v2/connections/mobizon_no_port", timeout=30).json()
    answer = httpx.post(f"{api_server}/api/v2/connections/test", json=as_the_list_sends_it(listed), timeout=60)
    if answer.status_code == 200:  # an Airflow without that check: Test works without a port too
        assert answer.json()["status"] is True, answer.json()
    else:
        assert answer.status_code == 400 and "differs from the stored connection" in answer.text


@pytest.mark.parametrize("conn_type", REGISTERED)
def test_connection_form_marks_required_fields_and_offers_port(api_server: str, conn_type: str) -> None:
    meta = hook_meta(api_server, conn_type)
    fields = meta["standard_fields"]
    assert fields["port"]["hidden"] is False
    for name, label in FORMS[conn_type]["relabeling"].items():
        assert fields[name]["title"] == label
    assert any(fields[name]["title"].endswith(REQUIRED) for name in fields if fields[name] and fields[name]["title"])
    for name, spec in FORMS[conn_type]["extras"].items():
        schema = meta["extra_fields"][name]["schema"]
        if spec.get("required") and not schema["title"].endswith(REQUIRED):
            assert schema["type"] == spec["type"], schema  # no "null": the form asks for a value
        elif not spec.get("required"):
            assert "null" in schema["type"]


# Every extra this package treats as a secret (connections.register_connection_secrets), per type.
SALT = "saltValue-0123456789abcdef"
SECRET_EXTRAS = {
    "mobizon": {"webhook_secret": "whSecretValue-0123456789abcdef", "report_salt_secret": SALT},
    "bsg": {"callback_token": "cbTokenValue-0123456789abcdef0123456", "report_salt_secret": SALT},
}


@pytest.mark.parametrize("conn_type", list(SECRET_EXTRAS))
def test_secret_extras_are_masked_by_the_api(api_server: str, conn_type: str) -> None:
    extras = SECRET_EXTRAS[conn_type]
    body = {"connection_id": f"{conn_type}_secret_extras", "conn_type": conn_type, "host": "https://example.invalid",
            "password": SECRET, "extra": json.dumps(extras)}  # fmt: skip
    created = httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30)
    assert created.status_code in (200, 201), created.text
    fetched = httpx.get(f"{api_server}/api/v2/connections/{body['connection_id']}", timeout=30)
    listed = httpx.get(f"{api_server}/api/v2/connections", timeout=30)
    for name, value in extras.items():
        for answer in (created, fetched, listed):
            assert value not in answer.text, f"{name} shown by {answer.request.method} {answer.request.url.path}"
