"""The connection Test button and form, used in the real Airflow UI with headless Chromium.

``make test-ui`` installs Debian's chromium and chromium-driver when missing and runs this
module on the newest Airflow (.venv) and on the lowest supported one (.venv-compat, 3.0)
with ``SMS_UI_TESTS=1`` (the tests are skipped otherwise); it speaks WebDriver to
chromedriver over HTTP (no Python package needed) and leaves a screenshot per click in
``$SMS_UI_SCREENSHOTS`` (default: pytest's tmp dir).

What each Airflow offers (seen in the browser): 3.3 has a Test button in the connection
list (not in the edit form); 3.0 has none, neither in the list nor in the form, whatever
``[core] test_connection`` says. There the list tests check that no Test button is shown and
skip with that reason; the form test runs on both and proves our fields and labels (on 3.0
built from the hooks' WTForms widgets) reach the browser.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from airflow import __version__ as airflow_version
from packaging.version import Version

from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from tests.integration.test_airflow_api_server import api_server, sandbox_connection  # noqa: F401 - fixture

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Opt-in (make test-ui sets SMS_UI_TESTS=1): a second API server and a browser add minutes to a run.
# With SMS_UI_TESTS=1 a missing browser fails the run (the browser fixture) instead of skipping it.
pytestmark = pytest.mark.skipif(not os.environ.get("SMS_UI_TESTS"), reason="run by make test-ui (SMS_UI_TESTS=1)")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element reference key
# Airflow 3.0's UI has no Test button at all (seen on 3.0.6: the list offers Edit and Delete, the form Save).
NO_TEST_BUTTON = Version(airflow_version).release < (3, 1)
NO_TEST_BUTTON_REASON = (
    f"Airflow {airflow_version}'s UI has no connection Test button (neither in the list nor in the form); "
    "test there with `airflow connections test <conn_id>` or POST /api/v2/connections/test"
)
HOOKS = {"mobizon": MobizonHook, "bsg": BsgHook, "ogangi": OgangiHook}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """The few W3C WebDriver calls the test needs, over HTTP to chromedriver."""

    def __init__(self, driver_url: str) -> None:
        self.http = httpx.Client(base_url=driver_url, timeout=120)
        options = {"binary": CHROMIUM, "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                                                 "--disable-gpu", "--window-size=1400,900"]}  # fmt: skip
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, path, json=body)
        value = answer.json()["value"]
        if answer.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {value}")
        return value

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def get(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def elements(self, xpath: str) -> list[Any]:
        """What matches ``xpath`` now (no waiting)."""
        return list(self._call("POST", self._s("/elements"), {"using": "xpath", "value": xpath}))

    def find(self, xpath: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = self.elements(xpath)
            if found:
                return found[0][ELEMENT]
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing matches {xpath}; the page says:\n{self.text()[:2000]}")
            time.sleep(0.3)

    def click(self, element: str) -> None:
        self._call("POST", self._s(f"/element/{element}/click"), {})

    def wait_text(self, done: Any, what: str, timeout: float = 60) -> str:
        """The page's text once ``done(text)`` holds (polled: the UI renders asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if done(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never showed; the page says:\n{text[:2000]}")
            time.sleep(0.2)

    def text(self) -> str:
        return str(self._call("POST", self._s("/execute/sync"), {"script": "return document.body.innerText",
                                                                   "args": []}))  # fmt: skip

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))

    def quit(self) -> None:
        self.http.delete(self._s(""))
        self.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMEDRIVER and CHROMIUM, "needs chromium + chromium-driver: make test-ui installs them"
    port = _free_port()
    driver = subprocess.Popen([str(CHROMEDRIVER), f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "chromedriver did not start"
            time.sleep(0.2)
        b = Browser(url)
        try:
            yield b
        finally:
            b.quit()
    finally:
        driver.terminate()
        driver.wait(timeout=15)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SMS_UI_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _toast_done(text: str) -> bool:
    """The toast's title and its description: the hook's "Connected…" or the failure's reason."""
    if "Test Connection Successful" in text:
        return "Connected" in text
    _, failed, after = text.partition("Test Connection Failed")
    return bool(failed and after.strip())


def click_test(browser: Browser, api_server: str, conn_id: str, shot: Path) -> str:  # noqa: F811
    """Open the connection list, click the row's Test button, return the page once the toast is complete."""
    browser.get(f"{api_server}/connections")
    row = f"//tr[.//*[normalize-space(text())='{conn_id}']]"
    if NO_TEST_BUTTON:
        browser.find(f"{row}//button[@aria-label='Edit Connection']")  # the row's actions have rendered
        tests = browser.elements("//button[contains(@aria-label, 'Test') or normalize-space(.)='Test']")
        assert not tests, "this Airflow's list shows a Test button now: drop NO_TEST_BUTTON"
        browser.screenshot(shot)
        pytest.skip(NO_TEST_BUTTON_REASON)
    browser.click(browser.find(f"{row}//button[@aria-label='Test Connection']"))
    text = browser.wait_text(_toast_done, "the test's toast with its description")
    browser.screenshot(shot)
    return text


@pytest.mark.parametrize("conn_type", ["mobizon", "bsg", "ogangi"])
def test_test_button_in_the_connection_list(
    api_server: str, sandbox_url: str, browser: Browser, screenshots: Path, conn_type: str  # noqa: F811
) -> None:
    conn_id = f"{conn_type}_browser"
    body = {"connection_id": conn_id, **sandbox_connection(conn_type, sandbox_url)}
    assert httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30).status_code in (200, 201)

    page = click_test(browser, api_server, conn_id, screenshots / f"test-button-{conn_type}.png")

    assert "Test Connection Successful" in page, page[:2000]
    assert "Bad Request" not in page


def test_test_button_without_a_port_shows_airflows_bad_request(
    api_server: str, sandbox_url: str, browser: Browser, screenshots: Path  # noqa: F811
) -> None:
    """What docs/connections.md explains: with no stored Port, Airflow 3.3 refuses the list's test."""
    body = {"connection_id": "mobizon_browser_no_port", **sandbox_connection("mobizon", sandbox_url)}
    del body["port"]
    assert httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30).status_code in (200, 201)

    page = click_test(browser, api_server, "mobizon_browser_no_port", screenshots / "test-button-no-port.png")

    if "Test Connection Failed" in page:  # Airflow 3.3.2; an Airflow without the check succeeds
        assert "Bad Request" in page, page[:2000]
    else:
        assert "Test Connection Successful" in page, page[:2000]


@pytest.mark.parametrize("conn_type", ["mobizon", "bsg", "ogangi"])
def test_connection_form_shows_the_providers_fields(
    api_server: str, sandbox_url: str, browser: Browser, screenshots: Path, conn_type: str  # noqa: F811
) -> None:
    """Edit Connection shows our labels, the required fields marked, on every supported Airflow."""
    conn_id = f"{conn_type}_form"
    body = {"connection_id": conn_id, **sandbox_connection(conn_type, sandbox_url)}
    assert httpx.post(f"{api_server}/api/v2/connections", json=body, timeout=30).status_code in (200, 201)
    browser.get(f"{api_server}/connections")
    row = f"//tr[.//*[normalize-space(text())='{conn_id}']]"
    browser.click(browser.find(f"{row}//button[@aria-label='Edit Connection']"))
    labels = list(HOOKS[conn_type].get_ui_field_behaviour()["relabeling"].values())
    assert any("(required)" in label for label in labels), labels
    browser.wait_text(lambda t: "Edit Connection" in t and all(label in t for label in labels),
                      f"the {conn_type} form's labels {labels}")
    browser.screenshot(screenshots / f"form-{conn_type}.png")
