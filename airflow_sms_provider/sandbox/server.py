"""Run the sandbox: in a background thread (tests, notebooks) or as ``airflow-sms-sandbox``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

import httpx
import uvicorn

from airflow_sms_provider.sandbox.app import create_app
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from airflow_sms_provider.sandbox.mobizon import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.ogangi import (
    SANDBOX_OGANGI_INSTANCE_ID,
    SANDBOX_OGANGI_PRIVATE_KEY,
    SANDBOX_OGANGI_PUBLIC_KEY,
    SANDBOX_OGANGI_USER,
)
from airflow_sms_provider.sandbox.state import SandboxState, redact_url

_START_TIMEOUT = 10.0


def _bind(host: str, port: int) -> socket.socket:
    # Bound here rather than by uvicorn so the port (even a free one, port 0) is known before start.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _shutdown(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    if thread.is_alive() and thread is not threading.current_thread():
        thread.join(timeout=5)


class SandboxServer:
    """The sandbox on a real loopback port, served by uvicorn in a daemon thread.

    ``with SandboxServer(taskqueue_min_interval=0) as sandbox: httpx.get(sandbox.url + ...)``.
    Keyword arguments other than ``host``/``port`` are ``create_app`` config.
    """

    def __init__(
        self, state: SandboxState | None = None, *, host: str = "127.0.0.1", port: int = 0, **config: Any
    ) -> None:
        self.app = create_app(state, **config)
        self.state: SandboxState = self.app.state.sandbox
        self.host = host
        self._sock = _bind(host, port)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_config=None,  # leave the host application's logging alone
                log_level="warning",
                access_log=False,  # its lines would carry API keys from query strings
                lifespan="off",
                timeout_graceful_shutdown=1,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name=f"sandbox-{self.port}", daemon=True
        )
        self._finalizer = weakref.finalize(self, _shutdown, self._server, self._thread)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        """Start serving and wait until ``/_sandbox/health`` answers."""
        if not self._thread.is_alive():
            self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._server.started:
                try:
                    if httpx.get(f"{self.url}/_sandbox/health", timeout=1).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
            if not self._thread.is_alive():
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the sandbox did not start on {self.url}")

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        self._finalizer()
        self._sock.close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _RedactAccessLog(logging.Filter):
    """Masks API keys in uvicorn's access lines (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_url(str(args[2]))
            record.args = tuple(args)
        return True


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="airflow-sms-sandbox",
        description="A local stand-in for the Mobizon, BSG One-API and Ogangi (Messangi MMC) APIs; sends no SMS.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--speed", type=float, default=1.0,
        help="simulated seconds per real second (default 1: the sandbox's clock is the wall clock, "
        "so a start time a DAG computes from its own clock means the same to the sandbox); "
        "POST /_sandbox/clock changes it at run time",
    )  # fmt: skip
    parser.add_argument("--access-log", action="store_true", help="log requests, API keys masked")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0,
        help="simulated round trip added to every API request (real milliseconds)",
    )  # fmt: skip
    parser.add_argument(
        "--connect-latency-ms", type=float, default=0.0,
        help="added to the first request of each new connection (TCP/TLS handshakes)",
    )  # fmt: skip
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", type=_config_item,
        help="any sandbox config key (see GET /_sandbox/config); VALUE is JSON, or text",
    )  # fmt: skip
    return parser.parse_args(argv)


def _config_item(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


# What the command line serves unless --set says otherwise: campaigns that last about ten
# seconds on the wall clock, so a deferrable sensor started by a real scheduler (seconds after
# the send) finds them unfinished and defers at least once; the library's defaults (SandboxServer)
# stay fast for tests, which move the clock themselves.
CLI_DEFAULTS: dict[str, Any] = {"delivery_delay": 10.0, "bsg_delivery_delay": 10.0}


def connection_lines(url: str) -> list[str]:
    """``export AIRFLOW_CONN_..._DEFAULT='{...}'`` lines for the sandbox at ``url``, ready to paste."""
    conns = {
        "MOBIZON": {"conn_type": "mobizon", "host": url, "password": SANDBOX_MOBIZON_API_KEY},
        "BSG": {"conn_type": "bsg", "host": url, "password": SANDBOX_BSG_API_KEY},
        "OGANGI": {
            "conn_type": "ogangi", "host": f"{url}/mmc", "login": SANDBOX_OGANGI_USER,
            "password": SANDBOX_OGANGI_PRIVATE_KEY,
            "extra": {"instance_id": SANDBOX_OGANGI_INSTANCE_ID, "public_key": SANDBOX_OGANGI_PUBLIC_KEY},
        },
    }  # fmt: skip
    return [f"export AIRFLOW_CONN_{name}_DEFAULT='{json.dumps(conn)}'" for name, conn in conns.items()]


def report_db_line(directory: str | None = None) -> str:
    """An ``export`` line for a local SQLite database to load delivery reports into: the ``sms_reports_db``
    connection example_delivery_report.py uses (needs apache-airflow-providers-sqlite)."""
    import tempfile

    path = os.path.join(directory or tempfile.gettempdir(), "sms-reports.db")
    return f"export AIRFLOW_CONN_SMS_REPORTS_DB='{json.dumps({'conn_type': 'sqlite', 'host': path})}'"


def main(argv: list[str] | None = None) -> None:
    """``airflow-sms-sandbox``: serve until Ctrl-C."""
    args = _parse_args(argv)
    config = {**CLI_DEFAULTS, "latency_ms": args.latency_ms, "connect_latency_ms": args.connect_latency_ms,
              **dict(args.set)}
    try:
        app = create_app(clock_speed=args.speed, **config)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"airflow-sms-sandbox: {exc}") from None
    sock = _bind(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}"
    # flush: a parent process (tests, bench/) reads the URL from this first line.
    print(f"SMS sandbox on {url} (clock speed x{args.speed:g}); admin API under {url}/_sandbox/", flush=True)
    print(f"  Mobizon: host {url}  API key {SANDBOX_MOBIZON_API_KEY}", flush=True)
    print(f"  BSG:     host {url}  API key {SANDBOX_BSG_API_KEY}", flush=True)
    print(
        f"  Ogangi:  host {url}/mmc  user {SANDBOX_OGANGI_USER}  instance {SANDBOX_OGANGI_INSTANCE_ID}  "
        f"public key {SANDBOX_OGANGI_PUBLIC_KEY}  private key {SANDBOX_OGANGI_PRIVATE_KEY}",
        flush=True,
    )
    print("  Connections for Airflow (paste into the shell that starts it):", flush=True)
    for line in connection_lines(url):
        print(f"    {line}", flush=True)
    print("  Delivery reports into a table (example_delivery_report's sms_reports_db; any common.sql "
          "connection will do, this one is a local SQLite file):", flush=True)
    print(f"    {report_db_line()}", flush=True)
    if args.latency_ms or args.connect_latency_ms:
        print(f"  latency {args.latency_ms:g} ms per request, +{args.connect_latency_ms:g} ms per new connection",
              flush=True)
    if args.access_log:
        logging.getLogger("uvicorn.access").addFilter(_RedactAccessLog())
    server_config = uvicorn.Config(app, log_level="info", access_log=args.access_log, lifespan="off")
    uvicorn.Server(server_config).run(sockets=[sock])


if __name__ == "__main__":  # pragma: no cover
    main()
