"""Sandbox tests talk plain httpx over real loopback HTTP to one server per module."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY, SandboxServer

FORM = "application/x-www-form-urlencoded"


def php_flatten(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """PHP-style flat form pairs (written here, not borrowed from the client codec under test)."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            out += php_flatten(value, name)
        elif isinstance(value, (list, tuple)):
            out += php_flatten(dict(enumerate(value)), name)
        else:
            out.append((name, str(value)))
    return out


class Mobizon:
    """A bare Mobizon API caller plus the sandbox admin calls the tests need."""

    def __init__(self, client: httpx.Client, api_key: str = SANDBOX_MOBIZON_API_KEY) -> None:
        self.client = client
        self.api_key = api_key

    def __call__(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        files: Mapping[str, Any] | None = None,
        api_key: str | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """GET without params, POST with a PHP-style form (multipart when ``files``); the JSON answer."""
        q = {"output": "json", "api": "v1", "apiKey": api_key or self.api_key, **(query or {})}
        url = f"/service/{path}"
        if params is None and files is None:
            resp = self.client.get(url, params=q)
        elif files:
            resp = self.client.post(url, params=q, data=dict(php_flatten(params or {})), files=files)
        else:
            form = urlencode(php_flatten(params or {}))
            resp = self.client.post(url, params=q, content=form, headers={"content-type": FORM})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"code", "data", "message"}
        return body

    def ok(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        body = self(path, params, **kw)
        assert body["code"] == 0, body
        return body["data"]

    def advance(self, seconds: float) -> None:
        self.client.post("/_sandbox/clock", json={"advance": seconds}).raise_for_status()

    def now(self) -> datetime:
        return datetime.fromisoformat(self.client.get("/_sandbox/clock").json()["now"])

    def configure(self, **changes: Any) -> None:
        self.client.post("/_sandbox/config", json=changes).raise_for_status()

    def campaign_state(self, campaign_id: int) -> dict[str, Any]:
        state = self.client.get("/_sandbox/mobizon/state", params={"campaign": campaign_id}).json()
        (campaign,) = state["campaigns"]
        return campaign

    def campaign(self, text: str = "Hello", numbers: list[str] | None = None, **data: Any) -> int:
        """Create a campaign (and add ``numbers``); its id."""
        campaign_id = self.ok("campaign/create", {"data": {"text": text, **data}})
        if numbers:
            body = self("campaign/addRecipients", {"id": campaign_id, "recipients": numbers})
            assert body["code"] in (0, 98), body
        return campaign_id


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    """One sandbox per test module; its clock is frozen (tests move it) and tasks may be polled freely."""
    with SandboxServer(clock_speed=0, taskqueue_min_interval=0) as srv:
        yield srv


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox, after a full reset."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


@pytest.fixture
def mobizon(admin: httpx.Client) -> Mobizon:
    return Mobizon(admin)
